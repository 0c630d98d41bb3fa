"""The widget contract, the decoder wrapper and the small UI atoms every widget uses.

:class:`InteractiveWidget` is what a widget must offer: its ipywidgets container
in ``.widget``, a deterministic ``repr`` (no addresses, so nbval can compare it)
and a mime bundle with the live view **and** a PNG of its current pictures
(:meth:`InteractiveWidget.static_png`) for renderers without a widget manager.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
import torch

from .._validate import check_tensor
from ._png import montage, png_size

#: Height of one text line in an ipywidgets 8 ``HTML`` widget: its content has
#: ``line-height: var(--jp-widgets-inline-height)``, which is 28 px.
INFO_LINE_PX = 28


class InteractiveWidget:
    """Base: ``.widget``, a deterministic repr, and a mime bundle with a PNG fallback.

    Subclasses set ``self.widget`` and implement ``_repr_args`` (the text inside
    ``Name(...)``) and ``_static_rows`` (rows of PNG bytes for :meth:`static_png`).
    """

    widget: widgets.Box

    def _repr_args(self) -> str:  # pragma: no cover - every subclass overrides
        return ""

    def _static_rows(self) -> list[list[bytes]]:  # pragma: no cover - overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._repr_args()})"

    def static_png(self) -> bytes:
        """PNG of the widget's current pictures, as shown where widgets cannot run."""
        return montage(self._static_rows())

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        data = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        data["text/plain"] = repr(self)
        png = self.static_png()
        data["image/png"] = base64.b64encode(png).decode("ascii")
        w, h = png_size(png)
        metadata = {"image/png": {"width": w, "height": h}}
        if include is not None:
            data = {k: v for k, v in data.items() if k in include}
        if exclude is not None:
            data = {k: v for k, v in data.items() if k not in exclude}
        return data, metadata


def resolve_image_shape(image_shape, size: int) -> tuple[int, int]:
    """``(H, W)`` of images with ``size`` pixels: ``image_shape``, or square by default."""
    if image_shape is None:
        side = int(round(math.sqrt(size)))
        if side * side != size:
            raise ValueError(f"image_shape must be given: {size} pixels are not a square image")
        return side, side
    if (
        not isinstance(image_shape, Sequence)
        or len(image_shape) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in image_shape)
    ):
        raise ValueError(f"image_shape must be two positive ints (H, W), got {image_shape!r}")
    if image_shape[0] * image_shape[1] != size:
        raise ValueError(f"image_shape {tuple(image_shape)} does not hold {size} pixels")
    return int(image_shape[0]), int(image_shape[1])


class Decoder:
    """Decode latent codes of one model to flat NumPy images, without autograd."""

    def __init__(self, model: torch.nn.Module, image_shape):
        self.model = model
        p = next(model.parameters())
        self.dtype, self.device = p.dtype, p.device
        self.latent_size = model.latent_size
        probe = self.decode(torch.zeros(1, self.latent_size))
        self.size = probe.shape[-1]
        self.image_shape = resolve_image_shape(image_shape, self.size)

    def decode(self, z: torch.Tensor) -> np.ndarray:
        """``(B, L) -> (B, D)`` float64; a NaN or infinite image is refused naming ``model``."""
        with torch.inference_mode():
            out = self.model.decode(z.to(device=self.device, dtype=self.dtype))
        out = out.detach().cpu().to(torch.float64).numpy()
        if not np.isfinite(out).all():
            raise ValueError(
                "model.decode returned NaN or infinite values (for z with norm up to "
                f"{float(z.norm(dim=-1).max()):.3g}): the model cannot be shown"
            )
        return out

    def decode_images(self, z: torch.Tensor) -> np.ndarray:
        """``(B, L) -> (B, H, W)``."""
        return self.decode(z).reshape(-1, *self.image_shape)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder outputs ``(mu, log_var)`` of ``x``, on the CPU in the model's dtype."""
        with torch.inference_mode():
            mu, log_var = self.model.encode(x.to(device=self.device, dtype=self.dtype))
        if not bool(torch.isfinite(mu).all() & torch.isfinite(log_var).all()):
            raise ValueError("model.encode returned NaN or infinite values: the model cannot "
                             "be shown")
        return mu.detach().cpu(), log_var.detach().cpu()


def as_latent(name: str, z, latent_size: int) -> torch.Tensor:
    """A float64 ``(L,)`` copy of ``z`` (tensor, array or sequence of numbers)."""
    if isinstance(z, torch.Tensor):
        if not z.is_floating_point():
            raise TypeError(f"{name} must have a floating dtype, got {z.dtype}")
        t = z.detach().cpu().to(torch.float64)
    else:
        try:
            t = torch.as_tensor(np.asarray(z, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a tensor or a sequence of numbers") from err
    t = t.reshape(-1) if t.dim() == 2 and t.shape[0] == 1 else t
    check_tensor(name, t, shape=(latent_size,))
    return t.clone()


# -- UI atoms -------------------------------------------------------------------------------


_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def latent_label(index: int) -> str:
    """The label of latent dimension ``index`` (0-based in code): ``z₁``, ``z₂``, ... as in the
    notes, where latent indices are 1-based (docs/glossary.md)."""
    return "z" + str(index + 1).translate(_SUBSCRIPTS)


def image_widget(png: bytes, css_class: str | None = None) -> widgets.Image:
    """An ``Image`` of fixed pixel size (the PNG's), so the layout never jumps."""
    w, h = png_size(png)
    img = widgets.Image(
        value=png, format="png", layout=widgets.Layout(width=f"{w}px", height=f"{h}px")
    )
    if css_class:
        img.add_class(css_class)
    return img


def fmt_vec(v, digits: int = 2, max_items: int = 8) -> str:
    """``(+0.12, -1.50, …)``: signed, fixed digits, at most ``max_items`` entries."""
    vals = [f"{float(a):+.{digits}f}" for a in v[:max_items]]
    if len(v) > max_items:
        vals.append("…")
    return "(" + ", ".join(vals) + ")"


def html(text: str) -> str:
    """Monospace text with its line breaks kept, for an ``HTML`` widget."""
    return f'<span style="font-family: monospace; white-space: pre">{text}</span>'


def info_widget(width: int, lines: int) -> widgets.HTML:
    """An ``HTML`` box ``width`` px wide and exactly ``lines`` text lines high."""
    return widgets.HTML(
        layout=widgets.Layout(width=f"{width}px", height=f"{lines * INFO_LINE_PX}px")
    )


def slider(description, value, lo, hi, step, width=320, **kw) -> widgets.FloatSlider:
    """A continuously updating ``FloatSlider`` with two decimals."""
    return widgets.FloatSlider(
        value=value,
        min=lo,
        max=hi,
        step=step,
        description=description,
        continuous_update=True,
        readout_format=".2f",
        layout=widgets.Layout(width=f"{width}px"),
        **kw,
    )
