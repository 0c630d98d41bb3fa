"""Models: the seed's VAE classes, a linear VAE, and models with exact answers.

The three seed classes keep the seed note's positional signatures and return
values exactly; every extension is a keyword-only option whose default
reproduces the seed.

* :class:`VariationalDistribution` -- the encoder :math:`q_\\phi(z\\mid x)`.
* :class:`GenerativeModel` -- the decoder :math:`p_\\theta(x\\mid z)`.
* :class:`VariationalAutoencoder` -- both, with the ELBO loss.
* :class:`LinearGaussianVAE` -- linear encoder and decoder; its optimum is pPCA.
* :class:`ConjugateGaussianModel` -- exact posterior and evidence (ground truth).
* :class:`ProbabilisticPCA` -- Tipping & Bishop's closed-form maximum likelihood.
* :class:`BayesianLogisticRegression` -- a non-conjugate 2-D posterior on a grid.

Shapes: ``B`` batch, ``D`` data dimension, ``H`` hidden units, ``L`` latent
dimension, ``S`` Monte Carlo samples.

References:
    Kingma & Welling (2014), Auto-Encoding Variational Bayes.
    Tipping & Bishop (1999), Probabilistic Principal Component Analysis.
    Lucas, Tucker, Grosse & Norouzi (2019), Don't Blame the ELBO!
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.distributions import MultivariateNormal, Normal

from ._validate import (
    check_choice,
    check_nonnegative_float,
    check_positive_float,
    check_positive_int,
    check_tensor,
)
from .elbo import LOG_2PI, bernoulli_log_likelihood, gaussian_log_likelihood
from .kl import kl_standard_normal, kl_standard_normal_per_dim

__all__ = [
    "VariationalDistribution",
    "GenerativeModel",
    "VariationalAutoencoder",
    "LinearGaussianVAE",
    "ConjugateGaussianModel",
    "ProbabilisticPCA",
    "BayesianLogisticRegression",
    "reparameterize",
    "LIKELIHOODS",
]

#: Decoder likelihoods understood by :class:`VariationalAutoencoder`.
#: ``"mse"`` is the seed's loss: a Gaussian with variance 1/2, up to a constant.
LIKELIHOODS = ("mse", "gaussian", "bernoulli")


def reparameterize(
    mu: torch.Tensor, log_var: torch.Tensor, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Draw :math:`z = \mu + \sigma\odot\varepsilon,\ \varepsilon\sim\mathcal N(0, I)`.

    Gradients flow to ``mu`` and ``log_var`` because the randomness sits in
    ``eps``, which does not depend on them.

    Args:
        mu: ``(..., L)`` means.
        log_var: ``(..., L)`` log-variances.
        generator: optional ``torch.Generator`` for reproducible noise.

    Returns:
        ``(..., L)`` one sample per row.
    """
    std = torch.exp(0.5 * log_var)
    eps = torch.randn(std.shape, dtype=std.dtype, device=std.device, generator=generator)
    return mu + eps * std


class VariationalDistribution(nn.Module):
    r"""Amortized Gaussian posterior :math:`q_\phi(z\mid x)=\mathcal N(\mu_\phi(x),\mathrm{diag}\,\sigma^2_\phi(x))`.

    Architecture (the seed's): ``Linear(D,H) -> ReLU -> Linear(H,H) -> ReLU``, then
    two heads, ``mean`` and ``log_var``. Predicting the *log*-variance keeps the
    variance positive without a constraint.

    Args:
        input_size: ``D``.
        hidden_size: ``H``.
        latent_size: ``L``.
    """

    def __init__(self, input_size: int, hidden_size: int, latent_size: int):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.latent_size = check_positive_int("latent_size", latent_size)
        self.encoder = nn.Sequential(
            nn.Linear(input_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
        )
        self.mean = nn.Linear(hidden_size, latent_size)
        self.log_var = nn.Linear(hidden_size, latent_size)

    def _check_x(self, x: torch.Tensor) -> None:
        check_tensor("x", x, ndim=(1, 2), last_dim=self.input_size)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, D) -> (mean, log_var)``, each ``(B, L)``."""
        self._check_x(x)
        h = self.encoder(x)
        return self.mean(h), self.log_var(h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode and sample by reparameterization.

        Args:
            x: ``(B, D)`` (or one row ``(D,)``).

        Returns:
            ``(z, mean, log_var)``, each ``(B, L)``.
        """
        mean, log_var = self.encode(x)
        z = reparameterize(mean, log_var)
        return z, mean, log_var


class GenerativeModel(nn.Module):
    r"""Decoder network :math:`z\mapsto\hat x`: ``Linear(L,H)-ReLU-Linear(H,H)-ReLU-Linear(H,D)``.

    ``x_hat`` is the mean of a Gaussian, or the *logits* of a Bernoulli; the
    :class:`VariationalAutoencoder` decides which.

    Args:
        latent_size: ``L``.
        hidden_size: ``H``.
        output_size: ``D``.
    """

    def __init__(self, latent_size: int, hidden_size: int, output_size: int):
        super().__init__()
        self.latent_size = check_positive_int("latent_size", latent_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.output_size = check_positive_int("output_size", output_size)
        self.decoder = nn.Sequential(
            nn.Linear(latent_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, output_size),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(..., L) -> (..., D)`` decoder output ``x_hat``."""
        check_tensor("z", z, last_dim=self.latent_size)
        return self.decoder(z)


class VariationalAutoencoder(nn.Module):
    r"""The seed's VAE, with keyword-only extensions.

    Called as in the seed, ``VariationalAutoencoder(input_size, hidden_size,
    latent_size)`` uses ``likelihood="mse"`` and its :meth:`loss_function` is
    exactly the seed's: batch mean of the summed squared error plus batch mean
    of the analytic KL to :math:`\mathcal N(0, I)`.

    Keyword-only options:
        likelihood: ``"mse"`` (the seed), ``"gaussian"`` (a proper Gaussian with
            an observation variance, so losses are in nats) or ``"bernoulli"``
            (``x_hat`` are logits; use with data in [0, 1]).
        beta: weight of the KL term (``beta > 1`` is the beta-VAE of Higgins et
            al. 2017). ``beta=1`` gives the negative ELBO.
        free_bits: ``lambda`` of Kingma et al. (2016): each latent dimension's
            batch-mean KL counts as at least ``lambda`` nats in the loss.
        obs_log_var: for ``"gaussian"``: a fixed observation log-variance, or
            ``None`` to learn one shared log-variance (a parameter).

    Relation of ``"mse"`` to a Gaussian: with :math:`\sigma^2=\tfrac12`,
    :math:`-\log\mathcal N(x;\hat x,\tfrac12 I)=\sum_d(x_d-\hat x_d)^2+\tfrac D2\log\pi`,
    so the seed's loss is a negative ELBO *minus the constant* ``D/2 log(pi)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        latent_size: int,
        *,
        likelihood: str = "mse",
        beta: float = 1.0,
        free_bits: float = 0.0,
        obs_log_var: float | None = None,
    ):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.latent_size = check_positive_int("latent_size", latent_size)
        self.likelihood = check_choice("likelihood", likelihood, LIKELIHOODS)
        self.beta = check_nonnegative_float("beta", beta)
        self.free_bits = check_nonnegative_float("free_bits", free_bits)
        self.encoder = VariationalDistribution(input_size, hidden_size, latent_size)
        self.decoder = GenerativeModel(latent_size, hidden_size, input_size)
        if obs_log_var is not None and likelihood != "gaussian":
            raise ValueError('obs_log_var is only used with likelihood="gaussian"')
        if likelihood == "gaussian":
            if obs_log_var is None:
                self.obs_log_var = nn.Parameter(torch.zeros(()))
            else:
                value = float(obs_log_var)
                if not math.isfinite(value):
                    raise ValueError(f"obs_log_var must be finite, got {obs_log_var}")
                self.register_buffer("obs_log_var", torch.tensor(value))

    # -- configuration, for checkpoints -------------------------------------------------
    @property
    def config(self) -> dict:
        """Constructor arguments that rebuild this model (used by ``checkpoint``)."""
        cfg = {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "latent_size": self.latent_size,
            "likelihood": self.likelihood,
            "beta": self.beta,
            "free_bits": self.free_bits,
        }
        if self.likelihood == "gaussian" and not isinstance(self.obs_log_var, nn.Parameter):
            cfg["obs_log_var"] = float(self.obs_log_var)
        return cfg

    # -- the seed's interface -----------------------------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x (B, D) -> (x_hat (B, D), mean (B, L), log_var (B, L))``."""
        z, mean, log_var = self.encoder(x)
        # z comes from our own encoder, not the user: skip the decoder's input check so
        # that diverged (NaN) weights surface as a NaN loss, which the trainer guards
        x_hat = self.decoder.decoder(z)
        return x_hat, mean, log_var

    def loss_function(
        self,
        x: torch.Tensor,
        x_hat: torch.Tensor,
        mean: torch.Tensor,
        log_var: torch.Tensor,
        *,
        beta: float | None = None,
        free_bits: float | None = None,
        return_terms: bool = False,
    ):
        r"""The loss minimized in training: batch mean of ``-log p(x|z) + beta * KL``.

        With the defaults and ``likelihood="mse"`` this equals the seed's
        ``mean_b sum_d (x - x_hat)^2 + mean_b KL(q(z|x) || N(0, I))``.

        Args:
            x: ``(B, D)`` data.
            x_hat: ``(B, D)`` decoder output (logits for ``"bernoulli"``).
            mean: ``(B, L)`` encoder means.
            log_var: ``(B, L)`` encoder log-variances.
            beta: overrides ``self.beta`` for this call (KL warm-up uses this).
            free_bits: overrides ``self.free_bits`` for this call.
            return_terms: also return the batch means of the pieces, as a dict of
                scalar tensors ``recon`` (the loss's reconstruction term), ``kl``
                (the unclamped KL, nats) and ``log_lik`` (``log p(x|z)``, nats), so
                ``ELBO = log_lik - kl``. The trainer logs these without recomputing.

        Returns:
            Scalar tensor: reduced by the mean over the batch, summed over ``D`` and ``L``.
            With ``return_terms=True``, ``(loss, terms)``.
        """
        beta = self.beta if beta is None else check_nonnegative_float("beta", beta)
        free_bits = (
            self.free_bits if free_bits is None else check_nonnegative_float("free_bits", free_bits)
        )
        recon = self.reconstruction_loss(x, x_hat)  # (B,)
        kl_dims = kl_standard_normal_per_dim(mean, log_var)  # (B, L)
        if mean.shape[:-1] != recon.shape:
            raise ValueError(
                f"mean must have batch shape {tuple(recon.shape)} to match x, "
                f"got shape {tuple(mean.shape)}"
            )
        kl = kl_dims.sum(dim=-1).mean()
        if free_bits > 0:
            # Kingma et al. (2016): clamp each dimension's batch-mean KL from below,
            # so the optimizer gains nothing by pushing a dimension under lambda nats.
            per_dim = kl_dims.reshape(-1, kl_dims.shape[-1]).mean(dim=0)  # (L,), also for 1-D x
            kl_term = torch.clamp(per_dim, min=free_bits).sum()
        else:
            kl_term = kl
        loss = recon.mean() + beta * kl_term
        if not return_terms:
            return loss
        recon_mean = recon.mean().detach()
        if self.likelihood == "mse":
            # the seed's loss is the Gaussian(var 1/2) NLL minus D/2 log(pi)
            log_lik = -recon_mean - 0.5 * self.input_size * math.log(math.pi)
        else:
            log_lik = -recon_mean
        return loss, {"recon": recon_mean, "kl": kl.detach(), "log_lik": log_lik}

    # -- helpers the notebooks and the trainer use ---------------------------------------
    def reconstruction_loss(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """Per-example reconstruction term of the loss, ``(B,)``.

        ``"mse"``: summed squared error (the seed). ``"gaussian"`` and
        ``"bernoulli"``: the negative log-likelihood in nats.
        """
        check_tensor("x", x, ndim=(1, 2), last_dim=self.input_size)
        check_tensor("x_hat", x_hat, finite=False)
        if x.shape != x_hat.shape:
            raise ValueError(
                f"x and x_hat must have the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}"
            )
        if self.likelihood == "mse":
            return (x - x_hat).pow(2).sum(dim=-1)
        return -self.log_likelihood(x, x_hat)

    def log_likelihood(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        r"""``log p(x | z)`` in nats, per example ``(B,)``, constants included.

        For ``"mse"`` this is the Gaussian with variance 1/2 that the seed's loss
        implies (see the class docstring).
        """
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(x, x_hat)
        if self.likelihood == "gaussian":
            return gaussian_log_likelihood(x, x_hat, self.obs_log_var)
        return gaussian_log_likelihood(x, x_hat, math.log(0.5))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, D) -> (mean, log_var)``, each ``(B, L)``."""
        return self.encoder.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean of ``p(x | z)``: ``(..., L) -> (..., D)`` (sigmoid of logits for Bernoulli)."""
        x_hat = self.decoder(z)
        return torch.sigmoid(x_hat) if self.likelihood == "bernoulli" else x_hat

    def elbo(
        self, x: torch.Tensor, *, n_samples: int = 1, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        r"""Per-example ELBO in nats, ``(B,)``, with the analytic KL.

        :math:`\frac1S\sum_s\log p(x\mid z_s) - \mathrm{KL}(q(z\mid x)\,\|\,p(z))`.
        """
        n_samples = check_positive_int("n_samples", n_samples)
        mean, log_var = self.encode(x)
        z = reparameterize(
            mean.expand(n_samples, *mean.shape), log_var.expand(n_samples, *log_var.shape),
            generator=generator,
        )
        x_hat = self.decoder(z)
        log_lik = self.log_likelihood(x.expand_as(x_hat), x_hat).mean(dim=0)
        return log_lik - kl_standard_normal(mean, log_var)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws of ``z ~ N(0, I)``, decoded to means: ``(n, D)``."""
        n = check_positive_int("n", n)
        p = next(self.parameters())
        z = torch.randn(n, self.latent_size, generator=generator, dtype=p.dtype)
        return self.decode(z.to(p.device))


class LinearGaussianVAE(nn.Module):
    r"""A VAE whose encoder mean and decoder are linear.

    Generative model: :math:`z\sim\mathcal N(0,I_L)`,
    :math:`x\mid z\sim\mathcal N(Wz+b,\sigma^2 I_D)`, i.e. probabilistic PCA, so
    :math:`\log p(x)=\log\mathcal N(x;b,WW^\top+\sigma^2I)` is exact. The encoder
    is :math:`q(z\mid x)=\mathcal N(Ax+c,\mathrm{diag}\,s^2)` with ``s`` shared by
    all ``x`` (the true posterior covariance does not depend on ``x``). Lucas et
    al. (2019) show the ELBO's global optimum then *is* the pPCA maximum
    likelihood, so the gap measured here is an optimization gap.

    Args:
        input_size: ``D``.
        latent_size: ``L``.
    """

    def __init__(self, input_size: int, latent_size: int):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.latent_size = check_positive_int("latent_size", latent_size)
        if latent_size > input_size:
            raise ValueError(
                f"latent_size must be <= input_size ({input_size}), got {latent_size}"
            )
        self.encoder_mean = nn.Linear(input_size, latent_size)
        self.encoder_log_var = nn.Parameter(torch.zeros(latent_size))
        self.decoder = nn.Linear(latent_size, input_size)
        self.obs_log_var = nn.Parameter(torch.zeros(()))

    @property
    def config(self) -> dict:
        return {"input_size": self.input_size, "latent_size": self.latent_size}

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, D) -> (mean, log_var)``, each ``(B, L)``."""
        check_tensor("x", x, ndim=(1, 2), last_dim=self.input_size)
        mean = self.encoder_mean(x)
        return mean, self.encoder_log_var.expand_as(mean)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(..., L) -> (..., D)``: the mean ``Wz + b``."""
        check_tensor("z", z, last_dim=self.latent_size)
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x -> (x_hat, mean, log_var)``, as :class:`VariationalAutoencoder`."""
        mean, log_var = self.encode(x)
        return self.decode(reparameterize(mean, log_var)), mean, log_var

    def log_likelihood(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """``log N(x; x_hat, sigma^2 I)`` per example, ``(B,)``."""
        return gaussian_log_likelihood(x, x_hat, self.obs_log_var)

    def loss_function(
        self, x, x_hat, mean, log_var, *, beta: float = 1.0, return_terms: bool = False
    ):
        """Batch-mean negative (single-sample) ELBO, as the seed's loss but in nats.

        ``return_terms`` as in :meth:`VariationalAutoencoder.loss_function`.
        """
        beta = check_nonnegative_float("beta", beta)
        log_lik = self.log_likelihood(x, x_hat).mean()
        kl = kl_standard_normal(mean, log_var).mean()
        loss = -log_lik + beta * kl
        if not return_terms:
            return loss
        return loss, {"recon": -log_lik.detach(), "kl": kl.detach(), "log_lik": log_lik.detach()}

    def analytic_elbo(self, x: torch.Tensor) -> torch.Tensor:
        r"""The ELBO with the expectation over ``q`` done in closed form, ``(B,)`` nats.

        .. math::
            \mathbb E_q\log p(x\mid z) = -\tfrac D2\log 2\pi\sigma^2
            - \frac{1}{2\sigma^2}\Big(\|x-W\mu-b\|^2+\textstyle\sum_j s_j^2\|W_{:,j}\|^2\Big)
        """
        mean, log_var = self.encode(x)
        W = self.decoder.weight  # (D, L)
        resid = x - self.decoder(mean)
        trace = (log_var.exp() * W.pow(2).sum(dim=0)).sum(dim=-1)
        inv_var = torch.exp(-self.obs_log_var)
        expected_ll = -0.5 * (
            self.input_size * (LOG_2PI + self.obs_log_var)
            + inv_var * (resid.pow(2).sum(dim=-1) + trace)
        )
        return expected_ll - kl_standard_normal(mean, log_var)

    def marginal(self) -> MultivariateNormal:
        r"""The exact marginal :math:`p(x)=\mathcal N(b, WW^\top+\sigma^2 I)`."""
        W = self.decoder.weight
        eye = torch.eye(self.input_size, dtype=W.dtype, device=W.device)
        cov = W @ W.T + self.obs_log_var.exp() * eye
        return MultivariateNormal(self.decoder.bias, covariance_matrix=cov)

    def exact_log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(x)`` per example, ``(B,)``, in nats."""
        check_tensor("x", x, ndim=(1, 2), last_dim=self.input_size)
        return self.marginal().log_prob(x)


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
        self.mu0 = float(mu0)
        if not math.isfinite(self.mu0):
            raise ValueError(f"mu0 must be finite, got {mu0}")
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
        q_mu = torch.as_tensor(q_mu, dtype=x.dtype)
        q_sigma = torch.as_tensor(q_sigma, dtype=x.dtype)
        check_tensor("q_sigma", q_sigma, allow_empty=False)
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
        self.y = check_tensor("y", y, shape=(x.shape[0],))
        if not bool(((y == 0) | (y == 1)).all()):
            raise ValueError("y must contain only 0 and 1")
        self.alpha = check_positive_float("prior_precision", prior_precision)

    def log_joint(self, w: torch.Tensor) -> torch.Tensor:
        """Unnormalized log posterior ``log p(y, w | x)`` for ``w (..., K)`` -> ``(...)``."""
        check_tensor("w", w, last_dim=self.x.shape[1], finite=False)
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
