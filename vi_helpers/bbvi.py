r"""Black-box variational inference with Gaussian families (notebook 4).

Maximize the ELBO :math:`\mathbb E_q[\log p(x,z)-\log q(z)]` of a target given only
its log joint, with Monte Carlo gradients from :mod:`vi_helpers.estimators`:

* :func:`fit_gaussian_vi`: mean-field :math:`q=\mathcal N(m,\mathrm{diag}\,s^2)`,
  score-function or pathwise gradients;
* :func:`bbvi_full_covariance`: :math:`q=\mathcal N(m, CC^\top)` with a Cholesky
  factor :math:`C` (positive diagonal through its log), pathwise gradients.

Both run Adam for ``n_steps``, are repeatable under ``seed`` (the caller's global
RNG is left untouched), and stop with the last finite parameters when the
target returns NaN/inf.

References:
    Ranganath, Gerrish & Blei (2014), Black Box Variational Inference.
    Kucukelbir et al. (2017), Automatic Differentiation Variational Inference.
    Titsias & Lazaro-Gredilla (2014), Doubly Stochastic Variational Bayes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ._validate import (
    LOG_2PI,
    NonFiniteValuesError,
    check_function_values,
    check_nonnegative_int,
    check_positive_float,
    check_positive_int,
    check_tensor,
)
from .estimators import pathwise_terms, score_function_terms

__all__ = [
    "ESTIMATORS",
    "GaussianVIResult",
    "fit_gaussian_vi",
    "FullCovarianceVIResult",
    "bbvi_full_covariance",
]

#: Estimator names understood by :func:`fit_gaussian_vi`.
ESTIMATORS = ("pathwise", "score")


# -- black-box VI -----------------------------------------------------------------------


@dataclass
class GaussianVIResult:
    r"""Result of :func:`fit_gaussian_vi`: :math:`q(z)=\mathcal N(\mu,\mathrm{diag}\,e^{2\log\sigma})`.

    Attributes:
        mu: ``(dim,)`` final mean (detached).
        log_sigma: ``(dim,)`` final log standard deviation (detached).
        elbo_history: ELBO estimate (nats) at each step, before that step's update.
    """

    mu: torch.Tensor
    log_sigma: torch.Tensor
    elbo_history: list[float] = field(default_factory=list)

    @property
    def sigma(self) -> torch.Tensor:
        """``(dim,)`` standard deviations, ``exp(log_sigma)``."""
        return self.log_sigma.exp()


def fit_gaussian_vi(
    log_joint,
    dim: int,
    *,
    n_steps: int,
    n_samples: int,
    learning_rate: float,
    estimator: str = "pathwise",
    seed: int | None = None,
    init_mu: torch.Tensor | None = None,
) -> GaussianVIResult:
    r"""Black-box VI: maximize the ELBO of :math:`q=\mathcal N(\mu,\mathrm{diag}\,\sigma^2)` with Adam.

    .. math::
        \mathcal L(\mu,\sigma) = \mathbb E_q[\log p(x,z)] + H(q),\qquad
        H(q)=\textstyle\sum_j\big(\log\sigma_j+\tfrac12\log 2\pi e\big).

    The entropy and its gradient are exact; the gradient of the expectation is
    estimated from ``n_samples`` draws per step with

    * ``"pathwise"``: :func:`pathwise_gradient` (``log_joint`` must be differentiable), or
    * ``"score"``: :func:`score_function_gradient` with the leave-one-out
      baseline when ``n_samples >= 2`` (only values of ``log_joint`` are used).

    The parameters are :math:`\mu` and :math:`\log\sigma` (so :math:`\sigma>0`
    without constraints); :math:`\partial/\partial\log\sigma = \sigma\,\partial/\partial\sigma`.
    Initialization: ``mu = init_mu`` (default zeros), ``log_sigma = 0``.

    Args:
        log_joint: callable, ``z (S, dim) -> log p(x, z)`` of shape ``(S,)``, e.g.
            ``BayesianLogisticRegression(x, y).log_joint``.
        dim: latent dimension (>= 1).
        n_steps: number of Adam steps (>= 1).
        n_samples: Monte Carlo samples per step (>= 1).
        learning_rate: Adam step size (> 0).
        estimator: ``"pathwise"`` or ``"score"``.
        seed: if given, the run uses a forked global RNG seeded with it
            (reproducible; the caller's RNG state is untouched).
        init_mu: optional ``(dim,)`` initial mean; its dtype sets the dtype used
            (default: ``torch.get_default_dtype()``).

    Returns:
        :class:`GaussianVIResult` with ``mu``, ``log_sigma`` and ``elbo_history``.

    Raises:
        ValueError: ``log_joint`` returns the wrong shape, or NaN/inf at the initial ``q``.
        RuntimeError: the ELBO or its gradient became NaN/inf later (lower ``learning_rate``).
    """
    if not callable(log_joint):
        raise TypeError(f"log_joint must be callable, got {type(log_joint).__name__}")
    dim = check_positive_int("dim", dim)
    n_steps = check_positive_int("n_steps", n_steps)
    n_samples = check_positive_int("n_samples", n_samples)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {list(ESTIMATORS)}, got {estimator!r}")
    if seed is not None:
        seed = check_nonnegative_int("seed", seed)
    if init_mu is None:
        init_mu = torch.zeros(dim, dtype=torch.get_default_dtype())
    else:
        check_tensor("init_mu", init_mu, shape=(dim,))

    if seed is None:
        return _fit_gaussian_vi(log_joint, init_mu, n_steps, n_samples, learning_rate, estimator)
    cuda = init_mu.device.type == "cuda"
    with torch.random.fork_rng(devices=[init_mu.device] if cuda else []):
        torch.manual_seed(seed)
        return _fit_gaussian_vi(log_joint, init_mu, n_steps, n_samples, learning_rate, estimator)


def _fit_gaussian_vi(log_joint, init_mu, n_steps, n_samples, learning_rate, estimator):
    dim = init_mu.shape[0]
    mu = init_mu.detach().clone().requires_grad_(True)
    log_sigma = torch.zeros_like(mu, requires_grad=True)
    optimizer = torch.optim.Adam([mu, log_sigma], lr=learning_rate)
    entropy_const = 0.5 * dim * (LOG_2PI + 1.0)
    history: list[float] = []
    for step in range(n_steps):
        sigma = log_sigma.detach().exp()
        try:
            if estimator == "pathwise":
                g_mu, g_sigma, values = pathwise_terms(
                    log_joint, mu, sigma, n_samples, None, "log_joint"
                )
            else:
                baseline = "mean" if n_samples >= 2 else None
                g_mu, g_sigma, values = score_function_terms(
                    log_joint, mu, sigma, n_samples, baseline, None, "log_joint"
                )
        except NonFiniteValuesError as err:
            if step == 0:  # a broken log_joint, not a divergence
                raise
            raise RuntimeError(
                f"fit_gaussian_vi diverged at step {step} ({err}); lower learning_rate"
            ) from err
        elbo = float(values.mean()) + float(log_sigma.detach().sum()) + entropy_const
        # ascent on the ELBO = descent on its negative; dH/dlog_sigma = 1.
        grad_mu = -g_mu.mean(dim=0)
        grad_log_sigma = -(g_sigma.mean(dim=0) * sigma + 1.0)
        if not (
            math.isfinite(elbo)
            and bool(torch.isfinite(grad_mu).all())
            and bool(torch.isfinite(grad_log_sigma).all())
        ):
            raise RuntimeError(
                f"fit_gaussian_vi diverged at step {step} (non-finite ELBO or gradient); "
                "lower learning_rate or check log_joint"
            )
        history.append(elbo)
        mu.grad = grad_mu
        log_sigma.grad = grad_log_sigma
        optimizer.step()
    return GaussianVIResult(mu.detach().clone(), log_sigma.detach().clone(), history)


# -- black-box VI with a full-covariance Gaussian ----------------------------------------


@dataclass
class FullCovarianceVIResult:
    r"""Result of :func:`bbvi_full_covariance`: :math:`q(z)=\mathcal N(m, CC^\top)`.

    Attributes:
        mu: ``(dim,)`` final mean ``m`` (detached).
        scale_tril: ``(dim, dim)`` lower-triangular Cholesky factor ``C`` with a
            positive diagonal (detached).
        elbo_history: ELBO estimate (nats) at each step, before that step's update.
    """

    mu: torch.Tensor
    scale_tril: torch.Tensor
    elbo_history: list[float] = field(default_factory=list)

    @property
    def cov(self) -> torch.Tensor:
        """``(dim, dim)`` covariance ``C C^T``."""
        return self.scale_tril @ self.scale_tril.T


def bbvi_full_covariance(
    log_joint,
    dim: int,
    *,
    n_steps: int,
    n_samples: int,
    learning_rate: float,
    seed: int | None = None,
    init_mu: torch.Tensor | None = None,
) -> FullCovarianceVIResult:
    r"""Black-box VI with a full-covariance Gaussian :math:`q=\mathcal N(m, CC^\top)`, pathwise gradients.

    :math:`C` is lower triangular with diagonal :math:`e^{\ell_j}` (so it is a
    Cholesky factor without constraints); the sample is :math:`z=m+C\varepsilon`,
    :math:`\varepsilon\sim\mathcal N(0,I)`, and

    .. math::
        \mathcal L(m, C) = \mathbb E_\varepsilon\big[\log p(x, m+C\varepsilon)\big] + H(q),\qquad
        H(q)=\textstyle\sum_j \ell_j+\tfrac{\rm dim}2\log 2\pi e,

    because :math:`\log|CC^\top|^{1/2}=\sum_j\log C_{jj}`. The first term's gradient is
    the pathwise estimate from ``n_samples`` draws per step (autograd through
    ``log_joint``), the entropy's is exact; Adam ascends the sum (Titsias &
    Lázaro-Gredilla 2014; Kucukelbir et al. 2017). Unlike the mean-field
    :func:`fit_gaussian_vi`, :math:`q` can tilt to follow a correlated posterior.
    Initialization: ``m = init_mu`` (default zeros), ``C = I``.

    Args:
        log_joint: callable, ``z (S, dim) -> log p(x, z)`` of shape ``(S,)``, differentiable.
        dim: latent dimension (>= 1).
        n_steps: number of Adam steps (>= 1).
        n_samples: Monte Carlo samples per step (>= 1).
        learning_rate: Adam step size (> 0).
        seed: if given, the run uses a forked global RNG seeded with it.
        init_mu: optional ``(dim,)`` initial mean; its dtype sets the dtype used.

    Returns:
        :class:`FullCovarianceVIResult` with ``mu``, ``scale_tril`` (and ``cov``) and
        ``elbo_history``.

    Raises:
        ValueError: ``log_joint`` returns the wrong shape, or NaN/inf at the start.
        RuntimeError: the ELBO or its gradient became NaN/inf later (lower ``learning_rate``).
    """
    if not callable(log_joint):
        raise TypeError(f"log_joint must be callable, got {type(log_joint).__name__}")
    dim = check_positive_int("dim", dim)
    n_steps = check_positive_int("n_steps", n_steps)
    n_samples = check_positive_int("n_samples", n_samples)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    if seed is not None:
        seed = check_nonnegative_int("seed", seed)
    if init_mu is None:
        init_mu = torch.zeros(dim, dtype=torch.get_default_dtype())
    else:
        check_tensor("init_mu", init_mu, shape=(dim,))
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        return _fit_full_covariance(log_joint, init_mu, n_steps, n_samples, learning_rate)


def _fit_full_covariance(log_joint, init_mu, n_steps, n_samples, learning_rate):
    dim = init_mu.shape[0]
    mu = init_mu.detach().clone().requires_grad_(True)
    log_diag = torch.zeros_like(mu, requires_grad=True)
    off_diag = torch.zeros(dim, dim, dtype=mu.dtype, requires_grad=True)  # strictly lower part used
    below = torch.tril(torch.ones(dim, dim, dtype=torch.bool), diagonal=-1)
    optimizer = torch.optim.Adam([mu, log_diag, off_diag], lr=learning_rate)
    entropy_const = 0.5 * dim * (LOG_2PI + 1.0)
    history: list[float] = []
    for step in range(n_steps):
        scale_tril = torch.diag(log_diag.exp()) + off_diag * below
        z = mu + torch.randn(n_samples, *mu.shape, dtype=mu.dtype, device=mu.device) @ scale_tril.T  # (S, dim): rows m + C eps
        try:
            values = check_function_values(log_joint(z), n_samples, z, "log_joint")
        except NonFiniteValuesError as err:
            if step == 0:
                raise
            raise RuntimeError(
                f"bbvi_full_covariance diverged at step {step} ({err}); lower learning_rate"
            ) from err
        elbo = values.mean() + log_diag.sum() + entropy_const
        optimizer.zero_grad(set_to_none=True)
        (-elbo).backward()
        grads = [mu.grad, log_diag.grad, off_diag.grad]
        if not (math.isfinite(float(elbo.detach())) and all(bool(torch.isfinite(g).all()) for g in grads)):
            raise RuntimeError(
                f"bbvi_full_covariance diverged at step {step} (non-finite ELBO or gradient); "
                "lower learning_rate or check log_joint"
            )
        history.append(float(elbo.detach()))
        optimizer.step()
    with torch.no_grad():
        scale_tril = torch.diag(log_diag.exp()) + off_diag * below
    return FullCovarianceVIResult(mu.detach().clone(), scale_tril.detach().clone(), history)
