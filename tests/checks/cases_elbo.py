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


# ------------------------------------------------------------------ log_joint_poisson, log_evidence_quadrature
def log_joint_poisson(z, x):
    log_prior = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    log_lik = (x * z[:, None] - z.exp()[:, None] - torch.lgamma(x + 1)).sum(-1)
    return log_prior + log_lik


def log_evidence_quadrature(log_joint, z_grid):
    log_f = log_joint(z_grid)
    top = log_f.max()
    return top + torch.log(torch.trapezoid(torch.exp(log_f - top), z_grid))


def _poisson_with(prior=True, factorial=True, reduce="sum", rate_is_z=False):
    def fn(z, x):
        rate_term = z[:, None] if rate_is_z else z.exp()[:, None]
        per_point = x * z[:, None] - rate_term - (torch.lgamma(x + 1) if factorial else 0.0)
        lik = {"sum": per_point.sum(-1), "mean": per_point.mean(-1), "none": per_point}[reduce]
        log_prior = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
        if not prior:
            return lik
        return (log_prior[:, None] if reduce == "none" else log_prior) + lik

    return fn


REFERENCE.update({"log_joint_poisson": log_joint_poisson, "log_evidence_quadrature": log_evidence_quadrature})
N_CASES.update({"log_joint_poisson": 5, "log_evidence_quadrature": 6})
ALTERNATIVES += [
    (
        "log_joint_poisson",
        lambda z, x: torch.distributions.Normal(0.0, 1.0).log_prob(z)
        + torch.distributions.Poisson(z.exp().unsqueeze(-1)).log_prob(x).sum(-1),
    ),
    (
        "log_evidence_quadrature",
        lambda lj, zg: torch.logsumexp(
            torch.log(zg.diff() / 2) + torch.logaddexp(lj(zg)[:-1], lj(zg)[1:]), 0
        ),
    ),
]
MUTANTS += [
    ("log_joint_poisson", "no_factorial", _poisson_with(factorial=False), "log(x_n!)"),
    ("log_joint_poisson", "no_prior", _poisson_with(prior=False), "prior log N(z; 0, 1) is missing"),
    ("log_joint_poisson", "no_sum", _poisson_with(reduce="none"), "one value per sample AND data point"),
    ("log_joint_poisson", "mean_over_n", _poisson_with(reduce="mean"), "do not average"),
    ("log_joint_poisson", "rate_is_z", _poisson_with(rate_is_z=True), "LOG of the Poisson rate"),
    (
        "log_evidence_quadrature",
        "no_lse",
        lambda lj, zg: torch.log(torch.trapezoid(lj(zg).exp(), zg)),
        "log-sum-exp trick",
    ),
    (
        "log_evidence_quadrature",
        "no_log",
        lambda lj, zg: log_evidence_quadrature(lj, zg).exp(),
        "not p(x)",
    ),
    (
        "log_evidence_quadrature",
        "riemann",
        lambda lj, zg: torch.logsumexp(lj(zg)[:-1] + zg.diff().log(), 0),
        "left Riemann sum",
    ),
    ("log_evidence_quadrature", "no_dz", lambda lj, zg: torch.logsumexp(lj(zg), 0), "spacing Δz is missing"),
]
