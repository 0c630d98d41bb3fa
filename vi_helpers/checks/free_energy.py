"""Checks for the exercises of notebook 09 Free energy (``notebooks/09_*.ipynb``)."""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal, kl_divergence

from ..models import ConjugateGaussianModel
from ._runner import F64, Case, CheckResult, finish, gen, randn, to_f64

__all__ = ['check_free_energy_conjugate']

def _free_energy_reference(x, m, s, mu0, sigma0, sigma):
    """-ELBO: closed-form E_q log p(x|z) (sum over i) plus torch.distributions' KL."""
    n = x.numel()
    expected_ll = -0.5 * n * math.log(2 * math.pi * sigma**2) - (
        (x - m).pow(2).sum() + n * s.pow(2)
    ) / (2 * sigma**2)
    kl = kl_divergence(
        Normal(m, s), Normal(torch.tensor(mu0, dtype=F64), torch.tensor(sigma0, dtype=F64))
    )
    return -(expected_ll - kl)


def _free_energy_mutants(x, m, s, mu0, sigma0, sigma):
    n = x.numel()
    log_norm = -0.5 * n * math.log(2 * math.pi * sigma**2)
    sq = (x - m).pow(2).sum()
    ell = log_norm - (sq + n * s.pow(2)) / (2 * sigma**2)
    kl = kl_divergence(
        Normal(m, s), Normal(torch.tensor(mu0, dtype=F64), torch.tensor(sigma0, dtype=F64))
    )
    s_as_var = s.sqrt()
    ell_s_var = log_norm - (sq + n * s_as_var.pow(2)) / (2 * sigma**2)
    kl_s_var = kl_divergence(
        Normal(m, s_as_var), Normal(torch.tensor(mu0, dtype=F64), torch.tensor(sigma0, dtype=F64))
    )
    sig_v = math.sqrt(sigma)
    ell_sigma_var = -0.5 * n * math.log(2 * math.pi * sig_v**2) - (sq + n * s.pow(2)) / (
        2 * sig_v**2
    )
    kl_rev = kl_divergence(
        Normal(torch.tensor(mu0, dtype=F64), torch.tensor(sigma0, dtype=F64)), Normal(m, s)
    )
    return {
        "elbo": ell - kl,
        "no_kl": -ell,
        "plugin": -(log_norm - sq / (2 * sigma**2)) + kl,
        "s_once": -(log_norm - (sq + s.pow(2)) / (2 * sigma**2)) + kl,
        "s_var": -(ell_s_var - kl_s_var),
        "sigma_var": -(ell_sigma_var - kl),
        "kl_reversed": -(ell - kl_rev),
        "mean_obs": -(ell / n - kl),
        "kl_sign": -(ell + kl),
    }


_FREE_ENERGY_HINTS = {
    "elbo": "you returned the ELBO: the free energy is its negative.",
    "no_kl": "the KL(q ‖ p(z)) term, which brings in the prior, is missing.",
    "plugin": (
        "the expected log-likelihood under q must account for the spread of q: each "
        "observation gets an extra term in s², which is missing."
    ),
    "s_once": "each of the n observations contributes its own s² term; you counted it once.",
    "s_var": (
        "the argument s is a standard deviation (q = N(m, s²)): you used it as a variance "
        "somewhere."
    ),
    "sigma_var": (
        "the argument sigma is the observation noise's standard deviation: you used it as a "
        "variance."
    ),
    "kl_reversed": "the KL is KL(q ‖ p(z)), not KL(p(z) ‖ q).",
    "mean_obs": "sum the log-likelihood over the n observations; do not average it.",
    "kl_sign": "check the sign of the KL term: F = −ELBO = −E_q[log p(x|z)] + KL.",
}


def check_free_energy_conjugate(free_energy_conjugate) -> CheckResult:
    r"""Check ``free_energy_conjugate(x, m, s, mu0, sigma0, sigma) -> scalar`` (notebook 09).

    The variational free energy :math:`F(q) = -\mathcal L(q)` of
    :math:`q=\mathcal N(m, s^2)` under the model
    :math:`z\sim\mathcal N(\mu_0,\sigma_0^2),\ x_i\mid z\sim\mathcal N(z,\sigma^2)`
    (:class:`~vi_helpers.models.ConjugateGaussianModel`). ``x`` is a float32
    ``(n,)`` tensor, ``m`` and ``s`` are 0-dim float32 tensors, ``mu0``, ``sigma0``,
    ``sigma`` Python floats. References: the closed-form expected log-likelihood
    plus ``torch.distributions.kl_divergence``; at the exact posterior,
    :math:`F = -\log p(x)` from the exact evidence.
    """
    g = gen(1009)

    def case(label, x, m, s, mu0, sigma0, sigma, expected=None):
        x32 = x.to(torch.float32)
        m32, s32 = torch.tensor(float(m)), torch.tensor(float(s))
        d = (to_f64(x32), to_f64(m32), to_f64(s32), float(mu0), float(sigma0), float(sigma))
        ref = _free_energy_reference(*d) if expected is None else expected
        return Case(label, (x32, m32, s32, *d[3:]), ref, _free_energy_mutants(*d))

    model = ConjugateGaussianModel(0.0, 1.0, 1.0)
    x_post = torch.tensor([0.8, 1.9, 1.1, 0.4, 1.6])
    post = model.posterior(to_f64(x_post))
    cases = [
        case(
            "q = exact posterior: F = -log p(x)",
            x_post,
            float(post.mean),
            float(post.stddev),
            0.0,
            1.0,
            1.0,
            expected=-model.log_evidence(to_f64(x_post)),
        ),
        case("standard prior, q = N(0.3, 0.5²), n = 4", randn(g, 4), 0.3, 0.5, 0.0, 1.0, 1.0),
        case("a single observation (n = 1)", torch.tensor([2.5]), 1.0, 0.8, 0.5, 2.0, 1.5),
        case(
            "strong prior (sigma0 = 0.1), broad q (s = 2)",
            1.0 + randn(g, 6),
            0.4,
            2.0,
            -0.5,
            0.1,
            0.7,
        ),
        case("data far from zero (x ≈ 50)", 50.0 + 2.0 * randn(g, 8), 49.0, 0.6, 48.0, 3.0, 2.0),
        case("very narrow q (s = 0.001)", randn(g, 3), -0.2, 0.001, 0.0, 1.0, 1.0),
    ]
    return finish(
        "free_energy_conjugate",
        free_energy_conjugate,
        cases,
        "scalar",
        _FREE_ENERGY_HINTS,
        "split F into −E_q[log p(x|z)] and KL(q ‖ p(z)) and check each against the notebook's "
        "derivation on the first failing case.",
    )
