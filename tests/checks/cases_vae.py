"""Cases for the checks of notebook vae: reference solution(s), other correct answers,
and typical mistakes with the hint each must get. Collected by ``test_common.py``."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def vae_loss_bernoulli(x, logits, mu, log_var):
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)
    kl = 0.5 * (mu**2 + log_var.exp() - 1.0 - log_var).sum(dim=-1)
    return (recon + kl).mean()


REFERENCE = {
    "vae_loss_bernoulli": vae_loss_bernoulli,
}
N_CASES = {
    "vae_loss_bernoulli": 6,
}
ALTERNATIVES = [
    (
        "vae_loss_bernoulli",
        lambda x, logits, mu, log_var: torch.mean(
            -(x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(1)
            - 0.5 * (1 + log_var - mu.pow(2) - log_var.exp()).sum(1)
        ),
    ),
]
MUTANTS = [
    (
        "vae_loss_bernoulli",
        "no_kl",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1).mean()
        ),
        "forgot the KL term",
    ),
    (
        "vae_loss_bernoulli",
        "minus_kl",
        lambda x, lg, mu, lv: (
            2 * F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1).mean()
            - vae_loss_bernoulli(x, lg, mu, lv)
        ),
        "not subtracted",
    ),
    (
        "vae_loss_bernoulli",
        "bce_default_mean",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(lg, x)
            + (0.5 * (mu**2 + lv.exp() - 1 - lv).sum(-1)).mean()
        ),
        "reduction='mean'",
    ),
    (
        "vae_loss_bernoulli",
        "sum_batch",
        lambda x, lg, mu, lv: vae_loss_bernoulli(x, lg, mu, lv) * x.shape[0],
        "summed over the batch",
    ),
    (
        "vae_loss_bernoulli",
        "kl_mean_dims",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1)
            + 0.5 * (mu**2 + lv.exp() - 1 - lv).mean(-1)
        ).mean(),
        "SUM over latent dimensions",
    ),
    (
        "vae_loss_bernoulli",
        "kl_no_half",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1)
            + (mu**2 + lv.exp() - 1 - lv).sum(-1)
        ).mean(),
        "factor ½ is missing",
    ),
    (
        "vae_loss_bernoulli",
        "kl_log_std",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1)
            + 0.5 * (mu**2 + torch.exp(2 * lv) - 1 - 2 * lv).sum(-1)
        ).mean(),
        "log of the VARIANCE",
    ),
    (
        "vae_loss_bernoulli",
        "sigmoid_twice",
        lambda x, lg, mu, lv: vae_loss_bernoulli(x, torch.sigmoid(lg), mu, lv),
        "pre-sigmoid",
    ),
    (
        "vae_loss_bernoulli",
        "swapped_args",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(x, lg, reduction="none").sum(-1)
            + 0.5 * (mu**2 + lv.exp() - 1 - lv).sum(-1)
        ).mean(),
        "arguments of the BCE are swapped",
    ),
    (
        "vae_loss_bernoulli",
        "vector",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1)
            + 0.5 * (mu**2 + lv.exp() - 1 - lv).sum(-1)
        ),
        "average over the batch",
    ),
    (
        "vae_loss_bernoulli",
        "naive_bce",
        lambda x, lg, mu, lv: (
            -(x * torch.log(torch.sigmoid(lg)) + (1 - x) * torch.log(1 - torch.sigmoid(lg))).sum(-1)
            + 0.5 * (mu**2 + lv.exp() - 1 - lv).sum(-1)
        ).mean(),
        "numerically stable",
    ),
]
