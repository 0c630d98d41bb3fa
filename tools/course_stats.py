"""Size of each notebook and the class time it implies (the basis of docs/teaching.md).

usage: python tools/course_stats.py [NOTEBOOK_OR_FOLDER ...]

For every notebook: words of Markdown a student reads (collapsed ``<details>``
answers excluded: they are read only after trying), code cells, and the
*reading-and-running* time

    minutes = words / WORDS_PER_MINUTE + code_cells * MINUTES_PER_CELL

The rates are planning assumptions, not measurements: ordinary prose is read
at about 200-250 words per minute, and mathematical prose that a student
follows line by line, checking each equation, at roughly half that; running a
cell and looking at its output or figure takes about half a minute. docs/teaching.md adds the time of the in-class (★ and ★★)
exercises, listed there with their own estimates, to give the class time.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

WORDS_PER_MINUTE = 100
MINUTES_PER_CELL = 0.5
_DETAILS = re.compile(r"<details>.*?</details>", re.S | re.I)


def stats(path: Path) -> dict:
    """Words, code cells and reading-and-running minutes of one notebook."""
    nb = nbformat.read(path, as_version=4)
    words = 0
    code = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            words += len(_DETAILS.sub(" ", cell.source).split())
        elif cell.cell_type == "code":
            code += 1
    minutes = words / WORDS_PER_MINUTE + code * MINUTES_PER_CELL
    return {"words": words, "code_cells": code, "minutes": minutes}


def main(args: list[str]) -> int:
    targets = [Path(a) for a in args] or [Path("notebooks")]
    paths: list[Path] = []
    for t in targets:
        paths += sorted(t.glob("[0-9]*.ipynb")) if t.is_dir() else [t]
    print(f"{'notebook':32s} {'words':>6s} {'code cells':>10s} {'read+run min':>12s}")
    for p in paths:
        s = stats(p)
        print(f"{p.stem:32s} {s['words']:6d} {s['code_cells']:10d} {s['minutes']:12.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
