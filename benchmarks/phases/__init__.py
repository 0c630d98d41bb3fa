"""The benchmark's phases, one module each, run in the order of ``config.PHASES``.

Every phase module offers ``run(ctx) -> dict`` (the result stored under its name in
``results.json``) and ``to_markdown(result) -> list[str]`` (its section of
``results.md``, without the closing line naming when and how it ran, which
``benchmarks.report`` adds). A new phase goes here and into ``config.PHASES``.
"""

from __future__ import annotations

from . import ablation, env, iwae, long, notebooks, overhead, peak, ppca, ttq, widgets

MODULES = {
    "env": env,
    "peak": peak,
    "ttq": ttq,
    "ablation": ablation,
    "overhead": overhead,
    "long": long,
    "iwae": iwae,
    "ppca": ppca,
    "widgets": widgets,
    "notebooks": notebooks,
}
