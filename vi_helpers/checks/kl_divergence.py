"""Checks for the exercises of notebook 01 The KL divergence (``notebooks/01_*.ipynb``)."""

from __future__ import annotations

import torch
from torch.distributions import Independent, Normal, kl_divergence

from ._runner import Case, CheckResult, finish, gen, rand, randn, to_f64

__all__ = ['check_kl_diag_gaussian']

def _kl_diag_mutants(mq, lvq, mp, lvp) -> dict[str, torch.Tensor]:
    """Answers of typical wrong KL implementations (float64)."""
    L = mq.shape[-1]

    def per_dim(var_q, var_p, scale_p_for_mean, half=0.5, minus_one=1.0):
        return half * (
            torch.log(var_p)
            - torch.log(var_q)
            + var_q / var_p
            + (mq - mp).pow(2) / scale_p_for_mean
            - minus_one
        )

    vq, vp = lvq.exp(), lvp.exp()
    right = per_dim(vq, vp, vp)
    out = {
        "half": 2.0 * right.sum(-1),
        "sign": -right.sum(-1),
        "mean_dims": right.mean(-1),
        "no_reduce": right,
        "sum_all": right.sum(),
        "minus_one": right.sum(-1) + 0.5 * L,
        "mahalanobis": per_dim(vq, vp, torch.ones_like(vp)).sum(-1),
    }
    # KL(p || q): the arguments' roles swapped
    out["swapped"] = (
        0.5 * (torch.log(vq) - torch.log(vp) + vp / vq + (mq - mp).pow(2) / vq - 1.0)
    ).sum(-1)
    # log_var read as log(sigma): every variance is exp(2 * log_var)
    sq, sp = (2 * lvq).exp(), (2 * lvp).exp()
    out["log_std"] = (
        0.5 * (torch.log(sp) - torch.log(sq) + sq / sp + (mq - mp).pow(2) / sp - 1.0)
    ).sum(-1)
    # sigma where sigma^2 belongs, in the variance ratio and the mean term
    out["std_for_var"] = (
        0.5 * (lvp - lvq + (0.5 * (lvq - lvp)).exp() + (mq - mp).pow(2) / (0.5 * lvp).exp() - 1.0)
    ).sum(-1)
    return out


_KL_HINTS = {
    "half": "your values are exactly twice the expected ones: a factor ½ is missing.",
    "sign": "your values have the wrong sign. A KL divergence is never negative.",
    "mean_dims": (
        "you averaged over the latent dimensions. For independent dimensions the KL is the "
        "SUM of the per-dimension KLs."
    ),
    "no_reduce": (
        "you returned one KL per dimension (the last axis is still there): reduce it with a "
        "sum over the last dimension."
    ),
    "sum_all": (
        "you summed over the batch too. Reduce only the last dimension, so that there is "
        "one KL per batch element."
    ),
    "swapped": (
        "you computed KL(p ‖ q): the roles of q (mu_q, log_var_q) and p (mu_p, log_var_p) "
        "are swapped. The KL is not symmetric."
    ),
    "log_std": (
        "the argument log_var is the log of the VARIANCE σ², not of the standard deviation σ: "
        "σ² = exp(log_var)."
    ),
    "std_for_var": (
        "you used a standard deviation σ where a variance σ² belongs (in the ratio of the "
        "variances or under the squared difference of the means)."
    ),
    "minus_one": (
        "two identical distributions must give KL = 0, and yours do not: a constant term "
        "per dimension is missing."
    ),
    "mahalanobis": "the squared difference of the means must be divided by p's variance.",
}


def check_kl_diag_gaussian(kl_diag_gaussian) -> CheckResult:
    r"""Check ``kl_diag_gaussian(mu_q, log_var_q, mu_p, log_var_p) -> (...)`` (notebook 01).

    The function must return :math:`\mathrm{KL}(q\,\|\,p)` of two diagonal
    Gaussians given by means and log-variances of shape ``(..., L)``, summed over
    the last dimension (one KL per batch element). Reference:
    ``torch.distributions.kl_divergence`` of ``Independent(Normal(...), 1)``.
    """
    g = gen(101)

    def case(label, mq, lvq, mp, lvp):
        a = tuple(t.to(torch.float32) for t in (mq, lvq, mp, lvp))
        dq, dlvq, dp, dlvp = (to_f64(t) for t in a)
        q = Independent(Normal(dq, (0.5 * dlvq).exp()), 1)
        p = Independent(Normal(dp, (0.5 * dlvp).exp()), 1)
        return Case(label, a, kl_divergence(q, p), _kl_diag_mutants(dq, dlvq, dp, dlvp))

    z3 = torch.zeros(3)
    cases = [
        case("q = p = N(0, I) in 3 dims, KL must be 0", z3, z3, z3, z3),
        case(
            "q = N(mu, diag σ²) against N(0, I), 4 dims",
            randn(g, 4),
            0.7 * randn(g, 4),
            torch.zeros(4),
            torch.zeros(4),
        ),
        case(
            "batch of 5 pairs in 3 dims, shape (5,)",
            randn(g, 5, 3),
            0.5 * randn(g, 5, 3),
            randn(g, 5, 3),
            0.5 * randn(g, 5, 3),
        ),
        case(
            "batch shape (2, 3) in 4 dims, shape (2, 3)",
            randn(g, 2, 3, 4),
            0.5 * randn(g, 2, 3, 4),
            randn(g, 2, 3, 4),
            0.5 * randn(g, 2, 3, 4),
        ),
        case(
            "broad q against a narrow p (order matters)",
            torch.tensor([0.0, 0.5]),
            torch.tensor([1.5, 1.0]),
            torch.tensor([1.0, -0.5]),
            torch.tensor([-1.5, -1.0]),
        ),
        case(
            "large means and variances",
            30.0 * randn(g, 2, 3),
            6.0 * (2 * rand(g, 2, 3) - 1),
            30.0 * randn(g, 2, 3),
            6.0 * (2 * rand(g, 2, 3) - 1),
        ),
    ]
    return finish(
        "kl_diag_gaussian",
        kl_diag_gaussian,
        cases,
        "tensor",
        _KL_HINTS,
        "compare your code term by term with the closed form derived above, first on a "
        "single dimension, then make sure you sum over the last dimension only.",
    )


