"""Cases for the checks of notebook kl_divergence: reference solution(s), other correct answers,
and typical mistakes with the hint each must get. Collected by ``test_common.py``."""

from __future__ import annotations

import torch


# ------------------------------------------------------------------ reference solutions
def kl_diag_gaussian(mu_q, log_var_q, mu_p, log_var_p):
    var_ratio = torch.exp(log_var_q - log_var_p)
    mean_term = (mu_q - mu_p) ** 2 / torch.exp(log_var_p)
    return 0.5 * (log_var_p - log_var_q + var_ratio + mean_term - 1.0).sum(dim=-1)

# ------------------------------------------------------------------ typical mistakes
def _kl_terms(mq, lq, mp, lp):
    return lp - lq + torch.exp(lq - lp) + (mq - mp) ** 2 / torch.exp(lp) - 1.0


REFERENCE = {
    "kl_diag_gaussian": kl_diag_gaussian,
}
N_CASES = {
    "kl_diag_gaussian": 6,
}
ALTERNATIVES = [
    # the KL per dimension, written with variances, then summed
    (
        "kl_diag_gaussian",
        lambda mq, lq, mp, lp: (
            0.5 * torch.log(lp.exp() / lq.exp())
            + (lq.exp() + (mq - mp) ** 2) / (2 * lp.exp())
            - 0.5
        ).sum(-1),
    ),
]
MUTANTS = [
    ("kl_diag_gaussian", "no_half", lambda *a: _kl_terms(*a).sum(-1), "factor ½ is missing"),
    ("kl_diag_gaussian", "sign", lambda *a: -0.5 * _kl_terms(*a).sum(-1), "wrong sign"),
    (
        "kl_diag_gaussian",
        "mean_dims",
        lambda *a: 0.5 * _kl_terms(*a).mean(-1),
        "averaged over the latent dimensions",
    ),
    ("kl_diag_gaussian", "sum_all", lambda *a: 0.5 * _kl_terms(*a).sum(), "summed over the batch"),
    ("kl_diag_gaussian", "no_reduce", lambda *a: 0.5 * _kl_terms(*a), "one KL per dimension"),
    (
        "kl_diag_gaussian",
        "swapped",
        lambda mq, lq, mp, lp: kl_diag_gaussian(mp, lp, mq, lq),
        "roles of q",
    ),
    (
        "kl_diag_gaussian",
        "log_std",
        lambda mq, lq, mp, lp: kl_diag_gaussian(mq, 2 * lq, mp, 2 * lp),
        "log of the VARIANCE",
    ),
    (
        "kl_diag_gaussian",
        "std_for_var",
        lambda mq, lq, mp, lp: (
            0.5
            * (lp - lq + torch.exp(0.5 * (lq - lp)) + (mq - mp) ** 2 / torch.exp(0.5 * lp) - 1).sum(
                -1
            )
        ),
        "standard deviation σ where a variance σ² belongs",
    ),
    (
        "kl_diag_gaussian",
        "minus_one",
        lambda mq, lq, mp, lp: (
            0.5 * (lp - lq + torch.exp(lq - lp) + (mq - mp) ** 2 / torch.exp(lp)).sum(-1)
        ),
        "constant term per dimension is missing",
    ),
    (
        "kl_diag_gaussian",
        "mahalanobis",
        lambda mq, lq, mp, lp: 0.5 * (lp - lq + torch.exp(lq - lp) + (mq - mp) ** 2 - 1).sum(-1),
        "divided by p's variance",
    ),
]
