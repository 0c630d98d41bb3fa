"""Plotting: pure functions that draw on a Matplotlib ``Axes`` you pass in.

Nothing here creates global state or touches files at import. The one
function with a side effect is :func:`save_figure`, which writes
``figures/NAME.png`` in the course repository, and only when the picture changed.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np
import torch

from ._validate import (
    as_path,
    check_finite_float,
    check_nonnegative_int,
    check_positive_float,
    check_positive_int,
)

__all__ = [
    "figures_dir",
    "save_figure",
    "image_grid",
    "plot_image_grid",
    "plot_training_curves",
    "plot_gaussian_ellipse",
    "plot_latent_scatter",
    "plot_density_1d",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

#: :func:`save_figure` keeps the existing file when the new picture has the same size
#: and every pixel is within this many levels (of 255, per RGBA channel) of the old one...
PIXEL_TOLERANCE = 8
#: ...apart from at most this fraction of its pixels. Both absorb anti-aliasing noise:
#: the same figure drawn from numbers that differ in the last bits (e.g. sums in another
#: order with two threads) moves edge pixels by a level or two, rarely more; a changed
#: figure (another curve, label, digit or colour) moves hundreds of pixels by far more.
CHANGED_FRACTION = 1e-4


def figures_dir(start: str | Path | None = None) -> Path:
    """The course's ``figures/`` folder.

    Found by walking up from ``start`` (default: the current directory, which
    is ``notebooks/`` when a notebook runs) to the first folder that holds a
    ``pyproject.toml`` or ``figures/``; falls back to ``start/figures``.
    """
    here = Path.cwd() if start is None else as_path("start", start)
    here = here.resolve()
    for folder in (here, *here.parents):
        if (folder / "figures").is_dir() or (folder / "pyproject.toml").is_file():
            return folder / "figures"
    return here / "figures"


def _same_picture(png: bytes, path: Path) -> bool:
    """Whether ``png`` shows what the file at ``path`` shows, up to anti-aliasing noise."""
    from PIL import Image

    if not path.is_file():
        return False
    old_png = path.read_bytes()
    if old_png == png:
        return True
    try:
        with Image.open(io.BytesIO(old_png)) as old, Image.open(io.BytesIO(png)) as new:
            a = np.asarray(old.convert("RGBA"), dtype=np.int16)
            b = np.asarray(new.convert("RGBA"), dtype=np.int16)
    except (OSError, ValueError):  # the old file is not a readable PNG: replace it
        return False
    if a.shape != b.shape:
        return False
    off = (np.abs(a - b).max(axis=-1) > PIXEL_TOLERANCE).mean()
    return bool(off <= CHANGED_FRACTION)


def save_figure(fig, name: str, *, directory: str | Path | None = None, dpi: int = 110) -> Path:
    """Write ``fig`` to ``figures/NAME.png`` if the picture changed, and return the path.

    The PNG carries no timestamp or software metadata. An existing file is kept
    (not rewritten) when the new rendering is byte-identical, or decodes to the
    same size with every pixel within :data:`PIXEL_TOLERANCE` levels of the old one
    apart from at most a :data:`CHANGED_FRACTION` of the pixels: re-running a
    notebook, or its tests, then changes no tracked file, while a figure whose
    content changed is written.

    Args:
        fig: a Matplotlib ``Figure``.
        name: file stem, letters, digits, ``_``, ``-`` and ``.`` only (no folders).
        directory: override the folder (default :func:`figures_dir`).
        dpi: resolution.
    """
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name must be a plain file stem like 'kl_fits', got {name!r}")
    if name.endswith(".png"):
        name = name[:-4]
    folder = as_path("directory", directory) if directory is not None else figures_dir()
    dpi = check_positive_int("dpi", dpi)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    png = buffer.getvalue()
    if not _same_picture(png, path):
        path.write_bytes(png)
    return path


def _check_ax(name: str, ax, method: str = "plot"):
    """A matplotlib ``Axes`` (anything with ``method``), or a TypeError naming ``name``."""
    if not callable(getattr(ax, method, None)):
        raise TypeError(f"{name} must be a matplotlib Axes, got {type(ax).__name__}")
    return ax


def _to_numpy(images, name: str = "images", *, finite: bool = True) -> np.ndarray:
    """A float64 array from a tensor, array or nested sequence of numbers; NaN/inf refused."""
    if isinstance(images, torch.Tensor):
        if images.device.type == "meta":
            raise ValueError(f"{name} is on the meta device: it has no values to plot")
        images = images.detach().cpu().to(torch.float64).numpy()
    try:
        arr = np.asarray(images, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} must be a tensor, array or sequence of numbers, got {type(images).__name__}"
        ) from err
    if finite and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains {int((~np.isfinite(arr)).sum())} NaN or infinite "
                         "value(s)")
    return arr


def image_grid(images, *, nrow: int | None = None, image_shape: tuple[int, int] | None = None,
               pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile ``images`` into one 2-D array.

    Args:
        images: ``(N, H*W)`` flat or ``(N, H, W)`` images.
        nrow: images per row (default ``ceil(sqrt(N))``).
        image_shape: ``(H, W)`` for flat images (default: square).
        pad: pixels between tiles.
        pad_value: value of the padding.

    Returns:
        ``(rows*(H+pad)-pad, cols*(W+pad)-pad)`` array.
    """
    if nrow is not None:
        check_positive_int("nrow", nrow)
    check_nonnegative_int("pad", pad)
    check_finite_float("pad_value", pad_value)
    arr = _to_numpy(images)
    if arr.ndim == 2:
        n, d = arr.shape
        if image_shape is None:
            side = int(round(math.sqrt(d)))
            if side * side != d:
                raise ValueError(f"images have {d} pixels: pass image_shape=(H, W)")
            image_shape = (side, side)
        if (not isinstance(image_shape, (tuple, list)) or len(image_shape) != 2
                or not all(isinstance(s, int) and s > 0 for s in image_shape)):
            raise ValueError(f"image_shape must be two positive ints (H, W), got {image_shape!r}")
        if image_shape[0] * image_shape[1] != d:
            raise ValueError(f"image_shape {image_shape} does not hold {d} pixels")
        arr = arr.reshape(n, *image_shape)
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise ValueError(f"images must be (N, H*W) or (N, H, W) with N > 0, got {arr.shape}")
    n, h, w = arr.shape
    cols = nrow or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), pad_value)
    for k in range(n):
        r, c = divmod(k, cols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = arr[k]
    return out


def plot_image_grid(ax, images, *, nrow: int | None = None, image_shape=None, title=None,
                    cmap: str = "gray_r", vmin: float = 0.0, vmax: float = 1.0):
    """Show ``images`` as a grid on ``ax`` (nearest-neighbour, so pixels stay crisp)."""
    _check_ax("ax", ax, "imshow")
    grid = image_grid(images, nrow=nrow, image_shape=image_shape, pad_value=vmin)
    ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def plot_training_curves(axes, history, *, label: str | None = None):
    """Draw a :class:`~vi_helpers.train.History` on three axes: ELBO, reconstruction, KL.

    A plain list of losses (the seed's return value, or a ``History`` without the
    ELBO terms) is drawn as the loss on the first axis; the other two then say
    that the terms were not recorded.

    Args:
        axes: a sequence of three ``Axes``.
        history: the value returned by ``train_model``, or a list of per-epoch losses.
        label: legend label for this run.
    """
    if not hasattr(axes, "__len__") or len(axes) != 3:
        raise ValueError(f"axes must hold 3 Axes (ELBO, reconstruction, KL), got {axes!r}")
    if isinstance(history, (str, bytes)) or not hasattr(history, "__len__"):
        raise TypeError(f"history must be the History from train_model or a list of losses, "
                        f"got {type(history).__name__}")
    losses = _to_numpy(list(history), "history", finite=False).reshape(-1)
    epochs = np.arange(1, len(losses) + 1)
    ax_elbo, ax_rec, ax_kl = (_check_ax(f"axes[{i}]", ax) for i, ax in enumerate(axes))
    if len(getattr(history, "elbo", ())) != len(losses) or not len(losses):
        ax_elbo.plot(epochs, losses, label=label)
        ax_elbo.set(title="training loss (per example)", xlabel="epoch")
        for ax in (ax_rec, ax_kl):
            ax.set(title="not recorded (a list of losses has no ELBO terms)")
        if label:
            ax_elbo.legend(fontsize="small")
        return axes
    ax_elbo.plot(epochs, history.elbo, label=f"train{' ' + label if label else ''}")
    if history.val_elbo:
        ax_elbo.plot(epochs, history.val_elbo, "--", label=f"held-out{' ' + label if label else ''}")
    ax_elbo.set(title="ELBO (nats / image)", xlabel="epoch")
    ax_rec.plot(epochs, history.recon, label=label)
    ax_rec.set(title="reconstruction term", xlabel="epoch")
    ax_kl.plot(epochs, history.kl, label=label)
    ax_kl.set(title="KL(q(z|x) || p(z)) (nats)", xlabel="epoch")
    ax_elbo.legend(fontsize="small")
    return axes


def plot_gaussian_ellipse(ax, mu, cov, *, n_std: float = 2.0, **kwargs):
    """Draw the ``n_std`` contour of a 2-D Gaussian with mean ``mu (2,)`` and ``cov (2, 2)``.

    A diagonal posterior passes ``cov = diag(exp(log_var))``.
    """
    from matplotlib.patches import Ellipse

    check_positive_float("n_std", n_std)
    _check_ax("ax", ax, "add_patch")
    mu = _to_numpy(mu, "mu").reshape(-1)
    cov = _to_numpy(cov, "cov")
    if mu.shape != (2,) or cov.shape != (2, 2):
        raise ValueError(f"mu must be (2,) and cov (2, 2), got {mu.shape} and {cov.shape}")
    if abs(cov[0, 1] - cov[1, 0]) > 1e-8 * max(1.0, np.abs(cov).max()):
        raise ValueError(f"cov must be symmetric, got off-diagonal entries {cov[0, 1]:.4g} "
                         f"and {cov[1, 0]:.4g}")
    evals, evecs = np.linalg.eigh(cov)
    if evals.min() < 0:
        raise ValueError("cov must be positive semi-definite")
    angle = math.degrees(math.atan2(evecs[1, 1], evecs[0, 1]))
    width, height = 2 * n_std * np.sqrt(evals[::-1])
    kwargs.setdefault("fill", False)
    patch = Ellipse(xy=mu, width=width, height=height, angle=angle, **kwargs)
    ax.add_patch(patch)
    return patch


def plot_latent_scatter(ax, z, labels=None, *, s: float = 6.0, cmap: str = "tab10",
                        colorbar: bool = True):
    """Scatter 2-D latent codes ``z (N, 2)`` coloured by integer ``labels (N,)``."""
    _check_ax("ax", ax, "scatter")
    z = _to_numpy(z, "z")
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"z must be (N, 2), got {z.shape}")
    c = None if labels is None else _to_numpy(labels, "labels").reshape(-1)
    if c is not None and c.shape[0] != z.shape[0]:
        raise ValueError(f"labels must have one entry per row of z ({z.shape[0]}), "
                         f"got {c.shape[0]}")
    sc = ax.scatter(z[:, 0], z[:, 1], c=c, s=s, cmap=cmap if c is not None else None,
                    vmin=-0.5 if c is not None else None, vmax=9.5 if c is not None else None)
    ax.set(xlabel="$z_1$", ylabel="$z_2$")
    if colorbar and c is not None:
        ax.figure.colorbar(sc, ax=ax, ticks=range(10), label="label")
    return sc


def plot_density_1d(ax, grid, density, *, label=None, fill: bool = False, **kwargs):
    """Plot a 1-D density ``density(grid)`` (tensors or arrays of the same length)."""
    _check_ax("ax", ax)
    g, d = _to_numpy(grid, "grid"), _to_numpy(density, "density")
    if g.shape != d.shape or g.ndim != 1:
        raise ValueError(f"grid and density must be 1-D of equal length, got {g.shape}, {d.shape}")
    (line,) = ax.plot(g, d, label=label, **kwargs)
    if fill:
        ax.fill_between(g, d, alpha=0.2, color=line.get_color())
    return line
