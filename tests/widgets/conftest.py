"""Shared fixtures for the widget tests (``tests/widgets/``, one file per module).

Controls are set programmatically (as a frontend would set them) and the
displayed ``Image`` bytes are decoded with Pillow and compared with pixels
computed here independently: the decoder's output mapped to grey levels
``round(255 * (1 - clip(v, 0, 1)))`` and repeated ``scale`` times with NumPy
(:func:`expected_gray`). The helpers are fixtures that return functions, so a
test asks for them by name.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from vi_helpers.data import load_digits
from vi_helpers.models import VariationalAutoencoder
from vi_helpers.train import train_model


def _pixels(png: bytes) -> np.ndarray:
    """Decoded PNG as an array (grey: (H, W); colour: (H, W, 3))."""
    with Image.open(io.BytesIO(png)) as im:
        if im.mode == "P":
            im = im.convert("RGB")
        return np.asarray(im).copy()


def _expected_gray(image: np.ndarray, scale: int) -> np.ndarray:
    """The reference rendering, written without Pillow."""
    levels = np.rint(255.0 * (1.0 - np.clip(np.asarray(image, dtype=np.float64), 0, 1)))
    return np.repeat(np.repeat(levels.astype(np.uint8), scale, axis=0), scale, axis=1)


def _decode(model, z) -> np.ndarray:
    """The model's decoded ``8 x 8`` image at ``z``, float64."""
    with torch.no_grad():
        out = model.decode(torch.as_tensor(z, dtype=torch.float32).reshape(1, -1))
    return out.double().numpy().reshape(8, 8)


def _untrained(latent_size: int, seed: int = 0) -> VariationalAutoencoder:
    torch.manual_seed(seed)
    return VariationalAutoencoder(64, 32, latent_size)


def _sweep(n=6, betas=(4.0, 0.5, 1.0)) -> list[dict]:
    """A fake beta sweep for :class:`BetaExplorer`: known rates, distortions and images."""
    g = torch.Generator().manual_seed(0)
    return [
        {
            "beta": b,
            "rate": 10.0 / (1 + b),
            "distortion": torch.tensor(20.0 + 3 * b),
            "reconstructions": torch.rand(n, 64, generator=g),
        }
        for b in betas
    ]


@pytest.fixture(scope="session")
def pixels():
    return _pixels


@pytest.fixture(scope="session")
def expected_gray():
    return _expected_gray


@pytest.fixture(scope="session")
def decode():
    return _decode


@pytest.fixture(scope="session")
def untrained():
    """``untrained(latent_size, seed=0)``: a small seeded, untrained VAE on 8 x 8 digits."""
    return _untrained


@pytest.fixture(scope="session")
def sweep():
    return _sweep


@pytest.fixture(scope="session")
def labelled_digits():
    """The test split of the digits, ``(x, y)``: 359 examples."""
    return load_digits(split="test")


@pytest.fixture(scope="session")
def model2():
    """A 2-D VAE trained briefly: enough for images that move with z."""
    x, _ = load_digits()
    torch.manual_seed(0)
    model = VariationalAutoencoder(64, 64, 2)
    train_model(model, x, n_epochs=5, seed=0, progress=False)
    return model
