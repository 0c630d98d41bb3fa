"""Cases for the checks of notebook training_pathologies: reference solution(s), other correct answers,
and typical mistakes with the hint each must get. Collected by ``test_common.py``."""

from __future__ import annotations


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
