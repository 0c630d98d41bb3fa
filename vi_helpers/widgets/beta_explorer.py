r"""The beta explorer: a precomputed beta-VAE sweep, its rate-distortion curve and images."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import ipywidgets as widgets
import torch

from .._validate import check_positive_int, check_tensor
from ._aggplot import AggPlot, new_figure
from ._base import InteractiveWidget, html, image_widget, info_widget, resolve_image_shape
from ._png import grid_png, grid_scale, png_size

_KEYS = ("beta", "rate", "distortion", "reconstructions")


def _check_entry(i: int, r, shape: tuple[int, ...] | None) -> dict:
    """One sweep entry, checked: floats for the numbers, a float64 tensor of images."""
    if not isinstance(r, dict):
        raise TypeError(f"results[{i}] must be a dict, got {type(r).__name__}")
    for key in _KEYS:
        if key not in r:
            raise ValueError(f"results[{i}] is missing the key {key!r}")
    entry = {}
    for key in ("beta", "rate", "distortion"):
        v = r[key]
        v = float(v) if isinstance(v, torch.Tensor) and v.numel() == 1 else v
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"results[{i}]['{key}'] must be a finite number, got {v!r}")
        entry[key] = float(v)
    if entry["beta"] < 0:
        raise ValueError(f"results[{i}]['beta'] must be >= 0, got {entry['beta']}")
    rec = r["reconstructions"]
    check_tensor(f"results[{i}]['reconstructions']", rec, ndim=(2, 3))
    if shape is not None and tuple(rec.shape) != shape:
        raise ValueError(
            f"results[{i}]['reconstructions'] must have shape {shape} like results[0], "
            f"got {tuple(rec.shape)}"
        )
    entry["reconstructions"] = rec.detach().cpu().to(torch.float64)
    return entry


def _check_results(results) -> list[dict]:
    """The checked entries, sorted by beta (all betas different, all images one shape)."""
    if isinstance(results, (str, bytes, dict)) or not isinstance(results, Sequence):
        raise TypeError(f"results must be a list of dicts, got {type(results).__name__}")
    if len(results) == 0:
        raise ValueError("results must not be empty")
    cleaned = []
    for i, r in enumerate(results):
        shape = tuple(cleaned[0]["reconstructions"].shape) if cleaned else None
        cleaned.append(_check_entry(i, r, shape))
    betas = [e["beta"] for e in cleaned]
    if len(set(betas)) != len(betas):
        raise ValueError(f"results must have different betas, got {betas}")
    return sorted(cleaned, key=lambda e: e["beta"])


class BetaExplorer(InteractiveWidget):
    r"""Browse a precomputed beta-VAE sweep: the rate-distortion curve and reconstructions.

    ``results`` is a list of dicts, one per trained model, with

    * ``"beta"``: the KL weight (a number >= 0, all different);
    * ``"rate"``: average :math:`\mathrm{KL}(q(z\mid x)\,\|\,p(z))` in nats;
    * ``"distortion"``: average reconstruction loss;
    * ``"reconstructions"``: ``(N, D)`` or ``(N, H, W)`` images (the same ``N`` and
      size for every beta, so the grid does not jump).

    A selection slider picks beta (sorted ascending). The plot marks that model on
    the rate-distortion curve; the grid shows its first ``n_show``
    reconstructions.

    Args:
        results: the sweep, as above (non-empty).
        n_show: reconstructions shown (default all, at most 32).
        nrow: images per row.
        scale, image_shape: as in :class:`~vi_helpers.widgets.PriorSampler`.

    Attributes:
        slider (``SelectionSlider``; its value is the position in :attr:`results`),
        plot, image, info, results (sorted by beta), index (current).
    """

    def __init__(
        self,
        results: Sequence[dict],
        *,
        n_show: int | None = None,
        nrow: int | None = None,
        scale: int | None = None,
        image_shape: tuple[int, int] | None = None,
    ):
        self.results = _check_results(results)
        shape = tuple(self.results[0]["reconstructions"].shape)
        n_images = shape[0]
        if len(shape) == 3:
            if image_shape is not None and tuple(image_shape) != shape[1:]:
                raise ValueError(
                    f"image_shape must be {shape[1:]} for (N, H, W) images, got {image_shape!r}"
                )
            self.image_shape = (shape[1], shape[2])
        else:
            self.image_shape = resolve_image_shape(image_shape, shape[1])
        self.n_show = min(n_images, 32) if n_show is None else check_positive_int("n_show", n_show)
        if self.n_show > n_images:
            raise ValueError(
                f"n_show must be <= the number of reconstructions ({n_images}), got {n_show}"
            )
        self.nrow = None if nrow is None else check_positive_int("nrow", nrow)
        self.scale = grid_scale(self.n_show, self.nrow, self.image_shape, scale)
        self._grids: dict[int, bytes] = {}
        self._build_widget()
        self.slider.observe(self._on_change, names="value")
        self._show(0)

    def _rate_distortion_plot(self) -> AggPlot:
        """The curve with every beta labelled, and the moving marker of the selection."""
        rates = [e["rate"] for e in self.results]
        dists = [e["distortion"] for e in self.results]
        fig = new_figure(320, 260)
        ax = fig.add_axes((0.2, 0.17, 0.74, 0.72))
        ax.plot(rates, dists, "o-", color="tab:gray", ms=4)
        for e in self.results:
            ax.annotate(
                f"{e['beta']:g}",
                (e["rate"], e["distortion"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        (self._marker,) = ax.plot([rates[0]], [dists[0]], "o", color="tab:red", ms=9)
        ax.set(xlabel="rate (nats)", ylabel="distortion", title="rate-distortion (labels: β)")
        ax.margins(0.12)
        return AggPlot(fig, [self._marker])

    def _build_widget(self) -> None:
        self.slider = widgets.SelectionSlider(
            options=[(f"{e['beta']:g}", i) for i, e in enumerate(self.results)],
            value=0,
            description="β",
            continuous_update=True,
            layout=widgets.Layout(width="360px"),
        )
        self._plot = self._rate_distortion_plot()
        self.plot = image_widget(self._plot.png(), "vi-beta-plot")
        self.image = image_widget(self._grid(0), "vi-beta-reconstructions")
        self.info = info_widget(360, lines=1)
        self.index = 0
        w = png_size(self.plot.value)[0] + png_size(self.image.value)[0] + 20
        self.widget = widgets.VBox(
            [self.slider, self.info, widgets.HBox([self.plot, self.image])],
            layout=widgets.Layout(width=f"{max(w, 380) + 20}px"),
        )
        self.widget.add_class("vi-beta-explorer")

    def _grid(self, i: int) -> bytes:
        if i not in self._grids:
            rec = self.results[i]["reconstructions"][: self.n_show]
            pics = rec.reshape(rec.shape[0], *self.image_shape).numpy()
            self._grids[i] = grid_png(pics, nrow=self.nrow, scale=self.scale)
        return self._grids[i]

    def _on_change(self, change) -> None:
        self._show(int(change["new"]))

    def _show(self, i: int) -> None:
        self.index = i
        e = self.results[i]
        self._marker.set_data([e["rate"]], [e["distortion"]])
        self.plot.value = self._plot.png()
        self.image.value = self._grid(i)
        self.info.value = html(
            f"β = {e['beta']:g}: rate {e['rate']:.2f} nats, distortion {e['distortion']:.2f}"
        )

    def _repr_args(self) -> str:
        return f"n_betas={len(self.results)}"

    def _static_rows(self):
        return [[self.plot.value, self.image.value]]
