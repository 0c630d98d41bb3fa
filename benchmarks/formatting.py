"""How numbers are written in the log and in ``results.md``."""

from __future__ import annotations

import math


def fmt_s(seconds: float | None) -> str:
    """``12.3 s`` below two minutes, ``4.5 min`` above; ``n/a`` for a missing value."""
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def fmt(value, spec: str = ".1f", unit: str = "") -> str:
    """``value`` in format ``spec`` followed by ``unit``; ``n/a`` if missing, yes/no for a bool."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:{spec}}{unit}"


def met(flag) -> str:
    return {True: "met", False: "missed", None: "n/a"}[flag]


def pct(x):
    return None if x is None else 100 * x


def curve_str(run: dict) -> str:
    """The test -ELBO after each epoch of a run, ``.2f`` and comma-separated."""
    return ", ".join(f"{p['test_nelbo']:.2f}" for p in run["points"])
