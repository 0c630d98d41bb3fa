"""Cases for the checks of notebook elbo: reference solution(s), other correct answers,
and typical mistakes with the hint each must get. Collected by ``test_common.py``."""

from __future__ import annotations

import math

import torch


def mc_elbo(log_joint, mu, sigma, eps):
    z = mu + sigma * eps
    log_q = torch.distributions.Normal(mu, sigma).log_prob(z)
    return (log_joint(z) - log_q).mean()

# ------------------------------------------------------------------ other correct answers
def _log_normal(z, mu, sigma):
    return -0.5 * math.log(2 * math.pi) - torch.log(sigma) - 0.5 * ((z - mu) / sigma) ** 2


REFERENCE = {
    "mc_elbo": mc_elbo,
}
N_CASES = {
    "mc_elbo": 6,
}
ALTERNATIVES = [
    (
        "mc_elbo",
        lambda lj, mu, sigma, eps: torch.mean(
            lj(mu + sigma * eps) - _log_normal(mu + sigma * eps, mu, sigma)
        ),
    ),
]
MUTANTS = [
    (
        "mc_elbo",
        "no_entropy",
        lambda lj, mu, sigma, eps: lj(mu + sigma * eps).mean(),
        "also subtracts log q(z)",
    ),
    (
        "mc_elbo",
        "plus_logq",
        lambda lj, mu, sigma, eps: (
            lj(mu + sigma * eps) + _log_normal(mu + sigma * eps, mu, sigma)
        ).mean(),
        "minus sign",
    ),
    (
        "mc_elbo",
        "sum",
        lambda lj, mu, sigma, eps: (
            lj(mu + sigma * eps) - _log_normal(mu + sigma * eps, mu, sigma)
        ).sum(),
        "AVERAGE",
    ),
    (
        "mc_elbo",
        "per_sample",
        lambda lj, mu, sigma, eps: lj(mu + sigma * eps) - _log_normal(mu + sigma * eps, mu, sigma),
        "one value per sample",
    ),
    (
        "mc_elbo",
        "logq_var",
        lambda lj, mu, sigma, eps: (
            lj(mu + sigma * eps) - _log_normal(mu + sigma * eps, mu, sigma.sqrt())
        ).mean(),
        "used it as a variance",
    ),
    (
        "mc_elbo",
        "logq_no_half",
        lambda lj, mu, sigma, eps: (
            lj(mu + sigma * eps) + 0.5 * math.log(2 * math.pi) + torch.log(sigma) + eps**2
        ).mean(),
        "factor ½ in front of the squared term",
    ),
    (
        "mc_elbo",
        "logq_no_const",
        lambda lj, mu, sigma, eps: (lj(mu + sigma * eps) + torch.log(sigma) + 0.5 * eps**2).mean(),
        "normalizing constant",
    ),
    (
        "mc_elbo",
        "logq_at_eps",
        lambda lj, mu, sigma, eps: (
            lj(mu + sigma * eps) - _log_normal(eps, torch.tensor(0.0), torch.tensor(1.0))
        ).mean(),
        "−log σ term",
    ),
    (
        "mc_elbo",
        "lj_at_eps",
        lambda lj, mu, sigma, eps: (lj(eps) - _log_normal(mu + sigma * eps, mu, sigma)).mean(),
        "not at eps",
    ),
    (
        "mc_elbo",
        "z_var",
        lambda lj, mu, sigma, eps: mc_elbo(lj, mu, sigma**2 / sigma, sigma * eps),
        "not scaled by the variance",
    ),
]
