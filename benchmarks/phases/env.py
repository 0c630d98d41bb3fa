"""``env``: the machine, torch build, threads and date (always recorded)."""

from __future__ import annotations

from ..machine import describe


def run(ctx) -> dict:
    return describe(ctx.device)


def to_markdown(result: dict) -> list[str]:
    """Nothing: the machine is named in the header of ``results.md``."""
    return []
