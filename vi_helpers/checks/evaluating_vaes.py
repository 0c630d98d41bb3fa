"""Checks for the exercises of notebook 08 Evaluating a VAE (``notebooks/08_*.ipynb``)."""

from __future__ import annotations

import math

import torch

from ._runner import Case, CheckResult, finish, gen, randn, to_f64

__all__ = ['check_iwae_bound']

def _iwae_reference(log_w: torch.Tensor) -> torch.Tensor:
    """log (1/K) sum_k exp(log_w[k]) in float64 with the maximum factored out."""
    m = log_w.max(dim=0).values
    return m + torch.log(torch.exp(log_w - m).mean(dim=0))


def _iwae_mutants(log_w, log_w32):
    K = log_w.shape[0]
    lse = torch.logsumexp(log_w, dim=0)
    naive = torch.log(torch.exp(log_w32).mean(dim=0))
    return {
        "no_log_k": lse,
        "mean_log_w": log_w.mean(dim=0),
        "wrong_dim": torch.logsumexp(log_w, dim=1) - math.log(log_w.shape[1]),
        "divide_outside": lse / K,
        "max_only": log_w.max(dim=0).values,
        "nonfinite": to_f64(naive),
    }


_IWAE_HINTS = {
    "no_log_k": (
        "you forgot the 1/K: the bound is the log of the AVERAGE weight, so subtract log K."
    ),
    "mean_log_w": (
        "you averaged the log-weights: that is the ELBO (an average of logs). The IWAE bound "
        "is the log of the average weight."
    ),
    "wrong_dim": (
        "reduce over the K samples (dim 0) and keep the batch dimension: the result has shape (B,)."
    ),
    "divide_outside": "the 1/K goes inside the log: subtract log K instead of dividing by K.",
    "max_only": (
        "the maximum is only the stabilizing shift: the other weights still contribute "
        "after it is factored out."
    ),
    "nonfinite": (
        "your bound is ±inf for large log-weights: exp(−1000) is 0 and exp(1000) is inf in "
        "floating point. Use the log-sum-exp trick (factor out the largest log-weight), or "
        "torch.logsumexp."
    ),
}


def check_iwae_bound(iwae_bound) -> CheckResult:
    r"""Check ``iwae_bound(log_w) -> (B,)`` (notebook 08).

    :math:`\log\frac1K\sum_k e^{\log w_k}` for ``log_w`` of shape ``(K, B)``,
    computed stably (log-weights of images are around -1000). Reference: float64
    with the maximum factored out.
    """
    g = gen(909)

    def case(label, log_w):
        lw = log_w.to(torch.float32)
        d = to_f64(lw)
        return Case(label, (lw,), _iwae_reference(d), _iwae_mutants(d, lw))

    cases = [
        case("K = 1: the bound is the single log-weight", randn(g, 1, 3)),
        case("equal log-weights (K = 5): the bound is that value", torch.full((5, 2), -3.2)),
        case("random log-weights, K = 10, B = 4", 2.0 * randn(g, 10, 4)),
        case("image-sized log-weights ≈ -1000 (K = 20, B = 3)", -1000.0 + 5.0 * randn(g, 20, 3)),
        case("large positive log-weights ≈ +500 (K = 7, B = 2)", 500.0 + 3.0 * randn(g, 7, 2)),
        case("one dominant sample (spread of hundreds of nats)", 100.0 * randn(g, 6, 3)),
    ]
    return finish(
        "iwae_bound",
        iwae_bound,
        cases,
        "tensor",
        _IWAE_HINTS,
        "check K = 1 (the answer is log_w[0]) and equal log-weights (the answer is that "
        "value) by hand, then the large-magnitude cases.",
    )


