"""Checks for the exercises of notebook 10 Normalizing flows (``notebooks/10_*.ipynb``)."""

from __future__ import annotations

import functools
import math

import torch
from torch.autograd.functional import jacobian

from ..flows import Banana, FlowFamily, fit_flow_vi
from ._runner import Case, CheckResult, finish, gen, randn, to_f64

__all__ = ["check_radial_log_det", "check_banana_kl", "BANANA_EXPERIMENT"]

#: The fit settings of the banana experiment (exercise 2 of notebook 10).
BANANA_EXPERIMENT = {"n_steps": 250, "n_samples": 64, "learning_rate": 0.03}


# -- exercise 1: the radial layer's log-determinant --------------------------------------------
def _radial_map(z, z0, alpha, beta):
    d = z - z0
    r = d.pow(2).sum(-1, keepdim=True).sqrt()
    return z + beta / (alpha + r) * d


def _radial_reference(z, z0, alpha, beta):
    """log|det J| of every row by autograd's Jacobian and slogdet (float64)."""
    rows = [torch.linalg.slogdet(jacobian(lambda v: _radial_map(v, z0, alpha, beta), zi))[1]
            for zi in z]
    return torch.stack(rows)


def _radial_mutants(z, z0, alpha, beta):
    L = z.shape[-1]
    r = (z - z0).pow(2).sum(-1).sqrt()
    h = 1.0 / (alpha + r)
    h_prime = -h.pow(2)
    iso = torch.log1p(beta * h)  # one eigenvalue 1 + beta h
    radial = torch.log(1.0 + beta * h + beta * h_prime * r)
    return {
        "power_once": iso + radial,
        "power_L": L * iso + radial,
        "no_rank_one": L * iso,
        "h_prime_sign": (L - 1) * iso + torch.log(1.0 + beta * h - beta * h_prime * r),
        "no_log": torch.exp((L - 1) * iso + radial),
    }


_RADIAL_HINTS = {
    "power_once": (
        "the factor 1 + βh belongs to every direction perpendicular to z − z0: there are L − 1 "
        "of them, so its log appears L − 1 times."
    ),
    "power_L": (
        "only L − 1 directions get the factor 1 + βh alone; along z − z0 itself the eigenvalue "
        "is 1 + βh + βh′(r) r, which replaces (not multiplies) 1 + βh in that direction."
    ),
    "no_rank_one": (
        "the Jacobian is not a multiple of the identity: h depends on r = ‖z − z0‖, so "
        "differentiating h(r) (z − z0) adds a rank-one term along z − z0."
    ),
    "h_prime_sign": "check the sign of h′(r): h = 1/(α + r) decreases with r.",
    "no_log": "return the LOG of |det J|, not the determinant itself.",
}


def check_radial_log_det(radial_log_det) -> CheckResult:
    r"""Check ``radial_log_det(z, z0, alpha, beta) -> (S,)`` (notebook 10, exercise 1).

    The radial layer (Rezende & Mohamed 2015)
    :math:`f(z)=z+\beta h(r)(z-z_0)`, :math:`h(r)=1/(\alpha+r)`, :math:`r=\lVert z-z_0\rVert`,
    has :math:`\log|\det J|=(L-1)\log(1+\beta h)+\log(1+\beta h+\beta h'(r)\,r)`.
    ``z`` is ``(S, L)`` float64, ``z0`` ``(L,)``, ``alpha > 0`` and ``beta >= -alpha``
    Python floats. Reference: autograd's Jacobian of the map and ``slogdet``, per row.
    """
    g = gen(1010)

    def case(label, z, z0, alpha, beta):
        z, z0 = to_f64(z), to_f64(z0)
        ref = _radial_reference(z, z0, alpha, beta)
        return Case(label, (z, z0, float(alpha), float(beta)), ref,
                    _radial_mutants(z, z0, alpha, beta), rtol=1e-6, atol=1e-6)

    cases = [
        case("L = 2, expanding (β = 0.8)", randn(g, 5, 2), torch.tensor([0.5, -0.3]), 1.0, 0.8),
        case("L = 3, contracting (β = -0.5)", randn(g, 4, 3), torch.zeros(3), 0.7, -0.5),
        case("L = 1: only the radial direction", randn(g, 3, 1), torch.tensor([0.2]), 0.5, 1.5),
        case("L = 5, far from z0", 4 + randn(g, 3, 5), randn(g, 5), 2.0, 3.0),
        case("β at the invertibility limit -α", randn(g, 4, 2), torch.tensor([1.0, 1.0]), 0.6, -0.6),
    ]
    return finish(
        "radial_log_det", radial_log_det, cases, "tensor", _RADIAL_HINTS,
        "write the Jacobian as (1 + βh) I plus a rank-one term, find its eigenvalues (one "
        "along z − z0, L − 1 perpendicular to it), and compare with the L = 1 case by hand.",
    )


# -- exercise 2: the banana experiment ---------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _banana_kl_parts(n_layers: int, seed: int):
    """(log q, log p, cell area) on the banana's default grid after the standard fit.

    Cached: the fit is bitwise repeatable, so re-running a check does not refit."""
    banana = Banana()
    axis, _, density, log_z = banana.grid_posterior()
    z2, z1 = torch.meshgrid(axis, axis, indexing="ij")
    points = torch.stack([z1, z2], dim=-1)
    family = FlowFamily(2, n_layers)
    fit = fit_flow_vi(banana.log_joint, family, seed=seed, **BANANA_EXPERIMENT)
    log_q = family.log_prob(fit.theta, points)
    log_p = banana.log_joint(points) - log_z
    return log_q, log_p, float(axis[1] - axis[0]) ** 2


def _banana_case(label, n_layers, seed):
    log_q, log_p, cell = _banana_kl_parts(n_layers, seed)
    q, p = log_q.exp(), log_p.exp()
    kl = (q * (log_q - log_p)).sum()
    mutants = {
        "reversed": (p * (log_p - log_q)).sum() * cell,
        "no_cell": kl,
        "bits": kl * cell / math.log(2.0),
        "sign": -kl * cell,
    }
    return Case(label, (n_layers, seed), to_f64(kl * cell), mutants, rtol=1e-3, atol=1e-4)


_BANANA_HINTS = {
    "reversed": (
        "you computed KL(p ‖ q), the other direction: VI minimizes KL(q ‖ p), an average over q "
        "(weights q on the grid) of log q − log p."
    ),
    "no_cell": (
        "a sum over grid cells approximates an integral only when each term is multiplied by "
        "the cell's area Δz₁Δz₂."
    ),
    "bits": "report the KL in nats (natural logarithms), as everywhere in the course.",
    "sign": "a KL is ≥ 0: the integrand is q (log q − log p), not q (log p − log q).",
}


def check_banana_kl(banana_kl) -> CheckResult:
    r"""Check ``banana_kl(n_layers, seed) -> float`` (notebook 10, exercise 2).

    The function fits ``FlowFamily(2, n_layers)`` to ``Banana().log_joint`` with
    ``fit_flow_vi(..., seed=seed, **BANANA_EXPERIMENT)`` and returns
    :math:`\mathrm{KL}(q\,\|\,p)` on the default grid of ``Banana().grid_posterior()``, in
    nats. Reference: the same fit (bitwise repeatable) and the grid sum in float64.
    """
    cases = [
        _banana_case("a Gaussian q (M = 0), seed 0", 0, 0),
        _banana_case("a flow with M = 2 planar layers, seed 1", 2, 1),
    ]
    return finish(
        "banana_kl", banana_kl, cases, "scalar", _BANANA_HINTS,
        "fit with exactly the settings of BANANA_EXPERIMENT and the seed you are given, then "
        "evaluate log q with the family's log_prob on the grid points and sum q (log q − log p) "
        "times the cell area.",
    )
