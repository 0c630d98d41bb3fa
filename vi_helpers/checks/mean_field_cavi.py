"""Checks for the exercises of notebook 03 Mean field and CAVI (``notebooks/03_*.ipynb``)."""

from __future__ import annotations

import torch
from torch.distributions import Normal

from ._runner import F64, Case, CheckResult, finish, gen, randn, to_f64

__all__ = ['check_update_assignments', 'check_best_restart']


# ----------------------------------------------------------------------------- update_assignments
def _assignments_reference(x: torch.Tensor, m: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    r"""The boxed mean-field rule, written independently of the package:
    :math:`\log\varphi_{nj}=\mathbb E_{q(\mu_j)}[\log\mathcal N(x_n;\mu_j,1)]+\text{const}
    =\log\mathcal N(x_n;m_j,1)-s_j^2/2+\text{const}`, normalized over j."""
    expected_log_lik = Normal(m[None, :], torch.ones((), dtype=F64)).log_prob(x[:, None]) - 0.5 * s.pow(2)
    return torch.softmax(expected_log_lik, dim=1)


def _assignments_mutants(x, m, s) -> dict[str, torch.Tensor]:
    logits = x[:, None] * m[None, :] - 0.5 * (m**2 + s**2)[None, :]
    with torch.no_grad():
        naive = logits.exp() / logits.exp().sum(1, keepdim=True)
    return {
        "no_variance": torch.softmax(x[:, None] * m[None, :] - 0.5 * m**2, dim=1),
        "variance_not_halved": torch.softmax(x[:, None] * m[None, :] - 0.5 * m**2 - s**2, dim=1),
        "std_not_variance": torch.softmax(x[:, None] * m[None, :] - 0.5 * (m**2 + s), dim=1),
        "wrong_axis": torch.softmax(logits, dim=0),
        "unnormalized": logits.exp(),
        "naive_softmax": naive,
        "plus_variance": torch.softmax(x[:, None] * m[None, :] - 0.5 * m**2 + 0.5 * s**2, dim=1),
        "log_phi": torch.log_softmax(logits, dim=1),
    }


_ASSIGNMENTS_HINTS = {
    "no_variance": (
        "q(μ_j) is a distribution, not a point: E[μ_j²] = m_j² + s_j², so the uncertainty s_j² "
        "of each mean enters the update."
    ),
    "variance_not_halved": "E[log N(x; μ, 1)] contains −(x − μ)²/2: the variance term has a factor ½ too.",
    "std_not_variance": "s holds standard deviations: E[μ_j²] = m_j² + s_j² uses the variance s_j².",
    "wrong_axis": (
        "each data point's probabilities over the C components must sum to 1: normalize over the "
        "last dimension (the components), not over the data."
    ),
    "unnormalized": "φ_n is a probability vector: normalize each row so that it sums to 1.",
    "naive_softmax": (
        "exp overflows for data far from 0: subtract each row's maximum before exponentiating "
        "(or use torch.softmax, which does it for you)."
    ),
    "plus_variance": "the uncertainty s_j² lowers E[log p(x_n | μ_j)]: it enters with a minus sign.",
    "log_phi": "return the probabilities φ, not their logarithms.",
}


def check_update_assignments(update_assignments) -> CheckResult:
    r"""Check ``update_assignments(x, m, s) -> (N, C)`` (notebook 03).

    The CAVI update of the assignment factors :math:`q(c_n)=\mathrm{Cat}(\varphi_n)`
    in the Bayesian mixture of unit-variance Gaussians (Blei et al. 2017, eq. 21),
    given :math:`q(\mu_j)=\mathcal N(m_j,s_j^2)`; the tensors are float64. Reference: the softmax over
    :math:`j` of :math:`\log\mathcal N(x_n;m_j,1)-s_j^2/2` (``torch.distributions``).
    """
    g = gen(313)

    def case(label, x, m, s):
        # float64 inputs, as in the notebook: x·m − m²/2 cancels badly in float32 when x ≈ 300
        dx, dm, ds = (to_f64(t.to(torch.float32)) for t in (x, m, s))
        return Case(label, (dx, dm, ds), _assignments_reference(dx, dm, ds),
                    _assignments_mutants(dx, dm, ds), rtol=1e-4, atol=1e-5)

    cases = [
        case("two components, equal uncertainty", torch.tensor([-1.0, 0.0, 2.0]),
             torch.tensor([-1.0, 1.5]), torch.tensor([0.5, 0.5])),
        case("one uncertain component (s = 2) beside a sure one", torch.tensor([0.0, 0.5, 1.0, 3.0]),
             torch.tensor([0.2, 0.8]), torch.tensor([2.0, 0.1])),
        case("C = 3 components, N = 20 points", 3.0 * randn(g, 20),
             torch.tensor([-3.0, 0.0, 3.0]), torch.tensor([0.3, 0.6, 1.1])),
        case("a single component: every probability is 1", randn(g, 5), torch.tensor([0.4]), torch.tensor([0.7])),
        case("data far from 0 (x ≈ 300): overflow test", 300.0 + randn(g, 6),
             torch.tensor([299.0, 301.0, 310.0]), torch.tensor([0.2, 0.2, 0.5])),
    ]
    return finish(
        "update_assignments",
        update_assignments,
        cases,
        "tensor",
        _ASSIGNMENTS_HINTS,
        "on the first failing case compute, for one data point, E[log N(x_n; μ_j, 1)] under "
        "q(μ_j) for every j by hand, then normalize over j.",
    )


# ----------------------------------------------------------------------------- best_restart
def _best_restart_mutants(elbos: torch.Tensor, means: torch.Tensor) -> dict[str, torch.Tensor]:
    best, worst = int(elbos.argmax()), int(elbos.argmin())
    return {
        "argmin": means[worst].sort().values,
        "unsorted": means[best],
        "descending": means[best].sort(descending=True).values,
        "average": means.mean(0).sort().values,
        "average_unsorted": means.mean(0),
        "last": means[-1].sort().values,
    }


_BEST_RESTART_HINTS = {
    "argmin": "keep the run with the HIGHEST ELBO: CAVI maximizes it.",
    "unsorted": (
        "the components' labels are arbitrary (label switching): the same solution can come out "
        "as any permutation of its means. Sort the means so that equal solutions compare equal."
    ),
    "descending": "sort the means in increasing order.",
    "average": (
        "do not average over restarts: different runs converge to different optima, and even equal "
        "optima list their components in different orders (label switching). Keep the single best run."
    ),
    "average_unsorted": (
        "do not average over restarts: runs label their components differently (label switching), "
        "so an average mixes different clusters. Keep the single best run."
    ),
    "last": "pick the run with the highest final ELBO, not the last run.",
}


def check_best_restart(best_restart) -> CheckResult:
    r"""Check ``best_restart(elbos, means) -> (C,)`` (notebook 03).

    Given the final ELBOs ``(R,)`` of ``R`` CAVI runs and their component means
    ``(R, C)``, return the means of the run with the highest ELBO, sorted in
    increasing order (so that label-switched copies of one solution are equal).
    """
    g = gen(323)

    def case(label, elbos, means):
        e32, m32 = elbos.to(torch.float32), means.to(torch.float32)
        de, dm = to_f64(e32), to_f64(m32)
        return Case(label, (e32, m32), dm[int(de.argmax())].sort().values, _best_restart_mutants(de, dm))

    perm_runs = torch.tensor([[3.0, -4.0, 0.0], [0.0, 3.0, -4.0], [-2.0, -2.1, 3.0], [-4.0, 0.0, 3.0]])
    cases = [
        case("four runs, two of them the same solution relabelled",
             torch.tensor([-450.2, -450.2, -470.9, -460.0]), perm_runs),
        case("the best run is the last one", torch.tensor([-12.0, -11.0, -10.5]),
             torch.tensor([[1.0, -1.0], [0.5, 2.0], [2.5, -0.5]])),
        case("ten runs of a 4-component mixture", -100.0 + randn(g, 10), 3.0 * randn(g, 10, 4)),
        case("one run only", torch.tensor([-3.0]), torch.tensor([[0.7, -0.2, 5.0]])),
    ]
    return finish(
        "best_restart",
        best_restart,
        cases,
        "tensor",
        _BEST_RESTART_HINTS,
        "find the index of the largest ELBO, take that run's means, and sort them.",
    )
