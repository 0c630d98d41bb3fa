"""Cases for the checks of notebook mean_field_cavi: reference solution(s), other correct answers,
and typical mistakes with the hint each must get. Collected by ``test_common.py``."""

from __future__ import annotations


def cavi_update_mu(x, e_tau, mu0, lambda0):
    n = x.shape[0]
    mu_n = (lambda0 * mu0 + n * x.mean()) / (lambda0 + n)
    lambda_n = (lambda0 + n) * e_tau
    return mu_n, lambda_n


REFERENCE = {
    "cavi_update_mu": cavi_update_mu,
}
N_CASES = {
    "cavi_update_mu": 6,
}
ALTERNATIVES = [
    # numbers instead of tensors in the pair
    (
        "cavi_update_mu",
        lambda x, e_tau, mu0, lambda0: (
            float((lambda0 * mu0 + x.sum()) / (lambda0 + len(x))),
            (lambda0 + len(x)) * e_tau,
        ),
    ),
]
MUTANTS = [
    (
        "cavi_update_mu",
        "prec_no_tau",
        lambda x, e_tau, mu0, l0: (cavi_update_mu(x, e_tau, mu0, l0)[0], l0 + len(x)),
        "scaled by E[τ]",
    ),
    (
        "cavi_update_mu",
        "prec_tau_data_only",
        lambda x, e_tau, mu0, l0: (cavi_update_mu(x, e_tau, mu0, l0)[0], l0 + len(x) * e_tau),
        "prior's term in λ_N",
    ),
    (
        "cavi_update_mu",
        "mean_xbar",
        lambda x, e_tau, mu0, l0: ((l0 * mu0 + x.mean()) / (l0 + len(x)), (l0 + len(x)) * e_tau),
        "N·x̄",
    ),
    (
        "cavi_update_mu",
        "mean_tau",
        lambda x, e_tau, mu0, l0: (
            (l0 * mu0 + e_tau * x.sum()) / (l0 + e_tau * len(x)),
            (l0 + len(x)) * e_tau,
        ),
        "E[τ] cancels in μ_N",
    ),
    (
        "cavi_update_mu",
        "variance",
        lambda x, e_tau, mu0, l0: (
            cavi_update_mu(x, e_tau, mu0, l0)[0],
            1 / ((l0 + len(x)) * e_tau),
        ),
        "not the variance",
    ),
    (
        "cavi_update_mu",
        "std",
        lambda x, e_tau, mu0, l0: (
            cavi_update_mu(x, e_tau, mu0, l0)[0],
            ((l0 + len(x)) * e_tau) ** -0.5,
        ),
        "not the standard deviation",
    ),
    ("cavi_update_mu", "swapped", lambda *a: cavi_update_mu(*a)[::-1], "(mu_N, lambda_N)"),
    (
        "cavi_update_mu",
        "mu0_unweighted",
        lambda x, e_tau, mu0, l0: ((mu0 + x.sum()) / (l0 + len(x)), (l0 + len(x)) * e_tau),
        "weighted by λ0",
    ),
]
