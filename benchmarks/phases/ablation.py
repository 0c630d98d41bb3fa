"""``ablation``: each training choice's effect on time-to-105.

Loop choices (BCE on logits, no per-batch sync, tensor minibatches, fused Adam, the
vi_helpers trainer) leave the arithmetic of training unchanged, so the number of epochs
to the target is the tutorial loop's; each is timed for one epoch, alternating with an
epoch of the tutorial loop, and its time-to-target is estimated as epochs x s/epoch.
Optimization choices (batch size, learning rate, schedule) change the number of epochs
and are run to the target with ``train_model``, from the same initial weights.
"""

from __future__ import annotations

import copy
import time

import torch

from vi_helpers import train_model
from vi_helpers.data import dynamic_binarize
from vi_helpers.train import make_adam

from .. import idiomatic
from ..config import VARIANTS, settings_str
from ..formatting import curve_str, fmt, fmt_s
from ..harness import log, make_batches, median, new_model, run_idiomatic, run_settings


class _Epochs:
    """One timed epoch of the tutorial loop with single choices switched, or of the trainer,
    each from the same initial weights ``init``."""

    def __init__(self, ctx, init):
        self.init, self.seed, self.x = init, ctx.args.seed, ctx.data.train

    def loop(self, loader: str, fused: bool = False, **kw) -> float:
        model = copy.deepcopy(self.init)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            batches = make_batches(self.x, loader, 128, self.seed)
            opt = (make_adam(list(model.parameters()), 1e-3) if fused
                   else torch.optim.Adam(model.parameters(), lr=1e-3))
            t = time.perf_counter()
            idiomatic.train_epoch(model, batches, opt, **kw)
            return time.perf_counter() - t

    def trainer(self, mixed_precision=None) -> float:
        model = copy.deepcopy(self.init)
        t = time.perf_counter()
        train_model(model, self.x, 1, 1e-3, batch_size=128, transform=dynamic_binarize,
                    seed=self.seed, progress=False, mixed_precision=mixed_precision)
        return time.perf_counter() - t

    def steps(self) -> list:
        """The cumulative loop choices, each ``(label, a function timing one epoch)``."""
        loop = self.loop
        return [
            ("+ BCE on logits", lambda: loop("dataloader", logits=True, sync=True)),
            ("+ no per-batch .item() (one sync per epoch)",
             lambda: loop("dataloader", logits=True, sync=False)),
            ("+ tensor minibatches (randperm + index_select) instead of a DataLoader",
             lambda: loop("tensor", logits=True, sync=False)),
            ("+ fused Adam (`torch.optim.Adam(fused=True)`, one kernel for all parameters)",
             lambda: loop("tensor", fused=True, logits=True, sync=False)),
            ("+ binarize as `rand < x` instead of `torch.bernoulli(x)` (the same law)",
             lambda: loop("tensor", fused=True, logits=True, sync=False, binarize="uniform")),
            ("vi_helpers.train_model (all of the above, plus its checks and NaN guard)",
             self.trainer),
            ("vi_helpers.train_model + bfloat16 autocast (`mixed_precision=torch.bfloat16`)",
             lambda: self.trainer(torch.bfloat16)),
        ]


def _loop_rows(ctx, epochs: _Epochs, base: dict, n_timed: int) -> list[dict]:
    base_epochs = base["ttq_epochs"]
    # contention only adds time: the fastest epoch is the estimate that spikes do not move
    base_fast = min(base["epoch_s"]) if base["epoch_s"] else None
    rows = [{"choice": "tutorial loop: DataLoader, sigmoid + BCE, .item() every batch",
             "epoch_s": base_fast, "relative_epoch_time": 1.0, "epochs_to_target": base_epochs,
             "ttq_s": base_fast * base_epochs if base_fast and base_epochs else None,
             "measured_ttq_s": base["ttq_s"], "measured": False}]
    log(f"  {rows[0]['choice']}: {fmt_s(rows[0]['ttq_s'])} (epoch {base_epochs}; "
        f"measured {fmt_s(base['ttq_s'])})")
    for label, fn in epochs.steps():
        refs, times = [], []
        for _ in range(n_timed):  # alternate with the tutorial loop: drift cancels
            refs.append(epochs.loop("dataloader", logits=False, sync=True))
            times.append(fn())
        rel = min(times) / min(refs)  # fastest against fastest: robust to load spikes
        est = rel * base_fast if base_fast else None
        rows.append({"choice": label, "epoch_s": est, "relative_epoch_time": rel,
                     "epochs_to_target": base_epochs,
                     "ttq_s": est * base_epochs if est and base_epochs else None,
                     "timed_epochs_s": times, "tutorial_epochs_s": refs, "measured": False})
        log(f"  {label}: x{rel:.3f} s/epoch -> {fmt_s(rows[-1]['ttq_s'])} (estimated)")
    return rows


def _row(label: str, run_: dict, *, measured: bool) -> dict:
    fastest = min(run_["epoch_s"]) if run_["epoch_s"] else None
    return {
        "choice": label,
        "measured": measured,
        "epoch_s": median(run_["epoch_s"]),
        "fastest_epoch_s": fastest,
        "epochs_to_target": run_["ttq_epochs"],
        "ttq_s": run_["ttq_s"],
        "ttq_robust_s": fastest * run_["ttq_epochs"] if fastest and run_["ttq_epochs"] else None,
        "curve": [round(p["test_nelbo"], 2) for p in run_["points"]],
    }


def _opt_rows(ctx, init, ttq: dict | None) -> list[dict]:
    """The best settings, then one change at a time, each ``train_model`` run to the target."""
    best, seed = ctx.best, ctx.args.seed
    if ttq and ttq["runs"]["vi_helpers"]:
        best_run = ttq["runs"]["vi_helpers"][0]
    else:
        best_run = run_settings(ctx, copy.deepcopy(init), seed, best)
    rows = [_row(f"best settings: {settings_str(best)}", best_run, measured=True)]
    log(f"  {rows[0]['choice']}: {fmt_s(best_run['ttq_s'])} (epoch {best_run['ttq_epochs']})")
    for label, change in VARIANTS:
        settings = dict(best, **change)
        if settings == best:
            continue
        if ctx.smoke:
            settings["n_epochs"] = min(settings.get("n_epochs") or 3, 3)
        run_ = run_settings(ctx, copy.deepcopy(init), seed, settings, label=label[:12])
        rows.append(_row(label, run_, measured=True))
        log(f"  {label}: {fmt_s(run_['ttq_s'])} (epoch {run_['ttq_epochs']}); "
            f"-ELBO per epoch: {curve_str(run_)}")
    return rows


def run(ctx) -> dict:
    seed = ctx.args.seed
    init = new_model(seed)
    ttq = ctx.results.get("ttq") if "ttq" in ctx.ran else None
    # the tutorial loop at its settings, run to the target (taken from ttq if it just ran)
    if ttq and ttq["runs"]["idiomatic"]:
        base = ttq["runs"]["idiomatic"][0]
    else:
        base = run_idiomatic(copy.deepcopy(init), ctx.data, n_epochs=ctx.max_epochs, seed=seed,
                             target=ctx.target, stop_at_target=True)
    n_timed = 1 if ctx.smoke else ctx.args.ablation_epochs
    loop_rows = _loop_rows(ctx, _Epochs(ctx, init), base, n_timed)
    opt_rows = _opt_rows(ctx, init, ttq)
    trainer_rel = next(r["relative_epoch_time"] for r in loop_rows
                       if r["choice"].startswith("vi_helpers.train_model (all"))
    base_s = median(base["epoch_s"])
    return {
        "loop_rows": loop_rows,
        "opt_rows": opt_rows,
        "baseline_ttq_s": base["ttq_s"],
        "epoch_s_at_128": {"idiomatic": base_s,
                           "vi_helpers": trainer_rel * base_s if base_s else None},
        "note": ("loop rows: fastest of their epochs / fastest of the tutorial epochs timed in "
                 f"alternation with them ({n_timed} pair(s) each), times the fastest epoch of "
                 "the tutorial run; time-to-target = the tutorial's epochs-to-target x s/epoch. "
                 "Optimization rows: train_model runs to the target from the same weights"),
    }


def to_markdown(result: dict) -> list[str]:
    out = ["## Ablation: which choices matter for time-to-105", "",
           "Loop choices, at the tutorial's batch 128 and Adam 1e-3 (cumulative). They do "
           "not change the arithmetic, so time-to-target = the tutorial loop's "
           "epochs-to-target x s/epoch, where s/epoch = the tutorial run's fastest epoch x "
           "(fastest epoch with the choice / fastest tutorial epoch, timed alternately):",
           "",
           "| choice | s/epoch | epochs to target | time to target |",
           "|---|---|---|---|"]
    for r in result["loop_rows"]:
        rel = r.get("relative_epoch_time")
        out.append(f"| {r['choice']} | {fmt(r['epoch_s'], '.2f')}"
                   + (f" (x{rel:.2f})" if rel else "") + f" | "
                   f"{fmt(r['epochs_to_target'], 'd')} | {fmt(r['ttq_s'], '.1f', ' s')}"
                   + ("" if r["measured"] else " (est.)") + " |")
    out += ["", "Optimization choices with `vi_helpers.train_model`, one change at a "
            "time from the best settings, each run to the target from the same "
            "initial weights:", "",
            "| choice | s/epoch: median (fastest) | epochs to target | time to target: "
            "measured (epochs x fastest) | -ELBO per epoch |",
            "|---|---|---|---|---|"]
    for r in result["opt_rows"]:
        out.append(f"| {r['choice']} | {fmt(r['epoch_s'], '.2f')} "
                   f"({fmt(r.get('fastest_epoch_s'), '.2f')}) | "
                   f"{fmt(r['epochs_to_target'], 'd')} | {fmt(r['ttq_s'], '.1f', ' s')} "
                   f"({fmt(r.get('ttq_robust_s'), '.1f', ' s')}) | "
                   + ", ".join(f"{v:.1f}" for v in r["curve"]) + " |")
    out.append("")
    return out
