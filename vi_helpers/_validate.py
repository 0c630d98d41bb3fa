"""Argument checks shared by every public function: the one home for validation.

Each check raises ``TypeError`` (wrong kind of object or dtype) or ``ValueError``
(wrong rank, size, sign or a non-finite value) with a message that *names the
argument* and says what was expected, so a student sees ``x must have shape
(batch, 64), got (64,)`` instead of a NaN three cells later. Checks run before
any weight moves.

**The dtype rule** (one rule for the whole package):

* *Data* given to a model (``x`` of the trainer, ``validation_data``, the
  evaluation functions, a model's own ``forward``/``encode``/``elbo``/``decode``)
  is **cast to the model's dtype and device** (:func:`check_model_input`), so
  ``torch.from_numpy(x)`` (float64) or float16 data just works with a float32
  model. Casting data is safe: pixel values in [0, 1] lose nothing that matters.
  A floating NumPy array given as a dataset is converted the same way
  (:func:`as_data_tensor`); an integer one is refused with the fix.
* *float16* tensors are refused everywhere else (``TypeError`` with the fix
  ``x.float()``): sums over hundreds of pixels overflow float16 (largest value
  65504). A model with float16 weights is refused too (``model.float()``; for
  speed use ``train_model(..., mixed_precision=torch.bfloat16)``).
* *Parameters* compared against a model (``free_energy``'s ``mu``/``log_var``)
  are **refused** when their dtype differs from the model's
  (:func:`check_same_dtype`): the message names the argument, both dtypes and
  the fix (``mu.float()``), because silently casting a tensor the caller
  differentiates or optimizes would hide which precision they work in.
* Integer and bool tensors are refused (``TypeError``): an integer image
  tensor almost always means the data was not scaled to [0, 1].

Besides the checks, this module writes down the contract a VAE offers to the
evaluation code (:class:`VAE`, checked by :func:`check_vae`), holds the
:func:`eval_mode` context manager and the constant :data:`LOG_2PI`, which every
module that writes a Gaussian log-density imports from here.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

__all__ = [
    "LOG_2PI",
    "check_decoder_model",
    "check_function_values",
    "NonFiniteValuesError",
    "check_finite_scalar",
    "check_positive_scalar",
    "check_range",
    "check_in_interval",
    "VAE",
    "VAE_MEMBERS",
    "check_tensor",
    "check_positive_int",
    "check_nonnegative_int",
    "check_positive_float",
    "check_nonnegative_float",
    "check_finite_float",
    "check_optional",
    "check_same_shape",
    "check_choice",
    "check_generator",
    "check_input_size",
    "check_model_input",
    "check_vae",
    "check_same_dtype",
    "check_device",
    "check_finite_weights",
    "check_weights",
    "as_path",
    "as_data_tensor",
    "as_float_tensor",
    "as_elementwise_tensors",
    "eval_mode",
]

#: :math:`\log 2\pi`, the constant of every Gaussian log-density (nats).
LOG_2PI = math.log(2.0 * math.pi)


def _shape_str(shape: Sequence[int | None]) -> str:
    """A shape as Python prints a tuple: ``(2,)``, ``(*, 64)``."""
    items = ["*" if s is None else str(s) for s in shape]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _ranks_str(allowed: tuple[int, ...]) -> str:
    """``2``, ``1 or 2``, or ``1 to 15`` for a run of consecutive ranks."""
    if len(allowed) > 2 and allowed == tuple(range(allowed[0], allowed[-1] + 1)):
        return f"{allowed[0]} to {allowed[-1]}"
    return " or ".join(str(a) for a in allowed)


def _fix_for(dtype: torch.dtype) -> str:
    """The method that converts a tensor to ``dtype``: ``.float()``, ``.double()``, ``.to(...)``."""
    return {torch.float32: ".float()", torch.float64: ".double()"}.get(dtype, f".to({dtype})")


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
    allow_float16: bool = False,
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
        allow_float16: accept float16 (data that a model casts to its own dtype);
            otherwise float16 is refused (see the dtype rule in the module docstring).

    Raises:
        TypeError: not a tensor, not floating point when ``floating``, or float16.
        ValueError: on the ``meta`` device, wrong rank/shape, empty, non-finite or negative.
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.device.type == "meta":
        raise ValueError(
            f"{name} is on the meta device: it has a shape but no values; "
            "create it on 'cpu' (or 'cuda')"
        )
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {value.dtype}")
    if floating and value.dtype == torch.float16 and not allow_float16:
        raise TypeError(
            f"{name} has dtype torch.float16, whose sums overflow above 65504; "
            f"pass {name}.float()"
        )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.dim() not in allowed:
            raise ValueError(
                f"{name} must have {_ranks_str(allowed)} dimension(s), "
                f"got shape {tuple(value.shape)}"
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


def check_finite_float(name: str, value) -> float:
    """Return ``float(value)`` if it is a finite real number (bools are refused)."""
    return _real(name, value, "a finite number")


def check_finite_scalar(name: str, value) -> float:
    """A finite real number, or a one-element tensor holding one, as a float."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = check_tensor(name, value, finite=False).item()  # meta and float16 refused
    return check_finite_float(name, value)


def check_positive_scalar(name: str, value) -> float:
    """A finite number > 0, or a one-element tensor holding one, as a float."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = check_tensor(name, value, finite=False).item()  # meta and float16 refused
    return check_positive_float(name, value)


class NonFiniteValuesError(ValueError):
    """A user function returned NaN/inf (black-box VI reports it as divergence)."""


def check_function_values(fz, n_samples: int, z: torch.Tensor, name: str) -> torch.Tensor:
    """``fz = name(z)`` must be a finite ``(S,)`` tensor, one value per sample row of ``z``."""
    if not isinstance(fz, torch.Tensor):
        raise TypeError(f"{name} must return a torch.Tensor, got {type(fz).__name__}")
    if tuple(fz.shape) != (n_samples,):
        raise ValueError(
            f"{name} must return shape (S,) = ({n_samples},), one value per sample, for z of "
            f"shape {tuple(z.shape)}; got {tuple(fz.shape)}"
        )
    if not bool(torch.isfinite(fz).all()):
        raise NonFiniteValuesError(f"{name} returned NaN or infinite values")
    return fz


def check_optional(check, name: str, value):
    """``None``, or ``check(name, value)``: for options whose ``None`` means "not set"."""
    return None if value is None else check(name, value)


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
    if isinstance(value, torch.Tensor):  # floating, not float16, not meta; values unscanned
        return check_tensor(name, value, finite=False, allow_empty=True)
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or tensor, got bool")
    if isinstance(value, numbers.Real):
        return torch.tensor(float(value), dtype=dtype)
    if isinstance(value, np.ndarray):
        if not np.issubdtype(value.dtype, np.floating):
            raise TypeError(f"{name} must have a floating dtype, got {value.dtype}")
        return torch.as_tensor(value, dtype=dtype)
    raise TypeError(f"{name} must be a torch.Tensor or number, got {type(value).__name__}")


def as_elementwise_tensors(**named) -> list[torch.Tensor]:
    """Tensors or Python numbers -> tensors of one common shape, dtype and device.

    Tensors must all have the same shape (no broadcasting) and be finite; numbers
    become constant tensors of that shape. Anything else is a ``TypeError``.
    """
    first = None
    for name, value in named.items():
        if isinstance(value, torch.Tensor):
            check_tensor(name, value)
            if first is None:
                first = (name, value)
            else:
                check_same_shape(first[0], first[1], name, value)
        elif isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"{name} must be a torch.Tensor or a Python number, got {type(value).__name__}"
            )
        else:
            check_finite_float(name, value)
    like = torch.zeros((), dtype=torch.get_default_dtype()) if first is None else first[1]
    return [
        value if isinstance(value, torch.Tensor) else torch.full_like(like, float(value))
        for value in named.values()
    ]


def check_generator(generator) -> torch.Generator | None:
    """Return ``generator`` if it is a ``torch.Generator`` or ``None``."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    return generator


def check_input_size(name: str, x: torch.Tensor, input_size: int | None) -> torch.Tensor:
    """Refuse a tensor whose last dimension is not the model's ``input_size`` (``None``: any)."""
    if input_size is not None and (x.dim() == 0 or x.shape[-1] != input_size):
        raise ValueError(
            f"{name} must have last dimension {input_size} (the model's input_size), "
            f"got shape {tuple(x.shape)}"
        )
    return x


def _model_parameter(model: torch.nn.Module, name: str = "model") -> torch.Tensor | None:
    """The first parameter of ``model`` (its dtype and device), after refusing meta and float16."""
    p = next(model.parameters(), None)
    if p is not None and p.device.type == "meta":
        raise ValueError(f"{name} is on the meta device (its weights have no values); "
                         f"load or initialize it on 'cpu' first")
    if p is not None and p.dtype == torch.float16:
        raise TypeError(
            f"{name} has float16 weights, whose sums overflow above 65504; use "
            f"{name}.float() (for speed: train_model(..., mixed_precision=torch.bfloat16))"
        )
    return p


def check_model_input(
    model: torch.nn.Module, x, name: str = "x", *, ndim: int | Sequence[int] | None = 2,
    last_dim: int | None = None,
) -> torch.Tensor:
    """Check data for ``model`` and return it **in the model's dtype and device**.

    ``x`` must be a floating tensor of rank ``ndim`` (``(B, D)`` by default) whose
    last dimension is ``model.input_size`` (or ``last_dim`` when given: e.g. the
    decoder's ``latent_size`` for codes ``z``), finite and not empty. float16 and
    float64 data are cast (the dtype rule of this module); integer data is refused.
    """
    check_tensor(name, x, ndim=ndim, last_dim=last_dim, allow_float16=True)
    if last_dim is None:
        check_input_size(name, x, getattr(model, "input_size", None))
    p = _model_parameter(model)
    return x if p is None else x.to(device=p.device, dtype=p.dtype)


def check_same_dtype(name: str, value: torch.Tensor, like_name: str,
                     like: torch.Tensor | torch.dtype) -> torch.Tensor:
    """Refuse ``value`` whose dtype differs from ``like``'s; the message gives the fix.

    For *parameters* compared against a model or another argument (see the dtype
    rule in the module docstring); data is cast instead (:func:`check_model_input`).
    """
    dtype = like if isinstance(like, torch.dtype) else like.dtype
    if value.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {value.dtype} but {like_name} has {dtype}; "
            f"convert it: {name}{_fix_for(dtype)}"
        )
    return value


def as_data_tensor(name: str, value):
    """A dataset or batch as a tensor: a floating NumPy array is converted, others refused.

    Tensors and other objects pass through unchanged (their own checks follow).
    An integer or bool array is refused with the fix, since pixels must be scaled
    to [0, 1] first.
    """
    if isinstance(value, np.ndarray):
        if np.issubdtype(value.dtype, np.floating):
            return torch.from_numpy(np.ascontiguousarray(value))
        raise TypeError(
            f"{name} is a NumPy array of dtype {value.dtype}; the models need floating "
            f"tensors in [0, 1]: pass torch.from_numpy({name}).float() (divide raw 0-255 "
            "pixels by 255)"
        )
    return value


def check_device(name: str, device) -> torch.device:
    """A ``torch.device`` from ``device`` (a string or device) that exists on this machine.

    Raises:
        TypeError: not a string or ``torch.device``.
        ValueError: not a device name, the ``meta`` device, or CUDA/MPS asked for on a
            machine without it (the message says so instead of torch's AssertionError).
    """
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device)
        except RuntimeError as err:
            raise ValueError(
                f"{name} must name a device such as 'cpu' or 'cuda', got {device!r}"
            ) from err
    else:
        raise TypeError(
            f"{name} must be a device name such as 'cpu' or 'cuda', or a torch.device, "
            f"got {type(device).__name__}"
        )
    if dev.type == "meta":
        raise ValueError(f"{name} must be a device that holds values, got 'meta'")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"{name}={str(dev)!r}, but CUDA is not available on this machine "
                "(torch.cuda.is_available() is False); use 'cpu'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"{name}={str(dev)!r}, but this machine has {torch.cuda.device_count()} "
                "CUDA device(s)"
            )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name}='mps', but MPS is not available on this machine; use 'cpu'")
    return dev


def check_weights(model, name: str = "model", *, finite: bool = True) -> torch.nn.Module:
    """Return ``model`` if it is a module whose weights hold values: not on the meta device,
    not float16 and (when ``finite``) without NaN or inf, naming the parameter."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    _model_parameter(model, name)  # meta and float16 first: their values cannot be scanned
    return check_finite_weights(model, name) if finite else model


def as_path(name: str, value) -> Path:
    """A ``Path`` from a string or ``os.PathLike`` (``~`` expanded); anything else a TypeError."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or path, got {type(value).__name__}")
    return Path(value).expanduser()


def check_finite_weights(model: torch.nn.Module, name: str = "model") -> torch.nn.Module:
    """Refuse a model with NaN or infinite weights (a diverged run), naming the parameter."""
    _model_parameter(model, name)  # meta and float16 first: their values cannot be scanned
    for pname, p in model.named_parameters():
        if not bool(torch.isfinite(p).all()):
            raise ValueError(
                f"{name} has NaN or infinite weights (in {pname!r}): its training diverged. "
                "Retrain with a smaller learning_rate or load a checkpoint"
            )
    return model


@runtime_checkable
class VAE(Protocol):
    r"""What the evaluation code (``evaluate``, ``free_energy``, ``widgets``) needs of a VAE.

    A model with a standard-normal prior :math:`p(z)=\mathcal N(0, I_L)`, a diagonal
    Gaussian encoder and a decoder :math:`p(x\mid z)`. Both
    :class:`~vi_helpers.models.VariationalAutoencoder` and
    :class:`~vi_helpers.models.LinearGaussianVAE` satisfy it.

    Attributes:
        input_size: ``D``.
        latent_size: ``L``.
        likelihood: the decoder's family (``"mse"``, ``"gaussian"``, ``"bernoulli"``).
        decoder: the network ``z (..., L) -> x_hat (..., D)``: means, or logits for
            ``"bernoulli"``; what :meth:`log_likelihood` scores.
    """

    input_size: int
    latent_size: int
    likelihood: str
    decoder: torch.nn.Module

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, D) -> (mu, log_var)``, each ``(B, L)``."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        r"""``z (..., L) ->`` the mean of :math:`p(x\mid z)`, ``(..., D)``."""

    def log_likelihood(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(x\mid z)` in nats per example, ``(...)``, for ``x_hat = decoder(z)``."""

    def loss_function(self, x, x_hat, mu, log_var, **kwargs) -> torch.Tensor:
        """The training loss, a scalar batch mean (the seed's signature)."""


#: The members of :class:`VAE`, in the order :func:`check_vae` looks for them.
VAE_MEMBERS = (
    "input_size", "latent_size", "likelihood", "decoder",
    "encode", "decode", "log_likelihood", "loss_function",
)


def check_vae(model, name: str = "model") -> torch.nn.Module:
    """Return ``model`` if it is a ``torch.nn.Module`` that offers the :class:`VAE` contract.

    Raises:
        TypeError: not a module, a member of :class:`VAE` is missing (named), or
            float16 weights.
        ValueError: weights on the meta device, or NaN/infinite weights.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    for member in VAE_MEMBERS:
        if not hasattr(model, member):
            raise TypeError(
                f"{name} must be a VAE ({', '.join(VAE_MEMBERS)}; a VariationalAutoencoder "
                f"or LinearGaussianVAE): it has no {member!r}"
            )
    return check_finite_weights(model, name)


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Evaluation mode (no dropout or batch-norm updates) for the block; the mode is restored.

    Gradients are untouched: combine with ``torch.no_grad()`` where none are needed.
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


# -- widgets: a model to decode with, slider ranges and values ------------------------------
def check_decoder_model(name: str, model, *, need_encode: bool = False) -> int:
    """Return ``latent_size`` if ``model`` can decode (and encode), else raise TypeError."""
    need = "decode(z)" + (" and encode(x)" if need_encode else "")
    if not isinstance(model, torch.nn.Module) or not callable(getattr(model, "decode", None)):
        raise TypeError(
            f"{name} must be a VAE (a torch.nn.Module with {need} and latent_size), "
            f"got {type(model).__name__}"
        )
    if need_encode and not callable(getattr(model, "encode", None)):
        raise TypeError(
            f"{name} must have encode(x) -> (mean, log_var), got {type(model).__name__}"
        )
    latent = getattr(model, "latent_size", None)
    if isinstance(latent, bool) or not isinstance(latent, int) or latent < 1:
        raise TypeError(f"{name} must have an int attribute latent_size >= 1, got {latent!r}")
    if next(model.parameters(), None) is None:
        raise TypeError(f"{name} has no parameters, so it cannot be a trained decoder")
    check_finite_weights(model, name)
    return latent


def check_range(name: str, value, *, positive: bool = False) -> tuple[float, float]:
    """A slider range: a pair ``(low, high)`` of finite numbers, ``low < high`` (and ``> 0``)."""
    ok = (
        isinstance(value, Sequence)
        and len(value) == 2
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
        and all(math.isfinite(float(v)) for v in value)
        and float(value[0]) < float(value[1])
        and (not positive or float(value[0]) > 0)
    )
    if not ok:
        what = "0 < low < high" if positive else "low < high"
        raise ValueError(
            f"{name} must be a pair (low, high) of finite numbers with {what}, got {value!r}"
        )
    return float(value[0]), float(value[1])


def check_in_interval(name: str, value, lo: float, hi: float) -> float:
    """A number in ``[lo, hi]`` (a slider's starting value)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not lo <= float(value) <= hi
    ):
        raise ValueError(f"{name} must be a number in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)
