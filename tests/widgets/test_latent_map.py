"""Tests for vi_helpers.widgets.latent_map: markers at pixels given by Matplotlib's transform.

The map draws its markers with its own affine data-to-pixel map; the reference
pixel of a point comes from Matplotlib's ``transData`` of a freshly drawn copy of
the map's figure (``LatentMap._scatter_figure``, the figure its background is
rendered from).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vi_helpers import widgets as vw
from vi_helpers.widgets._png import png_size
from vi_helpers.widgets.latent_map import MAP_COLORS


def map_pixel(lm: vw.LatentMap, xy) -> tuple[int, int]:
    """(row, column) of a map-plane point, via Matplotlib's own transform."""
    map_size = png_size(lm.map_image.value)[0]
    fig, ax = lm._scatter_figure(map_size)
    fig.canvas.draw()
    height = fig.canvas.get_width_height()[1]
    dx, dy = ax.transData.transform(np.asarray(xy, dtype=np.float64))
    return int(math.floor(height - dy)), int(math.floor(dx))


def near(img: np.ndarray, rc, colour, radius: int = 1) -> bool:
    r, c = rc
    patch = img[max(r - radius, 0) : r + radius + 1, max(c - radius, 0) : c + radius + 1]
    return bool((patch.reshape(-1, 3) == np.array(colour)).all(axis=1).any())


def test_map_selection_shows_the_example(model2, labelled_digits, pixels, expected_gray, decode):
    x, y = labelled_digits
    lm = vw.LatentMap(model2, x, y, index=5)
    with torch.no_grad():
        mean, log_var = model2.encode(x)
    torch.testing.assert_close(lm.mean, mean.double())
    for idx in [5, 17, len(x) - 1]:
        lm.select(idx)
        assert lm.index == idx
        assert lm.label_dropdown.value == int(y[idx])
        np.testing.assert_array_equal(
            pixels(lm.original_image.value),
            expected_gray(x[idx].double().numpy().reshape(8, 8), lm.scale),
        )
        np.testing.assert_array_equal(
            pixels(lm.reconstruction_image.value),
            expected_gray(decode(model2, mean[idx]), lm.scale),
        )
        assert f"example {idx}, label {int(y[idx])}" in lm.info.value


def test_map_markers_at_the_mean_and_on_the_two_sigma_ellipse(model2, labelled_digits, pixels):
    x, y = labelled_digits
    lm = vw.LatentMap(model2, x, y)
    idx = 42
    lm.index_slider.value = idx
    img = pixels(lm.map_image.value)
    mean = lm.mean[idx].numpy()
    std = np.exp(0.5 * lm.log_var[idx].numpy())
    assert tuple(img[map_pixel(lm, mean)]) == MAP_COLORS["selected"]
    # the 2-sigma contour crosses the axes through the mean at mean +- 2 sigma
    for offset in ([2 * std[0], 0.0], [-2 * std[0], 0.0], [0.0, 2 * std[1]], [0.0, -2 * std[1]]):
        rc = map_pixel(lm, mean + np.array(offset))
        if 0 <= rc[0] < img.shape[0] and 0 <= rc[1] < img.shape[1]:
            assert near(img, rc, MAP_COLORS["ellipse"], radius=2), offset
    # nothing was re-plotted: outside the axes the picture is the cached background
    background = np.asarray(lm._background.convert("RGB"))
    left, top, right, bottom = lm._axes_box
    outside = np.ones(img.shape[:2], dtype=bool)
    outside[top:bottom, left:right] = False
    np.testing.assert_array_equal(img[outside], background[outside])


def test_map_label_controls_jump_to_the_next_example_with_that_label(model2, labelled_digits):
    x, y = labelled_digits
    labels = y.tolist()
    lm = vw.LatentMap(model2, x, y, index=0)

    def next_with(label, after):
        for k in range(1, len(labels) + 1):
            j = (after + k) % len(labels)
            if labels[j] == label:
                return j
        raise AssertionError

    target = (labels[0] + 1) % 10
    lm.label_dropdown.value = target
    want = next_with(target, 0)
    assert lm.index == want and lm.index_slider.value == want
    for _ in range(3):
        want = next_with(target, want)
        lm.next_button.click()
        assert lm.index == want and labels[lm.index] == target
    lm.select(len(labels) - 1)  # wraps around
    lm.next_button.click()
    assert lm.index == next_with(labels[-1], len(labels) - 1)


def test_map_follows_the_explorer_and_sends_the_mean(
    model2, labelled_digits, pixels, expected_gray, decode
):
    x, y = labelled_digits
    ex = vw.LatentExplorer(model2)
    lm = vw.LatentMap(model2, x, y, explorer=ex, index=3)
    ex.set_z([1.5, -2.0])
    img = pixels(lm.map_image.value)
    assert near(img, map_pixel(lm, [1.5, -2.0]), MAP_COLORS["explorer"])
    ex.sliders[0].value = -1.0
    img2 = pixels(lm.map_image.value)
    assert near(img2, map_pixel(lm, [-1.0, -2.0]), MAP_COLORS["explorer"])
    assert not near(img2, map_pixel(lm, [1.5, -2.0]), MAP_COLORS["explorer"], radius=0)
    lm.explore_button.click()
    torch.testing.assert_close(ex.z, lm.mean[3])
    np.testing.assert_array_equal(
        pixels(ex.image.value), expected_gray(decode(model2, lm.mean[3]), ex.scale)
    )


def test_map_pca_projection_matches_sklearn(labelled_digits, untrained):
    from sklearn.decomposition import PCA

    x, y = labelled_digits
    model = untrained(4, seed=1)
    lm = vw.LatentMap(model, x, y, projection="pca")
    pca = PCA(n_components=2).fit(lm.mean.numpy())
    proj = lm.project(lm.mean)
    # same variances along the axes (sklearn divides by N - 1), uncorrelated axes
    np.testing.assert_allclose(proj.var(axis=0, ddof=1), pca.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(np.abs(pca.transform(lm.mean.numpy())), np.abs(proj), atol=1e-9)
    # dims projection of a 4-D model: plain coordinates
    lm2 = vw.LatentMap(model, x, y, dims=(2, 0))
    np.testing.assert_allclose(lm2.project(lm2.mean), lm2.mean[:, [2, 0]].numpy())


@pytest.mark.parametrize(
    "change, exc, match",
    [
        ({"labels": torch.zeros(5, dtype=torch.int64)}, ValueError, "labels"),
        ({"labels": torch.zeros(359)}, TypeError, "labels"),
        ({"labels": torch.zeros(359, 2, dtype=torch.int64)}, ValueError, "labels"),
        ({"x": torch.zeros(0, 64)}, ValueError, "x must not be empty"),
        ({"x": torch.zeros(359, 10)}, ValueError, "x must"),
        ({"model": "one latent dimension"}, ValueError, "model"),
        ({"model": object()}, TypeError, "model"),
        ({"explorer": "explorer"}, TypeError, "explorer"),
        ({"explorer": "other"}, ValueError, "explorer"),
        ({"index": 359}, ValueError, "index"),
        ({"projection": "tsne"}, ValueError, "projection"),
        ({"dims": (0, 0)}, ValueError, "dims"),
        ({"map_size": 50}, ValueError, "map_size"),
    ],
)
def test_map_bad_input(labelled_digits, change, exc, match, untrained):
    x, y = labelled_digits
    model = untrained(2)
    kwargs = {"model": model, "x": x, "labels": y}
    kwargs.update(change)
    if kwargs.get("model") == "one latent dimension":
        kwargs["model"] = untrained(1)
    if kwargs.get("explorer") == "other":
        kwargs["explorer"] = vw.LatentExplorer(untrained(2, seed=5))
    with pytest.raises(exc, match=match):
        vw.LatentMap(kwargs.pop("model"), kwargs.pop("x"), kwargs.pop("labels"), **kwargs)


def test_map_info_box_holds_its_three_lines(model2, labelled_digits):
    """Issue 15: the third line was clipped (a 64 px box for three 28 px lines)."""
    x, y = labelled_digits
    lm = vw.LatentMap(model2, x, y, explorer=vw.LatentExplorer(model2))
    assert lm.info.value.count("\n") == 2  # three lines
    # ipywidgets 8: HTML content has line-height var(--jp-widgets-inline-height) = 28px
    assert int(lm.info.layout.height.removesuffix("px")) >= 3 * 28
