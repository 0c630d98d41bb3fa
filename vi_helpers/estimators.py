r"""Monte Carlo gradient estimators: score function, pathwise, sticking the landing.

The problem: estimate the gradient of an expectation with respect to the
parameters of the distribution it is taken under,

.. math::
    \nabla_\theta\,\mathbb E_{z\sim\mathcal N(\mu,\sigma^2)}[f(z)],
    \qquad \theta = (\mu, \sigma).

* The **score-function** (REINFORCE, likelihood-ratio) estimator uses
  :math:`\nabla_\theta\mathbb E_q f = \mathbb E_q[f(z)\,\nabla_\theta\log q(z)]`. It
  needs only values of ``f`` (``f`` may be a black box or discontinuous) but its
  variance is often large; subtracting a baseline ``b`` that does not depend on
  ``z`` keeps it unbiased because :math:`\mathbb E_q\nabla_\theta\log q = 0`.
* The **pathwise** (reparameterization) estimator writes
  :math:`z = \mu+\sigma\varepsilon,\ \varepsilon\sim\mathcal N(0,1)` and
  differentiates through ``f``: :math:`\partial_\mu = f'(z)`,
  :math:`\partial_\sigma = f'(z)\,\varepsilon`. It needs a differentiable ``f``
  and usually has far lower variance.

For :math:`f(z) = (z-k)^2` every mean and variance is known in closed form
(functions ``*_quadratic`` below), which makes it the reference test case.

Shapes: ``mu`` and ``sigma`` are tensors of one shape (a scalar ``()`` or a
vector ``(D,)``; any shape works). ``f`` receives ``z`` of shape
``(S, *mu.shape)`` and must return ``(S,)``: one value per sample, each row
treated independently. Estimators return **single-sample estimates** of shape
``(S, *mu.shape)``; average over dim 0 for the Monte Carlo estimate, and use
their variance over dim 0 to compare estimators.

References:
    Mohamed, Rosca, Figurnov & Mnih (2020), Monte Carlo Gradient Estimation in
    Machine Learning, JMLR 21(132).
    Williams (1992), Simple statistical gradient-following algorithms (REINFORCE).
    Kingma & Welling (2014), Auto-Encoding Variational Bayes.
    Ranganath, Gerrish & Blei (2014), Black Box Variational Inference.
    Roeder, Wu & Duvenaud (2017), Sticking the Landing.

Black-box VI built on these estimators is in :mod:`vi_helpers.bbvi`.
"""

from __future__ import annotations

import math
import numbers

import torch

from ._validate import (
    as_elementwise_tensors,
    check_function_values,
    check_generator,
    check_positive_int,
    check_same_shape,
    check_tensor,
)

__all__ = [
    "score_function_gradient",
    "pathwise_gradient",
    "true_gradient_quadratic",
    "variance_score_function_quadratic",
    "variance_pathwise_quadratic",
    "score_function_terms",
    "pathwise_terms",
]


# -- shared checks ----------------------------------------------------------------------


def _check_params(f, mu, sigma, n_samples, generator) -> int:
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    check_tensor("mu", mu)
    check_tensor("sigma", sigma)
    check_same_shape("mu", mu, "sigma", sigma)
    if bool((sigma <= 0).any()):
        raise ValueError(f"sigma must be > 0, got minimum {float(sigma.min()):.4g}")
    n_samples = check_positive_int("n_samples", n_samples)
    check_generator(generator)
    return n_samples


def _noise(mu: torch.Tensor, n_samples: int, generator) -> torch.Tensor:
    return torch.randn(
        (n_samples, *mu.shape), dtype=mu.dtype, device=mu.device, generator=generator
    )


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """View ``(S,)`` as ``(S, 1, ..., 1)`` so it multiplies ``(S, *mu.shape)`` row by row."""
    return values.reshape(values.shape[0], *([1] * (like.dim() - 1)))


# -- score function ---------------------------------------------------------------------


def score_function_terms(f, mu, sigma, n_samples, baseline, generator, name="f"):
    """Score-function single-sample gradients and the values ``f(z_s)``."""
    mu, sigma = mu.detach(), sigma.detach()
    eps = _noise(mu, n_samples, generator)
    z = mu + sigma * eps
    with torch.no_grad():  # the estimator needs values of f only
        fz = check_function_values(f(z), n_samples, z, name)
    if baseline is None:
        weight = fz
    elif isinstance(baseline, str):
        if baseline != "mean":
            raise ValueError(
                f"baseline must be None, a number, a tensor or 'mean', got {baseline!r}"
            )
        if n_samples < 2:
            raise ValueError('n_samples must be >= 2 with baseline="mean" (leave-one-out)')
        # Leave-one-out: b_s = mean of the *other* samples' f, independent of z_s,
        # so E[(f_s - b_s) score_s] = E[f_s score_s] and the estimator stays unbiased.
        loo = (fz.sum() - fz) / (n_samples - 1)
        weight = fz - loo
    elif isinstance(baseline, torch.Tensor):
        check_tensor("baseline", baseline, ndim=0)
        weight = fz - baseline.detach().to(fz)
    elif isinstance(baseline, numbers.Real) and not isinstance(baseline, bool):
        if not math.isfinite(float(baseline)):
            raise ValueError(f"baseline must be finite, got {baseline}")
        weight = fz - float(baseline)
    else:
        raise TypeError(
            f"baseline must be None, a number, a 0-dim tensor or 'mean', "
            f"got {type(baseline).__name__}"
        )
    w = _per_sample(weight, z)
    diff = z - mu
    score_mu = diff / sigma.pow(2)
    score_sigma = (diff.pow(2) - sigma.pow(2)) / sigma.pow(3)
    return w * score_mu, w * score_sigma, fz


def score_function_gradient(
    f,
    mu: torch.Tensor,
    sigma: torch.Tensor,
    n_samples: int,
    *,
    baseline=None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Single-sample score-function estimates of :math:`\nabla_{\mu,\sigma}\mathbb E_{\mathcal N(\mu,\sigma^2)}f`.

    For :math:`z_s=\mu+\sigma\varepsilon_s`:

    .. math::
        \hat g_\mu^{(s)} = (f(z_s)-b_s)\,\frac{z_s-\mu}{\sigma^2},\qquad
        \hat g_\sigma^{(s)} = (f(z_s)-b_s)\,\frac{(z_s-\mu)^2-\sigma^2}{\sigma^3}

    (elementwise in the coordinates of ``mu``). Each estimate is unbiased
    whenever :math:`b_s` does not depend on :math:`z_s`.

    Args:
        f: callable, ``z (S, *mu.shape) -> (S,)``; only its values are used (no
            gradient), so it may be any black box returning a tensor.
        mu: mean, a tensor of any shape (usually ``()`` or ``(D,)``).
        sigma: standard deviation (> 0), same shape as ``mu``.
        n_samples: ``S`` >= 1.
        baseline: ``None`` (:math:`b=0`); a number or 0-dim tensor (a constant
            :math:`b`); or ``"mean"``, the leave-one-out mean
            :math:`b_s=\frac{1}{S-1}\sum_{t\ne s}f(z_t)` (needs ``S >= 2``), which is
            independent of :math:`z_s` and so keeps every estimate unbiased.
        generator: optional ``torch.Generator`` for the noise.

    Returns:
        ``(grad_mu, grad_sigma)``, each ``(S, *mu.shape)``: one estimate per
        sample. Their mean over dim 0 is the Monte Carlo gradient.
    """
    n_samples = _check_params(f, mu, sigma, n_samples, generator)
    grad_mu, grad_sigma, _ = score_function_terms(f, mu, sigma, n_samples, baseline, generator)
    return grad_mu, grad_sigma


# -- pathwise ---------------------------------------------------------------------------


def pathwise_terms(f, mu, sigma, n_samples, generator, name="f"):
    """Pathwise single-sample gradients and the values ``f(z_s)``."""
    mu, sigma = mu.detach(), sigma.detach()
    eps = _noise(mu, n_samples, generator)
    z = (mu + sigma * eps).requires_grad_(True)
    with torch.enable_grad():  # works inside a caller's torch.no_grad() too
        fz = check_function_values(f(z), n_samples, z, name)
        if not fz.requires_grad:
            raise ValueError(
                f"{name}(z) does not depend on z through differentiable torch operations; "
                f"the pathwise estimator needs a differentiable {name} (use the score function)"
            )
        # Samples are independent rows, so d(sum_s f(z_s))/dz_s = f'(z_s): one
        # backward pass gives every per-sample gradient.
        (dfdz,) = torch.autograd.grad(fz.sum(), z, allow_unused=True)
    if dfdz is None:
        dfdz = torch.zeros_like(z)
    return dfdz, dfdz * eps, fz.detach()


def pathwise_gradient(
    f,
    mu: torch.Tensor,
    sigma: torch.Tensor,
    n_samples: int,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Single-sample pathwise (reparameterization) estimates of :math:`\nabla_{\mu,\sigma}\mathbb E f`.

    With :math:`z_s=\mu+\sigma\varepsilon_s` the chain rule gives

    .. math::
        \hat g_\mu^{(s)} = \nabla_z f(z_s),\qquad
        \hat g_\sigma^{(s)} = \nabla_z f(z_s)\odot\varepsilon_s,

    computed by autograd in one backward pass of :math:`\sum_s f(z_s)` (valid
    because ``f`` treats the rows of ``z`` independently). Unbiased for
    differentiable ``f``.

    Args:
        f: callable, ``z (S, *mu.shape) -> (S,)`` written in differentiable torch
            operations, treating each row of ``z`` independently.
        mu: mean, a tensor of any shape (usually ``()`` or ``(D,)``).
        sigma: standard deviation (> 0), same shape as ``mu``.
        n_samples: ``S`` >= 1.
        generator: optional ``torch.Generator`` for the noise.

    Returns:
        ``(grad_mu, grad_sigma)``, each ``(S, *mu.shape)``, detached.

    Raises:
        ValueError: ``f``'s output does not depend differentiably on ``z``.
    """
    n_samples = _check_params(f, mu, sigma, n_samples, generator)
    grad_mu, grad_sigma, _ = pathwise_terms(f, mu, sigma, n_samples, generator)
    return grad_mu, grad_sigma


# -- closed forms for f(z) = (z - k)^2 --------------------------------------------------


def _quadratic_args(mu, sigma, k):
    mu, sigma, k = as_elementwise_tensors(mu=mu, sigma=sigma, k=k)
    if bool((sigma <= 0).any()):
        raise ValueError(f"sigma must be > 0, got minimum {float(sigma.min()):.4g}")
    return mu - k, sigma


def true_gradient_quadratic(mu, sigma, k) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Exact gradient of :math:`\mathbb E_{\mathcal N(\mu,\sigma^2)}(z-k)^2=(\mu-k)^2+\sigma^2`.

    Args:
        mu, sigma, k: tensors of one shape or Python numbers; ``sigma > 0``.

    Returns:
        ``(2 (mu - k), 2 sigma)``, elementwise.
    """
    a, sigma = _quadratic_args(mu, sigma, k)
    return 2.0 * a, 2.0 * sigma


def variance_score_function_quadratic(mu, sigma, k) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Variance of one score-function estimate (no baseline) for :math:`f(z)=(z-k)^2`.

    With :math:`a=\mu-k`, :math:`f=(a+\sigma\varepsilon)^2` and the Gaussian
    moments :math:`\mathbb E\varepsilon^{2}=1,\ \mathbb E\varepsilon^{4}=3,\
    \mathbb E\varepsilon^{6}=15,\ \mathbb E\varepsilon^{8}=105`:

    .. math::
        \mathrm{Var}\,\hat g_\mu = \frac{\mathbb E[(a+\sigma\varepsilon)^4\varepsilon^2]}{\sigma^2}-4a^2
        = \frac{a^4+18a^2\sigma^2+15\sigma^4}{\sigma^2}-4a^2
        = \frac{a^4}{\sigma^2}+14a^2+15\sigma^2,

    .. math::
        \mathrm{Var}\,\hat g_\sigma = \frac{\mathbb E[(a+\sigma\varepsilon)^4(\varepsilon^2-1)^2]}{\sigma^2}-4\sigma^2
        = \frac{2a^4+60a^2\sigma^2+78\sigma^4}{\sigma^2}-4\sigma^2
        = \frac{2a^4}{\sigma^2}+60a^2+74\sigma^2.

    At :math:`\mu=\sigma=1,k=0`: 30 and 136 (pathwise: 4 and 12).

    Args:
        mu, sigma, k: tensors of one shape or Python numbers; ``sigma > 0``.

    Returns:
        ``(var_mu, var_sigma)``, elementwise.
    """
    a, sigma = _quadratic_args(mu, sigma, k)
    a2, s2 = a.pow(2), sigma.pow(2)
    return a2.pow(2) / s2 + 14.0 * a2 + 15.0 * s2, 2.0 * a2.pow(2) / s2 + 60.0 * a2 + 74.0 * s2


def variance_pathwise_quadratic(mu, sigma, k) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Variance of one pathwise estimate for :math:`f(z)=(z-k)^2`.

    :math:`\hat g_\mu = 2(a+\sigma\varepsilon)` and
    :math:`\hat g_\sigma = 2(a+\sigma\varepsilon)\varepsilon` with :math:`a=\mu-k`, so

    .. math::
        \mathrm{Var}\,\hat g_\mu = 4\sigma^2,\qquad
        \mathrm{Var}\,\hat g_\sigma = 4(a^2+3\sigma^2)-4\sigma^2 = 4a^2+8\sigma^2.

    Args:
        mu, sigma, k: tensors of one shape or Python numbers; ``sigma > 0``.

    Returns:
        ``(var_mu, var_sigma)``, elementwise.
    """
    a, sigma = _quadratic_args(mu, sigma, k)
    return 4.0 * sigma.pow(2), 4.0 * a.pow(2) + 8.0 * sigma.pow(2)


# -- the ELBO's own gradient: sticking the landing ---------------------------------------


def elbo_gradient_pathwise(
    log_joint,
    mu: torch.Tensor,
    sigma: torch.Tensor,
    n_samples: int,
    *,
    sticking_the_landing: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Single-sample pathwise estimates of the ELBO's gradient for :math:`q=\mathcal N(m, \mathrm{diag}\,s^2)`.

    The ELBO integrand depends on the parameters twice, through the sample
    :math:`z=m+s\odot\varepsilon` and through :math:`\log q_{m,s}` itself:

    .. math::
        \mathcal L(m,s) = \mathbb E_\varepsilon\big[\log p(x,z) - \log q_{m,s}(z)\big],
        \qquad \frac{d}{d\theta} = \underbrace{\big(\nabla_z\log p(x,z)-\nabla_z\log q_\theta(z)\big)
        \frac{\partial z}{\partial\theta}}_{\text{path}}
        \;-\; \underbrace{\nabla_\theta\log q_\theta(z)\big|_{z\ \text{fixed}}}_{\text{score, mean } 0}.

    The ordinary estimator keeps both terms; for a Gaussian they combine to
    :math:`\hat g_m=\nabla_z\log p(x,z)`, :math:`\hat g_s=\nabla_z\log p(x,z)\odot\varepsilon+1/s`
    (the exact entropy gradient). **Sticking the landing** (Roeder, Wu &
    Duvenaud 2017) drops the score term, whose expectation is zero
    (:math:`\mathbb E_q\nabla_\theta\log q_\theta=0`), so it stays unbiased:

    .. math::
        \hat g_m^{\rm STL} = \nabla_z\log p(x,z) + \varepsilon/s,\qquad
        \hat g_s^{\rm STL} = \big(\nabla_z\log p(x,z) + \varepsilon/s\big)\odot\varepsilon .

    When :math:`q` equals a Gaussian posterior, :math:`\nabla_z\log p(x,z) =
    -(z-m)/s^2=-\varepsilon/s` and every STL estimate is exactly 0, while the
    ordinary :math:`\hat g_m=-\varepsilon/s` still has variance :math:`1/s^2`.

    Args:
        log_joint: callable, ``z (S, *mu.shape) -> log p(x, z)`` of shape ``(S,)``,
            differentiable, treating each row of ``z`` independently.
        mu: ``m``, a tensor of any shape (usually ``()`` or ``(L,)``).
        sigma: ``s`` (> 0), same shape as ``mu``.
        n_samples: ``S`` >= 1.
        sticking_the_landing: drop the score term (STL) instead of keeping it.
        generator: optional ``torch.Generator`` for the noise.

    Returns:
        ``(grad_m, grad_s)``, each ``(S, *mu.shape)``, detached: one estimate per
        sample of :math:`\nabla_m\mathcal L` and :math:`\nabla_s\mathcal L`.
    """
    n_samples = _check_params(log_joint, mu, sigma, n_samples, generator)
    mu, sigma = mu.detach(), sigma.detach()
    eps = _noise(mu, n_samples, generator)
    grad_log_p = _grad_log_joint(log_joint, mu + sigma * eps, n_samples)
    if sticking_the_landing:
        # d/dz [log p - log q_{m,s}(z)] with m, s held fixed, times dz/dm = 1, dz/ds = eps
        path = grad_log_p + eps / sigma
        return path, path * eps
    return grad_log_p, grad_log_p * eps + 1.0 / sigma


def _grad_log_joint(log_joint, z: torch.Tensor, n_samples: int) -> torch.Tensor:
    """``grad_z log_joint(z)`` row by row (one backward pass of the sum), detached."""
    z = z.detach().requires_grad_(True)
    with torch.enable_grad():
        values = check_function_values(log_joint(z), n_samples, z, "log_joint")
        if not values.requires_grad:
            raise ValueError("log_joint(z) must depend on z through differentiable torch operations")
        (grad,) = torch.autograd.grad(values.sum(), z)
    return grad


# -- closed forms for f(z) = cos(omega z): where the pathwise estimator loses ------------


def variance_cosine(mu, sigma, omega) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Variances of one score-function and one pathwise estimate of :math:`\partial_\mu\mathbb E\cos(\omega z)`.

    For :math:`z=\mu+\sigma\varepsilon`, write :math:`a=\omega\mu`, :math:`b=\omega\sigma`.
    Then :math:`\mathbb E\cos(\omega z)=\cos a\,e^{-b^2/2}` and the true gradient
    is :math:`-\omega\sin a\,e^{-b^2/2}`. From :math:`\mathbb E\,e^{i(c+d\varepsilon)}=e^{ic-d^2/2}`
    and :math:`\mathbb E\,e^{i(c+d\varepsilon)}\varepsilon^2=e^{ic-d^2/2}(1-d^2)`:

    .. math::
        \mathrm{Var}\,\hat g^{\rm path}_\mu = \mathrm{Var}\big[-\omega\sin(\omega z)\big]
        = \omega^2\Big(\tfrac12\big(1-\cos 2a\,e^{-2b^2}\big) - \sin^2 a\,e^{-b^2}\Big),

    .. math::
        \mathrm{Var}\,\hat g^{\rm score}_\mu = \mathrm{Var}\Big[\cos(\omega z)\,\frac{\varepsilon}{\sigma}\Big]
        = \frac{1 + \cos 2a\,e^{-2b^2}(1-4b^2)}{2\sigma^2} - \omega^2\sin^2 a\,e^{-b^2}.

    For :math:`\omega\sigma\gg1` they tend to :math:`\omega^2/2` and
    :math:`1/(2\sigma^2)`: the pathwise estimator is :math:`(\omega\sigma)^2` times
    noisier, because it differentiates a rapidly oscillating :math:`f`
    (Mohamed, Rosca, Figurnov & Mnih 2020, section 3.4).

    Args:
        mu, sigma, omega: tensors of one shape or Python numbers; ``sigma > 0``.

    Returns:
        ``(var_score, var_pathwise)``, elementwise, for the derivative in ``mu``.
    """
    mu, sigma, omega = as_elementwise_tensors(mu=mu, sigma=sigma, omega=omega)
    if bool((sigma <= 0).any()):
        raise ValueError(f"sigma must be > 0, got minimum {float(sigma.min()):.4g}")
    a, b = omega * mu, omega * sigma
    damp2 = torch.cos(2 * a) * torch.exp(-2 * b.pow(2))
    mean_sq = omega.pow(2) * torch.sin(a).pow(2) * torch.exp(-b.pow(2))
    var_path = omega.pow(2) * 0.5 * (1 - damp2) - mean_sq
    var_score = (1 + damp2 * (1 - 4 * b.pow(2))) / (2 * sigma.pow(2)) - mean_sq
    return var_score, var_path


__all__ += [
    "elbo_gradient_pathwise",
    "variance_cosine",
]
