"""The check runner: cases, evaluation (no printing), the report, shared helpers.

The per-notebook modules (``kl_divergence``, ``elbo``, ...) build a list of
:class:`Case` objects with mutants and a hint table and call :func:`finish`;
:func:`evaluate` runs the cases and diagnoses the failures without printing, and
:func:`report` prints one line a case, the hints and a summary. See the package
docstring of :mod:`vi_helpers.checks` for what a student sees.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "CheckResult",
    "STATUSES",
    "NOT_ATTEMPTED_MESSAGE",
    "Case",
    "BadOutput",
    "Evaluation",
    "evaluate",
    "report",
    "finish",
    "same",
    "num",
    "fmt",
    "gen",
    "randn",
    "rand",
    "to_f64",
    "F64",
]

#: The possible values of :attr:`CheckResult.status`.
STATUSES = ("passed", "failed", "not attempted", "error")

#: Printed (alone) when the student's function still raises ``NotImplementedError``.
NOT_ATTEMPTED_MESSAGE = (
    "Not attempted yet: replace the `raise NotImplementedError` line with your code, "
    "run that cell to define your function, then re-run this cell."
)

F64 = torch.float64


# ----------------------------------------------------------------------------- result
@dataclass(repr=False)
class CheckResult:
    """Outcome of one check.

    Attributes:
        name: the exercise (the student function's expected name).
        status: one of :data:`STATUSES`.
        passed: number of cases passed.
        total: number of cases run.
        hints: the hints printed for the failed cases (full sentences).
    """

    name: str
    status: str
    passed: int
    total: int
    hints: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def __bool__(self) -> bool:
        return self.status == "passed"

    def __repr__(self) -> str:
        return f"CheckResult({self.name!r}, {self.status}, {self.passed}/{self.total})"

    def _ipython_display_(self) -> None:
        # The report was printed while the check ran; showing the result again as
        # an Out[...] line would only duplicate it (and differ between the solved
        # and the student notebook). So a check call displays nothing more.
        return None


# ----------------------------------------------------------------------------- cases
@dataclass
class Case:
    """One call of the student's function and what it should return.

    ``expected`` is a float64 tensor ("tensor"/"scalar" kinds), a tuple of two
    float64 0-dim tensors ("pair") or an ``int`` ("int"). ``mutants`` maps a hint
    key to the answer a typical mistake gives on this case. ``post`` runs an
    extra test on the (undetached) output and returns a hint key on failure.
    """

    label: str
    args: tuple
    expected: Any
    mutants: dict[str, Any] = field(default_factory=dict)
    rtol: float = 1e-4
    atol: float = 1e-4
    post: Callable[[Any, tuple], str | None] | None = None


class BadOutput(Exception):
    """The output has the wrong type or shape; the message says why."""

    def __init__(self, message: str, hint_key: str | None = None):
        super().__init__(message)
        self.hint_key = hint_key


def _fresh(args: tuple) -> tuple:
    """Copies of the tensor arguments, so the student's code cannot change ours."""
    out = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append(a.detach().clone().requires_grad_(a.requires_grad))
        else:
            out.append(a)
    return tuple(out)


def _type_name(value) -> str:
    t = type(value)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"


def _as_tensor_output(value, kind: str, expected) -> Any:
    """Convert the student's output to float64 for comparison, or raise BadOutput."""
    if value is None:
        raise BadOutput("returned None: did you forget the `return` statement?")
    if kind == "int":
        if isinstance(value, bool):
            raise BadOutput("returned a bool: return the number of dimensions as an int")
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise BadOutput(
                    f"returned a tensor of shape {tuple(value.shape)}: return a single int, "
                    "the number of active dimensions",
                    "mask",
                )
            value = value.item()
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real) and float(value).is_integer():
            return int(value)
        raise BadOutput(f"returned {_type_name(value)} {value!r}: return an int")
    if kind == "pair":
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            what = (
                f"a {_type_name(value)} of length {len(value)}"
                if isinstance(value, (tuple, list))
                else f"a {_type_name(value)}"
            )
            raise BadOutput(f"returned {what}: return a tuple of two numbers (mu_N, lambda_N)")
        return tuple(
            _as_tensor_output(v, "scalar", e) for v, e in zip(value, expected, strict=True)
        )
    if kind == "scalar":
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return torch.tensor(float(value), dtype=F64)
        if not isinstance(value, torch.Tensor):
            raise BadOutput(f"returned a {_type_name(value)}: return a torch.Tensor (a scalar)")
        if not value.is_floating_point():
            raise BadOutput(f"returned dtype {value.dtype}: return a floating-point tensor")
        value = value.detach().to("cpu", F64)
        # a one-element tensor of shape (1,) is accepted as a scalar; any other
        # shape is reported (and diagnosed) as a shape mismatch by the caller
        return value.reshape(()) if value.numel() == 1 else value
    # kind == "tensor"
    if not isinstance(value, torch.Tensor):
        raise BadOutput(f"returned a {_type_name(value)}: return a torch.Tensor")
    if not value.is_floating_point():
        raise BadOutput(f"returned dtype {value.dtype}: return a floating-point tensor")
    return value.detach().to("cpu", F64)


def same(got, want, rtol: float, atol: float, *, match_nonfinite: bool) -> bool:
    """Do two answers agree? Shapes must be equal (no broadcasting)."""
    if isinstance(want, int) or isinstance(got, int):
        return isinstance(got, int) and isinstance(want, int) and got == want
    if isinstance(want, tuple):
        return isinstance(got, tuple) and all(
            same(g, w, rtol, atol, match_nonfinite=match_nonfinite)
            for g, w in zip(got, want, strict=True)
        )
    if got.shape != want.shape:
        return False
    return bool(torch.allclose(got, want, rtol=rtol, atol=atol, equal_nan=match_nonfinite))


def num(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    s = f"{v:.4f}" if abs(v) < 1e5 else f"{v:.4e}"
    if float(s) == 0.0:
        s = s.lstrip("-")  # never print -0.0000
    return s


def fmt(value) -> str:
    """A short, rounded, deterministic rendering of an answer."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(fmt(v) for v in value) + ")"
    if value.numel() == 1 and value.dim() == 0:
        return num(float(value))
    flat = value.reshape(-1)
    shown = ", ".join(num(float(v)) for v in flat[:3])
    more = ", …" if flat.numel() > 3 else ""
    return f"[{shown}{more}] shape {tuple(value.shape)}"


def _has_nonfinite(value) -> bool:
    if isinstance(value, int):
        return False
    if isinstance(value, tuple):
        return any(_has_nonfinite(v) for v in value)
    return not bool(torch.isfinite(value).all())


def _describe_exception(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > 160:
        first = first[:157] + "..."
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


@dataclass
class Evaluation:
    """What running the cases found, before anything is printed.

    ``lines`` holds one report line per case; ``hint_keys`` the mistakes
    diagnosed, in order; ``not_attempted`` is set when the function still raises
    ``NotImplementedError`` (then nothing else is filled in).
    """

    total: int
    n_passed: int = 0
    lines: list[str] = field(default_factory=list)
    hint_keys: list[str] = field(default_factory=list)
    raised: bool = False
    not_attempted: bool = False


def _evaluate_case(fn, case: Case, kind: str, hints: dict[str, str], ev: Evaluation, state: dict):
    """Run one case; record its line. Returns ``(case, converted output)`` on failure."""
    args = _fresh(case.args)
    try:
        out = fn(*args)
    except NotImplementedError:
        ev.not_attempted = True
        return None
    except Exception as err:  # any bug in the student's code: report it, don't crash
        ev.raised = True
        msg = _describe_exception(err)
        if msg == state.get("last_error"):
            ev.lines.append(f"  ✗ {case.label} → the same {type(err).__name__} as above")
        else:
            ev.lines.append(f"  ✗ {case.label} → your function raised {msg}")
        state["last_error"] = msg
        return (case, None)
    try:
        got = _as_tensor_output(out, kind, case.expected)
    except BadOutput as bad:
        ev.lines.append(f"  ✗ {case.label} → {bad}")
        if bad.hint_key:
            ev.hint_keys.append(bad.hint_key)
        return (case, None)
    if kind in ("tensor", "scalar") and got.shape != case.expected.shape:
        ev.lines.append(
            f"  ✗ {case.label} → returned shape {tuple(got.shape)}, "
            f"expected shape {tuple(case.expected.shape)}"
        )
        return (case, got)
    ok = same(got, case.expected, case.rtol, case.atol, match_nonfinite=False)
    post_key = case.post(out, args) if ok and case.post is not None else None
    if ok and post_key is None:
        ev.n_passed += 1
        ev.lines.append(f"  ✓ {case.label} → {fmt(case.expected)}")
        return None
    if post_key is not None:
        ev.hint_keys.append(post_key)
        ev.lines.append(f"  ✗ {case.label} → {hints[post_key].split(':')[0]}")
        return None
    ev.lines.append(f"  ✗ {case.label} → got {fmt(got)}, expected {fmt(case.expected)}")
    return (case, got)


def evaluate(fn, cases: Sequence[Case], *, kind: str, hints: dict[str, str]) -> Evaluation:
    """Run every case and diagnose the failures; prints nothing."""
    ev = Evaluation(total=len(cases))
    failures: list[tuple[Case, Any]] = []  # (case, converted output or None)
    state: dict = {}
    for case in cases:
        failure = _evaluate_case(fn, case, kind, hints, ev, state)
        if ev.not_attempted:
            return ev
        if failure is not None:
            failures.append(failure)
    ev.hint_keys += _diagnose(failures)
    if ev.raised:
        ev.hint_keys.append("_raised")
    if not ev.hint_keys and any(got is not None for _, got in failures):
        ev.hint_keys.append("_generic")  # a wrong value that no known mistake explains
    return ev


_RAISED_HINT = (
    "Your function raised an error on the case(s) marked above. Run it yourself "
    "on small tensors (print the shapes and dtypes), fix it, re-run the cell that "
    "defines it, then re-run this cell."
)


def report(name: str, ev: Evaluation, hints: dict[str, str], generic: str) -> CheckResult:
    """Print the evaluation (one line a case, the hints, a summary) and return the result."""
    total = ev.total
    if ev.not_attempted:
        print(NOT_ATTEMPTED_MESSAGE)
        return CheckResult(name, "not attempted", 0, total, [])
    hint_texts: list[str] = []
    for key in ev.hint_keys:
        text = {"_raised": _RAISED_HINT, "_generic": generic}.get(key) or hints[key]
        if text not in hint_texts:
            hint_texts.append(text)
    print(f"Checking {name} on {total} cases:")
    for line in ev.lines:
        print(line)
    for text in hint_texts:
        print(f"Hint: {text}")
    if ev.n_passed == total:
        print(f"All {total} checks passed.")
        return CheckResult(name, "passed", ev.n_passed, total, hint_texts)
    print(f"{ev.n_passed} of {total} checks passed.")
    status = "error" if ev.raised else "failed"
    return CheckResult(name, status, ev.n_passed, total, hint_texts)


def _run(
    name: str, fn, cases: Sequence[Case], *, kind: str, hints, generic, probe=None
) -> CheckResult:
    """Evaluate the cases (and the probe, if any case failed) and report them."""
    if not callable(fn):
        print(
            f"✗ {name}: expected your function `{name}`, got a {_type_name(fn)}. "
            f"Pass the function itself, without calling it: check_{name}({name})."
        )
        return CheckResult(name, "error", 0, len(cases), [])
    ev = evaluate(fn, cases, kind=kind, hints=hints)
    if probe is not None and not ev.not_attempted and ev.n_passed < ev.total:
        key = probe(fn)
        if key is not None:
            ev.hint_keys = [key] + [k for k in ev.hint_keys if k != "_generic"]
    return report(name, ev, hints, generic)


def _diagnose(failures: list[tuple[Case, Any]]) -> list[str]:
    """Hint keys of the mutants that explain the wrong answers.

    A mutant that reproduces *every* comparable wrong answer wins; otherwise the
    mutants that reproduce the most of them. Non-finite answers that no mutant
    reproduces get the ``nonfinite`` hint when the check has one.
    """
    comparable = [(c, g) for c, g in failures if g is not None]
    if not comparable:
        return []
    counts: dict[str, int] = {}
    for case, got in comparable:
        for key, wrong in case.mutants.items():
            if same(got, wrong, case.rtol, case.atol, match_nonfinite=True):
                counts[key] = counts.get(key, 0) + 1
    keys: list[str] = []
    if counts:
        best = max(counts.values())
        keys = [k for k, n in counts.items() if n == best]
    if not keys and any(_has_nonfinite(g) for _, g in comparable):
        if any("nonfinite" in c.mutants for c, _ in comparable):
            keys = ["nonfinite"]
        else:
            keys = ["_nonfinite_generic"]
    return keys


_NONFINITE_GENERIC = (
    "Your function returned inf or nan where the answer is finite. Look for the "
    "exponential of a large number, the log of 0, or a division by 0."
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=g)


def rand(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=g)


def to_f64(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(F64)


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def finish(name, fn, cases, kind, hints, generic, *, probe=None) -> CheckResult:
    """Run a check; hints are written lower-case in the tables and printed capitalized.

    ``probe(fn) -> hint key or None`` diagnoses a mistake that no fixed mutant
    can reproduce (e.g. a function that draws its own random noise); it runs
    only when some case failed.
    """
    hints = {k: _capitalize(v) for k, v in hints.items()}
    hints.setdefault("_nonfinite_generic", _NONFINITE_GENERIC)  # see _diagnose
    return _run(
        name, fn, cases, kind=kind, hints=hints, generic=_capitalize(generic), probe=probe
    )


