"""Cases for the checks of notebook free_energy: reference solution(s), other correct answers,
and typical mistakes with the hint each must get. Collected by ``test_common.py``."""

from __future__ import annotations

import math

import torch

from vi_helpers.models import ConjugateGaussianModel


def free_energy_conjugate(x, m, s, mu0, sigma0, sigma):
    n = x.shape[0]
    expected_ll = -0.5 * n * math.log(2 * math.pi * sigma**2) - (
        ((x - m) ** 2).sum() + n * s**2
    ) / (2 * sigma**2)
    kl = math.log(sigma0) - torch.log(s) + (s**2 + (m - mu0) ** 2) / (2 * sigma0**2) - 0.5
    return -(expected_ll - kl)

def _free_energy(
    x,
    m,
    s,
    mu0,
    sigma0,
    sigma,
    *,
    s_sq_count=None,
    kl_sign=1.0,
    plugin=False,
    reverse_kl=False,
    mean_obs=False,
    s_var=False,
    sigma_var=False,
):
    n = x.shape[0]
    if s_var:
        s = torch.sqrt(s)
    if sigma_var:
        sigma = math.sqrt(sigma)
    count = n if s_sq_count is None else s_sq_count
    spread = 0.0 if plugin else count * s**2
    ell = -0.5 * n * math.log(2 * math.pi * sigma**2) - (((x - m) ** 2).sum() + spread) / (
        2 * sigma**2
    )
    if mean_obs:
        ell = ell / n
    q = torch.distributions.Normal(m, s)
    p = torch.distributions.Normal(torch.tensor(mu0), torch.tensor(sigma0))
    kl = (
        torch.distributions.kl_divergence(p, q)
        if reverse_kl
        else torch.distributions.kl_divergence(q, p)
    )
    return -(ell - kl_sign * kl)


REFERENCE = {
    "free_energy_conjugate": free_energy_conjugate,
}
N_CASES = {
    "free_energy_conjugate": 6,
}
ALTERNATIVES = [
    (
        "free_energy_conjugate",
        lambda x, m, s, mu0, sigma0, sigma: (
            -ConjugateGaussianModel(mu0, sigma0, sigma).elbo(x, m, s)
        ),
    ),
]
MUTANTS = [
    ("free_energy_conjugate", "elbo", lambda *a: -free_energy_conjugate(*a), "returned the ELBO"),
    (
        "free_energy_conjugate",
        "no_kl",
        lambda *a: _free_energy(*a, kl_sign=0.0),
        "KL(q ‖ p(z)) term",
    ),
    ("free_energy_conjugate", "plugin", lambda *a: _free_energy(*a, plugin=True), "spread of q"),
    (
        "free_energy_conjugate",
        "s_once",
        lambda *a: _free_energy(*a, s_sq_count=1),
        "you counted it once",
    ),
    (
        "free_energy_conjugate",
        "s_var",
        lambda *a: _free_energy(*a, s_var=True),
        "s is a standard deviation",
    ),
    (
        "free_energy_conjugate",
        "sigma_var",
        lambda *a: _free_energy(*a, sigma_var=True),
        "observation noise's standard deviation",
    ),
    (
        "free_energy_conjugate",
        "kl_reversed",
        lambda *a: _free_energy(*a, reverse_kl=True),
        "not KL(p(z) ‖ q)",
    ),
    (
        "free_energy_conjugate",
        "mean_obs",
        lambda *a: _free_energy(*a, mean_obs=True),
        "do not average",
    ),
    (
        "free_energy_conjugate",
        "kl_sign",
        lambda *a: _free_energy(*a, kl_sign=-1.0),
        "sign of the KL term",
    ),
]


def efe(q_s, likelihood, log_preferences):
    q_o = q_s @ likelihood
    risk = torch.sum(torch.special.xlogy(q_o, q_o) - q_o * log_preferences)
    ambiguity = -torch.sum(q_s[:, None] * torch.special.xlogy(likelihood, likelihood))
    return risk + ambiguity


REFERENCE["efe"] = efe
N_CASES["efe"] = 6
def efe_epistemic_pragmatic(q_s, likelihood, log_preferences):
    """G = -(information gain about s) - E_q(o) log p~(o)."""
    joint = q_s[:, None] * likelihood  # q(s, o)
    q_o = joint.sum(0)
    posterior = joint / q_o
    info_gain = torch.nansum(joint * (posterior.log() - q_s[:, None].log()))
    return -info_gain - (q_o * log_preferences).sum()


ALTERNATIVES += [("efe", efe_epistemic_pragmatic)]
MUTANTS += [
    ("efe", "risk_only", lambda q, lik, lp: efe(q, lik, lp) + torch.sum(q[:, None] * torch.special.xlogy(lik, lik)), "ambiguity, the expected"),
    ("efe", "entropy_of_q_o", lambda q, lik, lp: torch.sum(torch.special.xlogy(q @ lik, q @ lik) - (q @ lik) * lp) - torch.sum(torch.special.xlogy(q @ lik, q @ lik)), "not the entropy"),
    ("efe", "unweighted", lambda q, lik, lp: torch.sum(torch.special.xlogy(q @ lik, q @ lik) - (q @ lik) * lp) - torch.special.xlogy(lik, lik).sum(-1).mean(), "weights q(s)"),
    ("efe", "bits", lambda q, lik, lp: efe(q, lik, lp) / math.log(2), "natural logarithms"),
]


def predicted_rate(eta, eigenvalues):
    return (1 - eta * eigenvalues).abs().max()


REFERENCE["predicted_rate"] = predicted_rate
N_CASES["predicted_rate"] = 6
ALTERNATIVES += [
    ("predicted_rate", lambda eta, lam: max(abs(1 - eta * lam.min().item()), abs(1 - eta * lam.max().item()))),
]
MUTANTS += [
    ("predicted_rate", "only_min", lambda eta, lam: 1 - eta * lam.min(), "LARGEST eigenvalue overshoots"),
    ("predicted_rate", "no_abs", lambda eta, lam: (1 - eta * lam).max(), "absolute value"),
    ("predicted_rate", "min_factor", lambda eta, lam: (1 - eta * lam).abs().min(), "SLOWEST direction"),
    ("predicted_rate", "squared", lambda eta, lam: (1 - eta * lam).pow(2).max(), "squared factor"),
]
