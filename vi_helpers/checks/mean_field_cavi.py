"""Checks for the exercises of notebook 03 Mean field and CAVI (``notebooks/03_*.ipynb``)."""

from __future__ import annotations

import math

import torch

from ..models import ConjugateGaussianModel
from ._runner import F64, Case, CheckResult, finish, gen, randn, to_f64

__all__ = ['check_cavi_update_mu']

def _cavi_reference(x: torch.Tensor, e_tau: float, mu0: float, lambda0: float):
    """q(mu) from the exact posterior of a Gaussian with known precision E[tau].

    Under q(tau) the update for q(mu) is the posterior of a Gaussian mean with
    noise precision E[tau] and prior N(mu0, (lambda0 E[tau])^-1): a conjugate
    model whose posterior ``ConjugateGaussianModel`` gives in closed form.
    """
    model = ConjugateGaussianModel(mu0, 1.0 / math.sqrt(lambda0 * e_tau), 1.0 / math.sqrt(e_tau))
    post = model.posterior(x)
    return post.mean.to(F64), (1.0 / post.variance).to(F64)


def _cavi_mutants(x, e_tau, mu0, lambda0):
    n = x.numel()
    xbar = x.mean()
    mu_n = (lambda0 * mu0 + n * xbar) / (lambda0 + n)
    lam_n = torch.tensor((lambda0 + n) * e_tau, dtype=F64)

    def t(v):
        return torch.as_tensor(v, dtype=F64)

    return {
        "prec_no_tau": (mu_n, t(lambda0 + n)),
        "prec_tau_data_only": (mu_n, t(lambda0 + n * e_tau)),
        "mean_xbar": ((lambda0 * mu0 + xbar) / (lambda0 + n), lam_n),
        "mean_tau_weighted": ((lambda0 * mu0 + e_tau * n * xbar) / (lambda0 + e_tau * n), lam_n),
        "variance": (mu_n, 1.0 / lam_n),
        "std": (mu_n, lam_n.rsqrt()),
        "swapped": (lam_n, mu_n),
        "mu0_unweighted": ((mu0 + n * xbar) / (lambda0 + n), lam_n),
    }


_CAVI_HINTS = {
    "prec_no_tau": "the precision λ_N of q(μ) is scaled by E[τ]; yours is not.",
    "prec_tau_data_only": (
        "in this model the prior on μ has precision λ0·τ, so E[τ] multiplies the prior's "
        "term in λ_N as well as the data's."
    ),
    "mean_xbar": (
        "the data enter μ_N through N·x̄ (the sum of the observations), not through x̄ alone."
    ),
    "mean_tau_weighted": (
        "the prior on μ has precision λ0·τ, so E[τ] cancels in μ_N: the mean does not "
        "depend on E[τ]."
    ),
    "variance": "return the precision λ_N, not the variance 1/λ_N.",
    "std": "return the precision λ_N, not the standard deviation.",
    "swapped": "return the pair in the order (mu_N, lambda_N).",
    "mu0_unweighted": "the prior mean μ0 is weighted by λ0 in μ_N.",
}


def check_cavi_update_mu(cavi_update_mu) -> CheckResult:
    r"""Check ``cavi_update_mu(x, e_tau, mu0, lambda0) -> (mu_N, lambda_N)`` (notebook 03).

    The CAVI update of :math:`q(\mu)=\mathcal N(\mu_N,\lambda_N^{-1})` in the
    Normal-Gamma model (Bishop 2006, eqs. 10.26-10.27). ``x`` is a float32 ``(N,)``
    tensor, ``e_tau``, ``mu0``, ``lambda0`` are Python floats; each returned value
    may be a number or a 0-dim tensor. Reference: the exact posterior of the mean
    of a Gaussian with known precision ``E[tau]``
    (:class:`~vi_helpers.models.ConjugateGaussianModel`).
    """
    g = gen(303)

    def case(label, x, e_tau, mu0, lambda0):
        x = x.to(torch.float32)
        dx = to_f64(x)
        return Case(
            label,
            (x, float(e_tau), float(mu0), float(lambda0)),
            _cavi_reference(dx, e_tau, mu0, lambda0),
            _cavi_mutants(dx, e_tau, mu0, lambda0),
        )

    cases = [
        case(
            "one observation x = 0, mu0 = 0, lambda0 = 1, E[tau] = 1", torch.zeros(1), 1.0, 0.0, 1.0
        ),
        case("N = 10, E[tau] = 2.5, mu0 = 1, lambda0 = 0.5", 2.0 + randn(g, 10), 2.5, 1.0, 0.5),
        case("N = 1000: the data dominate the prior", -1.0 + 2.0 * randn(g, 1000), 0.3, 0.5, 2.0),
        case(
            "strong prior lambda0 = 10000: mu_N stays near mu0", 3.0 + randn(g, 20), 1.0, -2.0, 1e4
        ),
        case("noisy data, E[tau] = 0.01", 5.0 * randn(g, 8), 0.01, 0.0, 1.0),
        case("data far from zero (x ≈ 500)", 500.0 + randn(g, 6), 4.0, 480.0, 3.0),
    ]
    return finish(
        "cavi_update_mu",
        cavi_update_mu,
        cases,
        "pair",
        _CAVI_HINTS,
        "compare mu_N and lambda_N separately with Bishop's eqs. 10.26 and 10.27 on the "
        "first failing case; remember that N is the number of observations.",
    )


