r"""Normalizing flows as variational families: planar and affine layers, fitted by VI.

**Change of variables.** Draw :math:`\varepsilon\sim q_0` (here :math:`\mathcal N(0, I_L)`)
and push it through an invertible, differentiable map :math:`z=f(\varepsilon)`. Then

.. math::
    q(z) = q_0(\varepsilon)\,\Big|\det\frac{\partial f}{\partial\varepsilon}\Big|^{-1},
    \qquad
    \log q(z) = \log q_0(\varepsilon) - \log\Big|\det\frac{\partial f}{\partial\varepsilon}\Big|.

A *flow* composes :math:`M` such layers, :math:`z=f_M\circ\dots\circ f_1(\varepsilon)`;
by the chain rule the Jacobian is a product, so the log-determinants add:
:math:`\log q(z)=\log q_0(\varepsilon)-\sum_{m=1}^M\log|\det J_{f_m}(z_{m-1})|`
with :math:`z_0=\varepsilon`. Sampling and the density of the sample come together,
which is all the ELBO needs (:meth:`FlowFamily.sample_and_log_prob`):

.. math::
    \mathcal L = \mathbb E_{\varepsilon\sim q_0}\Big[\log p(x, f(\varepsilon))
    - \log q_0(\varepsilon) + \textstyle\sum_m\log|\det J_{f_m}|\Big],

whose gradient is estimated pathwise (notebook 4), through :math:`f`.

**Layers.**

* *Affine*: :math:`f(\varepsilon)=m+C\varepsilon`, :math:`C` lower triangular with a
  positive diagonal, :math:`\log|\det C|=\sum_j\log C_{jj}`. With :math:`q_0=\mathcal N(0,I)`
  this *is* the full-covariance Gaussian :math:`\mathcal N(m, CC^\top)` (Cholesky
  parameterization); with :math:`C` diagonal, the mean-field Gaussian. Every flow here
  starts with one affine layer.
* *Planar* (Rezende & Mohamed 2015): :math:`f(z)=z+\hat u\,\tanh(w^\top z+b)`. Its
  Jacobian :math:`I+\hat u\,\psi(z)^\top`, :math:`\psi(z)=\tanh'(w^\top z+b)\,w`, is a
  rank-one update of the identity, and the matrix determinant lemma gives
  :math:`\log|\det J|=\log|1+\hat u^\top\psi(z)|` in :math:`O(L)`. It is invertible when
  :math:`w^\top\hat u\ge-1`; :func:`planar_constrain_u` maps any ``u`` to such a
  :math:`\hat u` (with a scaled ELU where the paper uses :math:`-1+\mathrm{softplus}`, so
  that ``u = 0`` is the identity map).

Parameters of a whole flow live in one flat vector ``theta`` of length
:attr:`FlowFamily.n_params` (or a batch of them, ``(..., P)``, one per data point,
as an amortized encoder predicts them): :func:`fit_flow_vi` fits one vector to a
fixed target, :mod:`vi_helpers.flow_vae` predicts them from ``x``.

Shapes: ``L`` latent dimension, ``S`` samples, ``P`` parameters, ``M`` planar layers.
Densities are in nats, per sample (summed over ``L``).

References:
    Rezende & Mohamed (2015), Variational Inference with Normalizing Flows.
    Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling (2016), Improved
    Variational Inference with Inverse Autoregressive Flow.
    Dinh, Sohl-Dickstein & Bengio (2017), Density Estimation using Real NVP.
    Papamakarios, Nalisnick, Rezende, Mohamed & Lakshminarayanan (2021), Normalizing
    Flows for Probabilistic Modeling and Inference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ._validate import (
    check_choice,
    check_nonnegative_int,
    check_positive_float,
    check_positive_int,
    check_tensor,
)

__all__ = [
    "planar_constrain_u",
    "planar_forward",
    "planar_inverse",
    "FlowFamily",
    "mean_field_gaussian",
    "full_covariance_gaussian",
    "FlowVIResult",
    "fit_flow_vi",
    "grid_log_density",
    "Banana",
]

LOG_2PI = math.log(2.0 * math.pi)

#: Margin of the planar constraint: :math:`w^\top\hat u\ge-1+\delta` (see :func:`planar_constrain_u`).
PLANAR_DELTA = 1e-3

#: Base layers understood by :class:`FlowFamily`.
BASES = ("diagonal", "full")


# -- planar layers --------------------------------------------------------------------------
def planar_constrain_u(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r"""Map ``u`` to :math:`\hat u` with :math:`w^\top\hat u>-1`, so the planar map is invertible.

    .. math::
        \hat u = u + \big(g(w^\top u) - w^\top u\big)\frac{w}{\lVert w\rVert^2},
        \qquad w^\top\hat u = g(w^\top u),\qquad
        g(a) = \begin{cases} a & a\ge0\\ (1-\delta)(e^a-1) & a<0\end{cases}

    with :math:`\delta=10^{-3}`, so :math:`w^\top\hat u>-1+\delta`: the layer's Jacobian
    determinant stays above :math:`\delta` even in float32 rounding. Rezende & Mohamed
    (2015, appendix A) use :math:`g(a)=-1+\mathrm{softplus}(a)`; this :math:`g` (an ELU
    scaled on its negative side) is the identity for :math:`a\ge0`, so there
    :math:`\hat u=u`, and ``u = 0`` gives the identity map (a neutral initialization).

    Args:
        u, w: ``(..., L)`` tensors of the same shape.

    Returns:
        ``(..., L)`` :math:`\hat u`.
    """
    wu = (w * u).sum(dim=-1, keepdim=True)
    g = torch.where(wu >= 0, wu, (1.0 - PLANAR_DELTA) * torch.expm1(wu.clamp_max(0.0)))
    # tiny floor: for w -> 0 the correction (g(a) - a) ~ a^2/2 vanishes faster than |w|
    w_sq = w.pow(2).sum(dim=-1, keepdim=True).clamp_min(1e-30)
    return u + (g - wu) * w / w_sq


def planar_forward(
    z: torch.Tensor, u_hat: torch.Tensor, w: torch.Tensor, b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One planar layer :math:`f(z)=z+\hat u\tanh(w^\top z+b)` and its log-determinant.

    .. math::
        \log\Big|\det\frac{\partial f}{\partial z}\Big|
        = \log\big|1+\hat u^\top\psi(z)\big|,\qquad
        \psi(z)=\big(1-\tanh^2(w^\top z+b)\big)\,w,

    by the matrix determinant lemma :math:`\det(I+ab^\top)=1+b^\top a`. With
    :math:`w^\top\hat u>-1` (see :func:`planar_constrain_u`) the argument is positive,
    so this is ``log1p`` of :math:`\tanh'\,w^\top\hat u`.

    Args:
        z: ``(..., L)`` inputs.
        u_hat: ``(..., L)`` constrained direction (broadcasts against ``z``).
        w: ``(..., L)`` normal of the hyperplane (broadcasts against ``z``).
        b: ``(..., 1)`` offset (broadcasts against ``z``).

    Returns:
        ``(f(z), log_det)``: ``(..., L)`` and ``(...)``, nats.
    """
    a = (w * z).sum(dim=-1, keepdim=True) + b
    h = torch.tanh(a)
    z_out = z + u_hat * h
    log_det = torch.log1p((1.0 - h.pow(2)) * (w * u_hat).sum(dim=-1, keepdim=True))
    return z_out, log_det.squeeze(-1)


def planar_inverse(
    y: torch.Tensor, u_hat: torch.Tensor, w: torch.Tensor, b: torch.Tensor, *, n_iter: int = 60
) -> torch.Tensor:
    r"""Invert :func:`planar_forward` by bisection on one scalar.

    With :math:`\alpha=w^\top z`, the map gives :math:`w^\top y=\alpha+c\tanh(\alpha+b)`,
    :math:`c=w^\top\hat u>-1`: a strictly increasing function of :math:`\alpha`, whose
    root lies within :math:`|c|` of :math:`w^\top y` because :math:`|\tanh|\le1`. Bisection
    halves that bracket ``n_iter`` times (60 halvings reach float64 rounding); then
    :math:`z=y-\hat u\tanh(\alpha+b)`. No closed-form inverse exists, which is why planar
    flows are used for sampling with density (VI), not for density evaluation.

    Args:
        y: ``(..., L)`` outputs of the layer.
        u_hat, w, b: as in :func:`planar_forward`.
        n_iter: bisection steps (> 0).

    Returns:
        ``(..., L)`` the input ``z`` with ``planar_forward(z, ...)[0] == y`` (to rounding).
    """
    n_iter = check_positive_int("n_iter", n_iter)
    target = (w * y).sum(dim=-1, keepdim=True)
    c = (w * u_hat).sum(dim=-1, keepdim=True)
    target, c, b = torch.broadcast_tensors(target, c, b)
    lo, hi = target - c.abs(), target + c.abs()
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        too_big = mid + c * torch.tanh(mid + b) > target
        hi = torch.where(too_big, mid, hi)
        lo = torch.where(too_big, lo, mid)
    alpha = 0.5 * (lo + hi)
    return y - u_hat * torch.tanh(alpha + b)


# -- a family of flows with a flat parameter vector -----------------------------------------
class FlowFamily:
    r"""The flow :math:`z=f_M\circ\dots\circ f_1\circ g(\varepsilon)`, :math:`\varepsilon\sim\mathcal N(0,I_L)`.

    :math:`g(\varepsilon)=m+C\varepsilon` is an affine layer (``base="full"``: :math:`C`
    lower triangular, a full-covariance Gaussian; ``base="diagonal"``: :math:`C`
    diagonal, mean field) and :math:`f_1..f_M` are planar layers. ``n_layers = 0``
    gives the Gaussian families themselves.

    ``theta (..., P)`` packs, in order: :math:`m` (``L``), :math:`\log C_{jj}` (``L``),
    for ``"full"`` the :math:`L(L-1)/2` entries below the diagonal (row by row), then
    per planar layer ``u`` (``L``), ``w`` (``L``), ``b`` (1). Leading dimensions of
    ``theta`` are batch dimensions (one flow per data point); they broadcast against
    the sample dimension in front.

    Args:
        dim: latent dimension ``L`` (> 0).
        n_layers: number of planar layers ``M`` (>= 0).
        base: ``"full"`` or ``"diagonal"``.
    """

    def __init__(self, dim: int, n_layers: int = 0, *, base: str = "full"):
        self.dim = check_positive_int("dim", dim)
        self.n_layers = check_nonnegative_int("n_layers", n_layers)
        self.base = check_choice("base", base, BASES)
        n_tril = dim * (dim - 1) // 2 if base == "full" else 0
        self.n_base_params = 2 * dim + n_tril
        self.n_params = self.n_base_params + self.n_layers * (2 * dim + 1)

    def __repr__(self) -> str:
        return f"FlowFamily(dim={self.dim}, n_layers={self.n_layers}, base={self.base!r})"

    # -- parameters -----------------------------------------------------------------------
    def check_params(self, theta) -> torch.Tensor:
        """Validate ``theta (..., P)``; returns it."""
        return check_tensor("theta", theta, last_dim=self.n_params)

    def init_params(
        self, *, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
        scale: float = 0.1,
    ) -> torch.Tensor:
        r"""``(P,)`` parameters of :math:`\mathcal N(0, I)`: :math:`m=0`, :math:`C=I`, every
        planar ``u = 0`` (identity) with ``w`` drawn from :math:`\mathcal N(0,\mathrm{scale}^2)`
        (a nonzero ``w`` gives ``u`` a gradient) and ``b = 0``."""
        scale = check_positive_float("scale", scale)
        theta = torch.zeros(self.n_params, dtype=dtype)
        for k in range(self.n_layers):
            start = self.n_base_params + k * (2 * self.dim + 1) + self.dim
            w = torch.randn(self.dim, generator=generator, dtype=dtype)
            theta[start : start + self.dim] = scale * w
        return theta

    def base_params(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``(m, C)``: ``(..., L)`` shift and ``(..., L, L)`` lower-triangular scale."""
        L = self.dim
        m, log_diag = theta[..., :L], theta[..., L : 2 * L]
        C = torch.diag_embed(log_diag.exp())
        if self.base == "full" and L > 1:
            rows, cols = torch.tril_indices(L, L, offset=-1)
            lower = torch.zeros_like(C)
            lower[..., rows, cols] = theta[..., 2 * L : self.n_base_params]
            C = C + lower
        return m, C

    def planar_params(self, theta: torch.Tensor):
        r"""``(u_hat, w, b)`` of all planar layers: ``(..., M, L)``, ``(..., M, L)``, ``(..., M, 1)``.

        ``u`` is constrained by :func:`planar_constrain_u` for all layers at once (one
        vectorized call instead of one per layer: the flow is dominated by small ops).
        """
        layers = theta[..., self.n_base_params :].unflatten(-1, (self.n_layers, 2 * self.dim + 1))
        u, w = layers[..., : self.dim], layers[..., self.dim : 2 * self.dim]
        return planar_constrain_u(u, w), w, layers[..., 2 * self.dim :]

    def gaussian(self, theta: torch.Tensor) -> torch.distributions.MultivariateNormal:
        r"""The base Gaussian :math:`\mathcal N(m, CC^\top)`: the whole family when ``n_layers = 0``."""
        m, C = self.base_params(self.check_params(theta))
        return torch.distributions.MultivariateNormal(m, scale_tril=C)

    # -- the flow -------------------------------------------------------------------------
    def transform(self, theta: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Push base noise through the flow: ``(z, log_det)``, :math:`\log|\det\partial z/\partial\varepsilon|`.

        Args:
            theta: ``(..., P)`` parameters.
            eps: ``(S, ..., L)`` base noise (any leading shape broadcasting with ``theta``'s).

        Returns:
            ``z`` of ``eps``'s shape and ``log_det`` of its shape without ``L``, nats.
        """
        m, C = self.base_params(theta)
        z = m + (C @ eps.unsqueeze(-1)).squeeze(-1)
        log_det = theta[..., self.dim : 2 * self.dim].sum(dim=-1).expand(z.shape[:-1])
        if self.n_layers == 0:
            return z, log_det
        u_hat, w, b = self.planar_params(theta)
        wu = (w * u_hat).sum(dim=-1)  # (..., M): w^T u_hat of every layer
        hs = []
        for u_k, w_k, b_k in zip(u_hat.unbind(-2), w.unbind(-2), b.unbind(-2), strict=True):
            h = torch.tanh((w_k * z).sum(dim=-1, keepdim=True) + b_k)  # as planar_forward
            z = z + u_k * h
            hs.append(h)
        h = torch.cat(hs, dim=-1)  # (S, ..., M)
        # log|det| of each layer, 1 + tanh'(a) w^T u_hat, summed over the layers at once
        return z, log_det + torch.log1p((1.0 - h.pow(2)) * wu).sum(dim=-1)

    def sample_and_log_prob(
        self, theta: torch.Tensor, n_samples: int, *, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Draw ``S`` reparameterized samples and their exact log-density.

        :math:`z=f(\varepsilon)`, :math:`\log q(z)=\log\mathcal N(\varepsilon;0,I)-\log|\det J_f(\varepsilon)|`.
        Differentiable in ``theta`` (pathwise gradients).

        Args:
            theta: ``(..., P)`` parameters (a batch of flows, or one).
            n_samples: ``S`` (> 0).
            generator: optional ``torch.Generator`` for the noise.

        Returns:
            ``z (S, ..., L)`` and ``log_q (S, ...)`` in nats.
        """
        theta = self.check_params(theta)
        n_samples = check_positive_int("n_samples", n_samples)
        shape = (n_samples, *theta.shape[:-1], self.dim)
        eps = torch.randn(shape, generator=generator, dtype=theta.dtype, device=theta.device)
        z, log_det = self.transform(theta, eps)
        log_q0 = -0.5 * (eps.pow(2) + LOG_2PI).sum(dim=-1)
        return z, log_q0 - log_det

    def inverse(self, theta: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        r"""The base point :math:`\varepsilon=f^{-1}(z)`: planar layers by bisection
        (:func:`planar_inverse`), then the affine layer by a triangular solve."""
        if self.n_layers:
            params = [p.unbind(-2) for p in self.planar_params(theta)]
            for k in reversed(range(self.n_layers)):
                z = planar_inverse(z, params[0][k], params[1][k], params[2][k])
        m, C = self.base_params(theta)
        C = C.expand(*z.shape[:-1], self.dim, self.dim)
        return torch.linalg.solve_triangular(C, (z - m).unsqueeze(-1), upper=False).squeeze(-1)

    def log_prob(self, theta: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        r"""Exact :math:`\log q(z)` at given points, ``(...)`` nats, through :meth:`inverse`.

        Args:
            theta: ``(..., P)`` parameters.
            z: ``(..., L)`` points (leading dimensions broadcast with ``theta``'s).
        """
        theta = self.check_params(theta)
        check_tensor("z", z, last_dim=self.dim)
        eps = self.inverse(theta, z)
        _, log_det = self.transform(theta, eps)
        return -0.5 * (eps.pow(2) + LOG_2PI).sum(dim=-1) - log_det


def mean_field_gaussian(dim: int) -> FlowFamily:
    r""":math:`\mathcal N(m,\mathrm{diag}\,s^2)`: a flow with one diagonal affine layer."""
    return FlowFamily(dim, 0, base="diagonal")


def full_covariance_gaussian(dim: int) -> FlowFamily:
    r""":math:`\mathcal N(m, CC^\top)`, :math:`C` a Cholesky factor: a flow with one affine layer."""
    return FlowFamily(dim, 0, base="full")


# -- fitting a flow by VI -------------------------------------------------------------------
@dataclass
class FlowVIResult:
    """Result of :func:`fit_flow_vi`.

    Attributes:
        family: the :class:`FlowFamily`.
        theta: ``(P,)`` fitted parameters (detached); the last finite ones on divergence.
        elbo_history: ELBO estimate (nats) at each step, before that step's update.
        status: ``"completed"`` or ``"diverged"``.
        message: what happened, when not completed.
    """

    family: FlowFamily
    theta: torch.Tensor
    elbo_history: list[float] = field(default_factory=list)
    status: str = "completed"
    message: str = ""

    def sample_and_log_prob(self, n_samples: int, *, generator=None):
        """Samples and log-densities of the fitted ``q``; see :meth:`FlowFamily.sample_and_log_prob`."""
        return self.family.sample_and_log_prob(self.theta, n_samples, generator=generator)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``log q(z)`` of the fitted ``q``; see :meth:`FlowFamily.log_prob`."""
        return self.family.log_prob(self.theta, z)


def fit_flow_vi(
    log_joint,
    family: FlowFamily,
    *,
    n_steps: int,
    n_samples: int,
    learning_rate: float,
    seed: int = 0,
    init: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float64,
) -> FlowVIResult:
    r"""Maximize the ELBO of a flow ``q`` for a fixed target with Adam and pathwise gradients.

    .. math::
        \hat{\mathcal L}(\theta)=\frac1S\sum_{s=1}^S\Big[\log p(x, z_s)-\log q_\theta(z_s)\Big],
        \qquad z_s=f_\theta(\varepsilon_s),\ \varepsilon_s\sim\mathcal N(0,I),

    with fresh noise at every step; :math:`\log q_\theta(z_s)` comes with the sample
    (:meth:`FlowFamily.sample_and_log_prob`), and autograd differentiates through
    :math:`f_\theta` (the reparameterization trick of notebook 4). The step size
    follows a cosine schedule from ``learning_rate`` to 0, which lets the last steps
    settle instead of jittering at the noise level.

    Divergence: if the ELBO estimate or a gradient is NaN/inf, fitting stops, the last
    parameters that gave a finite ELBO are kept, ``status`` becomes ``"diverged"`` and
    ``message`` (also printed) says to lower ``learning_rate``.

    Args:
        log_joint: callable ``z (S, L) -> (S,)``, the unnormalized log posterior
            :math:`\log p(x, z)`, differentiable in ``z`` (e.g.
            ``BayesianLogisticRegression.log_joint``).
        family: the :class:`FlowFamily` (its ``dim`` is ``L``).
        n_steps: Adam steps (> 0).
        n_samples: ``S`` Monte Carlo samples per step (> 0).
        learning_rate: Adam's initial step size (> 0).
        seed: an int >= 0 seeding the initialization and the noise; a run is bitwise
            repeatable and the global random state is untouched.
        init: optional ``(P,)`` starting parameters (default :meth:`FlowFamily.init_params`).
        dtype: floating dtype of the parameters and samples.

    Returns:
        :class:`FlowVIResult`.

    Raises:
        TypeError: ``log_joint`` not callable, ``family`` not a :class:`FlowFamily`.
        ValueError: bad numbers; ``log_joint`` returns the wrong shape or a non-finite
            value at the starting point.
    """
    if not callable(log_joint):
        raise TypeError(f"log_joint must be callable, got {type(log_joint).__name__}")
    if not isinstance(family, FlowFamily):
        raise TypeError(f"family must be a FlowFamily, got {type(family).__name__}")
    n_steps = check_positive_int("n_steps", n_steps)
    n_samples = check_positive_int("n_samples", n_samples)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    seed = check_nonnegative_int("seed", seed)
    generator = torch.Generator().manual_seed(seed)
    if init is None:
        init = family.init_params(generator=generator, dtype=dtype)
    else:
        check_tensor("init", init, shape=(family.n_params,))
    theta = init.detach().clone().to(dtype).requires_grad_(True)
    optimizer = torch.optim.Adam([theta], lr=learning_rate)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_steps)
    result = FlowVIResult(family, theta.detach().clone())
    for step in range(n_steps):
        z, log_q = family.sample_and_log_prob(theta, n_samples, generator=generator)
        log_p = log_joint(z)
        if not isinstance(log_p, torch.Tensor) or log_p.shape != (n_samples,):
            got = tuple(log_p.shape) if isinstance(log_p, torch.Tensor) else type(log_p).__name__
            raise ValueError(f"log_joint must map z (S, L) to (S,) = ({n_samples},), got {got}")
        elbo = (log_p - log_q).mean()
        (grad,) = torch.autograd.grad(-elbo, [theta])
        if not (bool(torch.isfinite(elbo)) and bool(torch.isfinite(grad).all())):
            if step == 0:
                raise ValueError("log_joint is not finite at the starting point (check init)")
            result.status = "diverged"
            result.message = (
                f"fit_flow_vi diverged at step {step} (ELBO = {float(elbo.detach())}); kept the last "
                "parameters with a finite ELBO. Lower learning_rate."
            )
            print(result.message)
            return result
        result.theta = theta.detach().clone()  # finite ELBO and gradient: a good point
        result.elbo_history.append(float(elbo.detach()))
        theta.grad = grad
        optimizer.step()
        scheduler.step()
    result.theta = theta.detach().clone()
    return result


# -- 2-D targets on a grid ------------------------------------------------------------------
def grid_log_density(log_density, lim: float, n: int, *, dtype: torch.dtype = torch.float64):
    r"""A 2-D (unnormalized) log-density on an ``n x n`` grid over :math:`[-\mathrm{lim},\mathrm{lim}]^2`, normalized.

    :math:`\log Z\approx\log\sum_{\text{cells}}e^{\log\tilde p}\,\Delta^2` (a Riemann sum).

    Args:
        log_density: callable ``z (..., 2) -> (...)``.
        lim: half-width of the grid (> 0).
        n: points per axis (> 1).
        dtype: dtype of the grid.

    Returns:
        ``(axis, points, log_p, log_z)``: axis ``(n,)``, points ``(n, n, 2)`` indexed
        ``[i2, i1]`` (``points[..., 0]`` varies along the columns), the *normalized*
        log-density ``(n, n)`` and the log normalizer (a float).
    """
    lim = check_positive_float("lim", lim)
    n = check_positive_int("n", n)
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    axis = torch.linspace(-lim, lim, n, dtype=dtype)
    z2, z1 = torch.meshgrid(axis, axis, indexing="ij")
    points = torch.stack([z1, z2], dim=-1)
    log_p = log_density(points)
    log_cell = 2.0 * math.log(float(axis[1] - axis[0]))
    log_z = float(torch.logsumexp(log_p.flatten(), 0)) + log_cell
    return axis, points, log_p - log_z, log_z


class Banana:
    r"""A banana-shaped 2-D density (a "twisted Gaussian", Haario et al. 1999).

    .. math::
        p(z) = \mathcal N(z_1;0,1)\;\mathcal N\big(z_2;\ \kappa(z_1^2-1),\ s^2\big),

    normalized (:math:`\log Z=0`), with mean 0, :math:`\mathrm{Var}\,z_1=1` and
    :math:`\mathrm{Var}\,z_2=2\kappa^2+s^2`, but no Gaussian shape: a Gaussian ``q``
    cannot bend. It stands in for a posterior whose normalizer is known.

    Args:
        curvature: :math:`\kappa` (> 0).
        sd: :math:`s` (> 0), the thickness of the banana.
    """

    def __init__(self, curvature: float = 0.5, sd: float = 0.35):
        self.curvature = check_positive_float("curvature", curvature)
        self.sd = check_positive_float("sd", sd)

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        """``log p(z)`` for ``z (..., 2)`` -> ``(...)``, nats (normalized)."""
        check_tensor("z", z, last_dim=2, finite=False)
        z1, z2 = z[..., 0], z[..., 1]
        mean2 = self.curvature * (z1.pow(2) - 1.0)
        return -0.5 * (
            z1.pow(2) + ((z2 - mean2) / self.sd).pow(2) + 2.0 * LOG_2PI
        ) - math.log(self.sd)

    def grid_posterior(self, lim: float = 6.0, n: int = 241):
        """As :meth:`BayesianLogisticRegression.grid_posterior
        <vi_helpers.models.BayesianLogisticRegression.grid_posterior>`: ``(z1, z2, density,
        log_evidence)``, density ``(n, n)`` indexed ``[i2, i1]``. The log evidence is 0
        up to the grid's error (the default grid misses about 0.03% of the mass, in the
        tips of the banana)."""
        axis, _, log_p, log_z = grid_log_density(self.log_joint, lim, n)
        return axis, axis, log_p.exp(), log_z
