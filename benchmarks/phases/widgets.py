"""``widgets``: in-kernel widget update latency, measured now.

With ``benchmarks/widget_latency.py``'s kernel part (a fresh kernel, every widget,
>= 200 updates per case; a smoke run does 20). The browser round trip needs Chromium
and JupyterLab, so it is not rerun here: it is quoted from
``benchmarks/widget_latency.json``.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from .. import widget_latency
from ..formatting import fmt
from ..harness import log

LATENCY_JSON = Path(widget_latency.__file__).with_name("widget_latency.json")


def _browser() -> tuple[dict, str | None]:
    """The browser round trip from the last full ``widget_latency`` run, and its date."""
    if not LATENCY_JSON.is_file():
        return {}, None
    browser = json.loads(LATENCY_JSON.read_text()).get("browser_round_trip") or {}
    date = datetime.datetime.fromtimestamp(
        LATENCY_JSON.stat().st_mtime, datetime.UTC).replace(microsecond=0).isoformat()
    return browser, date


def run(ctx) -> dict:
    n_updates = 20 if ctx.smoke else 300
    kernel = widget_latency.measure_in_kernel(n_updates)
    cases = {name: {k: c.get(k) for k in ("median_ms", "p90_ms", "cpu_median_ms")}
             for name, c in kernel.items()}
    for name, c in cases.items():
        log(f"  {name:44s} median {c['median_ms']:6.2f} ms, p90 {c['p90_ms']:6.2f} ms")
    explorer = kernel["LatentExplorer slider"]
    browser, browser_date = _browser()
    vae_medians = [kernel[c]["median_ms"] for c in widget_latency.VAE_CASES if c in kernel]
    return {
        "source": f"benchmarks/widget_latency.py in-kernel part, {n_updates} updates per case",
        "case": "LatentExplorer slider",
        "median_ms": explorer["median_ms"],
        "p90_ms": explorer["p90_ms"],
        "cpu_median_ms": explorer.get("cpu_median_ms"),
        "cases": cases,
        "target_ms": widget_latency.TARGET_KERNEL_MS,
        "vae_widgets_met": all(m <= widget_latency.TARGET_KERNEL_MS for m in vae_medians),
        "browser_median_ms": browser.get("load_median_ms", browser.get("src_median_ms")),
        "browser_p90_ms": browser.get("load_p90_ms", browser.get("src_p90_ms")),
        "browser_source": (f"benchmarks/widget_latency.json ({browser_date})"
                           if browser_date else None),
    }


def to_markdown(result: dict) -> list[str]:
    out = ["## Widgets", "",
           f"In-kernel update latency, measured in this run by {result['source']} (a fresh "
           "kernel, one thread; the time from setting a control to the new PNG in the "
           f"`Image` widget). Target: median <= {result.get('target_ms')} ms for the VAE "
           f"image widgets ({'met' if result.get('vae_widgets_met') else 'not met by all'}). "
           f"Browser round trip (key press to new image, headless Chromium): median "
           f"{fmt(result.get('browser_median_ms'), '.0f')} ms, p90 "
           f"{fmt(result.get('browser_p90_ms'), '.0f')} ms, from {result.get('browser_source')} "
           "(not rerun here).", "",
           "| case | median ms | p90 ms | CPU median ms |", "|---|---|---|---|"]
    for case, v in (result.get("cases") or {}).items():
        out.append(f"| {case} | {fmt(v.get('median_ms'), '.2f')} | "
                   f"{fmt(v.get('p90_ms'), '.2f')} | {fmt(v.get('cpu_median_ms'), '.2f')} |")
    out.append("")
    return out
