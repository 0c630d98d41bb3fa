r"""The latent explorer: move the code ``z`` with sliders and watch the decoded image live."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import ipywidgets as widgets
import numpy as np
import torch

from .._validate import check_decoder_model, check_positive_float
from ._base import (
    Decoder,
    InteractiveWidget,
    as_latent,
    fmt_vec,
    html,
    image_widget,
    info_widget,
    latent_label,
    slider,
)
from ._png import png_size, render_png, resolve_scale


class LatentExplorer(InteractiveWidget):
    r"""Sliders for the latent code ``z`` and the live decoded image :math:`\mathbb E[x\mid z]`.

    * ``latent_size`` 1 or 2: one slider per dimension.
    * ``latent_size > 2``: two sliders, each with a dropdown choosing which
      dimension it moves (``dims`` are the initial choices; choosing the other
      slider's dimension swaps the two), and a ``hold`` slider that sets every
      dimension not on a slider. ``z`` starts at ``hold`` everywhere.

    Below the image: ``z`` and its prior log-density
    :math:`\log\mathcal N(z;0,I)=-\tfrac12(L\log 2\pi+\|z\|^2)`.

    Args:
        model: a VAE (``decode(z)`` and ``latent_size``), e.g.
            :class:`~vi_helpers.models.VariationalAutoencoder`.
        dims: the dimensions on the two sliders (two different ints in
            ``0..L-1``); default ``(0, 1)``, or ``(0,)`` when ``L = 1``.
        hold: starting value of every coordinate (in ``[-limit, limit]``).
        limit: sliders run over ``[-limit, limit]``.
        step: slider step.
        scale: screen pixels per image pixel (default: about 192 px per side).
        image_shape: ``(H, W)`` of the decoded images (default: square).

    Attributes:
        sliders: the value sliders (``FloatSlider``), one per shown dimension.
        dropdowns: for ``L > 2`` the two dimension choosers, else ``[]``.
        hold_slider: for ``L > 2`` the held-value slider, else ``None``.
        image: the ``ipywidgets.Image`` showing the decoded image.
        info: ``HTML`` with ``z`` and ``log N(z; 0, I)``.
        z: a copy of the current code, ``(L,)`` float64.
    """

    def __init__(
        self,
        model,
        *,
        dims: Sequence[int] | None = None,
        hold: float = 0.0,
        limit: float = 3.0,
        step: float = 0.05,
        scale: int | None = None,
        image_shape: tuple[int, int] | None = None,
    ):
        latent = check_decoder_model("model", model)
        limit = check_positive_float("limit", limit)
        step = check_positive_float("step", step)
        if step >= 2 * limit:
            raise ValueError(f"step must be smaller than the slider range 2*limit, got {step}")
        hold = (
            float(hold) if isinstance(hold, numbers.Real) and not isinstance(hold, bool) else hold
        )
        if not isinstance(hold, float) or not -limit <= hold <= limit:
            raise ValueError(
                f"hold must be a number in [-limit, limit] = [{-limit}, {limit}], got {hold!r}"
            )
        self._dims = self._check_dims(dims, latent)
        self.model = model
        self.latent_size = latent
        self._decoder = Decoder(model, image_shape)
        self.image_shape = self._decoder.image_shape
        self.scale = resolve_scale(scale, self.image_shape)
        self.limit = limit
        self._z = torch.full((latent,), hold, dtype=torch.float64)
        self._listeners: list[Callable[[torch.Tensor], None]] = []
        self._suspend = False
        rows = self._build_rows(hold, step)

        first = render_png(self._decode_current(), scale=self.scale)
        self.image = image_widget(first, "vi-decoded-image")
        width = max(png_size(first)[0], 420)
        self.info = info_widget(width, lines=2)
        self.widget = widgets.VBox(
            [*rows, self.image, self.info], layout=widgets.Layout(width=f"{width + 20}px")
        )
        self.widget.add_class("vi-latent-explorer")
        self._render()

    @staticmethod
    def _check_dims(dims, latent: int) -> tuple[int, ...]:
        if dims is None:
            return (0,) if latent == 1 else (0, 1)
        want = 1 if latent == 1 else 2
        ok = (
            isinstance(dims, Sequence)
            and len(dims) == want
            and all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d < latent for d in dims
            )
            and len(set(dims)) == len(dims)
        )
        if not ok:
            what = "(0,)" if latent == 1 else f"two different ints in 0..{latent - 1}"
            raise ValueError(
                f"dims must be {what} for a model with latent_size={latent}, got {dims!r}"
            )
        return tuple(int(d) for d in dims)

    def _build_rows(self, hold: float, step: float) -> list[widgets.Widget]:
        """The value sliders (with their dimension dropdowns and the hold slider for L > 2)."""
        latent, limit = self.latent_size, self.limit
        self.sliders: list[widgets.FloatSlider] = []
        self.dropdowns: list[widgets.Dropdown] = []
        self.hold_slider: widgets.FloatSlider | None = None
        rows: list[widgets.Widget] = []
        for slot, d in enumerate(self._dims):
            s = slider("" if latent > 2 else latent_label(d), hold, -limit, limit, step)
            s.add_class("vi-latent-slider")
            s.observe(self._value_callback(slot), names="value")
            self.sliders.append(s)
            if latent <= 2:
                rows.append(s)
                continue
            dd = widgets.Dropdown(
                options=[(latent_label(i), i) for i in range(latent)],
                value=d,
                layout=widgets.Layout(width="80px"),
            )
            dd.observe(self._dim_callback(slot), names="value")
            self.dropdowns.append(dd)
            rows.append(widgets.HBox([dd, s], layout=widgets.Layout(width="420px")))
        if latent > 2:
            self.hold_slider = slider("others", hold, -limit, limit, step, width=400)
            self.hold_slider.observe(self._on_hold, names="value")
            rows.append(self.hold_slider)
        return rows

    # -- state ------------------------------------------------------------------
    @property
    def z(self) -> torch.Tensor:
        """A copy of the current latent code, ``(L,)`` float64."""
        return self._z.clone()

    @property
    def dims(self) -> tuple[int, ...]:
        """The dimensions currently on the sliders."""
        return self._dims

    def set_z(self, z) -> None:
        """Show the code ``z`` (``(L,)``); sliders show its coordinates, clipped to their range."""
        self._z = as_latent("z", z, self.latent_size)
        self._sync_sliders()
        self._render()

    def on_change(self, callback: Callable[[torch.Tensor], None]) -> None:
        """Call ``callback(z)`` after every update (used by :class:`LatentMap`)."""
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self._listeners.append(callback)

    # -- callbacks ------------------------------------------------------------------
    def _value_callback(self, slot: int):
        def callback(change):
            if self._suspend:
                return
            self._z[self._dims[slot]] = float(change["new"])
            self._render()

        return callback

    def _dim_callback(self, slot: int):
        def callback(change):
            if self._suspend:
                return
            new, old = int(change["new"]), int(change["old"])
            dims = list(self._dims)
            other = 1 - slot
            if dims[other] == new:  # the same dimension on both sliders: swap them
                dims[other] = old
            dims[slot] = new
            self._dims = tuple(dims)
            self._sync_sliders()

        return callback

    def _on_hold(self, change) -> None:
        if self._suspend:
            return
        for d in range(self.latent_size):
            if d not in self._dims:
                self._z[d] = float(change["new"])
        self._render()

    def _sync_sliders(self) -> None:
        self._suspend = True
        try:
            for slot, d in enumerate(self._dims):
                self.sliders[slot].value = float(
                    min(max(float(self._z[d]), -self.limit), self.limit)
                )
                if self.dropdowns:
                    self.dropdowns[slot].value = d
        finally:
            self._suspend = False

    # -- drawing -------------------------------------------------------------------
    def _decode_current(self) -> np.ndarray:
        return self._decoder.decode_images(self._z[None])[0]

    def _render(self) -> None:
        self.image.value = render_png(self._decode_current(), scale=self.scale)
        # log N(z; 0, I) = -(L log 2 pi + |z|^2) / 2
        log_prior = -0.5 * (
            self.latent_size * math.log(2.0 * math.pi) + float(self._z.pow(2).sum())
        )
        self.info.value = html(f"z = {fmt_vec(self._z)}\nlog N(z; 0, I) = {log_prior:.3f}")
        for callback in self._listeners:
            callback(self._z.clone())

    def _repr_args(self) -> str:
        return f"latent_size={self.latent_size}"

    def _static_rows(self):
        return [[self.image.value]]
