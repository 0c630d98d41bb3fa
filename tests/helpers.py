"""Reference helpers shared by the tests (imported as ``from helpers import ...``).

* :data:`DT`: float64, the dtype of every test that compares against a closed form;
* :func:`gen`: a seeded ``torch.Generator``;
* :func:`linear_vae_near_posterior`: a linear VAE (pPCA) whose exact posterior is
  diagonal, with an encoder at a chosen distance from it, and data drawn from it;
* :func:`exact_posterior` and :func:`exact_log_px`: that model's posterior and
  marginal likelihood in closed form (Tipping & Bishop 1999), from
  ``torch.distributions`` and linear algebra only, independent of ``vi_helpers``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.distributions import MultivariateNormal

from vi_helpers.models import LinearGaussianVAE

DT = torch.float64


def gen(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed``."""
    return torch.Generator().manual_seed(seed)


def linear_vae_near_posterior(
    D: int = 6,
    scales: Sequence[float] = (2.0, 1.0, 0.5),
    s2: float = 0.3,
    *,
    perturb: float = 0.0,
    var_factor: float = 1.0,
    seed: int = 0,
    n: int = 5,
) -> tuple[LinearGaussianVAE, torch.Tensor]:
    r"""A float64 linear VAE ``x = W z + b + noise`` and ``n`` draws ``(n, D)`` from it.

    ``W`` has orthogonal columns of lengths ``scales``, so the exact posterior
    :math:`\mathcal N(M^{-1}W^\top(x-b),\ s^2M^{-1})`, :math:`M=W^\top W+s^2I`, is
    diagonal. The encoder equals it up to a random mean perturbation of size
    ``perturb`` and variances ``var_factor`` times the posterior's. The global RNG
    is not touched.
    """
    L = len(scales)
    g = gen(seed)
    with torch.random.fork_rng():
        vae = LinearGaussianVAE(D, L).double()
    q, _ = torch.linalg.qr(torch.randn(D, L, generator=g, dtype=DT))
    W = q * torch.tensor(scales, dtype=DT)
    b = torch.randn(D, generator=g, dtype=DT)
    M = W.T @ W + s2 * torch.eye(L, dtype=DT)
    A = torch.linalg.solve(M, W.T) + perturb * torch.randn(L, D, generator=g, dtype=DT)
    with torch.no_grad():
        vae.decoder.weight.copy_(W)
        vae.decoder.bias.copy_(b)
        vae.obs_log_var.fill_(math.log(s2))
        vae.encoder_mean.weight.copy_(A)
        vae.encoder_mean.bias.copy_(-A @ b)
        vae.encoder_log_var.copy_(torch.log(var_factor * s2 / torch.diagonal(M)))
    z = torch.randn(n, L, generator=g, dtype=DT)
    x = z @ W.T + b + math.sqrt(s2) * torch.randn(n, D, generator=g, dtype=DT)
    return vae, x


def exact_posterior(vae: LinearGaussianVAE, x: torch.Tensor):
    """(mean (B, L), covariance (L, L)) of p(z | x) for a linear VAE, in closed form."""
    W, b = vae.decoder.weight.detach(), vae.decoder.bias.detach()
    s2 = float(vae.obs_log_var.detach().exp())
    M = W.T @ W + s2 * torch.eye(W.shape[1], dtype=DT)
    return (x - b) @ torch.linalg.solve(M, W.T).T, s2 * torch.linalg.inv(M)


def exact_log_px(vae: LinearGaussianVAE, x: torch.Tensor) -> torch.Tensor:
    """``log p(x)`` per row, ``(B,)``: the Gaussian marginal ``N(b, W W^T + s^2 I)``."""
    W, b = vae.decoder.weight.detach(), vae.decoder.bias.detach()
    cov = W @ W.T + float(vae.obs_log_var.detach().exp()) * torch.eye(W.shape[0], dtype=DT)
    return MultivariateNormal(b, covariance_matrix=cov).log_prob(x)
