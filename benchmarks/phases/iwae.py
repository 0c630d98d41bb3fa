"""``iwae``: IWAE ``--iwae-k`` NLL on the full test set and the active units of the ``long`` model."""

from __future__ import annotations

import math
import time

import torch

from vi_helpers import evaluate

from ..config import ARCH, EVAL_SEED, decoder_macs
from ..formatting import fmt, fmt_s
from ..harness import log, test_nelbo
from .long import load_long_model


def iwae_ll(model, x: torch.Tensor, k: int, chunk: int, chunk_size: int,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """``vi_helpers.evaluate.log_likelihood_is`` over ``chunk`` images at a time, its
    ``chunk_size`` importance samples per inner step: memory ~ chunk x chunk_size x 784
    floats. ``(N,)`` log-likelihoods in nats."""
    if generator is None:
        generator = torch.Generator(device=x.device).manual_seed(EVAL_SEED)
    parts = [
        evaluate.log_likelihood_is(model, x[i:i + chunk], k=k, chunk_size=chunk_size,
                                   generator=generator)
        for i in range(0, x.shape[0], chunk)
    ]
    return torch.cat(parts)


def active_units_of(model, x: torch.Tensor) -> dict:
    count, variances = evaluate.active_units(model, x)
    return {"n": int(count), "threshold": 0.01,
            "variances": [round(float(v), 4) for v in variances]}


def run(ctx) -> dict:
    model = load_long_model(ctx.scratch, ctx.device)
    x = ctx.data.test
    k, chunk, chunk_size = ctx.args.iwae_k, ctx.args.iwae_chunk, ctx.args.iwae_chunk_size
    # FLOP estimate: k decoder passes per image dominate (the encoder runs once per image)
    flops = 2.0 * decoder_macs() * k * x.shape[0]
    n_probe = min(x.shape[0], 4 if ctx.smoke else 20)  # runtime estimate from a few images
    t = time.perf_counter()
    iwae_ll(model, x[:n_probe], k, chunk, chunk_size)
    est = (time.perf_counter() - t) * x.shape[0] / n_probe
    log(f"  IWAE k={k} on {x.shape[0]} images: {flops / 1e12:.1f} TFLOP of decoder matmuls; "
        f"estimated {fmt_s(est)} (from {n_probe} images)")
    t = time.perf_counter()
    ll = iwae_ll(model, x, k, chunk, chunk_size)
    iwae_s = time.perf_counter() - t
    nll, se = -float(ll.mean()), float(ll.std()) / math.sqrt(ll.numel())
    log(f"  IWAE NLL {nll:.2f} ± {se:.2f} nats in {fmt_s(iwae_s)}")
    t = time.perf_counter()
    au = active_units_of(model, x)
    au_s = time.perf_counter() - t
    peak = (ctx.results.get("peak") or {}).get("peak_gflops")
    return {
        "k": k,
        "n_images": int(x.shape[0]),
        "nll": nll,
        "nll_se": se,
        "test_nelbo": test_nelbo(model, x),
        "seconds": iwae_s,
        "estimated_seconds": est,
        "decoder_tflop": flops / 1e12,
        "matmul_bound_s": flops / (peak * 1e9) if peak else None,
        "active_units": au["n"],
        "active_units_threshold": au["threshold"],
        "active_unit_variances": au["variances"],
        "chunk_images": chunk,
        "chunk_size": chunk_size,
        "active_units_seconds": au_s,
        "latent_size": ARCH["latent_size"],
    }


def to_markdown(result: dict) -> list[str]:
    return ["## IWAE NLL and active units", "",
            f"k={result['k']} on {result['n_images']} test images: NLL {result['nll']:.2f} "
            f"± {result['nll_se']:.2f} (s.e. over images) nats, test -ELBO "
            f"{result['test_nelbo']:.2f}; {result['seconds']:.0f} s (estimated beforehand "
            f"{result['estimated_seconds']:.0f} s; {result['decoder_tflop']:.1f} TFLOP of "
            f"decoder matmuls, matmul bound {fmt(result.get('matmul_bound_s'), '.0f')} s). "
            f"Active units: {result['active_units']} of {result['latent_size']} "
            f"(threshold {result['active_units_threshold']}).", ""]
