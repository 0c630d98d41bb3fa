r"""PNG pictures for the widgets: encoding, grids and the automatic scale.

Decoded images are drawn dark-on-white like ``plots.plot_image_grid``
(``cmap="gray_r"``): a pixel value ``v`` in [0, 1] (values outside are clipped)
becomes the grey level ``round(255 * (1 - v))``, and every pixel becomes a
``scale x scale`` block (nearest neighbour), so the picture stays crisp at any
size. Everything is encoded at ``zlib`` level 1: the widgets re-encode on every
slider move, and the bytes only travel over a local socket.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image as PILImage

from .._validate import check_positive_int, check_tensor
from ..plots import image_grid

#: Largest side, in screen pixels, that an automatic ``scale`` aims for.
TARGET_SIDE = 192
#: The same for a grid of images.
TARGET_GRID_SIDE = 256


def _as_array(name: str, value, ndim: int) -> np.ndarray:
    """A finite float64 NumPy array of rank ``ndim`` from a tensor or array."""
    if isinstance(value, torch.Tensor):
        check_tensor(name, value, finite=False, allow_empty=True)  # floating, not meta
        value = value.detach().cpu().to(torch.float64).numpy()
    elif isinstance(value, np.ndarray):
        if not np.issubdtype(value.dtype, np.floating):
            raise TypeError(f"{name} must have a floating dtype, got {value.dtype}")
        value = value.astype(np.float64, copy=False)
    else:
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}")
    if value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {value.shape}")
    if value.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {value.shape}")
    if not np.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return value


def _gray_levels(image: np.ndarray, invert: bool) -> np.ndarray:
    """Map [0, 1] to uint8 grey levels (dark ink on white when ``invert``)."""
    a = np.clip(image, 0.0, 1.0)
    if invert:
        a = 1.0 - a
    return np.rint(a * 255.0).astype(np.uint8)


def encode_png(im: PILImage.Image, compress_level: int = 1) -> bytes:
    """PNG bytes of a Pillow image."""
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def encode_rgb_png(rgb: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes of an ``(H, W, 3)`` or ``(H, W, 4)`` uint8 array, written directly.

    Why not Pillow here: Pillow chooses a PNG filter per row adaptively, which for
    a 400 x 220 RGB plot costs several times the zlib pass itself (this encoder is
    about three times faster than Pillow there). Plots are re-encoded on every
    slider move, so they use filter type 0 ("None") and ``zlib`` at
    ``compress_level`` (larger files, sent over a local socket, in a fraction of
    the time). The result is a standard 8-bit PNG (PNG specification, ISO/IEC
    15948, sections 5 and 11).
    """
    h, w, channels = rgb.shape
    color_type = {3: 2, 4: 6}[channels]
    raw = np.zeros((h, w * channels + 1), dtype=np.uint8)  # a 0 filter byte starts each row
    raw[:, 1:] = rgb.reshape(h, w * channels)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), compress_level))
        + chunk(b"IEND", b"")
    )


def render_png(image_2d, *, scale: int, invert: bool = True) -> bytes:
    r"""Encode one grey image as PNG bytes, upscaled by nearest neighbour.

    Each value ``v`` (clipped to [0, 1]) becomes the grey level
    ``round(255 * (1 - v))`` (``invert=True``, dark ink on white as with
    ``cmap="gray_r"``) or ``round(255 * v)``; every pixel becomes a
    ``scale x scale`` block, so the picture stays crisp at any size. PNG
    ``compress_level=1`` trades a slightly larger file for speed (the widgets
    call this on every slider move).

    Args:
        image_2d: ``(H, W)`` float tensor or array.
        scale: integer upscale factor (>= 1).
        invert: dark-on-white (``True``) or white-on-black (``False``).

    Returns:
        PNG bytes of a ``(H*scale, W*scale)`` 8-bit greyscale ("L") image.
    """
    arr = _as_array("image_2d", image_2d, 2)
    scale = check_positive_int("scale", scale)
    im = PILImage.fromarray(_gray_levels(arr, invert))
    if scale > 1:
        h, w = arr.shape
        im = im.resize((w * scale, h * scale), PILImage.Resampling.NEAREST)
    return encode_png(im)


def png_size(png: bytes) -> tuple[int, int]:
    """``(width, height)`` of a PNG, in pixels."""
    with PILImage.open(io.BytesIO(png)) as im:
        return im.size


def montage(rows: Sequence[Sequence[bytes]], gap: int = 8) -> bytes:
    """Paste PNGs into one picture: each inner list is a row, left to right."""
    ims = [[PILImage.open(io.BytesIO(b)).convert("RGB") for b in row] for row in rows if row]
    widths = [sum(im.width for im in row) + gap * (len(row) - 1) for row in ims]
    heights = [max(im.height for im in row) for row in ims]
    canvas = PILImage.new("RGB", (max(widths), sum(heights) + gap * (len(ims) - 1)), "white")
    y = 0
    for row, h in zip(ims, heights, strict=True):
        x = 0
        for im in row:
            canvas.paste(im, (x, y))
            x += im.width + gap
        y += h + gap
    return encode_png(canvas, compress_level=6)


def auto_scale(height: int, width: int, target: int) -> int:
    """The largest integer scale that keeps the longer side at most ``target`` (>= 1)."""
    return max(1, target // max(height, width))


def resolve_scale(scale, image_shape: tuple[int, int], target: int = TARGET_SIDE) -> int:
    """``scale`` if given (a positive int), else :func:`auto_scale` of one image."""
    if scale is None:
        return auto_scale(*image_shape, target)
    return check_positive_int("scale", scale)


def grid_png(images: np.ndarray, *, nrow: int | None, scale: int) -> bytes:
    """``(N, H, W)`` images tiled (1-pixel white gaps) and rendered."""
    grid = image_grid(images, nrow=nrow, pad=1, pad_value=0.0)
    return render_png(grid, scale=scale)


def grid_scale(n: int, nrow: int | None, image_shape, scale) -> int:
    """``scale`` if given, else the scale that fits the grid of ``n`` images in 256 px."""
    if scale is not None:
        return check_positive_int("scale", scale)
    cols = nrow or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    h, w = image_shape
    return auto_scale(rows * (h + 1), cols * (w + 1), TARGET_GRID_SIDE)
