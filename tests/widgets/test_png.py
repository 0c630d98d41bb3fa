"""Tests for vi_helpers.widgets._png: PNG pixels against a NumPy reference, the hand-written encoder."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from vi_helpers import widgets as vw
from vi_helpers.widgets._png import encode_rgb_png


@pytest.mark.parametrize("scale", [1, 3, 24])
def test_render_png_pixels_match_reference(scale, pixels, expected_gray):
    g = torch.Generator().manual_seed(1)
    image = torch.rand(5, 7, generator=g, dtype=torch.float64) * 1.4 - 0.2  # some outside [0, 1]
    png = vw.render_png(image, scale=scale)
    with Image.open(io.BytesIO(png)) as im:
        assert im.mode == "L"
        assert im.size == (7 * scale, 5 * scale)
    np.testing.assert_array_equal(pixels(png), expected_gray(image.numpy(), scale))


def test_render_png_invert_false_and_numpy_input(pixels):
    image = np.array([[0.0, 0.5], [1.0, 0.25]])
    got = pixels(vw.render_png(image, scale=2, invert=False))
    want = np.repeat(np.repeat(np.rint(255 * image).astype(np.uint8), 2, 0), 2, 1)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "image, scale, exc, match",
    [
        (torch.zeros(4), 2, ValueError, "image_2d"),
        (torch.zeros(0, 3), 2, ValueError, "image_2d"),
        (torch.tensor([[0.0, float("nan")]]), 2, ValueError, "image_2d"),
        (torch.zeros(2, 2, dtype=torch.int64), 2, TypeError, "image_2d"),
        ([[0.0, 1.0]], 2, TypeError, "image_2d"),
        (torch.zeros(2, 2), 0, ValueError, "scale"),
        (torch.zeros(2, 2), 1.5, TypeError, "scale"),
    ],
)
def test_render_png_bad_input(image, scale, exc, match):
    with pytest.raises(exc, match=match):
        vw.render_png(image, scale=scale)


def test_encode_rgb_png_roundtrip(pixels):
    g = np.random.default_rng(0)
    rgb = g.integers(0, 256, size=(13, 17, 3), dtype=np.uint8)
    np.testing.assert_array_equal(pixels(encode_rgb_png(rgb)), rgb)
