"""Re-execute notebooks in place, top to bottom, each on a fresh kernel.

usage: python tools/run_notebooks.py [NOTEBOOK_OR_FOLDER ...]

Each notebook runs with its own folder as the working directory (as JupyterLab
does), so figures land in the repository's figures/ through
``vi_helpers.plots.save_figure``. Prints the wall time of every notebook and the
total, the numbers quoted in README and the course-lab guide.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def run(path: Path, timeout: int = 600) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    t0 = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - t0
    nbformat.write(nb, path)
    return elapsed


def main(args: list[str]) -> int:
    targets = [Path(a) for a in args] or [Path("notebooks")]
    paths: list[Path] = []
    for t in targets:
        paths += sorted(t.glob("[0-9]*.ipynb")) if t.is_dir() else [t]
    total = 0.0
    for p in paths:
        seconds = run(p)
        total += seconds
        print(f"{p.name:45s} {seconds:6.1f} s", flush=True)
    print(f"{'total':45s} {total:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
