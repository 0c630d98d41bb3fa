"""Cases for the checks of notebook kl_divergence: reference solution(s), other correct answers,
and typical mistakes with the hint each must get. Collected by ``test_common.py``."""

from __future__ import annotations

import math

import torch


# ------------------------------------------------------------------ reference solutions
def kl_diag_gaussian(mu_q, log_var_q, mu_p, log_var_p):
    var_ratio = torch.exp(log_var_q - log_var_p)
    mean_term = (mu_q - mu_p) ** 2 / torch.exp(log_var_p)
    return 0.5 * (log_var_p - log_var_q + var_ratio + mean_term - 1.0).sum(dim=-1)

# ------------------------------------------------------------------ typical mistakes
def _kl_terms(mq, lq, mp, lp):
    return lp - lq + torch.exp(lq - lp) + (mq - mp) ** 2 / torch.exp(lp) - 1.0


REFERENCE = {
    "kl_diag_gaussian": kl_diag_gaussian,
}
N_CASES = {
    "kl_diag_gaussian": 6,
}
ALTERNATIVES = [
    # the KL per dimension, written with variances, then summed
    (
        "kl_diag_gaussian",
        lambda mq, lq, mp, lp: (
            0.5 * torch.log(lp.exp() / lq.exp())
            + (lq.exp() + (mq - mp) ** 2) / (2 * lp.exp())
            - 0.5
        ).sum(-1),
    ),
]
MUTANTS = [
    ("kl_diag_gaussian", "no_half", lambda *a: _kl_terms(*a).sum(-1), "factor ½ is missing"),
    ("kl_diag_gaussian", "sign", lambda *a: -0.5 * _kl_terms(*a).sum(-1), "wrong sign"),
    (
        "kl_diag_gaussian",
        "mean_dims",
        lambda *a: 0.5 * _kl_terms(*a).mean(-1),
        "averaged over the latent dimensions",
    ),
    ("kl_diag_gaussian", "sum_all", lambda *a: 0.5 * _kl_terms(*a).sum(), "summed over the batch"),
    ("kl_diag_gaussian", "no_reduce", lambda *a: 0.5 * _kl_terms(*a), "one KL per dimension"),
    (
        "kl_diag_gaussian",
        "swapped",
        lambda mq, lq, mp, lp: kl_diag_gaussian(mp, lp, mq, lq),
        "roles of q",
    ),
    (
        "kl_diag_gaussian",
        "log_std",
        lambda mq, lq, mp, lp: kl_diag_gaussian(mq, 2 * lq, mp, 2 * lp),
        "log of the VARIANCE",
    ),
    (
        "kl_diag_gaussian",
        "std_for_var",
        lambda mq, lq, mp, lp: (
            0.5
            * (lp - lq + torch.exp(0.5 * (lq - lp)) + (mq - mp) ** 2 / torch.exp(0.5 * lp) - 1).sum(
                -1
            )
        ),
        "standard deviation σ where a variance σ² belongs",
    ),
    (
        "kl_diag_gaussian",
        "minus_one",
        lambda mq, lq, mp, lp: (
            0.5 * (lp - lq + torch.exp(lq - lp) + (mq - mp) ** 2 / torch.exp(lp)).sum(-1)
        ),
        "constant term per dimension is missing",
    ),
    (
        "kl_diag_gaussian",
        "mahalanobis",
        lambda mq, lq, mp, lp: 0.5 * (lp - lq + torch.exp(lq - lp) + (mq - mp) ** 2 - 1).sum(-1),
        "divided by p's variance",
    ),
]


# ------------------------------------------------------------------ kl_mc and samples_for_se
def kl_mc(log_p, m, s, eps):
    z = m + s * eps
    log_q = -0.5 * math.log(2 * math.pi) - torch.log(s) - 0.5 * eps**2
    terms = log_q - log_p(z)
    return terms.mean(), terms.std() / math.sqrt(eps.numel())


def samples_for_se(pilot_se, pilot_n, target_se):
    return math.ceil(pilot_n * (pilot_se / target_se) ** 2)


def _kl_mc_with(transform_terms=None, se=None, at_eps=False, log_q=None):
    """A kl_mc variant: terms transformed, or a different standard-error formula."""

    def fn(log_p, m, s, eps):
        z = eps if at_eps else m + s * eps
        lq = torch.distributions.Normal(m, s).log_prob(z) if log_q is None else log_q(z, m, s)
        terms = lq - log_p(z)
        if transform_terms is not None:
            terms = transform_terms(terms, z, log_p)
        n = eps.numel()
        return terms.mean(), (terms.std() / math.sqrt(n) if se is None else se(terms, n))

    return fn


REFERENCE.update({"kl_mc": kl_mc, "samples_for_se": samples_for_se})
N_CASES.update({"kl_mc": 5, "samples_for_se": 4})
ALTERNATIVES += [
    # torch.distributions for log q, and the standard deviation normalized by S
    (
        "kl_mc",
        lambda log_p, m, s, eps: (
            lambda t: (t.mean(), t.std(unbiased=False) / eps.numel() ** 0.5)
        )(torch.distributions.Normal(m, s).log_prob(m + s * eps) - log_p(m + s * eps)),
    ),
    # float arithmetic in another order, and an int from a float ceiling
    ("samples_for_se", lambda se, n, target: int(-(-(n * se * se) // (target * target)))),
]
MUTANTS += [
    ("kl_mc", "sign", _kl_mc_with(transform_terms=lambda t, z, lp: -t), "wrong sign"),
    ("kl_mc", "se_is_sd", _kl_mc_with(se=lambda t, n: t.std()), "divided by √S"),
    ("kl_mc", "se_over_n", _kl_mc_with(se=lambda t, n: t.std() / n), "not 1/S"),
    ("kl_mc", "se_is_var", _kl_mc_with(se=lambda t, n: t.var() / math.sqrt(n)), "square root"),
    ("kl_mc", "cross_entropy", _kl_mc_with(transform_terms=lambda t, z, lp: -lp(z)), "cross-entropy"),
    (
        "kl_mc",
        "logq_var",
        _kl_mc_with(log_q=lambda z, m, s: torch.distributions.Normal(m, s.sqrt()).log_prob(z)),
        "not the variance",
    ),
    ("kl_mc", "at_eps", _kl_mc_with(at_eps=True), "not at eps"),
    ("samples_for_se", "linear", lambda se, n, t: math.ceil(n * se / t), "FOUR times"),
    ("samples_for_se", "no_pilot_n", lambda se, n, t: math.ceil((se / t) ** 2), "scale pilot_n"),
    ("samples_for_se", "inverted", lambda se, n, t: math.ceil(n * (t / se) ** 2), "upside down"),
    ("samples_for_se", "floor", lambda se, n, t: math.floor(n * (se / t) ** 2), "round UP"),
]
