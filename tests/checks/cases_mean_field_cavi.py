"""Cases for the checks of notebook mean_field_cavi: reference solution(s), other correct answers,
and typical mistakes with the hint each must get. Collected by ``test_common.py``."""

from __future__ import annotations

import torch


def update_assignments(x, m, s):
    logits = x[:, None] * m[None, :] - 0.5 * (m**2 + s**2)[None, :]
    return torch.softmax(logits, dim=1)


def best_restart(elbos, means):
    return means[elbos.argmax()].sort().values


def _assignments_with(logits_fn, normalize="softmax"):
    def fn(x, m, s):
        logits = logits_fn(x[:, None], m[None, :], s[None, :])
        if normalize == "softmax":
            return torch.softmax(logits, dim=1)
        if normalize == "axis0":
            return torch.softmax(logits, dim=0)
        if normalize == "naive":
            return logits.exp() / logits.exp().sum(1, keepdim=True)
        return logits.exp()

    return fn


_RIGHT = lambda x, m, s: x * m - 0.5 * (m**2 + s**2)  # noqa: E731

REFERENCE = {"update_assignments": update_assignments, "best_restart": best_restart}
N_CASES = {"update_assignments": 5, "best_restart": 4}
ALTERNATIVES = [
    # the expected log-likelihood in full (constants cancel in the normalization), log-sum-exp by hand
    (
        "update_assignments",
        lambda x, m, s: (
            lambda lp: (lp - torch.logsumexp(lp, 1, keepdim=True)).exp()
        )(-0.5 * (x[:, None] - m[None, :]) ** 2 - 0.5 * s[None, :] ** 2),
    ),
    ("best_restart", lambda elbos, means: torch.sort(means[torch.argmax(elbos)])[0]),
]
MUTANTS = [
    ("update_assignments", "no_variance", _assignments_with(lambda x, m, s: x * m - 0.5 * m**2), "E[μ_j²]"),
    (
        "update_assignments",
        "variance_not_halved",
        _assignments_with(lambda x, m, s: x * m - 0.5 * m**2 - s**2),
        "factor ½ too",
    ),
    ("update_assignments", "wrong_axis", _assignments_with(_RIGHT, "axis0"), "not over the data"),
    ("update_assignments", "unnormalized", _assignments_with(_RIGHT, "none"), "sums to 1"),
    ("update_assignments", "naive_softmax", _assignments_with(_RIGHT, "naive"), "overflows"),
    ("best_restart", "argmin", lambda e, m: m[e.argmin()].sort().values, "HIGHEST"),
    ("best_restart", "unsorted", lambda e, m: m[e.argmax()], "label switching"),
    ("best_restart", "average", lambda e, m: m.mean(0).sort().values, "do not average"),
]
