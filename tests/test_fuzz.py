"""Fuzz test: wrong inputs to every public function end in a clear error or a finite result.

Every module of ``vi_helpers`` that defines ``__all__`` is walked (modules added
later are picked up: :func:`test_every_public_callable_has_a_template` fails
until their functions have a template in ``TEMPLATES`` or a reason in
``NOT_FUZZED``, both in ``tests/fuzz_templates.py``). A template builds a *valid* call; hypothesis then changes one
argument at a time into a wrong one: wrong rank, wrong trailing size,
mismatched batch, empty, integer/bool/float16/float64, NaN/+-inf, negative or
zero sizes, non-tensors, the meta device, models with NaN, float16 or float64
weights. The only outcomes allowed are

* a ``ValueError``/``TypeError`` whose message names the changed argument, or
* a result without NaN/inf (unless the input itself was non-finite and the
  argument is documented to let NaN through, e.g. network outputs that the
  trainer's NaN guard must see).

Bounded: a fixed number of examples per function (``derandomize=True``, so CI
is deterministic); the file runs in well under a minute on one core.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from fuzz_templates import NOT_FUZZED, TEMPLATES, Template  # noqa: E402
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import vi_helpers  # noqa: E402


@pytest.fixture(autouse=True)
def _in_a_temporary_folder(tmp_path, monkeypatch):
    """save_figure(directory=None) writes to figures_dir() of the current folder: not the repo's."""
    monkeypatch.chdir(tmp_path)


# -- the walk over the package ------------------------------------------------------------------
#: Top-level modules that are not a public API to fuzz, and why.
SKIPPED_MODULES = {"checks": "exercise checkers: tests/checks runs each against its cases"}


def public_modules() -> dict[str, object]:
    """Every top-level module or package of vi_helpers with an ``__all__`` (new ones too)."""
    found = {}
    for info in pkgutil.iter_modules(vi_helpers.__path__):
        if info.name.startswith("_") or info.name in SKIPPED_MODULES:
            continue
        module = importlib.import_module(f"vi_helpers.{info.name}")
        if hasattr(module, "__all__"):
            found[info.name] = module
    return found


def resolve(name: str):
    module, *attrs = name.split(".")
    obj = importlib.import_module(f"vi_helpers.{module}")
    for attr in attrs:
        obj = getattr(obj, attr)
    return obj


def test_every_public_callable_has_a_template():
    covered = {id(resolve(n)) for n in TEMPLATES} | {id(resolve(n)) for n in NOT_FUZZED}
    missing = [
        f"{name}.{attr}"
        for name, module in public_modules().items()
        for attr in module.__all__
        if callable(getattr(module, attr)) and id(getattr(module, attr)) not in covered
    ]
    assert not missing, (
        "public callables without a fuzz template (add one to TEMPLATES in "
        f"tests/fuzz_templates.py, or a reason to NOT_FUZZED): {missing}"
    )


# -- mutations ----------------------------------------------------------------------------------
NONFINITE = {"nan": math.nan, "inf": math.inf, "neg_inf": -math.inf}
TENSOR = ("rank_up", "rank_down", "trailing", "batch", "empty", "int", "bool", "float16",
          "float64", "nan", "inf", "neg_inf", "meta", "numpy", "not_tensor")
INT = ("negative", "zero", "bool", "float", "str", "none")
FLOAT = ("nan", "inf", "neg_inf", "negative", "zero", "str", "bool")
MODULE = ("nan_weights", "meta", "float16", "float64", "not_module")
SEQUENCE = ("int", "none", "negative_item", "nan_item", "str_item")
OTHER = ("int", "none")


def mutations_for(value) -> tuple[str, ...]:
    if isinstance(value, torch.Tensor):
        return TENSOR
    if isinstance(value, bool):
        return ("str", "int")
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return FLOAT
    if isinstance(value, torch.nn.Module):
        return MODULE
    if isinstance(value, str):
        return ("unknown", "int")
    if isinstance(value, (tuple, list)) and value and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        return SEQUENCE
    return OTHER


def mutate_module(model: torch.nn.Module, how: str):
    if how == "not_module":
        return 3
    if how == "meta":
        return model.to("meta")
    if how in ("float16", "float64"):
        return model.to(getattr(torch, how))
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = math.nan
    return model


def mutate(value, how: str, draw):
    """A wrong version of ``value`` (``assume`` away mutations that do not apply)."""
    if isinstance(value, torch.nn.Module):
        return mutate_module(value, how)
    if isinstance(value, torch.Tensor):
        return mutate_tensor(value, how, draw)
    simple = {"int": 3, "none": None, "negative": -1, "zero": 0, "bool": True, "float": 2.5,
              "str": "2", "unknown": "no_such_option"}
    if isinstance(value, float):
        simple |= {"negative": -1.0, "zero": 0.0, **NONFINITE}
    if isinstance(value, (tuple, list)) and how.endswith("_item"):
        bad = {"negative_item": -1, "nan_item": math.nan, "str_item": "1"}[how]
        return (tuple if isinstance(value, tuple) else list)([bad, *value[1:]])
    return simple[how]


def mutate_tensor(v: torch.Tensor, how: str, draw):
    if how in ("rank_down", "trailing", "batch", "empty"):
        assume(v.dim() > 0 and v.shape[0] > 0)
    if how in NONFINITE:
        assume(v.is_floating_point() and v.numel() > 0)
        w = v.clone()
        w.view(-1)[draw.draw(st.integers(0, v.numel() - 1), label="index")] = NONFINITE[how]
        return w
    if how == "not_tensor":
        return draw.draw(st.sampled_from(["abc", None, 3, [[0.5]]]), label="replacement")
    return {
        "rank_up": lambda: v.unsqueeze(0),
        "rank_down": lambda: v[0],
        "trailing": lambda: torch.cat([v, v[..., :1]], dim=-1),
        "batch": lambda: torch.cat([v, v[:1]]),
        "empty": lambda: v[:0],
        "int": lambda: v.round().to(torch.int64),
        "bool": lambda: v > 0,
        "float16": lambda: v.half(),
        "float64": lambda: v.double(),
        "meta": lambda: v.to("meta"),
        "numpy": lambda: v.numpy(),
    }[how]()


# -- the outcome --------------------------------------------------------------------------------
def nonfinite(out, depth: int = 0) -> bool:
    """Whether a result holds NaN or inf anywhere (tensors, arrays, numbers, containers, models)."""
    if depth > 4:
        return False
    if isinstance(out, torch.Tensor):
        return out.is_floating_point() and out.device.type != "meta" and not bool(
            torch.isfinite(out.detach()).all())
    if isinstance(out, np.ndarray):
        return out.dtype.kind == "f" and not np.isfinite(out).all()
    if isinstance(out, float):
        return not math.isfinite(out)
    if isinstance(out, torch.nn.Module):
        return any(nonfinite(p) for p in out.parameters())
    if isinstance(out, dict):
        return any(nonfinite(v, depth + 1) for v in out.values())
    if isinstance(out, (list, tuple)):
        return any(nonfinite(v, depth + 1) for v in out[:50])
    if isinstance(out, torch.distributions.Distribution):
        return nonfinite(out.mean) or nonfinite(out.variance)
    if hasattr(out, "__dataclass_fields__"):
        return any(nonfinite(getattr(out, f), depth + 1) for f in out.__dataclass_fields__)
    return False


def names(message: str, candidates) -> bool:
    return any(re.search(rf"(?<![\w]){re.escape(c)}(?![\w])", message) for c in candidates)


def check_outcome(name: str, tpl: Template, fn, kwargs: dict, slot: str, how: str) -> None:
    where = f"{name}({slot}={how})"
    try:
        out = fn(**kwargs)
    except (ValueError, TypeError) as err:
        candidates = (slot, *tpl.also_named.get(slot, ()))
        assert names(str(err), candidates), (
            f"{where} raised {type(err).__name__} without naming {slot!r}: {err}")
        return
    except tpl.raises_ok:
        return
    except Exception as err:  # noqa: BLE001 - the point: no raw torch/numpy/matplotlib error
        pytest.fail(f"{where} raised a raw {type(err).__name__}: {err}")
    input_nonfinite = how in NONFINITE or how in ("nan_weights", "nan_item")
    if nonfinite(out) and not (input_nonfinite and slot in tpl.nan_ok) and not tpl.inf_result_ok:
        pytest.fail(f"{where} returned NaN or inf instead of an error naming {slot!r}")


def _slots() -> list[tuple[str, str]]:
    pairs = []
    for name in sorted(TEMPLATES):
        _, valid = TEMPLATES[name].build()
        pairs += [(name, slot) for slot in valid]
    plt.close("all")
    return pairs


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_the_valid_call_works(name):
    fn, kwargs = TEMPLATES[name].build()
    out = fn(**kwargs)
    assert TEMPLATES[name].inf_result_ok or not nonfinite(out), f"{name} returned NaN/inf"
    plt.close("all")


@pytest.mark.parametrize("name, slot", _slots())
def test_a_wrong_argument_gives_a_named_error_or_a_finite_result(name, slot):
    tpl = TEMPLATES[name]

    @settings(max_examples=tpl.examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(draw):
        fn, kwargs = tpl.build()
        how = draw.draw(st.sampled_from(mutations_for(kwargs[slot])), label="mutation")
        kwargs[slot] = mutate(kwargs[slot], how, draw)
        try:
            check_outcome(name, tpl, fn, kwargs, slot, how)
        finally:
            plt.close("all")

    run()
