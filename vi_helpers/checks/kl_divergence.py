"""Checks for the exercises of notebook 01 The KL divergence (``notebooks/01_*.ipynb``)."""

from __future__ import annotations

import math

import torch
from torch.distributions import Independent, Normal, kl_divergence

from ._runner import Case, CheckResult, finish, gen, rand, randn, to_f64

__all__ = ['check_kl_diag_gaussian', 'check_kl_mc', 'check_samples_for_se']

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




# ----------------------------------------------------------------------------- kl_mc
def _bimodal_log_p(z: torch.Tensor) -> torch.Tensor:
    """log p(z) of the notebook's target 0.6 N(-3, 0.8²) + 0.4 N(3, 0.8²)."""
    w = torch.tensor([0.6, 0.4], dtype=z.dtype)
    comps = Normal(torch.tensor([-3.0, 3.0], dtype=z.dtype), torch.tensor(0.8, dtype=z.dtype))
    return torch.logsumexp(w.log() + comps.log_prob(z[..., None]), dim=-1)


def _skewed_log_p(z: torch.Tensor) -> torch.Tensor:
    """log p(z) of a three-component mixture with unequal widths."""
    w = torch.tensor([0.2, 0.5, 0.3], dtype=z.dtype)
    comps = Normal(torch.tensor([-1.0, 0.5, 2.5], dtype=z.dtype),
                   torch.tensor([0.4, 1.0, 0.6], dtype=z.dtype))
    return torch.logsumexp(w.log() + comps.log_prob(z[..., None]), dim=-1)


def _gaussian_log_p(z: torch.Tensor) -> torch.Tensor:
    return Normal(torch.tensor(1.0, dtype=z.dtype), torch.tensor(2.0, dtype=z.dtype)).log_prob(z)


def _pair(estimate: torch.Tensor, se: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return estimate.to(torch.float64), se.to(torch.float64)


def _kl_mc_mutants(log_p, m, s, eps) -> dict[str, tuple]:
    n = eps.numel()
    z = m + s * eps
    log_q = Normal(m, s).log_prob(z)
    terms = log_q - log_p(z)

    def mean_se(t):
        return _pair(t.mean(), t.std() / n**0.5)

    right_mean, right_se = mean_se(terms)
    return {
        "sign": mean_se(-terms),
        "se_is_sd": _pair(right_mean, terms.std()),
        "se_over_n": _pair(right_mean, terms.std() / n),
        "se_is_var": _pair(right_mean, terms.var() / n**0.5),
        "cross_entropy": mean_se(-log_p(z)),
        "logq_var": mean_se(Normal(m, s.sqrt()).log_prob(z) - log_p(z)),
        "logq_no_const": mean_se(log_q + 0.5 * math.log(2 * math.pi) - log_p(z)),
        "at_eps": mean_se(Normal(m, s).log_prob(eps) - log_p(eps)),
    }


_KL_MC_HINTS = {
    "sign": "your estimate has the wrong sign: KL(q ‖ p) averages log q(z) − log p(z), in that order.",
    "se_is_sd": (
        "your standard error is the standard deviation of ONE term: the standard error of an "
        "average of S independent terms is that standard deviation divided by √S."
    ),
    "se_over_n": "the standard error falls like 1/√S, not 1/S.",
    "se_is_var": (
        "your standard error uses the variance of the terms; it needs their standard deviation "
        "(the square root of the variance)."
    ),
    "cross_entropy": (
        "you averaged −log p(z) only: that is the cross-entropy H(q, p). The KL also needs the "
        "+log q(z) term at the same samples."
    ),
    "logq_var": "in log N(z; m, s²) the argument s is the standard deviation, not the variance.",
    "logq_no_const": (
        "keep the normalizing constant (the log 2π part) of log q(z): the KL is a difference of two "
        "normalized log-densities."
    ),
    "at_eps": "evaluate both log-densities at the samples z = m + s·eps, not at eps itself.",
}


def check_kl_mc(kl_mc) -> CheckResult:
    r"""Check ``kl_mc(log_p, m, s, eps) -> (estimate, standard_error)`` (notebook 01).

    With ``z = m + s * eps`` (``eps`` of shape ``(S,)``) the function must return
    the average of the terms :math:`\log q(z_s)-\log p(z_s)`, with
    :math:`q=\mathcal N(m,s^2)`, and the standard error of that average
    (the terms' sample standard deviation over :math:`\sqrt S`). The cases use
    :math:`S\ge 20{,}000`, so either normalization of the standard deviation
    (by :math:`S` or :math:`S-1`) passes. Reference: ``torch.distributions.Normal``
    for :math:`\log q`.
    """
    g = gen(104)

    def case(label, log_p, m, s, n):
        m32, s32 = torch.tensor(float(m)), torch.tensor(float(s))
        eps32 = randn(g, n)
        dm, ds, deps = to_f64(m32), to_f64(s32), to_f64(eps32)
        z = dm + ds * deps
        terms = Normal(dm, ds).log_prob(z) - log_p(z)
        expected = _pair(terms.mean(), terms.std() / n**0.5)
        return Case(label, (log_p, m32, s32, eps32), expected, _kl_mc_mutants(log_p, dm, ds, deps))

    cases = [
        case("q = p = N(1, 2²): every term is 0", _gaussian_log_p, 1.0, 2.0, 20_000),
        case("Gaussian p = N(1, 2²), q = N(0, 1)", _gaussian_log_p, 0.0, 1.0, 20_000),
        case("bimodal p, q on the left bump (m = -3, s = 0.8)", _bimodal_log_p, -3.0, 0.8, 20_000),
        case("bimodal p, broad q (m = -0.5, s = 2.6)", _bimodal_log_p, -0.5, 2.6, 40_000),
        case("three-component p, narrow q in the valley", _skewed_log_p, 1.6, 0.3, 20_000),
    ]
    return finish(
        "kl_mc",
        kl_mc,
        cases,
        "pair",
        _KL_MC_HINTS,
        "on the first failing case compute the terms log q(z) − log p(z) yourself and compare "
        "their mean and their standard deviation / √S with what you return.",
    )


# ----------------------------------------------------------------------------- samples_for_se
def _samples_for_se_mutants(pilot_se: float, pilot_n: int, target_se: float) -> dict[str, int]:
    ratio = pilot_se / target_se
    exact = pilot_n * ratio**2
    return {
        "linear": math.ceil(pilot_n * ratio),
        "no_pilot_n": math.ceil(ratio**2),
        "inverted": math.ceil(pilot_n / ratio**2),
        "floor": math.floor(exact),
        "round": round(exact),
        "extra": math.ceil(exact) + pilot_n,
    }


_SAMPLES_HINTS = {
    "linear": (
        "the standard error falls like 1/√S, so halving it needs FOUR times the samples: the "
        "ratio of standard errors enters squared."
    ),
    "no_pilot_n": (
        "the pilot standard error was measured with pilot_n samples: scale pilot_n, do not start "
        "from one sample."
    ),
    "inverted": "a smaller target standard error needs MORE samples: your ratio is upside down.",
    "floor": "round UP: rounding down leaves the standard error just above the target.",
    "round": "round UP: rounding to the nearest integer can leave the standard error above the target.",
    "extra": "return the total number of samples needed, not the number to add to the pilot.",
}


def check_samples_for_se(samples_for_se) -> CheckResult:
    r"""Check ``samples_for_se(pilot_se, pilot_n, target_se) -> int`` (notebook 01).

    The smallest :math:`S` whose standard error, predicted by the :math:`1/\sqrt S`
    law from a pilot run, is at most the target:
    :math:`S=\lceil n_{\text{pilot}}\,(\mathrm{se}_{\text{pilot}}/\mathrm{se}_{\text{target}})^2\rceil`.
    The cases avoid exact integers, so float rounding cannot decide the answer.
    """

    def case(label, pilot_se, pilot_n, target_se):
        exact = pilot_n * (pilot_se / target_se) ** 2
        frac = exact - math.floor(exact)
        assert 0.05 < frac < 0.95, (label, exact)  # a robust case, whatever the float order
        return Case(
            label,
            (float(pilot_se), int(pilot_n), float(target_se)),
            math.ceil(exact),
            _samples_for_se_mutants(pilot_se, pilot_n, target_se),
        )

    cases = [
        case("pilot se 0.0731 from 200 samples, target 0.01", 0.0731, 200, 0.01),
        case("pilot se 0.3127 from 100 samples, target 0.01", 0.3127, 100, 0.01),
        case("pilot already better than the target", 0.0043, 500, 0.01),
        case("target 0.001 nats", 0.02173, 1000, 0.001),
    ]
    return finish(
        "samples_for_se",
        samples_for_se,
        cases,
        "int",
        _SAMPLES_HINTS,
        "write the standard error as c/√S, find c from the pilot run, and solve c/√S ≤ target for S.",
    )
