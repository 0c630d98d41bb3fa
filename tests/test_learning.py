"""Tests for vi_helpers.learning against independent references: finite differences and
autograd on the closed-form ELBO, the marginal likelihood, Bayes' rule on the joint
Gaussian, Monte Carlo averages over the data distribution and the pPCA optimum."""

from __future__ import annotations

import math

import pytest
import torch

from vi_helpers.learning import (
    conjugate_elbo_gradients,
    data_level_elbo_terms,
    gaussian_groups_mle,
    linear_vae_posterior,
    variational_em_gaussian_groups,
)
from vi_helpers.models import ConjugateGaussianModel, LinearGaussianVAE, ProbabilisticPCA
from vi_helpers.train import fit_linear_vae

DT = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- gradients in theta and phi ---------------------------------------------------------


@pytest.mark.parametrize("m, s", [(0.0, 1.0), (1.3, 0.4), (-2.0, 2.5)])
def test_conjugate_gradients_match_autograd_and_finite_differences(m, s):
    x = torch.tensor([0.8, 1.9, 1.1, 2.4], dtype=DT)
    mu0, sigma0, sigma = 0.5, 1.5, 0.9
    model = ConjugateGaussianModel(mu0, sigma0, sigma)
    grads = conjugate_elbo_gradients(model, x, m, s)
    m_t, s_t = torch.tensor(m, dtype=DT, requires_grad=True), torch.tensor(s, dtype=DT, requires_grad=True)
    g_m, g_s = torch.autograd.grad(model.elbo(x, m_t, s_t), (m_t, s_t))
    torch.testing.assert_close(grads["m"], g_m)
    torch.testing.assert_close(grads["s"], g_s)
    h = 1e-6  # theta lives in floats: central differences of the closed-form ELBO
    for name, plus, minus in [
        ("mu0", ConjugateGaussianModel(mu0 + h, sigma0, sigma), ConjugateGaussianModel(mu0 - h, sigma0, sigma)),
        ("sigma0", ConjugateGaussianModel(mu0, sigma0 + h, sigma), ConjugateGaussianModel(mu0, sigma0 - h, sigma)),
    ]:
        fd = (plus.elbo(x, m, s) - minus.elbo(x, m, s)) / (2 * h)
        assert abs(float(grads[name]) - float(fd)) < 1e-6


def test_theta_gradient_is_plain_monte_carlo_without_reparameterization():
    x = torch.tensor([0.8, 1.9, 1.1, 2.4], dtype=DT)
    model = ConjugateGaussianModel(0.5, 1.5, 0.9)
    m, s = 1.0, 0.6
    z = m + s * torch.randn(400_000, generator=gen(0), dtype=DT)  # no gradient path to theta
    g = (z - model.mu0) / model.sigma0**2  # d/dmu0 log p(x, z)
    se = g.std() / math.sqrt(g.numel())
    assert abs(g.mean() - conjugate_elbo_gradients(model, x, m, s)["mu0"]) < 4 * se


def test_conjugate_gradients_reject_bad_s():
    with pytest.raises(ValueError, match="s must be > 0"):
        conjugate_elbo_gradients(ConjugateGaussianModel(), torch.zeros(3), 0.0, 0.0)


# -- variational EM ---------------------------------------------------------------------


def groups(seed=0, n_groups=20, n=5, sigma=0.8):
    g = gen(seed)
    z = 2.0 + 1.5 * torch.randn(n_groups, generator=g, dtype=DT)
    return z[:, None] + sigma * torch.randn(n_groups, n, generator=g, dtype=DT)


def total_log_evidence(x_groups, mu0, sigma0, sigma):
    model = ConjugateGaussianModel(mu0, sigma0, sigma)
    return float(sum(model.log_evidence(row) for row in x_groups))


def test_mle_is_a_stationary_point_of_the_marginal_likelihood():
    x = groups()
    mu0, sigma0 = gaussian_groups_mle(x, 0.8)
    h = 1e-5
    for d_mu, d_sigma in [(h, 0.0), (0.0, h)]:
        up = total_log_evidence(x, mu0 + d_mu, sigma0 + d_sigma, 0.8)
        down = total_log_evidence(x, mu0 - d_mu, sigma0 - d_sigma, 0.8)
        assert abs(up - down) / (2 * h) < 1e-5


def test_mle_clamps_the_prior_variance_at_zero():
    x = torch.tensor([[0.0, 1.0], [0.1, 0.9]], dtype=DT)  # group means barely differ
    assert gaussian_groups_mle(x, 1.0)[1] == 0.0


def test_variational_em_is_monotone_tight_and_reaches_the_mle():
    x = groups(seed=3)
    history = variational_em_gaussian_groups(x, 0.8, mu0=-1.0, sigma0=3.0, n_iter=40)
    previous = total_log_evidence(x, -1.0, 3.0, 0.8)
    for step in history:
        assert abs(step["elbo_before_m"] - previous) < 1e-8  # E-step: ELBO = log evidence
        assert step["elbo_after_m"] >= step["elbo_before_m"] - 1e-9  # M-step raises the ELBO
        assert step["log_evidence"] >= step["elbo_after_m"] - 1e-9  # ... and the bound holds
        assert abs(step["log_evidence"] - total_log_evidence(x, step["mu0"], step["sigma0"], 0.8)) < 1e-8
        previous = step["log_evidence"]
    mu0, sigma0 = gaussian_groups_mle(x, 0.8)
    assert abs(history[-1]["mu0"] - mu0) < 1e-6 and abs(history[-1]["sigma0"] - sigma0) < 1e-6


def test_em_posteriors_are_the_exact_posteriors():
    x = groups(seed=4, n_groups=3)
    step = variational_em_gaussian_groups(x, 0.8, mu0=0.2, sigma0=1.1, n_iter=1)[0]
    for row, m, s in zip(x, step["m"], step["s"], strict=True):
        post = ConjugateGaussianModel(0.2, 1.1, 0.8).posterior(row)
        assert abs(float(post.loc) - float(m)) < 1e-12 and abs(float(post.scale) - float(s)) < 1e-12


@pytest.mark.parametrize(
    "args, kwargs, exc, name",
    [
        ((torch.zeros(5), 1.0), {}, ValueError, "x_groups"),
        ((torch.zeros(1, 3), 1.0), {}, ValueError, "at least 2 groups"),
        ((torch.zeros(2, 3), -1.0), {}, ValueError, "sigma"),
        ((torch.zeros(2, 3), 1.0), {"sigma0": 0.0}, ValueError, "sigma0"),
        ((torch.zeros(2, 3), 1.0), {"n_iter": 0}, ValueError, "n_iter"),
    ],
)
def test_em_bad_inputs(args, kwargs, exc, name):
    with pytest.raises(exc, match=name):
        variational_em_gaussian_groups(*args, **kwargs)


# -- the data-level decomposition -------------------------------------------------------


def random_linear_vae(d=5, latent=2, seed=0):
    torch.manual_seed(seed)
    model = LinearGaussianVAE(d, latent).double()
    with torch.no_grad():
        model.encoder_log_var.copy_(torch.tensor([-0.7, 0.4], dtype=DT)[:latent])
        model.obs_log_var.fill_(-0.5)
    return model


def data_distribution(d=5, seed=1):
    g = gen(seed)
    a = torch.randn(d, d, generator=g, dtype=DT)
    return torch.randn(d, generator=g, dtype=DT), a @ a.T / d + 0.1 * torch.eye(d, dtype=DT)


def test_linear_vae_posterior_is_bayes_rule_on_the_joint_gaussian():
    model = random_linear_vae()
    W, b, var = model.decoder.weight.detach(), model.decoder.bias.detach(), model.obs_log_var.exp().detach()
    x = torch.randn(3, 5, generator=gen(2), dtype=DT)
    # joint of (z, x): cov [[I, W^T], [W, W W^T + var I]]; condition on x
    cov_xx = W @ W.T + var * torch.eye(5, dtype=DT)
    gain = W.T @ torch.linalg.inv(cov_xx)
    mean, cov = linear_vae_posterior(model, x)
    torch.testing.assert_close(mean.detach(), (gain @ (x - b).T).T)
    torch.testing.assert_close(cov.detach(), torch.eye(2, dtype=DT) - gain @ W)


def test_decomposition_identity_and_monte_carlo():
    model = random_linear_vae()
    mean, cov = data_distribution()
    terms = data_level_elbo_terms(model, mean, cov)
    rhs = -(terms["kl_data_model"] + terms["entropy_data"] + terms["posterior_kl"])
    assert abs(terms["expected_elbo"] - rhs) < 1e-9
    assert terms["kl_data_model"] > 0 and terms["posterior_kl"] > 0
    x = mean + torch.randn(400_000, 5, generator=gen(5), dtype=DT) @ torch.linalg.cholesky(cov).T
    with torch.no_grad():
        elbos = model.analytic_elbo(x)
        log_p = model.exact_log_likelihood(x)
        post_mean, post_cov = linear_vae_posterior(model, x)
    for value, samples in [
        (terms["expected_elbo"], elbos),
        (-(terms["kl_data_model"] + terms["entropy_data"]), log_p),
        (terms["posterior_kl"], log_p - elbos),  # per x: log p(x) - ELBO(x) = KL(q || p(z|x))
    ]:
        assert abs(value - float(samples.mean())) < 4 * float(samples.std()) / math.sqrt(len(samples))
    assert float(post_cov.trace()) > 0


def test_at_the_ppca_optimum_inference_gap_vanishes_and_model_kl_is_minimal():
    mean, cov = data_distribution(d=6, seed=7)
    evals, evecs = torch.linalg.eigh(cov)
    spread = (evecs * (6 * evals).sqrt()).T
    points = torch.cat([mean + spread, mean - spread])  # exactly the mean and covariance of p_data
    model, _ = fit_linear_vae(points, 2, n_steps=1500, seed=0)
    terms = data_level_elbo_terms(model, mean, cov)
    best = ProbabilisticPCA(2).fit(points).max_log_likelihood()
    assert terms["posterior_kl"] < 1e-3
    assert abs(-(terms["kl_data_model"] + terms["entropy_data"]) - best) < 1e-3


def test_decomposition_bad_inputs():
    model = random_linear_vae()
    mean, cov = data_distribution()
    with pytest.raises(ValueError, match="data_mean"):
        data_level_elbo_terms(model, mean[:3], cov)
    with pytest.raises(ValueError, match="data_cov"):
        data_level_elbo_terms(model, mean, cov[:3])
    with pytest.raises(ValueError, match="positive definite"):
        data_level_elbo_terms(model, mean, torch.zeros(5, 5, dtype=DT))
