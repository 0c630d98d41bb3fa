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
