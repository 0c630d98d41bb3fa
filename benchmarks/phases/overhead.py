"""``overhead``: what ``vi_helpers.train_model`` spends per step beyond a lean loop, and on what.

The lean loop does the same arithmetic (tensor minibatches, BCE on logits, analytic KL,
the trainer's Adam) without the trainer's per-batch checks, guard and bookkeeping; the
two are timed alternately, best of several. Then each per-batch extra of the trainer is
timed on its own.
"""

from __future__ import annotations

import math
import time

import torch

from vi_helpers import train_model
from vi_helpers.data import dynamic_binarize
from vi_helpers.train import make_adam

from ..harness import new_model

BATCH = 128


def _lean_epoch(model, sub: torch.Tensor, seed: int) -> None:
    """One epoch of the trainer's arithmetic, written out without its checks."""
    opt = make_adam(list(model.parameters()), 1e-3)  # the trainer's Adam
    enc, dec = model.encoder, model.decoder.decoder
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        order = torch.randperm(sub.shape[0])
        total = torch.zeros((), dtype=torch.float64)
        for start in range(0, sub.shape[0], BATCH):
            xb = sub.index_select(0, order[start:start + BATCH])
            xb = (torch.rand_like(xb) < xb).to(xb.dtype)  # the trainer's binarization
            h = enc.encoder(xb)
            mu, log_var = enc.mean(h), enc.log_var(h)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
            rec = torch.nn.functional.binary_cross_entropy_with_logits(
                dec(z), xb, reduction="sum")
            kl = 0.5 * (mu.pow(2) + log_var.exp() - 1.0 - log_var).sum()
            loss = (rec + kl) / xb.shape[0]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
        float(total)


def _step_times(sub: torch.Tensor, seed: int, reps: int) -> tuple[float, float]:
    """Seconds per step of ``train_model`` and of the lean loop: best of alternating reps."""
    n_steps = sub.shape[0] // BATCH

    def timed(fn) -> float:
        model = new_model(seed)
        t = time.perf_counter()
        fn(model)
        return (time.perf_counter() - t) / n_steps

    trainer_s, lean_s = [], []
    for _ in range(reps):
        trainer_s.append(timed(lambda m: train_model(
            m, sub, 1, 1e-3, batch_size=BATCH, transform=dynamic_binarize, seed=seed,
            progress=False)))
        lean_s.append(timed(lambda m: _lean_epoch(m, sub, seed)))
    return min(trainer_s), min(lean_s)


def _per_call(fn, n: int) -> float:
    fn()
    best = math.inf
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t) / n)
    return best


def _extras(sub: torch.Tensor, seed: int, n: int) -> dict:
    """Microseconds per call of each per-batch extra a guarded, checked step could pay."""
    model = new_model(seed)
    params = list(model.parameters())
    last_good = [p.detach().clone() for p in params]
    xb = torch.bernoulli(sub[:BATCH])
    with torch.no_grad():
        x_hat, mean, log_var = model(xb)
        loss = model.loss_function(xb, x_hat, mean, log_var)
    enc, dec = model.encoder, model.decoder.decoder

    def copy_weights():
        with torch.no_grad():
            for buf, p in zip(last_good, params, strict=True):
                buf.copy_(p)

    @torch.no_grad()
    def raw_forward():
        h = enc.encoder(xb)
        mu, lv = enc.mean(h), enc.log_var(h)
        dec(mu + torch.randn_like(mu) * torch.exp(0.5 * lv))

    @torch.no_grad()
    def raw_loss():
        rec = torch.nn.functional.binary_cross_entropy_with_logits(
            x_hat, xb, reduction="none").sum(-1)
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)
        (rec.mean() + kl.mean())

    @torch.no_grad()
    def checked_loss():
        model.loss_function(xb, x_hat, mean, log_var, return_terms=True)

    def timed(fn) -> float:
        return _per_call(fn, n) * 1e6

    return {
        "last_good_copy_us": timed(copy_weights),
        "isfinite_loss_us": timed(lambda: bool(torch.isfinite(loss))),
        "forward_checks_us": timed(torch.no_grad()(lambda: model(xb))) - timed(raw_forward),
        "loss_checks_and_terms_us": timed(checked_loss) - timed(raw_loss),
        "dynamic_binarize_checks_us": (timed(lambda: dynamic_binarize(xb))
                                       - timed(lambda: (torch.rand_like(xb) < xb).to(xb.dtype))),
    }


def run(ctx) -> dict:
    n_steps = 8 if ctx.smoke else 150
    sub = ctx.data.train[: BATCH * n_steps]
    n_steps = sub.shape[0] // BATCH
    sub = sub[: BATCH * n_steps]
    seed = ctx.args.seed
    t_tr, t_lean = _step_times(sub, seed, 2 if ctx.smoke else 5)
    extras = _extras(sub, seed, 20 if ctx.smoke else 300)
    return {
        "batch_size": BATCH,
        "steps": n_steps,
        "trainer_step_ms": t_tr * 1e3,
        "lean_step_ms": t_lean * 1e3,
        "overhead_ms": (t_tr - t_lean) * 1e3,
        "overhead_fraction": (t_tr - t_lean) / t_tr,
        "extras_us": {k: round(v, 1) for k, v in extras.items()},
        "note": ("lean = the same arithmetic (tensor minibatches, BCE on logits, analytic KL, "
                 "Adam) without the trainer's per-batch checks, weight backup and bookkeeping; "
                 "best of alternating repetitions"),
    }


def to_markdown(result: dict) -> list[str]:
    ex = result["extras_us"]
    return ["## Trainer overhead (batch 128)", "",
            f"`train_model` {result['trainer_step_ms']:.2f} ms/step vs a lean loop "
            f"{result['lean_step_ms']:.2f} ms/step: {result['overhead_ms']:.2f} ms "
            f"({100 * result['overhead_fraction']:.0f}%). Per-batch extras timed alone "
            "(microseconds): " + ", ".join(f"{k} {v:.0f}" for k, v in ex.items()) + ".", ""]
