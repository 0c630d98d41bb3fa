"""Write student versions of the course notebooks (solutions removed, outputs cleared).

usage: python tools/make_student.py [--no-answers] SOURCE [SOURCE ...] DEST

SOURCE is a notebook or a folder (its ``[0-9]*.ipynb`` notebooks); DEST is the
folder the student versions are written to, under the same file names
(``make student`` runs ``tools/make_student.py notebooks dist/student``).

What changes, using nbgrader's and nbconvert's own preprocessors (offline: no
nbgrader course directory, database or ``nbgrader_config.py`` is needed):

* Code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader's
  markers, indented inside the exercise function) is replaced, at the markers'
  indentation, by::

      # YOUR CODE HERE
      raise NotImplementedError("kl_diag_gaussian: write your solution here")

  naming the function that encloses the markers (nbgrader's ``ClearSolutions``
  with a configured ``code_stub``; see :class:`ClearNamedSolutions`).
* Markdown between the same markers is replaced by ``YOUR ANSWER HERE``.
* Outputs and execution counts are cleared (nbconvert's ``ClearOutputPreprocessor``).
* Check cells (``checks.check_...(...)``) and everything else stay as they are, so
  a student notebook runs top to bottom and every check prints "not attempted yet".
* ``<details><summary>Answer</summary> ... </details>`` blocks (the collapsible
  answers to interpretation questions, for self-study) are kept. With
  ``--no-answers`` (graded labs) every ``<details>`` block whose summary starts
  with "Answer" or "Solution" is replaced by ``**Your answer:** YOUR ANSWER HERE``;
  blocks titled otherwise (e.g. "Hint") are kept.

Figures: notebooks save them through ``vi_helpers.plots.save_figure``, which walks
up to the folder holding ``pyproject.toml``, so ``dist/student/`` inside the
repository needs no copies.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearOutputPreprocessor, Preprocessor
from nbgrader.preprocessors import ClearSolutions
from traitlets.config import Config

#: Placeholder in the code stub, replaced by the enclosing function's name.
NAME_PLACEHOLDER = "__EXERCISE_NAME__"
CODE_STUB = (
    f'# YOUR CODE HERE\nraise NotImplementedError("{NAME_PLACEHOLDER}: write your solution here")'
)
TEXT_STUB = "YOUR ANSWER HERE"
ANSWER_STUB = "**Your answer:** YOUR ANSWER HERE"

_DEF = re.compile(r"^(?P<indent>\s*)(?:async\s+)?def\s+(?P<name>\w+)\s*\(")
_DETAILS = re.compile(
    r"<details[^>]*>\s*<summary[^>]*>(?P<summary>.*?)</summary>.*?</details>", re.S | re.I
)
_TAG = re.compile(r"<[^>]+>|[*_`]")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def name_stubs(source: str) -> str:
    """Put the name of the enclosing ``def`` into each stub's placeholder.

    A stub outside any function gets the generic name "exercise".
    """
    lines = source.split("\n")
    for i, line in enumerate(lines):
        if NAME_PLACEHOLDER not in line:
            continue
        name = "exercise"
        for above in reversed(lines[:i]):
            m = _DEF.match(above)
            if m and len(m.group("indent")) < _indent(line):
                name = m.group("name")
                break
        lines[i] = line.replace(NAME_PLACEHOLDER, name)
    return "\n".join(lines)


class ClearNamedSolutions(ClearSolutions):
    """nbgrader's ``ClearSolutions`` whose code stub names the exercise function.

    ``ClearSolutions`` inserts one fixed ``code_stub`` per language. We configure a
    stub holding a placeholder and, right after nbgrader has replaced a solution
    region of a code cell, substitute the name of the ``def`` that encloses it:
    the minimal post-processing that gives the student a message naming the
    function (``raise NotImplementedError("slerp: write your solution here")``).
    """

    def _replace_solution_region(self, cell, language):
        replaced = super()._replace_solution_region(cell, language)
        if replaced and cell.cell_type == "code":
            cell.source = name_stubs(cell.source)
        return replaced


class RemoveAnswers(Preprocessor):
    """Replace ``<details><summary>Answer</summary>...</details>`` by an answer stub."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown":

            def replace(match: re.Match) -> str:
                summary = _TAG.sub("", match.group("summary")).strip().lower()
                if summary.startswith(("answer", "solution")):
                    return ANSWER_STUB
                return match.group(0)

            cell.source = _DETAILS.sub(replace, cell.source)
        return cell, resources


def make_config() -> Config:
    """The minimal traitlets configuration of the preprocessors."""
    c = Config()
    c.ClearSolutions.code_stub = {"python": CODE_STUB}
    c.ClearSolutions.text_stub = TEXT_STUB
    # Our notebooks carry no nbgrader cell metadata (no grade ids): we only need the
    # "assign" step's text replacement, which is what enforce_metadata=False allows.
    c.ClearSolutions.enforce_metadata = False
    c.ClearOutputPreprocessor.remove_metadata_fields = {"collapsed", "scrolled", "execution"}
    return c


def student_version(nb: nbformat.NotebookNode, *, answers: bool = True) -> nbformat.NotebookNode:
    """Return the student version of ``nb`` (the argument is not modified)."""
    nb = nbformat.from_dict(nb)  # deep copy
    config = make_config()
    preprocessors = [ClearNamedSolutions(config=config), ClearOutputPreprocessor(config=config)]
    if not answers:
        preprocessors.append(RemoveAnswers(config=config))
    resources: dict = {}
    for pre in preprocessors:
        nb, resources = pre.preprocess(nb, resources)
    return nb


def _sources(args: list[Path]) -> list[Path]:
    paths: list[Path] = []
    for a in args:
        if a.is_dir():
            paths += sorted(a.glob("[0-9]*.ipynb"))
        elif a.suffix == ".ipynb" and a.is_file():
            paths.append(a)
        else:
            raise FileNotFoundError(f"{a} is neither a notebook nor a folder")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write student versions of the notebooks: solutions replaced by stubs, "
        "outputs cleared."
    )
    parser.add_argument("sources", nargs="+", type=Path, help="notebooks or folders")
    parser.add_argument("dest", type=Path, help="output folder (created if needed)")
    parser.add_argument(
        "--no-answers",
        action="store_true",
        help="also replace the <details> Answer blocks (for graded labs)",
    )
    args = parser.parse_args(argv)
    try:
        sources = _sources(args.sources)
    except FileNotFoundError as err:
        print(f"make_student: {err}", file=sys.stderr)
        return 1
    if not sources:
        print(
            f"make_student: no notebooks found in {', '.join(map(str, args.sources))}",
            file=sys.stderr,
        )
        return 1
    args.dest.mkdir(parents=True, exist_ok=True)
    for src in sources:
        nb = nbformat.read(src, as_version=4)
        try:
            student = student_version(nb, answers=not args.no_answers)
        except RuntimeError as err:  # unbalanced or nested solution markers
            print(f"make_student: {src}: {err}", file=sys.stderr)
            return 1
        nbformat.validate(student)
        n_code = sum(
            c.source.count("# YOUR CODE HERE") for c in student.cells if c.cell_type == "code"
        )
        n_text = sum(c.source.count(TEXT_STUB) for c in student.cells if c.cell_type == "markdown")
        out = args.dest / src.name
        nbformat.write(student, out)
        print(f"{src.name}: {n_code} code and {n_text} text solution(s) cleared -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
