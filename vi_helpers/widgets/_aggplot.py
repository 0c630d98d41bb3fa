"""Plots for the concept widgets: a blitted Agg figure, and the slider-and-plot layout.

One persistent Matplotlib figure per widget on the Agg canvas (no pyplot, no
global state). Moving artists are updated with ``set_data`` / ``set_height`` and
blitted onto a cached background; the full figure is only redrawn when an axis
limit must change.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._base import InteractiveWidget, image_widget
from ._png import encode_rgb_png


class AggPlot:
    """A persistent Matplotlib figure on the Agg canvas, rendered to PNG bytes.

    Moving artists are marked *animated*: a full ``canvas.draw()`` skips them and
    its result is cached; an update restores the cache and draws only the moving
    artists on top (blitting). :meth:`invalidate` forces a full redraw, needed
    after an axis limit changes.
    """

    def __init__(self, fig: Figure, animated):
        self.fig = fig
        self.canvas = FigureCanvasAgg(fig)
        self.animated = list(animated)
        for artist in self.animated:
            artist.set_animated(True)
        self._background = None

    def invalidate(self) -> None:
        """Redraw the whole figure at the next :meth:`png`."""
        self._background = None

    def png(self) -> bytes:
        """PNG bytes of the figure with the moving artists in their current state."""
        if self._background is None:
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.fig.bbox)
        else:
            self.canvas.restore_region(self._background)
        renderer = self.canvas.get_renderer()
        for artist in self.animated:
            artist.draw(renderer)
        return encode_rgb_png(np.asarray(self.canvas.buffer_rgba())[..., :3])

    def set_curve(self, line, y: np.ndarray, *, at_least: float, headroom: float) -> None:
        """Move the (animated) ``line`` to ``y`` over its x data.

        Its axes' y range becomes ``[0, headroom * top]`` (``top`` the larger of
        ``max(y)`` and ``at_least``) when :func:`needs_limit` says the curve left
        the view or fills too little of it; that costs a full redraw.
        """
        line.set_ydata(y)
        top = max(at_least, float(np.max(y)))
        if needs_limit(line.axes.get_ylim(), 0.0, top) is not None:
            line.axes.set_ylim(0.0, headroom * top)
            self.invalidate()


def new_figure(width_px: int, height_px: int, dpi: int = 80) -> Figure:
    """A Matplotlib figure of ``width_px x height_px`` pixels (not registered with pyplot)."""
    return Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)


def needs_limit(current: tuple[float, float], low: float, high: float, *, slack: float = 3.0):
    """New limits if ``[low, high]`` does not fit in ``current`` or fills too little of it.

    Returns ``None`` when the current limits can stay (the cheap, blitted path).
    """
    lo, hi = current
    span = high - low
    if low < lo or high > hi or (hi - lo) > slack * max(span, 1e-9):
        pad = 0.15 * max(span, 1e-9)
        return low - pad, high + pad
    return None


def normal_pdf(z: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    r"""The density :math:`\mathcal N(z;\mu,\sigma^2)` on a grid, for plotting."""
    return np.exp(-0.5 * ((z - mu) / sigma) ** 2) / (sigma * np.sqrt(2.0 * np.pi))


class ConceptExplorer(InteractiveWidget):
    """Base of the concept explorers: a few sliders, an ``info`` line and one plot.

    A subclass builds its sliders, ``self.info``, ``self._plot`` (an
    :class:`AggPlot`) and implements ``_update()``, which reads the sliders,
    recomputes the numbers and moves the plot's artists; then it calls
    :meth:`_build_panel` once.

    Attributes:
        plot: the ``Image`` showing the current plot.
    """

    _plot: AggPlot
    info: widgets.HTML

    def _update(self) -> None:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def _build_panel(self, sliders, plot_class: str, css_class: str, width: int) -> None:
        """Lay out ``sliders``, ``info`` and the plot; re-render whenever a slider moves."""
        self._update()
        self.plot = image_widget(self._plot.png(), plot_class)
        self.widget = widgets.VBox(
            [*sliders, self.info, self.plot], layout=widgets.Layout(width=f"{width}px")
        )
        self.widget.add_class(css_class)
        for s in sliders:
            s.observe(self._on_change, names="value")

    def _on_change(self, _change) -> None:
        self._update()
        self.plot.value = self._plot.png()

    def _static_rows(self):
        return [[self.plot.value]]
