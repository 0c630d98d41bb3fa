"""The report of a run: the headline summary, ``results.md``, ``results.png`` and ``results.json``.

``render_markdown(doc)`` turns a ``results.json`` document into ``results.md``: the
header, the headline figures with their anchors and goals, then each phase's own
section (``phases.<name>.to_markdown``) closed by a line naming when and how it ran.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .config import ANCHORS, ARCH, BEST, GOALS, PHASES, SCHEMA_VERSION, TARGET_NATS, epoch_flops
from .config import settings_str as _settings
from .formatting import fmt, met, pct
from .harness import log, now_iso
from .phases import MODULES


# ============================================================================ summary
def _speed_summary(results: dict) -> dict:
    """Time to quality, s/epoch and the fraction of the matmul bound."""
    ttq = results.get("ttq", {})
    e128 = (results.get("ablation", {}).get("epoch_s_at_128") or {})
    peak = (results.get("peak") or {}).get("peak_gflops")
    flops = epoch_flops(ttq.get("n_train") or 60000)
    epoch_s = dict(ttq.get("epoch_s") or {})
    ratio = ttq.get("ratio")
    fastest = ttq.get("fastest_epoch_s") or {}
    best_settings = ttq.get("best_settings") or {}
    best_is_128_fp32 = (best_settings.get("batch_size") == 128
                        and not best_settings.get("mixed_precision"))
    s = {
        "ttq_vi_helpers_s": (ttq.get("ttq_s") or {}).get("vi_helpers"),
        "ttq_idiomatic_s": (ttq.get("ttq_s") or {}).get("idiomatic"),
        "ttq_ratio": ratio,
        "ttq_ratio_goal": GOALS["ttq_ratio"],
        "ttq_goal_met": (ratio <= GOALS["ttq_ratio"]) if ratio else None,
        "ttq_vi_helpers_robust_s": (ttq.get("ttq_robust_s") or {}).get("vi_helpers"),
        "ttq_idiomatic_robust_s": (ttq.get("ttq_robust_s") or {}).get("idiomatic"),
        "ttq_ratio_robust": ttq.get("ratio_robust"),
        "fastest_epoch_s_idiomatic_128": fastest.get("idiomatic_128"),
        "fastest_epoch_s_vi_helpers_best": fastest.get("vi_helpers_best"),
        # the A runs are at batch 128 in float32 only if the best settings are
        "fastest_epoch_s_vi_helpers_128": (
            fastest.get("vi_helpers_best") if best_is_128_fp32 else None),
        # measured in the A,B runs (both at batch 128 when the best batch is 128)
        "epoch_s_idiomatic_128": epoch_s.get("idiomatic_128") or e128.get("idiomatic"),
        "epoch_s_vi_helpers_128": (epoch_s.get("vi_helpers_best") if best_is_128_fp32
                                   else e128.get("vi_helpers")),
        "epoch_s_vi_helpers_best": epoch_s.get("vi_helpers_best"),
        "epoch_gflop": flops / 1e9,
        "sgemm_peak_gflops": peak,
    }

    def frac(seconds):
        return (flops / (peak * 1e9)) / seconds if seconds and peak else None

    for key, of in (("idiomatic_128", "epoch_s_idiomatic_128"),
                    ("vi_helpers_128", "epoch_s_vi_helpers_128"),
                    ("vi_helpers_best", "epoch_s_vi_helpers_best"),
                    ("idiomatic_fastest", "fastest_epoch_s_idiomatic_128"),
                    ("vi_helpers_fastest", "fastest_epoch_s_vi_helpers_best"),
                    ("vi_helpers_128_fastest", "fastest_epoch_s_vi_helpers_128")):
        s[f"matmul_fraction_{key}"] = frac(s[of])
    return s


def _quality_summary(results: dict) -> dict:
    """The quality figures: 10-epoch -ELBO, IWAE NLL, pPCA gap, widgets, run time."""
    q = (results.get("ttq", {}).get("quality") or {})
    iw, pp = results.get("iwae", {}), results.get("ppca", {})
    wd, nb, longr = results.get("widgets", {}), results.get("notebooks", {}), results.get("long", {})
    return {
        "nelbo_10ep_idiomatic": q.get("idiomatic"),
        "nelbo_10ep_vi_helpers_best": q.get("vi_helpers_best"),
        "nelbo_10ep_anchor": ANCHORS["elbo_10_epochs"],
        "iwae_nll": iw.get("nll"),
        "iwae_k": iw.get("k"),
        "iwae_seconds": iw.get("seconds"),
        "iwae_nll_anchor": ANCHORS["iwae_nll_burda"],
        "iwae_nll_goal": GOALS["iwae_nll"],
        "iwae_goal_met": (iw["nll"] <= GOALS["iwae_nll"]) if iw.get("nll") is not None else None,
        "long_cpu_minutes": longr.get("cpu_minutes"),
        "long_epochs": (longr.get("run") or {}).get("epochs"),
        "active_units": iw.get("active_units"),
        "ppca_gap_nats": pp.get("gap_loglik"),
        "ppca_elbo_gap_nats": pp.get("gap_elbo"),
        "widget_median_ms": wd.get("median_ms"),
        "widget_p90_ms": wd.get("p90_ms"),
        "course_total_s": nb.get("total_s"),
    }


def summary(results: dict) -> dict:
    """The headline figures, each with its anchor and goal."""
    return {**_speed_summary(results), **_quality_summary(results)}


# ============================================================================= outputs
def clean(obj):
    """JSON-safe: floats rounded, NaN/inf -> None."""
    if isinstance(obj, float):
        return round(obj, 4) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


def document(results: dict, *, smoke: bool, command: str, notes: list | None = None) -> dict:
    """The ``results.json`` document of phase ``results``."""
    doc = {
        "schema": SCHEMA_VERSION,
        "smoke": smoke,
        "generated": now_iso(),
        "command": command,
        "machine": results.get("env", {}),
        "summary": summary(results),
        "phases": dict(results),
    }
    if notes:
        doc["notes"] = notes
    return clean(doc)


def write_outputs(doc: dict, out_dir: Path) -> None:
    """``results.json``, ``results.md`` and (when it can be drawn) ``results.png``."""
    (out_dir / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out_dir / "results.md").write_text(render_markdown(doc))
    try:
        from .figure import plot_results

        plot_results(doc, out_dir / "results.png")
    except Exception as err:  # a figure must not cost the numbers
        log(f"  (results.png not written: {type(err).__name__}: {err})")


# ============================================================================ markdown
def _header(doc: dict) -> list[str]:
    m = doc.get("machine") or {}
    device = (f", device {m['device']} ({m.get('device_name')}, CUDA {m.get('cuda')})"
              if m.get("device") else "")
    return [
        "# Benchmark results",
        "",
        "Written by `python -m benchmarks`; the method is in `benchmarks/README.md`."
        + (" **SMOKE RUN: tiny data, the numbers mean nothing.**" if doc.get("smoke") else ""),
        "",
        f"- Machine: {m.get('cpu_model', '?')}, {m.get('cores_available', '?')} cores, "
        f"torch {m.get('torch', '?')} ({m.get('blas', '?')}, {m.get('cpu_capability', '?')}), "
        f"{m.get('torch_threads', '?')} torch threads (OMP_NUM_THREADS in the environment: "
        f"{m.get('env_OMP_NUM_THREADS')}), Python {m.get('python', '?')}, {m.get('platform', '?')}"
        + device,
        f"- Date: {doc['generated']}",
        f"- Command: `{doc['command']}` (a phase refreshed by another command names its own "
        "below)",
        "",
        "## Headline figures",
        "",
        "| figure | value | anchor | goal | |",
        "|---|---|---|---|---|",
    ]


def _speed_rows(s: dict, best: dict, target: float) -> list[str]:
    bound = s["epoch_gflop"] / s["sgemm_peak_gflops"] if s.get("sgemm_peak_gflops") else None

    def frac(key):
        return fmt(pct(s.get(key)), ".0f", "% of the matmul bound")

    return [
        f"| seconds of training to test -ELBO <= {target:g} nats, vi_helpers.train_model "
        f"({_settings(best)}) | {fmt(s['ttq_vi_helpers_s'], '.1f', ' s')} | | | |",
        f"| same, idiomatic loop (DataLoader, batch 128, Adam 1e-3, sigmoid + BCE, .item()) | "
        f"{fmt(s['ttq_idiomatic_s'], '.1f', ' s')} | | | |",
        f"| ratio vi_helpers / idiomatic (median over A,B repetitions) | "
        f"{fmt(s['ttq_ratio'], '.2f')} | 1 | <= {GOALS['ttq_ratio']} | {met(s['ttq_goal_met'])} |",
        f"| same, contention-robust: epochs to target x fastest epoch, vi_helpers / idiomatic | "
        f"{fmt(s.get('ttq_vi_helpers_robust_s'), '.1f', ' s')} / "
        f"{fmt(s.get('ttq_idiomatic_robust_s'), '.1f', ' s')} = "
        f"{fmt(s.get('ttq_ratio_robust'), '.2f')} | | <= {GOALS['ttq_ratio']} | |",
        f"| s/epoch at batch 128, idiomatic loop: median (fastest) | "
        f"{fmt(s['epoch_s_idiomatic_128'], '.2f', ' s')} "
        f"({fmt(s.get('fastest_epoch_s_idiomatic_128'), '.2f', ' s')}) "
        f"| bound {fmt(bound, '.2f', ' s')} | | {frac('matmul_fraction_idiomatic_128')} "
        f"({fmt(pct(s.get('matmul_fraction_idiomatic_fastest')), '.0f', '%')}) |",
        f"| s/epoch at batch 128, vi_helpers.train_model, float32 (from the ablation: the "
        f"tutorial's median x the timed ratio) | "
        f"{fmt(s['epoch_s_vi_helpers_128'], '.2f', ' s')} "
        f"| bound {fmt(bound, '.2f', ' s')} | | {frac('matmul_fraction_vi_helpers_128')} |",
        f"| s/epoch with the best settings ({_settings(best)}): median (fastest) | "
        f"{fmt(s.get('epoch_s_vi_helpers_best'), '.2f', ' s')} "
        f"({fmt(s.get('fastest_epoch_s_vi_helpers_best'), '.2f', ' s')}) "
        f"| float32 bound {fmt(bound, '.2f', ' s')} | | "
        f"{frac('matmul_fraction_vi_helpers_best')} "
        f"({fmt(pct(s.get('matmul_fraction_vi_helpers_fastest')), '.0f', '%')}) |",
    ]


def _quality_rows(s: dict, best: dict) -> list[str]:
    rows = [
        f"| test -ELBO after 10 epochs, idiomatic loop | {fmt(s['nelbo_10ep_idiomatic'], '.2f')} "
        f"nats | {ANCHORS['elbo_10_epochs']} (pytorch/examples reproduction, 1 hidden layer) "
        "| | |",
        f"| test -ELBO after 10 epochs, vi_helpers.train_model ({_settings(best)}) | "
        f"{fmt(s['nelbo_10ep_vi_helpers_best'], '.2f')} nats | {ANCHORS['elbo_10_epochs']} | | |",
        f"| IWAE NLL, k={fmt(s['iwae_k'], 'd')}, full test set; model trained "
        f"{fmt(s['long_cpu_minutes'], '.1f')} CPU-min ({fmt(s['long_epochs'], 'd')} epochs) | "
        f"{fmt(s['iwae_nll'], '.2f')} nats | {ANCHORS['iwae_nll_burda']} (Burda et al. 2015, "
        f"3,280 epochs) | <= {GOALS['iwae_nll']:g} | {met(s['iwae_goal_met'])} |",
        f"| IWAE evaluation time | {fmt(s['iwae_seconds'], '.0f', ' s')} | | | |",
        f"| active units of the long-trained model (of {ARCH['latent_size']}) | "
        f"{fmt(s['active_units'], 'd')} | | | |",
        f"| pPCA max log-lik. - linear VAE exact log-lik. (digits, worst L) | "
        f"{fmt(s['ppca_gap_nats'], '.4f')} nats/image | 0 (Lucas et al. 2019) | | |",
        f"| widget update latency in the kernel, median / p90 | "
        f"{fmt(s['widget_median_ms'], '.1f')} / {fmt(s['widget_p90_ms'], '.1f')} ms | | | |",
    ]
    for key, value in (s.get("course_total_s") or {}).items():
        rows.append(f"| course run time, all notebooks, OMP_NUM_THREADS={key[7:]} | "
                    f"{fmt(value, '.0f', ' s')} | | | |")
    return rows


MODEL_AND_COMPARISON = [
    "## Model and comparison", "",
    "Both loops train the *same* model, `vi_helpers.VariationalAutoencoder(784, 400, 20, "
    "likelihood=\"bernoulli\")`, from the same initial weights: its encoder is "
    "784-400-400-(20, 20) and its decoder 20-400-400-784, i.e. **two hidden layers of "
    "400 units on each side** (pytorch/examples' \"784-400-20\" VAE has one). The loss "
    "is the same negative ELBO (Bernoulli log-likelihood + analytic KL); the loops "
    "differ only in how they train: the idiomatic loop sums the loss over the batch "
    "(Adam is invariant to that scale), squashes with sigmoid and uses "
    "`binary_cross_entropy`, a `DataLoader`, `.item()` every batch and "
    "`torch.bernoulli`; vi_helpers uses BCE on logits, batch-mean loss, tensor "
    "minibatches, one sync per epoch, the fused Adam kernel and `rand < x` "
    "binarization, and its best settings add a larger batch and bfloat16 autocast "
    "for the forward pass (the test -ELBO is always evaluated in float32).", "",
]


def _meta_line(name: str, result: dict) -> str:
    mm = result.get("_meta") or {}
    return (f"_{name}: {mm.get('date', '?')}, {mm.get('seconds', '?')} s"
            f" (estimated {mm.get('estimated_seconds')}), {mm.get('threads', '?')} threads, "
            f"load {mm.get('loadavg_before')} -> {mm.get('loadavg_after')}, "
            f"`{mm.get('command', '?')}`_")


def phase_markdown(name: str, result: dict) -> list[str]:
    """A phase's section of ``results.md``, closed by its run line (none if it has no section)."""
    if "error" in result:
        return [f"## {name}", "", f"FAILED: `{result['error']}`", "",
                _meta_line(name, result), ""]
    try:
        lines = MODULES[name].to_markdown(result)
    except (KeyError, TypeError, ValueError) as err:  # e.g. a result from an older version
        return [f"## {name}", "", f"(cannot render: {type(err).__name__}: {err}; rerun "
                f"`--only {name}`)", ""]
    return lines + [_meta_line(name, result), ""] if lines else []


def render_markdown(doc: dict) -> str:
    """``results.md`` from a ``results.json`` document."""
    s, ph = doc["summary"], doc["phases"]
    ttq = ph.get("ttq", {})
    best = ttq.get("best_settings") or BEST
    target = ttq.get("target_nats", TARGET_NATS)
    lines = _header(doc) + _speed_rows(s, best, target) + _quality_rows(s, best)
    lines += ["", "Test -ELBO: the single-sample ELBO with a fixed generator (seed 0) on the "
              "test set binarized once (seed 0). It is evaluated after every epoch with the "
              "training clock paused, so evaluation time is excluded from every training time "
              "above. Training batches are binarized afresh each time they are drawn.", ""]
    lines += MODEL_AND_COMPARISON
    for name in PHASES:
        if ph.get(name):
            lines += phase_markdown(name, ph[name])
    return "\n".join(lines) + "\n"
