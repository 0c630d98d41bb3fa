r"""The latent map: encoder means of a data set, one posterior ellipse, the explorer's ``z``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image as PILImage
from PIL import ImageDraw

from .._validate import (
    check_choice,
    check_decoder_model,
    check_nonnegative_int,
    check_positive_int,
    check_tensor,
)
from ._aggplot import new_figure
from ._base import Decoder, InteractiveWidget, fmt_vec, html, image_widget, info_widget
from ._png import encode_png, png_size, render_png, resolve_scale
from .latent_explorer import LatentExplorer

#: Marker colours of the map; they get the last palette entries (see ``_build_background``).
MAP_COLORS = {
    "selected": (0, 0, 0),
    "outline": (255, 255, 255),
    "ellipse": (220, 20, 60),
    "explorer": (255, 0, 255),
}
_ELLIPSE_POINTS = 72


class LatentMap(InteractiveWidget):
    r"""Encoder means of a data set, coloured by label, with one example picked out.

    The scatter is drawn **once** with Matplotlib into a cached background. An
    update only draws markers onto a copy of it with Pillow, at pixel positions
    given by the axes' (affine) data-to-pixel transform computed once:

    * a black dot at the selected example's mean :math:`\mu(x_i)`;
    * its posterior ellipse at 2 standard deviations, the contour of
      :math:`\mathcal N(\mu(x_i), \mathrm{diag}\,e^{\log\sigma^2(x_i)})`;
    * a magenta cross at the ``explorer``'s current ``z`` (if one is linked).

    Beside the map: the original :math:`x_i` and its reconstruction
    :math:`\mathbb E[x\mid z=\mu(x_i)]` (the decoder at the mean, no sampling).

    Picking an example: the ``index`` slider, or the ``label`` dropdown and its
    "next" button, which jump to the next example (after the current one,
    wrapping around) with that label. "explore this z" sends the example's mean
    to the explorer.

    The map is a snapshot: means, log-variances and reconstructions are those of
    the model when the map was built (build a new map after training more).

    For ``L > 2`` the map shows a 2-D projection: ``projection="dims"`` (default)
    the coordinates ``dims``, ``projection="pca"`` the two leading principal axes
    of the means (centred; each axis's sign fixed so its largest entry is
    positive). The ellipse is then the projected covariance
    :math:`P^\top\mathrm{diag}(\sigma^2)P`, and the explorer's ``z`` is projected
    the same way.

    Args:
        model: a VAE with ``encode`` and ``decode``; ``latent_size >= 2``.
        x: ``(N, D)`` examples (``N >= 1``).
        labels: ``(N,)`` integer labels (a tensor, array or sequence).
        explorer: an optional :class:`LatentExplorer` of the same model.
        dims: the coordinates shown when ``projection="dims"``.
        projection: ``"dims"`` or ``"pca"``.
        index: the example selected first.
        scale, image_shape: as in :class:`LatentExplorer`.
        map_size: side of the square map in pixels.

    Attributes:
        index_slider, label_dropdown, next_button, explore_button (``None``
        without explorer), map_image, original_image, reconstruction_image, info,
        mean ``(N, L)`` and log_var ``(N, L)`` (float64), index (current example).
    """

    def __init__(
        self,
        model,
        x: torch.Tensor,
        labels,
        *,
        explorer: LatentExplorer | None = None,
        dims: Sequence[int] = (0, 1),
        projection: str = "dims",
        index: int = 0,
        scale: int | None = None,
        image_shape: tuple[int, int] | None = None,
        map_size: int = 320,
    ):
        latent = check_decoder_model("model", model, need_encode=True)
        if latent < 2:
            raise ValueError(f"model must have latent_size >= 2 for a 2-D map, got {latent}")
        projection = check_choice("projection", projection, ("dims", "pca"))
        self._check_dims(dims, latent)
        check_tensor("x", x, ndim=2, last_dim=getattr(model, "input_size", None))
        labels_np = self._check_labels(labels, x.shape[0])
        self._check_explorer(explorer, model)
        index = check_nonnegative_int("index", index)
        if index >= x.shape[0]:
            raise ValueError(f"index must be < N = {x.shape[0]}, got {index}")
        map_size = check_positive_int("map_size", map_size)
        if map_size < 160:
            raise ValueError(f"map_size must be >= 160 pixels, got {map_size}")

        self.model = model
        self.latent_size = latent
        self._decoder = Decoder(model, image_shape)
        self.image_shape = self._decoder.image_shape
        self.scale = resolve_scale(scale, self.image_shape, target=160)
        self.x = x.detach()
        self.labels = labels_np
        mean, log_var = self._decoder.encode(self.x)
        self.mean = mean.to(torch.float64)
        self.log_var = log_var.to(torch.float64)
        self.projection = projection
        self._center, self._P = self._projection(projection, tuple(dims))
        self._center_np, self._P_np = self._center.numpy(), self._P.numpy()
        self._var_np = self.log_var.exp().numpy()
        angles = np.linspace(0.0, 2.0 * math.pi, _ELLIPSE_POINTS + 1)
        self._circle = (np.cos(angles), np.sin(angles))
        self._xy = self.project(self.mean)  # (N, 2)
        self.explorer = explorer
        self._explorer_z = explorer.z if explorer is not None else None
        self._png_cache: dict[int, tuple[bytes, bytes]] = {}
        self._build_background(map_size)
        self._suspend = False
        self.index = index
        self._build_widget(index, map_size)
        self._show(index)

    # -- argument checks ------------------------------------------------------------------
    @staticmethod
    def _check_dims(dims, latent: int) -> None:
        if (
            not isinstance(dims, Sequence)
            or len(dims) != 2
            or not all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d < latent for d in dims
            )
            or dims[0] == dims[1]
        ):
            raise ValueError(
                f"dims must be two different ints in 0..{latent - 1} (model.latent_size={latent}), "
                f"got {dims!r}"
            )

    @staticmethod
    def _check_explorer(explorer, model) -> None:
        if explorer is None:
            return
        if not isinstance(explorer, LatentExplorer):
            raise TypeError(
                f"explorer must be a LatentExplorer or None, got {type(explorer).__name__}"
            )
        if explorer.model is not model:
            raise ValueError("explorer must explore the same model as the map")

    @staticmethod
    def _check_labels(labels, n: int) -> np.ndarray:
        if isinstance(labels, torch.Tensor):
            arr = check_tensor("labels", labels, floating=False).detach().cpu().numpy()
        else:
            try:
                arr = np.asarray(labels)
            except Exception as err:  # pragma: no cover - numpy accepts almost anything
                raise TypeError("labels must be a sequence of ints") from err
        if arr.ndim != 1:
            raise ValueError(f"labels must be one-dimensional, got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"labels must hold integers, got dtype {arr.dtype}")
        if arr.shape[0] != n:
            raise ValueError(f"labels must have one entry per row of x ({n}), got {arr.shape[0]}")
        return arr.astype(np.int64)

    # -- geometry ---------------------------------------------------------------------------
    def _projection(self, projection: str, dims: tuple[int, int]):
        L = self.latent_size
        if projection == "dims":
            P = torch.zeros(L, 2, dtype=torch.float64)
            P[dims[0], 0] = 1.0
            P[dims[1], 1] = 1.0
            return torch.zeros(L, dtype=torch.float64), P
        center = self.mean.mean(dim=0)
        centred = self.mean - center
        cov = centred.T @ centred / max(1, centred.shape[0])
        _, evecs = torch.linalg.eigh(cov)
        P = evecs[:, [-1, -2]].clone()  # two leading axes, largest first
        for j in range(2):  # fix the sign, so the same data always give the same picture
            if P[P[:, j].abs().argmax(), j] < 0:
                P[:, j] = -P[:, j]
        return center, P

    def to_pixels(self, xy) -> np.ndarray:
        """Map-plane coordinates ``(..., 2)`` to ``(column, row)`` pixel coordinates."""
        xy = np.asarray(xy, dtype=np.float64)
        bx, ax_, by, ay = self._affine
        return np.stack([bx + ax_ * xy[..., 0], by + ay * xy[..., 1]], axis=-1)

    def project(self, z) -> np.ndarray:
        """Latent codes ``(..., L)`` to the map plane ``(..., 2)``."""
        if isinstance(z, torch.Tensor):
            z = z.detach().cpu().numpy()
        return (np.asarray(z, dtype=np.float64) - self._center_np) @ self._P_np

    def ellipse(self, index: int, n_std: float = 2.0) -> np.ndarray:
        r"""The ``n_std`` contour of example ``index``'s posterior, in the map plane ``(K, 2)``.

        Points :math:`m + n\,C\,(\cos t, \sin t)` with :math:`CC^\top` the projected
        covariance :math:`P^\top\mathrm{diag}(\sigma^2)P` (a 2 x 2 Cholesky factor,
        written out because it is computed on every selection).
        """
        P = self._P_np
        cov = (P * self._var_np[index][:, None]).T @ P  # (2, 2)
        a = math.sqrt(max(cov[0, 0], 1e-300))
        b = cov[0, 1] / a
        d = math.sqrt(max(cov[1, 1] - b * b, 0.0))
        cos, sin = self._circle
        x = self._xy[index, 0] + n_std * a * cos
        y = self._xy[index, 1] + n_std * (b * cos + d * sin)
        return np.stack([x, y], axis=-1)

    # -- the cached background ----------------------------------------------------------------
    def _scatter_figure(self, map_size: int):
        """The Matplotlib figure of the scatter (with an Agg canvas) and its axes."""
        from ..plots import plot_latent_scatter

        fig = new_figure(map_size, map_size)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0.16, 0.13, 0.66, 0.8))
        plot_latent_scatter(ax, self._xy, self.labels, s=5, colorbar=False)
        cax = fig.add_axes((0.84, 0.13, 0.035, 0.8))
        fig.colorbar(ax.collections[0], cax=cax, ticks=range(10))
        lo = self._xy.min(axis=0)
        hi = self._xy.max(axis=0)
        if self.explorer is not None and self.projection == "dims":
            lo = np.minimum(lo, -self.explorer.limit)
            hi = np.maximum(hi, self.explorer.limit)
        pad = 0.05 * np.maximum(hi - lo, 1e-3)
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        if self.projection == "pca":
            ax.set(xlabel="PC 1 of the means", ylabel="PC 2 of the means")
        else:
            d0, d1 = (int(self._P[:, j].argmax()) for j in range(2))
            ax.set(xlabel=f"$z_{{{d0}}}$", ylabel=f"$z_{{{d1}}}$")
        ax.set_title("encoder means", fontsize=10)
        return fig, ax

    def _build_background(self, map_size: int) -> None:
        fig, ax = self._scatter_figure(map_size)
        fig.canvas.draw()
        width, height = fig.canvas.get_width_height()
        rgb = PILImage.frombuffer(
            "RGBA", (width, height), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1
        ).convert("RGB")
        # A palette image is a third of the bytes of RGB and Pillow writes it without
        # PNG row filters, so every marker update encodes in a fraction of the time.
        # The plot is quantized once (at most 252 colours); the last four palette
        # entries are reserved for the markers, so those are drawn in exact colours.
        n_free = 256 - len(MAP_COLORS)
        background = rgb.quantize(
            colors=n_free, method=PILImage.Quantize.MEDIANCUT, dither=PILImage.Dither.NONE
        )
        palette = background.getpalette()[: 3 * n_free]
        palette += [0] * (3 * n_free - len(palette))
        self._ink = {}
        for i, (name, colour) in enumerate(MAP_COLORS.items()):
            palette += list(colour)
            self._ink[name] = n_free + i
        background.putpalette(palette)
        self._background = background
        self._ring = (None, None)
        # The data -> pixel map of linear axes is affine: keep its coefficients, so
        # that a marker costs two multiply-adds instead of a Matplotlib transform.
        o, ex, ey = ax.transData.transform([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        self._affine = (o[0], ex[0] - o[0], height - o[1], -(ey[1] - o[1]))
        x0, y0, x1, y1 = ax.get_window_extent().extents
        self._axes_box = (
            int(math.ceil(x0)),
            int(math.ceil(height - y1)),
            int(math.floor(x1)),
            int(math.floor(height - y0)),
        )

    def _draw_map(self) -> bytes:
        left, top, _, _ = self._axes_box
        img = self._background.copy()
        # draw inside the axes only: markers outside the limits are clipped, not
        # painted over the tick labels
        region = img.crop(self._axes_box)
        draw = ImageDraw.Draw(region)
        off = np.array([left, top], dtype=np.float64)
        if self._ring[0] != self.index:  # the ellipse only changes with the selection
            ring = self.to_pixels(self.ellipse(self.index)) - off
            self._ring = (self.index, [tuple(p) for p in ring.tolist()])
        draw.line(self._ring[1], fill=self._ink["ellipse"], width=2, joint="curve")
        cx, cy = (self.to_pixels(self._xy[self.index]) - off).tolist()
        r = 4
        draw.ellipse(
            (cx - r, cy - r, cx + r, cy + r),
            fill=self._ink["selected"],
            outline=self._ink["outline"],
        )
        if self._explorer_z is not None:
            ex, ey = (self.to_pixels(self.project(self._explorer_z)) - off).tolist()
            k = 7
            draw.line((ex - k, ey, ex + k, ey), fill=self._ink["explorer"], width=3)
            draw.line((ex, ey - k, ex, ey + k), fill=self._ink["explorer"], width=3)
        img.paste(region, (left, top))
        return encode_png(img)

    def _example_pngs(self, index: int) -> tuple[bytes, bytes]:
        # the map is a snapshot of the model when it was built (means, background),
        # so an example's two pictures never change: keep the recent ones
        if index not in self._png_cache:
            h, w = self.image_shape
            orig = self.x[index].detach().cpu().to(torch.float64).reshape(h, w)
            recon = self._decoder.decode_images(self.mean[index][None])[0]
            if len(self._png_cache) >= 4096:
                self._png_cache.pop(next(iter(self._png_cache)))
            self._png_cache[index] = (
                render_png(orig, scale=self.scale),
                render_png(recon, scale=self.scale),
            )
        return self._png_cache[index]

    # -- the widget ---------------------------------------------------------------------------
    def _build_controls(self, index: int) -> list[widgets.Widget]:
        self.index_slider = widgets.IntSlider(
            value=index,
            min=0,
            max=self.x.shape[0] - 1,
            description="example",
            continuous_update=True,
            layout=widgets.Layout(width="320px"),
        )
        self.label_dropdown = widgets.Dropdown(
            options=[(str(v), v) for v in sorted({int(v) for v in self.labels})],
            value=int(self.labels[index]),
            description="label",
            layout=widgets.Layout(width="160px"),
        )
        self.next_button = widgets.Button(
            description="next ▶",
            tooltip="next example with this label",
            layout=widgets.Layout(width="80px"),
        )
        controls = [self.index_slider, self.label_dropdown, self.next_button]
        self.explore_button = None
        if self.explorer is not None:
            self.explore_button = widgets.Button(
                description="explore this z",
                layout=widgets.Layout(width="120px"),
            )
            controls.append(self.explore_button)
        return controls

    def _build_widget(self, index: int, map_size: int) -> None:
        controls = self._build_controls(index)
        self.map_image = image_widget(self._draw_map(), "vi-latent-map")
        orig, recon = self._example_pngs(index)
        side_width = png_size(orig)[0]
        self.original_image = image_widget(orig, "vi-original-image")
        self.reconstruction_image = image_widget(recon, "vi-reconstruction-image")
        side = widgets.VBox(
            [
                widgets.Label("original"),
                self.original_image,
                widgets.Label("reconstruction"),
                self.reconstruction_image,
            ],
            layout=widgets.Layout(width=f"{side_width + 10}px"),
        )
        self.info = info_widget(map_size + side_width + 20, lines=3)
        width = map_size + side_width + 40
        self.widget = widgets.VBox(
            [
                widgets.HBox(controls, layout=widgets.Layout(width=f"{width + 240}px")),
                widgets.HBox([self.map_image, side], layout=widgets.Layout(width=f"{width}px")),
                self.info,
            ],
            layout=widgets.Layout(width=f"{width + 260}px"),
        )
        self.widget.add_class("vi-latent-map-widget")
        self.index_slider.observe(self._on_index, names="value")
        self.label_dropdown.observe(self._on_label, names="value")
        self.next_button.on_click(self._on_next)
        if self.explorer is not None:
            self.explore_button.on_click(self._on_explore)
            self.explorer.on_change(self._on_explorer_change)

    # -- callbacks ------------------------------------------------------------------
    def select(self, index: int) -> None:
        """Select example ``index`` (as moving the index slider does)."""
        index = check_nonnegative_int("index", index)
        if index >= self.x.shape[0]:
            raise ValueError(f"index must be < N = {self.x.shape[0]}, got {index}")
        self.index_slider.value = index
        if self.index != index:  # slider did not move (suspended) -> show anyway
            self._show(index)

    def _next_with_label(self, label: int) -> int:
        n = len(self.labels)
        order = (self.index + 1 + np.arange(n)) % n
        hits = order[self.labels[order] == label]
        return int(hits[0]) if len(hits) else self.index

    def _on_index(self, change) -> None:
        if not self._suspend:
            self._show(int(change["new"]))

    def _on_label(self, change) -> None:
        if not self._suspend:
            self.index_slider.value = self._next_with_label(int(change["new"]))

    def _on_next(self, _button) -> None:
        self.index_slider.value = self._next_with_label(int(self.label_dropdown.value))

    def _on_explore(self, _button) -> None:
        self.explorer.set_z(self.mean[self.index])

    def _on_explorer_change(self, z: torch.Tensor) -> None:
        self._explorer_z = z
        self.map_image.value = self._draw_map()

    def _show(self, index: int) -> None:
        self.index = index
        self._suspend = True
        try:
            self.label_dropdown.value = int(self.labels[index])
        finally:
            self._suspend = False
        self.map_image.value = self._draw_map()
        orig, recon = self._example_pngs(index)
        self.original_image.value = orig
        self.reconstruction_image.value = recon
        std = self.log_var[index].mul(0.5).exp()
        self.info.value = html(
            f"example {index}, label {int(self.labels[index])}\n"
            f"mean {fmt_vec(self.mean[index])}   std {fmt_vec(std)}\n"
            "● mean   ○ 2σ ellipse of q(z|x)" + ("   ✚ explorer's z" if self.explorer else "")
        )

    def _repr_args(self) -> str:
        return f"n={self.x.shape[0]}, latent_size={self.latent_size}"

    def _static_rows(self):
        return [[self.map_image.value, self.original_image.value, self.reconstruction_image.value]]
