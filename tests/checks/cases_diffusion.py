"""Cases for the checks of notebook diffusion: reference solution(s), other correct answers,
and typical mistakes with the hint each must get. Collected by ``test_common.py``."""

from __future__ import annotations

import math

import torch
from torch.distributions import MultivariateNormal

from vi_helpers.diffusion_gaussian import gaussian_data_elbo


def reverse_mean_from_eps(x_t, eps_hat, alpha_t, alpha_bar_t):
    coef = (1 - alpha_t) / math.sqrt(1 - alpha_bar_t)
    return (x_t - coef * eps_hat) / math.sqrt(alpha_t)


def _reverse_mean_via_x0(x_t, eps_hat, alpha_t, alpha_bar_t):
    """The unsimplified route: x0_hat plugged into the forward posterior mean."""
    prev = alpha_bar_t / alpha_t
    x0_hat = (x_t - math.sqrt(1 - alpha_bar_t) * eps_hat) / math.sqrt(alpha_bar_t)
    return (math.sqrt(prev) * (1 - alpha_t) * x0_hat
            + math.sqrt(alpha_t) * (1 - prev) * x_t) / (1 - alpha_bar_t)


def _sigma_points(mean, cov):
    evals, evecs = torch.linalg.eigh(cov)
    spread = (evecs * (len(mean) * evals).sqrt()).T
    return torch.cat([mean + spread, mean - spread])


def _gap(mean, cov, alpha, variance, *, prior="marginal", reduce="mean", sign=1.0,
         with_log_p=True):
    points = _sigma_points(mean, cov)
    elbo, _ = gaussian_data_elbo(points, mean, cov, alpha, reverse=variance, prior=prior)
    log_p = MultivariateNormal(mean, cov).log_prob(points) if with_log_p else 0.0
    gap = sign * (log_p - elbo)
    return gap.mean() if reduce == "mean" else gap.sum()


def variance_cost(mean, cov, alpha, variance):
    return _gap(mean, cov, alpha, variance)


def _variance_cost_from_step_terms(mean, cov, alpha, variance):
    """Same expectation as a difference of ELBOs: optimal kernels minus fixed variances."""
    points = _sigma_points(mean, cov)
    best, _ = gaussian_data_elbo(points, mean, cov, alpha)
    fixed, _ = gaussian_data_elbo(points, mean, cov, alpha, reverse=variance)
    return (best - fixed).mean()


REFERENCE = {
    "reverse_mean_from_eps": reverse_mean_from_eps,
    "variance_cost": variance_cost,
}
N_CASES = {
    "reverse_mean_from_eps": 6,
    "variance_cost": 6,
}
ALTERNATIVES = [
    ("reverse_mean_from_eps", _reverse_mean_via_x0),
    ("variance_cost", _variance_cost_from_step_terms),
]
MUTANTS = [
    (
        "reverse_mean_from_eps",
        "no_divide",
        lambda x, e, a, ab: x - (1 - a) / math.sqrt(1 - ab) * e,
        "divided by √α_t",
    ),
    (
        "reverse_mean_from_eps",
        "sqrt_noise",
        lambda x, e, a, ab: (x - math.sqrt(1 - a) * e) / math.sqrt(a),
        "not √(1 − α_t)",
    ),
    (
        "reverse_mean_from_eps",
        "x0_hat",
        lambda x, e, a, ab: (x - math.sqrt(1 - ab) * e) / math.sqrt(ab),
        "predicted clean data",
    ),
    (
        "reverse_mean_from_eps",
        "sign",
        lambda x, e, a, ab: (x + (1 - a) / math.sqrt(1 - ab) * e) / math.sqrt(a),
        "subtracted from x_t",
    ),
    (
        "variance_cost",
        "standard_prior",
        lambda m, c, a, v: _gap(m, c, a, v, prior="standard"),
        "includes the prior",
    ),
    (
        "variance_cost",
        "neg_elbo",
        lambda m, c, a, v: _gap(m, c, a, v, with_log_p=False),
        "returned −E[ELBO]",
    ),
    (
        "variance_cost",
        "sum_points",
        lambda m, c, a, v: _gap(m, c, a, v, reduce="sum"),
        "do not sum",
    ),
    (
        "variance_cost",
        "optimal",
        lambda m, c, a, v: _gap(m, c, a, "optimal"),
        "pass reverse=variance",
    ),
    (
        "variance_cost",
        "other_variance",
        lambda m, c, a, v: _gap(m, c, a, "forward" if v == "posterior" else "posterior"),
        "the other variance choice",
    ),
]
