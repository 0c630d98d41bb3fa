"""Tests for vi_helpers.plots (Agg backend, set in conftest; figures closed after each test)."""

from __future__ import annotations

import io
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from vi_helpers.plots import (
    figures_dir,
    image_grid,
    plot_density_1d,
    plot_gaussian_ellipse,
    plot_image_grid,
    plot_latent_scatter,
    plot_training_curves,
    save_figure,
)
from vi_helpers.train import History


def _figure():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1, 2], [1, 0, 1])
    ax.set_title("test")
    return fig


# ------------------------------------------------------------------------- save_figure
def test_save_figure_to_directory_is_byte_identical(tmp_path):
    fig = _figure()
    folder = tmp_path / "figures"
    path = save_figure(fig, "01_test", directory=folder)
    assert path == folder / "01_test.png" and path.is_file()
    first = path.read_bytes()
    assert first.startswith(b"\x89PNG")
    assert b"Software" not in first and b"matplotlib" not in first.lower()
    assert save_figure(fig, "01_test.png", directory=folder) == path  # ".png" is dropped
    assert path.read_bytes() == first
    assert sorted(p.name for p in folder.iterdir()) == ["01_test.png"]


def _curve(shift=0.0, title="test"):
    fig, ax = plt.subplots(figsize=(2, 2))
    t = np.linspace(0, 3, 50)
    ax.plot(t, np.sin(t) + shift)
    ax.set_title(title)
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def test_save_figure_keeps_the_file_for_a_re_render_with_anti_aliasing_noise(tmp_path):
    path = save_figure(_curve(), "noise", directory=tmp_path)
    before = path.read_bytes()
    noisy = _curve(shift=5e-5)  # about 0.005 pixels: what float noise in the data does
    assert _png(noisy) != before  # the bytes differ, so keeping the file is a decision
    save_figure(noisy, "noise", directory=tmp_path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("change", ["curve", "title"])
def test_save_figure_writes_a_changed_figure(tmp_path, change):
    path = save_figure(_curve(), "changed", directory=tmp_path)
    before = path.read_bytes()
    fig = _curve(shift=0.3) if change == "curve" else _curve(title="tesT")
    save_figure(fig, "changed", directory=tmp_path)
    assert path.read_bytes() != before and path.read_bytes() == _png(fig)


def test_save_figure_replaces_an_unreadable_or_resized_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"not a png")
    save_figure(_curve(), "broken", directory=tmp_path)
    assert path.read_bytes() == _png(_curve())
    fig = _curve()
    fig.set_size_inches(3, 2)
    save_figure(fig, "broken", directory=tmp_path)
    assert path.read_bytes() == _png(fig)


def test_save_figure_finds_repo_root_from_cwd(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    monkeypatch.chdir(notebooks)
    assert figures_dir() == tmp_path.resolve() / "figures"
    path = save_figure(_figure(), "02_found")
    assert path == tmp_path.resolve() / "figures" / "02_found.png"
    assert path.is_file()
    assert not (notebooks / "figures").exists()


def test_figures_dir_prefers_existing_figures_folder(tmp_path):
    (tmp_path / "figures").mkdir()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert figures_dir(deep) == tmp_path.resolve() / "figures"


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "with space", "-dash", "é"])
def test_save_figure_rejects_bad_names(tmp_path, name):
    with pytest.raises(ValueError, match="name"):
        save_figure(_figure(), name, directory=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_save_figure_rejects_non_figures(tmp_path):
    with pytest.raises(TypeError, match="fig"):
        save_figure(plt.subplots()[1], "x", directory=tmp_path)
    with pytest.raises(ValueError, match="name"):
        save_figure(_figure(), 3, directory=tmp_path)


# -------------------------------------------------------------------------- image_grid
def test_image_grid_shape_and_tiles():
    images = torch.arange(5 * 64, dtype=torch.float32).reshape(5, 64)
    grid = image_grid(images, nrow=3, pad=1, pad_value=-1.0)
    assert grid.shape == (2 * 9 - 1, 3 * 9 - 1)
    for k in range(5):
        r, c = divmod(k, 3)
        tile = grid[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8]
        np.testing.assert_array_equal(tile, images[k].reshape(8, 8).numpy())
    # padding rows/columns and the unused sixth slot hold pad_value
    assert (grid[8, :] == -1).all() and (grid[:, 8] == -1).all() and (grid[:, 17] == -1).all()
    assert (grid[9:, 18:] == -1).all()


def test_image_grid_defaults_and_3d_input():
    images = np.random.default_rng(0).random((4, 3, 5))
    grid = image_grid(images, pad=0)  # ceil(sqrt(4)) = 2 columns
    assert grid.shape == (6, 10)
    np.testing.assert_array_equal(grid[3:, 5:], images[3])
    flat = image_grid(images.reshape(4, 15), image_shape=(3, 5), pad=0)
    np.testing.assert_array_equal(flat, grid)


@pytest.mark.parametrize(
    "images, kwargs, name",
    [
        (np.zeros((2, 63)), {}, "image_shape"),
        (np.zeros((2, 64)), {"image_shape": (4, 4)}, "image_shape"),
        (np.zeros((0, 64)), {}, "images"),
        (np.zeros((2, 2, 2, 2)), {}, "images"),
    ],
)
def test_image_grid_bad_inputs(images, kwargs, name):
    with pytest.raises(ValueError, match=name):
        image_grid(images, **kwargs)


def test_plot_image_grid_draws_the_grid():
    fig, ax = plt.subplots()
    images = torch.rand(6, 64, generator=torch.Generator().manual_seed(0))
    plot_image_grid(ax, images, nrow=3, title="digits")
    shown = np.asarray(ax.images[0].get_array())
    np.testing.assert_allclose(shown, image_grid(images, nrow=3, pad_value=0.0))
    assert ax.get_title() == "digits" and list(ax.get_xticks()) == []


# --------------------------------------------------------------------- Gaussian ellipse
@pytest.mark.parametrize("angle_deg", [0.0, 30.0, 75.0, 120.0])
@pytest.mark.parametrize("n_std", [1.0, 2.0])
def test_gaussian_ellipse_geometry(angle_deg, n_std):
    t = math.radians(angle_deg)
    R = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    cov = R @ np.diag([4.0, 0.25]) @ R.T  # major sd 2 along angle_deg, minor sd 0.5
    fig, ax = plt.subplots()
    patch = plot_gaussian_ellipse(ax, torch.tensor([1.0, -2.0]), torch.tensor(cov), n_std=n_std)
    assert patch in ax.patches
    assert patch.width == pytest.approx(2 * n_std * 2.0)
    assert patch.height == pytest.approx(2 * n_std * 0.5)
    assert (patch.angle - angle_deg) % 180 == pytest.approx(0.0, abs=1e-9) or (
        patch.angle - angle_deg
    ) % 180 == pytest.approx(180.0, abs=1e-9)
    assert tuple(patch.center) == pytest.approx((1.0, -2.0))
    assert patch.get_fill() is False


def test_gaussian_ellipse_diagonal_covariance():
    fig, ax = plt.subplots()
    patch = plot_gaussian_ellipse(ax, [0.0, 0.0], np.diag([1.0, 9.0]), n_std=1.0)
    assert (patch.width, patch.height) == pytest.approx((6.0, 2.0))
    assert patch.angle % 180 == pytest.approx(90.0)


@pytest.mark.parametrize(
    "mu, cov, name",
    [
        ([0.0, 0.0, 0.0], np.eye(2), "mu"),
        ([0.0, 0.0], np.eye(3), "cov"),
        ([0.0, 0.0], np.array([[1.0, 0.0], [0.0, -1.0]]), "cov"),
    ],
)
def test_gaussian_ellipse_bad_inputs(mu, cov, name):
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match=name):
        plot_gaussian_ellipse(ax, mu, cov)


# ------------------------------------------------------------------- other plot helpers
def _history():
    h = History()
    for e in range(3):
        h.append(10.0 - e)
        h.elbo.append(-10.0 + e)
        h.recon.append(8.0 - e)
        h.kl.append(2.0)
        h.val_elbo.append(-11.0 + e)
    return h


def test_plot_training_curves_draws_history():
    fig, axes = plt.subplots(1, 3)
    plot_training_curves(axes, _history(), label="run")
    elbo_lines = axes[0].get_lines()
    assert len(elbo_lines) == 2  # train and held-out
    np.testing.assert_array_equal(elbo_lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(elbo_lines[0].get_ydata(), [-10.0, -9.0, -8.0])
    np.testing.assert_array_equal(elbo_lines[1].get_ydata(), [-11.0, -10.0, -9.0])
    np.testing.assert_array_equal(axes[2].get_lines()[0].get_ydata(), [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="axes"):
        plot_training_curves(axes[:2], _history())


def test_plot_latent_scatter():
    fig, ax = plt.subplots()
    z = torch.randn(20, 2, generator=torch.Generator().manual_seed(0))
    sc = plot_latent_scatter(ax, z, torch.arange(20) % 10)
    np.testing.assert_allclose(sc.get_offsets(), z.numpy(), rtol=1e-6)
    assert len(fig.axes) == 2  # the colorbar
    with pytest.raises(ValueError, match="z"):
        plot_latent_scatter(ax, torch.zeros(5, 3))


def test_plot_density_1d():
    fig, ax = plt.subplots()
    grid = torch.linspace(-3, 3, 50)
    density = torch.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi)
    line = plot_density_1d(ax, grid, density, label="N(0,1)", fill=True)
    np.testing.assert_allclose(line.get_ydata(), density.numpy(), rtol=1e-6)
    assert len(ax.collections) == 1
    with pytest.raises(ValueError, match="grid"):
        plot_density_1d(ax, grid, density[:-1])


# -- issue 11: plots name what the user passed ---------------------------------------------------
def test_plot_training_curves_draws_a_plain_list_of_losses():
    """The seed's train_model returns a list; plot_training_curves raised AttributeError on it."""
    fig, axes = plt.subplots(1, 3)
    plot_training_curves(axes, [3.0, 2.0, 1.5], label="seed")
    (line,) = axes[0].get_lines()
    assert list(line.get_ydata()) == [3.0, 2.0, 1.5]
    assert "not recorded" in axes[1].get_title()
    with pytest.raises(TypeError, match="history"):
        plot_training_curves(axes, "loss")
    plt.close(fig)


def test_plot_latent_scatter_checks_the_labels_length():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match=r"labels must have one entry per row of z \(4\), got 3"):
        plot_latent_scatter(ax, torch.zeros(4, 2), torch.tensor([0, 1, 2]))
    plt.close(fig)


def test_nan_images_and_non_symmetric_covariances_are_refused():
    with pytest.raises(ValueError, match="images contains 1 NaN"):
        image_grid(torch.tensor([[0.0, math.nan, 0.5, 1.0]]))
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="cov must be symmetric"):
        plot_gaussian_ellipse(ax, torch.zeros(2), torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        plot_gaussian_ellipse(None, torch.zeros(2), torch.eye(2))
    plt.close(fig)
