"""Cases for the checks of notebook evaluating_vaes: reference solution(s), other correct answers,
and typical mistakes with the hint each must get. Collected by ``test_common.py``."""

from __future__ import annotations

import math

import torch


def iwae_bound(log_w):
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


REFERENCE = {
    "iwae_bound": iwae_bound,
}
N_CASES = {
    "iwae_bound": 6,
}
ALTERNATIVES = [
    (
        "iwae_bound",
        lambda log_w: (
            log_w.max(0).values + torch.log(torch.exp(log_w - log_w.max(0).values).mean(0))
        ),
    ),
]
MUTANTS = [
    ("iwae_bound", "no_log_k", lambda log_w: torch.logsumexp(log_w, 0), "subtract log K"),
    ("iwae_bound", "mean_log_w", lambda log_w: log_w.mean(0), "that is the ELBO"),
    (
        "iwae_bound",
        "wrong_dim",
        lambda log_w: torch.logsumexp(log_w, 1) - math.log(log_w.shape[1]),
        "reduce over the K samples",
    ),
    (
        "iwae_bound",
        "divide_outside",
        lambda log_w: torch.logsumexp(log_w, 0) / log_w.shape[0],
        "goes inside the log",
    ),
    ("iwae_bound", "max_only", lambda log_w: log_w.max(0).values, "stabilizing shift"),
    ("iwae_bound", "naive", lambda log_w: torch.log(torch.exp(log_w).mean(0)), "log-sum-exp trick"),
]


def effective_sample_size(log_w):
    return torch.exp(2 * torch.logsumexp(log_w, dim=0) - torch.logsumexp(2 * log_w, dim=0))


REFERENCE["effective_sample_size"] = effective_sample_size
N_CASES["effective_sample_size"] = 6
ALTERNATIVES += [
    ("effective_sample_size", lambda log_w: 1 / torch.softmax(log_w, dim=0).pow(2).sum(dim=0)),
    (
        "effective_sample_size",
        lambda log_w: (
            torch.exp(log_w - log_w.max(0).values).sum(0) ** 2
            / torch.exp(2 * (log_w - log_w.max(0).values)).sum(0)
        ),
    ),
]
MUTANTS += [
    (
        "effective_sample_size",
        "fraction",
        lambda log_w: effective_sample_size(log_w) / log_w.shape[0],
        "not the fraction",
    ),
    (
        "effective_sample_size",
        "inverse",
        lambda log_w: 1 / effective_sample_size(log_w),
        "upside down",
    ),
    (
        "effective_sample_size",
        "nonfinite",
        lambda log_w: torch.exp(log_w).sum(0) ** 2 / torch.exp(log_w).pow(2).sum(0),
        "normalize first",
    ),
    (
        "effective_sample_size",
        "max_weight",
        lambda log_w: 1 / torch.softmax(log_w, dim=0).max(dim=0).values,
        "cruder measure",
    ),
    (
        "effective_sample_size",
        "log",
        lambda log_w: torch.log(effective_sample_size(log_w)),
        "not its logarithm",
    ),
]
