r"""Deterministic minimization for small, smooth objectives (a few parameters).

Notebook 1 fits a Gaussian :math:`q=\mathcal N(m,s^2)` to a target by minimizing
a KL divergence computed by quadrature: a deterministic function of two
numbers :math:`\theta=(m,\log s)`. Plain gradient descent needs a learning
rate; :func:`gradient_descent_backtracking` chooses every step size itself by
backtracking (the Armijo rule), so the fit needs no tuning and its path can be
plotted.

References:
    Nocedal & Wright (2006), Numerical Optimization, 2nd ed., section 3.1
    (the sufficient-decrease condition and backtracking, algorithm 3.1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from ._validate import check_positive_float, check_positive_int, check_tensor

__all__ = ["DescentResult", "gradient_descent_backtracking"]


class DescentResult(NamedTuple):
    """What :func:`gradient_descent_backtracking` returns (unpacks as a 3-tuple).

    Attributes:
        theta: the final parameters, a detached ``(P,)`` tensor.
        grad_norm: Euclidean norm of the gradient at ``theta`` (a float); below
            ``tol`` when the descent converged.
        path: ``(n_accepted + 1, P)`` tensor: the start, then every accepted step.
    """

    theta: torch.Tensor
    grad_norm: float
    path: torch.Tensor


def gradient_descent_backtracking(
    objective: Callable[..., torch.Tensor],
    theta0: torch.Tensor,
    *,
    n_steps: int = 600,
    tol: float = 1e-7,
    shrink: float = 0.5,
    c: float = 0.5,
) -> DescentResult:
    r"""Minimize ``objective(*theta)`` by gradient descent with backtracking steps.

    At each iterate :math:`\theta` with gradient :math:`g` (from autograd), try
    the step size :math:`\eta=1` and multiply it by ``shrink`` until the
    sufficient-decrease (Armijo) condition holds,

    .. math::
        f(\theta-\eta g)\le f(\theta)-c\,\eta\,\lVert g\rVert^2 ,

    then accept :math:`\theta\leftarrow\theta-\eta g`. The objective therefore
    never increases. Stops when :math:`\lVert g\rVert<` ``tol`` or after
    ``n_steps`` steps; like any descent method it finds a *stationary point*,
    which depends on the start when the objective is not convex.

    Args:
        objective: callable taking the ``P`` entries of ``theta`` as separate
            0-dim tensors and returning a 0-dim tensor, differentiable by autograd.
        theta0: ``(P,)`` floating tensor, the start (not modified).
        n_steps: maximum number of accepted steps (>= 1).
        tol: gradient-norm tolerance (> 0).
        shrink: step-size factor per backtracking trial, in (0, 1).
        c: sufficient-decrease constant, in (0, 1).

    Returns:
        A :class:`DescentResult` ``(theta, grad_norm, path)``.
    """
    check_tensor("theta0", theta0, ndim=1)
    n_steps = check_positive_int("n_steps", n_steps)
    tol = check_positive_float("tol", tol)
    for name, value in (("shrink", shrink), ("c", c)):
        if not 0.0 < check_positive_float(name, value) < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {value}")
    if not callable(objective):
        raise TypeError(f"objective must be callable, got {type(objective).__name__}")
    theta = theta0.detach().clone().requires_grad_(True)
    path = [theta.detach().clone()]
    while True:
        value = objective(*theta)
        (grad,) = torch.autograd.grad(value, theta)
        if grad.norm() < tol or len(path) > n_steps:
            break
        candidate = _backtrack(objective, theta.detach(), value.detach(), grad, shrink, c)
        if candidate is None:  # no decrease even for a tiny step: numerically stationary
            break
        with torch.no_grad():
            theta.copy_(candidate)
        path.append(theta.detach().clone())
    return DescentResult(theta.detach(), float(grad.norm()), torch.stack(path))


def _backtrack(objective, theta, value, grad, shrink: float, c: float) -> torch.Tensor | None:
    """The first step ``theta - eta * grad``, eta = 1, shrink, shrink², ..., that decreases
    the objective enough (Armijo); ``None`` if even eta = 1e-12 does not."""
    step = 1.0
    with torch.no_grad():
        while step > 1e-12:
            candidate = theta - step * grad
            if objective(*candidate) <= value - c * step * grad.pow(2).sum():
                return candidate
            step *= shrink
    return None
