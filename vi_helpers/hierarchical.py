r"""Hierarchical VAEs: two stochastic layers, :math:`z_2\to z_1\to x`, with top-down inference.

Generative model (``L_1`` and ``L_2`` latent units):

.. math::
    p_\theta(x, z_1, z_2) = p(z_2)\,p_\theta(z_1\mid z_2)\,p_\theta(x\mid z_1),\qquad
    p(z_2)=\mathcal N(0, I),\quad
    p_\theta(z_1\mid z_2)=\mathcal N\big(\mu_{p}(z_2),\mathrm{diag}\,\sigma^2_{p}(z_2)\big).

Inference runs *top-down*, in the order of the generative model (the ladder VAE of
Sønderby et al. 2016):

.. math::
    q_\phi(z_1, z_2\mid x) = q_\phi(z_2\mid x)\,q_\phi(z_1\mid z_2, x).

The ELBO then splits into one reconstruction term and one KL per layer:

.. math::
    \mathcal L(x) = \mathbb E_q\log p_\theta(x\mid z_1)
    - \underbrace{\mathrm{KL}\big(q(z_2\mid x)\,\|\,p(z_2)\big)}_{\mathrm{KL}_2}
    - \underbrace{\mathbb E_{q(z_2\mid x)}\mathrm{KL}\big(q(z_1\mid z_2,x)\,\|\,p(z_1\mid z_2)\big)}_{\mathrm{KL}_1},

in which both KLs are between diagonal Gaussians *given* :math:`z_2`: analytic,
with a single sample of :math:`z_2` for the outer expectation of
:math:`\mathrm{KL}_1`. With bottom-up inference, :math:`q(z_1\mid x)\,q(z_2\mid z_1)`
(Burda et al. 2016), the :math:`z_1` term :math:`\mathbb E_q[\log p(z_1\mid z_2)-\log
q(z_1\mid x)]` has no such closed form, because the :math:`z_2` in the prior is drawn
*after* :math:`z_1`; that, and the ladder VAE's finding that top-down inference keeps
more upper-layer units active, is why this module uses top-down inference.

:class:`TwoLayerVAE` holds everything that only depends on this factorization
(the per-layer KLs, the loss for :func:`vi_helpers.train.train_model`, the ELBO,
the importance-weighted bound, per-layer diagnostics). :class:`HierarchicalVAE` is
the neural network version for images; the linear version with an exact marginal
likelihood is :class:`vi_helpers.hierarchical_linear.LinearHierarchicalVAE`.

Shapes: ``B`` batch, ``D`` data dimension, ``H`` hidden units, ``L_1``, ``L_2``
latent units, ``S`` Monte Carlo samples, ``K`` importance samples. All values are
in nats, per example, summed over ``D`` and over the latent units.

References:
    Sønderby, Raiko, Maaløe, Sønderby & Winther (2016), Ladder Variational Autoencoders.
    Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders.
    Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling (2016), Improved
    Variational Inference with Inverse Autoregressive Flow (free bits).
    Bowman, Vilnis, Vinyals, Dai, Jozefowicz & Bengio (2016), Generating Sentences
    from a Continuous Space (KL warm-up).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn as nn

from ._validate import (
    check_choice,
    check_model_input,
    check_nonnegative_float,
    check_positive_int,
    check_tensor,
)
from .elbo import LOG_2PI, bernoulli_log_likelihood
from .kl import kl_standard_normal_per_dim

__all__ = [
    "TopDownPass",
    "TwoLayerVAE",
    "HierarchicalVAE",
    "kl_diag_normal_per_dim",
    "precision_weighted_merge",
    "vae_hidden_size_for",
]


def kl_diag_normal_per_dim(
    mu_q: torch.Tensor, log_var_q: torch.Tensor, mu_p: torch.Tensor, log_var_p: torch.Tensor
) -> torch.Tensor:
    r"""Elementwise :math:`\mathrm{KL}(\mathcal N(\mu_q,\sigma_q^2)\,\|\,\mathcal N(\mu_p,\sigma_p^2))`.

    .. math::
        \tfrac12\Big[\log\sigma_p^2-\log\sigma_q^2+\frac{\sigma_q^2+(\mu_q-\mu_p)^2}{\sigma_p^2}-1\Big]

    The unsummed form of :func:`vi_helpers.kl.kl_diag_normal`: free bits need one
    KL per latent unit. No finiteness scan (it runs inside training loops; a NaN
    surfaces in the loss, which the trainer guards).

    Args:
        mu_q, log_var_q: ``(..., L)`` mean and log-variance of ``q``.
        mu_p, log_var_p: ``(..., L)`` mean and log-variance of ``p`` (same shape).

    Returns:
        ``(..., L)`` nats, each entry >= 0.
    """
    for name, value in (("mu_q", mu_q), ("log_var_q", log_var_q), ("mu_p", mu_p),
                        ("log_var_p", log_var_p)):
        check_tensor(name, value, finite=False)
        if value.shape != mu_q.shape:
            raise ValueError(
                f"mu_q and {name} must have the same shape, "
                f"got {tuple(mu_q.shape)} and {tuple(value.shape)}"
            )
    return 0.5 * (
        log_var_p - log_var_q + torch.exp(log_var_q - log_var_p)
        + (mu_q - mu_p).pow(2) * torch.exp(-log_var_p) - 1.0
    )


def precision_weighted_merge(
    mu_hat: torch.Tensor, log_var_hat: torch.Tensor, mu_p: torch.Tensor, log_var_p: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The ladder VAE's posterior: a Gaussian "likelihood" term times the top-down prior.

    .. math::
        \sigma_q^{-2}=\hat\sigma^{-2}+\sigma_p^{-2},\qquad
        \mu_q=\sigma_q^2\big(\hat\mu\,\hat\sigma^{-2}+\mu_p\,\sigma_p^{-2}\big),

    the product of :math:`\mathcal N(\hat\mu,\hat\sigma^2)` (from the data, bottom-up)
    and :math:`\mathcal N(\mu_p,\sigma_p^2)` (from the layer above), renormalized: the
    same precision-weighted average as the conjugate Gaussian posterior of notebook 2.
    Computed in log-space: :math:`\log\sigma_q^2=-\mathrm{logaddexp}(-\log\hat\sigma^2,
    -\log\sigma_p^2)` and the weight of :math:`\hat\mu` is
    :math:`\mathrm{sigmoid}(\log\sigma_p^2-\log\hat\sigma^2)`.

    Args:
        mu_hat, log_var_hat: ``(..., L)`` bottom-up mean and log-variance.
        mu_p, log_var_p: ``(..., L)`` top-down mean and log-variance (broadcastable).

    Returns:
        ``(mu_q, log_var_q)``, each of the broadcast shape.

    References:
        Sønderby et al. (2016), Ladder Variational Autoencoders, eqs. (18)-(19).
    """
    named = (("mu_hat", mu_hat), ("log_var_hat", log_var_hat), ("mu_p", mu_p),
             ("log_var_p", log_var_p))
    for name, value in named:  # values unscanned: it runs inside the training loss
        check_tensor(name, value, finite=False)
    try:
        torch.broadcast_shapes(*(value.shape for _, value in named))
    except RuntimeError as err:
        raise ValueError(
            "mu_hat, log_var_hat, mu_p and log_var_p must broadcast to one shape, got "
            + ", ".join(str(tuple(v.shape)) for _, v in named)
        ) from err
    weight = torch.sigmoid(log_var_p - log_var_hat)  # precision share of the data term
    mu_q = weight * mu_hat + (1.0 - weight) * mu_p
    log_var_q = -torch.logaddexp(-log_var_hat, -log_var_p)
    return mu_q, log_var_q


def vae_hidden_size_for(n_parameters: int, input_size: int, latent_size: int) -> int:
    r"""Hidden size ``H`` of a :class:`~vi_helpers.models.VariationalAutoencoder` with about ``n_parameters``.

    The one-layer VAE (two hidden layers in the encoder and in the decoder) has
    :math:`2H^2+H(2D+3L+4)+2L+D` parameters; this returns the ``H`` whose count is
    closest to ``n_parameters``, for comparisons at matched size.

    Args:
        n_parameters: the target count (> 0).
        input_size: ``D``.
        latent_size: ``L``.

    Returns:
        ``H`` (an int >= 1).
    """
    n_parameters = check_positive_int("n_parameters", n_parameters)
    d = check_positive_int("input_size", input_size)
    latent = check_positive_int("latent_size", latent_size)

    def count(h: int) -> int:
        return 2 * h * h + h * (2 * d + 3 * latent + 4) + 2 * latent + d

    b = 2 * d + 3 * latent + 4
    root = (-b + math.sqrt(b * b + 8 * max(n_parameters - 2 * latent - d, 0))) / 4
    candidates = {max(1, math.floor(root)), max(1, math.ceil(root))}
    return min(candidates, key=lambda h: (abs(count(h) - n_parameters), h))


def _layer_pair(name: str, value) -> tuple[float, float]:
    """A float (both layers) or a pair ``(for z_1, for z_2)`` of floats >= 0."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be a float or a pair (layer 1, layer 2), got {value!r}")
        return (check_nonnegative_float(f"{name}[0]", value[0]),
                check_nonnegative_float(f"{name}[1]", value[1]))
    v = check_nonnegative_float(name, value)
    return (v, v)


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )


def _log_normal(eps: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    r""":math:`\log\mathcal N(z;\mu,\sigma^2)` summed over the last dim, written with :math:`\varepsilon=(z-\mu)/\sigma`."""
    return -0.5 * (eps.pow(2) + LOG_2PI + log_var).sum(dim=-1)


class TopDownPass(NamedTuple):
    """One sample of the top-down pass; every field has shape ``(*S, B, ...)``.

    ``mu_q2, log_var_q2, z2, eps2``: :math:`q(z_2\\mid x)`, its sample and noise
    (``L_2``); ``mu_p1, log_var_p1``: :math:`p(z_1\\mid z_2)`; ``mu_q1, log_var_q1,
    z1, eps1``: :math:`q(z_1\\mid z_2, x)`, its sample and noise (``L_1``); ``x_hat``:
    the decoder output at ``z1`` (logits for a Bernoulli decoder, means for a
    Gaussian one) (``D``).
    """

    mu_q2: torch.Tensor
    log_var_q2: torch.Tensor
    z2: torch.Tensor
    eps2: torch.Tensor
    mu_p1: torch.Tensor
    log_var_p1: torch.Tensor
    mu_q1: torch.Tensor
    log_var_q1: torch.Tensor
    z1: torch.Tensor
    eps1: torch.Tensor
    x_hat: torch.Tensor


class TwoLayerVAE(nn.Module):
    r"""What every two-layer VAE with top-down inference shares (an abstract base).

    A subclass sets ``input_size``, ``latent_sizes = (L_1, L_2)``, ``beta`` and
    ``free_bits`` and defines five maps: ``bottom_up(x) -> (mu_q2, log_var_q2,
    context)``, ``posterior_1(context, z2, mu_p1, log_var_p1) -> (mu_q1, log_var_q1)``,
    ``prior_1(z2) -> (mu_p1, log_var_p1)``, ``decoder(z1) -> x_hat`` and
    ``log_likelihood(x, x_hat) -> (...)``.

    Free bits (Kingma et al. 2016) are per layer: ``free_bits = (delta_1, delta_2)``
    floors each unit's batch-mean KL of layer :math:`i` at :math:`\delta_i` nats in
    the loss (a float sets both). KL warm-up (Bowman et al. 2016) is
    ``train_model(..., kl_warmup_epochs=...)``, which ramps ``beta``.
    """

    input_size: int
    latent_sizes: tuple[int, int]

    # -- the pass ----------------------------------------------------------------------
    def _check_x(self, x) -> torch.Tensor:
        return check_model_input(self, x)  # cast to the model's dtype and device

    def top_down(
        self, x: torch.Tensor, *, n_samples: int | None = None,
        generator: torch.Generator | None = None,
    ) -> TopDownPass:
        r"""Bottom-up deterministic pass, then :math:`z_2\sim q(z_2\mid x)`, :math:`z_1\sim q(z_1\mid z_2,x)`.

        Args:
            x: ``(B, D)`` data.
            n_samples: ``S``; ``None`` draws one sample without a sample dimension.
            generator: optional ``torch.Generator`` for the noise.

        Returns:
            A :class:`TopDownPass`; its fields have shape ``(B, ...)``, or
            ``(S, B, ...)`` when ``n_samples`` is given. Reparameterized: gradients
            flow to every parameter.
        """
        x = self._check_x(x)
        _check_generator(generator)
        lead = () if n_samples is None else (check_positive_int("n_samples", n_samples),)
        mu_q2, log_var_q2, context = self.bottom_up(x)
        eps2 = torch.randn(lead + mu_q2.shape, dtype=mu_q2.dtype, device=mu_q2.device,
                           generator=generator)
        z2 = mu_q2 + torch.exp(0.5 * log_var_q2) * eps2
        mu_p1, log_var_p1 = self.prior_1(z2)
        mu_q1, log_var_q1 = self.posterior_1(context, z2, mu_p1, log_var_p1)
        eps1 = torch.randn(mu_q1.shape, dtype=mu_q1.dtype, device=mu_q1.device,
                           generator=generator)
        z1 = mu_q1 + torch.exp(0.5 * log_var_q1) * eps1
        x_hat = self.decoder(z1)
        expand = (lambda t: t.expand(lead + t.shape)) if lead else (lambda t: t)
        return TopDownPass(expand(mu_q2), expand(log_var_q2), z2, eps2, mu_p1, log_var_p1,
                           mu_q1, log_var_q1, z1, eps1, x_hat)

    @staticmethod
    def kl_per_unit(out: TopDownPass) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Per-unit KLs of one pass: ``(kl_1 (..., L_1), kl_2 (..., L_2))``, nats.

        :math:`\mathrm{KL}_2` is :math:`\mathrm{KL}(q(z_2\mid x)\,\|\,\mathcal N(0,I))`,
        exact. :math:`\mathrm{KL}_1` is :math:`\mathrm{KL}(q(z_1\mid z_2,x)\,\|\,p(z_1\mid z_2))`
        at the pass's sample :math:`z_2`: a single-sample estimate of the expectation
        over :math:`q(z_2\mid x)`, analytic in :math:`z_1`.
        """
        kl_1 = kl_diag_normal_per_dim(out.mu_q1, out.log_var_q1, out.mu_p1, out.log_var_p1)
        kl_2 = kl_standard_normal_per_dim(out.mu_q2, out.log_var_q2)
        return kl_1, kl_2

    # -- training ----------------------------------------------------------------------
    def training_loss(
        self, x: torch.Tensor, *, beta: float | None = None,
        free_bits: float | tuple[float, float] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        r"""Loss for :func:`~vi_helpers.train.train_model`: batch mean of :math:`-\log p(x\mid z_1)+\beta(\mathrm{KL}_1+\mathrm{KL}_2)`.

        With free bits :math:`(\delta_1,\delta_2)` each layer's KL in the loss is
        :math:`\sum_j\max(\delta_i,\overline{\mathrm{KL}}_{i,j})`, with
        :math:`\overline{\mathrm{KL}}_{i,j}` unit :math:`j`'s batch mean: a unit below
        its floor gets no gradient pushing it further to the prior.

        Args:
            x: ``(B, D)`` data.
            beta: KL weight (>= 0); ``None`` uses ``self.beta``.
            free_bits: a float (both layers) or a pair ``(delta_1, delta_2)``, nats
                per unit; ``None`` uses ``self.free_bits``.

        Returns:
            ``(loss, terms)``: a scalar, and scalar batch means in nats: ``recon``
            (:math:`-\log p(x\mid z_1)`), ``log_lik``, ``kl`` (unclamped
            :math:`\mathrm{KL}_1+\mathrm{KL}_2`, so ``ELBO = log_lik - kl``), ``kl_1``, ``kl_2``.
        """
        beta = self.beta if beta is None else check_nonnegative_float("beta", beta)
        delta = self.free_bits if free_bits is None else _layer_pair("free_bits", free_bits)
        x = self._check_x(x)
        out = self.top_down(x)
        log_lik = self.log_likelihood(x, out.x_hat).mean()
        kl_terms, kl_means = [], []
        for kl_units, floor in zip(self.kl_per_unit(out), delta, strict=True):
            per_unit = kl_units.mean(dim=0)  # (L_i,) batch mean of each unit's KL
            kl_means.append(per_unit.sum())
            kl_terms.append(per_unit.clamp(min=floor).sum() if floor > 0 else kl_means[-1])
        loss = -log_lik + beta * (kl_terms[0] + kl_terms[1])
        terms = {
            "recon": -log_lik.detach(), "log_lik": log_lik.detach(),
            "kl": (kl_means[0] + kl_means[1]).detach(),
            "kl_1": kl_means[0].detach(), "kl_2": kl_means[1].detach(),
        }
        return loss, terms

    # -- bounds ------------------------------------------------------------------------
    def elbo(
        self, x: torch.Tensor, *, n_samples: int = 1, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        r"""Per-example ELBO, ``(B,)`` nats: :math:`\frac1S\sum_s[\log p(x\mid z_1^s)-\mathrm{KL}_1(z_2^s)]-\mathrm{KL}_2`.

        Monte Carlo over :math:`(z_1, z_2)` with the per-layer KLs analytic (see
        :meth:`kl_per_unit`); an unbiased estimate of :math:`\mathcal L(x)`.
        """
        x = self._check_x(x)
        out = self.top_down(x, n_samples=check_positive_int("n_samples", n_samples),
                            generator=generator)
        kl_1, kl_2 = self.kl_per_unit(out)
        log_lik = self.log_likelihood(x.expand(out.x_hat.shape), out.x_hat)
        return (log_lik - kl_1.sum(dim=-1) - kl_2.sum(dim=-1)).mean(dim=0)

    def log_weights(
        self, x: torch.Tensor, k: int, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        r"""``(K, B)`` log importance weights with the encoder as proposal.

        .. math::
            \log w = \log p(x\mid z_1)+\log p(z_1\mid z_2)+\log p(z_2)
            -\log q(z_2\mid x)-\log q(z_1\mid z_2,x),\qquad (z_1,z_2)\sim q.

        Every density is evaluated in full; their mean over ``K`` is a Monte Carlo
        ELBO without analytic KLs (the reference of the decomposition check).
        """
        x = self._check_x(x)
        out = self.top_down(x, n_samples=check_positive_int("k", k), generator=generator)
        log_lik = self.log_likelihood(x.expand(out.x_hat.shape), out.x_hat)
        log_p2 = _log_normal(out.z2, torch.zeros_like(out.z2))
        eps_p1 = (out.z1 - out.mu_p1) * torch.exp(-0.5 * out.log_var_p1)
        log_p1 = _log_normal(eps_p1, out.log_var_p1)
        log_q = _log_normal(out.eps2, out.log_var_q2) + _log_normal(out.eps1, out.log_var_q1)
        return log_lik + log_p1 + log_p2 - log_q

    @torch.no_grad()
    def iwae_bound(
        self, x: torch.Tensor, *, k: int = 1000, chunk_size: int = 100,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        r"""Importance-weighted bound :math:`\log\frac1K\sum_k w_k`, ``(B,)`` nats (Burda et al. 2016).

        A lower bound on :math:`\log p(x)` in expectation, equal to the ELBO (with
        sampled KLs) at ``K = 1`` and rising with ``K`` to :math:`\log p(x)`. The
        samples are drawn ``chunk_size`` at a time and combined with a running
        ``logaddexp`` (memory grows with ``chunk_size``, not ``K``).

        Args:
            x: ``(B, D)`` data.
            k: ``K`` (> 0).
            chunk_size: importance samples per chunk (> 0).
            generator: optional ``torch.Generator``.
        """
        k = check_positive_int("k", k)
        chunk_size = check_positive_int("chunk_size", chunk_size)
        x = self._check_x(x)
        log_sum = None
        for start in range(0, k, chunk_size):
            chunk = torch.logsumexp(
                self.log_weights(x, min(chunk_size, k - start), generator=generator), dim=0
            )
            log_sum = chunk if log_sum is None else torch.logaddexp(log_sum, chunk)
        return log_sum - math.log(k)

    # -- diagnostics -------------------------------------------------------------------
    @torch.no_grad()
    def kl_per_layer(
        self, x: torch.Tensor, *, n_samples: int = 10, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        r"""Average KL of every unit over the data: ``{"z1": (L_1,), "z2": (L_2,)}``, nats.

        :math:`\mathrm{KL}_1` is averaged over ``n_samples`` draws of :math:`z_2`
        per example; the entries of both layers sum to the ELBO's KL term.
        """
        out = self.top_down(x, n_samples=check_positive_int("n_samples", n_samples),
                            generator=generator)
        kl_1, kl_2 = self.kl_per_unit(out)
        return {"z1": kl_1.mean(dim=(0, 1)), "z2": kl_2[0].mean(dim=0)}

    @torch.no_grad()
    def active_units(
        self, x: torch.Tensor, *, threshold: float = 0.01, n_samples: int = 10,
        generator: torch.Generator | None = None,
    ) -> dict[str, tuple[int, torch.Tensor]]:
        r"""Active units per layer (Burda et al. 2016): :math:`\mathrm{Var}_x\,\mathbb E_q[z_{i,u}\mid x]>\delta`.

        :math:`\mathbb E_q[z_2\mid x]=\mu_{q2}(x)` exactly;
        :math:`\mathbb E_q[z_1\mid x]=\mathbb E_{q(z_2\mid x)}\mu_{q1}(z_2,x)` is averaged
        over ``n_samples`` draws of :math:`z_2`. Variances over the ``N`` rows of
        ``x`` with divisor ``N``.

        Returns:
            ``{"z1": (count, (L_1,) variances), "z2": (count, (L_2,) variances)}``.
        """
        threshold = check_nonnegative_float("threshold", threshold)
        x = self._check_x(x)
        if x.shape[0] < 2:
            raise ValueError(f"x must have at least 2 rows to measure a variance, got {tuple(x.shape)}")
        out = self.top_down(x, n_samples=check_positive_int("n_samples", n_samples),
                            generator=generator)
        result = {}
        for name, means in (("z1", out.mu_q1.mean(dim=0)), ("z2", out.mu_q2[0])):
            variances = means.var(dim=0, correction=0)
            result[name] = (int((variances > threshold).sum()), variances)
        return result

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Ancestral samples :math:`z_2\sim p(z_2)`, :math:`z_1\sim p(z_1\mid z_2)`, decoded: ``(n, D)`` means."""
        n = check_positive_int("n", n)
        _check_generator(generator)
        p = next(self.parameters())
        z2 = torch.randn(n, self.latent_sizes[1], generator=generator, dtype=p.dtype)
        mu_p1, log_var_p1 = self.prior_1(z2.to(p.device))
        eps = torch.randn(mu_p1.shape, generator=generator, dtype=p.dtype).to(p.device)
        return self.mean_of(self.decoder(mu_p1 + torch.exp(0.5 * log_var_p1) * eps))

    def mean_of(self, x_hat: torch.Tensor) -> torch.Tensor:
        """The mean of :math:`p(x\\mid z_1)` from the decoder output (identity by default)."""
        return x_hat


class HierarchicalVAE(TwoLayerVAE):
    r"""A VAE with two stochastic layers, top-down (ladder) inference and a Bernoulli decoder (logits).

    Networks (``H`` hidden units, ``H_2 = top_hidden_size``; ReLU between layers):

    * bottom-up: :math:`d_1=\mathrm{MLP}_{D\to H\to H}(x)`, heads
      :math:`(\hat\mu_1,\log\hat\sigma_1^2)=\mathrm{Linear}_{H\to 2L_1}(d_1)`;
      :math:`d_2=\mathrm{MLP}_{H\to H_2}(d_1)`,
      :math:`(\mu_{q2},\log\sigma^2_{q2})=\mathrm{Linear}_{H_2\to 2L_2}(d_2)`;
    * top-down prior: :math:`(\mu_{p1},\log\sigma^2_{p1})=\mathrm{MLP}_{L_2\to H_2\to 2L_1}(z_2)`;
    * posterior of :math:`z_1`, from the bottom-up :math:`(\hat\mu_1,\log\hat\sigma_1^2)` and the
      top-down :math:`(\mu_{p1},\log\sigma^2_{p1})`, so the generative top-down path is
      shared with inference:

      - ``merge="residual"`` (default): :math:`\mu_{q1}=\mu_{p1}+\hat\mu_1`,
        :math:`\log\sigma^2_{q1}=\log\sigma^2_{p1}+\log\hat\sigma_1^2` (the residual
        parameterization of Vahdat & Kautz 2020). Then
        :math:`\mathrm{KL}_1=\tfrac12\sum_j\big(\hat\mu_{1j}^2/\sigma^2_{p1,j}+\hat\sigma^2_{1j}
        -1-\log\hat\sigma^2_{1j}\big)`: a unit is switched off only when *both* its
        bottom-up outputs are 0, as in a one-layer VAE.
      - ``merge="precision"``: :func:`precision_weighted_merge`, the ladder VAE's rule
        (Sønderby et al. 2016). It is the exact posterior for linear Gaussian layers
        (see :mod:`vi_helpers.hierarchical_linear`), but one output switches a unit
        off: as :math:`\log\hat\sigma^2_1\to\infty`, :math:`q(z_1\mid z_2,x)\to p(z_1\mid z_2)`
        whatever :math:`\hat\mu_1`. In our plain runs on the 8x8 digits (3 seeds,
        60 epochs) both layers collapsed; the ladder VAE was trained with warm-up and
        batch normalization.

    * decoder: logits :math:`=\mathrm{MLP}_{L_1\to H\to H\to D}(z_1)`, as the decoder of
      :class:`~vi_helpers.models.VariationalAutoencoder`.

    Args:
        input_size: ``D``.
        hidden_size: ``H``.
        latent_sizes: ``(L_1, L_2)``, units of the bottom and the top layer.
        top_hidden_size: ``H_2`` (default ``H // 2``).
        beta: KL weight in the loss (>= 0).
        free_bits: per-unit KL floor in nats, a float for both layers or a pair
            ``(delta_1, delta_2)``.
        merge: ``"residual"`` or ``"precision"``, the posterior of :math:`z_1` (above).

    References:
        Sønderby et al. (2016), Ladder Variational Autoencoders.
        Vahdat & Kautz (2020), NVAE: A Deep Hierarchical Variational Autoencoder.
    """

    def __init__(
        self, input_size: int, hidden_size: int, latent_sizes: tuple[int, int] = (8, 4), *,
        top_hidden_size: int | None = None, beta: float = 1.0,
        free_bits: float | tuple[float, float] = 0.0, merge: str = "residual",
    ):
        super().__init__()
        self.merge = check_choice("merge", merge, ("residual", "precision"))
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        if not isinstance(latent_sizes, (tuple, list)) or len(latent_sizes) != 2:
            raise ValueError(f"latent_sizes must be a pair (L_1, L_2), got {latent_sizes!r}")
        l1 = check_positive_int("latent_sizes[0]", latent_sizes[0])
        l2 = check_positive_int("latent_sizes[1]", latent_sizes[1])
        self.latent_sizes = (l1, l2)
        h2 = max(1, hidden_size // 2) if top_hidden_size is None else top_hidden_size
        self.top_hidden_size = check_positive_int("top_hidden_size", h2)
        self.beta = check_nonnegative_float("beta", beta)
        self.free_bits = _layer_pair("free_bits", free_bits)
        h = hidden_size
        self.encoder_1 = nn.Sequential(nn.Linear(input_size, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
        self.head_1 = nn.Linear(h, 2 * l1)
        self.encoder_2 = nn.Sequential(nn.Linear(h, h2), nn.ReLU())
        self.head_2 = nn.Linear(h2, 2 * l2)
        self.prior_net = nn.Sequential(nn.Linear(l2, h2), nn.ReLU(), nn.Linear(h2, 2 * l1))
        self.decoder = nn.Sequential(
            nn.Linear(l1, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, input_size)
        )

    @property
    def config(self) -> dict:
        """Constructor arguments that rebuild this model."""
        return {"input_size": self.input_size, "hidden_size": self.hidden_size,
                "latent_sizes": self.latent_sizes, "top_hidden_size": self.top_hidden_size,
                "beta": self.beta, "free_bits": self.free_bits, "merge": self.merge}

    def bottom_up(self, x: torch.Tensor):
        """``x (B, D) -> (mu_q2, log_var_q2, (mu_hat1, log_var_hat1))``, ``(B, L_2)`` and ``(B, L_1)``."""
        d_1 = self.encoder_1(x)
        mu_q2, log_var_q2 = self.head_2(self.encoder_2(d_1)).chunk(2, dim=-1)
        return mu_q2, log_var_q2, self.head_1(d_1).chunk(2, dim=-1)

    def prior_1(self, z2: torch.Tensor):
        r"""``z2 (..., L_2) -> (mu_p1, log_var_p1)`` of :math:`p(z_1\mid z_2)`, each ``(..., L_1)``."""
        mu_p1, log_var_p1 = self.prior_net(z2).chunk(2, dim=-1)
        return mu_p1, log_var_p1

    def posterior_1(self, context, z2, mu_p1: torch.Tensor, log_var_p1: torch.Tensor):
        r""":math:`q(z_1\mid z_2, x)` from the bottom-up ``context`` and :math:`p(z_1\mid z_2)` (see ``merge``)."""
        mu_hat, log_var_hat = context
        if self.merge == "precision":
            return precision_weighted_merge(mu_hat, log_var_hat, mu_p1, log_var_p1)
        return mu_p1 + mu_hat, log_var_p1 + log_var_hat

    def log_likelihood(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        r"""Bernoulli :math:`\log p(x\mid z_1)` from logits ``x_hat``, summed over ``D``: ``(...)``."""
        return bernoulli_log_likelihood(x, x_hat)

    def mean_of(self, x_hat: torch.Tensor) -> torch.Tensor:
        r"""Bernoulli means :math:`\rho=\mathrm{sigmoid}(\ell)` from the logits."""
        return torch.sigmoid(x_hat)
