"""Cases for the checks of notebook gradient_estimators: reference solution(s), other correct answers,
and typical mistakes with the hint each must get. Collected by ``test_common.py``."""

from __future__ import annotations

import torch


def score_function_grad_mu(f, mu, sigma, eps):
    z = mu + sigma * eps
    return f(z) * (z - mu) / sigma**2

def reparameterize(mu, log_var, eps):
    return mu + torch.exp(0.5 * log_var) * eps


REFERENCE = {
    "score_function_grad_mu": score_function_grad_mu,
    "reparameterize": reparameterize,
}
N_CASES = {
    "score_function_grad_mu": 5,
    "reparameterize": 5,
}
ALTERNATIVES = [
    ("score_function_grad_mu", lambda f, mu, sigma, eps: f(mu + sigma * eps) * eps / sigma),
    ("reparameterize", lambda mu, log_var, eps: mu + eps * torch.sqrt(torch.exp(log_var))),
]
MUTANTS = [
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
]

# drawing fresh noise instead of using eps: no fixed mutant reproduces it; a probe does
MUTANTS.append(
    (
        "reparameterize",
        "randn_like",
        lambda mu, log_var, eps: mu + torch.exp(0.5 * log_var) * torch.randn_like(mu),
        "draws its own noise",
    )
)


# -- sticking the landing (build) -------------------------------------------------------
def stl_gradient(log_joint, m, s, eps):
    m_s = m.detach().repeat(eps.shape[0]).requires_grad_(True)
    s_s = s.detach().repeat(eps.shape[0]).requires_grad_(True)
    z = m_s + s_s * eps
    log_q = torch.distributions.Normal(m_s.detach(), s_s.detach()).log_prob(z)
    (log_joint(z) - log_q).sum().backward()
    return torch.stack([m_s.grad, s_s.grad], dim=-1)


def _stl_other(log_joint, m, s, eps):
    # the closed form of the path term, grad log p by autograd
    z = (m + s * eps).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(log_joint(z).sum(), z)
    path = g + eps / s
    return torch.stack([path, path * eps], dim=1)


def _stl_total(log_joint, m, s, eps):
    m_s = m.detach().repeat(eps.shape[0]).requires_grad_(True)
    s_s = s.detach().repeat(eps.shape[0]).requires_grad_(True)
    z = m_s + s_s * eps
    (log_joint(z) - torch.distributions.Normal(m_s, s_s).log_prob(z)).sum().backward()
    return torch.stack([m_s.grad, s_s.grad], dim=-1)


def _stl_z_stopped(log_joint, m, s, eps):
    m_s = m.detach().repeat(eps.shape[0]).requires_grad_(True)
    s_s = s.detach().repeat(eps.shape[0]).requires_grad_(True)
    z = m_s + s_s * eps
    (log_joint(z) - torch.distributions.Normal(m_s, s_s).log_prob(z.detach())).sum().backward()
    return torch.stack([m_s.grad, s_s.grad], dim=-1)


# -- where the pathwise estimator loses (experiment) ------------------------------------
def estimator_variances(f, mu, sigma, n_samples, seed):
    from vi_helpers.estimators import pathwise_gradient, score_function_gradient

    g_score, _ = score_function_gradient(f, mu, sigma, n_samples, generator=torch.Generator().manual_seed(seed))
    g_path, _ = pathwise_gradient(f, mu, sigma, n_samples, generator=torch.Generator().manual_seed(seed))
    return torch.stack([g_score.var(), g_path.var()])


def _variances_by_hand(f, mu, sigma, n_samples, seed):
    eps = torch.randn(n_samples, dtype=mu.dtype, generator=torch.Generator().manual_seed(seed))
    z = (mu + sigma * eps).requires_grad_(True)
    (df,) = torch.autograd.grad(f(z).sum(), z)
    return torch.stack([(f(z).detach() * eps / sigma).var(), df.var()])


REFERENCE["stl_gradient"] = stl_gradient
REFERENCE["estimator_variances"] = estimator_variances
N_CASES["stl_gradient"] = 5
N_CASES["estimator_variances"] = 4
ALTERNATIVES += [
    ("stl_gradient", _stl_other),
    ("estimator_variances", _variances_by_hand),
]
MUTANTS += [
    ("stl_gradient", "total", _stl_total, "ordinary reparameterized gradients"),
    (
        "stl_gradient",
        "no_log_q",
        lambda lj, m, s, eps: _stl_total(lj, m, s, eps) - torch.stack(
            [torch.zeros_like(eps), torch.ones_like(eps) / s], dim=-1),
        "ignores log q altogether",
    ),
    (
        "stl_gradient",
        "plus_log_q",
        lambda lj, m, s, eps: _stl_other(lj, m, s, eps) - torch.stack(
            [2 * eps / s, 2 * eps.pow(2) / s], dim=-1),
        "enters with a plus sign",
    ),
    ("stl_gradient", "z_stopped", _stl_z_stopped, "stopped the gradient in the wrong place"),
    ("stl_gradient", "swapped", lambda *a: stl_gradient(*a).flip(-1), "columns are swapped"),
    ("estimator_variances", "swapped", lambda *a: estimator_variances(*a).flip(0), "entries are swapped"),
    ("estimator_variances", "std", lambda *a: estimator_variances(*a).sqrt(), "not standard deviations"),
    (
        "estimator_variances",
        "of_mean",
        lambda f, mu, sigma, n, seed: estimator_variances(f, mu, sigma, n, seed) / n,
        "variance of ONE estimate",
    ),
]
