"""Tests for vi_helpers.widgets.interpolation: exact endpoints, both paths, the strips."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vi_helpers import widgets as vw


def test_interpolation_endpoints_and_path(model2, labelled_digits, pixels, expected_gray, decode):
    x, _ = labelled_digits
    it = vw.Interpolation(model2, x[0], x[1], steps=5)
    with torch.no_grad():
        mean_a = model2.encode(x[0:1])[0][0]
        mean_b = model2.encode(x[1:2])[0][0]
    for mode in ["linear", "spherical"]:
        it.mode_buttons.value = mode
        it.t_slider.value = 0.0
        assert torch.equal(it.z, mean_a)
        assert it.image.value == vw.render_png(
            model2.decode(mean_a[None])[0].reshape(8, 8), scale=it.scale
        )
        it.t_slider.value = 1.0
        assert torch.equal(it.z, mean_b)
        np.testing.assert_array_equal(
            pixels(it.image.value), expected_gray(decode(model2, mean_b), it.scale)
        )
    it.mode_buttons.value = "linear"
    it.t_slider.value = 0.25
    torch.testing.assert_close(it.z, 0.75 * mean_a + 0.25 * mean_b)
    np.testing.assert_array_equal(
        pixels(it.image.value), expected_gray(decode(model2, it.z), it.scale)
    )
    it.mode_buttons.value = "spherical"
    a, b = mean_a.double(), mean_b.double()
    omega = math.acos(float(a @ b / (a.norm() * b.norm())))
    want = (math.sin(0.75 * omega) * a + math.sin(0.25 * omega) * b) / math.sin(omega)
    torch.testing.assert_close(it.z.double(), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        pixels(it.image.value), expected_gray(decode(model2, it.z), it.scale)
    )
    assert "t = 0.25 (spherical)" in it.info.value


def test_interpolation_strips_start_and_end_at_the_endpoints(
    model2, labelled_digits, pixels, expected_gray, decode
):
    x, _ = labelled_digits
    steps = 6
    it = vw.Interpolation(model2, x[10], x[20].reshape(1, -1), steps=steps)
    for mode in ["linear", "spherical"]:
        strip = pixels(it.strip_images[mode].value)
        s = strip.shape[0] // 8  # one row of tiles: 8 image rows, no padding rows
        assert strip.shape == (8 * s, (steps * 9 - 1) * s)
        first = strip[:, : 8 * s]
        last = strip[:, (steps - 1) * 9 * s :]
        np.testing.assert_array_equal(first, expected_gray(decode(model2, it.z_a), s))
        np.testing.assert_array_equal(last, expected_gray(decode(model2, it.z_b), s))
    mid_lin = pixels(it.strip_images["linear"].value)
    mid_sph = pixels(it.strip_images["spherical"].value)
    assert mid_lin.shape == mid_sph.shape


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"steps": 1}, ValueError, "steps"),
        ({"x_a": torch.zeros(2, 64)}, ValueError, "x_a"),
        ({"x_b": torch.zeros(10)}, ValueError, "x_b"),
        ({"mode": "cubic"}, ValueError, "mode"),
        ({"t": 2.0}, ValueError, "t must"),
        ({"model": torch.nn.Linear(3, 3)}, TypeError, "model"),
    ],
)
def test_interpolation_bad_input(kwargs, exc, match, untrained):
    kwargs = dict(kwargs)
    model = kwargs.pop("model", untrained(2))
    x_a = kwargs.pop("x_a", torch.rand(64))
    x_b = kwargs.pop("x_b", torch.rand(64))
    with pytest.raises(exc, match=match):
        vw.Interpolation(model, x_a, x_b, **kwargs)
