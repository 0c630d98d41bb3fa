"""Tests for vi_helpers.widgets.prior_sampler: seeded draws, tile by tile."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vi_helpers import widgets as vw


def sampler_reference(model, n, seed, nrow, scale):
    z = torch.randn(n, model.latent_size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        images = model.decode(z).double().numpy().reshape(n, 8, 8)
    return images


def test_prior_sampler_reproducible_and_button(model2, pixels, expected_gray):
    ps = vw.PriorSampler(model2, n=6, seed=4, nrow=3)
    images = sampler_reference(model2, 6, 4, 3, ps.scale)
    grid = pixels(ps.image.value)
    s = ps.scale
    assert grid.shape == ((2 * 9 - 1) * s, (3 * 9 - 1) * s)
    for k in range(6):
        r, c = divmod(k, 3)
        tile = grid[r * 9 * s : (r * 9 + 8) * s, c * 9 * s : (c * 9 + 8) * s]
        np.testing.assert_array_equal(tile, expected_gray(images[k], s))
    assert vw.PriorSampler(model2, n=6, seed=4, nrow=3).image.value == ps.image.value
    first = ps.image.value
    ps.button.click()
    assert ps.seed == 5 and ps.seed_box.value == 5
    assert ps.image.value != first
    images5 = sampler_reference(model2, 6, 5, 3, s)
    np.testing.assert_array_equal(
        pixels(ps.image.value)[: 8 * s, : 8 * s], expected_gray(images5[0], s)
    )
    ps.seed_box.value = 4
    assert ps.image.value == first


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"n": 0}, ValueError, "n must"),
        ({"seed": -1}, ValueError, "seed"),
        ({"nrow": 0}, ValueError, "nrow"),
        ({"model": None}, TypeError, "model"),
    ],
)
def test_prior_sampler_bad_input(kwargs, exc, match, untrained):
    kwargs = dict(kwargs)
    model = kwargs.pop("model", untrained(2))
    with pytest.raises(exc, match=match):
        vw.PriorSampler(model, **kwargs)
