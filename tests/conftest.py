"""Shared fixtures for the vi_helpers tests.

Matplotlib is switched to the non-interactive Agg backend before any test
imports pyplot, and every test ends with all figures closed.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="session")
def digits() -> torch.Tensor:
    """All 1797 scikit-learn digits, ``(1797, 64)`` float32 in [0, 1] (pixel counts / 16)."""
    from vi_helpers.data import load_digits

    x, _ = load_digits(split="all")
    return x


@pytest.fixture(scope="session")
def digits_train() -> torch.Tensor:
    """The training split of :func:`vi_helpers.data.load_digits` (seed 0), float32."""
    from vi_helpers.data import load_digits

    x, _ = load_digits(split="train")
    return x


@pytest.fixture(scope="session")
def digits_small(digits) -> torch.Tensor:
    """The first 256 digits: enough for quick training tests."""
    return digits[:256].clone()
