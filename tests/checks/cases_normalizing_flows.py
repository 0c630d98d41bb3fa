"""Cases for the checks of notebook normalizing_flows: reference solution(s), other correct answers,
and typical mistakes with the hint each must get. Collected by ``test_common.py``."""

from __future__ import annotations

import functools
import math

import torch

from vi_helpers.checks.normalizing_flows import BANANA_EXPERIMENT
from vi_helpers.flows import Banana, FlowFamily, fit_flow_vi


def radial_log_det(z, z0, alpha, beta):
    L = z.shape[-1]
    r = torch.linalg.vector_norm(z - z0, dim=-1)
    h = 1.0 / (alpha + r)
    h_prime = -1.0 / (alpha + r) ** 2
    return (L - 1) * torch.log1p(beta * h) + torch.log1p(beta * h + beta * h_prime * r)


def _radial(z, z0, alpha, beta, *, power=None, rank_one=True, h_prime_sign=-1.0, log=True):
    L = z.shape[-1]
    r = torch.linalg.vector_norm(z - z0, dim=-1)
    h = 1.0 / (alpha + r)
    h_prime = h_prime_sign / (alpha + r) ** 2
    n_iso = L - 1 if power is None else power(L)
    out = n_iso * torch.log1p(beta * h)
    if rank_one:
        out = out + torch.log1p(beta * h + beta * h_prime * r)
    return out if log else torch.exp(out)


@functools.lru_cache(maxsize=8)
def _banana_fit(n_layers, seed):
    banana = Banana()
    z1, z2, density, log_z = banana.grid_posterior()
    grid = torch.stack(torch.meshgrid(z1, z2, indexing="xy"), dim=-1)
    family = FlowFamily(2, n_layers)
    fit = fit_flow_vi(banana.log_joint, family, seed=seed, **BANANA_EXPERIMENT)
    return fit.log_prob(grid), banana.log_joint(grid) - log_z, z1


def _banana_kl(n_layers, seed, *, reverse=False, cell_area=True, sign=1.0):
    log_q, log_p, z1 = _banana_fit(n_layers, seed)
    a, b = (log_p, log_q) if reverse else (log_q, log_p)
    kl = sign * (a.exp() * (a - b)).sum()
    return float(kl * (z1[1] - z1[0]) ** 2) if cell_area else float(kl)


def banana_kl(n_layers, seed):
    return _banana_kl(n_layers, seed)


REFERENCE = {
    "radial_log_det": radial_log_det,
    "banana_kl": banana_kl,
}
N_CASES = {
    "radial_log_det": 5,
    "banana_kl": 2,
}
ALTERNATIVES = [
    (
        "radial_log_det",  # the determinant of the explicit Jacobian, built by hand
        lambda z, z0, alpha, beta: torch.linalg.slogdet(
            (1 + beta / (alpha + torch.linalg.vector_norm(z - z0, dim=-1)))[:, None, None]
            * torch.eye(z.shape[-1], dtype=z.dtype)
            - (beta / (alpha + torch.linalg.vector_norm(z - z0, dim=-1)) ** 2
               / torch.linalg.vector_norm(z - z0, dim=-1))[:, None, None]
            * (z - z0)[:, :, None] * (z - z0)[:, None, :]
        )[1],
    ),
    ("banana_kl", lambda n_layers, seed: torch.tensor(_banana_kl(n_layers, seed))),
]
MUTANTS = [
    ("radial_log_det", "power_once", lambda *a: _radial(*a, power=lambda L: 1), "L − 1 times"),
    ("radial_log_det", "power_L", lambda *a: _radial(*a, power=lambda L: L), "replaces (not"),
    ("radial_log_det", "no_rank_one", lambda *a: _radial(*a, power=lambda L: L, rank_one=False),
     "rank-one term"),
    ("radial_log_det", "h_prime_sign", lambda *a: _radial(*a, h_prime_sign=1.0), "sign of h′"),
    ("radial_log_det", "no_log", lambda *a: _radial(*a, log=False), "LOG of |det J|"),
    ("banana_kl", "reversed", lambda n, s: _banana_kl(n, s, reverse=True), "KL(p ‖ q)"),
    ("banana_kl", "no_cell", lambda n, s: _banana_kl(n, s, cell_area=False), "cell's area"),
    ("banana_kl", "bits", lambda n, s: _banana_kl(n, s) / math.log(2.0), "in nats"),
    ("banana_kl", "sign", lambda n, s: _banana_kl(n, s, sign=-1.0), "is ≥ 0"),
]
