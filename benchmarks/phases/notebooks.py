"""``notebooks``: seconds per notebook and in total, with OMP_NUM_THREADS=1 and =2.

Temporary copies of the notebooks are executed by ``tools/run_notebooks.py`` (one fresh
kernel per notebook, full fidelity); the committed notebooks are never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..formatting import fmt
from ..harness import log

ROOT = Path(__file__).resolve().parents[2]


def notebook_paths() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def stated_run_time(path: Path) -> float | None:
    """The ``**Run time:** about N s`` a notebook states for itself."""
    m = re.search(r"Run time:\**\s*about\s*(\d+(?:\.\d+)?)\s*s", path.read_text())
    return float(m.group(1)) if m else None


def _run_one(path: Path, work: Path, env: dict, timeout: int) -> dict:
    cmd = [sys.executable, str(ROOT / "tools" / "run_notebooks.py"),
           str(work / "notebooks" / path.name)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True,
                          timeout=timeout)
    wall = time.perf_counter() - t
    m = re.search(rf"{re.escape(path.name)}\s+([\d.]+) s", proc.stdout)
    entry = {"seconds": float(m.group(1)) if m else None, "process_s": wall,
             "ok": proc.returncode == 0 and m is not None}
    if not entry["ok"]:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        entry["error"] = " | ".join(tail)[-400:]
    return entry


def _run_all(paths: list[Path], tmp: Path, threads: int, table: dict, timeout: int) -> float:
    """Run every notebook on copies in ``tmp`` with ``threads`` threads; the total seconds."""
    work = tmp / f"threads{threads}"
    (work / "figures").mkdir(parents=True)  # figures_dir() finds this, not the repo's
    shutil.copytree(ROOT / "notebooks", work / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    # the kernels import this checkout's vi_helpers (an environment variable of the
    # child processes, not a change to this process's import path)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONHASHSEED="0",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    total = 0.0
    for p in paths:
        entry = _run_one(p, work, env, timeout)
        table[p.name][f"threads{threads}"] = entry
        if entry["seconds"] is not None:
            total += entry["seconds"]
        log(f"  OMP_NUM_THREADS={threads} {p.name:35s} "
            f"{fmt(entry['seconds'], '.1f', ' s') if entry['ok'] else 'FAILED'}")
    return total


def run(ctx) -> dict:
    paths = notebook_paths()
    settings = [int(t) for t in ctx.args.notebook_threads.split(",") if t]
    table: dict[str, dict] = {p.name: {"stated_s": stated_run_time(p)} for p in paths}
    with tempfile.TemporaryDirectory(prefix="vi-bench-nb-") as tmp:
        totals = {f"threads{n}": _run_all(paths, Path(tmp), n, table, ctx.args.notebook_timeout)
                  for n in settings}
    return {
        "notebooks": table,
        "total_s": totals,
        "n_notebooks": len(paths),
        "all_ok": all(e.get(f"threads{n}", {}).get("ok", False)
                      for e in table.values() for n in settings) if paths else False,
        "how": ("tools/run_notebooks.py on temporary copies (committed notebooks untouched), "
                "one fresh kernel per notebook, full fidelity"),
    }


def to_markdown(result: dict) -> list[str]:
    keys = sorted({k for e in result["notebooks"].values() for k in e if k.startswith("threads")})
    out = ["## Course run time (full fidelity)", "",
           "| notebook | stated | " + " | ".join(f"OMP_NUM_THREADS={k[7:]}" for k in keys)
           + " |", "|---|---|" + "---|" * len(keys)]
    for name, e in result["notebooks"].items():
        cells = [fmt(e.get(k, {}).get("seconds"), ".1f", " s") if e.get(k, {}).get("ok")
                 else "FAILED" for k in keys]
        out.append(f"| {name} | {fmt(e.get('stated_s'), '.0f', ' s')} | "
                   + " | ".join(cells) + " |")
    out.append("| **total** | | " + " | ".join(
        fmt(result["total_s"].get(k), ".0f", " s") for k in keys) + " |")
    out += ["", result["how"] + ".", ""]
    return out
