"""Checks for the exercises of notebook 02 The ELBO (``notebooks/02_*.ipynb``)."""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal, Poisson

from ..models import ConjugateGaussianModel
from ._runner import F64, Case, CheckResult, finish, gen, randn, to_f64

__all__ = ['check_mc_elbo', 'check_log_joint_poisson', 'check_log_evidence_quadrature']

def _std_normal_log_joint(z: torch.Tensor) -> torch.Tensor:
    return Normal(torch.zeros((), dtype=z.dtype), torch.ones((), dtype=z.dtype)).log_prob(z)


def _quartic_log_joint(z: torch.Tensor) -> torch.Tensor:
    # an unnormalized, non-Gaussian target: log p(x, z) = z - z^4 / 4
    return z - 0.25 * z.pow(4)


def _conjugate_log_joint(model: ConjugateGaussianModel, x: torch.Tensor):
    def log_joint(z: torch.Tensor) -> torch.Tensor:
        return model.log_joint(x.to(z.dtype), z)

    return log_joint


def _mc_elbo_mutants(log_joint, mu, sigma, eps) -> dict[str, torch.Tensor]:
    z = mu + sigma * eps
    lp = log_joint(z)
    q = Normal(mu, sigma)
    lq = q.log_prob(z)
    log_2pi = math.log(2 * math.pi)
    out = {
        "no_entropy": lp.mean(),
        "plus_logq": (lp + lq).mean(),
        "sum_samples": (lp - lq).sum(),
        "per_sample": lp - lq,
        "logq_var": (lp - Normal(mu, sigma.sqrt()).log_prob(z)).mean(),
        "logq_no_half": (
            lp - (-(z - mu).pow(2) / sigma.pow(2) - sigma.log() - 0.5 * log_2pi)
        ).mean(),
        "logq_no_const": (lp - (lq + 0.5 * log_2pi)).mean(),
        "logq_no_logsigma": (lp - (lq + sigma.log())).mean(),
        "at_eps": (log_joint(eps) - lq).mean(),
    }
    z2 = mu + sigma.pow(2) * eps
    out["z_var"] = (log_joint(z2) - q.log_prob(z2)).mean()
    return out


_MC_ELBO_HINTS = {
    "no_entropy": (
        "you averaged log p(x, z) only: the ELBO also subtracts log q(z) at the same samples."
    ),
    "plus_logq": "the log q(z) term enters the ELBO with a minus sign.",
    "sum_samples": "you summed over the S samples: the Monte Carlo estimate is their AVERAGE.",
    "per_sample": (
        "you returned one value per sample: return a single number, the average over the S samples."
    ),
    "logq_var": (
        "in log N(z; mu, σ²) the argument sigma is the standard deviation: you used it as a "
        "variance (or the other way round)."
    ),
    "logq_no_half": "the Gaussian log-density has a factor ½ in front of the squared term.",
    "logq_no_const": (
        "keep the normalizing constant of log q(z) (the log 2π part): the ELBO is compared "
        "with log p(x), so constants matter."
    ),
    "logq_no_logsigma": (
        "your log q(z) is missing its −log σ term: the density of z = mu + sigma·eps is the "
        "density of eps divided by sigma."
    ),
    "at_eps": "evaluate log_joint at the samples z = mu + sigma·eps, not at eps.",
    "z_var": (
        "the argument sigma is a standard deviation: the sample is mu + sigma·eps, not scaled by the "
        "variance."
    ),
}


def _mc_elbo_case(label, log_joint, mu, sigma, eps, expected=None, rtol=1e-4, atol=1e-4):
    mu32 = torch.tensor(float(mu))
    sigma32 = torch.tensor(float(sigma))
    eps32 = eps.to(torch.float32)
    dmu, dsigma, deps = to_f64(mu32), to_f64(sigma32), to_f64(eps32)
    z = dmu + dsigma * deps
    ref = (log_joint(z) - Normal(dmu, dsigma).log_prob(z)).mean()
    if expected is not None:
        ref = expected
    return Case(
        label,
        (log_joint, mu32, sigma32, eps32),
        ref,
        _mc_elbo_mutants(log_joint, dmu, dsigma, deps),
        rtol=rtol,
        atol=atol,
    )


def _mc_elbo_cases() -> list[Case]:
    """The six cases of :func:`check_mc_elbo`, with their references and mutants."""
    g = gen(202)
    model = ConjugateGaussianModel(0.5, 1.5, 0.8)
    x = torch.tensor([1.2, 0.4, 2.1, 1.7, 0.9, 1.4])
    post = model.posterior(x.to(F64))
    far_model = ConjugateGaussianModel(48.0, 5.0, 2.0)
    x_far = 50.0 + 2.0 * randn(g, 5)

    cases = [
        _mc_elbo_case(
            "q equals the normalized target N(0, 1): ELBO = 0",
            _std_normal_log_joint,
            0.0,
            1.0,
            randn(g, 8),
        ),
        _mc_elbo_case(
            "q = exact posterior of a conjugate model: ELBO = log p(x)",
            _conjugate_log_joint(model, x),
            float(post.mean),
            float(post.stddev),
            randn(g, 4),
            expected=model.log_evidence(x.to(F64)),
        ),
        _mc_elbo_case(
            "conjugate model, q away from the posterior, S = 16",
            _conjugate_log_joint(model, x),
            1.3,
            0.4,
            randn(g, 16),
        ),
        _mc_elbo_case("a single sample (S = 1)", _conjugate_log_joint(model, x), 0.2, 1.1, randn(g, 1)),
        _mc_elbo_case(
            "non-Gaussian target, narrow q, S = 2000",
            _quartic_log_joint,
            0.8,
            0.05,
            randn(g, 2000),
        ),
        _mc_elbo_case(
            "data far from zero (mu = 50, sigma = 3)",
            _conjugate_log_joint(far_model, x_far),
            50.0,
            3.0,
            randn(g, 10),
        ),
    ]
    return cases


def check_mc_elbo(mc_elbo) -> CheckResult:
    r"""Check ``mc_elbo(log_joint, mu, sigma, eps) -> scalar`` (notebook 02).

    With ``z = mu + sigma * eps`` (``eps`` of shape ``(S,)``) the function must return
    the average over the samples of ``log_joint(z) - log N(z; mu, sigma^2)``.
    ``mu`` and ``sigma`` are passed as 0-dim float32 tensors. References:
    ``torch.distributions.Normal.log_prob``, and the exact evidence of a conjugate
    model when ``q`` is its posterior (then every sample gives ``log p(x)``).
    """
    cases = _mc_elbo_cases()
    return finish(
        "mc_elbo",
        mc_elbo,
        cases,
        "scalar",
        _MC_ELBO_HINTS,
        "check each piece on the first failing case by hand: the samples z, log_joint(z), "
        "log q(z) (compare with torch.distributions.Normal(mu, sigma).log_prob(z)) and the "
        "average.",
    )




# ----------------------------------------------------------------------------- log_joint_poisson
def _poisson_reference(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, 1) + sum_n log Poisson(x_n; e^z), from torch.distributions (float64)."""
    prior = Normal(torch.zeros((), dtype=F64), torch.ones((), dtype=F64)).log_prob(z)
    return prior + Poisson(z.exp()[..., None]).log_prob(x).sum(-1)


def _poisson_mutants(z: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
    prior = Normal(torch.zeros((), dtype=F64), torch.ones((), dtype=F64)).log_prob(z)
    per_point = Poisson(z.exp()[..., None]).log_prob(x)  # (S, N)
    log_fact = torch.lgamma(x + 1.0).sum()
    return {
        "no_factorial": prior + per_point.sum(-1) + log_fact,
        "no_prior": per_point.sum(-1),
        "prior_no_const": prior + 0.5 * math.log(2 * math.pi) + per_point.sum(-1),
        "no_sum": prior[..., None] + per_point,
        "mean_over_n": prior + per_point.mean(-1),
        "rate_is_z": prior + (x * z[..., None] - z[..., None] - torch.lgamma(x + 1.0)).sum(-1),
        "prior_once_per_point": (prior[..., None] + per_point).sum(-1),
    }


_POISSON_HINTS = {
    "no_factorial": (
        "the Poisson log-probability has a −log(x_n!) term: keep it (torch.lgamma(x + 1) is log x!), "
        "since the ELBO is compared with log p(x)."
    ),
    "no_prior": "log p(x, z) = log p(z) + log p(x | z): the prior log N(z; 0, 1) is missing.",
    "prior_no_const": "keep the normalizing constant (the log 2π part) of the prior log-density.",
    "no_sum": (
        "you returned one value per sample AND data point: sum the log-likelihood over the N "
        "observations, so there is one value per sample z."
    ),
    "mean_over_n": "the observations are independent given z: SUM their log-likelihoods, do not average them.",
    "rate_is_z": (
        "z is the LOG of the Poisson rate: the rate is e^z, both in x_n·log(rate) = x_n·z and in the "
        "−rate term."
    ),
    "prior_once_per_point": "the prior log p(z) enters once, not once per observation.",
}


def check_log_joint_poisson(log_joint_poisson) -> CheckResult:
    r"""Check ``log_joint_poisson(z, x) -> (S,)`` (notebook 02).

    The model: :math:`z\sim\mathcal N(0,1)`, :math:`x_n\mid z\sim\mathrm{Poisson}(e^z)`,
    :math:`n=1..N`. The function must return
    :math:`\log p(x,z)=\log\mathcal N(z;0,1)+\sum_n[x_n z-e^z-\log x_n!]` for every
    entry of ``z`` (shape ``(S,)``); ``x`` is a float ``(N,)`` tensor of counts.
    Reference: ``torch.distributions.Poisson`` and ``Normal``.
    """
    g = gen(212)

    def case(label, z, x):
        z32, x32 = z.to(torch.float32), x.to(torch.float32)
        dz, dx = to_f64(z32), to_f64(x32)
        return Case(label, (z32, x32), _poisson_reference(dz, dx), _poisson_mutants(dz, dx))

    cases = [
        case("one count x = 2, z = 0 and z = log 2", torch.tensor([0.0, math.log(2.0)]), torch.tensor([2.0])),
        case("five counts, 7 values of z", torch.linspace(-1.0, 2.0, 7), torch.tensor([3.0, 1.0, 4.0, 2.0, 5.0])),
        case("all counts 0: e^z is the whole likelihood", randn(g, 4), torch.zeros(6)),
        case(
            "large counts (x ≈ 200, z near log 200)",
            math.log(200.0) + 0.05 * randn(g, 5),
            torch.tensor([190.0, 205.0, 211.0, 198.0]),
        ),
        case("S = 1000 samples, 12 counts", 0.5 * randn(g, 1000) + 1.0, torch.poisson(torch.full((12,), 3.0), generator=g)),
    ]
    return finish(
        "log_joint_poisson",
        log_joint_poisson,
        cases,
        "tensor",
        _POISSON_HINTS,
        "on the first failing case compare your value with the three pieces separately: the prior "
        "log N(z; 0, 1), then x_n·z − e^z and −log x_n! for one observation.",
    )


# ----------------------------------------------------------------------------- log_evidence_quadrature
def _lse_trapezoid(log_f: torch.Tensor, z_grid: torch.Tensor) -> torch.Tensor:
    """log of the trapezoid rule for the integral of exp(log_f), by log-sum-exp (float64)."""
    top = log_f.max()
    return top + torch.log(torch.trapezoid((log_f - top).exp(), z_grid))


def _quadrature_mutants(log_f: torch.Tensor, z_grid: torch.Tensor) -> dict[str, torch.Tensor]:
    dz = z_grid.diff()
    with torch.no_grad():
        naive = torch.log(torch.trapezoid(log_f.exp(), z_grid))
    return {
        "no_lse": naive,
        "no_log": _lse_trapezoid(log_f, z_grid).exp(),
        "riemann": torch.logsumexp(log_f[:-1] + dz.log(), 0),
        "no_dz": torch.logsumexp(log_f, 0),
        "mean": torch.logsumexp(log_f, 0) - math.log(log_f.numel()),
        "laplace_peak": log_f.max(),
    }


_QUADRATURE_HINTS = {
    "no_lse": (
        "exp(log p(x, z)) underflows to 0 (or overflows to inf) when the log joint is far from 0: "
        "subtract its maximum before exponentiating and add it back after the log (the log-sum-exp trick)."
    ),
    "no_log": "return the LOG evidence, log p(x), not p(x).",
    "riemann": (
        "use the trapezoid rule (torch.trapezoid), not a left Riemann sum: the two differ where the "
        "integrand is not negligible at the ends of the grid."
    ),
    "no_dz": "an integral is a sum weighted by the grid spacing: the spacing Δz is missing.",
    "mean": "an integral is not an average over the grid points: weight by the spacing, do not divide by the number of points.",
    "laplace_peak": "integrate exp(log p(x, z)) over the whole grid: its maximum alone is not the evidence.",
}


def check_log_evidence_quadrature(log_evidence_quadrature) -> CheckResult:
    r"""Check ``log_evidence_quadrature(log_joint, z_grid) -> scalar`` (notebook 02).

    The function must return :math:`\log\int\exp(\log p(x,z))\,dz` by the
    trapezoid rule on ``z_grid`` (an increasing 1-D tensor, not necessarily evenly
    spaced), computed stably (the log-sum-exp trick), so that log joints around
    :math:`\pm 1000` nats work. References: the exact evidence of
    :class:`~vi_helpers.models.ConjugateGaussianModel` and ``torch.trapezoid`` in float64.
    """
    model = ConjugateGaussianModel(0.5, 1.5, 0.8)
    x = torch.tensor([1.2, 0.4, 2.1, 1.7, 0.9, 1.4], dtype=F64)

    def conjugate(z):
        return model.log_joint(x, z.to(F64))

    def shifted(shift):
        def log_joint(z):
            return conjugate(z) + shift

        return log_joint

    def rising(z):  # exp(z) on [0, 1]: far from 0 at both ends, so the ends of the grid count
        return z.to(F64)

    def case(label, log_joint, z_grid, expected=None):
        z32 = z_grid.to(torch.float32)
        log_f = log_joint(to_f64(z32)).to(F64)
        ref = _lse_trapezoid(log_f, to_f64(z32)) if expected is None else torch.tensor(expected, dtype=F64)
        return Case(label, (log_joint, z32), ref, _quadrature_mutants(log_f, to_f64(z32)), rtol=1e-5, atol=1e-4)

    grid = torch.linspace(-6.0, 8.0, 2801)
    cases = [
        case("standard normal density: log ∫ N(z; 0, 1) dz = 0", lambda z: -0.5 * z**2 - 0.5 * math.log(2 * math.pi),
             torch.linspace(-10.0, 10.0, 2001), 0.0),
        case("conjugate Gaussian model: equals the exact log p(x)", conjugate, grid,
             float(model.log_evidence(x))),
        case("log joint near -1000 nats (exp underflows)", shifted(-1000.0), grid),
        case("log joint near +800 nats (exp overflows)", shifted(800.0), grid),
        case("exp(z) on [0, 1], 11 points: the ends of the grid count", rising, torch.linspace(0.0, 1.0, 11)),
        case("unevenly spaced grid", conjugate, torch.cat([torch.linspace(-6.0, 0.0, 301)[:-1],
                                                          torch.linspace(0.0, 8.0, 2001)])),
    ]
    return finish(
        "log_evidence_quadrature",
        log_evidence_quadrature,
        cases,
        "scalar",
        _QUADRATURE_HINTS,
        "on the first failing case compare with torch.trapezoid applied to exp(log_joint(z_grid) − max), "
        "then add the maximum back after the log.",
    )
