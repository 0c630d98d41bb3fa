"""Checks for the exercises of notebook 05 The VAE (``notebooks/05_*.ipynb``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from ._runner import Case, CheckResult, finish, gen, rand, randn, to_f64

__all__ = ['check_vae_loss_bernoulli']

def _bce_terms(x, logits):
    """Per-element -log Bernoulli(x; sigmoid(logits)), stable, x may be fractional."""
    return -(x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits))


def _vae_loss_reference(x, logits, mu, log_var):
    if bool(((x == 0) | (x == 1)).all()):
        recon = -Bernoulli(logits=logits).log_prob(x).sum(-1)
    else:  # grey levels: the continuous relaxation, outside Bernoulli's support
        recon = _bce_terms(x, logits).sum(-1)
    q = Independent(Normal(mu, (0.5 * log_var).exp()), 1)
    prior = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    return (recon + kl_divergence(q, prior)).mean()


def _vae_loss_mutants(x, logits, mu, log_var, x32, logits32):
    recon = _bce_terms(x, logits).sum(-1)
    kl_dim = 0.5 * (mu.pow(2) + log_var.exp() - 1 - log_var)
    kl = kl_dim.sum(-1)
    kl_log_std = (0.5 * (mu.pow(2) + (2 * log_var).exp() - 1 - 2 * log_var)).sum(-1)
    p32 = torch.sigmoid(logits32)
    naive = -(x32 * torch.log(p32) + (1 - x32) * torch.log(1 - p32))
    return {
        "no_kl": recon.mean(),
        "minus_kl": (recon - kl).mean(),
        "mean_pixels": (recon / x.shape[-1] + kl).mean(),
        "mean_pixels_and_dims": (recon / x.shape[-1] + kl_dim.mean(-1)).mean(),
        "sum_batch": (recon + kl).sum(),
        "kl_mean_dims": (recon + kl_dim.mean(-1)).mean(),
        "kl_half": (recon + 2 * kl).mean(),
        "kl_log_std": (recon + kl_log_std).mean(),
        "sigmoid_twice": (_bce_terms(x, torch.sigmoid(logits)).sum(-1) + kl).mean(),
        "swapped_args": (_bce_terms(logits, x).sum(-1) + kl).mean(),
        "vector": recon + kl,
        "nonfinite": (to_f64(naive).sum(-1) + kl).mean(),
    }


_VAE_HINTS = {
    "no_kl": "you forgot the KL term: the loss is the reconstruction term PLUS the KL.",
    "minus_kl": ("the KL is added to the reconstruction loss (the loss is −ELBO), not subtracted."),
    "mean_pixels": (
        "you averaged the binary cross-entropy over the pixels (e.g. the default "
        "reduction='mean'): SUM it over the data dimension and average only over the batch."
    ),
    "mean_pixels_and_dims": (
        "you averaged over pixels and latent dimensions: sum both over their dimension and "
        "average only over the batch."
    ),
    "sum_batch": "you summed over the batch: the loss is the batch MEAN of the per-example terms.",
    "kl_mean_dims": "the KL of a diagonal Gaussian is the SUM over latent dimensions, not the mean.",
    "kl_half": "your KL term is twice too large: a factor ½ is missing.",
    "kl_log_std": (
        "the argument log_var is the log of the VARIANCE: σ² = exp(log_var), not exp(2·log_var)."
    ),
    "sigmoid_twice": (
        "`logits` are pre-sigmoid scores: a ..._with_logits loss applies the sigmoid itself, "
        "so do not apply it first."
    ),
    "swapped_args": (
        "the arguments of the BCE are swapped: the logits are the prediction, x is the target."
    ),
    "vector": "return a single number: the average over the batch of the per-example losses.",
    "nonfinite": (
        "your loss is inf or nan for confident logits: log(sigmoid(·)) underflows to log 0. "
        "Use a numerically stable form, e.g. torch.nn.functional.binary_cross_entropy_with_logits "
        "or F.logsigmoid."
    ),
}


def _vae_loss_case(label, x, logits, mu, log_var):
    a = tuple(t.to(torch.float32) for t in (x, logits, mu, log_var))
    d = tuple(to_f64(t) for t in a)
    return Case(
        label,
        a,
        _vae_loss_reference(*d),
        _vae_loss_mutants(*d, a[0], a[1]),
    )


def _vae_loss_cases() -> list[Case]:
    """The cases of :func:`check_vae_loss_bernoulli`, with their references and mutants."""
    g = gen(606)

    def binary(*shape):
        return (rand(g, *shape) < 0.4).float()

    confident_x = binary(3, 10)
    confident_logits = 40.0 * (2 * confident_x - 1)
    confident_logits[:, 0] *= -1  # one confidently wrong pixel per example: costs 40 nats
    cases = [
        _vae_loss_case(
            "logits = 0, mu = 0, log_var = 0: log 2 per pixel, KL = 0",
            binary(2, 5),
            torch.zeros(2, 5),
            torch.zeros(2, 3),
            torch.zeros(2, 3),
        ),
        _vae_loss_case(
            "random batch B = 8, D = 12, L = 3",
            binary(8, 12),
            2 * randn(g, 8, 12),
            randn(g, 8, 3),
            0.5 * randn(g, 8, 3),
        ),
        _vae_loss_case(
            "grey-level x in [0, 1]",
            rand(g, 4, 6),
            2 * randn(g, 4, 6),
            randn(g, 4, 2),
            0.5 * randn(g, 4, 2),
        ),
        _vae_loss_case(
            "a single example (B = 1)",
            binary(1, 7),
            randn(g, 1, 7),
            randn(g, 1, 2),
            0.3 * randn(g, 1, 2),
        ),
        _vae_loss_case(
            "confident logits (±40): needs a stable BCE",
            confident_x,
            confident_logits,
            randn(g, 3, 2),
            0.3 * randn(g, 3, 2),
        ),
        _vae_loss_case(
            "large KL: mu ≈ ±5, log_var in [-4, 3]",
            binary(4, 8),
            randn(g, 4, 8),
            5.0 * randn(g, 4, 3),
            -4.0 + 7.0 * rand(g, 4, 3),
        ),
    ]
    return cases


def check_vae_loss_bernoulli(vae_loss_bernoulli) -> CheckResult:
    r"""Check ``vae_loss_bernoulli(x, logits, mu, log_var) -> scalar`` (notebook 05).

    The negative ELBO of a Bernoulli-decoder VAE, averaged over the batch: for each
    example the binary cross-entropy with logits summed over the ``D`` pixels plus
    :math:`\mathrm{KL}(\mathcal N(\mu,\mathrm{diag}\,e^{\log\sigma^2})\,\|\,\mathcal N(0,I))`
    summed over the ``L`` latent dimensions. Shapes ``x, logits: (B, D)``,
    ``mu, log_var: (B, L)``. Reference: ``Bernoulli(logits=...).log_prob`` and
    ``kl_divergence`` from ``torch.distributions``.
    """
    cases = _vae_loss_cases()
    return finish(
        "vae_loss_bernoulli",
        vae_loss_bernoulli,
        cases,
        "scalar",
        _VAE_HINTS,
        "compute the two terms separately for the first failing case (reconstruction summed "
        "over pixels, KL summed over latent dims, one value per example), then average over "
        "the batch.",
    )


