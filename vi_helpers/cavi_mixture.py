r"""CAVI for a Bayesian mixture of unit-variance Gaussians (Blei et al. 2017, section 3).

.. math::
    \mu_j\sim\mathcal N(0,\sigma_0^2),\ j=1..C,\qquad
    c_n\sim\mathrm{Categorical}(1/C),\qquad
    x_n\mid c_n,\mu\sim\mathcal N(\mu_{c_n}, 1),

with the mean-field family :math:`q(\mu_j)=\mathcal N(m_j,s_j^2)`,
:math:`q(c_n)=\mathrm{Categorical}(\varphi_n)`. Shapes: ``x`` ``(N,)``, ``phi``
``(N, C)``, ``m`` and ``s`` ``(C,)``; everything in float64. Unlike the
Normal-Gamma model of :mod:`vi_helpers.cavi`, the ELBO here has many local optima
and is invariant to relabelling the components (notebook 3, section 7).

References:
    Blei, Kucukelbir & McAuliffe (2017), Variational Inference: A Review for
    Statisticians, section 3 and Algorithm 2.
    Bishop (2006), Pattern Recognition and Machine Learning, section 10.2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._validate import (
    LOG_2PI,
    check_positive_float,
    check_positive_int,
    check_positive_scalar,
    check_tensor,
)

__all__ = ["GMMResult", "gmm_update_assignments", "gmm_update_means", "gmm_elbo", "gmm_cavi"]

DTYPE = torch.float64


def _check_x(x) -> torch.Tensor:
    """Observations: a non-empty, finite, floating 1-D tensor, returned as float64."""
    check_tensor("x", x, ndim=1)
    return x.to(DTYPE)

#
# mu_j ~ N(0, sigma0^2) for j = 1..C, c_n ~ Categorical(1/C), x_n | c_n, mu ~ N(mu_{c_n}, 1);
# q(mu_j) = N(m_j, s_j^2), q(c_n) = Categorical(phi_n). Shapes: x (N,), phi (N, C), m and s (C,).


def _gmm_inputs(x, m=None, s=None, phi=None, sigma0=None):
    """Validate the mixture's tensors (float64 copies) and sigma0 (a float)."""
    x = _check_x(x)
    out = [x]
    if m is not None:
        check_tensor("m", m, ndim=1)
        check_tensor("s", s, ndim=1)
        if m.shape != s.shape:
            raise ValueError(f"m and s must have the same shape (C,), got {tuple(m.shape)} and {tuple(s.shape)}")
        if bool((s <= 0).any()):
            raise ValueError("s must be > 0 (standard deviations)")
        out += [m.to(DTYPE), s.to(DTYPE)]
    if phi is not None:
        check_tensor("phi", phi, ndim=2)
        if phi.shape[0] != x.numel() or (m is not None and phi.shape[1] != m.numel()):
            raise ValueError(f"phi must have shape (N, C), got {tuple(phi.shape)}")
        if bool((phi < 0).any()) or not torch.allclose(phi.sum(1).to(DTYPE), torch.ones((), dtype=DTYPE)):
            raise ValueError("every row of phi must be a probability vector")
        out.append(phi.to(DTYPE))
    if sigma0 is not None:
        out.append(check_positive_scalar("sigma0", sigma0))
    return out


def gmm_update_assignments(x: torch.Tensor, m: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    r"""Optimal :math:`q(c_n)=\mathrm{Cat}(\varphi_n)` given the factors :math:`q(\mu_j)` (Blei et al. 2017, eq. 21).

    .. math::
        \log\varphi_{nj} = \mathbb E_{q(\mu_j)}\big[\log\mathcal N(x_n;\mu_j,1)\big] + \text{const}
        = m_j x_n - \tfrac12\,(m_j^2+s_j^2) + \text{const}

    normalized over :math:`j` with a log-sum-exp (a softmax), so far-away data do not overflow.

    Args:
        x: ``(N,)`` observations.
        m, s: ``(C,)`` means and standard deviations (> 0) of the :math:`q(\mu_j)`.

    Returns:
        ``(N, C)`` float64 tensor :math:`\varphi`, rows summing to 1.
    """
    x, m, s = _gmm_inputs(x, m, s)
    logits = x[:, None] * m[None, :] - 0.5 * (m**2 + s**2)[None, :]
    return torch.softmax(logits, dim=1)


def gmm_update_means(x: torch.Tensor, phi: torch.Tensor, sigma0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Optimal :math:`q(\mu_j)=\mathcal N(m_j,s_j^2)` given the assignments (Blei et al. 2017, eqs. 25-26).

    Each :math:`q(\mu_j)` is the posterior of a Gaussian mean from the data weighted by
    :math:`\varphi_{nj}` ("soft counts"); precisions add:

    .. math::
        \frac1{s_j^2}=\frac1{\sigma_0^2}+\sum_n\varphi_{nj},\qquad
        m_j=s_j^2\sum_n\varphi_{nj}\,x_n .

    Args:
        x: ``(N,)`` observations.
        phi: ``(N, C)`` assignment probabilities.
        sigma0: prior standard deviation of the component means (> 0).

    Returns:
        ``(m, s)``: two ``(C,)`` float64 tensors.
    """
    x, phi, sigma0 = _gmm_inputs(x, phi=phi, sigma0=sigma0)
    precision = sigma0**-2 + phi.sum(0)
    return (phi * x[:, None]).sum(0) / precision, precision.rsqrt()


def gmm_elbo(x: torch.Tensor, phi: torch.Tensor, m: torch.Tensor, s: torch.Tensor, sigma0) -> torch.Tensor:
    r"""Closed-form ELBO of the mean-field mixture posterior (a 0-dim float64 tensor, nats).

    .. math::
        \mathcal L=\sum_j\Big[-\tfrac12\log(2\pi\sigma_0^2)-\frac{m_j^2+s_j^2}{2\sigma_0^2}
        +\tfrac12\log(2\pi e s_j^2)\Big]
        +\sum_n\Big[-\log C+\sum_j\varphi_{nj}\Big(-\tfrac12\log2\pi-\frac{(x_n-m_j)^2+s_j^2}{2}
        -\log\varphi_{nj}\Big)\Big]

    (terms with :math:`\varphi_{nj}=0` contribute 0). Differentiable in ``phi``, ``m``, ``s``.
    """
    x, m, s, phi, sigma0 = _gmm_inputs(x, m, s, phi, sigma0)
    n_components = m.numel()
    prior = (-0.5 * math.log(2 * math.pi * sigma0**2) - (m**2 + s**2) / (2 * sigma0**2)).sum()
    entropy_mu = (0.5 * (LOG_2PI + 1.0) + torch.log(s)).sum()
    expected_lik = -0.5 * LOG_2PI - 0.5 * ((x[:, None] - m[None, :]) ** 2 + (s**2)[None, :])
    entropy_c = -torch.special.xlogy(phi, phi).sum()
    return prior + entropy_mu + (phi * expected_lik).sum() - x.numel() * math.log(n_components) + entropy_c


@dataclass
class GMMResult:
    """What :func:`gmm_cavi` returns.

    Attributes:
        phi: ``(N, C)`` final assignment probabilities.
        m, s: ``(C,)`` final means and standard deviations of the :math:`q(\\mu_j)`.
        elbo: ``(n_updates + 1,)`` float64 tensor: the ELBO after the first assignment
            update, then after every single update (means, assignments, means, ...).
    """

    phi: torch.Tensor
    m: torch.Tensor
    s: torch.Tensor
    elbo: torch.Tensor


def gmm_cavi(
    x: torch.Tensor,
    n_components: int,
    sigma0: float,
    *,
    n_iter: int = 200,
    tol: float = 1e-10,
    generator: torch.Generator | None = None,
) -> GMMResult:
    r"""CAVI for the Bayesian mixture of unit-variance Gaussians (Blei et al. 2017, algorithm 2).

    Initialization: the means :math:`m_j` are ``n_components`` data points drawn
    without replacement (with ``generator``), :math:`s_j=1`. Then the sweeps
    alternate :func:`gmm_update_assignments` and :func:`gmm_update_means`; each
    update cannot decrease :func:`gmm_elbo`. Stops after ``n_iter`` sweeps or when
    a sweep raises the ELBO by less than ``tol``. The ELBO has many local optima
    (every relabelling of the components is one), so the result depends on the
    start: run several and keep the highest ELBO.

    Returns:
        A :class:`GMMResult`.
    """
    x, sigma0 = _gmm_inputs(x, sigma0=sigma0)
    n_components = check_positive_int("n_components", n_components)
    if n_components > x.numel():
        raise ValueError(f"n_components must be <= N = {x.numel()}, got {n_components}")
    n_iter = check_positive_int("n_iter", n_iter)
    tol = check_positive_float("tol", tol)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    m = x[torch.randperm(x.numel(), generator=generator)[:n_components]].clone()
    s = torch.ones(n_components, dtype=DTYPE)
    phi = gmm_update_assignments(x, m, s)
    elbo = [gmm_elbo(x, phi, m, s, sigma0)]
    for _ in range(n_iter):
        m, s = gmm_update_means(x, phi, sigma0)
        elbo.append(gmm_elbo(x, phi, m, s, sigma0))
        phi = gmm_update_assignments(x, m, s)
        elbo.append(gmm_elbo(x, phi, m, s, sigma0))
        if elbo[-1] - elbo[-3] < tol:
            break
    return GMMResult(phi=phi, m=m, s=s, elbo=torch.stack(elbo))
