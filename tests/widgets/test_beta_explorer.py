"""Tests for vi_helpers.widgets.beta_explorer: the chosen beta's marker, text and reconstructions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vi_helpers import widgets as vw


def test_beta_explorer_shows_the_chosen_beta(pixels, expected_gray, sweep):
    results = sweep()
    bx = vw.BetaExplorer(results, nrow=3)
    assert [r["beta"] for r in bx.results] == [0.5, 1.0, 4.0]
    assert [label for label, _ in bx.slider.options] == ["0.5", "1", "4"]
    assert bx.slider.continuous_update
    for i, beta in enumerate([0.5, 1.0, 4.0]):
        bx.slider.value = i
        source = next(r for r in results if r["beta"] == beta)
        grid = pixels(bx.image.value)
        s = bx.scale
        tile = grid[9 * s : 17 * s, 18 * s : 26 * s]  # row 1, column 2: image 5
        np.testing.assert_array_equal(
            tile, expected_gray(source["reconstructions"][5].double().numpy().reshape(8, 8), s)
        )
        xdata, ydata = bx._marker.get_data()
        assert list(xdata) == [10.0 / (1 + beta)] and list(ydata) == [20.0 + 3 * beta]
        assert f"β = {beta:g}:" in bx.info.value
    blitted = bx.plot.value
    bx._plot.invalidate()
    np.testing.assert_array_equal(pixels(blitted), pixels(bx._plot.png()))


def test_beta_explorer_accepts_image_stacks(sweep):
    results = sweep(n=4)
    for r in results:
        r["reconstructions"] = r["reconstructions"].reshape(4, 8, 8)
    bx = vw.BetaExplorer(results, n_show=2)
    assert bx.image_shape == (8, 8) and bx.n_show == 2


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda sweep: [], ValueError, "results must not be empty"),
        (lambda sweep: "results", TypeError, "results"),
        (lambda sweep: [1, 2], TypeError, r"results\[0\]"),
        (lambda sweep: [{k: v for k, v in sweep()[0].items() if k != "rate"}], ValueError, "rate"),
        (
            lambda sweep: [sweep()[0], {**sweep()[1], "reconstructions": torch.rand(3, 64)}],
            ValueError,
            r"results\[1\]\['reconstructions'\]",
        ),
        (lambda sweep: [sweep()[0], {**sweep()[1], "beta": 4.0}], ValueError, "different betas"),
        (lambda sweep: [{**sweep()[0], "distortion": float("nan")}], ValueError, "distortion"),
        (lambda sweep: [{**sweep()[0], "beta": -1.0}], ValueError, "beta"),
        (
            lambda sweep: [{**sweep()[0], "reconstructions": torch.rand(4, 10)}],
            ValueError,
            "image_shape",
        ),
    ],
)
def test_beta_explorer_bad_input(make, exc, match, sweep):
    with pytest.raises(exc, match=match):
        vw.BetaExplorer(make(sweep))
