r"""Gaussian diffusion as a deep hierarchical VAE with a fixed encoder.

The **encoder** is not learned: the forward (noising) process
:math:`q(x_{1:T}\mid x_0)=\prod_{t=1}^T q(x_t\mid x_{t-1})` with

.. math::
    q(x_t\mid x_{t-1})=\mathcal N\big(\sqrt{\alpha_t}\,x_{t-1},\,(1-\alpha_t)I\big),
    \qquad \bar\alpha_t=\prod_{i=1}^t\alpha_i,\ \bar\alpha_0=1 .

(The noise schedule is written with :math:`\alpha_t` only: in this course
:math:`\beta` is the KL weight, so the :math:`\beta_t=1-\alpha_t` of Ho et al. is
always spelt :math:`1-\alpha_t`.) Its marginals and posteriors are Gaussian in
closed form (:func:`forward_marginal`, :func:`forward_posterior`):

.. math::
    q(x_t\mid x_0)=\mathcal N\big(\sqrt{\bar\alpha_t}\,x_0,(1-\bar\alpha_t)I\big),\quad
    q(x_{t-1}\mid x_t,x_0)=\mathcal N\big(\tilde\mu_t,\tilde\sigma_t^2I\big),

    \tilde\mu_t=\frac{\sqrt{\bar\alpha_{t-1}}(1-\alpha_t)}{1-\bar\alpha_t}x_0
    +\frac{\sqrt{\alpha_t}(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}x_t,\qquad
    \tilde\sigma_t^2=\frac{(1-\bar\alpha_{t-1})(1-\alpha_t)}{1-\bar\alpha_t}.

The **decoder** is the reverse chain :math:`p(x_T)\prod_t p_\theta(x_{t-1}\mid x_t)`
and the ELBO is a sum of Gaussian KLs (Sohl-Dickstein et al. 2015; Ho et al. 2020):

.. math::
    \mathcal L(x_0)=\underbrace{\mathbb E_q\log p_\theta(x_0\mid x_1)}_{-L_0}
    -\underbrace{\mathrm{KL}(q(x_T\mid x_0)\,\|\,p(x_T))}_{L_T}
    -\sum_{t=2}^T\underbrace{\mathbb E_q\,\mathrm{KL}\big(q(x_{t-1}\mid x_t,x_0)\,\|\,
    p_\theta(x_{t-1}\mid x_t)\big)}_{L_{t-1}} .

Choices made here (:class:`GaussianDiffusion`): :math:`p(x_T)=\mathcal N(0,I)`;
reverse variances fixed to :math:`\sigma_t^2=1-\alpha_t` or :math:`\tilde\sigma_t^2`
(Ho et al.'s two choices, :func:`reverse_variance`); the
mean in the :math:`\varepsilon`-parameterization
:math:`\mu_\theta=\big(x_t-\frac{1-\alpha_t}{\sqrt{1-\bar\alpha_t}}\varepsilon_\theta(x_t,t)\big)/\sqrt{\alpha_t}`;
and at :math:`t=1` a **Gaussian decoder** :math:`p_\theta(x_0\mid x_1)=\mathcal N(\hat
x_0,\sigma_{\mathrm{dec}}^2I)` with :math:`\hat x_0=(x_1-\sqrt{1-\alpha_1}\varepsilon_\theta)/\sqrt{\alpha_1}`
and :math:`\sigma_{\mathrm{dec}}^2=(1-\alpha_1)/\alpha_1`, the variance of :math:`x_0` given
:math:`x_1` when :math:`\varepsilon` is unknown. It keeps the model a *continuous*
density (so the exact Gaussian-data check below applies); for discrete pixels
the data are uniformly dequantized first, which turns the ELBO into a bound on
the discrete log-probability (Theis et al. 2016). With these choices every term
is a constant plus a weighted :math:`\varepsilon`-error, :math:`L_{t-1}=Dc_t+w_t\lVert
\varepsilon-\varepsilon_\theta\rVert^2` (:func:`elbo_offsets`, :func:`elbo_weights`),
and the *simplified loss* of Ho et al. is the same sum with all :math:`w_t`
replaced by one and the constants dropped.

The exact case lives in :mod:`vi_helpers.diffusion_gaussian`: for
data :math:`x_0\sim\mathcal N(\mu_{\mathrm{data}},C)` every :math:`q(x_{t-1}\mid x_t)` is Gaussian;
with those reverse kernels and :math:`p(x_T)=q(x_T)` the ELBO equals
:math:`\log p(x_0)` for every :math:`x_0`.

Time steps ``t`` are 1-based as in the math, :math:`t\in\{1,\dots,T\}`; a
schedule tensor ``alpha`` of shape ``(T,)`` holds :math:`\alpha_t` at index
``t - 1``. All log-densities and KLs are per example, in nats.

References:
    Sohl-Dickstein, Weiss, Maheswaranathan & Ganguli (2015), Deep Unsupervised
    Learning using Nonequilibrium Thermodynamics.
    Ho, Jain & Abbeel (2020), Denoising Diffusion Probabilistic Models.
    Kingma, Salimans, Poole & Ho (2021), Variational Diffusion Models.
    Nichol & Dhariwal (2021), Improved Denoising Diffusion Probabilistic Models.
    Vincent (2011), A Connection Between Score Matching and Denoising Autoencoders.
    Song & Ermon (2019), Generative Modeling by Estimating Gradients of the Data
    Distribution.
    Luo (2022), Understanding Diffusion Models: A Unified Perspective.
    Theis, van den Oord & Bethge (2016), A note on the evaluation of generative models.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validate import check_choice, check_positive_int, check_same_shape, check_tensor
from .elbo import gaussian_log_likelihood
from .kl import kl_diag_normal

__all__ = [
    "SCHEDULES",
    "noise_schedule",
    "alpha_bar",
    "forward_marginal",
    "forward_sample",
    "forward_step",
    "forward_posterior",
    "VARIANCES",
    "reverse_variance",
    "elbo_weights",
    "elbo_offsets",
    "Denoiser",
    "GaussianDiffusion",
    "dequantize",
]

#: Names understood by :func:`noise_schedule`.
SCHEDULES = ("cosine", "linear")

#: Largest :math:`1-\alpha_t` allowed (Nichol & Dhariwal 2021 clip at 0.999).
MAX_NOISE = 0.999


# ----------------------------------------------------------------------------- schedule
def noise_schedule(
    n_steps: int, kind: str = "cosine", *, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    r"""The schedule :math:`\alpha_1,\dots,\alpha_T` of the forward process.

    * ``"cosine"`` (Nichol & Dhariwal 2021): :math:`\bar\alpha_t=f(t)/f(0)`,
      :math:`f(t)=\cos^2\big(\frac{t/T+s}{1+s}\frac\pi2\big)`, :math:`s=0.008`, so
      :math:`\bar\alpha` falls smoothly from 1 to 0; :math:`\alpha_t=\bar\alpha_t/\bar\alpha_{t-1}`.
    * ``"linear"`` (Ho et al. 2020, rescaled to ``T`` steps): :math:`1-\alpha_t`
      rises linearly from :math:`10^{-4}\cdot1000/T` to :math:`0.02\cdot1000/T`, so
      :math:`\bar\alpha_T\approx4\cdot10^{-5}` for large ``T`` but not for short chains.

    Both clip :math:`1-\alpha_t\le 0.999`.

    Args:
        n_steps: ``T`` >= 1.
        kind: one of :data:`SCHEDULES`.
        dtype: floating dtype of the result (float64 by default: :math:`1-\bar\alpha_t`
            is tiny at small ``t``).

    Returns:
        ``(T,)`` values in :math:`[0.001, 1)`.
    """
    n_steps = check_positive_int("n_steps", n_steps)
    kind = check_choice("kind", kind, SCHEDULES)
    if kind == "linear":
        scale = 1000.0 / n_steps
        one_minus = torch.linspace(1e-4 * scale, 0.02 * scale, n_steps, dtype=torch.float64)
    else:
        s = 0.008
        t = torch.arange(n_steps + 1, dtype=torch.float64) / n_steps
        f = torch.cos((t + s) / (1 + s) * math.pi / 2).pow(2)
        a_bar = f / f[0]
        one_minus = 1.0 - a_bar[1:] / a_bar[:-1]
    return (1.0 - one_minus.clamp(max=MAX_NOISE)).to(dtype)


def _check_alpha(alpha) -> torch.Tensor:
    check_tensor("alpha", alpha, ndim=1)
    if bool((alpha <= 0).any()) or bool((alpha >= 1).any()):
        raise ValueError(
            f"alpha must lie in (0, 1), got range [{float(alpha.min()):.4g}, {float(alpha.max()):.4g}]"
        )
    return alpha


def alpha_bar(alpha: torch.Tensor) -> torch.Tensor:
    r""":math:`\bar\alpha_t=\prod_{i\le t}\alpha_i` for :math:`t=0,\dots,T`: shape ``(T + 1,)``,
    with :math:`\bar\alpha_0=1` at index 0 (so index ``t`` is step ``t``)."""
    _check_alpha(alpha)
    return torch.cat([alpha.new_ones(1), torch.cumprod(alpha, dim=0)])


def _steps(t, n_rows: int, n_steps: int, device) -> torch.Tensor:
    """``t`` (an int, or an integer tensor of shape ``(B,)``) -> int64 ``(B,)`` in 1..T."""
    if isinstance(t, bool):
        raise TypeError("t must be an int or an integer tensor, got bool")
    if isinstance(t, int):
        t = torch.full((n_rows,), t, dtype=torch.int64, device=device)
    elif not isinstance(t, torch.Tensor) or t.is_floating_point() or t.dtype == torch.bool:
        raise TypeError(f"t must be an int or an integer tensor, got {type(t).__name__}")
    if tuple(t.shape) != (n_rows,):
        raise ValueError(f"t must have shape ({n_rows},) to match the rows of x, got {tuple(t.shape)}")
    if bool((t < 1).any()) or bool((t > n_steps).any()):
        raise ValueError(f"t must lie in 1..{n_steps} (1-based steps), got range "
                         f"[{int(t.min())}, {int(t.max())}]")
    return t.long()


def _coefficients(alpha, t, x):
    """Per-row :math:`(\\alpha_t, \\bar\\alpha_t, \\bar\\alpha_{t-1})`, each ``(B, 1)`` in x's dtype."""
    check_tensor("x", x, ndim=2)
    a_bar = alpha_bar(alpha)
    t = _steps(t, x.shape[0], alpha.shape[0], x.device)
    cast = {"dtype": x.dtype, "device": x.device}
    return (alpha.to(**cast)[t - 1, None], a_bar.to(**cast)[t, None], a_bar.to(**cast)[t - 1, None])


# ------------------------------------------------------------------------ forward process
def forward_marginal(x0: torch.Tensor, t, alpha: torch.Tensor):
    r"""Mean and variance of :math:`q(x_t\mid x_0)=\mathcal N(\sqrt{\bar\alpha_t}x_0,(1-\bar\alpha_t)I)`.

    Composing Gaussian steps: :math:`x_t=\sqrt{\alpha_t}x_{t-1}+\sqrt{1-\alpha_t}\varepsilon_t`
    unrolls to :math:`\sqrt{\bar\alpha_t}x_0+\sum_s(\dots)\varepsilon_s`, a sum of
    independent Gaussians whose variances add up to :math:`1-\bar\alpha_t`.

    Args:
        x0: ``(B, D)`` data.
        t: step in 1..T, an int or an int64 tensor ``(B,)`` (one step per row).
        alpha: ``(T,)`` schedule (:func:`noise_schedule`).

    Returns:
        ``(mean, var)``, each ``(B, D)``.
    """
    _, a_bar_t, _ = _coefficients(alpha, t, x0)
    return a_bar_t.sqrt() * x0, (1.0 - a_bar_t).expand_as(x0)


def forward_sample(x0: torch.Tensor, t, alpha: torch.Tensor, *, generator=None):
    r"""One draw :math:`x_t=\sqrt{\bar\alpha_t}x_0+\sqrt{1-\bar\alpha_t}\,\varepsilon` and its noise.

    Args:
        x0, t, alpha: as in :func:`forward_marginal`.
        generator: optional ``torch.Generator`` for the noise.

    Returns:
        ``(x_t, eps)``, each ``(B, D)``.
    """
    mean, var = forward_marginal(x0, t, alpha)
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    return mean + var.sqrt() * eps, eps


def forward_step(x_prev: torch.Tensor, t, alpha: torch.Tensor, *, generator=None):
    r"""One step of the chain, :math:`x_t\sim q(x_t\mid x_{t-1})=\mathcal N(\sqrt{\alpha_t}x_{t-1},(1-\alpha_t)I)`.

    Args:
        x_prev: ``(B, D)`` the state :math:`x_{t-1}`.
        t, alpha: as in :func:`forward_marginal`.
        generator: optional ``torch.Generator``.

    Returns:
        ``(B, D)`` the state :math:`x_t`.
    """
    a_t, _, _ = _coefficients(alpha, t, x_prev)
    eps = torch.randn(x_prev.shape, generator=generator, dtype=x_prev.dtype, device=x_prev.device)
    return a_t.sqrt() * x_prev + (1.0 - a_t).sqrt() * eps


def forward_posterior(x0: torch.Tensor, x_t: torch.Tensor, t, alpha: torch.Tensor):
    r"""Mean and variance of :math:`q(x_{t-1}\mid x_t,x_0)=\mathcal N(\tilde\mu_t,\tilde\sigma_t^2I)`.

    By Bayes' rule, :math:`q(x_{t-1}\mid x_t,x_0)\propto q(x_t\mid x_{t-1})\,q(x_{t-1}\mid x_0)`
    (the chain is Markov); both factors are Gaussian in :math:`x_{t-1}`, so their
    precisions add, :math:`\tilde\sigma_t^{-2}=\frac{\alpha_t}{1-\alpha_t}+\frac1{1-\bar\alpha_{t-1}}`,
    and the mean is the precision-weighted combination given in the module docstring.
    At ``t = 1`` the variance is 0 and the mean is ``x0``.

    Args:
        x0: ``(B, D)`` data.
        x_t: ``(B, D)`` the noisy state at step ``t``.
        t, alpha: as in :func:`forward_marginal`.

    Returns:
        ``(mean, var)``, each ``(B, D)``.
    """
    check_tensor("x_t", x_t, ndim=2)
    check_same_shape("x0", x0, "x_t", x_t)
    a_t, a_bar_t, a_bar_prev = _coefficients(alpha, t, x0)
    coef_x0 = a_bar_prev.sqrt() * (1.0 - a_t) / (1.0 - a_bar_t)
    coef_xt = a_t.sqrt() * (1.0 - a_bar_prev) / (1.0 - a_bar_t)
    var = (1.0 - a_bar_prev) * (1.0 - a_t) / (1.0 - a_bar_t)
    return coef_x0 * x0 + coef_xt * x_t, var.expand_as(x0)


#: Reverse-kernel variances of :func:`reverse_variance` (Ho et al.'s two choices).
VARIANCES = ("posterior", "forward")


def reverse_variance(alpha: torch.Tensor, kind: str = "posterior") -> torch.Tensor:
    r"""The fixed variances :math:`\sigma_t^2` of the reverse kernels :math:`p_\theta(x_{t-1}\mid x_t)`.

    * ``"posterior"``: :math:`\sigma_t^2=\tilde\sigma_t^2`, optimal when :math:`x_0` is a
      single point (Ho et al. 2020);
    * ``"forward"``: :math:`\sigma_t^2=1-\alpha_t`, optimal for :math:`x_0\sim\mathcal N(0,I)`,
      and close to optimal whenever the data spread exceeds the noise of step ``t``.

    Index 0 holds the Gaussian decoder's :math:`\sigma_{\mathrm{dec}}^2=(1-\alpha_1)/\alpha_1` in both cases (at :math:`t=1`, :math:`\tilde\sigma_1^2=0`).

    Args:
        alpha: ``(T,)`` schedule.
        kind: one of :data:`VARIANCES`.

    Returns:
        ``(T,)`` variances, index ``t - 1`` for step ``t``.
    """
    kind = check_choice("kind", kind, VARIANCES)
    a_bar = alpha_bar(alpha)
    if kind == "forward":
        var = 1.0 - alpha
    else:
        var = (1.0 - a_bar[:-1]) * (1.0 - alpha) / (1.0 - a_bar[1:])
    var = var.clone()
    var[0] = (1.0 - alpha[0]) / alpha[0]
    return var


def elbo_weights(alpha: torch.Tensor, variance: str = "posterior") -> torch.Tensor:
    r"""The weights :math:`w_t` in :math:`L_{t-1}=D\,c_t+w_t\lVert\varepsilon-\varepsilon_\theta\rVert^2`.

    The reverse mean :math:`\mu_\theta` is :math:`\tilde\mu_t` with :math:`x_0` replaced
    by :math:`\hat x_0`, and :math:`x_0-\hat x_0=-\sqrt{(1-\bar\alpha_t)/\bar\alpha_t}\,
    (\varepsilon-\varepsilon_\theta)`; the mean part of the Gaussian KL is
    :math:`\lVert\tilde\mu_t-\mu_\theta\rVert^2/(2\sigma_t^2)`, so

    .. math::
        w_t=\frac{(1-\alpha_t)^2}{2\sigma_t^2\,\alpha_t(1-\bar\alpha_t)}
        \ \overset{\sigma_t^2=\tilde\sigma_t^2}{=}\ \frac{1-\alpha_t}{2\alpha_t(1-\bar\alpha_{t-1})}
        =\tfrac12\Big(\frac{\mathrm{SNR}(t-1)}{\mathrm{SNR}(t)}-1\Big),
        \quad \mathrm{SNR}(t)=\frac{\bar\alpha_t}{1-\bar\alpha_t}

    (Kingma et al. 2021). The same formula at :math:`t=1`, with the decoder
    variance :math:`(1-\alpha_1)/\alpha_1`, gives :math:`w_1=\tfrac12`. The simplified
    loss of Ho et al. sets every :math:`w_t` to 1 and drops the constants :math:`c_t`
    (:func:`elbo_offsets`).

    Args:
        alpha: ``(T,)`` schedule.
        variance: the reverse variances, one of :data:`VARIANCES`.

    Returns:
        ``(T,)`` weights, index ``t - 1`` for step ``t``.
    """
    var = reverse_variance(alpha, variance)
    a_bar = alpha_bar(alpha)
    return (1.0 - alpha).pow(2) / (2.0 * var * alpha * (1.0 - a_bar[1:]))


def elbo_offsets(alpha: torch.Tensor, variance: str = "posterior") -> torch.Tensor:
    r"""The per-dimension constants :math:`c_t` of the negative ELBO's terms, in nats.

    For :math:`t\ge2` the variance part of :math:`\mathrm{KL}(\mathcal N(\tilde\mu_t,\tilde\sigma_t^2)\,\|\,
    \mathcal N(\mu_\theta,\sigma_t^2))` per dimension,
    :math:`c_t=\tfrac12\big(\log\frac{\sigma_t^2}{\tilde\sigma_t^2}+\frac{\tilde\sigma_t^2}{\sigma_t^2}-1\big)`
    (0 for ``"posterior"``); for :math:`t=1` the decoder's normalizer
    :math:`c_1=\tfrac12\log(2\pi\sigma_{\mathrm{dec}}^2)` (the formula above would be infinite, as :math:`\tilde\sigma_1^2=0`). So
    :math:`-\mathcal L=L_T+\sum_{t=1}^T\big(D\,c_t+w_t\,\mathbb E\lVert\varepsilon-\varepsilon_\theta\rVert^2\big)`.

    Args:
        alpha: ``(T,)`` schedule.
        variance: one of :data:`VARIANCES`.

    Returns:
        ``(T,)`` constants, index ``t - 1`` for step ``t``.
    """
    var = reverse_variance(alpha, variance)
    ratio = reverse_variance(alpha, "posterior") / var
    c = 0.5 * (ratio - 1.0 - ratio.log())
    c[0] = 0.5 * torch.log(2 * math.pi * var[0])
    return c


# ------------------------------------------------------------------------------- model
class Denoiser(nn.Module):
    r"""The noise predictor :math:`\varepsilon_\theta(x_t,t)`: an MLP with a time embedding.

    The step enters through sinusoidal features (Vaswani et al. 2017; Ho et al.
    2020) :math:`e(t)=[\sin(\omega_kt),\cos(\omega_kt)]_k` with
    :math:`\omega_k=T^{-k/(E/2)}`, mapped to ``H`` units and *added* to the first
    hidden layer and to every residual block, so each layer knows the noise level.
    Architecture: ``Linear(D,H)`` + time, SiLU, then ``n_blocks`` residual blocks
    :math:`h\leftarrow h+\mathrm{SiLU}(W h+U e(t))`, then ``Linear(H,D)``.

    Args:
        input_size: ``D``.
        hidden_size: ``H``.
        embed_size: ``E`` (even), number of sinusoidal features.
        n_blocks: residual blocks (>= 0).
        n_steps: ``T``, which sets the slowest frequency.
    """

    def __init__(self, input_size: int, hidden_size: int = 128, *, embed_size: int = 32,
                 n_blocks: int = 2, n_steps: int = 1000):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        hidden_size = check_positive_int("hidden_size", hidden_size)
        embed_size = check_positive_int("embed_size", embed_size)
        if embed_size % 2:
            raise ValueError(f"embed_size must be even, got {embed_size}")
        if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 0:
            raise ValueError(f"n_blocks must be an int >= 0, got {n_blocks!r}")
        half = embed_size // 2
        n_steps = check_positive_int("n_steps", n_steps)
        # periods from ~6 steps to ~2 pi T: fast features tell neighbouring steps apart
        self.register_buffer("freqs", torch.pow(float(n_steps), -torch.arange(half) / half))
        self.input = nn.Linear(input_size, hidden_size)
        self.time = nn.Linear(embed_size, hidden_size * (1 + n_blocks))
        self.blocks = nn.ModuleList(nn.Linear(hidden_size, hidden_size) for _ in range(n_blocks))
        self.output = nn.Linear(hidden_size, input_size)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x_t (B, D)``, ``t`` int64 ``(B,)`` in 1..T -> predicted noise ``(B, D)``."""
        angles = t.to(x_t.dtype)[:, None] * self.freqs.to(x_t.dtype)
        e = self.time(torch.cat([angles.sin(), angles.cos()], dim=-1))
        shifts = e.chunk(1 + len(self.blocks), dim=-1)
        h = F.silu(self.input(x_t) + shifts[0])
        for block, shift in zip(self.blocks, shifts[1:], strict=True):
            h = h + F.silu(block(h) + shift)
        return self.output(h)


#: Training objectives of :class:`GaussianDiffusion`.
LOSSES = ("simple", "elbo")


class GaussianDiffusion(nn.Module):
    r"""A DDPM (Ho et al. 2020) written as a hierarchical VAE with a fixed encoder.

    Generative model: :math:`x_T\sim\mathcal N(0,I)`,
    :math:`x_{t-1}\mid x_t\sim\mathcal N(\mu_\theta(x_t,t),\sigma_t^2I)` for
    :math:`t=T..2` (:func:`reverse_variance`), and the Gaussian decoder
    :math:`x_0\mid x_1\sim\mathcal N(\hat x_0(x_1),\tfrac{1-\alpha_1}{\alpha_1}I)`; all
    means come from one noise predictor :math:`\varepsilon_\theta` (:class:`Denoiser`).
    See the module docstring for the ELBO and the reasons for these choices.

    Training (:meth:`training_loss`, the contract of
    :func:`~vi_helpers.train.train_model`): per example draw
    :math:`t\sim\mathcal U\{1..T\}` and :math:`\varepsilon\sim\mathcal N(0,I)`, set
    :math:`x_t=\sqrt{\bar\alpha_t}x_0+\sqrt{1-\bar\alpha_t}\varepsilon` and minimize

    * ``loss="simple"``: :math:`\lVert\varepsilon-\varepsilon_\theta(x_t,t)\rVert^2` (Ho et al.'s
      :math:`L_\text{simple}`, summed over ``D``, batch mean);
    * ``loss="elbo"``: the unbiased one-draw estimate of :math:`-\mathcal L`,
      :math:`L_T+\sum_sD\,c_s+T\,w_t\lVert\varepsilon-\varepsilon_\theta\rVert^2`
      (:func:`elbo_weights`, :func:`elbo_offsets`).

    Args:
        input_size: ``D``.
        hidden_size: ``H`` of the :class:`Denoiser`.
        n_steps: ``T`` >= 2.
        schedule: one of :data:`SCHEDULES`. The default ``"linear"`` suits the ELBO:
            the cosine schedule's last steps (:math:`1-\alpha_t` up to 0.999) give
            :math:`w_t\approx500`, so tiny :math:`\varepsilon`-errors there cost many nats.
        variance: reverse variances, one of :data:`VARIANCES`; the default
            ``"forward"`` (:math:`1-\alpha_t`) is nearly optimal when the data spread
            exceeds the noise of the first steps, as for images.
        loss: one of :data:`LOSSES`.
        embed_size, n_blocks: passed to :class:`Denoiser`.
    """

    def __init__(self, input_size: int, hidden_size: int = 128, *, n_steps: int = 200,
                 schedule: str = "linear", variance: str = "forward", loss: str = "simple",
                 embed_size: int = 32, n_blocks: int = 2):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.n_steps = check_positive_int("n_steps", n_steps)
        if self.n_steps < 2:
            raise ValueError(f"n_steps must be >= 2, got {n_steps}")
        self.schedule = check_choice("schedule", schedule, SCHEDULES)
        self.variance = check_choice("variance", variance, VARIANCES)
        self.loss = check_choice("loss", loss, LOSSES)
        self.denoiser = Denoiser(input_size, hidden_size, embed_size=embed_size, n_blocks=n_blocks,
                                 n_steps=n_steps)
        # float64 tables (1 - alpha_bar_t is ~1e-4 at t = 1), indexed then cast per call;
        # computed once so that a training step is not dominated by schedule arithmetic
        alpha = noise_schedule(n_steps, schedule)
        self.register_buffer("alpha", alpha)
        self.register_buffer("alpha_bar", alpha_bar(alpha))
        self.register_buffer("weights", elbo_weights(alpha, variance))
        self.register_buffer("offsets", elbo_offsets(alpha, variance))

    def _check_x(self, x: torch.Tensor) -> None:
        check_tensor("x", x, ndim=2, last_dim=self.input_size)

    def forward(self, x_t: torch.Tensor, t) -> torch.Tensor:
        r""":math:`\varepsilon_\theta(x_t,t)`: ``(B, D)``; ``t`` an int or int64 ``(B,)`` in 1..T."""
        self._check_x(x_t)
        return self.denoiser(x_t, _steps(t, x_t.shape[0], self.n_steps, x_t.device))

    def reverse_mean(self, x_t: torch.Tensor, t) -> torch.Tensor:
        r""":math:`\mu_\theta=\big(x_t-\frac{1-\alpha_t}{\sqrt{1-\bar\alpha_t}}\varepsilon_\theta\big)/\sqrt{\alpha_t}`.

        At ``t = 1`` this is :math:`\hat x_0`, the decoder mean. Shape ``(B, D)``.
        """
        eps_hat = self(x_t, t)
        a_t, a_bar_t, _ = _coefficients(self.alpha, t, x_t)
        return (x_t - (1.0 - a_t) / (1.0 - a_bar_t).sqrt() * eps_hat) / a_t.sqrt()

    def training_loss(self, x: torch.Tensor, *, beta=None, free_bits=None):
        r"""One-draw loss and ELBO terms for :func:`~vi_helpers.train.train_model`.

        Args:
            x: ``(B, D)`` data :math:`x_0`.
            beta, free_bits: must be ``None``: the encoder is fixed, so there is no
                KL to weigh or floor (``ValueError`` otherwise).

        Returns:
            ``(loss, terms)``: the loss of ``self.loss`` (scalar, batch mean) and the
            batch means ``recon`` (:math:`L_0`), ``kl`` (:math:`L_T+\sum_{t\ge2}L_{t-1}`)
            and ``log_lik`` (:math:`-L_0`), in nats, each estimated from the one
            :math:`t` drawn per example (times ``T``), so ``log_lik - kl`` is an
            unbiased estimate of the ELBO.
        """
        for name, value in (("beta", beta), ("free_bits", free_bits)):
            if value is not None:
                raise ValueError(f"{name} must be None for GaussianDiffusion: its encoder is "
                                 "fixed, so there is no KL to weigh or floor")
        self._check_x(x)
        t = torch.randint(1, self.n_steps + 1, (x.shape[0],), device=x.device)
        a_bar = self.alpha_bar.to(x.dtype)
        eps = torch.randn_like(x)
        x_t = a_bar[t, None].sqrt() * x + (1.0 - a_bar[t, None]).sqrt() * eps
        sq_err = (eps - self.denoiser(x_t, t)).pow(2).sum(dim=-1)  # (B,)
        weighted = self.n_steps * self.weights.to(x.dtype)[t - 1] * sq_err
        offsets = self.input_size * self.offsets
        first = t == 1
        recon = float(offsets[0]) + torch.where(first, weighted, 0.0)
        # L_T = KL(N(sqrt(a_bar_T) x, 1 - a_bar_T) || N(0, I)), per dimension summed
        a_top = a_bar[-1]
        prior = 0.5 * (a_top * x.pow(2) - a_top - torch.log1p(-a_top)).sum(dim=-1)
        kl = prior + float(offsets[1:].sum()) + torch.where(first, 0.0, weighted)
        loss = sq_err.mean() if self.loss == "simple" else (recon + kl).mean()
        recon_mean = recon.mean().detach()
        return loss, {"recon": recon_mean, "kl": kl.mean().detach(), "log_lik": -recon_mean}

    def elbo_terms(self, x: torch.Tensor, *, generator=None) -> dict[str, torch.Tensor]:
        r"""The ELBO's terms per example, each with one draw :math:`x_t\sim q(x_t\mid x_0)` per step.

        Every KL is computed with :func:`~vi_helpers.kl.kl_diag_normal` from the two
        Gaussians' means and variances (not through :func:`elbo_weights`).

        Args:
            x: ``(B, D)`` data.
            generator: optional ``torch.Generator`` for the draws.

        Returns:
            ``{"prior": (B,), "kl": (B, T - 1), "log_lik": (B,)}``: :math:`L_T`, the
            :math:`L_{t-1}` for :math:`t=2..T` (column ``t - 2``) and
            :math:`\log p_\theta(x_0\mid x_1)`, in nats.
        """
        self._check_x(x)
        log_var_p = reverse_variance(self.alpha, self.variance).log().tolist()
        kls = []
        for t in range(1, self.n_steps + 1):
            x_t, _ = forward_sample(x, t, self.alpha, generator=generator)
            mu_theta = self.reverse_mean(x_t, t)
            if t == 1:
                log_lik = gaussian_log_likelihood(x, mu_theta, log_var_p[0])
                continue
            mu_tilde, var = forward_posterior(x, x_t, t, self.alpha)
            kls.append(kl_diag_normal(mu_tilde, var.log(), mu_theta,
                                      torch.full_like(var, log_var_p[t - 1])))
        prior = kl_diag_normal(*_prior_args(self.alpha, x))
        return {"prior": prior, "kl": torch.stack(kls, dim=-1), "log_lik": log_lik}

    def elbo(self, x: torch.Tensor, *, generator=None) -> torch.Tensor:
        r"""Per-example ELBO :math:`-L_0-L_T-\sum_{t\ge2}L_{t-1}` in nats, ``(B,)`` (see :meth:`elbo_terms`)."""
        terms = self.elbo_terms(x, generator=generator)
        return terms["log_lik"] - terms["prior"] - terms["kl"].sum(dim=-1)

    @torch.no_grad()
    def sample(self, n: int, *, generator=None, return_chain: bool = False) -> torch.Tensor:
        r"""Ancestral sampling along the reverse chain.

        :math:`x_T\sim\mathcal N(0,I)`, then :math:`x_{t-1}=\mu_\theta(x_t,t)+\sigma_t\xi`
        for :math:`t=T..2`, and finally the decoder *mean* :math:`\hat x_0(x_1)`
        (the decoder's noise, of std :math:`\sigma_{\mathrm{dec}}`, is left out, as is usual).

        Args:
            n: number of samples.
            generator: optional CPU ``torch.Generator``: the same seed gives the same samples.
            return_chain: also return every state.

        Returns:
            ``(n, D)`` samples, or with ``return_chain`` the states ``(T + 1, n, D)``,
            index ``t`` holding :math:`x_t` (index 0 the samples).
        """
        n = check_positive_int("n", n)
        device, dtype = self.alpha.device, next(self.parameters()).dtype
        std = reverse_variance(self.alpha, self.variance).sqrt().tolist()
        x = torch.randn(n, self.input_size, generator=generator, dtype=dtype).to(device)
        chain = [x]
        for t in range(self.n_steps, 0, -1):
            x = self.reverse_mean(x, t)
            if t > 1:
                x = x + std[t - 1] * torch.randn(x.shape, generator=generator, dtype=dtype).to(device)
            chain.append(x)
        return torch.stack(chain[::-1]) if return_chain else x


def _prior_args(alpha: torch.Tensor, x0: torch.Tensor):
    """Arguments of kl_diag_normal for :math:`\\mathrm{KL}(q(x_T\\mid x_0)\\,\\|\\,\\mathcal N(0,I))`."""
    mean, var = forward_marginal(x0, alpha.shape[0], alpha)
    return mean, var.log(), torch.zeros_like(x0), torch.zeros_like(x0)


# ------------------------------------------------------------------------ discrete data
def dequantize(x: torch.Tensor, n_levels: int, *, generator=None) -> tuple[torch.Tensor, float]:
    r"""Uniform dequantization of pixels with ``n_levels`` values onto :math:`[-1,1]`.

    A pixel :math:`k/(K-1)`, :math:`k\in\{0..K-1\}`, becomes
    :math:`2(k+u)/K-1` with :math:`u\sim\mathcal U(0,1)`: bin :math:`k` of width
    :math:`\Delta=2/K`. For any density :math:`p` on :math:`[-1,1]^D`, the
    discrete model :math:`P(k)=\int_{\text{bin }k}p` satisfies, by Jensen,
    :math:`\log P(k)\ge\mathbb E_u\log p(\text{point})+D\log\Delta` (Theis et al.
    2016), so a continuous ELBO on dequantized data plus :math:`D\log\Delta` is a
    lower bound on the log-probability of the *discrete* image, in nats. Models on
    the same dequantized data are compared on this common footing.

    Args:
        x: ``(B, D)`` pixels in [0, 1] on the grid :math:`k/(K-1)` (e.g. the digits, K = 17).
        n_levels: ``K`` >= 2.
        generator: optional ``torch.Generator`` for :math:`u`.

    Returns:
        ``(x0, log_bin_width)``: ``(B, D)`` values in :math:`[-1,1]` and :math:`\log\Delta`.
    """
    check_tensor("x", x, ndim=2)
    n_levels = check_positive_int("n_levels", n_levels)
    if n_levels < 2:
        raise ValueError(f"n_levels must be >= 2, got {n_levels}")
    k = x * (n_levels - 1)
    if float((k - k.round()).abs().max()) > 1e-4 or float(x.min()) < 0 or float(x.max()) > 1:
        raise ValueError(f"x must hold the {n_levels} levels k/{n_levels - 1} of [0, 1]")
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return 2.0 * (k.round() + u) / n_levels - 1.0, math.log(2.0 / n_levels)
