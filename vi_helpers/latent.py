r"""Latent-space geometry: paths between two latent codes (notebook 6).

A decoder maps a code :math:`z\in\mathbb R^L` to an image, so a path
:math:`z(t)`, :math:`t\in[0,1]`, from :math:`z_0` to :math:`z_1` decodes to a
morph between two images. Which path is a modelling choice:

* :func:`lerp`, the straight line :math:`z(t)=(1-t)\,z_0+t\,z_1`;
* :func:`slerp`, the great-circle arc, with
  :math:`\cos\Omega=\frac{z_0\cdot z_1}{\|z_0\|\,\|z_1\|}`:

  .. math::
      \mathrm{slerp}(z_0, z_1; t) = \frac{\sin((1-t)\Omega)}{\sin\Omega}\,z_0
      + \frac{\sin(t\Omega)}{\sin\Omega}\,z_1 .

Why the arc: under the prior :math:`\mathcal N(0, I_L)` the squared norm
:math:`\|z\|^2` is :math:`\chi^2_L`, with mean :math:`L` and standard deviation
:math:`\sqrt{2L}`, so for large ``L`` prior draws concentrate near the sphere of
radius :math:`\sqrt L`. The midpoint of the straight line between two
(nearly orthogonal) draws has norm about :math:`\sqrt{L/2}`, a region the prior
almost never produces and the decoder was not trained on. The arc between two
codes of equal norm keeps that norm all the way.

Both functions work on the last dimension, return ``z0`` at ``t=0`` and ``z1``
at ``t=1`` exactly, and keep the inputs' dtype.

References:
    Shoemake (1985), Animating rotation with quaternion curves, SIGGRAPH.
    White (2016), Sampling generative networks, arXiv:1609.04468.
"""

from __future__ import annotations

import numbers

import torch

from ._validate import check_same_shape, check_tensor

__all__ = ["lerp", "slerp"]

#: Below this :math:`|\sin\Omega|` the two codes are (anti-)parallel or one is
#: zero and :func:`slerp` uses the line: for parallel codes the slerp formula is
#: 0/0 and the line is its limit; for antiparallel codes no unique great circle
#: joins them, slerp is undefined, and the line is a convention, not a limit.
PARALLEL_TOLERANCE = 1e-6


def _check_t(t) -> float:
    if isinstance(t, bool) or not isinstance(t, numbers.Real) or not 0.0 <= float(t) <= 1.0:
        raise ValueError(f"t must be a number in [0, 1], got {t!r}")
    return float(t)


def _check_pair(z0, z1) -> tuple[torch.Tensor, torch.Tensor]:
    check_tensor("z0", z0)
    check_tensor("z1", z1)
    check_same_shape("z0", z0, "z1", z1)
    return z0, z1


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    r"""Linear interpolation :math:`(1-t)\,z_0 + t\,z_1`; exactly ``z0`` at 0 and ``z1`` at 1.

    Args:
        z0, z1: tensors of one shape (``(L,)`` codes, or ``(..., L)``).
        t: a number in [0, 1].

    Returns:
        A tensor of the inputs' shape.
    """
    z0, z1 = _check_pair(z0, z1)
    t = _check_t(t)
    return (1.0 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    r"""Spherical interpolation along the arc from ``z0`` to ``z1`` (Shoemake 1985; White 2016).

    .. math::
        \mathrm{slerp}(z_0, z_1; t) = \frac{\sin((1-t)\Omega)}{\sin\Omega}z_0
        + \frac{\sin(t\Omega)}{\sin\Omega}z_1,\qquad
        \cos\Omega = \frac{z_0\cdot z_1}{\|z_0\|\,\|z_1\|},

    with the dot product and norms over the last dimension. For two unit vectors
    the result is the point at angle :math:`t\Omega` on the great circle through
    them, so its norm stays 1. Falls back to :func:`lerp` where the two vectors
    are (anti-)parallel or one is zero (:math:`|\sin\Omega|` below
    :data:`PARALLEL_TOLERANCE`): for parallel vectors the formula is 0/0 and
    lerp is its limit; for antiparallel ones (:math:`\Omega=\pi`) the great
    circle is not unique, slerp is undefined, and lerp is only a convention.
    ``t=0`` and ``t=1`` return (copies of) the endpoints exactly.

    Args:
        z0, z1: ``(..., L)`` tensors of one shape.
        t: a number in [0, 1].

    Returns:
        ``(..., L)``.
    """
    z0, z1 = _check_pair(z0, z1)
    t = _check_t(t)
    if t == 0.0:
        return z0.clone()
    if t == 1.0:
        return z1.clone()
    n0 = z0.norm(dim=-1, keepdim=True)
    n1 = z1.norm(dim=-1, keepdim=True)
    denom = n0 * n1
    cos = torch.where(denom > 0, (z0 * z1).sum(dim=-1, keepdim=True) / denom.clamp_min(1e-300), 1.0)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    sin_omega = torch.sin(omega)
    linear = (1.0 - t) * z0 + t * z1
    safe = sin_omega.abs() > PARALLEL_TOLERANCE
    sin_safe = torch.where(safe, sin_omega, torch.ones_like(sin_omega))
    spherical = (torch.sin((1.0 - t) * omega) * z0 + torch.sin(t * omega) * z1) / sin_safe
    return torch.where(safe, spherical, linear)
