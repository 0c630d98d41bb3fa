"""Headless tests for vi_helpers.widgets.

Controls are set programmatically (as a frontend would set them) and the
displayed ``Image`` bytes are decoded with Pillow and compared with pixels
computed here independently: the decoder's output mapped to grey levels
``round(255 * (1 - clip(v, 0, 1)))`` and repeated ``scale`` times with NumPy.
Numbers shown by the concept widgets are checked against closed forms,
``torch.distributions`` and SciPy quadrature.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import integrate
from torch.distributions import Normal, kl_divergence

from vi_helpers import widgets as vw
from vi_helpers.data import load_digits
from vi_helpers.kl import kl_univariate_normal
from vi_helpers.models import ConjugateGaussianModel, VariationalAutoencoder
from vi_helpers.train import train_model

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


# -- helpers and fixtures ---------------------------------------------------------------


def pixels(png: bytes) -> np.ndarray:
    """Decoded PNG as an array (grey: (H, W); colour: (H, W, 3))."""
    with Image.open(io.BytesIO(png)) as im:
        if im.mode == "P":
            im = im.convert("RGB")
        return np.asarray(im).copy()


def expected_gray(image: np.ndarray, scale: int) -> np.ndarray:
    """The reference rendering, written without Pillow."""
    levels = np.rint(255.0 * (1.0 - np.clip(np.asarray(image, dtype=np.float64), 0, 1)))
    return np.repeat(np.repeat(levels.astype(np.uint8), scale, axis=0), scale, axis=1)


def decode(model, z) -> np.ndarray:
    with torch.no_grad():
        out = model.decode(torch.as_tensor(z, dtype=torch.float32).reshape(1, -1))
    return out.double().numpy().reshape(8, 8)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(split="test")
    return x, y


@pytest.fixture(scope="module")
def model2():
    """A 2-D VAE trained briefly: enough for images that move with z."""
    x, _ = load_digits()
    torch.manual_seed(0)
    model = VariationalAutoencoder(64, 64, 2)
    train_model(model, x, n_epochs=5, seed=0, progress=False)
    return model


def untrained(latent_size: int, seed: int = 0) -> VariationalAutoencoder:
    torch.manual_seed(seed)
    return VariationalAutoencoder(64, 32, latent_size)


# -- render_png ------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1, 3, 24])
def test_render_png_pixels_match_reference(scale):
    g = torch.Generator().manual_seed(1)
    image = torch.rand(5, 7, generator=g, dtype=torch.float64) * 1.4 - 0.2  # some outside [0, 1]
    png = vw.render_png(image, scale=scale)
    with Image.open(io.BytesIO(png)) as im:
        assert im.mode == "L"
        assert im.size == (7 * scale, 5 * scale)
    np.testing.assert_array_equal(pixels(png), expected_gray(image.numpy(), scale))


def test_render_png_invert_false_and_numpy_input():
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


def test_encode_rgb_png_roundtrip():
    g = np.random.default_rng(0)
    rgb = g.integers(0, 256, size=(13, 17, 3), dtype=np.uint8)
    np.testing.assert_array_equal(pixels(vw._encode_rgb_png(rgb)), rgb)


# -- lerp / slerp ------------------------------------------------------------------------------


def test_slerp_orthogonal_unit_vectors_follow_the_circle():
    e1 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    e2 = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    for t in [0.1, 0.25, 0.5, 0.9]:
        want = math.cos(t * math.pi / 2) * e1 + math.sin(t * math.pi / 2) * e2
        torch.testing.assert_close(vw.slerp(e1, e2, t), want, rtol=0, atol=1e-12)
        assert abs(float(vw.slerp(e1, e2, t).norm()) - 1.0) < 1e-12


@pytest.mark.parametrize("fn", [vw.lerp, vw.slerp])
def test_interpolation_endpoints_are_exact(fn):
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(2, 5, generator=g)
    assert torch.equal(fn(a, b, 0.0), a)
    assert torch.equal(fn(a, b, 1.0), b)
    assert torch.equal(fn(a, b, 0), a)


def test_slerp_falls_back_to_lerp_for_parallel_and_zero_vectors():
    a = torch.tensor([1.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(vw.slerp(a, 3 * a, 0.3), 0.7 * a + 0.3 * 3 * a)
    torch.testing.assert_close(vw.slerp(a, -a, 0.25), 0.75 * a - 0.25 * a)
    zero = torch.zeros(2, dtype=torch.float64)
    torch.testing.assert_close(vw.slerp(zero, a, 0.5), 0.5 * a)
    torch.testing.assert_close(vw.lerp(a, zero, 0.25), 0.75 * a)


@pytest.mark.parametrize(
    "z0, z1, t, match",
    [
        (torch.zeros(2), torch.zeros(3), 0.5, "z0 and z1"),
        (torch.zeros(2), torch.zeros(2), 1.5, "t must"),
        (torch.zeros(2), torch.zeros(2), True, "t must"),
        ([0.0, 1.0], torch.zeros(2), 0.5, "z0"),
    ],
)
def test_slerp_bad_input(z0, z1, t, match):
    with pytest.raises((TypeError, ValueError), match=match):
        vw.slerp(z0, z1, t)


# -- LatentExplorer ------------------------------------------------------------------------------


def test_explorer_sliders_drive_the_decoded_image(model2):
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


def test_explorer_set_z_moves_sliders_and_keeps_values_beyond_the_range(model2):
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


def test_explorer_one_latent_dimension():
    model = untrained(1)
    ex = vw.LatentExplorer(model)
    assert len(ex.sliders) == 1 and ex.dims == (0,)
    ex.sliders[0].value = -1.5
    with torch.no_grad():
        want = model.decode(torch.tensor([[-1.5]])).double().numpy().reshape(8, 8)
    np.testing.assert_array_equal(pixels(ex.image.value), expected_gray(want, ex.scale))


def test_explorer_more_than_two_dims_dropdowns_and_hold():
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
def test_explorer_bad_input(kwargs, exc, match):
    kwargs = dict(kwargs)
    model = kwargs.pop("model", untrained(2))
    with pytest.raises(exc, match=match):
        vw.LatentExplorer(model, **kwargs)


def test_explorer_bad_set_z_and_callback():
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


# -- LatentMap -------------------------------------------------------------------------------------


def map_pixel(lm: vw.LatentMap, xy) -> tuple[int, int]:
    """(row, column) of a map-plane point, via Matplotlib's own transform."""
    height = lm._figure.canvas.get_width_height()[1]
    dx, dy = lm._axes.transData.transform(np.asarray(xy, dtype=np.float64))
    return int(math.floor(height - dy)), int(math.floor(dx))


def near(img: np.ndarray, rc, colour, radius: int = 1) -> bool:
    r, c = rc
    patch = img[max(r - radius, 0) : r + radius + 1, max(c - radius, 0) : c + radius + 1]
    return bool((patch.reshape(-1, 3) == np.array(colour)).all(axis=1).any())


def test_map_selection_shows_the_example(model2, digits):
    x, y = digits
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


def test_map_markers_at_the_mean_and_on_the_two_sigma_ellipse(model2, digits):
    x, y = digits
    lm = vw.LatentMap(model2, x, y)
    idx = 42
    lm.index_slider.value = idx
    img = pixels(lm.map_image.value)
    mean = lm.mean[idx].numpy()
    std = np.exp(0.5 * lm.log_var[idx].numpy())
    assert tuple(img[map_pixel(lm, mean)]) == vw.MAP_COLORS["selected"]
    # the 2-sigma contour crosses the axes through the mean at mean +- 2 sigma
    for offset in ([2 * std[0], 0.0], [-2 * std[0], 0.0], [0.0, 2 * std[1]], [0.0, -2 * std[1]]):
        rc = map_pixel(lm, mean + np.array(offset))
        if 0 <= rc[0] < img.shape[0] and 0 <= rc[1] < img.shape[1]:
            assert near(img, rc, vw.MAP_COLORS["ellipse"], radius=2), offset
    # nothing was re-plotted: outside the axes the picture is the cached background
    background = np.asarray(lm._background.convert("RGB"))
    left, top, right, bottom = lm._axes_box
    outside = np.ones(img.shape[:2], dtype=bool)
    outside[top:bottom, left:right] = False
    np.testing.assert_array_equal(img[outside], background[outside])


def test_map_label_controls_jump_to_the_next_example_with_that_label(model2, digits):
    x, y = digits
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


def test_map_follows_the_explorer_and_sends_the_mean(model2, digits):
    x, y = digits
    ex = vw.LatentExplorer(model2)
    lm = vw.LatentMap(model2, x, y, explorer=ex, index=3)
    ex.set_z([1.5, -2.0])
    img = pixels(lm.map_image.value)
    assert near(img, map_pixel(lm, [1.5, -2.0]), vw.MAP_COLORS["explorer"])
    ex.sliders[0].value = -1.0
    img2 = pixels(lm.map_image.value)
    assert near(img2, map_pixel(lm, [-1.0, -2.0]), vw.MAP_COLORS["explorer"])
    assert not near(img2, map_pixel(lm, [1.5, -2.0]), vw.MAP_COLORS["explorer"], radius=0)
    lm.explore_button.click()
    torch.testing.assert_close(ex.z, lm.mean[3])
    np.testing.assert_array_equal(
        pixels(ex.image.value), expected_gray(decode(model2, lm.mean[3]), ex.scale)
    )


def test_map_pca_projection_matches_sklearn(digits):
    from sklearn.decomposition import PCA

    x, y = digits
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
        ({"model": untrained(1)}, ValueError, "model"),
        ({"model": object()}, TypeError, "model"),
        ({"explorer": "explorer"}, TypeError, "explorer"),
        ({"explorer": "other"}, ValueError, "explorer"),
        ({"index": 359}, ValueError, "index"),
        ({"projection": "tsne"}, ValueError, "projection"),
        ({"dims": (0, 0)}, ValueError, "dims"),
        ({"map_size": 50}, ValueError, "map_size"),
    ],
)
def test_map_bad_input(digits, change, exc, match):
    x, y = digits
    model = untrained(2)
    kwargs = {"model": model, "x": x, "labels": y}
    kwargs.update(change)
    if kwargs.get("explorer") == "other":
        kwargs["explorer"] = vw.LatentExplorer(untrained(2, seed=5))
    with pytest.raises(exc, match=match):
        vw.LatentMap(kwargs.pop("model"), kwargs.pop("x"), kwargs.pop("labels"), **kwargs)


# -- Interpolation ---------------------------------------------------------------------------------


def test_interpolation_endpoints_and_path(model2, digits):
    x, _ = digits
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


def test_interpolation_strips_start_and_end_at_the_endpoints(model2, digits):
    x, _ = digits
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
def test_interpolation_bad_input(kwargs, exc, match):
    kwargs = dict(kwargs)
    model = kwargs.pop("model", untrained(2))
    x_a = kwargs.pop("x_a", torch.rand(64))
    x_b = kwargs.pop("x_b", torch.rand(64))
    with pytest.raises(exc, match=match):
        vw.Interpolation(model, x_a, x_b, **kwargs)


# -- PriorSampler -----------------------------------------------------------------------------------


def sampler_reference(model, n, seed, nrow, scale):
    z = torch.randn(n, model.latent_size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        images = model.decode(z).double().numpy().reshape(n, 8, 8)
    return images


def test_prior_sampler_reproducible_and_button(model2):
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
def test_prior_sampler_bad_input(kwargs, exc, match):
    kwargs = dict(kwargs)
    model = kwargs.pop("model", untrained(2))
    with pytest.raises(exc, match=match):
        vw.PriorSampler(model, **kwargs)


# -- KL explorer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mu, sigma, m, s",
    [(0.0, 1.0, 0.0, 1.0), (0.5, 0.1, -1.0, 2.0), (3.0, 4.0, 0.0, 0.3), (-4.0, 0.2, 4.0, 0.2)],
)
def test_kl_normal_mixture_single_gaussian_matches_closed_form(mu, sigma, m, s):
    kl_qp, kl_pq = vw.kl_normal_mixture(mu, sigma, [1.0], [m], [s])
    mu_, sigma_, m_, s_ = (torch.tensor(v, dtype=torch.float64) for v in (mu, sigma, m, s))
    assert abs(kl_qp - float(kl_univariate_normal(mu_, sigma_, m_, s_))) < 1e-8
    assert abs(kl_pq - float(kl_univariate_normal(m_, s_, mu_, sigma_))) < 1e-8


def quad_kls(mu, sigma, w, m, s):
    def log_p(z):
        comps = [
            math.log(wk) + float(Normal(mk, sk).log_prob(torch.tensor(z, dtype=torch.float64)))
            for wk, mk, sk in zip(w, m, s, strict=True)
        ]
        top = max(comps)
        return top + math.log(sum(math.exp(c - top) for c in comps))

    def log_q(z):
        return -0.5 * ((z - mu) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)

    lo, hi = -30.0, 30.0
    qp = integrate.quad(
        lambda z: math.exp(log_q(z)) * (log_q(z) - log_p(z)), lo, hi, points=[mu, *m], limit=200
    )[0]
    pq = integrate.quad(
        lambda z: math.exp(log_p(z)) * (log_p(z) - log_q(z)), lo, hi, points=[mu, *m], limit=200
    )[0]
    return qp, pq


@pytest.mark.parametrize("mu, sigma", [(0.0, 1.0), (2.0, 0.5), (-1.0, 2.5)])
def test_kl_explorer_matches_quadrature(mu, sigma):
    w, m, s = (0.3, 0.7), (-2.0, 1.5), (0.5, 0.8)
    kx = vw.KLExplorer(weights=w, means=m, stds=s)
    kx.mu_slider.value = mu
    kx.sigma_slider.value = sigma
    qp, pq = quad_kls(mu, sigma, w, m, s)
    assert abs(kx.kl_qp - qp) < 1e-4
    assert abs(kx.kl_pq - pq) < 1e-4
    assert f"KL(q‖p) = {kx.kl_qp:8.4f}" in kx.info.value
    assert f"KL(p‖q) = {kx.kl_pq:8.4f}" in kx.info.value


def test_kl_explorer_single_gaussian_p_and_asymmetry():
    kx = vw.KLExplorer(weights=[1.0], means=[1.0], stds=[0.5])
    kx.mu_slider.value = -0.5
    kx.sigma_slider.value = 1.5
    want_qp = kl_divergence(Normal(-0.5, 1.5), Normal(1.0, 0.5))
    want_pq = kl_divergence(Normal(1.0, 0.5), Normal(-0.5, 1.5))
    assert abs(kx.kl_qp - float(want_qp)) < 1e-4
    assert abs(kx.kl_pq - float(want_pq)) < 1e-4
    # bimodal p: q inside one mode has the smaller reverse KL, q over both the smaller forward KL
    kb = vw.KLExplorer()
    kb.mu_slider.value, kb.sigma_slider.value = 2.0, 0.6
    narrow = (kb.kl_qp, kb.kl_pq)
    kb.mu_slider.value, kb.sigma_slider.value = 0.0, 2.1
    wide = (kb.kl_qp, kb.kl_pq)
    assert narrow[0] < wide[0] and narrow[1] > wide[1]


def test_blitted_plot_equals_a_full_redraw():
    kx = vw.KLExplorer()
    kx.mu_slider.value = 1.0
    full_draws = kx._plot.full_draws
    kx.mu_slider.value = 1.5  # q moves, limits stay: blitted
    assert kx._plot.full_draws == full_draws
    blitted = kx.plot.value
    kx._plot.invalidate()
    np.testing.assert_array_equal(pixels(blitted), pixels(kx._plot.png()))
    kx.mu_slider.value = -1.0
    assert kx.plot.value != blitted


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"weights": (0.5, 0.6)}, "weights"),
        ({"weights": (1.0,)}, "same length"),
        ({"stds": (0.5, -1.0)}, "stds"),
        ({"means": (0.0, float("nan"))}, "means"),
        ({"mu": 7.0}, "mu must"),
        ({"sigma": 0.01}, "sigma must"),
        ({"sigma_range": (0.0, 1.0)}, "sigma_range"),
        ({"mu_range": (1.0, -1.0)}, "mu_range"),
        ({"n_grid": 10}, "n_grid"),
    ],
)
def test_kl_explorer_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vw.KLExplorer(**kwargs)


def test_kl_normal_mixture_bad_input():
    with pytest.raises(ValueError, match="sigma"):
        vw.kl_normal_mixture(0.0, 0.0, [1.0], [0.0], [1.0])
    with pytest.raises(ValueError, match="mu"):
        vw.kl_normal_mixture(float("inf"), 1.0, [1.0], [0.0], [1.0])


# -- ELBO gap explorer --------------------------------------------------------------------------


def elbo_by_quadrature(model, x, m, s):
    """E_q[log p(x, z)] + H(q), the expectation by 40-point Gauss-Hermite (exact here)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    z = torch.tensor(m + s * nodes, dtype=torch.float64)
    expected = float((model.log_joint(x, z) * torch.tensor(weights)).sum()) / math.sqrt(2 * math.pi)
    return expected + 0.5 * math.log(2 * math.pi * math.e * s**2)


def log_evidence_by_quadrature(model, x):
    def integrand(z):
        return math.exp(float(model.log_joint(x, torch.tensor([z], dtype=torch.float64))[0]))

    return math.log(integrate.quad(integrand, -20, 20, points=[float(x.mean())], limit=200)[0])


@pytest.mark.parametrize("m, s", [(0.0, 1.0), (1.3, 0.2), (-1.0, 1.7)])
def test_elbo_gap_identity(m, s):
    model = ConjugateGaussianModel(mu0=0.5, sigma0=1.5, sigma=0.8)
    x = torch.tensor([1.2, 0.4, 2.0, 1.1], dtype=torch.float64)
    ex = vw.ELBOGapExplorer(model, x, mu_range=(-3.0, 3.0), sigma_range=(0.1, 3.0))
    ex.mu_slider.value = m
    ex.sigma_slider.value = s
    assert abs(ex.elbo + ex.kl - ex.log_evidence) < 1e-9
    # ConjugateGaussianModel.log_joint keeps sigma as a float32 number (0.8 is not exact
    # in float32): the quadrature references agree to about 1e-8, hence 1e-6
    assert abs(ex.log_evidence - log_evidence_by_quadrature(model, x)) < 1e-6
    assert abs(ex.elbo - elbo_by_quadrature(model, x, m, s)) < 1e-6
    post = model.posterior(x)
    want_kl = float(
        kl_divergence(
            Normal(torch.tensor(m, dtype=torch.float64), torch.tensor(s, dtype=torch.float64)), post
        )
    )
    assert abs(ex.kl - want_kl) < 1e-10
    assert f"ELBO {ex.elbo:.4f} + KL(q‖p(z|x)) {ex.kl:.4f}" in ex.info.value
    # the stacked bar: ELBO then KL on top, reaching log p(x)
    top = ex._kl_bar.get_y() + ex._kl_bar.get_height()
    assert abs(top - ex.log_evidence) < 1e-9
    assert abs(ex._elbo_bar.get_y() + ex._elbo_bar.get_height() - ex.elbo) < 1e-9


def test_elbo_gap_closes_at_the_posterior():
    model = ConjugateGaussianModel(0.0, 1.0, 1.0)
    x = torch.tensor([0.5, 1.5, 1.0])
    ex = vw.ELBOGapExplorer(model, x)
    m, s = ex.posterior
    ex.mu_slider.value = m
    ex.sigma_slider.value = s
    assert abs(ex.kl) < 1e-12
    assert abs(ex.elbo - ex.log_evidence) < 1e-12
    blitted = ex.plot.value
    ex._plot.invalidate()
    np.testing.assert_array_equal(pixels(blitted), pixels(ex._plot.png()))


@pytest.mark.parametrize(
    "model, x, kwargs, exc, match",
    [
        ("model", torch.ones(3), {}, TypeError, "model"),
        (None, torch.ones(2, 3), {}, ValueError, "x must"),
        (None, torch.ones(0), {}, ValueError, "x must not be empty"),
        (None, torch.ones(3), {"mu": 100.0}, ValueError, "mu must"),
        (None, torch.ones(3), {"sigma_range": (-1.0, 1.0)}, ValueError, "sigma_range"),
    ],
)
def test_elbo_gap_bad_input(model, x, kwargs, exc, match):
    model = ConjugateGaussianModel() if model is None else model
    with pytest.raises(exc, match=match):
        vw.ELBOGapExplorer(model, x, **kwargs)


# -- estimator variance explorer ---------------------------------------------------------------------


def test_estimator_explorer_closed_forms_and_samples():
    k, mu, sigma = 0.5, 1.5, 0.8
    ev = vw.EstimatorVarianceExplorer(k=k, mu=mu, sigma=1.0, n_samples=200, seed=3)
    ev.sigma_slider.value = sigma
    ev.n_slider.value = 5000
    a = mu - k
    want = {
        "score": {
            "mu": a**4 / sigma**2 + 14 * a**2 + 15 * sigma**2,
            "sigma": 2 * a**4 / sigma**2 + 60 * a**2 + 74 * sigma**2,
        },
        "pathwise": {"mu": 4 * sigma**2, "sigma": 4 * a**2 + 8 * sigma**2},
    }
    for est in want:
        for p in ("mu", "sigma"):
            assert ev.closed_form[est][p] == pytest.approx(want[est][p], rel=1e-12)
    assert ev.true_gradient == pytest.approx({"mu": 2 * a, "sigma": 2 * sigma})
    # both estimators used the same draws: recover z from the pathwise estimate 2 (z - k)
    z = k + ev.grad_pathwise["mu"] / 2
    torch.testing.assert_close(ev.grad_score["mu"], (z - k) ** 2 * (z - mu) / sigma**2)
    assert ev.grad_score["mu"].shape == (5000,)
    # pathwise estimates are Gaussian: mean within 5 standard errors, variance within
    # 5 standard errors of the sample variance (sd of s^2 is var * sqrt(2 / (n - 1)))
    g = ev.grad_pathwise["mu"]
    assert abs(float(g.mean()) - 2 * a) < 5 * math.sqrt(want["pathwise"]["mu"] / 5000)
    assert abs(float(g.var()) - want["pathwise"]["mu"]) < 5 * want["pathwise"]["mu"] * math.sqrt(
        2 / 4999
    )
    # score-function estimates: unbiased, larger variance
    gs = ev.grad_score["mu"]
    assert abs(float(gs.mean()) - 2 * a) < 5 * math.sqrt(want["score"]["mu"] / 5000)
    assert float(gs.var()) > 3 * float(g.var())
    # histograms are densities over their bins (clipped values land in the end bins)
    for stairs in (ev._score_stairs, ev._path_stairs):
        data = stairs.get_data()
        values, edges = data.values, data.edges
        assert float((values * np.diff(edges)).sum()) == pytest.approx(1.0, rel=1e-12)
    assert f"{want['pathwise']['mu']:8.3f}" in ev.info.value
    assert "(n = 5000)" in ev.info.value


def test_estimator_explorer_reproducible_and_blits():
    ev = vw.EstimatorVarianceExplorer(seed=1)
    ev2 = vw.EstimatorVarianceExplorer(seed=1)
    assert ev.plot.value == ev2.plot.value
    ev.n_slider.value = 210
    blitted = ev.plot.value
    ev._plot.invalidate()
    np.testing.assert_array_equal(pixels(blitted), pixels(ev._plot.png()))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sigma": 5.0}, "sigma must"),
        ({"n_range": (1, 10)}, "n_range"),
        ({"n_samples": 6000}, "n_samples"),
        ({"k": float("nan")}, "k must"),
        ({"mu": "1"}, "mu must"),
        ({"seed": -2}, "seed"),
    ],
)
def test_estimator_explorer_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vw.EstimatorVarianceExplorer(**kwargs)


# -- beta explorer ----------------------------------------------------------------------------------


def sweep(n=6, betas=(4.0, 0.5, 1.0)):
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


def test_beta_explorer_shows_the_chosen_beta():
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


def test_beta_explorer_accepts_image_stacks():
    results = sweep(n=4)
    for r in results:
        r["reconstructions"] = r["reconstructions"].reshape(4, 8, 8)
    bx = vw.BetaExplorer(results, n_show=2)
    assert bx.image_shape == (8, 8) and bx.n_show == 2


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: [], ValueError, "results must not be empty"),
        (lambda: "results", TypeError, "results"),
        (lambda: [1, 2], TypeError, r"results\[0\]"),
        (lambda: [{k: v for k, v in sweep()[0].items() if k != "rate"}], ValueError, "rate"),
        (
            lambda: [sweep()[0], {**sweep()[1], "reconstructions": torch.rand(3, 64)}],
            ValueError,
            r"results\[1\]\['reconstructions'\]",
        ),
        (lambda: [sweep()[0], {**sweep()[1], "beta": 4.0}], ValueError, "different betas"),
        (lambda: [{**sweep()[0], "distortion": float("nan")}], ValueError, "distortion"),
        (lambda: [{**sweep()[0], "beta": -1.0}], ValueError, "beta"),
        (lambda: [{**sweep()[0], "reconstructions": torch.rand(4, 10)}], ValueError, "image_shape"),
    ],
)
def test_beta_explorer_bad_input(make, exc, match):
    with pytest.raises(exc, match=match):
        vw.BetaExplorer(make())


# -- display: mime bundle with a static fallback ---------------------------------------------------


@pytest.fixture(scope="module")
def all_widgets(model2, digits):
    x, y = digits
    ex = vw.LatentExplorer(model2)
    return {
        "LatentExplorer(latent_size=2)": ex,
        "LatentMap(n=359, latent_size=2)": vw.LatentMap(model2, x, y, explorer=ex),
        "Interpolation(latent_size=2, steps=8)": vw.Interpolation(model2, x[0], x[1]),
        "PriorSampler(n=16, latent_size=2)": vw.PriorSampler(model2),
        "KLExplorer(components=2)": vw.KLExplorer(),
        "ELBOGapExplorer(n=3)": vw.ELBOGapExplorer(ConjugateGaussianModel(), torch.ones(3)),
        "EstimatorVarianceExplorer(k=0, mu=1)": vw.EstimatorVarianceExplorer(),
        "BetaExplorer(n_betas=3)": vw.BetaExplorer(sweep()),
    }


@pytest.mark.parametrize(
    "name",
    [
        "LatentExplorer(latent_size=2)",
        "LatentMap(n=359, latent_size=2)",
        "Interpolation(latent_size=2, steps=8)",
        "PriorSampler(n=16, latent_size=2)",
        "KLExplorer(components=2)",
        "ELBOGapExplorer(n=3)",
        "EstimatorVarianceExplorer(k=0, mu=1)",
        "BetaExplorer(n_betas=3)",
    ],
)
def test_mimebundle_has_widget_view_text_and_png(all_widgets, name):
    import ipywidgets

    w = all_widgets[name]
    assert isinstance(w.widget, ipywidgets.Box)
    assert w.widget.layout.width and w.widget.layout.width.endswith("px")
    data, metadata = w._repr_mimebundle_()
    assert set(data) == {WIDGET_VIEW, "text/plain", "image/png"}
    assert data[WIDGET_VIEW]["model_id"] == w.widget.model_id
    assert data["text/plain"] == name == repr(w)
    png = base64.b64decode(data["image/png"])
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG"
        assert metadata["image/png"] == {"width": im.width, "height": im.height}
    only_text, _ = w._repr_mimebundle_(include={"text/plain"})
    assert set(only_text) == {"text/plain"}


def test_static_png_shows_the_current_picture(model2):
    ex = vw.LatentExplorer(model2)
    ex.sliders[0].value = 1.0
    data, _ = ex._repr_mimebundle_()
    static = pixels(base64.b64decode(data["image/png"]))
    np.testing.assert_array_equal(static[..., 0], pixels(ex.image.value))


def test_ipython_display_formatter_uses_the_bundle(model2):
    from IPython.core.formatters import DisplayFormatter

    ex = vw.LatentExplorer(model2)
    data, metadata = DisplayFormatter().format(ex)
    assert data["text/plain"] == "LatentExplorer(latent_size=2)"
    assert WIDGET_VIEW in data and "image/png" in data


def test_callbacks_print_nothing(model2, digits, capsys):
    x, y = digits
    ex = vw.LatentExplorer(model2)
    lm = vw.LatentMap(model2, x, y, explorer=ex)
    ex.sliders[0].value = 0.7
    lm.index_slider.value = 9
    lm.next_button.click()
    kx = vw.KLExplorer()
    kx.sigma_slider.value = 2.0
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_nbconvert_html_falls_back_to_the_png(model2):
    """Without saved widget state, nbconvert's HTML shows the bundle's PNG."""
    import nbformat
    from nbconvert import HTMLExporter

    ex = vw.LatentExplorer(model2)
    data, metadata = ex._repr_mimebundle_()
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("explorer", execution_count=1)
    cell.outputs = [
        nbformat.v4.new_output("execute_result", data=data, metadata=metadata, execution_count=1)
    ]
    nb.cells = [cell]
    html, _ = HTMLExporter().from_notebook_node(nb)
    assert f'src="data:image/png;base64,{data["image/png"]}"' in html
