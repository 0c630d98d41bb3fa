r"""Log-likelihoods and evidence lower bounds.

The evidence lower bound of a distribution :math:`q(z)` is

.. math::
    \mathcal L(q) = \mathbb E_{q}\big[\log p(x,z) - \log q(z)\big]
    = \mathbb E_q\log p(x\mid z) - \mathrm{KL}(q\,\|\,p(z))
    = \log p(x) - \mathrm{KL}(q\,\|\,p(z\mid x)) \le \log p(x).

All log-likelihoods here are *per example, in nats*: they sum over the data
dimension (the last one) and keep every batch dimension. A training loss takes
the batch mean of their negatives.

References:
    Kingma & Welling (2014), Auto-Encoding Variational Bayes.
    Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._validate import (
    LOG_2PI,
    as_float_tensor,
    check_generator,
    check_positive_int,
    check_same_shape,
    check_tensor,
)
from .kl import draw_samples

__all__ = [
    "gaussian_log_likelihood",
    "bernoulli_log_likelihood",
    "elbo_monte_carlo",
    "elbo_analytic_kl",
    "iwae_bound",
    "log_mean_exp",
]


def gaussian_log_likelihood(
    x: torch.Tensor, x_hat: torch.Tensor, log_var: torch.Tensor | float = 0.0
) -> torch.Tensor:
    r""":math:`\log \mathcal N(x;\hat x, \sigma^2 I)` summed over the last dimension.

    .. math::
        -\tfrac12\sum_d\Big[\log 2\pi + \log\sigma^2_d + \frac{(x_d-\hat x_d)^2}{\sigma^2_d}\Big]

    Args:
        x: ``(..., D)`` observations.
        x_hat: ``(..., D)`` decoder means, same shape as ``x``.
        log_var: observation log-variance: a finite float, a scalar tensor, or a
            tensor broadcastable to ``x`` (e.g. ``(D,)``). A model's own parameter
            (``nn.Parameter``, e.g. a learned ``obs_log_var``) is not scanned, so a
            diverged one reaches the loss and the trainer's guard.

    Returns:
        ``(...)`` log-density per example, in nats.
    """
    check_tensor("x", x, ndim=range(1, 8))
    check_tensor("x_hat", x_hat, finite=False)
    check_same_shape("x", x, "x_hat", x_hat)
    log_var = as_float_tensor("log_var", log_var, dtype=x.dtype).to(x.device)
    if not isinstance(log_var, torch.nn.Parameter):  # zero or NaN variance: a NaN density
        check_tensor("log_var", log_var)
    if log_var.dim() > 0 and log_var.shape[-1] not in (1, x.shape[-1]):
        raise ValueError(
            f"log_var must be a scalar or have last dimension {x.shape[-1]}, "
            f"got shape {tuple(log_var.shape)}"
        )
    sq = (x - x_hat).pow(2) * torch.exp(-log_var)
    # a scalar log_var broadcasts over the D terms, so it is counted D times
    return -0.5 * (LOG_2PI + log_var + sq).sum(dim=-1)


def bernoulli_log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    r""":math:`\log \mathrm{Bern}(x;\sigma(\ell))` summed over the last dimension.

    Computed from *logits* with ``binary_cross_entropy_with_logits``, which is
    stable where ``log(sigmoid(l))`` would underflow. ``x`` may be fractional
    (grey levels in [0, 1]); then this is the continuous relaxation used by most
    VAE code, not a normalized density.

    Args:
        x: ``(..., D)`` targets in [0, 1].
        logits: ``(..., D)`` decoder logits, same shape as ``x``.

    Returns:
        ``(...)`` log-likelihood per example, in nats.
    """
    check_tensor("x", x, ndim=range(1, 8))
    check_tensor("logits", logits, finite=False)
    check_same_shape("x", x, "logits", logits)
    lo, hi = torch.aminmax(x)  # one pass instead of two comparisons
    if bool(lo < 0) or bool(hi > 1):
        raise ValueError("x must lie in [0, 1] for a Bernoulli likelihood")
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)


def log_mean_exp(x: torch.Tensor, dim: int, *, keepdim: bool = False) -> torch.Tensor:
    r""":math:`\log\frac1K\sum_k e^{x_k}` along ``dim``, computed stably.

    ``logsumexp`` subtracts the maximum before exponentiating, so values like
    ``-1000`` (typical log-weights) do not underflow to ``log 0``.

    Args:
        x: tensor with ``K >= 1`` entries along ``dim``; ``-inf`` entries are
            allowed (zero weight), NaN and ``+inf`` are not.
        dim: the dimension to reduce.
        keepdim: keep ``dim`` with size 1.

    Returns:
        ``x`` reduced along ``dim``.
    """
    check_tensor("x", x, finite=False, allow_empty=True)
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"dim must be an int, got {type(dim).__name__}")
    if x.dim() == 0 or not -x.dim() <= dim < x.dim():
        raise ValueError(f"dim must index a dimension of x (shape {tuple(x.shape)}), got {dim}")
    if x.shape[dim] == 0:
        raise ValueError(
            f"x must have at least one entry along dim {dim}, got shape {tuple(x.shape)}"
        )
    if bool(torch.isnan(x).any()) or bool((x == math.inf).any()):
        raise ValueError("x must not contain NaN or +inf")
    return torch.logsumexp(x, dim=dim, keepdim=keepdim) - math.log(x.shape[dim])


def elbo_monte_carlo(
    log_joint,
    q: torch.distributions.Distribution,
    n_samples: int,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Monte Carlo ELBO :math:`\frac1S\sum_s[\log p(x,z_s)-\log q(z_s)],\ z_s\sim q`.

    An unbiased estimate of :math:`\mathcal L(q)`. The samples are drawn with
    ``q.rsample`` when ``q`` supports it (``z = mu + sigma * eps`` for a normal),
    so the estimate is differentiable in ``q``'s parameters: its gradient is the
    pathwise (reparameterization) gradient estimator of Kingma & Welling (2014).
    Without ``rsample`` (e.g. discrete ``q``) the value is still unbiased but
    carries no gradient to ``q``.

    Args:
        log_joint: callable ``z -> log p(x, z)``; it receives ``z`` of shape
            ``(S, *q.batch_shape, *q.event_shape)`` and must return ``(S, *q.batch_shape)``.
        q: the variational distribution, a ``torch.distributions.Distribution``.
        n_samples: ``S`` >= 1.
        generator: optional ``torch.Generator``; it seeds a forked RNG, so the
            global RNG is not touched.

    Returns:
        ``q.batch_shape`` ELBO estimates, in nats.
    """
    if not callable(log_joint):
        raise TypeError(f"log_joint must be callable, got {type(log_joint).__name__}")
    if not isinstance(q, torch.distributions.Distribution):
        raise TypeError(f"q must be a torch.distributions.Distribution, got {type(q).__name__}")
    n_samples = check_positive_int("n_samples", n_samples)
    z = draw_samples(q, n_samples, generator=check_generator(generator))
    log_p = log_joint(z)
    want = (n_samples, *q.batch_shape)
    if not isinstance(log_p, torch.Tensor):
        raise TypeError(f"log_joint must return a torch.Tensor, got {type(log_p).__name__}")
    if tuple(log_p.shape) != want:
        raise ValueError(
            f"log_joint must return shape (S, *q.batch_shape) = {want} for z of shape "
            f"{tuple(z.shape)}, got {tuple(log_p.shape)}"
        )
    if log_p.is_floating_point() and bool(torch.isnan(log_p).any() | (log_p == math.inf).any()):
        raise ValueError(
            "log_joint returned NaN or +inf for samples of q: check log_joint for "
            "log(0), 0/0 or overflow at these z"
        )
    return (log_p - q.log_prob(z)).mean(dim=0)


def elbo_analytic_kl(expected_log_lik: torch.Tensor, kl: torch.Tensor) -> torch.Tensor:
    r"""ELBO from its two terms: :math:`\mathbb E_q\log p(x\mid z) - \mathrm{KL}(q\,\|\,p(z))`.

    Used when the KL is available in closed form (e.g. :func:`vi_helpers.kl.kl_standard_normal`),
    which removes its Monte Carlo noise.

    Args:
        expected_log_lik: ``(...)`` expected log-likelihood per example (an estimate is fine).
        kl: ``(...)`` KL per example, same shape, >= 0 (tiny negative rounding
            errors down to -1e-6 are tolerated).

    Returns:
        ``(...)`` ELBO per example, in nats.
    """
    check_tensor("expected_log_lik", expected_log_lik, allow_empty=True)
    check_tensor("kl", kl, allow_empty=True)
    check_same_shape("expected_log_lik", expected_log_lik, "kl", kl)
    if kl.numel() > 0 and float(kl.min()) < -1e-6:
        raise ValueError(
            f"kl must be >= 0 (a KL divergence), got minimum {float(kl.min()):.4g}; "
            "did you pass -KL?"
        )
    return expected_log_lik - kl


def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    r"""Importance-weighted bound of Burda et al. (2016) from ``K`` log-weights.

    .. math::
        \mathcal L_K = \log\frac1K\sum_{k=1}^K w_k,\qquad
        \log w_k = \log p(x, z_k) - \log q(z_k),\ z_k\sim q.

    In expectation :math:`\mathcal L_1 \le \mathcal L_K \le \mathcal L_{K+1}\le\log p(x)`,
    and :math:`\mathcal L_K\to\log p(x)` as :math:`K\to\infty`. With ``K = 1`` it is
    the single-sample ELBO, and the result equals ``log_w[0]``.

    Args:
        log_w: ``(K, ...)`` log importance weights, ``K >= 1``; ``-inf`` allowed.

    Returns:
        ``(...)`` one bound estimate per batch element, in nats.
    """
    check_tensor("log_w", log_w, finite=False, allow_empty=True)
    if log_w.dim() == 0 or log_w.shape[0] < 1:
        raise ValueError(f"log_w must have shape (K, ...) with K >= 1, got {tuple(log_w.shape)}")
    if bool(torch.isnan(log_w).any()) or bool((log_w == math.inf).any()):
        raise ValueError("log_w must not contain NaN or +inf")
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])
