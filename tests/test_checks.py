"""Tests for vi_helpers.checks: right answers pass, typical mistakes get their hint.

Each exercise has a reference solution written the way a student would write it
(REFERENCE), and mutants: the typical wrong answers of the course (missing ½,
wrong sign, mean instead of sum, sigma for sigma², no KL term, no -log K, unstable
log-sum-exp, lerp instead of slerp, ...). A mutant must fail its check AND get
the hint written for that mistake; every check must also handle stubs that are
not attempted, raise, or return the wrong type or shape without a traceback.
"""

from __future__ import annotations

import inspect
import math
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vi_helpers import checks
from vi_helpers.elbo import iwae_bound as vi_iwae_bound
from vi_helpers.kl import kl_diag_normal
from vi_helpers.models import ConjugateGaussianModel


# ------------------------------------------------------------------ reference solutions
def kl_diag_gaussian(mu_q, log_var_q, mu_p, log_var_p):
    var_ratio = torch.exp(log_var_q - log_var_p)
    mean_term = (mu_q - mu_p) ** 2 / torch.exp(log_var_p)
    return 0.5 * (log_var_p - log_var_q + var_ratio + mean_term - 1.0).sum(dim=-1)


def mc_elbo(log_joint, mu, sigma, eps):
    z = mu + sigma * eps
    log_q = torch.distributions.Normal(mu, sigma).log_prob(z)
    return (log_joint(z) - log_q).mean()


def cavi_update_mu(x, e_tau, mu0, lambda0):
    n = x.shape[0]
    mu_n = (lambda0 * mu0 + n * x.mean()) / (lambda0 + n)
    lambda_n = (lambda0 + n) * e_tau
    return mu_n, lambda_n


def score_function_grad_mu(f, mu, sigma, eps):
    z = mu + sigma * eps
    return f(z) * (z - mu) / sigma**2


def reparameterize(mu, log_var, eps):
    return mu + torch.exp(0.5 * log_var) * eps


def vae_loss_bernoulli(x, logits, mu, log_var):
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)
    kl = 0.5 * (mu**2 + log_var.exp() - 1.0 - log_var).sum(dim=-1)
    return (recon + kl).mean()


def slerp(z0, z1, t):
    cos_omega = torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1.0, 1.0)
    omega = torch.acos(cos_omega)
    if torch.sin(omega).abs() < 1e-6:
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def active_units(mu, threshold=0.01):
    return int((mu.var(dim=0) > threshold).sum())


def iwae_bound(log_w):
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def free_energy_conjugate(x, m, s, mu0, sigma0, sigma):
    n = x.shape[0]
    expected_ll = -0.5 * n * math.log(2 * math.pi * sigma**2) - (
        ((x - m) ** 2).sum() + n * s**2
    ) / (2 * sigma**2)
    kl = math.log(sigma0) - torch.log(s) + (s**2 + (m - mu0) ** 2) / (2 * sigma0**2) - 0.5
    return -(expected_ll - kl)


REFERENCE = {
    "kl_diag_gaussian": kl_diag_gaussian,
    "mc_elbo": mc_elbo,
    "cavi_update_mu": cavi_update_mu,
    "score_function_grad_mu": score_function_grad_mu,
    "reparameterize": reparameterize,
    "vae_loss_bernoulli": vae_loss_bernoulli,
    "slerp": slerp,
    "active_units": active_units,
    "iwae_bound": iwae_bound,
    "free_energy_conjugate": free_energy_conjugate,
}
N_CASES = {
    "kl_diag_gaussian": 6,
    "mc_elbo": 6,
    "cavi_update_mu": 6,
    "score_function_grad_mu": 5,
    "reparameterize": 5,
    "vae_loss_bernoulli": 6,
    "slerp": 8,
    "active_units": 6,
    "iwae_bound": 6,
    "free_energy_conjugate": 6,
}


def run_check(name, fn, capsys):
    result = getattr(checks, f"check_{name}")(fn)
    return result, capsys.readouterr()


# ------------------------------------------------------------------ other correct answers
def _log_normal(z, mu, sigma):
    return -0.5 * math.log(2 * math.pi) - torch.log(sigma) - 0.5 * ((z - mu) / sigma) ** 2


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
    (
        "mc_elbo",
        lambda lj, mu, sigma, eps: torch.mean(
            lj(mu + sigma * eps) - _log_normal(mu + sigma * eps, mu, sigma)
        ),
    ),
    # numbers instead of tensors in the pair
    (
        "cavi_update_mu",
        lambda x, e_tau, mu0, lambda0: (
            float((lambda0 * mu0 + x.sum()) / (lambda0 + len(x))),
            (lambda0 + len(x)) * e_tau,
        ),
    ),
    ("score_function_grad_mu", lambda f, mu, sigma, eps: f(mu + sigma * eps) * eps / sigma),
    ("reparameterize", lambda mu, log_var, eps: mu + eps * torch.sqrt(torch.exp(log_var))),
    (
        "vae_loss_bernoulli",
        lambda x, logits, mu, log_var: torch.mean(
            -(x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(1)
            - 0.5 * (1 + log_var - mu.pow(2) - log_var.exp()).sum(1)
        ),
    ),
    # threshold on the cosine instead of on sin(omega), no clamp
    ("slerp", lambda z0, z1, t: _slerp_dot_threshold(z0, z1, t)),
    # unbiased variance, returned as a 0-dim tensor
    ("active_units", lambda mu, threshold=0.01: (mu.var(0, correction=1) > threshold).sum()),
    (
        "active_units",
        lambda mu, threshold=0.01: int((((mu - mu.mean(0)) ** 2).mean(0) > threshold).sum()),
    ),
    (
        "iwae_bound",
        lambda log_w: (
            log_w.max(0).values + torch.log(torch.exp(log_w - log_w.max(0).values).mean(0))
        ),
    ),
    (
        "free_energy_conjugate",
        lambda x, m, s, mu0, sigma0, sigma: (
            -ConjugateGaussianModel(mu0, sigma0, sigma).elbo(x, m, s)
        ),
    ),
]


def _slerp_dot_threshold(z0, z1, t):
    dot = (z0 @ z1) / (z0.norm() * z1.norm())
    if dot > 0.9995:
        return z0 + t * (z1 - z0)
    omega = torch.arccos(dot)
    return (torch.sin((1 - t) * omega) / torch.sin(omega)) * z0 + (
        torch.sin(t * omega) / torch.sin(omega)
    ) * z1


# ------------------------------------------------------------------ typical mistakes
def _kl_terms(mq, lq, mp, lp):
    return lp - lq + torch.exp(lq - lp) + (mq - mp) ** 2 / torch.exp(lp) - 1.0


def _naive_slerp(z0, z1, t):
    omega = torch.acos((z0 / z0.norm()) @ (z1 / z1.norm()))
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def _slerp_unnormalized_angle(z0, z1, t):
    omega = torch.acos((z0 @ z1).clamp(-1, 1))
    if torch.sin(omega) < 1e-6:
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def _free_energy(
    x,
    m,
    s,
    mu0,
    sigma0,
    sigma,
    *,
    s_sq_count=None,
    kl_sign=1.0,
    plugin=False,
    reverse_kl=False,
    mean_obs=False,
    s_var=False,
    sigma_var=False,
):
    n = x.shape[0]
    if s_var:
        s = torch.sqrt(s)
    if sigma_var:
        sigma = math.sqrt(sigma)
    count = n if s_sq_count is None else s_sq_count
    spread = 0.0 if plugin else count * s**2
    ell = -0.5 * n * math.log(2 * math.pi * sigma**2) - (((x - m) ** 2).sum() + spread) / (
        2 * sigma**2
    )
    if mean_obs:
        ell = ell / n
    q = torch.distributions.Normal(m, s)
    p = torch.distributions.Normal(torch.tensor(mu0), torch.tensor(sigma0))
    kl = (
        torch.distributions.kl_divergence(p, q)
        if reverse_kl
        else torch.distributions.kl_divergence(q, p)
    )
    return -(ell - kl_sign * kl)


MUTANTS = [
    # --- 01 KL
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
    # --- 02 MC ELBO
    (
        "mc_elbo",
        "no_entropy",
        lambda lj, mu, sigma, eps: lj(mu + sigma * eps).mean(),
        "also subtracts log q(z)",
    ),
    (
        "mc_elbo",
        "plus_logq",
        lambda lj, mu, sigma, eps: (
            lj(mu + sigma * eps) + _log_normal(mu + sigma * eps, mu, sigma)
        ).mean(),
        "minus sign",
    ),
    (
        "mc_elbo",
        "sum",
        lambda lj, mu, sigma, eps: (
            lj(mu + sigma * eps) - _log_normal(mu + sigma * eps, mu, sigma)
        ).sum(),
        "AVERAGE",
    ),
    (
        "mc_elbo",
        "per_sample",
        lambda lj, mu, sigma, eps: lj(mu + sigma * eps) - _log_normal(mu + sigma * eps, mu, sigma),
        "one value per sample",
    ),
    (
        "mc_elbo",
        "logq_var",
        lambda lj, mu, sigma, eps: (
            lj(mu + sigma * eps) - _log_normal(mu + sigma * eps, mu, sigma.sqrt())
        ).mean(),
        "used it as a variance",
    ),
    (
        "mc_elbo",
        "logq_no_half",
        lambda lj, mu, sigma, eps: (
            lj(mu + sigma * eps) + 0.5 * math.log(2 * math.pi) + torch.log(sigma) + eps**2
        ).mean(),
        "factor ½ in front of the squared term",
    ),
    (
        "mc_elbo",
        "logq_no_const",
        lambda lj, mu, sigma, eps: (lj(mu + sigma * eps) + torch.log(sigma) + 0.5 * eps**2).mean(),
        "normalizing constant",
    ),
    (
        "mc_elbo",
        "logq_at_eps",
        lambda lj, mu, sigma, eps: (
            lj(mu + sigma * eps) - _log_normal(eps, torch.tensor(0.0), torch.tensor(1.0))
        ).mean(),
        "−log σ term",
    ),
    (
        "mc_elbo",
        "lj_at_eps",
        lambda lj, mu, sigma, eps: (lj(eps) - _log_normal(mu + sigma * eps, mu, sigma)).mean(),
        "not at eps",
    ),
    (
        "mc_elbo",
        "z_var",
        lambda lj, mu, sigma, eps: mc_elbo(lj, mu, sigma**2 / sigma, sigma * eps),
        "not scaled by the variance",
    ),
    # --- 03 CAVI
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
    # --- 04 score function
    (
        "score_function_grad_mu",
        "div_sigma",
        lambda f, mu, sigma, eps: f(mu + sigma * eps) * eps,
        "divided by σ where the variance σ² belongs",
    ),
    (
        "score_function_grad_mu",
        "no_div",
        lambda f, mu, sigma, eps: f(mu + sigma * eps) * sigma * eps,
        "inverse variance",
    ),
    ("score_function_grad_mu", "sign", lambda *a: -score_function_grad_mu(*a), "wrong sign"),
    (
        "score_function_grad_mu",
        "mean",
        lambda *a: score_function_grad_mu(*a).mean(),
        "one term per sample",
    ),
    ("score_function_grad_mu", "no_f", lambda f, mu, sigma, eps: eps / sigma, "multiply the score"),
    (
        "score_function_grad_mu",
        "f_at_eps",
        lambda f, mu, sigma, eps: f(eps) * eps / sigma,
        "not at eps",
    ),
    # --- 04 reparameterize
    (
        "reparameterize",
        "exp_var",
        lambda mu, lv, eps: mu + torch.exp(lv) * eps,
        "scale eps by the standard deviation",
    ),
    ("reparameterize", "no_exp", lambda mu, lv, eps: mu + lv * eps, "is a logarithm"),
    (
        "reparameterize",
        "minus",
        lambda mu, lv, eps: mu - torch.exp(0.5 * lv) * eps,
        "add the scaled noise",
    ),
    ("reparameterize", "no_mu", lambda mu, lv, eps: torch.exp(0.5 * lv) * eps, "forgot to add mu"),
    (
        "reparameterize",
        "detached",
        lambda mu, lv, eps: reparameterize(mu, lv, eps).detach(),
        "gradients do not reach mu and log_var",
    ),
    (
        "reparameterize",
        "rebuilt",
        lambda mu, lv, eps: torch.as_tensor(reparameterize(mu, lv, eps).tolist()),
        "gradients do not reach mu and log_var",
    ),
    # --- 05 VAE loss
    (
        "vae_loss_bernoulli",
        "no_kl",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1).mean()
        ),
        "forgot the KL term",
    ),
    (
        "vae_loss_bernoulli",
        "minus_kl",
        lambda x, lg, mu, lv: (
            2 * F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1).mean()
            - vae_loss_bernoulli(x, lg, mu, lv)
        ),
        "not subtracted",
    ),
    (
        "vae_loss_bernoulli",
        "bce_default_mean",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(lg, x)
            + (0.5 * (mu**2 + lv.exp() - 1 - lv).sum(-1)).mean()
        ),
        "reduction='mean'",
    ),
    (
        "vae_loss_bernoulli",
        "sum_batch",
        lambda x, lg, mu, lv: vae_loss_bernoulli(x, lg, mu, lv) * x.shape[0],
        "summed over the batch",
    ),
    (
        "vae_loss_bernoulli",
        "kl_mean_dims",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1)
            + 0.5 * (mu**2 + lv.exp() - 1 - lv).mean(-1)
        ).mean(),
        "SUM over latent dimensions",
    ),
    (
        "vae_loss_bernoulli",
        "kl_no_half",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1)
            + (mu**2 + lv.exp() - 1 - lv).sum(-1)
        ).mean(),
        "factor ½ is missing",
    ),
    (
        "vae_loss_bernoulli",
        "kl_log_std",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1)
            + 0.5 * (mu**2 + torch.exp(2 * lv) - 1 - 2 * lv).sum(-1)
        ).mean(),
        "log of the VARIANCE",
    ),
    (
        "vae_loss_bernoulli",
        "sigmoid_twice",
        lambda x, lg, mu, lv: vae_loss_bernoulli(x, torch.sigmoid(lg), mu, lv),
        "pre-sigmoid",
    ),
    (
        "vae_loss_bernoulli",
        "swapped_args",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(x, lg, reduction="none").sum(-1)
            + 0.5 * (mu**2 + lv.exp() - 1 - lv).sum(-1)
        ).mean(),
        "arguments of the BCE are swapped",
    ),
    (
        "vae_loss_bernoulli",
        "vector",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1)
            + 0.5 * (mu**2 + lv.exp() - 1 - lv).sum(-1)
        ),
        "average over the batch",
    ),
    (
        "vae_loss_bernoulli",
        "naive_bce",
        lambda x, lg, mu, lv: (
            -(x * torch.log(torch.sigmoid(lg)) + (1 - x) * torch.log(1 - torch.sigmoid(lg))).sum(-1)
            + 0.5 * (mu**2 + lv.exp() - 1 - lv).sum(-1)
        ).mean(),
        "numerically stable",
    ),
    # --- 06 slerp
    ("slerp", "lerp", lambda z0, z1, t: (1 - t) * z0 + t * z1, "straight line"),
    ("slerp", "swapped", lambda z0, z1, t: slerp(z0, z1, 1 - t), "weights are swapped"),
    ("slerp", "no_normalize", _slerp_unnormalized_angle, "normalize both vectors"),
    (
        "slerp",
        "unit_output",
        lambda z0, z1, t: slerp(z0 / z0.norm(), z1 / z1.norm(), t),
        "not their normalized directions",
    ),
    ("slerp", "no_fallback", _naive_slerp, "nearly parallel"),
    # --- 07 active units
    (
        "active_units",
        "std",
        lambda mu, threshold=0.01: int((mu.std(0) > threshold).sum()),
        "VARIANCE (over the data)",
    ),
    (
        "active_units",
        "wrong_axis",
        lambda mu, threshold=0.01: int((mu.var(1) > threshold).sum()),
        "over the data points (dim 0",
    ),
    (
        "active_units",
        "inactive",
        lambda mu, threshold=0.01: int((mu.var(0) <= threshold).sum()),
        "INACTIVE",
    ),
    (
        "active_units",
        "mean",
        lambda mu, threshold=0.01: int((mu.mean(0).abs() > threshold).sum()),
        "not a mean",
    ),
    (
        "active_units",
        "fixed_threshold",
        lambda mu, threshold=0.01: int((mu.var(0) > 0.01).sum()),
        "`threshold` argument",
    ),
    ("active_units", "mask", lambda mu, threshold=0.01: mu.var(0) > threshold, "sum the mask"),
    # --- 08 IWAE
    ("iwae_bound", "no_log_k", lambda log_w: torch.logsumexp(log_w, 0), "subtract log K"),
    ("iwae_bound", "mean_log_w", lambda log_w: log_w.mean(0), "that is the ELBO"),
    (
        "iwae_bound",
        "wrong_dim",
        lambda log_w: torch.logsumexp(log_w, 1) - math.log(log_w.shape[1]),
        "reduce over the K samples",
    ),
    (
        "iwae_bound",
        "divide_outside",
        lambda log_w: torch.logsumexp(log_w, 0) / log_w.shape[0],
        "goes inside the log",
    ),
    ("iwae_bound", "max_only", lambda log_w: log_w.max(0).values, "stabilizing shift"),
    ("iwae_bound", "naive", lambda log_w: torch.log(torch.exp(log_w).mean(0)), "log-sum-exp trick"),
    # --- 09 free energy
    ("free_energy_conjugate", "elbo", lambda *a: -free_energy_conjugate(*a), "returned the ELBO"),
    (
        "free_energy_conjugate",
        "no_kl",
        lambda *a: _free_energy(*a, kl_sign=0.0),
        "KL(q ‖ p(z)) term",
    ),
    ("free_energy_conjugate", "plugin", lambda *a: _free_energy(*a, plugin=True), "spread of q"),
    (
        "free_energy_conjugate",
        "s_once",
        lambda *a: _free_energy(*a, s_sq_count=1),
        "you counted it once",
    ),
    (
        "free_energy_conjugate",
        "s_var",
        lambda *a: _free_energy(*a, s_var=True),
        "s is a standard deviation",
    ),
    (
        "free_energy_conjugate",
        "sigma_var",
        lambda *a: _free_energy(*a, sigma_var=True),
        "observation noise's standard deviation",
    ),
    (
        "free_energy_conjugate",
        "kl_reversed",
        lambda *a: _free_energy(*a, reverse_kl=True),
        "not KL(p(z) ‖ q)",
    ),
    (
        "free_energy_conjugate",
        "mean_obs",
        lambda *a: _free_energy(*a, mean_obs=True),
        "do not average",
    ),
    (
        "free_energy_conjugate",
        "kl_sign",
        lambda *a: _free_energy(*a, kl_sign=-1.0),
        "sign of the KL term",
    ),
]


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
    assert "💡 Hint: " in out.out and hint.lower() in out.out.lower()
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
    assert "not attempted yet" in out.out
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
        return iwae_bound(log_w)

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
            lambda *a: kl_diag_gaussian(*a).numpy(),
            "returned a numpy.ndarray: return a torch.Tensor",
        ),
        ("iwae_bound", lambda log_w: iwae_bound(log_w).tolist(), "returned a list"),
        (
            "iwae_bound",
            lambda log_w: iwae_bound(log_w)[None],
            "returned shape (1, 3), expected shape (3,)",
        ),
        (
            "reparameterize",
            lambda mu, lv, eps: reparameterize(mu, lv, eps).round().long(),
            "returned dtype torch.int64",
        ),
        ("mc_elbo", lambda *a: "0.0", "returned a str"),
        ("active_units", lambda mu, threshold=0.01: 2.5, "return an int"),
        ("active_units", lambda mu, threshold=0.01: True, "returned a bool"),
        ("cavi_update_mu", lambda *a: cavi_update_mu(*a)[0], "return a tuple of two numbers"),
        (
            "cavi_update_mu",
            lambda *a: [*cavi_update_mu(*a), 0.0],
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
    result, _ = run_check("mc_elbo", lambda *a: mc_elbo(*a).reshape(1), capsys)
    assert result.status == "passed"
    result, _ = run_check(
        "free_energy_conjugate", lambda *a: float(free_energy_conjugate(*a)), capsys
    )
    assert result.status == "passed"


def test_not_callable(capsys):
    result = checks.check_slerp(slerp(torch.ones(2), torch.ones(2), 0.5))
    out = capsys.readouterr().out
    assert result.status == "error"
    assert "Pass the function itself, without calling it: check_slerp(slerp)." in out


def test_unexplained_mistake_gets_generic_hint(capsys):
    result, out = run_check("iwae_bound", lambda log_w: iwae_bound(log_w) + 0.123, capsys)
    assert result.status == "failed" and len(result.hints) == 1
    assert result.hints[0].startswith("Check K = 1")


def test_students_code_cannot_change_the_cases(capsys):
    def in_place(mu, log_var, eps):
        mu.mul_(0.0)  # mutating an input must not affect the expected answer or later runs
        return mu + torch.exp(0.5 * log_var) * eps

    run_check("reparameterize", in_place, capsys)
    result, _ = run_check("reparameterize", reparameterize, capsys)
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


# ------------------------------------------------------------------ the references themselves
def test_free_energy_reference_matches_conjugate_model():
    x = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    m, s = torch.tensor(0.4, dtype=torch.float64), torch.tensor(0.7, dtype=torch.float64)
    ref = checks._free_energy_reference(x, m, s, 0.5, 1.5, 0.8)
    model = ConjugateGaussianModel(0.5, 1.5, 0.8)
    torch.testing.assert_close(ref, -model.elbo(x, m, s), rtol=1e-12, atol=1e-12)


def test_cavi_reference_matches_bishop():
    x = torch.tensor([1.0, 2.0, 4.5, -0.5], dtype=torch.float64)
    mu_n, lam_n = checks._cavi_reference(x, 2.0, 0.5, 3.0)
    assert math.isclose(float(mu_n), (3.0 * 0.5 + 7.0) / 7.0, rel_tol=1e-12)
    assert math.isclose(float(lam_n), 7.0 * 2.0, rel_tol=1e-12)


def test_iwae_and_kl_references_match_vi_helpers():
    g = torch.Generator().manual_seed(0)
    log_w = 300 * torch.randn(9, 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(checks._iwae_reference(log_w), vi_iwae_bound(log_w))
    mq, lq, mp, lp = torch.randn(4, 3, 5, generator=g, dtype=torch.float64)
    mutants = checks._kl_diag_mutants(mq, lq, mp, lp)
    torch.testing.assert_close(mutants["half"] / 2, kl_diag_normal(mq, lq, mp, lp))


def test_slerp_reference_is_a_rotation_for_unit_vectors():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 7, generator=g, dtype=torch.float64)
    a, b = a / a.norm(), b / b.norm()
    omega = torch.acos(a @ b)
    for t in (0.0, 0.2, 0.5, 0.9, 1.0):
        z = checks._slerp_reference(a, b, t)
        assert math.isclose(float(z.norm()), 1.0, rel_tol=1e-12)
        assert math.isclose(float(torch.acos((z @ a).clamp(-1, 1))), t * float(omega), abs_tol=1e-7)


def test_active_units_cases_do_not_depend_on_the_variance_estimator(capsys):
    for correction in (0, 1):
        result, _ = run_check(
            "active_units",
            lambda mu, threshold=0.01, c=correction: int(
                (mu.var(0, correction=c) > threshold).sum()
            ),
            capsys,
        )
        assert result.status == "passed"


def test_check_result():
    r = checks.CheckResult("x", "failed", 1, 3, ["h"])
    assert not r and repr(r) == "CheckResult('x', failed, 1/3)"
    assert checks.CheckResult("x", "passed", 3, 3)
    assert r._ipython_display_() is None
    with pytest.raises(ValueError, match="status"):
        checks.CheckResult("x", "ok", 1, 1)


def test_numbers_are_rounded_and_never_negative_zero():
    assert checks._num(-0.00001) == "0.0000"
    assert checks._num(float("-inf")) == "-inf" and checks._num(float("nan")) == "nan"
    assert checks._num(123456.0) == "1.2346e+05"
    assert checks._fmt(torch.arange(5.0)) == "[0.0000, 1.0000, 2.0000, …] shape (5,)"
    assert np.isclose(float(checks._fmt(torch.tensor(2 / 3))), 0.6667)
