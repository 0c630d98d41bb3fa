"""``long``: the benchmark model trained for ``--train-minutes`` CPU-minutes (the IWAE model).

The learning rate after each epoch is ``lr * (1 + cos(pi * p)) / 2``, where ``p`` is the
fraction of the budget used so far, and training stops at ``p = 1``; so the rate anneals
to 0 exactly when the budget runs out, however fast the machine turns out to be. ``p``
is the larger of CPU time / budget and wall time / (1.5 x budget / threads): the second
only binds on a machine so busy that the CPU budget would take too long. The trained
model is saved with ``vi_helpers.checkpoint`` into ``<out-dir>/_scratch/``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from vi_helpers import train_model
from vi_helpers.checkpoint import load_checkpoint, save_checkpoint
from vi_helpers.data import dynamic_binarize

from ..formatting import fmt, fmt_s
from ..harness import Clock, log, new_model, run_vi_helpers

CHECKPOINT = "long_model.safetensors"


def _expected_epochs(ctx, bs: int, lr: float, amp: str | None, budget_cpu: float) -> int:
    """Epochs the budget allows, from a short timed probe (only to space the evaluations)."""
    threads = torch.get_num_threads()
    x = ctx.data.train
    steps = 4 if ctx.smoke else 30
    probe = x[: bs * steps]
    t = time.perf_counter()
    train_model(new_model(ctx.args.seed + 100), probe, 1, lr, batch_size=bs,
                transform=dynamic_binarize, progress=False, device=ctx.device,
                mixed_precision=getattr(torch, amp) if amp else None)
    wall_epoch = (time.perf_counter() - t) * x.shape[0] / probe.shape[0]
    expected = max(1, int(budget_cpu / threads / max(wall_epoch, 1e-9)))
    log(f"  budget {ctx.args.train_minutes:g} CPU-min (~{fmt_s(budget_cpu / threads)} on "
        f"{threads} threads); ~{expected} epochs expected at ~{wall_epoch:.1f} s/epoch")
    return expected


def run(ctx) -> dict:
    threads = torch.get_num_threads()
    budget_cpu = ctx.args.train_minutes * 60.0
    budget_wall = 1.5 * budget_cpu / threads
    bs, lr = ctx.args.long_batch, ctx.args.long_lr
    amp = None if ctx.args.long_precision == "float32" else ctx.args.long_precision
    every = max(1, _expected_epochs(ctx, bs, lr, amp, budget_cpu) // 25)  # ~25 evaluations
    clock = Clock(ctx.device)

    def cosine_in_time(epoch: int) -> float:
        progress = max(clock.train_cpu_seconds() / budget_cpu, clock.train_seconds() / budget_wall)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    model = new_model(ctx.args.seed)
    run_ = run_vi_helpers(model, ctx.data, batch_size=bs, learning_rate=lr,
                          lr_schedule=cosine_in_time, n_epochs=1_000_000, seed=ctx.args.seed,
                          target=None, stop_at_target=False, every=every,
                          max_train_cpu_s=budget_cpu, max_train_s=budget_wall,
                          label=None if ctx.smoke else "long", clock=clock,
                          mixed_precision=amp)
    ctx.scratch.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, ctx.scratch / CHECKPOINT, metadata={"epochs": run_["epochs"]})
    log(f"  trained {run_['epochs']} epochs in {fmt_s(run_['train_s'])} "
        f"({run_['train_cpu_s'] / 60:.1f} CPU-min): test -ELBO {run_['final_test_nelbo']:.2f}")
    return {
        "budget_cpu_minutes": ctx.args.train_minutes,
        "threads": threads,
        "batch_size": bs,
        "learning_rate": lr,
        "mixed_precision": amp,
        "lr_schedule": "cosine over the time budget, updated per epoch",
        "run": run_,
        "test_nelbo": run_["final_test_nelbo"],
        "cpu_minutes": run_["train_cpu_s"] / 60,
        "wall_minutes": run_["train_s"] / 60,
        "note": ("CPU-minutes = process CPU time (all threads) while training, evaluations "
                 "excluded. lr = lr0 (1 + cos(pi p)) / 2 after each epoch, p = the fraction of "
                 "the budget used (CPU time, or wall time / (1.5 budget / threads) if larger); "
                 "training stops at p = 1"),
    }


def load_long_model(scratch: Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The model the ``long`` phase saved in ``scratch``, in evaluation mode."""
    path = scratch / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the 'long' phase first")
    return load_checkpoint(path, map_location=device).eval()


def to_markdown(result: dict) -> list[str]:
    run_ = result["run"]
    return ["## Long training (IWAE model)", "",
            f"`train_model`, batch {result['batch_size']}, Adam {result['learning_rate']:g} "
            f"annealed to 0 by a cosine schedule over the time budget"
            + (f", {result['mixed_precision']} autocast" if result.get("mixed_precision") else "")
            + "; trained "
            f"{run_['epochs']} epochs in {result['wall_minutes']:.1f} min wall, "
            f"{result['cpu_minutes']:.1f} CPU-min (budget {result['budget_cpu_minutes']:g}). "
            f"Final test -ELBO {fmt(result['test_nelbo'], '.2f')} nats. {result['note']}.", "",
            "Test -ELBO @ epoch: " + ", ".join(
                f"{p['test_nelbo']:.2f} @ {p['epoch']}" for p in run_["points"]), ""]
