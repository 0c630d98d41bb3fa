"""Every check, tested the same way: the reference solution passes, other correct
answers pass, each typical mistake fails with its hint, stubs say "not attempted yet",
errors and wrong types get friendly messages, output is deterministic and never shows
the solution.

The cases live in one file per notebook, ``tests/checks/cases_<module>.py`` (module as
in ``vi_helpers/checks/<module>.py``), each defining ``REFERENCE``, ``N_CASES``,
``ALTERNATIVES`` and ``MUTANTS``; this file collects them all. A new check adds its
cases file and nothing here.
"""

from __future__ import annotations

import importlib.util
import inspect
import textwrap
from pathlib import Path

import pytest
import torch

from vi_helpers import checks


def _load_cases():
    reference, n_cases, alternatives, mutants = {}, {}, [], []
    for path in sorted(Path(__file__).parent.glob("cases_*.py")):
        spec = importlib.util.spec_from_file_location(f"check_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        reference.update(module.REFERENCE)
        n_cases.update(module.N_CASES)
        alternatives += module.ALTERNATIVES
        mutants += module.MUTANTS
    return reference, n_cases, alternatives, mutants


REFERENCE, N_CASES, ALTERNATIVES, MUTANTS = _load_cases()


def run_check(name, fn, capsys):
    result = getattr(checks, f"check_{name}")(fn)
    return result, capsys.readouterr()


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_solution_passes(name, capsys):
    result, out = run_check(name, REFERENCE[name], capsys)
    n = N_CASES[name]
    assert result.status == "passed" and bool(result)
    assert (result.passed, result.total, result.hints) == (n, n, [])
    assert out.out.splitlines()[0] == f"Checking {name} on {n} cases:"
    assert out.out.count("✓") == n and "✗" not in out.out
    assert out.out.endswith(f"All {n} checks passed.\n")
    assert out.err == ""
    assert repr(result) == f"CheckResult({name!r}, passed, {n}/{n})"


@pytest.mark.parametrize(
    "name, fn", ALTERNATIVES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(ALTERNATIVES)]
)
def test_other_correct_solutions_pass(name, fn, capsys):
    result, out = run_check(name, fn, capsys)
    assert result.status == "passed", out.out


@pytest.mark.parametrize(
    "name, mistake, fn, hint", MUTANTS, ids=[f"{m[0]}-{m[1]}" for m in MUTANTS]
)
def test_typical_mistake_fails_with_its_hint(name, mistake, fn, hint, capsys):
    result, out = run_check(name, fn, capsys)
    assert result.status == "failed" and not bool(result), out.out
    assert 0 <= result.passed < result.total
    assert any(hint.lower() in h.lower() for h in result.hints), out.out
    assert "Hint: " in out.out and hint.lower() in out.out.lower()
    assert out.out.endswith(f"{result.passed} of {result.total} checks passed.\n")
    assert "Traceback" not in out.out + out.err


def test_every_check_has_at_least_two_mutants():
    counts = {name: sum(m[0] == name for m in MUTANTS) for name in REFERENCE}
    assert min(counts.values()) >= 2, counts
    assert sorted(REFERENCE) == sorted(
        n.removeprefix("check_") for n in checks.__all__ if n.startswith("check_")
    )


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_not_attempted(name, capsys):
    def stub(*args, **kwargs):
        # YOUR CODE HERE
        raise NotImplementedError(f"{name}: write your solution here")

    result, out = run_check(name, stub, capsys)
    assert result.status == "not attempted" and not bool(result)
    assert (result.passed, result.total) == (0, N_CASES[name])
    assert out.out == checks.NOT_ATTEMPTED_MESSAGE + "\n"
    assert "not attempted yet" in out.out.lower()
    assert "Traceback" not in out.out and out.err == ""
    assert repr(result) == f"CheckResult({name!r}, not attempted, 0/{N_CASES[name]})"


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_exception_gives_friendly_message(name, capsys):
    def broken(*args, **kwargs):
        raise ValueError("shapes do not match")

    result, out = run_check(name, broken, capsys)
    assert result.status == "error" and not bool(result)
    assert "your function raised ValueError: shapes do not match" in out.out
    assert "the same ValueError as above" in out.out  # repeated errors are not repeated
    assert "Traceback" not in out.out and out.err == ""
    assert out.out.endswith(f"0 of {N_CASES[name]} checks passed.\n")


def test_error_on_some_cases_only(capsys):
    def fails_for_k1(log_w):
        if log_w.shape[0] == 1:
            raise IndexError("index 1 is out of bounds")
        return REFERENCE["iwae_bound"](log_w)

    result, out = run_check("iwae_bound", fails_for_k1, capsys)
    assert result.status == "error"
    assert (result.passed, result.total) == (5, 6)
    assert "K = 1: the bound is the single log-weight → your function raised IndexError" in out.out


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_returning_none(name, capsys):
    result, out = run_check(name, lambda *a, **k: None, capsys)
    assert result.status == "failed"
    assert "returned None: did you forget the `return` statement?" in out.out


@pytest.mark.parametrize(
    "name, fn, message",
    [
        (
            "kl_diag_gaussian",
            lambda *a: REFERENCE["kl_diag_gaussian"](*a).numpy(),
            "returned a numpy.ndarray: return a torch.Tensor",
        ),
        ("iwae_bound", lambda log_w: REFERENCE["iwae_bound"](log_w).tolist(), "returned a list"),
        (
            "iwae_bound",
            lambda log_w: REFERENCE["iwae_bound"](log_w)[None],
            "returned shape (1, 3), expected shape (3,)",
        ),
        (
            "reparameterize",
            lambda mu, lv, eps: REFERENCE["reparameterize"](mu, lv, eps).round().long(),
            "returned dtype torch.int64",
        ),
        ("mc_elbo", lambda *a: "0.0", "returned a str"),
        ("active_units", lambda mu, threshold=0.01: 2.5, "return an int"),
        ("active_units", lambda mu, threshold=0.01: True, "returned a bool"),
        ("cavi_update_mu", lambda *a: REFERENCE["cavi_update_mu"](*a)[0], "return a tuple of two numbers"),
        (
            "cavi_update_mu",
            lambda *a: [*REFERENCE["cavi_update_mu"](*a), 0.0],
            "returned a list of length 3: return a tuple of two numbers",
        ),
    ],
)
def test_wrong_type_or_shape(name, fn, message, capsys):
    result, out = run_check(name, fn, capsys)
    assert result.status == "failed"
    assert message in out.out
    assert "Traceback" not in out.out


def test_scalar_of_shape_one_and_python_float_accepted(capsys):
    result, _ = run_check("mc_elbo", lambda *a: REFERENCE["mc_elbo"](*a).reshape(1), capsys)
    assert result.status == "passed"
    result, _ = run_check(
        "free_energy_conjugate", lambda *a: float(REFERENCE["free_energy_conjugate"](*a)), capsys
    )
    assert result.status == "passed"


def test_not_callable(capsys):
    result = checks.check_slerp(REFERENCE["slerp"](torch.ones(2), torch.ones(2), 0.5))
    out = capsys.readouterr().out
    assert result.status == "error"
    assert "Pass the function itself, without calling it: check_slerp(slerp)." in out


def test_unexplained_mistake_gets_generic_hint(capsys):
    result, out = run_check("iwae_bound", lambda log_w: REFERENCE["iwae_bound"](log_w) + 0.123, capsys)
    assert result.status == "failed" and len(result.hints) == 1
    assert result.hints[0].startswith("Check K = 1")


def test_students_code_cannot_change_the_cases(capsys):
    def in_place(mu, log_var, eps):
        mu.mul_(0.0)  # mutating an input must not affect the expected answer or later runs
        return mu + torch.exp(0.5 * log_var) * eps

    run_check("reparameterize", in_place, capsys)
    result, _ = run_check("reparameterize", REFERENCE["reparameterize"], capsys)
    assert result.status == "passed"


def _solution_lines(fn) -> list[str]:
    body = textwrap.dedent(inspect.getsource(fn)).splitlines()[1:]
    return [" ".join(line.split()) for line in body if len(line.strip()) > 8]


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_output_never_contains_solution_code(name, capsys):
    """Neither the passing report nor any mutant's hints show the solution's code."""
    outputs = [run_check(name, REFERENCE[name], capsys)[1].out]
    outputs += [run_check(n, fn, capsys)[1].out for n, _, fn, _ in MUTANTS if n == name]
    text = "\n".join(" ".join(line.split()) for o in outputs for line in o.splitlines())
    for line in _solution_lines(REFERENCE[name]):
        assert line not in text
    # code fragments that would give a solution away (hints may name functions, not code)
    for token in (
        "def ",
        "lambda ",
        "import ",
        "return torch",
        "return (",
        ".sum(",
        ".mean(",
        "exp(0.5",
        "logsumexp(",
        "** 2",
        "**2",
    ):
        assert token not in text


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_output_is_deterministic_and_rng_untouched(name, capsys):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    _, first = run_check(name, REFERENCE[name], capsys)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(999)
    _, second = run_check(name, REFERENCE[name], capsys)
    assert first.out == second.out
    assert "-0.0000" not in first.out


