"""Cases for the checks of notebook training_pathologies: reference solution(s), other correct answers,
and typical mistakes with the hint each must get. Collected by ``test_common.py``."""

from __future__ import annotations

import torch


def active_units(mu, threshold=0.01):
    return int((mu.var(dim=0) > threshold).sum())


REFERENCE = {
    "active_units": active_units,
}
N_CASES = {
    "active_units": 6,
}
ALTERNATIVES = [
    # unbiased variance, returned as a 0-dim tensor
    ("active_units", lambda mu, threshold=0.01: (mu.var(0, correction=1) > threshold).sum()),
    (
        "active_units",
        lambda mu, threshold=0.01: int((((mu - mu.mean(0)) ** 2).mean(0) > threshold).sum()),
    ),
]
MUTANTS = [
    (
        "active_units",
        "std",
        lambda mu, threshold=0.01: int((mu.std(0) > threshold).sum()),
        "VARIANCE (over the data)",
    ),
    (
        "active_units",
        "wrong_axis",
        lambda mu, threshold=0.01: int((mu.var(1) > threshold).sum()),
        "over the data points (dim 0",
    ),
    (
        "active_units",
        "inactive",
        lambda mu, threshold=0.01: int((mu.var(0) <= threshold).sum()),
        "INACTIVE",
    ),
    (
        "active_units",
        "mean",
        lambda mu, threshold=0.01: int((mu.mean(0).abs() > threshold).sum()),
        "not a mean",
    ),
    (
        "active_units",
        "fixed_threshold",
        lambda mu, threshold=0.01: int((mu.var(0) > 0.01).sum()),
        "`threshold` argument",
    ),
    ("active_units", "mask", lambda mu, threshold=0.01: mu.var(0) > threshold, "sum the mask"),
]


def linear_warmup(epoch, warmup_epochs):
    return min(1.0, (epoch + 1) / warmup_epochs)


REFERENCE["linear_warmup"] = linear_warmup
N_CASES["linear_warmup"] = 6
ALTERNATIVES += [
    ("linear_warmup", lambda epoch, warmup_epochs: torch.tensor((epoch + 1) / warmup_epochs).clamp(max=1.0)),
    ("linear_warmup", lambda epoch, warmup_epochs: 1.0 if epoch >= warmup_epochs - 1 else (epoch + 1) / warmup_epochs),
]
MUTANTS += [
    ("linear_warmup", "zero_start", lambda e, w: min(1.0, e / w), "first epoch takes no step"),
    ("linear_warmup", "uncapped", lambda e, w: (e + 1) / w, "must stay at 1"),
    ("linear_warmup", "late", lambda e, w: min(1.0, (e + 1) / (w + 1)), "one epoch late"),
    ("linear_warmup", "int_division", lambda e, w: min(1, (e + 1) // w), "integer division"),
    ("linear_warmup", "decay", lambda e, w: max(0.0, 1 - e / w), "INCREASES"),
]
