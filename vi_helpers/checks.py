r"""Exercise checks: run a student's function on several cases and explain what is wrong.

Every notebook exercise that asks for code is followed by a cell that calls one
check from this module with the student's function, e.g.::

    from vi_helpers import checks
    checks.check_kl_diag_gaussian(kl_diag_gaussian)

A check

* runs the function on several cases, including edge cases (zero mean and unit
  variance, batch shapes, large magnitudes, ``K = 1``, nearly parallel vectors ...),
  against a reference computed *independently* in float64 (``torch.distributions``,
  closed forms, exact posteriors of :class:`~vi_helpers.models.ConjugateGaussianModel`);
* prints one line per case, ``✓`` or ``✗`` with the rounded value (got and expected
  on a failure), then targeted hints, then a summary line ``All N checks passed.``
  or ``k of N checks passed.``;
* diagnoses typical mistakes by comparing a wrong answer with precomputed answers
  of *mutants* (a missing ½, a wrong sign, a mean where a sum belongs, a standard
  deviation where a variance belongs, a forgotten KL term, a forgotten
  :math:`-\log K`, an unstable log-sum-exp, lerp instead of slerp ...) and prints
  the matching hint. It never prints the solution code or its full formula;
* prints ``⏳ not attempted yet: ...`` (no traceback) when the function still
  raises ``NotImplementedError``, and a friendly one-line message (exception type
  and message) when it raises anything else or returns the wrong type or shape;
* returns a :class:`CheckResult` (truthy only when every case passed).

**How notebooks call a check.** As the last statement of its cell, without
assigning the result: ``checks.check_kl_diag_gaussian(kl_diag_gaussian)``. The
report is printed while the check runs; :class:`CheckResult` deliberately
displays nothing in IPython/Jupyter (``_ipython_display_``), so the cell shows
no ``Out[...]`` line and a trailing ``;`` is harmless but not needed. Its
``repr`` (for scripts and tests) is short and deterministic, e.g.
``CheckResult('kl_diag_gaussian', passed, 6/6)``.

Everything printed is deterministic (fixed seeds, float64 references, values
rounded to 4 decimals), so nbval can compare the output of a solved notebook.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch.distributions import (
    Bernoulli,
    Independent,
    Normal,
    kl_divergence,
)
from torch.distributions.transforms import AffineTransform

from .models import ConjugateGaussianModel

__all__ = [
    "CheckResult",
    "STATUSES",
    "NOT_ATTEMPTED_MESSAGE",
    "check_kl_diag_gaussian",
    "check_mc_elbo",
    "check_cavi_update_mu",
    "check_score_function_grad_mu",
    "check_reparameterize",
    "check_vae_loss_bernoulli",
    "check_slerp",
    "check_active_units",
    "check_iwae_bound",
    "check_free_energy_conjugate",
]

#: The possible values of :attr:`CheckResult.status`.
STATUSES = ("passed", "failed", "not attempted", "error")

#: Printed (alone) when the student's function still raises ``NotImplementedError``.
NOT_ATTEMPTED_MESSAGE = (
    "⏳ not attempted yet: replace the `raise NotImplementedError` line with your code, "
    "then re-run this cell."
)

_F64 = torch.float64


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
class _Case:
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


class _BadOutput(Exception):
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
    """Convert the student's output to float64 for comparison, or raise _BadOutput."""
    if value is None:
        raise _BadOutput("returned None: did you forget the `return` statement?")
    if kind == "int":
        if isinstance(value, bool):
            raise _BadOutput("returned a bool: return the number of dimensions as an int")
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise _BadOutput(
                    f"returned a tensor of shape {tuple(value.shape)}: return a single int, "
                    "the number of active dimensions",
                    "mask",
                )
            value = value.item()
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real) and float(value).is_integer():
            return int(value)
        raise _BadOutput(f"returned {_type_name(value)} {value!r}: return an int")
    if kind == "pair":
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            what = (
                f"a {_type_name(value)} of length {len(value)}"
                if isinstance(value, (tuple, list))
                else f"a {_type_name(value)}"
            )
            raise _BadOutput(f"returned {what}: return a tuple of two numbers (mu_N, lambda_N)")
        return tuple(
            _as_tensor_output(v, "scalar", e) for v, e in zip(value, expected, strict=True)
        )
    if kind == "scalar":
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return torch.tensor(float(value), dtype=_F64)
        if not isinstance(value, torch.Tensor):
            raise _BadOutput(f"returned a {_type_name(value)}: return a torch.Tensor (a scalar)")
        if not value.is_floating_point():
            raise _BadOutput(f"returned dtype {value.dtype}: return a floating-point tensor")
        value = value.detach().to("cpu", _F64)
        # a one-element tensor of shape (1,) is accepted as a scalar; any other
        # shape is reported (and diagnosed) as a shape mismatch by the caller
        return value.reshape(()) if value.numel() == 1 else value
    # kind == "tensor"
    if not isinstance(value, torch.Tensor):
        raise _BadOutput(f"returned a {_type_name(value)}: return a torch.Tensor")
    if not value.is_floating_point():
        raise _BadOutput(f"returned dtype {value.dtype}: return a floating-point tensor")
    return value.detach().to("cpu", _F64)


def _same(got, want, rtol: float, atol: float, *, match_nonfinite: bool) -> bool:
    """Do two answers agree? Shapes must be equal (no broadcasting)."""
    if isinstance(want, int) or isinstance(got, int):
        return isinstance(got, int) and isinstance(want, int) and got == want
    if isinstance(want, tuple):
        return isinstance(got, tuple) and all(
            _same(g, w, rtol, atol, match_nonfinite=match_nonfinite)
            for g, w in zip(got, want, strict=True)
        )
    if got.shape != want.shape:
        return False
    return bool(torch.allclose(got, want, rtol=rtol, atol=atol, equal_nan=match_nonfinite))


def _num(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    s = f"{v:.4f}" if abs(v) < 1e5 else f"{v:.4e}"
    if float(s) == 0.0:
        s = s.lstrip("-")  # never print -0.0000
    return s


def _fmt(value) -> str:
    """A short, rounded, deterministic rendering of an answer."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    if value.numel() == 1 and value.dim() == 0:
        return _num(float(value))
    flat = value.reshape(-1)
    shown = ", ".join(_num(float(v)) for v in flat[:3])
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


def _run(
    name: str,
    fn,
    cases: Sequence[_Case],
    *,
    kind: str,
    hints: dict[str, str],
    generic: str,
) -> CheckResult:
    """Run every case, print the report, return the result."""
    total = len(cases)
    if not callable(fn):
        print(
            f"✗ {name}: expected your function `{name}`, got a {_type_name(fn)}. "
            f"Pass the function itself, without calling it: check_{name}({name})."
        )
        return CheckResult(name, "error", 0, total, [])
    lines: list[str] = []
    failures: list[tuple[_Case, Any]] = []  # (case, converted output or None)
    forced: list[str] = []  # hint keys known without mutant matching
    n_passed = 0
    raised = False
    last_error = None
    for case in cases:
        args = _fresh(case.args)
        try:
            out = fn(*args)
        except NotImplementedError:
            print(NOT_ATTEMPTED_MESSAGE)
            return CheckResult(name, "not attempted", 0, total, [])
        except Exception as err:  # any bug in the student's code: report it, don't crash
            raised = True
            msg = _describe_exception(err)
            if msg == last_error:
                lines.append(f"  ✗ {case.label} → the same {type(err).__name__} as above")
            else:
                lines.append(f"  ✗ {case.label} → your function raised {msg}")
            last_error = msg
            failures.append((case, None))
            continue
        try:
            got = _as_tensor_output(out, kind, case.expected)
        except _BadOutput as bad:
            lines.append(f"  ✗ {case.label} → {bad}")
            if bad.hint_key:
                forced.append(bad.hint_key)
            failures.append((case, None))
            continue
        if kind in ("tensor", "scalar") and got.shape != case.expected.shape:
            lines.append(
                f"  ✗ {case.label} → returned shape {tuple(got.shape)}, "
                f"expected shape {tuple(case.expected.shape)}"
            )
            failures.append((case, got))
            continue
        ok = _same(got, case.expected, case.rtol, case.atol, match_nonfinite=False)
        post_key = None
        if ok and case.post is not None:
            post_key = case.post(out, args)
            ok = post_key is None
        if ok:
            n_passed += 1
            lines.append(f"  ✓ {case.label} → {_fmt(case.expected)}")
        else:
            if post_key is not None:
                forced.append(post_key)
                lines.append(f"  ✗ {case.label} → {hints[post_key].split(':')[0]}")
            else:
                lines.append(f"  ✗ {case.label} → got {_fmt(got)}, expected {_fmt(case.expected)}")
                failures.append((case, got))
    keys = forced + _diagnose(failures)
    if raised:
        keys.append("_raised")
    if not keys and any(got is not None for _, got in failures):
        keys.append("_generic")  # a wrong value that no known mistake explains
    hint_texts: list[str] = []
    for key in keys:
        if key == "_raised":
            text = (
                "Your function raised an error on the case(s) marked above. Run it yourself "
                "on small tensors (print the shapes and dtypes), fix it, then re-run this cell."
            )
        elif key == "_generic":
            text = generic
        else:
            text = hints[key]
        if text not in hint_texts:
            hint_texts.append(text)
    print(f"Checking {name} on {total} cases:")
    for line in lines:
        print(line)
    for text in hint_texts:
        print(f"💡 Hint: {text}")
    if n_passed == total:
        print(f"All {total} checks passed.")
        status = "passed"
    else:
        print(f"{n_passed} of {total} checks passed.")
        status = "error" if raised else "failed"
    return CheckResult(name, status, n_passed, total, hint_texts)


def _diagnose(failures: list[tuple[_Case, Any]]) -> list[str]:
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
            if _same(got, wrong, case.rtol, case.atol, match_nonfinite=True):
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


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=g)


def _rand(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=g)


def _d(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(_F64)


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _finish(name, fn, cases, kind, hints, generic) -> CheckResult:
    """Run a check; hints are written lower-case in the tables and printed capitalized."""
    hints = {k: _capitalize(v) for k, v in hints.items()}
    hints.setdefault("_nonfinite_generic", _NONFINITE_GENERIC)  # see _diagnose
    return _run(name, fn, cases, kind=kind, hints=hints, generic=_capitalize(generic))


# ============================================================================ 01 KL
def _kl_diag_mutants(mq, lvq, mp, lvp) -> dict[str, torch.Tensor]:
    """Answers of typical wrong KL implementations (float64)."""
    L = mq.shape[-1]

    def per_dim(var_q, var_p, scale_p_for_mean, half=0.5, minus_one=1.0):
        return half * (
            torch.log(var_p)
            - torch.log(var_q)
            + var_q / var_p
            + (mq - mp).pow(2) / scale_p_for_mean
            - minus_one
        )

    vq, vp = lvq.exp(), lvp.exp()
    right = per_dim(vq, vp, vp)
    out = {
        "half": 2.0 * right.sum(-1),
        "sign": -right.sum(-1),
        "mean_dims": right.mean(-1),
        "no_reduce": right,
        "sum_all": right.sum(),
        "minus_one": right.sum(-1) + 0.5 * L,
        "mahalanobis": per_dim(vq, vp, torch.ones_like(vp)).sum(-1),
    }
    # KL(p || q): the arguments' roles swapped
    out["swapped"] = (
        0.5 * (torch.log(vq) - torch.log(vp) + vp / vq + (mq - mp).pow(2) / vq - 1.0)
    ).sum(-1)
    # log_var read as log(sigma): every variance is exp(2 * log_var)
    sq, sp = (2 * lvq).exp(), (2 * lvp).exp()
    out["log_std"] = (
        0.5 * (torch.log(sp) - torch.log(sq) + sq / sp + (mq - mp).pow(2) / sp - 1.0)
    ).sum(-1)
    # sigma where sigma^2 belongs, in the variance ratio and the mean term
    out["std_for_var"] = (
        0.5 * (lvp - lvq + (0.5 * (lvq - lvp)).exp() + (mq - mp).pow(2) / (0.5 * lvp).exp() - 1.0)
    ).sum(-1)
    return out


_KL_HINTS = {
    "half": "your values are exactly twice the expected ones: a factor ½ is missing.",
    "sign": "your values have the wrong sign. A KL divergence is never negative.",
    "mean_dims": (
        "you averaged over the latent dimensions. For independent dimensions the KL is the "
        "SUM of the per-dimension KLs."
    ),
    "no_reduce": (
        "you returned one KL per dimension (the last axis is still there): reduce it with a "
        "sum over the last dimension."
    ),
    "sum_all": (
        "you summed over the batch too. Reduce only the last dimension, so that there is "
        "one KL per batch element."
    ),
    "swapped": (
        "you computed KL(p ‖ q): the roles of q (mu_q, log_var_q) and p (mu_p, log_var_p) "
        "are swapped. The KL is not symmetric."
    ),
    "log_std": (
        "the argument log_var is the log of the VARIANCE σ², not of the standard deviation σ: "
        "σ² = exp(log_var)."
    ),
    "std_for_var": (
        "you used a standard deviation σ where a variance σ² belongs (in the ratio of the "
        "variances or under the squared difference of the means)."
    ),
    "minus_one": (
        "two identical distributions must give KL = 0, and yours do not: a constant term "
        "per dimension is missing."
    ),
    "mahalanobis": "the squared difference of the means must be divided by p's variance.",
}


def check_kl_diag_gaussian(kl_diag_gaussian) -> CheckResult:
    r"""Check ``kl_diag_gaussian(mu_q, log_var_q, mu_p, log_var_p) -> (...)`` (notebook 01).

    The function must return :math:`\mathrm{KL}(q\,\|\,p)` of two diagonal
    Gaussians given by means and log-variances of shape ``(..., L)``, summed over
    the last dimension (one KL per batch element). Reference:
    ``torch.distributions.kl_divergence`` of ``Independent(Normal(...), 1)``.
    """
    g = _gen(101)

    def case(label, mq, lvq, mp, lvp):
        a = tuple(t.to(torch.float32) for t in (mq, lvq, mp, lvp))
        dq, dlvq, dp, dlvp = (_d(t) for t in a)
        q = Independent(Normal(dq, (0.5 * dlvq).exp()), 1)
        p = Independent(Normal(dp, (0.5 * dlvp).exp()), 1)
        return _Case(label, a, kl_divergence(q, p), _kl_diag_mutants(dq, dlvq, dp, dlvp))

    z3 = torch.zeros(3)
    cases = [
        case("q = p = N(0, I) in 3 dims, KL must be 0", z3, z3, z3, z3),
        case(
            "q = N(mu, diag σ²) against N(0, I), 4 dims",
            _randn(g, 4),
            0.7 * _randn(g, 4),
            torch.zeros(4),
            torch.zeros(4),
        ),
        case(
            "batch of 5 pairs in 3 dims, shape (5,)",
            _randn(g, 5, 3),
            0.5 * _randn(g, 5, 3),
            _randn(g, 5, 3),
            0.5 * _randn(g, 5, 3),
        ),
        case(
            "batch shape (2, 3) in 4 dims, shape (2, 3)",
            _randn(g, 2, 3, 4),
            0.5 * _randn(g, 2, 3, 4),
            _randn(g, 2, 3, 4),
            0.5 * _randn(g, 2, 3, 4),
        ),
        case(
            "broad q against a narrow p (order matters)",
            torch.tensor([0.0, 0.5]),
            torch.tensor([1.5, 1.0]),
            torch.tensor([1.0, -0.5]),
            torch.tensor([-1.5, -1.0]),
        ),
        case(
            "large means and variances",
            30.0 * _randn(g, 2, 3),
            6.0 * (2 * _rand(g, 2, 3) - 1),
            30.0 * _randn(g, 2, 3),
            6.0 * (2 * _rand(g, 2, 3) - 1),
        ),
    ]
    return _finish(
        "kl_diag_gaussian",
        kl_diag_gaussian,
        cases,
        "tensor",
        _KL_HINTS,
        "compare your code term by term with the closed form derived above, first on a "
        "single dimension, then make sure you sum over the last dimension only.",
    )


# ============================================================================ 02 MC ELBO
def _std_normal_log_joint(z: torch.Tensor) -> torch.Tensor:
    return Normal(torch.zeros((), dtype=z.dtype), torch.ones((), dtype=z.dtype)).log_prob(z)


def _quartic_log_joint(z: torch.Tensor) -> torch.Tensor:
    # an unnormalized, non-Gaussian target: log p(x, z) = z - z^4 / 4
    return z - 0.25 * z.pow(4)


def _conjugate_log_joint(model: ConjugateGaussianModel, x: torch.Tensor):
    def log_joint(z: torch.Tensor) -> torch.Tensor:
        return model.log_joint(x.to(z.dtype), z)

    return log_joint


def _mc_elbo_mutants(log_joint, mu, sigma, eps) -> dict[str, torch.Tensor]:
    z = mu + sigma * eps
    lp = log_joint(z)
    q = Normal(mu, sigma)
    lq = q.log_prob(z)
    log_2pi = math.log(2 * math.pi)
    out = {
        "no_entropy": lp.mean(),
        "plus_logq": (lp + lq).mean(),
        "sum_samples": (lp - lq).sum(),
        "per_sample": lp - lq,
        "logq_var": (lp - Normal(mu, sigma.sqrt()).log_prob(z)).mean(),
        "logq_no_half": (
            lp - (-(z - mu).pow(2) / sigma.pow(2) - sigma.log() - 0.5 * log_2pi)
        ).mean(),
        "logq_no_const": (lp - (lq + 0.5 * log_2pi)).mean(),
        "logq_no_logsigma": (lp - (lq + sigma.log())).mean(),
        "at_eps": (log_joint(eps) - lq).mean(),
    }
    z2 = mu + sigma.pow(2) * eps
    out["z_var"] = (log_joint(z2) - q.log_prob(z2)).mean()
    return out


_MC_ELBO_HINTS = {
    "no_entropy": (
        "you averaged log p(x, z) only: the ELBO also subtracts log q(z) at the same samples."
    ),
    "plus_logq": "the log q(z) term enters the ELBO with a minus sign.",
    "sum_samples": "you summed over the S samples: the Monte Carlo estimate is their AVERAGE.",
    "per_sample": (
        "you returned one value per sample: return a single number, the average over the S samples."
    ),
    "logq_var": (
        "in log N(z; mu, σ²) the argument sigma is the standard deviation: you used it as a "
        "variance (or the other way round)."
    ),
    "logq_no_half": "the Gaussian log-density has a factor ½ in front of the squared term.",
    "logq_no_const": (
        "keep the normalizing constant of log q(z) (the log 2π part): the ELBO is compared "
        "with log p(x), so constants matter."
    ),
    "logq_no_logsigma": (
        "your log q(z) is missing its −log σ term: the density of z = mu + sigma·eps is the "
        "density of eps divided by sigma."
    ),
    "at_eps": "evaluate log_joint at the samples z = mu + sigma·eps, not at eps.",
    "z_var": (
        "the argument sigma is a standard deviation: the sample is mu + sigma·eps, not scaled by the "
        "variance."
    ),
}


def check_mc_elbo(mc_elbo) -> CheckResult:
    r"""Check ``mc_elbo(log_joint, mu, sigma, eps) -> scalar`` (notebook 02).

    With ``z = mu + sigma * eps`` (``eps`` of shape ``(S,)``) the function must return
    the average over the samples of ``log_joint(z) - log N(z; mu, sigma^2)``.
    ``mu`` and ``sigma`` are passed as 0-dim float32 tensors. References:
    ``torch.distributions.Normal.log_prob``, and the exact evidence of a conjugate
    model when ``q`` is its posterior (then every sample gives ``log p(x)``).
    """
    g = _gen(202)
    model = ConjugateGaussianModel(0.5, 1.5, 0.8)
    x = torch.tensor([1.2, 0.4, 2.1, 1.7, 0.9, 1.4])
    post = model.posterior(x.to(_F64))
    far_model = ConjugateGaussianModel(48.0, 5.0, 2.0)
    x_far = 50.0 + 2.0 * _randn(g, 5)

    def case(label, log_joint, mu, sigma, eps, expected=None, rtol=1e-4, atol=1e-4):
        mu32 = torch.tensor(float(mu))
        sigma32 = torch.tensor(float(sigma))
        eps32 = eps.to(torch.float32)
        dmu, dsigma, deps = _d(mu32), _d(sigma32), _d(eps32)
        z = dmu + dsigma * deps
        ref = (log_joint(z) - Normal(dmu, dsigma).log_prob(z)).mean()
        if expected is not None:
            ref = expected
        return _Case(
            label,
            (log_joint, mu32, sigma32, eps32),
            ref,
            _mc_elbo_mutants(log_joint, dmu, dsigma, deps),
            rtol=rtol,
            atol=atol,
        )

    cases = [
        case(
            "q equals the normalized target N(0, 1): ELBO = 0",
            _std_normal_log_joint,
            0.0,
            1.0,
            _randn(g, 8),
        ),
        case(
            "q = exact posterior of a conjugate model: ELBO = log p(x)",
            _conjugate_log_joint(model, x),
            float(post.mean),
            float(post.stddev),
            _randn(g, 4),
            expected=model.log_evidence(x.to(_F64)),
        ),
        case(
            "conjugate model, q away from the posterior, S = 16",
            _conjugate_log_joint(model, x),
            1.3,
            0.4,
            _randn(g, 16),
        ),
        case("a single sample (S = 1)", _conjugate_log_joint(model, x), 0.2, 1.1, _randn(g, 1)),
        case(
            "non-Gaussian target, narrow q, S = 2000",
            _quartic_log_joint,
            0.8,
            0.05,
            _randn(g, 2000),
        ),
        case(
            "data far from zero (mu = 50, sigma = 3)",
            _conjugate_log_joint(far_model, x_far),
            50.0,
            3.0,
            _randn(g, 10),
        ),
    ]
    return _finish(
        "mc_elbo",
        mc_elbo,
        cases,
        "scalar",
        _MC_ELBO_HINTS,
        "check each piece on the first failing case by hand: the samples z, log_joint(z), "
        "log q(z) (compare with torch.distributions.Normal(mu, sigma).log_prob(z)) and the "
        "average.",
    )


# ============================================================================ 03 CAVI
def _cavi_reference(x: torch.Tensor, e_tau: float, mu0: float, lambda0: float):
    """q(mu) from the exact posterior of a Gaussian with known precision E[tau].

    Under q(tau) the update for q(mu) is the posterior of a Gaussian mean with
    noise precision E[tau] and prior N(mu0, (lambda0 E[tau])^-1): a conjugate
    model whose posterior ``ConjugateGaussianModel`` gives in closed form.
    """
    model = ConjugateGaussianModel(mu0, 1.0 / math.sqrt(lambda0 * e_tau), 1.0 / math.sqrt(e_tau))
    post = model.posterior(x)
    return post.mean.to(_F64), (1.0 / post.variance).to(_F64)


def _cavi_mutants(x, e_tau, mu0, lambda0):
    n = x.numel()
    xbar = x.mean()
    mu_n = (lambda0 * mu0 + n * xbar) / (lambda0 + n)
    lam_n = torch.tensor((lambda0 + n) * e_tau, dtype=_F64)

    def t(v):
        return torch.as_tensor(v, dtype=_F64)

    return {
        "prec_no_tau": (mu_n, t(lambda0 + n)),
        "prec_tau_data_only": (mu_n, t(lambda0 + n * e_tau)),
        "mean_xbar": ((lambda0 * mu0 + xbar) / (lambda0 + n), lam_n),
        "mean_tau_weighted": ((lambda0 * mu0 + e_tau * n * xbar) / (lambda0 + e_tau * n), lam_n),
        "variance": (mu_n, 1.0 / lam_n),
        "std": (mu_n, lam_n.rsqrt()),
        "swapped": (lam_n, mu_n),
        "mu0_unweighted": ((mu0 + n * xbar) / (lambda0 + n), lam_n),
    }


_CAVI_HINTS = {
    "prec_no_tau": "the precision λ_N of q(μ) is scaled by E[τ]; yours is not.",
    "prec_tau_data_only": (
        "in this model the prior on μ has precision λ0·τ, so E[τ] multiplies the prior's "
        "term in λ_N as well as the data's."
    ),
    "mean_xbar": (
        "the data enter μ_N through N·x̄ (the sum of the observations), not through x̄ alone."
    ),
    "mean_tau_weighted": (
        "the prior on μ has precision λ0·τ, so E[τ] cancels in μ_N: the mean does not "
        "depend on E[τ]."
    ),
    "variance": "return the precision λ_N, not the variance 1/λ_N.",
    "std": "return the precision λ_N, not the standard deviation.",
    "swapped": "return the pair in the order (mu_N, lambda_N).",
    "mu0_unweighted": "the prior mean μ0 is weighted by λ0 in μ_N.",
}


def check_cavi_update_mu(cavi_update_mu) -> CheckResult:
    r"""Check ``cavi_update_mu(x, e_tau, mu0, lambda0) -> (mu_N, lambda_N)`` (notebook 03).

    The CAVI update of :math:`q(\mu)=\mathcal N(\mu_N,\lambda_N^{-1})` in the
    Normal-Gamma model (Bishop 2006, eqs. 10.26-10.27). ``x`` is a float32 ``(N,)``
    tensor, ``e_tau``, ``mu0``, ``lambda0`` are Python floats; each returned value
    may be a number or a 0-dim tensor. Reference: the exact posterior of the mean
    of a Gaussian with known precision ``E[tau]``
    (:class:`~vi_helpers.models.ConjugateGaussianModel`).
    """
    g = _gen(303)

    def case(label, x, e_tau, mu0, lambda0):
        x = x.to(torch.float32)
        dx = _d(x)
        return _Case(
            label,
            (x, float(e_tau), float(mu0), float(lambda0)),
            _cavi_reference(dx, e_tau, mu0, lambda0),
            _cavi_mutants(dx, e_tau, mu0, lambda0),
        )

    cases = [
        case(
            "one observation x = 0, mu0 = 0, lambda0 = 1, E[tau] = 1", torch.zeros(1), 1.0, 0.0, 1.0
        ),
        case("N = 10, E[tau] = 2.5, mu0 = 1, lambda0 = 0.5", 2.0 + _randn(g, 10), 2.5, 1.0, 0.5),
        case("N = 1000: the data dominate the prior", -1.0 + 2.0 * _randn(g, 1000), 0.3, 0.5, 2.0),
        case(
            "strong prior lambda0 = 10000: mu_N stays near mu0", 3.0 + _randn(g, 20), 1.0, -2.0, 1e4
        ),
        case("noisy data, E[tau] = 0.01", 5.0 * _randn(g, 8), 0.01, 0.0, 1.0),
        case("data far from zero (x ≈ 500)", 500.0 + _randn(g, 6), 4.0, 480.0, 3.0),
    ]
    return _finish(
        "cavi_update_mu",
        cavi_update_mu,
        cases,
        "pair",
        _CAVI_HINTS,
        "compare mu_N and lambda_N separately with Bishop's eqs. 10.26 and 10.27 on the "
        "first failing case; remember that N is the number of observations.",
    )


# ============================================================================ 04 score function
def _score_reference(f, mu, sigma, eps):
    """f(z) * d/dmu log N(z; mu, sigma^2) per sample, the score taken by autograd."""
    z = (mu + sigma * eps).detach()

    def log_q(m):
        return Normal(m, sigma).log_prob(z)

    score = torch.autograd.functional.jacobian(log_q, mu)  # (S,) since mu is 0-dim
    return f(z) * score


def _score_mutants(f, mu, sigma, eps):
    z = mu + sigma * eps
    fz = f(z)
    right = fz * (z - mu) / sigma.pow(2)
    return {
        "div_sigma": fz * (z - mu) / sigma,
        "no_div": fz * (z - mu),
        "sign": -right,
        "mean": right.mean(),
        "sum": right.sum(),
        "no_f": (z - mu) / sigma.pow(2),
        "f_at_eps": f(eps) * (z - mu) / sigma.pow(2),
    }


_SCORE_HINTS = {
    "div_sigma": (
        "you divided by σ where the variance σ² belongs: the score of a Gaussian's mean is "
        "measured in units of its variance."
    ),
    "no_div": "the score ∂/∂μ log N(z; μ, σ²) is scaled by the inverse variance; yours is not.",
    "sign": "wrong sign: the score with respect to μ is positive when z lies above μ.",
    "mean": (
        "return one term per sample (shape (S,)); the notebook averages them itself to study "
        "their variance."
    ),
    "sum": (
        "return one term per sample (shape (S,)); the notebook averages them itself to study "
        "their variance."
    ),
    "no_f": "multiply the score by f(z): each sample's score is weighted by the function value.",
    "f_at_eps": "evaluate f at the samples z = mu + sigma·eps, not at eps.",
}


def check_score_function_grad_mu(score_function_grad_mu) -> CheckResult:
    r"""Check ``score_function_grad_mu(f, mu, sigma, eps) -> (S,)`` (notebook 04).

    One score-function (REINFORCE) term per sample for the gradient of
    :math:`\mathbb E_{\mathcal N(\mu,\sigma^2)} f(z)` with respect to ``mu``, at
    ``z = mu + sigma * eps``. ``mu``, ``sigma`` are 0-dim float32 tensors, ``eps``
    ``(S,)``. Reference: ``f(z)`` times the score of ``Normal(mu, sigma).log_prob``
    differentiated by autograd.
    """
    g = _gen(404)

    def one(z):
        return torch.ones_like(z)

    def square(z):
        return z.pow(2)

    def identity(z):
        return z

    def case(label, f, mu, sigma, eps):
        mu32, sigma32 = torch.tensor(float(mu)), torch.tensor(float(sigma))
        eps32 = eps.to(torch.float32)
        dmu, dsigma, deps = _d(mu32), _d(sigma32), _d(eps32)
        return _Case(
            label,
            (f, mu32, sigma32, eps32),
            _score_reference(f, dmu, dsigma, deps),
            _score_mutants(f, dmu, dsigma, deps),
        )

    cases = [
        case("f(z) = 1, mu = 0, sigma = 1", one, 0.0, 1.0, _randn(g, 5)),
        case("f(z) = z², mu = 0.5, sigma = 1, S = 6", square, 0.5, 1.0, _randn(g, 6)),
        case("f(z) = z², mu = -1, sigma = 2 (variance ≠ std)", square, -1.0, 2.0, _randn(g, 6)),
        case("f(z) = sin z, sigma = 0.5, a single sample", torch.sin, 0.3, 0.5, _randn(g, 1)),
        case("f(z) = z, large mu = 100, sigma = 3", identity, 100.0, 3.0, _randn(g, 8)),
    ]
    return _finish(
        "score_function_grad_mu",
        score_function_grad_mu,
        cases,
        "tensor",
        _SCORE_HINTS,
        "write the score ∂/∂μ log N(z; μ, σ²) on paper first, then check your function on "
        "one sample by hand (you can compare with torch.autograd on Normal(mu, sigma).log_prob).",
    )


# ============================================================================ 04 reparameterize
def _reparam_mutants(mu, log_var, eps):
    std = (0.5 * log_var).exp()
    return {
        "exp_var": mu + log_var.exp() * eps,
        "no_exp": mu + log_var * eps,
        "log_std": mu + log_var.exp().pow(2) * eps,
        "minus": mu - std * eps,
        "no_mu": std * eps,
    }


_REPARAM_HINTS = {
    "exp_var": (
        "the exponential of log_var is the variance σ²: scale eps by the standard deviation σ "
        "instead."
    ),
    "no_exp": (
        "the argument log_var is a logarithm: turn it into a standard deviation before scaling eps."
    ),
    "log_std": (
        "the argument log_var is the log of the variance, so the standard deviation is "
        "smaller than what you used."
    ),
    "minus": "add the scaled noise to mu (with a minus sign z would not be the sample for eps).",
    "no_mu": "the sample is centred at mu: you forgot to add mu.",
    "no_grad": (
        "gradients do not reach mu and log_var: build z from them with tensor operations "
        "(no .detach(), no torch.no_grad(), no torch.tensor(...) around intermediate values)."
    ),
    "grad_wrong": (
        "the value is right but its gradient with respect to mu or log_var is not: compute z "
        "directly from mu, log_var and eps."
    ),
}


def _reparam_grad_post(out, args) -> str | None:
    mu, log_var, eps = args
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return "no_grad"
    try:
        g_mu, g_lv = torch.autograd.grad(
            out.sum(), (mu, log_var), allow_unused=True, retain_graph=False
        )
    except RuntimeError:
        return "no_grad"
    if g_mu is None or g_lv is None:
        return "no_grad"
    want_lv = 0.5 * (0.5 * _d(log_var)).exp() * _d(eps)
    if not torch.allclose(_d(g_mu), torch.ones_like(_d(g_mu)), rtol=1e-4, atol=1e-4):
        return "grad_wrong"
    if not torch.allclose(_d(g_lv), want_lv, rtol=1e-4, atol=1e-4):
        return "grad_wrong"
    return None


def check_reparameterize(reparameterize) -> CheckResult:
    r"""Check ``reparameterize(mu, log_var, eps) -> z`` (notebook 04).

    ``z`` must be the sample of :math:`\mathcal N(\mu, \mathrm{diag}\,e^{\log\sigma^2})`
    obtained from the standard normal noise ``eps`` (same shape), differentiable
    in ``mu`` and ``log_var``. Reference: ``torch.distributions``'
    ``AffineTransform`` with scale ``sqrt(exp(log_var))``; the gradient case
    compares autograd's gradients with their closed form.
    """
    g = _gen(505)

    def case(label, mu, log_var, eps, grad=False):
        a = tuple(t.to(torch.float32) for t in (mu, log_var, eps))
        dmu, dlv, deps = (_d(t) for t in a)
        ref = AffineTransform(loc=dmu, scale=dlv.exp().sqrt())(deps)
        if grad:
            a = (a[0].requires_grad_(), a[1].requires_grad_(), a[2])
        return _Case(
            label,
            a,
            ref,
            _reparam_mutants(dmu, dlv, deps),
            post=_reparam_grad_post if grad else None,
        )

    cases = [
        case("mu = 0, log_var = 0: z equals eps", torch.zeros(4), torch.zeros(4), _randn(g, 4)),
        case(
            "log_var = log 4 (sigma = 2)",
            torch.tensor([1.0, -1.0, 0.5]),
            torch.full((3,), math.log(4.0)),
            _randn(g, 3),
        ),
        case(
            "batch of 8 in 2 dims, shape (8, 2)", _randn(g, 8, 2), _randn(g, 8, 2), _randn(g, 8, 2)
        ),
        case(
            "large mu (±1000) and small variance",
            1000.0 * torch.tensor([1.0, -1.0, 0.5]),
            torch.full((3,), -10.0),
            _randn(g, 3),
        ),
        case(
            "gradients reach mu and log_var",
            _randn(g, 5),
            0.5 * _randn(g, 5),
            _randn(g, 5),
            grad=True,
        ),
    ]
    return _finish(
        "reparameterize",
        reparameterize,
        cases,
        "tensor",
        _REPARAM_HINTS,
        "print mu, log_var, eps and your z for the first failing case, and compute one "
        "entry by hand.",
    )


# ============================================================================ 05 VAE loss
def _bce_terms(x, logits):
    """Per-element -log Bernoulli(x; sigmoid(logits)), stable, x may be fractional."""
    return -(x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits))


def _vae_loss_reference(x, logits, mu, log_var):
    if bool(((x == 0) | (x == 1)).all()):
        recon = -Bernoulli(logits=logits).log_prob(x).sum(-1)
    else:  # grey levels: the continuous relaxation, outside Bernoulli's support
        recon = _bce_terms(x, logits).sum(-1)
    q = Independent(Normal(mu, (0.5 * log_var).exp()), 1)
    prior = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    return (recon + kl_divergence(q, prior)).mean()


def _vae_loss_mutants(x, logits, mu, log_var, x32, logits32):
    recon = _bce_terms(x, logits).sum(-1)
    kl_dim = 0.5 * (mu.pow(2) + log_var.exp() - 1 - log_var)
    kl = kl_dim.sum(-1)
    kl_log_std = (0.5 * (mu.pow(2) + (2 * log_var).exp() - 1 - 2 * log_var)).sum(-1)
    p32 = torch.sigmoid(logits32)
    naive = -(x32 * torch.log(p32) + (1 - x32) * torch.log(1 - p32))
    return {
        "no_kl": recon.mean(),
        "minus_kl": (recon - kl).mean(),
        "mean_pixels": (recon / x.shape[-1] + kl).mean(),
        "mean_pixels_and_dims": (recon / x.shape[-1] + kl_dim.mean(-1)).mean(),
        "sum_batch": (recon + kl).sum(),
        "kl_mean_dims": (recon + kl_dim.mean(-1)).mean(),
        "kl_half": (recon + 2 * kl).mean(),
        "kl_log_std": (recon + kl_log_std).mean(),
        "sigmoid_twice": (_bce_terms(x, torch.sigmoid(logits)).sum(-1) + kl).mean(),
        "swapped_args": (_bce_terms(logits, x).sum(-1) + kl).mean(),
        "vector": recon + kl,
        "nonfinite": (_d(naive).sum(-1) + kl).mean(),
    }


_VAE_HINTS = {
    "no_kl": "you forgot the KL term: the loss is the reconstruction term PLUS the KL.",
    "minus_kl": ("the KL is added to the reconstruction loss (the loss is −ELBO), not subtracted."),
    "mean_pixels": (
        "you averaged the binary cross-entropy over the pixels (e.g. the default "
        "reduction='mean'): SUM it over the data dimension and average only over the batch."
    ),
    "mean_pixels_and_dims": (
        "you averaged over pixels and latent dimensions: sum both over their dimension and "
        "average only over the batch."
    ),
    "sum_batch": "you summed over the batch: the loss is the batch MEAN of the per-example terms.",
    "kl_mean_dims": "the KL of a diagonal Gaussian is the SUM over latent dimensions, not the mean.",
    "kl_half": "your KL term is twice too large: a factor ½ is missing.",
    "kl_log_std": (
        "the argument log_var is the log of the VARIANCE: σ² = exp(log_var), not exp(2·log_var)."
    ),
    "sigmoid_twice": (
        "`logits` are pre-sigmoid scores: a ..._with_logits loss applies the sigmoid itself, "
        "so do not apply it first."
    ),
    "swapped_args": (
        "the arguments of the BCE are swapped: the logits are the prediction, x is the target."
    ),
    "vector": "return a single number: the average over the batch of the per-example losses.",
    "nonfinite": (
        "your loss is inf or nan for confident logits: log(sigmoid(·)) underflows to log 0. "
        "Use a numerically stable form, e.g. torch.nn.functional.binary_cross_entropy_with_logits "
        "or F.logsigmoid."
    ),
}


def check_vae_loss_bernoulli(vae_loss_bernoulli) -> CheckResult:
    r"""Check ``vae_loss_bernoulli(x, logits, mu, log_var) -> scalar`` (notebook 05).

    The negative ELBO of a Bernoulli-decoder VAE, averaged over the batch: for each
    example the binary cross-entropy with logits summed over the ``D`` pixels plus
    :math:`\mathrm{KL}(\mathcal N(\mu,\mathrm{diag}\,e^{\log\sigma^2})\,\|\,\mathcal N(0,I))`
    summed over the ``L`` latent dimensions. Shapes ``x, logits: (B, D)``,
    ``mu, log_var: (B, L)``. Reference: ``Bernoulli(logits=...).log_prob`` and
    ``kl_divergence`` from ``torch.distributions``.
    """
    g = _gen(606)

    def case(label, x, logits, mu, log_var):
        a = tuple(t.to(torch.float32) for t in (x, logits, mu, log_var))
        d = tuple(_d(t) for t in a)
        return _Case(
            label,
            a,
            _vae_loss_reference(*d),
            _vae_loss_mutants(*d, a[0], a[1]),
        )

    def binary(*shape):
        return (_rand(g, *shape) < 0.4).float()

    confident_x = binary(3, 10)
    confident_logits = 40.0 * (2 * confident_x - 1)
    confident_logits[:, 0] *= -1  # one confidently wrong pixel per example: costs 40 nats
    cases = [
        case(
            "logits = 0, mu = 0, log_var = 0: log 2 per pixel, KL = 0",
            binary(2, 5),
            torch.zeros(2, 5),
            torch.zeros(2, 3),
            torch.zeros(2, 3),
        ),
        case(
            "random batch B = 8, D = 12, L = 3",
            binary(8, 12),
            2 * _randn(g, 8, 12),
            _randn(g, 8, 3),
            0.5 * _randn(g, 8, 3),
        ),
        case(
            "grey-level x in [0, 1]",
            _rand(g, 4, 6),
            2 * _randn(g, 4, 6),
            _randn(g, 4, 2),
            0.5 * _randn(g, 4, 2),
        ),
        case(
            "a single example (B = 1)",
            binary(1, 7),
            _randn(g, 1, 7),
            _randn(g, 1, 2),
            0.3 * _randn(g, 1, 2),
        ),
        case(
            "confident logits (±40): needs a stable BCE",
            confident_x,
            confident_logits,
            _randn(g, 3, 2),
            0.3 * _randn(g, 3, 2),
        ),
        case(
            "large KL: mu ≈ ±5, log_var in [-4, 3]",
            binary(4, 8),
            _randn(g, 4, 8),
            5.0 * _randn(g, 4, 3),
            -4.0 + 7.0 * _rand(g, 4, 3),
        ),
    ]
    return _finish(
        "vae_loss_bernoulli",
        vae_loss_bernoulli,
        cases,
        "scalar",
        _VAE_HINTS,
        "compute the two terms separately for the first failing case (reconstruction summed "
        "over pixels, KL summed over latent dims, one value per example), then average over "
        "the batch.",
    )


# ============================================================================ 06 slerp
def _slerp_reference(z0, z1, t):
    """Shoemake/White slerp in float64, the angle from a stable half-angle formula."""
    a, b = z0 / z0.norm(), z1 / z1.norm()
    omega = 2.0 * torch.atan2((a - b).norm(), (a + b).norm())
    if float(omega) < 1e-12:  # (anti)parallel within float64: the limit is lerp
        return (1 - t) * z0 + t * z1
    s = torch.sin(omega)
    return torch.sin((1 - t) * omega) / s * z0 + torch.sin(t * omega) / s * z1


def _slerp_plain(z0, z1, t, *, normalize=True, fallback=False):
    """The textbook formula; without the parallel fallback it gives nan when parallel."""
    if normalize:
        dot = (z0 / z0.norm()) @ (z1 / z1.norm())
    else:
        dot = z0 @ z1
    omega = torch.acos(dot.clamp(-1.0, 1.0))
    s = torch.sin(omega)
    if fallback and float(s) < 1e-12:
        return (1 - t) * z0 + t * z1
    return torch.sin((1 - t) * omega) / s * z0 + torch.sin(t * omega) / s * z1


def _slerp_mutants(z0, z1, t, z0_32, z1_32):
    a, b = z0 / z0.norm(), z1 / z1.norm()
    return {
        "lerp": (1 - t) * z0 + t * z1,
        "swapped": _slerp_reference(z0, z1, 1 - t),
        "no_normalize": _slerp_plain(z0, z1, t, normalize=False, fallback=True),
        "unit_output": _slerp_reference(a, b, t),
        # without the fallback, float32 parallel vectors give 0/0 = nan
        "nonfinite": _d(_slerp_plain(z0_32, z1_32, t)),
    }


_SLERP_HINTS = {
    "lerp": (
        "your result lies on the straight line between z0 and z1 (linear interpolation). "
        "Slerp follows the arc: for two orthogonal unit vectors at t = 0.5 the result must "
        "still have norm 1."
    ),
    "swapped": "at t = 0 you must return z0 and at t = 1 z1: your two weights are swapped.",
    "no_normalize": (
        "normalize both vectors before computing the angle between them: the angle depends "
        "only on their directions."
    ),
    "unit_output": (
        "interpolate the vectors themselves, not their normalized directions: the result "
        "should keep their lengths (t = 0 gives z0 exactly)."
    ),
    "nonfinite": (
        "for (nearly) parallel vectors sin Ω ≈ 0 and the formula divides 0 by 0: fall back "
        "to linear interpolation when the vectors are nearly parallel (and clamp the cosine "
        "to [-1, 1] before arccos)."
    ),
}


def check_slerp(slerp) -> CheckResult:
    r"""Check ``slerp(z0, z1, t) -> (L,)`` (notebook 06).

    Spherical linear interpolation (Shoemake 1985; White 2016, *Sampling
    Generative Networks*) of two float32 ``(L,)`` vectors at ``t`` in [0, 1] (a
    Python float): with :math:`\Omega` the angle between ``z0`` and ``z1``,
    weights :math:`\sin((1-t)\Omega)/\sin\Omega` and :math:`\sin(t\Omega)/\sin\Omega`
    on the vectors themselves, falling back to linear interpolation when they are
    nearly parallel. Reference: float64, the angle from the stable half-angle
    formula :math:`\Omega = 2\,\mathrm{atan2}(\|a-b\|, \|a+b\|)` of the unit vectors.
    """
    g = _gen(707)

    def case(label, z0, z1, t):
        z0, z1 = z0.to(torch.float32), z1.to(torch.float32)
        d0, d1 = _d(z0), _d(z1)
        return _Case(
            label,
            (z0, z1, float(t)),
            _slerp_reference(d0, d1, float(t)),
            _slerp_mutants(d0, d1, float(t), z0, z1),
        )

    e = torch.eye(3)
    base = _randn(g, 6)
    cases = [
        case("t = 0 returns z0", _randn(g, 5), _randn(g, 5), 0.0),
        case("t = 1 returns z1", _randn(g, 5), _randn(g, 5), 1.0),
        case("orthogonal unit vectors, t = 0.5: stays on the unit circle", e[0], e[1], 0.5),
        case("random 8-dim vectors, t = 0.3", _randn(g, 8), _randn(g, 8), 0.3),
        case("different lengths, t = 0.7", _randn(g, 4), 3.0 * _randn(g, 4), 0.7),
        case(
            "nearly parallel vectors (angle ≈ 1e-6), t = 0.5", base, base + 1e-6 * _randn(g, 6), 0.5
        ),
        case("parallel vectors of lengths 1 and 2, t = 0.25", e[0], 2.0 * e[0], 0.25),
        case(
            "identical vectors, t = 0.4",
            torch.tensor([3.0, 4.0, 0.0, 0.0]),
            torch.tensor([3.0, 4.0, 0.0, 0.0]),
            0.4,
        ),
    ]
    return _finish(
        "slerp",
        slerp,
        cases,
        "tensor",
        _SLERP_HINTS,
        "check t = 0, t = 1 and two orthogonal unit vectors at t = 0.5 by hand, then the "
        "case of parallel vectors.",
    )


# ============================================================================ 07 active units
def _latents_with_variances(g, n, variances, offsets=None):
    """(n, L) latents whose columns have exactly the given (population) variances."""
    L = len(variances)
    z = torch.randn(n, L, generator=g, dtype=_F64)
    z = (z - z.mean(0)) / z.std(0, correction=0)
    z = z * torch.tensor(variances, dtype=_F64).sqrt()
    if offsets is not None:
        z = z + torch.tensor(offsets, dtype=_F64)
    return z


def _population_variance(mu: torch.Tensor) -> torch.Tensor:
    centred = mu - mu.sum(0) / mu.shape[0]
    return centred.pow(2).sum(0) / mu.shape[0]


def _active_mutants(mu, threshold):
    var = _population_variance(mu)
    L = mu.shape[1]
    return {
        "std": int((var.sqrt() > threshold).sum()),
        "wrong_axis": int((_population_variance(mu.T) > threshold).sum()),
        "inactive": int(L - (var > threshold).sum()),
        "mean": int((mu.mean(0).abs() > threshold).sum()),
        "ignore_threshold": int((var > 0.01).sum()),
    }


_ACTIVE_HINTS = {
    "std": (
        "you compared the standard deviation with the threshold: Burda et al. threshold the "
        "VARIANCE (over the data) of the encoder mean."
    ),
    "wrong_axis": (
        "compute the variance over the data points (dim 0, the N rows), one variance per "
        "latent dimension."
    ),
    "inactive": "you counted the INACTIVE dimensions; count those whose variance exceeds the "
    "threshold.",
    "mean": (
        "a unit is active when its encoder mean VARIES across the data, whatever its average "
        "value: threshold a variance, not a mean."
    ),
    "ignore_threshold": "use the `threshold` argument instead of a fixed 0.01.",
    "mask": "return the count (an int), not the per-dimension mask: sum the mask.",
}


def check_active_units(active_units) -> CheckResult:
    r"""Check ``active_units(mu, threshold=0.01) -> int`` (notebook 07).

    The number of latent dimensions whose encoder mean varies over the data:
    :math:`\#\{j: \mathrm{Var}_x(\mu_j(x)) > \text{threshold}\}` (Burda, Grosse &
    Salakhutdinov 2016), for ``mu`` of shape ``(N, L)``. The threshold is passed
    positionally in the custom-threshold case. The cases keep every variance far
    from the threshold, so the biased and the unbiased variance give the same count.
    Reference: float64 centred second moments.
    """
    g = _gen(808)

    def case(label, mu, threshold=None):
        mu32 = mu.to(torch.float32)
        thr = 0.01 if threshold is None else threshold
        dmu = _d(mu32)
        expected = int((_population_variance(dmu) > thr).sum())
        args = (mu32,) if threshold is None else (mu32, float(threshold))
        return _Case(label, args, expected, _active_mutants(dmu, thr))

    collapsed = torch.tensor([[0.5, -2.0, 3.0]]).repeat(200, 1)
    cases = [
        case(
            "all 4 dimensions active (variances ≈ 1)",
            _latents_with_variances(g, 200, [1.0, 0.8, 1.5, 2.0]),
        ),
        case("collapsed encoder: every row identical", collapsed),
        case(
            "variances 1, 0.5, 0.05, 0.003, 1e-6",
            _latents_with_variances(g, 200, [1.0, 0.5, 0.05, 0.003, 1e-6]),
        ),
        case(
            "threshold = 0.05, variances 1, 0.03, 0.2, 0.005, 1e-4, 0.5",
            _latents_with_variances(g, 200, [1.0, 0.03, 0.2, 0.005, 1e-4, 0.5]),
            threshold=0.05,
        ),
        case(
            "means far from 0 (≈ 1000), variances 2 and 1e-4",
            _latents_with_variances(g, 200, [2.0, 1e-4], offsets=[1000.0, -1000.0]),
        ),
        case(
            "N = 50 examples, L = 8 latents",
            _latents_with_variances(g, 50, [1.0, 1e-5, 0.3, 1e-4, 0.02, 2.0, 1e-3, 0.5]),
        ),
    ]
    return _finish(
        "active_units",
        active_units,
        cases,
        "int",
        _ACTIVE_HINTS,
        "print the per-dimension variances of mu for the first failing case and count by "
        "hand how many exceed the threshold.",
    )


# ============================================================================ 08 IWAE
def _iwae_reference(log_w: torch.Tensor) -> torch.Tensor:
    """log (1/K) sum_k exp(log_w[k]) in float64 with the maximum factored out."""
    m = log_w.max(dim=0).values
    return m + torch.log(torch.exp(log_w - m).mean(dim=0))


def _iwae_mutants(log_w, log_w32):
    K = log_w.shape[0]
    lse = torch.logsumexp(log_w, dim=0)
    naive = torch.log(torch.exp(log_w32).mean(dim=0))
    return {
        "no_log_k": lse,
        "mean_log_w": log_w.mean(dim=0),
        "wrong_dim": torch.logsumexp(log_w, dim=1) - math.log(log_w.shape[1]),
        "divide_outside": lse / K,
        "max_only": log_w.max(dim=0).values,
        "nonfinite": _d(naive),
    }


_IWAE_HINTS = {
    "no_log_k": (
        "you forgot the 1/K: the bound is the log of the AVERAGE weight, so subtract log K."
    ),
    "mean_log_w": (
        "you averaged the log-weights: that is the ELBO (an average of logs). The IWAE bound "
        "is the log of the average weight."
    ),
    "wrong_dim": (
        "reduce over the K samples (dim 0) and keep the batch dimension: the result has shape (B,)."
    ),
    "divide_outside": "the 1/K goes inside the log: subtract log K instead of dividing by K.",
    "max_only": (
        "the maximum is only the stabilizing shift: the other weights still contribute "
        "after it is factored out."
    ),
    "nonfinite": (
        "your bound is ±inf for large log-weights: exp(−1000) is 0 and exp(1000) is inf in "
        "floating point. Use the log-sum-exp trick (factor out the largest log-weight), or "
        "torch.logsumexp."
    ),
}


def check_iwae_bound(iwae_bound) -> CheckResult:
    r"""Check ``iwae_bound(log_w) -> (B,)`` (notebook 08).

    :math:`\log\frac1K\sum_k e^{\log w_k}` for ``log_w`` of shape ``(K, B)``,
    computed stably (log-weights of images are around -1000). Reference: float64
    with the maximum factored out.
    """
    g = _gen(909)

    def case(label, log_w):
        lw = log_w.to(torch.float32)
        d = _d(lw)
        return _Case(label, (lw,), _iwae_reference(d), _iwae_mutants(d, lw))

    cases = [
        case("K = 1: the bound is the single log-weight", _randn(g, 1, 3)),
        case("equal log-weights (K = 5): the bound is that value", torch.full((5, 2), -3.2)),
        case("random log-weights, K = 10, B = 4", 2.0 * _randn(g, 10, 4)),
        case("image-sized log-weights ≈ -1000 (K = 20, B = 3)", -1000.0 + 5.0 * _randn(g, 20, 3)),
        case("large positive log-weights ≈ +500 (K = 7, B = 2)", 500.0 + 3.0 * _randn(g, 7, 2)),
        case("one dominant sample (spread of hundreds of nats)", 100.0 * _randn(g, 6, 3)),
    ]
    return _finish(
        "iwae_bound",
        iwae_bound,
        cases,
        "tensor",
        _IWAE_HINTS,
        "check K = 1 (the answer is log_w[0]) and equal log-weights (the answer is that "
        "value) by hand, then the large-magnitude cases.",
    )


# ============================================================================ 09 free energy
def _free_energy_reference(x, m, s, mu0, sigma0, sigma):
    """-ELBO: closed-form E_q log p(x|z) (sum over i) plus torch.distributions' KL."""
    n = x.numel()
    expected_ll = -0.5 * n * math.log(2 * math.pi * sigma**2) - (
        (x - m).pow(2).sum() + n * s.pow(2)
    ) / (2 * sigma**2)
    kl = kl_divergence(
        Normal(m, s), Normal(torch.tensor(mu0, dtype=_F64), torch.tensor(sigma0, dtype=_F64))
    )
    return -(expected_ll - kl)


def _free_energy_mutants(x, m, s, mu0, sigma0, sigma):
    n = x.numel()
    log_norm = -0.5 * n * math.log(2 * math.pi * sigma**2)
    sq = (x - m).pow(2).sum()
    ell = log_norm - (sq + n * s.pow(2)) / (2 * sigma**2)
    kl = kl_divergence(
        Normal(m, s), Normal(torch.tensor(mu0, dtype=_F64), torch.tensor(sigma0, dtype=_F64))
    )
    s_as_var = s.sqrt()
    ell_s_var = log_norm - (sq + n * s_as_var.pow(2)) / (2 * sigma**2)
    kl_s_var = kl_divergence(
        Normal(m, s_as_var), Normal(torch.tensor(mu0, dtype=_F64), torch.tensor(sigma0, dtype=_F64))
    )
    sig_v = math.sqrt(sigma)
    ell_sigma_var = -0.5 * n * math.log(2 * math.pi * sig_v**2) - (sq + n * s.pow(2)) / (
        2 * sig_v**2
    )
    kl_rev = kl_divergence(
        Normal(torch.tensor(mu0, dtype=_F64), torch.tensor(sigma0, dtype=_F64)), Normal(m, s)
    )
    return {
        "elbo": ell - kl,
        "no_kl": -ell,
        "plugin": -(log_norm - sq / (2 * sigma**2)) + kl,
        "s_once": -(log_norm - (sq + s.pow(2)) / (2 * sigma**2)) + kl,
        "s_var": -(ell_s_var - kl_s_var),
        "sigma_var": -(ell_sigma_var - kl),
        "kl_reversed": -(ell - kl_rev),
        "mean_obs": -(ell / n - kl),
        "kl_sign": -(ell + kl),
    }


_FREE_ENERGY_HINTS = {
    "elbo": "you returned the ELBO: the free energy is its negative.",
    "no_kl": "the KL(q ‖ p(z)) term, which brings in the prior, is missing.",
    "plugin": (
        "the expected log-likelihood under q must account for the spread of q: each "
        "observation gets an extra term in s², which is missing."
    ),
    "s_once": "each of the n observations contributes its own s² term; you counted it once.",
    "s_var": (
        "the argument s is a standard deviation (q = N(m, s²)): you used it as a variance "
        "somewhere."
    ),
    "sigma_var": (
        "the argument sigma is the observation noise's standard deviation: you used it as a "
        "variance."
    ),
    "kl_reversed": "the KL is KL(q ‖ p(z)), not KL(p(z) ‖ q).",
    "mean_obs": "sum the log-likelihood over the n observations; do not average it.",
    "kl_sign": "check the sign of the KL term: F = −ELBO = −E_q[log p(x|z)] + KL.",
}


def check_free_energy_conjugate(free_energy_conjugate) -> CheckResult:
    r"""Check ``free_energy_conjugate(x, m, s, mu0, sigma0, sigma) -> scalar`` (notebook 09).

    The variational free energy :math:`F(q) = -\mathcal L(q)` of
    :math:`q=\mathcal N(m, s^2)` under the model
    :math:`z\sim\mathcal N(\mu_0,\sigma_0^2),\ x_i\mid z\sim\mathcal N(z,\sigma^2)`
    (:class:`~vi_helpers.models.ConjugateGaussianModel`). ``x`` is a float32
    ``(n,)`` tensor, ``m`` and ``s`` are 0-dim float32 tensors, ``mu0``, ``sigma0``,
    ``sigma`` Python floats. References: the closed-form expected log-likelihood
    plus ``torch.distributions.kl_divergence``; at the exact posterior,
    :math:`F = -\log p(x)` from the exact evidence.
    """
    g = _gen(1009)

    def case(label, x, m, s, mu0, sigma0, sigma, expected=None):
        x32 = x.to(torch.float32)
        m32, s32 = torch.tensor(float(m)), torch.tensor(float(s))
        d = (_d(x32), _d(m32), _d(s32), float(mu0), float(sigma0), float(sigma))
        ref = _free_energy_reference(*d) if expected is None else expected
        return _Case(label, (x32, m32, s32, *d[3:]), ref, _free_energy_mutants(*d))

    model = ConjugateGaussianModel(0.0, 1.0, 1.0)
    x_post = torch.tensor([0.8, 1.9, 1.1, 0.4, 1.6])
    post = model.posterior(_d(x_post))
    cases = [
        case(
            "q = exact posterior: F = -log p(x)",
            x_post,
            float(post.mean),
            float(post.stddev),
            0.0,
            1.0,
            1.0,
            expected=-model.log_evidence(_d(x_post)),
        ),
        case("standard prior, q = N(0.3, 0.5²), n = 4", _randn(g, 4), 0.3, 0.5, 0.0, 1.0, 1.0),
        case("a single observation (n = 1)", torch.tensor([2.5]), 1.0, 0.8, 0.5, 2.0, 1.5),
        case(
            "strong prior (sigma0 = 0.1), broad q (s = 2)",
            1.0 + _randn(g, 6),
            0.4,
            2.0,
            -0.5,
            0.1,
            0.7,
        ),
        case("data far from zero (x ≈ 50)", 50.0 + 2.0 * _randn(g, 8), 49.0, 0.6, 48.0, 3.0, 2.0),
        case("very narrow q (s = 0.001)", _randn(g, 3), -0.2, 0.001, 0.0, 1.0, 1.0),
    ]
    return _finish(
        "free_energy_conjugate",
        free_energy_conjugate,
        cases,
        "scalar",
        _FREE_ENERGY_HINTS,
        "split F into −E_q[log p(x|z)] and KL(q ‖ p(z)) and check each against the notebook's "
        "derivation on the first failing case.",
    )
