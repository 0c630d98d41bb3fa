r"""Models with exact answers: the ground truth that variational methods are checked against.

* :class:`ConjugateGaussianModel` -- a Gaussian prior and Gaussian observations:
  exact posterior and evidence (notebooks 02, 08, 09; the KL explorer and checks).
* :class:`ProbabilisticPCA` -- Tipping & Bishop's closed-form maximum likelihood,
  the optimum a :class:`~vi_helpers.models.LinearGaussianVAE` reaches (notebooks 07-09).
* :class:`BayesianLogisticRegression` -- a non-conjugate 2-D posterior computed on a
  grid, the reference for black-box VI (notebook 04).

:mod:`vi_helpers.models` re-exports all three.

References:
    Bishop (2006), Pattern Recognition and Machine Learning, sections 2.3 and 4.5.
    Tipping & Bishop (1999), Probabilistic Principal Component Analysis.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import MultivariateNormal, Normal

from ._validate import (
    LOG_2PI,
    as_float_tensor,
    check_finite_float,
    check_positive_float,
    check_positive_int,
    check_same_dtype,
    check_tensor,
)

__all__ = ["ConjugateGaussianModel", "ProbabilisticPCA", "BayesianLogisticRegression"]


class ConjugateGaussianModel:
    r"""A scalar latent with Gaussian prior and ``n`` Gaussian observations.

    .. math::
        z\sim\mathcal N(\mu_0,\sigma_0^2),\qquad x_i\mid z\sim\mathcal N(z,\sigma^2),\ i=1..n.

    Everything is exact: the posterior
    :math:`\mathcal N(\mu_n,\sigma_n^2)` with
    :math:`\sigma_n^{-2}=\sigma_0^{-2}+n\sigma^{-2}`,
    :math:`\mu_n=\sigma_n^2(\mu_0/\sigma_0^2+\sum_i x_i/\sigma^2)`,
    and the evidence :math:`x\sim\mathcal N(\mu_0\mathbf 1,\sigma^2I+\sigma_0^2\mathbf 1\mathbf 1^\top)`.
    That makes it the ground truth for ELBO checks: ``ELBO(q) <= log p(x)`` with
    equality exactly when ``q`` is the posterior.

    Args:
        mu0: prior mean.
        sigma0: prior standard deviation (> 0).
        sigma: observation noise standard deviation (> 0).
    """

    def __init__(self, mu0: float = 0.0, sigma0: float = 1.0, sigma: float = 1.0):
        self.mu0 = check_finite_float("mu0", mu0)
        self.sigma0 = check_positive_float("sigma0", sigma0)
        self.sigma = check_positive_float("sigma", sigma)

    def _check_x(self, x) -> torch.Tensor:
        return check_tensor("x", x, ndim=1)

    def prior(self) -> Normal:
        return Normal(torch.tensor(self.mu0), torch.tensor(self.sigma0))

    def posterior(self, x: torch.Tensor) -> Normal:
        """Exact :math:`p(z\\mid x)` for observations ``x`` of shape ``(n,)``."""
        x = self._check_x(x)
        precision = 1.0 / self.sigma0**2 + x.numel() / self.sigma**2
        var = 1.0 / precision
        mu = var * (self.mu0 / self.sigma0**2 + x.sum() / self.sigma**2)
        return Normal(mu, torch.tensor(var, dtype=x.dtype).sqrt())

    def log_evidence(self, x: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(x)`` (scalar tensor, nats) for ``x`` of shape ``(n,)``."""
        x = self._check_x(x)
        n = x.numel()
        cov = self.sigma**2 * torch.eye(n, dtype=x.dtype) + self.sigma0**2 * torch.ones(
            n, n, dtype=x.dtype
        )
        return MultivariateNormal(torch.full((n,), self.mu0, dtype=x.dtype), cov).log_prob(x)

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``log p(x, z)`` for a tensor of latent values ``z`` (any shape) -> same shape."""
        x = self._check_x(x)
        check_tensor("z", z, allow_empty=False)
        # parameters as tensors of z's dtype, so float64 inputs stay float64 throughout
        mu0, sigma0, sigma = (torch.tensor(v, dtype=z.dtype) for v in (self.mu0, self.sigma0, self.sigma))
        log_prior = Normal(mu0, sigma0).log_prob(z)
        log_lik = Normal(z.unsqueeze(-1), sigma).log_prob(x.to(z.dtype)).sum(dim=-1)
        return log_prior + log_lik

    def elbo(self, x: torch.Tensor, q_mu, q_sigma) -> torch.Tensor:
        r"""Closed-form ELBO of :math:`q=\mathcal N(m, s^2)`; ``q_mu``, ``q_sigma`` broadcast.

        .. math::
            \mathcal L = -\tfrac n2\log 2\pi\sigma^2-\frac{\sum_i (x_i-m)^2+n s^2}{2\sigma^2}
            -\mathrm{KL}(\mathcal N(m,s^2)\,\|\,\mathcal N(\mu_0,\sigma_0^2))
        """
        x = self._check_x(x)
        q_mu = as_float_tensor("q_mu", q_mu, dtype=x.dtype).to(x.dtype)
        q_sigma = as_float_tensor("q_sigma", q_sigma, dtype=x.dtype).to(x.dtype)
        check_tensor("q_mu", q_mu)
        check_tensor("q_sigma", q_sigma)
        if bool((q_sigma <= 0).any()):
            raise ValueError("q_sigma must be > 0")
        n = x.numel()
        sq = (x.pow(2).sum() - 2 * q_mu * x.sum() + n * q_mu.pow(2)) + n * q_sigma.pow(2)
        expected_ll = -0.5 * n * math.log(2 * math.pi * self.sigma**2) - sq / (2 * self.sigma**2)
        kl = (
            math.log(self.sigma0)
            - torch.log(q_sigma)
            + (q_sigma.pow(2) + (q_mu - self.mu0).pow(2)) / (2 * self.sigma0**2)
            - 0.5
        )
        return expected_ll - kl

    def sample(self, n: int, *, generator: torch.Generator | None = None):
        """Draw ``z`` from the prior and ``n`` observations: returns ``(z, x)``."""
        n = check_positive_int("n", n)
        z = self.mu0 + self.sigma0 * torch.randn((), generator=generator)
        x = z + self.sigma * torch.randn(n, generator=generator)
        return z, x


class ProbabilisticPCA:
    r"""Maximum-likelihood probabilistic PCA in closed form (Tipping & Bishop 1999).

    With sample covariance :math:`S=U\Lambda U^\top` (eigenvalues descending):
    :math:`\sigma^2_{ML}=\frac{1}{D-L}\sum_{j>L}\lambda_j`,
    :math:`W_{ML}=U_L(\Lambda_L-\sigma^2 I)^{1/2}`, :math:`\mu_{ML}=\bar x`, and
    the maximized average log-likelihood is
    :math:`-\tfrac12\big(D\log2\pi+\log|C|+\mathrm{tr}(C^{-1}S)\big)` with
    :math:`C=WW^\top+\sigma^2I`.

    Use :meth:`fit`; attributes ``mu (D,)``, ``W (D, L)``, ``sigma2`` (float).
    """

    def __init__(self, latent_size: int):
        self.latent_size = check_positive_int("latent_size", latent_size)
        self.mu = self.W = self.sigma2 = None

    def fit(self, x: torch.Tensor) -> ProbabilisticPCA:
        """Fit to data ``x`` of shape ``(N, D)`` (computed in float64)."""
        check_tensor("x", x, ndim=2)
        n, d = x.shape
        if self.latent_size >= d:
            raise ValueError(f"latent_size must be < D={d}, got {self.latent_size}")
        if n < 2:
            raise ValueError(f"x must have at least 2 rows, got {n}")
        x64 = x.double()
        self.mu = x64.mean(dim=0)
        centred = x64 - self.mu
        S = centred.T @ centred / n
        evals, evecs = torch.linalg.eigh(S)
        evals, evecs = evals.flip(0), evecs.flip(1)
        L = self.latent_size
        self.sigma2 = float(evals[L:].mean())
        if self.sigma2 <= 0:
            raise ValueError("the data covariance is singular beyond latent_size; add noise")
        self.W = evecs[:, :L] * torch.sqrt(torch.clamp(evals[:L] - self.sigma2, min=0.0))
        self._S = S
        return self

    def marginal(self) -> MultivariateNormal:
        if self.W is None:
            raise RuntimeError("call fit(x) first")
        cov = self.W @ self.W.T + self.sigma2 * torch.eye(self.W.shape[0], dtype=self.W.dtype)
        return MultivariateNormal(self.mu, covariance_matrix=cov)

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x)`` per row, ``(N,)``, float64, nats."""
        check_tensor("x", x, ndim=2, last_dim=self.marginal().event_shape[0])
        return self.marginal().log_prob(x.double())

    def max_log_likelihood(self) -> float:
        """Average log-likelihood per example of the fitted data (the closed form)."""
        C = self.marginal().covariance_matrix
        d = C.shape[0]
        _, logdet = torch.linalg.slogdet(C)
        return float(-0.5 * (d * LOG_2PI + logdet + torch.trace(torch.linalg.solve(C, self._S))))


class BayesianLogisticRegression:
    r"""Logistic regression with a Gaussian prior on its weights: a non-conjugate model.

    .. math::
        w\sim\mathcal N(0,\alpha^{-1}I),\qquad y_i\mid x_i,w\sim\mathrm{Bern}(\sigma(w^\top x_i))

    With two weights, the posterior can be computed on a grid and serves as the
    reference for black-box VI.

    Args:
        x: ``(N, K)`` inputs.
        y: ``(N,)`` labels in {0, 1}.
        prior_precision: ``alpha`` (> 0).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, prior_precision: float = 1.0):
        self.x = check_tensor("x", x, ndim=2)
        self.y = check_tensor("y", y, ndim=1)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"y must have one label per row of x ({x.shape[0]}), "
                             f"got shape {tuple(y.shape)}")
        if not bool(((y == 0) | (y == 1)).all()):
            raise ValueError("y must contain only 0 and 1")
        self.alpha = check_positive_float("prior_precision", prior_precision)

    def log_joint(self, w: torch.Tensor) -> torch.Tensor:
        """Unnormalized log posterior ``log p(y, w | x)`` for ``w (..., K)`` -> ``(...)``."""
        check_tensor("w", w, last_dim=self.x.shape[1], finite=False)
        check_same_dtype("w", w, "x", self.x)  # the dtype rule: parameters are not cast
        logits = w @ self.x.T  # (..., N)
        log_lik = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits, self.y.expand_as(logits), reduction="none"
        ).sum(dim=-1)
        k = self.x.shape[1]
        log_prior = -0.5 * self.alpha * w.pow(2).sum(dim=-1) + 0.5 * k * (
            math.log(self.alpha) - LOG_2PI
        )
        return log_lik + log_prior

    def grid_posterior(self, lim: float = 4.0, n: int = 200):
        """Posterior on an ``n x n`` grid over ``[-lim, lim]^2`` (two weights only).

        Returns:
            ``(w1, w2, density, log_evidence)``: grid axes ``(n,)``, normalized
            density ``(n, n)`` indexed ``[i2, i1]``, and the log evidence (a float).
        """
        if self.x.shape[1] != 2:
            raise ValueError("grid_posterior needs exactly two weights (x with 2 columns)")
        n = check_positive_int("n", n)
        lim = check_positive_float("lim", lim)
        axis = torch.linspace(-lim, lim, n, dtype=self.x.dtype)
        w2, w1 = torch.meshgrid(axis, axis, indexing="ij")
        log_p = self.log_joint(torch.stack([w1, w2], dim=-1))
        cell = (axis[1] - axis[0]) ** 2
        log_z = torch.logsumexp(log_p.flatten(), 0) + torch.log(cell)
        density = torch.exp(log_p - log_z)
        return axis, axis, density, float(log_z)
