"""Checks for the exercises of notebook 08 Evaluating a VAE (``notebooks/08_*.ipynb``)."""

from __future__ import annotations

import math

import torch

from ._runner import Case, CheckResult, finish, gen, randn, to_f64

__all__ = ['check_iwae_bound', 'check_effective_sample_size']

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




# ----------------------------------------------------------------------------- effective_sample_size
def _ess_reference(log_w: torch.Tensor) -> torch.Tensor:
    """(sum w)^2 / sum w^2 in float64, from the self-normalized weights."""
    w = torch.softmax(log_w, dim=0)
    return 1.0 / w.pow(2).sum(dim=0)


def _ess_mutants(log_w, log_w32):
    K = log_w.shape[0]
    ess = _ess_reference(log_w)
    w32 = torch.exp(log_w32)
    with torch.no_grad():
        naive = w32.sum(dim=0).pow(2) / w32.pow(2).sum(dim=0)
    return {
        "fraction": ess / K,
        "inverse": 1.0 / ess,
        "log": torch.log(ess),
        "max_weight": 1.0 / torch.softmax(log_w, dim=0).max(dim=0).values,
        "wrong_dim": _ess_reference(log_w.T),
        "nonfinite": to_f64(naive),
        "unnormalized_sum": 1.0 / torch.exp(log_w).pow(2).sum(dim=0),
    }


_ESS_HINTS = {
    "fraction": "return the effective NUMBER of samples (between 1 and K), not the fraction ESS / K.",
    "inverse": "your ratio is upside down: the ESS is (sum of weights)² divided by the sum of squared weights.",
    "log": "return the ESS itself, not its logarithm: exponentiate at the end.",
    "max_weight": (
        "1 / (largest normalized weight) is another, cruder measure; use (Σ w)² / Σ w², which "
        "counts every weight."
    ),
    "wrong_dim": "reduce over the K samples (dim 0) and keep the batch dimension: the result has shape (B,).",
    "nonfinite": (
        "exp(log_w) overflows or underflows for image-sized log-weights (about -1000): normalize "
        "first (softmax over dim 0, or subtract the maximum) and then square."
    ),
    "unnormalized_sum": (
        "normalize the weights first (they must sum to 1 over the K samples); then the ESS is "
        "1 / Σ w̃²."
    ),
}


def check_effective_sample_size(effective_sample_size) -> CheckResult:
    r"""Check ``effective_sample_size(log_w) -> (B,)`` (notebook 08).

    Kish's effective sample size of ``K`` importance weights per example,
    :math:`\mathrm{ESS}=(\sum_k w_k)^2/\sum_k w_k^2 = 1/\sum_k\tilde w_k^2` with
    :math:`\tilde w_k = w_k/\sum_j w_j`, for ``log_w`` of shape ``(K, B)``: ``K``
    when all weights are equal, 1 when one weight dominates. It must be stable for
    log-weights around -1000. Reference: float64 softmax.
    """
    g = gen(919)

    def case(label, log_w):
        lw = log_w.to(torch.float32)
        d = to_f64(lw)
        return Case(label, (lw,), _ess_reference(d), _ess_mutants(d, lw), rtol=1e-4, atol=1e-4)

    cases = [
        case("equal log-weights (K = 6): ESS = 6", torch.full((6, 3), -2.5)),
        case("one dominant weight (K = 5): ESS ≈ 1", torch.tensor([[0.0], [-30.0], [-31.0], [-40.0], [-35.0]])),
        case("random log-weights, K = 10, B = 4", randn(g, 10, 4)),
        case("image-sized log-weights ≈ -1000 (K = 20, B = 3)", -1000.0 + 2.0 * randn(g, 20, 3)),
        case("large positive log-weights ≈ +500 (K = 8, B = 2)", 500.0 + 1.5 * randn(g, 8, 2)),
        case("K = 1: ESS = 1", randn(g, 1, 4)),
    ]
    return finish(
        "effective_sample_size",
        effective_sample_size,
        cases,
        "tensor",
        _ESS_HINTS,
        "check two cases by hand: equal log-weights must give K, and one weight far above the "
        "others must give 1.",
    )
