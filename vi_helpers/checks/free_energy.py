"""Checks for the exercises of notebook 09 Free energy (``notebooks/09_*.ipynb``)."""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal, kl_divergence

from ..models import ConjugateGaussianModel
from ._runner import F64, Case, CheckResult, finish, gen, randn, to_f64

__all__ = ['check_free_energy_conjugate', 'check_efe', 'check_predicted_rate']

def _free_energy_reference(x, m, s, mu0, sigma0, sigma):
    """-ELBO: closed-form E_q log p(x|z) (sum over i) plus torch.distributions' KL."""
    n = x.numel()
    expected_ll = -0.5 * n * math.log(2 * math.pi * sigma**2) - (
        (x - m).pow(2).sum() + n * s.pow(2)
    ) / (2 * sigma**2)
    kl = kl_divergence(
        Normal(m, s), Normal(torch.tensor(mu0, dtype=F64), torch.tensor(sigma0, dtype=F64))
    )
    return -(expected_ll - kl)


def _free_energy_mutants(x, m, s, mu0, sigma0, sigma):
    n = x.numel()
    log_norm = -0.5 * n * math.log(2 * math.pi * sigma**2)
    sq = (x - m).pow(2).sum()
    ell = log_norm - (sq + n * s.pow(2)) / (2 * sigma**2)
    kl = kl_divergence(
        Normal(m, s), Normal(torch.tensor(mu0, dtype=F64), torch.tensor(sigma0, dtype=F64))
    )
    s_as_var = s.sqrt()
    ell_s_var = log_norm - (sq + n * s_as_var.pow(2)) / (2 * sigma**2)
    kl_s_var = kl_divergence(
        Normal(m, s_as_var), Normal(torch.tensor(mu0, dtype=F64), torch.tensor(sigma0, dtype=F64))
    )
    sig_v = math.sqrt(sigma)
    ell_sigma_var = -0.5 * n * math.log(2 * math.pi * sig_v**2) - (sq + n * s.pow(2)) / (
        2 * sig_v**2
    )
    kl_rev = kl_divergence(
        Normal(torch.tensor(mu0, dtype=F64), torch.tensor(sigma0, dtype=F64)), Normal(m, s)
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
    g = gen(1009)

    def case(label, x, m, s, mu0, sigma0, sigma, expected=None):
        x32 = x.to(torch.float32)
        m32, s32 = torch.tensor(float(m)), torch.tensor(float(s))
        d = (to_f64(x32), to_f64(m32), to_f64(s32), float(mu0), float(sigma0), float(sigma))
        ref = _free_energy_reference(*d) if expected is None else expected
        return Case(label, (x32, m32, s32, *d[3:]), ref, _free_energy_mutants(*d))

    model = ConjugateGaussianModel(0.0, 1.0, 1.0)
    x_post = torch.tensor([0.8, 1.9, 1.1, 0.4, 1.6])
    post = model.posterior(to_f64(x_post))
    cases = [
        case(
            "q = exact posterior: F = -log p(x)",
            x_post,
            float(post.mean),
            float(post.stddev),
            0.0,
            1.0,
            1.0,
            expected=-model.log_evidence(to_f64(x_post)),
        ),
        case("standard prior, q = N(0.3, 0.5²), n = 4", randn(g, 4), 0.3, 0.5, 0.0, 1.0, 1.0),
        case("a single observation (n = 1)", torch.tensor([2.5]), 1.0, 0.8, 0.5, 2.0, 1.5),
        case(
            "strong prior (sigma0 = 0.1), broad q (s = 2)",
            1.0 + randn(g, 6),
            0.4,
            2.0,
            -0.5,
            0.1,
            0.7,
        ),
        case("data far from zero (x ≈ 50)", 50.0 + 2.0 * randn(g, 8), 49.0, 0.6, 48.0, 3.0, 2.0),
        case("very narrow q (s = 0.001)", randn(g, 3), -0.2, 0.001, 0.0, 1.0, 1.0),
    ]
    return finish(
        "free_energy_conjugate",
        free_energy_conjugate,
        cases,
        "scalar",
        _FREE_ENERGY_HINTS,
        "split F into −E_q[log p(x|z)] and KL(q ‖ p(z)) and check each against the notebook's "
        "derivation on the first failing case.",
    )


# ----------------------------------------------------------------------------- efe
def _xlogy(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """p log q with 0 log 0 = 0."""
    return torch.where(p > 0, p * q.log(), torch.zeros_like(p))


def _efe_parts(q_s, likelihood, log_pref):
    q_o = q_s @ likelihood
    risk = (_xlogy(q_o, q_o) - q_o * torch.where(q_o > 0, log_pref, torch.zeros_like(q_o))).sum()
    cond_entropy = -_xlogy(likelihood, likelihood).sum(-1)  # (S,)
    ambiguity = (q_s * cond_entropy).sum()
    return q_o, risk, ambiguity, cond_entropy


def _efe_mutants(q_s, likelihood, log_pref):
    q_o, risk, ambiguity, cond_entropy = _efe_parts(q_s, likelihood, log_pref)
    pref = log_pref.exp()
    entropy_q_o = -_xlogy(q_o, q_o).sum()
    return {
        "risk_only": risk,
        "ambiguity_only": ambiguity,
        "kl_reversed": (_xlogy(pref, pref) - pref * q_o.log()).sum() + ambiguity,
        "entropy_of_q_o": risk + entropy_q_o,
        "cross_entropy": risk + entropy_q_o + ambiguity,
        "unweighted": risk + cond_entropy.mean(),
        "ambiguity_sign": risk - ambiguity,
        "bits": (risk + ambiguity) / math.log(2),
    }


_EFE_HINTS = {
    "risk_only": "you returned the risk only: add the ambiguity, the expected entropy of p(o|s).",
    "ambiguity_only": "you returned the ambiguity only: add the risk, KL(q(o) ‖ p̃(o)).",
    "kl_reversed": (
        "the risk is KL(q(o) ‖ p̃(o)): an average over the PREDICTED observations q(o), not over "
        "the preferences."
    ),
    "entropy_of_q_o": (
        "the ambiguity is the entropy of p(o|s) for each state, averaged over q(s), not the entropy "
        "of the predicted observations q(o)."
    ),
    "cross_entropy": (
        "the risk is a KL, not a cross-entropy: −Σ q(o) log p̃(o) must be reduced by the entropy of "
        "q(o)."
    ),
    "unweighted": "average the entropies of p(o|s) with the weights q(s), not uniformly over states.",
    "ambiguity_sign": "ambiguity is ADDED to the risk: an unpredictable outcome makes an action worse.",
    "bits": "use natural logarithms (nats), as everywhere in this course.",
}


def check_efe(efe) -> CheckResult:
    r"""Check ``efe(q_s, likelihood, log_preferences) -> scalar`` (notebook 09).

    The expected free energy of one action in a discrete world,
    :math:`G=\mathrm{KL}(q(o)\,\|\,\tilde p(o))+\mathbb E_{q(s)}\mathbb H[p(o\mid s)]`
    with :math:`q(o)=\sum_sq(s)p(o\mid s)`, for ``q_s`` of shape ``(S,)``,
    ``likelihood`` ``(S, O)`` and ``log_preferences`` ``(O,)`` (float64). Reference:
    :func:`vi_helpers.free_energy.expected_free_energy`, itself tested against the
    epistemic/pragmatic decomposition and Monte Carlo.
    """
    from ..free_energy import expected_free_energy

    g = gen(1109)

    def case(label, q_s, likelihood, pref):
        q_s, likelihood = torch.tensor(q_s, dtype=F64), torch.tensor(likelihood, dtype=F64)
        log_pref = torch.tensor(pref, dtype=F64).log()
        expected = expected_free_energy(q_s, likelihood, log_pref)["efe"]
        return Case(label, (q_s, likelihood, log_pref), expected, _efe_mutants(q_s, likelihood, log_pref))

    def random_world(n_states, n_obs):
        q_s = torch.softmax(torch.randn(n_states, generator=g, dtype=F64), -1)
        lik = torch.softmax(2 * torch.randn(n_states, n_obs, generator=g, dtype=F64), -1)
        pref = torch.softmax(torch.randn(n_obs, generator=g, dtype=F64), -1)
        return q_s.tolist(), lik.tolist(), pref.tolist()

    forage = [[0.9, 0.1], [0.1, 0.9]]  # rows: food left / food right; columns: food / no food
    cases = [
        case("forage, unsure where the food is", [0.5, 0.5], forage, [0.8, 0.2]),
        case("forage, fairly sure", [0.9, 0.1], forage, [0.8, 0.2]),
        case("dark room: never any food", [0.5, 0.5], [[0.0, 1.0], [0.0, 1.0]], [0.8, 0.2]),
        case("flat preferences", [0.3, 0.7], [[0.6, 0.4], [0.2, 0.8]], [0.5, 0.5]),
        case("3 states, 4 observations", *random_world(3, 4)),
        case("4 states, 3 observations", *random_world(4, 3)),
    ]
    return finish(
        "efe",
        efe,
        cases,
        "scalar",
        _EFE_HINTS,
        "compute q(o) first and check it sums to 1; then the risk and the ambiguity separately on "
        "the first failing case.",
    )


# ----------------------------------------------------------------------------- predicted_rate
def _rate_mutants(eta: float, lam: torch.Tensor) -> dict[str, torch.Tensor]:
    factors = 1 - eta * lam
    return {
        "only_min": factors[lam.argmin()],
        "only_max": factors[lam.argmax()].abs(),
        "no_abs": factors.max(),
        "min_factor": factors.abs().min(),
        "squared": factors.pow(2).max(),
        "eta_inverse": (1 - lam / eta).abs().max(),
    }


_RATE_HINTS = {
    "only_min": (
        "the smallest eigenvalue sets the rate only for small steps; with a large step the "
        "direction of the LARGEST eigenvalue overshoots: take the worst |1 − η λ_j| over all j."
    ),
    "only_max": (
        "for small steps the direction of the smallest eigenvalue is the slow one: take the worst "
        "|1 − η λ_j| over ALL eigenvalues."
    ),
    "no_abs": (
        "a factor 1 − η λ_j below −1 also grows the error (it flips sign each step): take the "
        "absolute value before the maximum."
    ),
    "min_factor": (
        "the distance shrinks only as fast as the SLOWEST direction allows: take the largest "
        "|1 − η λ_j|, not the smallest."
    ),
    "squared": "the distance itself shrinks by |1 − η λ_j| per step; you returned the squared factor.",
    "eta_inverse": "each step multiplies the error along eigenvector j by 1 − η λ_j (η times λ_j).",
}


def check_predicted_rate(predicted_rate) -> CheckResult:
    r"""Check ``predicted_rate(eta, eigenvalues) -> scalar`` (notebook 09).

    Gradient descent with step :math:`\eta` on a quadratic with curvature
    eigenvalues :math:`\lambda_j` multiplies the error along eigenvector :math:`j`
    by :math:`1-\eta\lambda_j` per step, so the distance to the optimum shrinks
    (asymptotically) by :math:`\max_j|1-\eta\lambda_j|`, and grows when that
    exceeds 1. ``eta`` is a float, ``eigenvalues`` a float64 ``(L,)`` tensor.
    Reference: the closed form in float64.
    """

    def case(label, eta, lam):
        lam = torch.tensor(lam, dtype=F64)
        expected = (1 - eta * lam).abs().max()
        return Case(label, (float(eta), lam), expected, _rate_mutants(eta, lam), rtol=1e-9, atol=1e-9)

    lam = [6.3, 9.0, 14.2, 25.7]
    cases = [
        case("small step η = 0.5 / λ_max", 0.5 / 25.7, lam),
        case("η = 1 / λ_max (the notebook's step)", 1 / 25.7, lam),
        case("η = 1.9 / λ_max: the largest eigenvalue overshoots", 1.9 / 25.7, lam),
        case("η = 2.2 / λ_max: diverges", 2.2 / 25.7, lam),
        case("one eigenvalue, η = 0.1", 0.1, [4.0]),
        case("equal eigenvalues, η = 1 / λ (one step)", 0.5, [2.0, 2.0, 2.0]),
    ]
    return finish(
        "predicted_rate",
        predicted_rate,
        cases,
        "scalar",
        _RATE_HINTS,
        "write the factor 1 − η λ_j for every eigenvalue of the first failing case and see which one "
        "is largest in absolute value.",
    )
