"""Latency of the interactive widgets: in the kernel, and slider-to-pixels in a browser.

usage::

    python -m benchmarks.widget_latency                 # both parts, writes benchmarks/widget_latency.json
    python -m benchmarks.widget_latency --skip-browser  # kernel part only
    python -m benchmarks.widget_latency --updates 500 --moves 60

1. **In the kernel.** A fresh IPython kernel (``jupyter_client``; the widgets'
   comm messages really are serialized and sent on its ZMQ socket, though no
   frontend listens) builds every widget of ``vi_helpers.widgets`` and changes one
   control at a time, >= 200 times per case. A callback runs synchronously when a
   trait is set, so the time of ``slider.value = v`` is the time until
   ``Image.value`` holds the new PNG (and its update message has been sent). Wall
   time and the thread's CPU time are recorded: on a shared machine the wall time
   includes waiting for a core, the CPU time does not. Each case also checks that
   the image changed.
2. **In a browser.** JupyterLab (started by ``tools/labserver.py``, the launcher
   of ``tests/test_browser.py`` too) runs ``tests/browser_fixture.ipynb`` (a ``LatentExplorer``
   linked to a ``LatentMap``) in headless Chromium. One slider handle is focused
   and ArrowRight/ArrowLeft pressed >= 30 times, one at a time. In the page, a
   capturing ``keydown`` listener stamps ``performance.now()`` and a
   ``MutationObserver`` on the decoded image's ``src`` stamps the arrival of the
   new picture (and the ``load`` event when it is decoded). The round trip covers:
   key -> noUiSlider -> widget model -> websocket -> server -> ZMQ -> kernel
   callback (decode, PNG, map marker) -> back -> blob URL.

Targets: in-kernel median <= 2 ms for the VAE image widgets (LatentExplorer,
LatentMap, Interpolation, PriorSampler); browser round trip median <= 70 ms.
Concept widgets with Matplotlib plots are reported too; they are allowed to be
slower (a full figure redraw, when an axis limit changes, costs tens of ms).

Prints a table and writes ``benchmarks/widget_latency.json``; the first
``*median*``/``*p90*`` keys are the LatentExplorer's (the benchmark's ``widgets`` phase reads them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from .machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "widget_latency.json"
TARGET_KERNEL_MS = 2.0
TARGET_BROWSER_MS = 70.0
VAE_CASES = (
    "LatentExplorer slider",
    "LatentExplorer slider + linked LatentMap",
    "LatentMap example slider",
    "Interpolation t slider",
    "PriorSampler new samples",
)


def _stats(wall: list[float], cpu: list[float] | None = None) -> dict:
    wall_ms = sorted(1e3 * w for w in wall)
    out = {
        "n": len(wall_ms),
        "median_ms": round(statistics.median(wall_ms), 3),
        "p90_ms": round(wall_ms[min(len(wall_ms) - 1, int(0.9 * len(wall_ms)))], 3),
    }
    if cpu:
        out["cpu_median_ms"] = round(1e3 * statistics.median(cpu), 3)
    return out


def _triangle(n: int, lo: float, hi: float, period: int = 97) -> list[float]:
    """n values sweeping lo -> hi -> lo, consecutive values always different."""
    out = []
    for i in range(n):
        phase = i % (2 * period)
        frac = phase / period if phase <= period else 2 - phase / period
        out.append(lo + (hi - lo) * frac)
    return out


def _timed_updates(set_value, values, image) -> dict:
    """Set each of ``values`` with ``set_value``; the stats of the call times and how often
    ``image`` changed."""
    wall, cpu, changed = [], [], 0
    for v in values:
        before = image.value
        t0, c0 = time.perf_counter(), time.thread_time()
        set_value(v)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
        changed += image.value != before
    return {**_stats(wall, cpu), "changed": changed}


def _setter(widget, name="value", cast=float):
    return lambda v: setattr(widget, name, cast(v))


def _vae_cases(n_updates: int, n_epochs: int) -> dict:
    """The VAE image widgets on the model of ``tests/browser_fixture.ipynb``."""
    from vi_helpers import VariationalAutoencoder, train_model
    from vi_helpers import widgets as vw
    from vi_helpers.data import load_digits

    x, _ = load_digits()
    x_test, y_test = load_digits(split="test")
    model = VariationalAutoencoder(64, 64, 2, likelihood="bernoulli")
    train_model(model, x, n_epochs=n_epochs, batch_size=32, learning_rate=3e-3,
                kl_warmup_epochs=10, seed=0, progress=False)
    results = {}
    ex = vw.LatentExplorer(model)
    results["LatentExplorer slider"] = _timed_updates(
        _setter(ex.sliders[0]), _triangle(n_updates, -2.5, 2.5), ex.image)
    ex2 = vw.LatentExplorer(model)
    lm = vw.LatentMap(model, x_test, y_test, explorer=ex2)
    results["LatentExplorer slider + linked LatentMap"] = _timed_updates(
        _setter(ex2.sliders[1]), _triangle(n_updates, -2.5, 2.5), lm.map_image)
    results["LatentMap example slider"] = _timed_updates(
        _setter(lm.index_slider, cast=int),
        [1 + (i % (len(x_test) - 1)) for i in range(n_updates)], lm.original_image)
    it = vw.Interpolation(model, x_test[0], x_test[1])
    results["Interpolation t slider"] = _timed_updates(
        _setter(it.t_slider), [round(v, 2) for v in _triangle(n_updates, 0.0, 1.0, 100)],
        it.image)
    ps = vw.PriorSampler(model)
    results["PriorSampler new samples"] = _timed_updates(
        lambda _: ps.button.click(), range(n_updates), ps.image)
    return results


def _concept_cases(n_updates: int) -> dict:
    """The concept explorers (Matplotlib plots) and the beta explorer."""
    import torch

    from vi_helpers import widgets as vw
    from vi_helpers.exact_models import ConjugateGaussianModel

    results = {}
    kx = vw.KLExplorer()
    results["KLExplorer mu slider"] = _timed_updates(
        _setter(kx.mu_slider), _triangle(n_updates, -4.0, 4.0), kx.plot)
    results["KLExplorer sigma slider"] = _timed_updates(
        _setter(kx.sigma_slider), _triangle(n_updates, 0.3, 3.0), kx.plot)
    eg = vw.ELBOGapExplorer(
        ConjugateGaussianModel(0.0, 1.0, 1.0), torch.tensor([0.5, 1.2, 0.9, 1.5]))
    results["ELBOGapExplorer mean slider"] = _timed_updates(
        _setter(eg.mu_slider), _triangle(n_updates, eg.mu_slider.min, eg.mu_slider.max), eg.plot)
    ev = vw.EstimatorVarianceExplorer()
    results["EstimatorVarianceExplorer samples slider"] = _timed_updates(
        _setter(ev.n_slider, cast=int),
        [int(v) // 10 * 10 for v in _triangle(n_updates, 20, 1000)], ev.plot)
    results["EstimatorVarianceExplorer sigma slider"] = _timed_updates(
        _setter(ev.sigma_slider), _triangle(n_updates, 0.2, 2.5), ev.plot)
    g = torch.Generator().manual_seed(0)
    sweep = [{"beta": b, "rate": 10 / (1 + b), "distortion": 20 + b,
              "reconstructions": torch.rand(16, 64, generator=g)}
             for b in (0.1, 0.5, 1.0, 2.0, 4.0, 8.0)]
    bx = vw.BetaExplorer(sweep)
    results["BetaExplorer beta slider"] = _timed_updates(
        _setter(bx.slider, cast=int), [(i + 1) % 6 for i in range(n_updates)], bx.image)
    return results


def in_kernel_latency(n_updates: int = 300, n_epochs: int = 30) -> dict:
    """Time every widget's update in *this* process (call it inside a kernel).

    Returns ``{case: {"n", "median_ms", "p90_ms", "cpu_median_ms", "changed"}}``.
    """
    return {**_vae_cases(n_updates, n_epochs), **_concept_cases(n_updates)}


# -- part 1: run the measurement inside a real IPython kernel ------------------------------------


def measure_in_kernel(n_updates: int, timeout: float = 600.0) -> dict:
    from jupyter_client.manager import start_new_kernel

    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    # the kernel imports this checkout's packages (an environment variable of the kernel
    # process, not a change to this process's import path)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(REPO))
    try:
        code = (
            "import json\nfrom benchmarks import widget_latency\n"
            f"print('RESULT ' + json.dumps(widget_latency.in_kernel_latency({n_updates})))\n"
        )
        lines: list[str] = []
        reply = kc.execute_interactive(
            code,
            timeout=timeout,
            output_hook=lambda msg: (
                lines.append(msg["content"].get("text", ""))
                if msg["msg_type"] == "stream"
                else None
            ),
        )
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"kernel measurement failed: {reply['content'].get('evalue')}")
        text = "".join(lines)
        payload = next(ln for ln in text.splitlines() if ln.startswith("RESULT "))
        return json.loads(payload[len("RESULT ") :])
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# -- part 2: keyboard slider moves in Chromium --------------------------------------------------

_INSTALL_PROBE = """(handle) => {
  const img = document.querySelector('.vi-latent-explorer img.vi-decoded-image');
  const probe = {t0: null, src: [], load: [], missed: 0};
  window.__viProbe = probe;
  let pending = null;
  handle.addEventListener('keydown', () => { probe.t0 = performance.now(); pending = probe.t0; }, true);
  new MutationObserver(() => {
    if (probe.t0 !== null) { probe.src.push(performance.now() - probe.t0); probe.t0 = null; }
  }).observe(img, {attributes: true, attributeFilter: ['src']});
  img.addEventListener('load', () => {
    if (pending !== null) { probe.load.push(performance.now() - pending); pending = null; }
  });
  return true;
}"""


def measure_browser(n_moves: int) -> dict:
    from tools.labserver import (
        FIXTURE_NOTEBOOK,
        JupyterLabServer,
        browser_missing_reason,
        launch_chromium,
        open_and_run,
    )

    reason = browser_missing_reason()
    if reason:
        return {"skipped": reason}
    from playwright.sync_api import sync_playwright

    server = JupyterLabServer([FIXTURE_NOTEBOOK])
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(20_000)
            open_and_run(page, server, FIXTURE_NOTEBOOK.name)
            explorer = page.locator(".vi-latent-explorer").first
            explorer.scroll_into_view_if_needed()
            handle = explorer.locator(".widget-slider").nth(0).locator(".noUi-handle")
            page.evaluate(_INSTALL_PROBE, handle.element_handle())
            handle.focus()
            # sweep right then left inside the slider range (0 -> +1.5 -> 0 -> ...)
            keys = ["ArrowRight"] * 30 + ["ArrowLeft"] * 30
            done = 0
            for i in range(n_moves):
                page.keyboard.press(keys[i % len(keys)])
                try:
                    page.wait_for_function(
                        f"() => window.__viProbe.src.length > {done}", timeout=5_000, polling="raf"
                    )
                    done += 1
                except Exception:  # noqa: BLE001 - unchanged image: no update came back
                    page.evaluate(
                        "() => { window.__viProbe.t0 = null; window.__viProbe.missed++; }"
                    )
                page.wait_for_timeout(60)  # let the kernel go idle before the next key
            probe = page.evaluate("() => window.__viProbe")
            chromium = browser.version
            browser.close()
    finally:
        server.stop()
    src, load = probe["src"], probe["load"]
    out = {"moves": n_moves, "missed": probe["missed"], "chromium": chromium}
    if src:
        out.update(
            {f"src_{k}": v for k, v in _stats([s / 1e3 for s in src]).items()},
        )
    if load:
        out.update({f"load_{k}": v for k, v in _stats([s / 1e3 for s in load]).items()})
    return out


# -- report ----------------------------------------------------------------------------------


def environment() -> dict:
    import ipywidgets
    import jupyterlab
    import torch

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ipywidgets": ipywidgets.__version__,
        "jupyterlab": jupyterlab.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }
    if hasattr(os, "getloadavg"):
        env["load_average_1min"] = round(os.getloadavg()[0], 2)
    env["cpu_model"] = cpu_model()
    return env


def _print_report(kernel: dict, browser: dict, result: dict, updates: int) -> None:
    vae_ok = result["targets"]["vae_widgets_in_kernel_met"]
    print(f"\nIn-kernel update latency ({updates} updates per case; wall and thread CPU time)")
    print(f"{'case':44s} {'median':>8s} {'p90':>8s} {'cpu med':>8s} {'changed':>8s}")
    for case, r in kernel.items():
        mark = " *" if case in VAE_CASES else ""
        print(
            f"{case + mark:44s} {r['median_ms']:7.2f}ms {r['p90_ms']:7.2f}ms "
            f"{r['cpu_median_ms']:7.2f}ms {r['changed']:>5d}/{r['n']}"
        )
    print(
        f"(* VAE image widgets, target median <= {TARGET_KERNEL_MS} ms: {'met' if vae_ok else 'NOT met'})"
    )
    if "src_median_ms" in browser:
        print(
            f"\nBrowser round trip, keyboard slider move -> new img src ({browser['src_n']} of "
            f"{browser['moves']} moves): median {browser['src_median_ms']:.1f} ms, "
            f"p90 {browser['src_p90_ms']:.1f} ms; to image load: median "
            f"{browser.get('load_median_ms', float('nan')):.1f} ms "
            f"(target {TARGET_BROWSER_MS} ms: {'met' if result['targets']['browser_met'] else 'NOT met'})"
        )
    else:
        print(f"\nBrowser round trip: skipped ({browser.get('skipped')})")
    env = result["environment"]
    print(
        f"load average (1 min): {env.get('load_average_1min')} before, {env.get('load_average_1min_after')} after, on {env['cpu_count']} CPUs"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--updates", type=int, default=300, help="updates per in-kernel case (>= 200)")
    ap.add_argument("--moves", type=int, default=40, help="keyboard moves in the browser (>= 30)")
    ap.add_argument("--skip-browser", action="store_true")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if args.updates < 200 or args.moves < 30:
        ap.error("--updates must be >= 200 and --moves >= 30")

    env_before = environment()
    t0 = time.perf_counter()
    kernel = measure_in_kernel(args.updates)
    browser = {"skipped": "--skip-browser"} if args.skip_browser else measure_browser(args.moves)
    env_after = environment()

    explorer = kernel["LatentExplorer slider"]
    result = {
        "in_kernel_summary": {
            "case": "LatentExplorer slider",
            "median_ms": explorer["median_ms"],
            "p90_ms": explorer["p90_ms"],
            "cpu_median_ms": explorer["cpu_median_ms"],
        },
        "in_kernel": kernel,
        "browser_round_trip": browser,
        "targets": {
            "in_kernel_median_ms": TARGET_KERNEL_MS,
            "browser_median_ms": TARGET_BROWSER_MS,
            "vae_widgets_in_kernel_met": all(
                kernel[c]["median_ms"] <= TARGET_KERNEL_MS for c in VAE_CASES),
            "browser_met": (browser.get("src_median_ms", float("inf")) <= TARGET_BROWSER_MS)
            if "src_median_ms" in browser
            else None,
        },
        "environment": {
            **env_before,
            "load_average_1min_after": env_after.get("load_average_1min"),
        },
        "seconds": round(time.perf_counter() - t0, 1),
        "command": "python -m benchmarks.widget_latency " + " ".join(argv or sys.argv[1:]),
    }
    _print_report(kernel, browser, result, args.updates)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
