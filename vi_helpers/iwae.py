r"""The importance-weighted autoencoder: the IWAE bound as a *training* objective.

Notebook 8 uses the importance-weighted bound (Burda, Grosse & Salakhutdinov 2016)

.. math::
    \mathcal L_K(x) = \mathbb E_{z_{1:K}\sim q_\phi(z\mid x)}
    \log\frac1K\sum_{k=1}^K w_k,\qquad
    \log w_k = \log p_\theta(x\mid z_k) + \log\mathcal N(z_k;0,I) - \log q_\phi(z_k\mid x),

to *evaluate* a VAE. Burda et al. also *train* with it: the IWAE is a VAE whose
loss is :math:`-\mathcal L_K` instead of the negative ELBO :math:`-\mathcal L_1`.
Its gradient weights each sample's ELBO gradient by the normalized importance
weight :math:`\tilde w_k = w_k/\sum_j w_j`, so the decoder is fitted to a tighter
bound on :math:`\log p(x)`; the encoder, no longer asked to be a good posterior
on its own, usually ends with a *lower* ELBO (Rainforth et al. 2018 show that
its gradient's signal-to-noise ratio falls like :math:`1/\sqrt K`).

:class:`ImportanceWeightedAutoencoder` is a
:class:`~vi_helpers.models.VariationalAutoencoder` with the same encoder and
decoder, trained by :func:`vi_helpers.train.train_model` through the
``training_loss`` contract; everything that evaluates a VAE
(:mod:`vi_helpers.evaluate`, ``elbo``) works on it unchanged.

Shapes: ``B`` batch, ``D`` data dimension, ``L`` latent dimension, ``K``
importance samples. All values in nats.

References:
    Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders.
    Rainforth, Kosiorek, Le, Maddison, Igl, Wood & Teh (2018), Tighter Variational
    Bounds are Not Necessarily Better.
"""

from __future__ import annotations

import math

import torch

from ._validate import check_positive_int, check_tensor
from .elbo import iwae_bound
from .kl import kl_standard_normal
from .models import VariationalAutoencoder

__all__ = ["ImportanceWeightedAutoencoder", "iwae_log_weights"]

LOG_2PI = math.log(2.0 * math.pi)


def iwae_log_weights(
    model: VariationalAutoencoder,
    x: torch.Tensor,
    k: int,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Reparameterized log importance weights of ``model`` for ``x``, differentiable.

    .. math::
        z_k = \mu_\phi(x) + \sigma_\phi(x)\odot\varepsilon_k,\qquad
        \log w_k = \log p_\theta(x\mid z_k) + \log\mathcal N(z_k;0,I)
        - \log\mathcal N(z_k;\mu_\phi(x),\mathrm{diag}\,\sigma^2_\phi(x)),

    with :math:`\log q` written in terms of :math:`\varepsilon_k`, which is exact.
    Unlike :func:`vi_helpers.evaluate.log_likelihood_is` this keeps the graph, so
    :math:`-\frac1B\sum_b\mathcal L_K(x_b)` can be minimized.

    Args:
        model: a :class:`~vi_helpers.models.VariationalAutoencoder` (any likelihood).
        x: ``(B, D)`` data.
        k: number of importance samples ``K`` (> 0).
        generator: optional ``torch.Generator`` for the noise.

    Returns:
        ``(log_w, log_lik, mu, log_var)``: the ``(K, B)`` log-weights, the ``(K, B)``
        log-likelihoods :math:`\log p_\theta(x\mid z_k)` they contain, and the
        encoder's ``(B, L)`` means and log-variances.
    """
    check_tensor("x", x, ndim=2, last_dim=model.input_size)
    k = check_positive_int("k", k)
    mu, log_var = model.encode(x)
    eps = torch.randn((k, *mu.shape), dtype=mu.dtype, device=mu.device, generator=generator)
    z = mu + torch.exp(0.5 * log_var) * eps  # (K, B, L)
    x_hat = model.decoder.decoder(z)  # raw output: means, or logits for Bernoulli
    log_lik = model.log_likelihood(x.expand_as(x_hat), x_hat)  # (K, B)
    log_prior = -0.5 * (z.pow(2) + LOG_2PI).sum(dim=-1)
    log_q = -0.5 * (eps.pow(2) + LOG_2PI + log_var).sum(dim=-1)
    return log_lik + log_prior - log_q, log_lik, mu, log_var


class ImportanceWeightedAutoencoder(VariationalAutoencoder):
    r"""A VAE trained on the importance-weighted bound :math:`\mathcal L_K` (Burda et al. 2016).

    The same networks as :class:`~vi_helpers.models.VariationalAutoencoder`;
    only the training objective differs. ``k=1`` trains on a single-sample ELBO
    whose KL is estimated by Monte Carlo (the VAE uses the closed-form KL; both
    have the same expectation).

    Args:
        input_size, hidden_size, latent_size: ``D``, ``H``, ``L``.
        k: importance samples per example in the training loss (> 0).
        likelihood, obs_log_var: as for :class:`~vi_helpers.models.VariationalAutoencoder`
            (``beta`` and ``free_bits`` do not apply to the IWAE bound).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        latent_size: int,
        *,
        k: int = 5,
        likelihood: str = "bernoulli",
        obs_log_var: float | None = None,
    ):
        super().__init__(
            input_size, hidden_size, latent_size, likelihood=likelihood, obs_log_var=obs_log_var
        )
        self.k = check_positive_int("k", k)

    @property
    def config(self) -> dict:
        """Constructor arguments that rebuild this model."""
        cfg = super().config
        cfg.pop("beta")
        cfg.pop("free_bits")
        return cfg | {"k": self.k}

    def training_loss(
        self, x: torch.Tensor, *, beta: float | None = None, free_bits: float | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        r"""``(loss, terms)`` for :func:`~vi_helpers.train.train_model`.

        ``loss`` is :math:`-\frac1B\sum_b\hat{\mathcal L}_K(x_b)`, one draw of
        ``K`` reparameterized samples per example. ``terms`` are batch means in
        nats for the history: ``log_lik`` the average of :math:`\log p(x\mid z_k)`
        over the ``K`` samples, ``kl`` the closed-form
        :math:`\mathrm{KL}(q\,\|\,p(z))`, so ``log_lik - kl`` is a (``K``-sample)
        estimate of the ELBO, not of the IWAE bound; ``recon = -log_lik``.

        Raises:
            ValueError: ``beta`` or ``free_bits`` given; they have no meaning for
                the IWAE bound.
        """
        if beta is not None or free_bits is not None:
            raise ValueError(
                "beta, kl_warmup_epochs and free_bits do not apply to the IWAE bound; "
                "train an ImportanceWeightedAutoencoder without them"
            )
        log_w, log_lik, mu, log_var = iwae_log_weights(self, x, self.k)
        loss = -iwae_bound(log_w).mean()
        with torch.no_grad():
            kl = kl_standard_normal(mu, log_var).mean()
            log_lik = log_lik.mean()
        return loss, {"recon": -log_lik, "kl": kl, "log_lik": log_lik}

