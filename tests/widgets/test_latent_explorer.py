"""Tests for vi_helpers.widgets.latent_explorer: sliders drive the decoded image and the code z."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch.distributions import Normal

from vi_helpers import widgets as vw
from vi_helpers.models import VariationalAutoencoder


def test_explorer_sliders_drive_the_decoded_image(model2, pixels, expected_gray, decode):
    ex = vw.LatentExplorer(model2)
    assert len(ex.sliders) == 2 and ex.dropdowns == [] and ex.hold_slider is None
    assert ex.scale == 24
    assert all(s.continuous_update for s in ex.sliders)
    np.testing.assert_array_equal(pixels(ex.image.value), expected_gray(decode(model2, [0, 0]), 24))
    ex.sliders[0].value = 1.25
    ex.sliders[1].value = -0.5
    torch.testing.assert_close(ex.z, torch.tensor([1.25, -0.5], dtype=torch.float64))
    want = vw.render_png(model2.decode(torch.tensor([[1.25, -0.5]]))[0].reshape(8, 8), scale=24)
    assert ex.image.value == want
    np.testing.assert_array_equal(
        pixels(ex.image.value), expected_gray(decode(model2, [1.25, -0.5]), 24)
    )
    log_prior = float(Normal(0.0, 1.0).log_prob(torch.tensor([1.25, -0.5])).sum())
    assert f"log N(z; 0, I) = {log_prior:.3f}" in ex.info.value
    assert "z = (+1.25, -0.50)" in ex.info.value


def test_explorer_image_has_fixed_size_and_changes(model2):
    ex = vw.LatentExplorer(model2, limit=2.0, scale=10)
    first = ex.image.value
    ex.sliders[0].value = 2.0
    assert ex.image.value != first
    assert ex.image.layout.width == "80px" and ex.image.layout.height == "80px"
    assert Image.open(io.BytesIO(ex.image.value)).size == (80, 80)
    assert ex.sliders[0].min == -2.0 and ex.sliders[0].max == 2.0


def test_explorer_set_z_moves_sliders_and_keeps_values_beyond_the_range(
    model2, pixels, expected_gray, decode
):
    ex = vw.LatentExplorer(model2)
    seen = []
    ex.on_change(seen.append)
    ex.set_z(torch.tensor([0.3, 2.0]))
    assert [s.value for s in ex.sliders] == pytest.approx([0.3, 2.0])
    assert len(seen) == 1  # one update, not one per slider
    torch.testing.assert_close(seen[0], torch.tensor([0.3, 2.0], dtype=torch.float64))
    ex.set_z([5.0, -1.0])  # outside [-3, 3]: the slider clips, z does not
    assert ex.sliders[0].value == 3.0
    torch.testing.assert_close(ex.z, torch.tensor([5.0, -1.0], dtype=torch.float64))
    np.testing.assert_array_equal(
        pixels(ex.image.value), expected_gray(decode(model2, [5, -1]), 24)
    )
    ex.sliders[1].value = 0.5  # moving the other slider keeps the 5
    torch.testing.assert_close(ex.z, torch.tensor([5.0, 0.5], dtype=torch.float64))


def test_explorer_one_latent_dimension(pixels, expected_gray, decode, untrained):
    model = untrained(1)
    ex = vw.LatentExplorer(model)
    assert len(ex.sliders) == 1 and ex.dims == (0,)
    ex.sliders[0].value = -1.5
    with torch.no_grad():
        want = model.decode(torch.tensor([[-1.5]])).double().numpy().reshape(8, 8)
    np.testing.assert_array_equal(pixels(ex.image.value), expected_gray(want, ex.scale))


def test_explorer_more_than_two_dims_dropdowns_and_hold(pixels, expected_gray, decode, untrained):
    model = untrained(4)
    ex = vw.LatentExplorer(model, dims=(1, 3), hold=0.5)
    assert len(ex.sliders) == 2 and len(ex.dropdowns) == 2 and ex.hold_slider is not None
    torch.testing.assert_close(ex.z, torch.full((4,), 0.5, dtype=torch.float64))
    ex.sliders[0].value = -1.0  # moves z[1]
    ex.sliders[1].value = 2.0  # moves z[3]
    torch.testing.assert_close(ex.z, torch.tensor([0.5, -1.0, 0.5, 2.0], dtype=torch.float64))
    ex.hold_slider.value = -0.25  # every dimension not on a slider
    torch.testing.assert_close(ex.z, torch.tensor([-0.25, -1.0, -0.25, 2.0], dtype=torch.float64))
    ex.dropdowns[0].value = 2  # slider 0 now moves z[2] and shows its value
    assert ex.dims == (2, 3) and ex.sliders[0].value == -0.25
    ex.sliders[0].value = 1.0
    torch.testing.assert_close(ex.z, torch.tensor([-0.25, -1.0, 1.0, 2.0], dtype=torch.float64))
    ex.dropdowns[0].value = 3  # the other slider's dimension: the two swap
    assert ex.dims == (3, 2)
    assert ex.dropdowns[1].value == 2
    assert [s.value for s in ex.sliders] == [2.0, 1.0]
    with torch.no_grad():
        want = model.decode(ex.z.float()[None]).double().numpy().reshape(8, 8)
    np.testing.assert_array_equal(pixels(ex.image.value), expected_gray(want, ex.scale))


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"model": "vae"}, TypeError, "model"),
        ({"model": torch.nn.Linear(2, 64)}, TypeError, "model"),
        ({"dims": (0, 2)}, ValueError, "dims"),
        ({"dims": (1, 1)}, ValueError, "dims"),
        ({"dims": (0,)}, ValueError, "dims"),
        ({"hold": 4.0}, ValueError, "hold"),
        ({"hold": "0"}, ValueError, "hold"),
        ({"limit": -1.0}, ValueError, "limit"),
        ({"step": 0.0}, ValueError, "step"),
        ({"scale": 0}, ValueError, "scale"),
        ({"image_shape": (4, 4)}, ValueError, "image_shape"),
        ({"image_shape": (8,)}, ValueError, "image_shape"),
    ],
)
def test_explorer_bad_input(kwargs, exc, match, untrained):
    kwargs = dict(kwargs)
    model = kwargs.pop("model", untrained(2))
    with pytest.raises(exc, match=match):
        vw.LatentExplorer(model, **kwargs)


def test_explorer_bad_set_z_and_callback(untrained):
    ex = vw.LatentExplorer(untrained(2))
    with pytest.raises(ValueError, match="z must have shape"):
        ex.set_z(torch.zeros(3))
    with pytest.raises(ValueError, match="z contains"):
        ex.set_z([float("nan"), 0.0])
    with pytest.raises(TypeError, match="callback"):
        ex.on_change(3)


def test_explorer_non_square_images_need_image_shape():
    torch.manual_seed(0)
    model = VariationalAutoencoder(12, 8, 2)
    with pytest.raises(ValueError, match="image_shape"):
        vw.LatentExplorer(model)
    ex = vw.LatentExplorer(model, image_shape=(3, 4), scale=5)
    assert Image.open(io.BytesIO(ex.image.value)).size == (20, 15)
