"""Checks for the exercises of notebook 12 Diffusion (``notebooks/12_diffusion.ipynb``)."""

from __future__ import annotations

import math

import torch
from torch.distributions import MultivariateNormal, kl_divergence

from ..diffusion import alpha_bar, noise_schedule, reverse_variance
from ..diffusion_gaussian import gaussian_reverse_kernels
from ._runner import F64, Case, CheckResult, finish, gen, randn

__all__ = ["check_reverse_mean_from_eps", "check_variance_cost"]


# ------------------------------------------------------------ exercise 1: the reverse mean
def _reverse_mean_reference(x_t, eps, alpha_t, alpha_bar_t):
    """Plug x0_hat into the forward posterior mean (the route of section 2, not the simplified form)."""
    alpha_bar_prev = alpha_bar_t / alpha_t
    x0_hat = (x_t - math.sqrt(1 - alpha_bar_t) * eps) / math.sqrt(alpha_bar_t)
    coef_x0 = math.sqrt(alpha_bar_prev) * (1 - alpha_t) / (1 - alpha_bar_t)
    coef_xt = math.sqrt(alpha_t) * (1 - alpha_bar_prev) / (1 - alpha_bar_t)
    return coef_x0 * x0_hat + coef_xt * x_t


def _reverse_mean_mutants(x_t, eps, a, a_bar):
    right = (1 - a) / math.sqrt(1 - a_bar)
    return {
        "sqrt_noise": (x_t - math.sqrt(1 - a) * eps) / math.sqrt(a),
        "no_sqrt": (x_t - (1 - a) / (1 - a_bar) * eps) / math.sqrt(a),
        "no_divide": x_t - right * eps,
        "alpha_bar_divide": (x_t - right * eps) / math.sqrt(a_bar),
        "sign": (x_t + right * eps) / math.sqrt(a),
        "x0_hat": (x_t - math.sqrt(1 - a_bar) * eps) / math.sqrt(a_bar),
        "swapped": (x_t - (1 - a_bar) / math.sqrt(1 - a) * eps) / math.sqrt(a_bar),
    }


_REVERSE_MEAN_HINTS = {
    "sqrt_noise": (
        "the noise coefficient is (1 − α_t)/√(1 − ᾱ_t), not √(1 − α_t): the noise "
        "eps_hat is that of x_t given x_0 (all t steps), not of one step."
    ),
    "no_sqrt": "the noise coefficient divides by √(1 − ᾱ_t), not by (1 − ᾱ_t).",
    "no_divide": "the whole bracket (x_t − coefficient · eps_hat) is divided by √α_t.",
    "alpha_bar_divide": (
        "divide by √α_t (one step back), not by √ᾱ_t (all the way back to x_0)."
    ),
    "sign": "the predicted noise is subtracted from x_t, not added.",
    "x0_hat": (
        "you returned the predicted clean data x̂_0. The reverse step goes back ONE step: "
        "plug x̂_0 into the posterior mean μ̃_t and simplify."
    ),
    "swapped": "α_t and ᾱ_t are swapped: α_t is one step's factor, ᾱ_t the product up to t.",
}


def check_reverse_mean_from_eps(reverse_mean_from_eps) -> CheckResult:
    r"""Check ``reverse_mean_from_eps(x_t, eps_hat, alpha_t, alpha_bar_t) -> (B, D)`` (notebook 12).

    :math:`\mu_\theta=\big(x_t-\frac{1-\alpha_t}{\sqrt{1-\bar\alpha_t}}\hat\varepsilon\big)/\sqrt{\alpha_t}`.
    ``x_t``, ``eps_hat`` are float32 ``(B, D)`` tensors, ``alpha_t``, ``alpha_bar_t``
    Python floats. Reference: :math:`\hat x_0` plugged into the forward posterior
    mean :math:`\tilde\mu_t` in float64 (the unsimplified route).
    """
    g = gen(1201)

    def case(label, x_t, eps, a, a_bar, expected=None):
        x32, e32 = x_t.to(torch.float32), eps.to(torch.float32)
        xd, ed = x32.to(F64), e32.to(F64)
        ref = _reverse_mean_reference(xd, ed, a, a_bar) if expected is None else expected
        return Case(label, (x32, e32, a, a_bar), ref, _reverse_mean_mutants(xd, ed, a, a_bar))

    # the true noise of x_t given x_0 must give the forward posterior mean itself
    a, a_bar_prev = 0.97, 0.5
    a_bar = a * a_bar_prev
    x0, eps = randn(g, 3, 2), randn(g, 3, 2)
    x_t = math.sqrt(a_bar) * x0.to(F64) + math.sqrt(1 - a_bar) * eps.to(F64)
    x_t32 = x_t.to(torch.float32)
    mu_tilde = (
        math.sqrt(a_bar_prev) * (1 - a) / (1 - a_bar) * x0.to(F64)
        + math.sqrt(a) * (1 - a_bar_prev) / (1 - a_bar) * x_t32.to(F64)
    )
    eps_exact = (x_t32.to(F64) - math.sqrt(a_bar) * x0.to(F64)) / math.sqrt(1 - a_bar)
    cases = [
        case("eps_hat = 0: the mean is x_t / √α_t", randn(g, 4, 3), torch.zeros(4, 3), 0.98, 0.6),
        case("a batch of 5 in 3 dims, mid-chain (α_t = 0.98, ᾱ_t = 0.6)", randn(g, 5, 3),
             randn(g, 5, 3), 0.98, 0.6),
        case("the true noise: equals the forward posterior mean μ̃_t", x_t32,
             eps_exact.to(torch.float32), a, a_bar, expected=mu_tilde),
        case("first step (ᾱ_1 = α_1 = 0.9999): the mean is x̂_0", randn(g, 2, 4),
             randn(g, 2, 4), 0.9999, 0.9999),
        case("a late, noisy step (α_t = 0.05, ᾱ_t = 1e-4)", randn(g, 3, 2), randn(g, 3, 2),
             0.05, 1e-4),
        case("one point in 1 dimension, shape (1, 1)", torch.tensor([[0.7]]),
             torch.tensor([[-1.2]]), 0.9, 0.3),
    ]
    return finish(
        "reverse_mean_from_eps",
        reverse_mean_from_eps,
        cases,
        "tensor",
        _REVERSE_MEAN_HINTS,
        "start from μ̃_t = c₀ x̂_0 + c_t x_t with x̂_0 = (x_t − √(1 − ᾱ_t) eps_hat)/√ᾱ_t and "
        "collect the terms in x_t and in eps_hat; check eps_hat = 0 by hand first.",
    )


# --------------------------------------------------- exercise 2: cost of fixed variances
def _covariance_kls(mean, cov, alpha, variance, *, reverse_kl=False):
    """Sum over t of KL(N(0, Sigma_t) || N(0, sigma_t^2 I)) via torch.distributions."""
    _, _, sigma = gaussian_reverse_kernels(mean, cov, alpha)
    var = reverse_variance(alpha, variance).to(F64)
    zero, eye = torch.zeros_like(mean), torch.eye(mean.shape[0], dtype=F64)
    total = torch.zeros((), dtype=F64)
    for s_t, v_t in zip(sigma, var, strict=True):
        exact, fixed = MultivariateNormal(zero, s_t), MultivariateNormal(zero, v_t * eye)
        total = total + (kl_divergence(fixed, exact) if reverse_kl else kl_divergence(exact, fixed))
    return total


def _top_prior_kl(mean, cov, alpha):
    """KL(q(x_T) || N(0, I)), the extra cost of a standard-normal prior."""
    a_top = alpha_bar(alpha)[-1].to(F64)
    eye = torch.eye(mean.shape[0], dtype=F64)
    q_top = MultivariateNormal(a_top.sqrt() * mean, a_top * cov + (1 - a_top) * eye)
    return kl_divergence(q_top, MultivariateNormal(torch.zeros_like(mean), eye))


def _variance_cost_mutants(mean, cov, alpha, variance):
    ref = _covariance_kls(mean, cov, alpha, variance)
    other = "forward" if variance == "posterior" else "posterior"
    entropy = MultivariateNormal(mean, cov).entropy()
    return {
        "sign": -ref,
        "neg_elbo": entropy + ref,
        "standard_prior": ref + _top_prior_kl(mean, cov, alpha),
        "other_variance": _covariance_kls(mean, cov, alpha, other),
        "kl_reversed": _covariance_kls(mean, cov, alpha, variance, reverse_kl=True),
        "optimal": torch.zeros((), dtype=F64),
        "sum_points": 2 * mean.shape[0] * ref,
    }


_VARIANCE_COST_HINTS = {
    "sign": "a cost is log p(x_0) − ELBO, which is ≥ 0: you computed ELBO − log p(x_0).",
    "neg_elbo": (
        "you returned −E[ELBO]: the cost is the GAP log p(x_0) − ELBO, so subtract the ELBO "
        "from log N(x_0; mean, cov)."
    ),
    "standard_prior": (
        "your cost includes the prior's: keep p(x_T) = q(x_T) (the default prior=\"marginal\") "
        "so that only the variances are measured."
    ),
    "other_variance": (
        "you measured the other variance choice: pass reverse=variance to gaussian_data_elbo."
    ),
    "kl_reversed": (
        "the gap is KL(exact reverse kernel ‖ fixed-variance kernel), with the exact kernel "
        "first; you have the arguments swapped."
    ),
    "optimal": (
        "your cost is 0: gaussian_data_elbo uses the optimal kernels unless told otherwise; "
        "pass reverse=variance."
    ),
    "sum_points": "average the gap over the 2D sigma points; do not sum it.",
}


def check_variance_cost(variance_cost) -> CheckResult:
    r"""Check ``variance_cost(mean, cov, alpha, variance) -> scalar`` (notebook 12).

    The data-averaged gap :math:`\mathbb E_{x_0}[\log p(x_0)-\mathcal L(x_0)]` of the
    reverse chain with optimal means, fixed variances :math:`\sigma_t^2I` and prior
    :math:`q(x_T)`, for data :math:`\mathcal N(\mu_{\mathrm{data}},C)` (float64 arguments, ``variance``
    a string). Independent reference: :math:`\sum_t\mathrm{KL}(\mathcal N(0,\Sigma_t)\,\|\,
    \mathcal N(0,\sigma_t^2I))` with ``torch.distributions.kl_divergence``.
    """
    g = gen(1202)
    m2 = torch.tensor([1.0, -0.5], dtype=F64)
    c2 = torch.tensor([[0.30, 0.12], [0.12, 0.10]], dtype=F64)
    chol = torch.tril(randn(g, 3, 3).to(F64), -1) + torch.diag(torch.tensor([0.8, 0.5, 0.3], dtype=F64))
    m3, c3 = randn(g, 3).to(F64), chol @ chol.T

    def case(label, mean, cov, alpha, variance):
        ref = _covariance_kls(mean, cov, alpha, variance)
        mutants = _variance_cost_mutants(mean, cov, alpha, variance)
        return Case(label, (mean, cov, alpha, variance), ref, mutants, rtol=1e-5, atol=1e-6)

    linear20 = noise_schedule(20, "linear")
    head = noise_schedule(1000, "linear")[:100]  # signal left at the top: alpha_bar ~ 0.6
    cases = [
        case("section 3's data, linear T = 20, σ² = forward", m2, c2, linear20, "forward"),
        case("section 3's data, linear T = 20, σ² = posterior", m2, c2, linear20, "posterior"),
        case("3-D data, cosine T = 50, σ² = forward", m3, c3, noise_schedule(50, "cosine"),
             "forward"),
        case("a single step (T = 1): only the decoder term", m2, c2, noise_schedule(1), "forward"),
        case("a short chain that leaves signal at the top (ᾱ_T ≈ 0.6)", m2, c2, head, "forward"),
        case("narrow data (C = 0.01 I), linear T = 100, σ² = posterior", m2,
             0.01 * torch.eye(2, dtype=F64), noise_schedule(100, "linear"), "posterior"),
    ]
    return finish(
        "variance_cost",
        variance_cost,
        cases,
        "scalar",
        _VARIANCE_COST_HINTS,
        "compute log N(x_0; mean, cov) − ELBO at the sigma points of section 3 with "
        "reverse=variance and average; a Monte Carlo average over random x_0 is not exact enough.",
    )
