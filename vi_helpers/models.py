"""Models: the seed's VAE classes and a linear VAE.

The three seed classes keep the seed note's positional signatures and return
values exactly; every extension is a keyword-only option whose default
reproduces the seed.

* :class:`VariationalDistribution` -- the encoder :math:`q_\\phi(z\\mid x)`.
* :class:`GenerativeModel` -- the decoder :math:`p_\\theta(x\\mid z)`.
* :class:`VariationalAutoencoder` -- both, with the ELBO loss.
* :class:`LinearGaussianVAE` -- linear encoder and decoder; its optimum is pPCA.

The models with exact answers (:class:`ConjugateGaussianModel`,
:class:`ProbabilisticPCA`, :class:`BayesianLogisticRegression`) live in
:mod:`vi_helpers.exact_models`; they are re-exported here, so
``from vi_helpers.models import ConjugateGaussianModel`` keeps working.

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
from torch.distributions import MultivariateNormal

from ._validate import (
    LOG_2PI,
    check_choice,
    check_finite_float,
    check_generator,
    check_model_input,
    check_nonnegative_float,
    check_positive_int,
    check_same_shape,
    check_tensor,
)
from .elbo import bernoulli_log_likelihood, gaussian_log_likelihood
from .exact_models import BayesianLogisticRegression, ConjugateGaussianModel, ProbabilisticPCA
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
        mu: ``(..., L)`` means, finite.
        log_var: ``(..., L)`` log-variances, finite, same shape as ``mu``.
        generator: optional ``torch.Generator`` for reproducible noise.

    Returns:
        ``(..., L)`` one sample per row.
    """
    check_tensor("mu", mu)
    check_tensor("log_var", log_var)
    check_same_shape("mu", mu, "log_var", log_var)
    return _reparameterize(mu, log_var, check_generator(generator))


def _reparameterize(mu: torch.Tensor, log_var: torch.Tensor, generator=None) -> torch.Tensor:
    """:func:`reparameterize` without the checks, for the encoder's own outputs: NaN from
    diverged weights must reach the loss, where the trainer's guard reports it."""
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

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, D) -> (mean, log_var)``, each ``(B, L)``; ``x`` is cast to the model's dtype."""
        x = check_model_input(self, x, ndim=(1, 2))
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
        z = _reparameterize(mean, log_var)
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
        """``(..., L) -> (..., D)`` decoder output ``x_hat``, after checking ``z`` (cast to
        the model's dtype)."""
        return self.x_hat(check_model_input(self, z, "z", ndim=None, last_dim=self.latent_size))

    def x_hat(self, z: torch.Tensor) -> torch.Tensor:
        """The network ``z -> x_hat`` without checking ``z``.

        For latents a model drew itself (:class:`VariationalAutoencoder`'s forward
        pass): diverged (NaN) weights then surface as a NaN loss, which the trainer's
        guard reports, instead of as an argument error about ``z``.
        """
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
                value = check_finite_float("obs_log_var", obs_log_var)
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
        x_hat = self.decoder.x_hat(z)  # z comes from our own encoder: no input check
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
        x = check_model_input(self, x, ndim=(1, 2))
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
        x = check_model_input(self, x, ndim=(1, 2))
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

    #: The decoder's family, as :class:`VariationalAutoencoder`'s option names it.
    likelihood = "gaussian"

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
        """``(B, D) -> (mean, log_var)``, each ``(B, L)``; ``x`` is cast to the model's dtype."""
        x = check_model_input(self, x, ndim=(1, 2))
        mean = self.encoder_mean(x)
        return mean, self.encoder_log_var.expand_as(mean)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(..., L) -> (..., D)``: the mean ``Wz + b``."""
        return self.decoder(check_model_input(self, z, "z", ndim=None, last_dim=self.latent_size))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x -> (x_hat, mean, log_var)``, as :class:`VariationalAutoencoder`."""
        mean, log_var = self.encode(x)
        return self.decoder(_reparameterize(mean, log_var)), mean, log_var

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
        kl = kl_standard_normal_per_dim(mean, log_var).sum(dim=-1).mean()  # NaN reaches the guard
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
        x = check_model_input(self, x, ndim=(1, 2))
        mean, log_var = self.encode(x)
        W = self.decoder.weight  # (D, L)
        resid = x - self.decoder(mean)
        trace = (log_var.exp() * W.pow(2).sum(dim=0)).sum(dim=-1)
        inv_var = torch.exp(-self.obs_log_var)
        expected_ll = -0.5 * (
            self.input_size * (LOG_2PI + self.obs_log_var)
            + inv_var * (resid.pow(2).sum(dim=-1) + trace)
        )
        # unchecked KL: fit_linear_vae's divergence guard must see a NaN ELBO
        return expected_ll - kl_standard_normal_per_dim(mean, log_var).sum(dim=-1)

    def marginal(self) -> MultivariateNormal:
        r"""The exact marginal :math:`p(x)=\mathcal N(b, WW^\top+\sigma^2 I)`."""
        W = self.decoder.weight
        eye = torch.eye(self.input_size, dtype=W.dtype, device=W.device)
        cov = W @ W.T + self.obs_log_var.exp() * eye
        return MultivariateNormal(self.decoder.bias, covariance_matrix=cov)

    def exact_log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(x)`` per example, ``(B,)``, in nats."""
        return self.marginal().log_prob(check_model_input(self, x, ndim=(1, 2)))
