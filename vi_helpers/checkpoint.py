"""Checkpoints: save and load models safely.

Format: a `safetensors <https://huggingface.co/docs/safetensors>`_ file holding the
model's ``state_dict``, with string metadata: the model class name, its ``config``
(the constructor arguments, as JSON) and the caller's own metadata (JSON). A
safetensors file is plain numbers plus a JSON header, so loading it cannot run
code, unlike a pickle.

* :func:`save_checkpoint` writes atomically: a temporary file in the same folder,
  flushed to disk with ``fsync``, then ``os.replace`` onto the real name. A crash
  or an error mid-save leaves the previous checkpoint intact, never a torn file.
* :func:`load_checkpoint` rebuilds a :class:`~vi_helpers.models.VariationalAutoencoder`
  or :class:`~vi_helpers.models.LinearGaussianVAE` from the stored class name and
  config (only those classes: nothing is imported by name), or loads into a model
  you pass, checking every parameter's name and shape.
* Files that are not safetensors (e.g. ``torch.save(model.state_dict(), ...)``) are
  read with ``torch.load(weights_only=True)``; a pickle that would execute code is
  refused with a ``ValueError``.
* :func:`read_checkpoint_metadata` returns the stored metadata without the weights.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import pickletools
import tempfile
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from . import models as _models
from ._validate import as_path, check_device, check_weights

__all__ = ["save_checkpoint", "load_checkpoint", "read_checkpoint_metadata", "FORMAT"]

#: Value of the ``format`` metadata entry written by :func:`save_checkpoint`.
FORMAT = "vi_helpers.checkpoint/1"

# The only classes load_checkpoint rebuilds by name: an explicit table, never getattr,
# so a crafted file cannot make us construct an arbitrary object.
_REBUILDABLE = {
    "VariationalAutoencoder": _models.VariationalAutoencoder,
    "LinearGaussianVAE": _models.LinearGaussianVAE,
}

# Config entries that only weight the training loss; they may differ between the
# saved model and the one loaded into (e.g. to fine-tune with another beta).
_LOSS_ONLY_CONFIG = ("beta", "free_bits")



# ------------------------------------------------------------------------------ save
def save_checkpoint(
    model: torch.nn.Module, path: str | os.PathLike, *, metadata: dict | None = None
) -> Path:
    """Save ``model``'s weights, class name and config to ``path`` (safetensors), atomically.

    Args:
        model: a ``torch.nn.Module``; its ``config`` dict (if it has one) is stored so
            that :func:`load_checkpoint` can rebuild it.
        path: file to write (its folder must exist); replaced if it exists.
        metadata: your own JSON-serializable dict (e.g. epochs, final ELBO, seed).

    Returns:
        The path written, as a ``Path``.

    Raises:
        TypeError: ``model`` is not a module, or ``metadata`` not a dict / not JSON.
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    from safetensors.torch import save as _st_save  # only needed when saving

    check_weights(model, finite=False)  # a module with values: not meta, not float16
    path = as_path("path", path)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    try:
        user_json = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"metadata must be JSON-serializable: {err}") from err
    config = getattr(model, "config", None)
    if config is not None and not isinstance(config, dict):
        raise TypeError(f"model.config must be a dict, got {type(config).__name__}")
    try:
        config_json = json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"model.config must be JSON-serializable: {err}") from err
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot save to {path}: folder {folder} does not exist")

    # safetensors wants contiguous CPU tensors that do not share memory
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    header = {
        "format": FORMAT,
        "model_class": type(model).__name__,
        "model_config": config_json,
        "user_metadata": user_json,
        "torch_version": torch.__version__,
    }
    data = _st_save(tensors, metadata=header)

    stale = _stale_temporaries(path)  # left by a save that was killed (SIGKILL, power cut)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    for old in stale:
        old.unlink(missing_ok=True)
    return path


def _stale_temporaries(path: Path) -> list[Path]:
    """The hidden ``.<name>.*.tmp`` files of earlier saves of ``path`` that never finished.

    Only files that existed before this save started are listed, so a save that is
    still running elsewhere keeps its own file.
    """
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    prefix = f".{path.name}."
    return [path.parent / n for n in names if n.startswith(prefix) and n.endswith(".tmp")]


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (POSIX); harmless to skip where unsupported."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------ read
def _safetensors_metadata(path: Path) -> tuple[dict | None, str]:
    """``(metadata, "")`` if ``path`` is a safetensors file, else ``(None, why not)``.

    ``safetensors.safe_open`` parses and validates the header (its size, JSON and
    offsets) and reads no tensor data.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as f:
            return dict(f.metadata() or {}), ""
    except (SafetensorError, OSError) as err:
        return None, str(err)


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise ValueError(f"checkpoint {path} is not a file")


def _decode_metadata(path: Path, meta: Mapping[str, str]) -> dict:
    try:
        config = json.loads(meta.get("model_config", "null"))
        user = json.loads(meta.get("user_metadata", "{}"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: corrupt metadata: {err}") from err
    return {
        "format": meta.get("format"),
        "model_class": meta.get("model_class"),
        "config": config,
        "metadata": user,
        "torch_version": meta.get("torch_version"),
    }


def read_checkpoint_metadata(path: str | os.PathLike) -> dict:
    """The metadata of a checkpoint written by :func:`save_checkpoint`, without the weights.

    Returns:
        ``{"format", "model_class", "config", "metadata", "torch_version"}``, where
        ``config`` is the model's constructor arguments and ``metadata`` the dict
        passed to :func:`save_checkpoint`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a safetensors file (a ``torch.save`` pickle has no metadata).
    """
    path = as_path("path", path)
    _check_exists(path)
    meta, why_not = _safetensors_metadata(path)
    if meta is None:
        raise ValueError(
            f"{path} is not a safetensors checkpoint ({why_not}), so it has no metadata to "
            "read (files from torch.save hold weights only)"
        )
    return _decode_metadata(path, meta)


def _pickled_globals(path: Path) -> list[str]:
    """The ``module.name`` callables a pickle (or a ``torch.save`` file) would import.

    Nothing is executed. A ``torch.save`` zip (the default format) is scanned by
    ``torch.serialization.get_unsafe_globals_in_checkpoint``, which lists the globals
    outside torch's allowlist. That function refuses other files, and its opcode scan
    skips protocol-4 ``STACK_GLOBAL``, so legacy ``torch.save`` files and bare pickles
    are scanned with :mod:`pickletools` (a legacy file is several pickles in a row).
    Only used to word the error once torch's safe loader has refused a file.
    """
    if zipfile.is_zipfile(path):
        try:
            return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        except (RuntimeError, ValueError, KeyError):  # a zip, but not from torch.save
            return []
    try:
        blob = path.read_bytes()
    except OSError:
        return []
    found: list[str] = []
    stream = io.BytesIO(blob)
    while stream.tell() < len(blob):
        strings: list[str] = []
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                    strings.append(arg)
                elif op.name in ("GLOBAL", "INST"):
                    found.append(arg.replace(" ", "."))
                elif op.name == "STACK_GLOBAL":
                    found.append(".".join(strings[-2:]) if len(strings) >= 2 else "?")
        except Exception:  # not (or no longer) a pickle: stop scanning
            break
    return [g for g in dict.fromkeys(found) if not g.startswith(("torch.", "collections."))]


def _torch_load(path: Path, map_location, why_not_safetensors: str) -> dict:
    """``torch.load(weights_only=True)``, with its failures turned into clear errors."""
    try:
        with warnings.catch_warnings():
            # weights_only warns about pickle protocols it was not written for, then
            # refuses the file anyway; the refusal is what the user needs to see
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(path, weights_only=True, map_location=map_location)
    except pickle.UnpicklingError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        reason = next((line for line in lines if "nsupported" in line), lines[0] if lines else "")
        suspects = _pickled_globals(path)
        if suspects:
            raise ValueError(
                f"refusing to load {path}: it is a pickle that would run code when loaded "
                f"(it calls {', '.join(suspects)}). torch's safe loader (weights_only=True) "
                f"stopped it: {reason.rstrip('.')}. Use torch.load(weights_only=False) only on files "
                "whose origin you trust, then re-save with save_checkpoint."
            ) from err
        raise ValueError(
            f"{path} is neither a safetensors checkpoint ({why_not_safetensors}) nor a "
            f"torch.save file of plain tensors; torch's safe loader (weights_only=True) "
            f"says: {reason}"
        ) from err
    except Exception as err:  # garbage, truncated zip, ...
        raise ValueError(
            f"{path} is neither a safetensors checkpoint ({why_not_safetensors}) nor a "
            f"readable torch.save file: {type(err).__name__}: {err}"
        ) from err
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise ValueError(f"{path} does not hold a state_dict (a dict of name -> tensor)")
    return dict(obj)


def _check_fit(model: torch.nn.Module, state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Refuse, naming the parameter, a state_dict whose names or shapes differ from ``model``'s."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit {type(model).__name__}: missing parameter(s) {missing}, "
            f"unexpected parameter(s) {unexpected}"
        )
    for name, value in own.items():
        if tuple(state[name].shape) != tuple(value.shape):
            raise ValueError(
                f"{path} does not fit {type(model).__name__}: parameter {name!r} has shape "
                f"{tuple(state[name].shape)} in the checkpoint but {tuple(value.shape)} in "
                "the model"
            )


def load_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module | None = None,
    *,
    map_location: str | torch.device = "cpu",
) -> torch.nn.Module:
    """Load a checkpoint, rebuilding the model or filling the one given.

    Args:
        path: a file from :func:`save_checkpoint` (or a ``torch.save`` of a
            ``state_dict``, for which ``model`` is required).
        model: ``None`` to rebuild the saved :class:`VariationalAutoencoder` or
            :class:`LinearGaussianVAE` from its stored config (then moved to
            ``map_location``); or a model to load the weights into (it stays on
            its device). Its class must match the saved one, every parameter's
            name and shape must match, and so must its config apart from the
            loss weights ``beta`` and ``free_bits``.
        map_location: device the tensors are read onto.

    Returns:
        The model with the saved weights.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a mismatch (naming the parameter or config entry), an unknown
            class with ``model=None``, a corrupt file, or a pickle that would run code.
    """
    path = as_path("path", path)
    if model is not None:
        check_weights(model, finite=False)  # loading into a meta or float16 model fails late
    map_location = check_device("map_location", map_location)
    _check_exists(path)
    meta, why_not = _safetensors_metadata(path)
    if meta is None:
        state = _torch_load(path, map_location, why_not)
        if model is None:
            raise ValueError(
                f"{path} is a torch.save file holding weights only (no class or config); "
                "pass model=<a model of the right size> to load it into"
            )
        _check_fit(model, state, path)
        model.load_state_dict(state, strict=True)
        return model

    from safetensors import SafetensorError
    from safetensors.torch import load_file

    info = _decode_metadata(path, meta)
    try:
        state = load_file(path, device=str(map_location))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path} is a corrupt safetensors file: {err}") from err
    if model is None:
        model = _rebuild(path, info["model_class"], info["config"])
        _check_fit(model, state, path)
        model.load_state_dict(state, strict=True)
        return model.to(map_location)
    _check_same_model(path, model, state, info["model_class"], info["config"])
    model.load_state_dict(state, strict=True)  # only now: a refused load leaves model as it was
    return model


def _rebuild(path: Path, saved_class, saved_config) -> torch.nn.Module:
    """A new model of ``saved_class`` from its config: only the classes in ``_REBUILDABLE``."""
    cls = _REBUILDABLE.get(saved_class)
    if saved_class is None:
        raise ValueError(
            f"{path} is a safetensors file without a model class (not written by "
            "save_checkpoint); pass model=<a model of the right size> to load it into"
        )
    if cls is None:
        raise ValueError(
            f"{path} holds a {saved_class!r}, which load_checkpoint cannot rebuild "
            f"(only {sorted(_REBUILDABLE)}); pass model=<an instance> to load into"
        )
    if not isinstance(saved_config, dict):
        raise ValueError(f"{path} has no model config to rebuild {saved_class} from")
    try:
        return cls(**saved_config)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: cannot rebuild {saved_class} from {saved_config}: {err}") from err


def _check_same_model(path: Path, model: torch.nn.Module, state, saved_class, saved_config) -> None:
    """Refuse a model of another class, other parameters, or configured otherwise (loss
    weights aside)."""
    if saved_class is not None and saved_class != type(model).__name__:
        raise ValueError(f"{path} holds a {saved_class}, but model is a {type(model).__name__}")
    _check_fit(model, state, path)
    own_config = getattr(model, "config", None)
    if isinstance(saved_config, dict) and isinstance(own_config, dict):
        differ = sorted(
            k
            for k in set(saved_config) | set(own_config)
            if k not in _LOSS_ONLY_CONFIG and saved_config.get(k) != own_config.get(k)
        )
        if differ:
            detail = ", ".join(
                f"{k}={saved_config.get(k)!r} saved vs {own_config.get(k)!r} in model"
                for k in differ
            )
            raise ValueError(f"{path} was saved from a differently configured model: {detail}")
