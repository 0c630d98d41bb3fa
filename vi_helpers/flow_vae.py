r"""A VAE whose encoder outputs a normalizing flow, and its approximation and amortization gaps.

The encoder maps an image :math:`x` to the parameters :math:`\xi_\phi(x)` of a
:class:`~vi_helpers.flows.FlowFamily`: a diagonal Gaussian
:math:`\mathcal N(\mu_\phi(x),\mathrm{diag}\,\sigma^2_\phi(x))` followed by :math:`M`
planar layers whose :math:`(u, w, b)` also depend on :math:`x` (as in Rezende & Mohamed
2015, section 4). With ``n_layers = 0`` it is the diagonal-Gaussian VAE of notebook 5
(:meth:`FlowVAE.as_gaussian_vae` returns that model with the same weights). The
decoder is a Bernoulli :class:`~vi_helpers.models.GenerativeModel`, the prior
:math:`\mathcal N(0, I_L)`. The KL term has no closed form for a flow, so

.. math::
    \mathcal L(x) = \mathbb E_{q_\phi(z\mid x)}\big[\log p_\theta(x\mid z)
    + \log p(z) - \log q_\phi(z\mid x)\big]

is estimated by Monte Carlo for every ``n_layers`` (the same estimator for the
Gaussian and the flow encoders, so they are compared on equal terms).

**Gaps** (Cremer, Li & Duvenaud 2018). For an image :math:`x`,

.. math::
    \log p(x)-\mathcal L(q_\phi)
    = \underbrace{\log p(x)-\mathcal L(q^\star)}_{\text{approximation gap}}
    + \underbrace{\mathcal L(q^\star)-\mathcal L(q_\phi)}_{\text{amortization gap}},

where :math:`q^\star` is the best member of the *same family* for that image, approximated
by :func:`optimize_local_flow` (the flow's parameters optimized per image, decoder
fixed). That is a local optimum, so the measured approximation gap is an upper bound
and the amortization gap a lower bound, for the exact :math:`\log p(x)`; the
importance-sampled :math:`\log p(x)` is biased low, which pulls the approximation gap
down. :func:`inference_gaps` measures all three terms. This is the flow version of
:func:`vi_helpers.free_energy.amortization_gap`, which handles diagonal Gaussians.

Shapes: ``B`` images, ``D`` pixels, ``L`` latent dimension, ``P`` flow parameters,
``S`` Monte Carlo samples, ``K`` importance samples. Values in nats, per image.

References:
    Rezende & Mohamed (2015), Variational Inference with Normalizing Flows.
    Cremer, Li & Duvenaud (2018), Inference Suboptimality in Variational Autoencoders.
    Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders.
    Kingma et al. (2016), Improved Variational Inference with Inverse Autoregressive Flow.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ._validate import (
    check_choice,
    check_nonnegative_float,
    check_nonnegative_int,
    check_positive_float,
    check_positive_int,
    check_tensor,
)
from .elbo import bernoulli_log_likelihood
from .flows import LOG_2PI, FlowFamily
from .models import GenerativeModel, VariationalAutoencoder

__all__ = ["FlowVAE", "optimize_local_flow", "inference_gaps"]


class FlowVAE(nn.Module):
    r"""VAE with a flow encoder :math:`q_\phi(z\mid x)` and a Bernoulli decoder.

    Encoder: ``Linear(D,H)-ReLU-Linear(H,H)-ReLU-Linear(H,P)``, the last layer giving
    the flow's parameters :math:`\xi_\phi(x)` (layout in
    :class:`~vi_helpers.flows.FlowFamily`; for the diagonal base the first ``2L``
    are :math:`\mu` and :math:`\log\sigma`). Decoder:
    :class:`~vi_helpers.models.GenerativeModel` (logits).

    Trains through :func:`~vi_helpers.train.train_model` with the ``training_loss``
    contract, and ``validation_data=`` works through :meth:`elbo`.

    Args:
        input_size: ``D``.
        hidden_size: ``H``.
        latent_size: ``L``.
        n_layers: planar layers ``M`` after the base Gaussian (0: a Gaussian encoder).
        base: ``"diagonal"`` or ``"full"`` base Gaussian.
        beta: KL weight in the training loss.
        seed: if given, the initial weights are drawn from a generator seeded with it
            (the global random state is untouched); otherwise from the global RNG.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        latent_size: int,
        n_layers: int = 0,
        *,
        base: str = "diagonal",
        beta: float = 1.0,
        seed: int | None = None,
    ):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.latent_size = check_positive_int("latent_size", latent_size)
        self.family = FlowFamily(latent_size, n_layers, base=check_choice("base", base, ("diagonal", "full")))
        self.beta = check_nonnegative_float("beta", beta)
        if seed is not None:
            seed = check_nonnegative_int("seed", seed)
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.encoder = nn.Sequential(
                nn.Linear(input_size, hidden_size),
                nn.ReLU(),
                nn.Linear(hidden_size, hidden_size),
                nn.ReLU(),
                nn.Linear(hidden_size, self.family.n_params),
            )
            self.decoder = GenerativeModel(latent_size, hidden_size, input_size)

    @property
    def n_layers(self) -> int:
        """Number of planar layers ``M``."""
        return self.family.n_layers

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, D) -> theta (B, P)``: the flow's parameters for every image."""
        check_tensor("x", x, ndim=2, last_dim=self.input_size)
        return self.encoder(x)

    def log_likelihood(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(x\mid z)`, Bernoulli, ``(...)`` nats (``x`` in [0, 1], see
        :func:`~vi_helpers.elbo.bernoulli_log_likelihood`)."""
        return bernoulli_log_likelihood(x, logits)

    def elbo_samples(
        self, x: torch.Tensor, theta: torch.Tensor, n_samples: int, *, generator=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``(log_lik, kl)``, each ``(S, B)``: :math:`\log p(x\mid z_s)` and
        :math:`\log q(z_s)-\log p(z_s)` for :math:`z_s\sim q_\xi`, reparameterized (:math:`\xi` = ``theta``, the flow's parameters).

        Their difference averaged over ``S`` is an unbiased ELBO estimate for the flow
        ``theta (B, P)`` (the encoder's, or any other, e.g. :func:`optimize_local_flow`'s).
        """
        z, log_q = self.family.sample_and_log_prob(theta, n_samples, generator=generator)
        log_prior = -0.5 * (z.pow(2) + LOG_2PI).sum(dim=-1)
        logits = self.decoder.decoder(z)  # our own z: skip the input check
        log_lik = self.log_likelihood(x.expand_as(logits), logits)
        return log_lik, log_q - log_prior

    def elbo(
        self, x: torch.Tensor, *, n_samples: int = 1, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        r"""Per-image ELBO estimate in nats, ``(B,)``, from ``n_samples`` samples of :math:`q_\phi`."""
        n_samples = check_positive_int("n_samples", n_samples)
        log_lik, kl = self.elbo_samples(x, self.encode(x), n_samples, generator=generator)
        return (log_lik - kl).mean(dim=0)

    def training_loss(self, x: torch.Tensor, *, beta: float | None = None, free_bits=None):
        r"""Batch mean of :math:`-\log p(x\mid z)+\beta\,(\log q(z\mid x)-\log p(z))`, one sample per image.

        Args:
            x: ``(B, D)`` images in [0, 1].
            beta: KL weight (default ``self.beta``).
            free_bits: not supported (a flow's KL does not split over dimensions); must be
                ``None`` or 0.

        Returns:
            ``(loss, terms)``: ``terms`` holds the batch means ``recon`` (= ``-log_lik``),
            ``kl`` (the single-sample KL estimate) and ``log_lik``, detached, in nats.
        """
        beta = self.beta if beta is None else check_nonnegative_float("beta", beta)
        if free_bits is not None and check_nonnegative_float("free_bits", free_bits) > 0:
            raise ValueError("free_bits must be None or 0 for a FlowVAE (no per-dimension KL)")
        log_lik, kl = self.elbo_samples(x, self.encode(x), 1)
        log_lik, kl = log_lik.mean(), kl.mean()
        loss = -log_lik + beta * kl
        recon = -log_lik.detach()
        return loss, {"recon": recon, "kl": kl.detach(), "log_lik": -recon}

    @torch.no_grad()
    def as_gaussian_vae(self) -> VariationalAutoencoder:
        r"""The same model as a :class:`~vi_helpers.models.VariationalAutoencoder`
        (``likelihood="bernoulli"``): only for ``n_layers = 0`` and a diagonal base.

        Its ``mean`` head is rows :math:`1..L` of the last encoder layer and its
        ``log_var`` head twice rows :math:`L+1..2L` (:math:`\log\sigma^2=2\log\sigma`),
        so both models define the same :math:`q(z\mid x)` and :math:`p(x\mid z)`.
        """
        if self.n_layers or self.family.base != "diagonal":
            raise ValueError("as_gaussian_vae needs n_layers = 0 and base='diagonal'")
        L = self.latent_size
        vae = VariationalAutoencoder(
            self.input_size, self.hidden_size, L, likelihood="bernoulli"
        ).to(next(self.parameters()).dtype)
        vae.encoder.encoder.load_state_dict(self.encoder[:4].state_dict())
        head = self.encoder[4]
        vae.encoder.mean.weight.copy_(head.weight[:L])
        vae.encoder.mean.bias.copy_(head.bias[:L])
        vae.encoder.log_var.weight.copy_(2.0 * head.weight[L:])
        vae.encoder.log_var.bias.copy_(2.0 * head.bias[L:])
        vae.decoder.load_state_dict(self.decoder.state_dict())
        return vae.train(self.training)


# -- local (per-image) optimization and the gaps ---------------------------------------------
def _check_model_x(model, x) -> torch.Tensor:
    if not isinstance(model, FlowVAE):
        raise TypeError(f"model must be a FlowVAE, got {type(model).__name__}")
    check_tensor("x", x, ndim=2, last_dim=model.input_size)
    p = next(model.parameters())
    return x.to(device=p.device, dtype=p.dtype)


def optimize_local_flow(
    model: FlowVAE,
    x: torch.Tensor,
    *,
    n_steps: int = 300,
    learning_rate: float = 0.05,
    n_samples: int = 8,
    seed: int = 0,
) -> tuple[torch.Tensor, list[float]]:
    r"""The best flow of the model's family for each image, decoder fixed: :math:`q^\star`.

    .. math::
        \xi^\star_b=\arg\max_{\xi_b}\ \mathbb E_{q_{\xi_b}}\big[\log p_\theta(x_b\mid z)
        +\log p(z)-\log q_{\xi_b}(z)\big],

    by Adam on each image's own flow parameters :math:`\xi_b` (``theta``, ``(B, P)``, started at the
    encoder's output; written :math:`\xi` because :math:`\theta` names the decoder),
    ``n_samples`` fresh reparameterized samples per step, the step size annealed to 0 by
    a cosine schedule. The images do not interact (the objective is a sum over images
    and Adam is elementwise). Gradients are taken with ``torch.autograd.grad``, so
    nothing accumulates in the model's ``.grad``.

    Args:
        model: a :class:`FlowVAE`.
        x: ``(B, D)`` images.
        n_steps: Adam steps (>= 0; 0 returns the encoder's parameters).
        learning_rate: initial step size (> 0).
        n_samples: samples per image and step (> 0).
        seed: an int >= 0 for the noise; the global random state is untouched.

    Returns:
        ``(theta_star, history)``: ``(B, P)`` detached parameters and the mean ELBO
        estimate (nats per image) at each step, before that step's update.
    """
    x = _check_model_x(model, x)
    n_steps = check_nonnegative_int("n_steps", n_steps)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    n_samples = check_positive_int("n_samples", n_samples)
    seed = check_nonnegative_int("seed", seed)
    generator = torch.Generator(device=x.device).manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            theta = model.encode(x).detach().clone()
        theta.requires_grad_(True)
        optimizer = torch.optim.Adam([theta], lr=learning_rate)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(n_steps, 1))
        history: list[float] = []
        for _ in range(n_steps):
            log_lik, kl = model.elbo_samples(x, theta, n_samples, generator=generator)
            elbo = (log_lik - kl).mean(dim=0)  # (B,)
            history.append(float(elbo.detach().mean()))
            (theta.grad,) = torch.autograd.grad(-elbo.sum(), [theta])
            optimizer.step()
            scheduler.step()
    finally:
        model.train(was_training)
    return theta.detach(), history


def _log_px_mixture(model, x, theta_1, theta_2, k: int, generator, chunk: int) -> torch.Tensor:
    r"""Importance-sampled :math:`\log p(x)`, ``(B,)``, with the equal mixture of two flows
    as proposal (half the samples from each; every weight uses the mixture density, which
    keeps :math:`\frac1K\sum_k p(x,z_k)/q_{\rm mix}(z_k)` unbiased for :math:`p(x)`)."""
    family = model.family
    k1 = k // 2
    counts = (k1, k - k1)
    log_frac = [math.log(c / k) if c else -math.inf for c in counts]
    log_sum = torch.full((x.shape[0],), -math.inf, dtype=x.dtype, device=x.device)
    for theta, n_total in zip((theta_1, theta_2), counts, strict=True):
        for start in range(0, n_total, chunk):
            n = min(chunk, n_total - start)
            z, _ = family.sample_and_log_prob(theta, n, generator=generator)
            logits = model.decoder.decoder(z)
            log_joint = model.log_likelihood(x.expand_as(logits), logits) - 0.5 * (
                z.pow(2) + LOG_2PI
            ).sum(dim=-1)
            log_q_mix = torch.logaddexp(
                log_frac[0] + family.log_prob(theta_1, z), log_frac[1] + family.log_prob(theta_2, z)
            )
            log_sum = torch.logaddexp(log_sum, torch.logsumexp(log_joint - log_q_mix, dim=0))
    return log_sum - math.log(k)


def inference_gaps(
    model: FlowVAE,
    x: torch.Tensor,
    *,
    k: int = 1000,
    n_steps: int = 300,
    learning_rate: float = 0.05,
    n_samples: int = 8,
    n_eval_samples: int = 1000,
    seed: int = 0,
    reduction: str = "mean",
) -> dict:
    r"""Approximation and amortization gaps of a :class:`FlowVAE`'s encoder (Cremer et al. 2018).

    * :math:`q_\phi`: the encoder's flow; :math:`q^\star`: :func:`optimize_local_flow`
      started at it (``n_steps``, ``learning_rate``, ``n_samples``).
    * :math:`\mathcal L(q_\phi)`, :math:`\mathcal L(q^\star)`: ``n_eval_samples`` samples
      each, with the *same* base noise :math:`\varepsilon` (common random numbers), so
      their difference, the amortization gap, is much more precise than either.
    * :math:`\log p(x)`: importance sampling with ``k`` samples from the equal mixture of
      :math:`q_\phi` and :math:`q^\star` (densities by :meth:`FlowFamily.log_prob
      <vi_helpers.flows.FlowFamily.log_prob>`); a lower bound in expectation that
      tightens with ``k`` (notebook 8).

    Args:
        model: a :class:`FlowVAE`.
        x: ``(B, D)`` images.
        k: importance samples per image (> 0).
        n_steps, learning_rate, n_samples: passed to :func:`optimize_local_flow`.
        n_eval_samples: samples per image for each ELBO (> 0).
        seed: an int >= 0 seeding everything; the global random state is untouched.
        reduction: ``"mean"`` (floats, averaged over images) or ``"none"`` (``(B,)`` tensors).

    Returns:
        dict with ``log_px``, ``elbo_local``, ``elbo_encoder``, ``approximation_gap``,
        ``amortization_gap`` and ``inference_gap`` (their sum), nats per image.
    """
    x = _check_model_x(model, x)
    k = check_positive_int("k", k)
    n_eval_samples = check_positive_int("n_eval_samples", n_eval_samples)
    seed = check_nonnegative_int("seed", seed)
    reduction = check_choice("reduction", reduction, ("mean", "none"))
    theta_star, _ = optimize_local_flow(
        model, x, n_steps=n_steps, learning_rate=learning_rate, n_samples=n_samples, seed=seed
    )
    chunk = 100  # samples per pass: memory chunk * B * D
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            theta_enc = model.encode(x)

            def elbo_of(theta):
                gen = torch.Generator(device=x.device).manual_seed(seed + 1)  # the same noise
                total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
                for start in range(0, n_eval_samples, chunk):
                    n = min(chunk, n_eval_samples - start)
                    log_lik, kl = model.elbo_samples(x, theta, n, generator=gen)
                    total = total + (log_lik - kl).sum(dim=0)
                return total / n_eval_samples

            elbo_encoder, elbo_local = elbo_of(theta_enc), elbo_of(theta_star)
            gen = torch.Generator(device=x.device).manual_seed(seed + 2)
            log_px = _log_px_mixture(model, x, theta_enc, theta_star, k, gen, chunk)
    finally:
        model.train(was_training)
    out = {
        "log_px": log_px,
        "elbo_local": elbo_local,
        "elbo_encoder": elbo_encoder,
        "approximation_gap": log_px - elbo_local,
        "amortization_gap": elbo_local - elbo_encoder,
        "inference_gap": log_px - elbo_encoder,
    }
    if reduction == "mean":
        return {name: float(value.mean()) for name, value in out.items()}
    return out
