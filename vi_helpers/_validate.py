"""Argument checks shared by every public function.

Each check raises ``TypeError`` (wrong kind of object or dtype) or ``ValueError``
(wrong rank, size, sign or a non-finite value) with a message that *names the
argument* and says what was expected, so a student sees ``x must have shape
(batch, 64), got (64,)`` instead of a NaN three cells later.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

__all__ = [
    "check_tensor",
    "check_positive_int",
    "check_nonnegative_int",
    "check_positive_float",
    "check_nonnegative_float",
    "check_probability",
    "check_same_shape",
    "check_choice",
    "as_float_tensor",
]


def _shape_str(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"


def check_tensor(
    name: str,
    value,
    *,
    ndim: int | Sequence[int] | None = None,
    shape: Sequence[int | None] | None = None,
    last_dim: int | None = None,
    finite: bool = True,
    floating: bool = True,
    nonnegative: bool = False,
    allow_empty: bool = False,
) -> torch.Tensor:
    """Check that ``value`` is a tensor of the expected form and return it.

    Args:
        name: argument name used in the error message.
        value: the object to check.
        ndim: required rank, or a collection of allowed ranks.
        shape: required shape; ``None`` entries match any size.
        last_dim: required size of the last dimension.
        finite: reject NaN and +-Inf.
        floating: require a floating dtype (float16/32/64, bfloat16).
        nonnegative: reject negative entries (variances, probabilities).
        allow_empty: accept tensors with zero elements.

    Raises:
        TypeError: not a tensor, or not floating point when ``floating``.
        ValueError: wrong rank/shape, empty, non-finite or negative.
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {value.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.dim() not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(
                f"{name} must have {want} dimension(s), got shape {tuple(value.shape)}"
            )
    if shape is not None:
        ok = value.dim() == len(shape) and all(
            s is None or s == v for s, v in zip(shape, value.shape, strict=False)
        )
        if not ok:
            raise ValueError(
                f"{name} must have shape {_shape_str(shape)}, got {tuple(value.shape)}"
            )
    if last_dim is not None:
        if value.dim() == 0 or value.shape[-1] != last_dim:
            raise ValueError(
                f"{name} must have last dimension {last_dim}, got shape {tuple(value.shape)}"
            )
    if not allow_empty and value.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(value.shape)}")
    if finite and value.is_floating_point() and value.numel() > 0:
        # One reduction on the fast path: NaN and Inf propagate through a sum. Only
        # if the sum is not finite (a bad value, or a finite overflow) scan element-wise.
        if not bool(torch.isfinite(value.sum())) and not bool(torch.isfinite(value).all()):
            n_bad = int((~torch.isfinite(value)).sum())
            raise ValueError(f"{name} contains {n_bad} NaN or infinite value(s)")
    if nonnegative and value.numel() > 0 and bool((value < 0).any()):
        raise ValueError(f"{name} must be non-negative, got minimum {float(value.min()):.4g}")
    return value


def check_positive_int(name: str, value) -> int:
    """Return ``value`` if it is an ``int`` > 0 (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def check_nonnegative_int(name: str, value) -> int:
    """Return ``value`` if it is an ``int`` >= 0 (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value}")
    return int(value)


def _real(name: str, value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be {what}, got {value}")
    return value


def check_positive_float(name: str, value) -> float:
    """Return ``float(value)`` if it is a finite real number > 0."""
    v = _real(name, value, "a finite number > 0")
    if v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {v}")
    return v


def check_nonnegative_float(name: str, value) -> float:
    """Return ``float(value)`` if it is a finite real number >= 0."""
    v = _real(name, value, "a finite number >= 0")
    if v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {v}")
    return v


def check_probability(name: str, value) -> float:
    """Return ``float(value)`` if it lies in [0, 1]."""
    v = _real(name, value, "a probability in [0, 1]")
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {v}")
    return v


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Refuse silent broadcasting between two tensors that must match."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_choice(name: str, value, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def as_float_tensor(name: str, value, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Turn a Python number, NumPy array or tensor into a floating tensor.

    Integer tensors are refused (``TypeError``) rather than silently cast, because
    an integer image tensor almost always means the data was not scaled to [0, 1].
    """
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            raise TypeError(f"{name} must have a floating dtype, got {value.dtype}")
        return value
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or tensor, got bool")
    if isinstance(value, numbers.Real):
        return torch.tensor(float(value), dtype=dtype)
    try:
        import numpy as np

        if isinstance(value, np.ndarray):
            if not np.issubdtype(value.dtype, np.floating):
                raise TypeError(f"{name} must have a floating dtype, got {value.dtype}")
            return torch.as_tensor(value, dtype=dtype)
    except ImportError:  # pragma: no cover - numpy ships with torch
        pass
    raise TypeError(f"{name} must be a torch.Tensor or number, got {type(value).__name__}")
