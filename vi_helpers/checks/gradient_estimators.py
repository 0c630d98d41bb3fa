"""Checks for the exercises of notebook 04 Gradient estimators (``notebooks/04_*.ipynb``)."""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal
from torch.distributions.transforms import AffineTransform

from ._runner import Case, CheckResult, finish, gen, randn, to_f64

__all__ = ['check_score_function_grad_mu', 'check_reparameterize']

def _score_reference(f, mu, sigma, eps):
    """f(z) * d/dmu log N(z; mu, sigma^2) per sample, the score taken by autograd."""
    z = (mu + sigma * eps).detach()

    def log_q(m):
        return Normal(m, sigma).log_prob(z)

    score = torch.autograd.functional.jacobian(log_q, mu)  # (S,) since mu is 0-dim
    return f(z) * score


def _score_mutants(f, mu, sigma, eps):
    z = mu + sigma * eps
    fz = f(z)
    right = fz * (z - mu) / sigma.pow(2)
    return {
        "div_sigma": fz * (z - mu) / sigma,
        "no_div": fz * (z - mu),
        "sign": -right,
        "mean": right.mean(),
        "sum": right.sum(),
        "no_f": (z - mu) / sigma.pow(2),
        "f_at_eps": f(eps) * (z - mu) / sigma.pow(2),
    }


_SCORE_HINTS = {
    "div_sigma": (
        "you divided by σ where the variance σ² belongs: the score of a Gaussian's mean is "
        "measured in units of its variance."
    ),
    "no_div": "the score ∂/∂μ log N(z; μ, σ²) is scaled by the inverse variance; yours is not.",
    "sign": "wrong sign: the score with respect to μ is positive when z lies above μ.",
    "mean": (
        "return one term per sample (shape (S,)); the notebook averages them itself to study "
        "their variance."
    ),
    "sum": (
        "return one term per sample (shape (S,)); the notebook averages them itself to study "
        "their variance."
    ),
    "no_f": "multiply the score by f(z): each sample's score is weighted by the function value.",
    "f_at_eps": "evaluate f at the samples z = mu + sigma·eps, not at eps.",
}


def check_score_function_grad_mu(score_function_grad_mu) -> CheckResult:
    r"""Check ``score_function_grad_mu(f, mu, sigma, eps) -> (S,)`` (notebook 04).

    One score-function (REINFORCE) term per sample for the gradient of
    :math:`\mathbb E_{\mathcal N(\mu,\sigma^2)} f(z)` with respect to ``mu``, at
    ``z = mu + sigma * eps``. ``mu``, ``sigma`` are 0-dim float32 tensors, ``eps``
    ``(S,)``. Reference: ``f(z)`` times the score of ``Normal(mu, sigma).log_prob``
    differentiated by autograd.
    """
    g = gen(404)

    def one(z):
        return torch.ones_like(z)

    def square(z):
        return z.pow(2)

    def identity(z):
        return z

    def case(label, f, mu, sigma, eps):
        mu32, sigma32 = torch.tensor(float(mu)), torch.tensor(float(sigma))
        eps32 = eps.to(torch.float32)
        dmu, dsigma, deps = to_f64(mu32), to_f64(sigma32), to_f64(eps32)
        return Case(
            label,
            (f, mu32, sigma32, eps32),
            _score_reference(f, dmu, dsigma, deps),
            _score_mutants(f, dmu, dsigma, deps),
        )

    cases = [
        case("f(z) = 1, mu = 0, sigma = 1", one, 0.0, 1.0, randn(g, 5)),
        case("f(z) = z², mu = 0.5, sigma = 1, S = 6", square, 0.5, 1.0, randn(g, 6)),
        case("f(z) = z², mu = -1, sigma = 2 (variance ≠ std)", square, -1.0, 2.0, randn(g, 6)),
        case("f(z) = sin z, sigma = 0.5, a single sample", torch.sin, 0.3, 0.5, randn(g, 1)),
        case("f(z) = z, large mu = 100, sigma = 3", identity, 100.0, 3.0, randn(g, 8)),
    ]
    return finish(
        "score_function_grad_mu",
        score_function_grad_mu,
        cases,
        "tensor",
        _SCORE_HINTS,
        "write the score ∂/∂μ log N(z; μ, σ²) on paper first, then check your function on "
        "one sample by hand (you can compare with torch.autograd on Normal(mu, sigma).log_prob).",
    )


def _reparam_mutants(mu, log_var, eps):
    std = (0.5 * log_var).exp()
    return {
        "exp_var": mu + log_var.exp() * eps,
        "no_exp": mu + log_var * eps,
        "log_std": mu + log_var.exp().pow(2) * eps,
        "minus": mu - std * eps,
        "no_mu": std * eps,
    }


_REPARAM_HINTS = {
    "exp_var": (
        "the exponential of log_var is the variance σ²: scale eps by the standard deviation σ "
        "instead."
    ),
    "no_exp": (
        "the argument log_var is a logarithm: turn it into a standard deviation before scaling eps."
    ),
    "log_std": (
        "the argument log_var is the log of the variance, so the standard deviation is "
        "smaller than what you used."
    ),
    "minus": "add the scaled noise to mu (with a minus sign z would not be the sample for eps).",
    "no_mu": "the sample is centred at mu: you forgot to add mu.",
    "own_noise": (
        "your function draws its own noise (torch.randn_like?): two calls with the same "
        "eps gave different z. Use the eps argument: the whole point of the "
        "reparameterization is that z is a deterministic function of (mu, log_var, eps)."
    ),
    "no_grad": (
        "gradients do not reach mu and log_var: build z from them with tensor operations "
        "(no .detach(), no torch.no_grad(), no torch.tensor(...) around intermediate values)."
    ),
    "grad_wrong": (
        "the value is right but its gradient with respect to mu or log_var is not: compute z "
        "directly from mu, log_var and eps."
    ),
}


def _reparam_grad_post(out, args) -> str | None:
    mu, log_var, eps = args
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return "no_grad"
    try:
        g_mu, g_lv = torch.autograd.grad(
            out.sum(), (mu, log_var), allow_unused=True, retain_graph=False
        )
    except RuntimeError:
        return "no_grad"
    if g_mu is None or g_lv is None:
        return "no_grad"
    want_lv = 0.5 * (0.5 * to_f64(log_var)).exp() * to_f64(eps)
    if not torch.allclose(to_f64(g_mu), torch.ones_like(to_f64(g_mu)), rtol=1e-4, atol=1e-4):
        return "grad_wrong"
    if not torch.allclose(to_f64(g_lv), want_lv, rtol=1e-4, atol=1e-4):
        return "grad_wrong"
    return None


def _reparam_own_noise_probe(fn) -> str | None:
    """Call ``fn`` twice on the same inputs under two RNG seeds: a correct answer is equal."""
    mu, log_var, eps = torch.zeros(6), torch.zeros(6), torch.ones(6)
    outs = []
    for seed in (1, 2):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            try:
                outs.append(fn(mu.clone(), log_var.clone(), eps.clone()))
            except Exception:  # errors are reported by the cases themselves
                return None
    a, b = outs
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape:
        return None if torch.equal(a.detach(), b.detach()) else "own_noise"
    return None


def check_reparameterize(reparameterize) -> CheckResult:
    r"""Check ``reparameterize(mu, log_var, eps) -> z`` (notebook 04).

    ``z`` must be the sample of :math:`\mathcal N(\mu, \mathrm{diag}\,e^{\log\sigma^2})`
    obtained from the standard normal noise ``eps`` (same shape), differentiable
    in ``mu`` and ``log_var``. Reference: ``torch.distributions``'
    ``AffineTransform`` with scale ``sqrt(exp(log_var))``; the gradient case
    compares autograd's gradients with their closed form.
    """
    g = gen(505)

    def case(label, mu, log_var, eps, grad=False):
        a = tuple(t.to(torch.float32) for t in (mu, log_var, eps))
        dmu, dlv, deps = (to_f64(t) for t in a)
        ref = AffineTransform(loc=dmu, scale=dlv.exp().sqrt())(deps)
        if grad:
            a = (a[0].requires_grad_(), a[1].requires_grad_(), a[2])
        return Case(
            label,
            a,
            ref,
            _reparam_mutants(dmu, dlv, deps),
            post=_reparam_grad_post if grad else None,
        )

    cases = [
        case("mu = 0, log_var = 0: z equals eps", torch.zeros(4), torch.zeros(4), randn(g, 4)),
        case(
            "log_var = log 4 (sigma = 2)",
            torch.tensor([1.0, -1.0, 0.5]),
            torch.full((3,), math.log(4.0)),
            randn(g, 3),
        ),
        case(
            "batch of 8 in 2 dims, shape (8, 2)", randn(g, 8, 2), randn(g, 8, 2), randn(g, 8, 2)
        ),
        case(
            "large mu (±1000) and small variance",
            1000.0 * torch.tensor([1.0, -1.0, 0.5]),
            torch.full((3,), -10.0),
            randn(g, 3),
        ),
        case(
            "gradients reach mu and log_var",
            randn(g, 5),
            0.5 * randn(g, 5),
            randn(g, 5),
            grad=True,
        ),
    ]
    return finish(
        "reparameterize",
        reparameterize,
        cases,
        "tensor",
        _REPARAM_HINTS,
        "print mu, log_var, eps and your z for the first failing case, and compute one "
        "entry by hand.",
        probe=_reparam_own_noise_probe,
    )


