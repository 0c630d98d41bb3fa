r"""Interpolation: decode along a linear or spherical path between two encoder means."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch

from .._validate import (
    check_choice,
    check_decoder_model,
    check_in_interval,
    check_positive_int,
    check_tensor,
)
from ..latent import lerp, slerp
from ._base import (
    Decoder,
    InteractiveWidget,
    fmt_vec,
    html,
    image_widget,
    info_widget,
    slider,
)
from ._png import grid_png, png_size, render_png, resolve_scale

_MODES = ("linear", "spherical")


class Interpolation(InteractiveWidget):
    r"""Decode along the path from :math:`\mu(x_a)` to :math:`\mu(x_b)` (encoder means).

    A slider sets ``t`` in [0, 1] and toggle buttons choose the path:
    ``"linear"`` (:func:`~vi_helpers.latent.lerp`) or ``"spherical"``
    (:func:`~vi_helpers.latent.slerp`). The image shows the decoded :math:`z(t)`;
    below it, the whole decoded path at ``steps`` evenly spaced ``t`` for both
    modes. ``t=0`` and ``t=1`` decode exactly the endpoints' means.

    Args:
        model: a VAE with ``encode`` and ``decode``.
        x_a, x_b: ``(D,)`` (or ``(1, D)``) examples.
        steps: number of images in each path strip (>= 2).
        t: starting value of ``t``.
        mode: starting mode, ``"linear"`` or ``"spherical"``.
        scale, image_shape: as in :class:`~vi_helpers.widgets.LatentExplorer`.

    Attributes:
        t_slider, mode_buttons, image, strip_images (dict mode -> Image), info,
        z_a, z_b (``(L,)`` means, in the model's dtype), z (the current code).
    """

    def __init__(
        self,
        model,
        x_a: torch.Tensor,
        x_b: torch.Tensor,
        *,
        steps: int = 8,
        t: float = 0.5,
        mode: str = "linear",
        scale: int | None = None,
        image_shape: tuple[int, int] | None = None,
    ):
        latent = check_decoder_model("model", model, need_encode=True)
        input_size = getattr(model, "input_size", None)
        for name, value in (("x_a", x_a), ("x_b", x_b)):
            check_tensor(name, value, ndim=(1, 2), last_dim=input_size)
            if value.dim() == 2 and value.shape[0] != 1:
                raise ValueError(
                    f"{name} must be one example, (D,) or (1, D), got {tuple(value.shape)}"
                )
        steps = check_positive_int("steps", steps)
        if steps < 2:
            raise ValueError(f"steps must be >= 2, got {steps}")
        t = check_in_interval("t", t, 0.0, 1.0)
        mode = check_choice("mode", mode, _MODES)
        self.model = model
        self.latent_size = latent
        self.steps = steps
        self._decoder = Decoder(model, image_shape)
        self.image_shape = self._decoder.image_shape
        self.scale = resolve_scale(scale, self.image_shape, target=160)
        # keep the means in the model's dtype: t=0 and t=1 then decode exactly them
        self.z_a = self._decoder.encode(x_a.detach().reshape(1, -1))[0].reshape(-1)
        self.z_b = self._decoder.encode(x_b.detach().reshape(1, -1))[0].reshape(-1)
        self._t, self._mode = t, mode
        self._build_widget(t, mode)
        self.t_slider.observe(self._on_t, names="value")
        self.mode_buttons.observe(self._on_mode, names="value")
        self._render()

    def _strip_rows(self) -> list[widgets.HBox]:
        """One row per mode: its label and the decoded path at ``steps`` values of ``t``."""
        ts = [k / (self.steps - 1) for k in range(self.steps)]
        strip_scale = max(1, min(self.scale, 96 // max(self.image_shape)))
        self.strip_images: dict[str, widgets.Image] = {}
        rows = []
        for m in _MODES:
            path = torch.stack([self.path_point(s, m) for s in ts])
            pics = self._decoder.decode_images(path)
            png = grid_png(pics, nrow=self.steps, scale=strip_scale)
            self.strip_images[m] = image_widget(png, f"vi-strip-{m}")
            label = widgets.Label(m, layout=widgets.Layout(width="80px"))
            rows.append(widgets.HBox([label, self.strip_images[m]]))
        return rows

    def _build_widget(self, t: float, mode: str) -> None:
        rows = self._strip_rows()
        self.t_slider = slider("t", t, 0.0, 1.0, 0.01)
        self.mode_buttons = widgets.ToggleButtons(options=list(_MODES), value=mode)
        first = render_png(self._decode_current(), scale=self.scale)
        self.image = image_widget(first, "vi-decoded-image")
        width = max(png_size(self.strip_images["linear"].value)[0] + 90, 360)
        self.info = info_widget(width, lines=1)
        self.widget = widgets.VBox(
            [
                self.t_slider,
                self.mode_buttons,
                self.image,
                self.info,
                widgets.Label("decoded path, t = 0 … 1"),
                *rows,
            ],
            layout=widgets.Layout(width=f"{width + 20}px"),
        )
        self.widget.add_class("vi-interpolation")

    def path_point(self, t: float, mode: str | None = None) -> torch.Tensor:
        """The code at ``t`` on the ``mode`` path (default: the selected mode)."""
        mode = self._mode if mode is None else check_choice("mode", mode, _MODES)
        f = lerp if mode == "linear" else slerp
        return f(self.z_a, self.z_b, t)

    @property
    def z(self) -> torch.Tensor:
        """The current code :math:`z(t)`, ``(L,)``."""
        return self.path_point(self._t)

    def _decode_current(self) -> np.ndarray:
        return self._decoder.decode_images(self.z[None])[0]

    def _on_t(self, change) -> None:
        self._t = float(change["new"])
        self._render()

    def _on_mode(self, change) -> None:
        self._mode = str(change["new"])
        self._render()

    def _render(self) -> None:
        self.image.value = render_png(self._decode_current(), scale=self.scale)
        self.info.value = html(f"t = {self._t:.2f} ({self._mode})   z(t) = {fmt_vec(self.z)}")

    def _repr_args(self) -> str:
        return f"latent_size={self.latent_size}, steps={self.steps}"

    def _static_rows(self):
        return [
            [self.image.value],
            [self.strip_images["linear"].value],
            [self.strip_images["spherical"].value],
        ]
