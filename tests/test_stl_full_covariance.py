"""Tests for the ELBO gradient with and without "sticking the landing", the cosine
variances where the pathwise estimator loses, and full-covariance black-box VI
(vi_helpers.estimators, notebook 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import DT, gen
from torch.distributions import MultivariateNormal, Normal

from vi_helpers.bbvi import bbvi_full_covariance
from vi_helpers.estimators import (
    elbo_gradient_pathwise,
    pathwise_gradient,
    score_function_gradient,
    variance_cosine,
)
from vi_helpers.kl import kl_full_normal
from vi_helpers.models import ConjugateGaussianModel

X_OBS = torch.tensor([0.8, 1.9, 1.1, 2.4], dtype=DT)
MODEL = ConjugateGaussianModel(mu0=0.0, sigma0=1.5, sigma=0.9)


def log_joint(z):
    return MODEL.log_joint(X_OBS, z)


def closed_form_elbo_gradient(m, s):
    """Autograd on the conjugate model's closed-form ELBO: an independent reference."""
    m, s = m.clone().requires_grad_(), s.clone().requires_grad_()
    return torch.autograd.grad(MODEL.elbo(X_OBS, m, s), (m, s))


# -- ELBO gradient: ordinary pathwise vs sticking the landing ---------------------------


@pytest.mark.parametrize("stl", [False, True])
@pytest.mark.parametrize("m, s", [(0.0, 1.0), (2.0, 0.3), (1.4, 0.45)])
def test_elbo_gradient_is_unbiased(stl, m, s):
    m, s = torch.tensor(m, dtype=DT), torch.tensor(s, dtype=DT)
    g_m, g_s = elbo_gradient_pathwise(
        log_joint, m, s, 200_000, sticking_the_landing=stl, generator=gen(1)
    )
    for est, true in zip((g_m, g_s), closed_form_elbo_gradient(m, s), strict=True):
        se = est.std() / math.sqrt(est.numel())
        assert abs(est.mean() - true) < 4 * se + 1e-12


def test_stl_vanishes_at_the_posterior_and_ordinary_has_variance_one_over_s2():
    post = MODEL.posterior(X_OBS)
    m, s = post.loc.to(DT), post.scale.to(DT)
    stl = elbo_gradient_pathwise(log_joint, m, s, 50_000, sticking_the_landing=True, generator=gen(2))
    plain = elbo_gradient_pathwise(log_joint, m, s, 50_000, generator=gen(2))
    for g in stl:
        assert g.abs().max() < 1e-10
    # ordinary: g_m = -eps / s, so its variance is 1 / s^2 (4 standard errors)
    dev2 = (plain[0] - plain[0].mean()) ** 2
    assert abs(dev2.mean() - 1 / s**2) < 4 * dev2.std() / math.sqrt(dev2.numel())


def test_stl_equals_autograd_with_q_parameters_stopped():
    m = torch.tensor([0.3, -1.0], dtype=DT)
    s = torch.tensor([0.7, 1.3], dtype=DT)

    def banana(z):
        return -0.5 * z[:, 0] ** 2 - 0.5 * (z[:, 1] - z[:, 0] ** 2) ** 2

    g_m, g_s = elbo_gradient_pathwise(banana, m, s, 7, sticking_the_landing=True, generator=gen(3))
    eps = torch.randn(7, 2, dtype=DT, generator=gen(3))
    m_s = m.repeat(7, 1).requires_grad_()
    s_s = s.repeat(7, 1).requires_grad_()
    z = m_s + s_s * eps
    log_q = Normal(m_s.detach(), s_s.detach()).log_prob(z).sum(-1)  # parameters stopped
    (banana(z) - log_q).sum().backward()
    torch.testing.assert_close(g_m, m_s.grad)
    torch.testing.assert_close(g_s, s_s.grad)


def test_ordinary_elbo_gradient_equals_full_autograd():
    m, s = torch.tensor(0.5, dtype=DT), torch.tensor(0.8, dtype=DT)
    g_m, g_s = elbo_gradient_pathwise(log_joint, m, s, 5, generator=gen(4))
    eps = torch.randn(5, dtype=DT, generator=gen(4))
    m_s, s_s = m.repeat(5).requires_grad_(), s.repeat(5).requires_grad_()
    z = m_s + s_s * eps
    (log_joint(z) - Normal(m_s, s_s).log_prob(z)).sum().backward()
    torch.testing.assert_close(g_m, m_s.grad)
    torch.testing.assert_close(g_s, s_s.grad)


def test_elbo_gradient_bad_inputs():
    m, s = torch.tensor(0.0), torch.tensor(1.0)
    with pytest.raises(ValueError, match="sigma"):
        elbo_gradient_pathwise(log_joint, m, -s, 4)
    with pytest.raises(ValueError, match="n_samples"):
        elbo_gradient_pathwise(log_joint, m, s, 0)
    with pytest.raises(TypeError, match="f must be callable"):
        elbo_gradient_pathwise(3.0, m, s, 4)
    with pytest.raises(ValueError, match="differentiable"):
        elbo_gradient_pathwise(lambda z: (z > 0).to(z.dtype), m, s, 4)


# -- cos(omega z): closed-form variances -----------------------------------------------


@pytest.mark.parametrize("mu, sigma, omega", [(0.3, 1.0, 0.5), (0.3, 1.0, 3.0), (-1.0, 0.4, 2.0)])
def test_variance_cosine_matches_quadrature(mu, sigma, omega):
    nodes, weights = np.polynomial.hermite_e.hermegauss(160)
    weights = weights / weights.sum()
    z = mu + sigma * nodes
    g_path = -omega * np.sin(omega * z)
    g_score = np.cos(omega * z) * nodes / sigma
    var_score, var_path = variance_cosine(*(torch.tensor(v, dtype=DT) for v in (mu, sigma, omega)))
    for g, v in ((g_score, var_score), (g_path, var_path)):
        assert abs(float(v) - (weights @ g**2 - (weights @ g) ** 2)) < 1e-9


def test_variance_cosine_matches_the_estimators_and_the_pathwise_loses():
    mu, sigma = torch.tensor(0.3, dtype=DT), torch.tensor(1.0, dtype=DT)
    omega = 4.0

    def f(z):
        return torch.cos(omega * z)

    var_score, var_path = variance_cosine(mu, sigma, omega)
    for est, v in (
        (score_function_gradient(f, mu, sigma, 200_000, generator=gen(5))[0], var_score),
        (pathwise_gradient(f, mu, sigma, 200_000, generator=gen(6))[0], var_path),
    ):
        dev2 = (est - est.mean()) ** 2
        assert abs(dev2.mean() - v) < 4 * dev2.std() / math.sqrt(dev2.numel())
    assert var_path > 10 * var_score  # omega sigma = 4: pathwise about 16 times noisier


def test_variance_cosine_rejects_bad_sigma():
    with pytest.raises(ValueError, match="sigma"):
        variance_cosine(0.0, 0.0, 1.0)


# -- full-covariance BBVI --------------------------------------------------------------


def gaussian_target():
    mean = torch.tensor([1.0, -2.0, 0.5], dtype=DT)
    chol = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [-0.3, 0.5, 0.4]], dtype=DT)
    return MultivariateNormal(mean, scale_tril=chol)


def test_full_covariance_recovers_a_gaussian_target():
    target = gaussian_target()
    fit = bbvi_full_covariance(
        target.log_prob, 3, n_steps=2000, n_samples=50, learning_rate=0.02, seed=1,
        init_mu=torch.zeros(3, dtype=DT),
    )
    assert (fit.mu - target.mean).abs().max() < 0.05
    assert (fit.cov - target.covariance_matrix).abs().max() < 0.08  # correlations included
    assert float(kl_full_normal(fit.mu, fit.cov, target.mean, target.covariance_matrix)) < 0.01
    assert torch.equal(fit.scale_tril, torch.tril(fit.scale_tril)) and (fit.scale_tril.diagonal() > 0).all()
    # the ELBO of the Gaussian target (normalized) tends to log Z = 0 from below
    assert abs(np.mean(fit.elbo_history[-200:])) < 0.05


def test_full_covariance_beats_mean_field_on_a_correlated_target():
    from vi_helpers.bbvi import fit_gaussian_vi

    target = gaussian_target()
    kw = dict(n_steps=1500, n_samples=50, learning_rate=0.02, seed=0, init_mu=torch.zeros(3, dtype=DT))
    full = bbvi_full_covariance(target.log_prob, 3, **kw)
    diag = fit_gaussian_vi(target.log_prob, 3, **kw)
    kl = [
        float(kl_full_normal(q_mu, q_cov, target.mean, target.covariance_matrix))
        for q_mu, q_cov in ((full.mu, full.cov), (diag.mu, torch.diag(diag.sigma**2)))
    ]
    assert kl[0] < 0.02 < 0.2 < kl[1]


def test_full_covariance_seed_is_reproducible_and_rng_untouched():
    target = gaussian_target()
    torch.manual_seed(7)
    state = torch.get_rng_state()
    runs = [
        bbvi_full_covariance(target.log_prob, 3, n_steps=20, n_samples=4, learning_rate=0.05,
                             seed=3, init_mu=torch.zeros(3, dtype=DT))
        for _ in range(2)
    ]
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(runs[0].scale_tril, runs[1].scale_tril)
    assert runs[0].elbo_history == runs[1].elbo_history


@pytest.mark.parametrize(
    "args, kwargs, exc, name",
    [
        ((3.0, 2), {}, TypeError, "log_joint"),
        ((None, 0), {}, ValueError, "dim"),
        ((None, 2), {"n_steps": 0}, ValueError, "n_steps"),
        ((None, 2), {"n_samples": 0}, ValueError, "n_samples"),
        ((None, 2), {"learning_rate": -1.0}, ValueError, "learning_rate"),
        ((None, 2), {"init_mu": torch.zeros(3)}, ValueError, "init_mu"),
    ],
)
def test_full_covariance_bad_inputs(args, kwargs, exc, name):
    args = (args[0] if args[0] is not None else gaussian_target().log_prob, args[1])
    base = dict(n_steps=2, n_samples=2, learning_rate=0.1)
    with pytest.raises(exc, match=name):
        bbvi_full_covariance(*args, **{**base, **kwargs})


def test_full_covariance_reports_bad_log_joint_and_divergence():
    with pytest.raises(ValueError, match=r"shape \(S,\)"):
        bbvi_full_covariance(lambda z: z, 2, n_steps=2, n_samples=3, learning_rate=0.1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        bbvi_full_covariance(lambda z: z.sum(-1) / 0.0, 2, n_steps=2, n_samples=3, learning_rate=0.1)

    def explodes(z):  # finite at the start, then -inf once the mean moves
        return torch.where(z.abs().max(-1).values > 50, -torch.inf, 100.0 * z.sum(-1))

    with pytest.raises(RuntimeError, match="diverged"):
        bbvi_full_covariance(explodes, 2, n_steps=3000, n_samples=3, learning_rate=1.0, seed=0)
