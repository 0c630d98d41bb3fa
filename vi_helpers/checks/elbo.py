"""Checks for the exercises of notebook 02 The ELBO (``notebooks/02_*.ipynb``)."""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal

from ..models import ConjugateGaussianModel
from ._runner import F64, Case, CheckResult, finish, gen, randn, to_f64

__all__ = ['check_mc_elbo']

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


def check_mc_elbo(mc_elbo) -> CheckResult:
    r"""Check ``mc_elbo(log_joint, mu, sigma, eps) -> scalar`` (notebook 02).

    With ``z = mu + sigma * eps`` (``eps`` of shape ``(S,)``) the function must return
    the average over the samples of ``log_joint(z) - log N(z; mu, sigma^2)``.
    ``mu`` and ``sigma`` are passed as 0-dim float32 tensors. References:
    ``torch.distributions.Normal.log_prob``, and the exact evidence of a conjugate
    model when ``q`` is its posterior (then every sample gives ``log p(x)``).
    """
    g = gen(202)
    model = ConjugateGaussianModel(0.5, 1.5, 0.8)
    x = torch.tensor([1.2, 0.4, 2.1, 1.7, 0.9, 1.4])
    post = model.posterior(x.to(F64))
    far_model = ConjugateGaussianModel(48.0, 5.0, 2.0)
    x_far = 50.0 + 2.0 * randn(g, 5)

    def case(label, log_joint, mu, sigma, eps, expected=None, rtol=1e-4, atol=1e-4):
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

    cases = [
        case(
            "q equals the normalized target N(0, 1): ELBO = 0",
            _std_normal_log_joint,
            0.0,
            1.0,
            randn(g, 8),
        ),
        case(
            "q = exact posterior of a conjugate model: ELBO = log p(x)",
            _conjugate_log_joint(model, x),
            float(post.mean),
            float(post.stddev),
            randn(g, 4),
            expected=model.log_evidence(x.to(F64)),
        ),
        case(
            "conjugate model, q away from the posterior, S = 16",
            _conjugate_log_joint(model, x),
            1.3,
            0.4,
            randn(g, 16),
        ),
        case("a single sample (S = 1)", _conjugate_log_joint(model, x), 0.2, 1.1, randn(g, 1)),
        case(
            "non-Gaussian target, narrow q, S = 2000",
            _quartic_log_joint,
            0.8,
            0.05,
            randn(g, 2000),
        ),
        case(
            "data far from zero (mu = 50, sigma = 3)",
            _conjugate_log_joint(far_model, x_far),
            50.0,
            3.0,
            randn(g, 10),
        ),
    ]
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


