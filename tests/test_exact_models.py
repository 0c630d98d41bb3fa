"""Tests for vi_helpers.exact_models: the conjugate Gaussian, pPCA and Bayesian logistic regression.

References: grids (quadrature), torch.distributions, a numerical optimum found by
gradient ascent, and Monte Carlo with tolerances stated in standard errors.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, MultivariateNormal, Normal

from vi_helpers.exact_models import (
    BayesianLogisticRegression,
    ConjugateGaussianModel,
    ProbabilisticPCA,
)

# --------------------------------------------------------------------- conjugate Gaussian
CONJ = ConjugateGaussianModel(mu0=0.5, sigma0=1.5, sigma=0.8)
X_CONJ = torch.tensor([1.2, 0.3, 2.1, 1.7, 0.9], dtype=torch.float64)


def test_conjugate_posterior_and_evidence_vs_grid():
    z = torch.linspace(-8, 10, 200_001, dtype=torch.float64)
    dz = z[1] - z[0]
    log_joint = CONJ.log_joint(X_CONJ, z)
    log_evidence = torch.logsumexp(log_joint, 0) + torch.log(dz)
    density = torch.exp(log_joint - log_evidence)
    grid_mean = (z * density).sum() * dz
    grid_std = (((z - grid_mean) ** 2 * density).sum() * dz).sqrt()
    post = CONJ.posterior(X_CONJ)
    assert abs(float(post.mean) - float(grid_mean)) < 1e-8
    assert abs(float(post.stddev) - float(grid_std)) < 1e-8
    assert abs(float(CONJ.log_evidence(X_CONJ)) - float(log_evidence)) < 1e-6


def test_conjugate_log_joint_vs_torch_distributions():
    z = torch.tensor([-1.0, 0.0, 2.5], dtype=torch.float64)
    want = Normal(0.5, 1.5).log_prob(z) + Normal(z[:, None], 0.8).log_prob(X_CONJ).sum(-1)
    torch.testing.assert_close(CONJ.log_joint(X_CONJ, z), want)


@pytest.mark.parametrize("q_mu, q_sigma", [(0.0, 1.0), (1.5, 0.1), (1.2, 0.33), (-2.0, 3.0)])
def test_conjugate_elbo_bound_and_monte_carlo(q_mu, q_sigma):
    elbo = CONJ.elbo(X_CONJ, q_mu, q_sigma)
    assert float(elbo) < float(CONJ.log_evidence(X_CONJ))
    s = 100_000
    z = q_mu + q_sigma * torch.randn(s, generator=torch.Generator().manual_seed(0),
                                     dtype=torch.float64)
    terms = CONJ.log_joint(X_CONJ, z) - Normal(q_mu, q_sigma).log_prob(z)
    # 5 standard errors of the Monte Carlo mean
    assert abs(float(elbo) - float(terms.mean())) < 5 * float(terms.std()) / math.sqrt(s)
    # ELBO = log p(x) - KL(q || posterior)
    post = CONJ.posterior(X_CONJ)
    kl = torch.distributions.kl_divergence(
        Normal(torch.tensor(q_mu, dtype=torch.float64), torch.tensor(q_sigma, dtype=torch.float64)),
        post,
    )
    torch.testing.assert_close(elbo, CONJ.log_evidence(X_CONJ) - kl)


def test_conjugate_elbo_equals_evidence_at_posterior():
    post = CONJ.posterior(X_CONJ)
    elbo = CONJ.elbo(X_CONJ, post.mean, post.stddev)
    assert abs(float(elbo) - float(CONJ.log_evidence(X_CONJ))) < 1e-6


def test_conjugate_bad_inputs():
    with pytest.raises(ValueError, match="sigma0"):
        ConjugateGaussianModel(0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="sigma"):
        ConjugateGaussianModel(0.0, 1.0, -1.0)
    with pytest.raises(ValueError, match="mu0"):
        ConjugateGaussianModel(float("nan"), 1.0, 1.0)
    with pytest.raises(ValueError, match="x"):
        CONJ.posterior(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="q_sigma"):
        CONJ.elbo(X_CONJ, 0.0, 0.0)


# ---------------------------------------------------------------------------- pPCA
@pytest.fixture(scope="module")
def ppca_data():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(5, 2, generator=g, dtype=torch.float64)
    z = torch.randn(300, 2, generator=g, dtype=torch.float64)
    return z @ W.T + 0.3 * torch.randn(300, 5, generator=g, dtype=torch.float64) + 1.0


def test_ppca_closed_form_matches_its_log_likelihood(ppca_data):
    p = ProbabilisticPCA(2).fit(ppca_data)
    assert abs(p.max_log_likelihood() - float(p.log_likelihood(ppca_data).mean())) < 1e-10
    torch.testing.assert_close(p.mu, ppca_data.mean(0))


def test_ppca_closed_form_vs_numerical_optimum(ppca_data):
    p = ProbabilisticPCA(2).fit(ppca_data)
    W = torch.randn(5, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    W.requires_grad_(True)
    mu = ppca_data.mean(0).clone().requires_grad_(True)
    log_s2 = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, mu, log_s2], max_iter=500, tolerance_grad=1e-12,
                            tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        cov = W @ W.T + log_s2.exp() * torch.eye(5, dtype=torch.float64)
        loss = -MultivariateNormal(mu, covariance_matrix=cov).log_prob(ppca_data).mean()
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    numerical = -closure().item()
    assert abs(numerical - p.max_log_likelihood()) < 1e-6
    assert abs(math.exp(log_s2.item()) - p.sigma2) < 1e-4


def test_ppca_bad_inputs(ppca_data):
    with pytest.raises(ValueError, match="latent_size"):
        ProbabilisticPCA(0)
    with pytest.raises(ValueError, match="latent_size"):
        ProbabilisticPCA(5).fit(ppca_data)
    with pytest.raises(ValueError, match="x"):
        ProbabilisticPCA(1).fit(ppca_data[0])
    with pytest.raises(RuntimeError, match="fit"):
        ProbabilisticPCA(1).max_log_likelihood()


# ------------------------------------------------------------- Bayesian logistic regression
@pytest.fixture(scope="module")
def blr():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 2, generator=g, dtype=torch.float64)
    w_true = torch.tensor([1.5, -1.0], dtype=torch.float64)
    y = (torch.rand(30, generator=g, dtype=torch.float64) < torch.sigmoid(x @ w_true)).double()
    return BayesianLogisticRegression(x, y, prior_precision=1.0)


def test_blr_log_joint_vs_torch_distributions(blr):
    w = torch.tensor([[0.3, -0.2], [1.0, 2.0]], dtype=torch.float64)
    want = Normal(0.0, 1.0).log_prob(w).sum(-1) + Bernoulli(logits=w @ blr.x.T).log_prob(
        blr.y
    ).sum(-1)
    torch.testing.assert_close(blr.log_joint(w), want)


def test_blr_grid_posterior_normalized_and_evidence_vs_monte_carlo(blr):
    w1, w2, density, log_evidence = blr.grid_posterior(lim=6.0, n=301)
    cell = float((w1[1] - w1[0]) ** 2)
    assert abs(float(density.sum()) * cell - 1.0) < 1e-9
    assert density.shape == (301, 301)
    # brute force: p(y|x) = E_{w ~ prior} p(y|x, w)
    s = 200_000
    w = torch.randn(s, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    log_lik = Bernoulli(logits=w @ blr.x.T).log_prob(blr.y).sum(-1)
    mc = float(torch.logsumexp(log_lik, 0) - math.log(s))
    ratio = torch.exp(log_lik - log_lik.max())
    # delta method: sd(log mean) = sd(ratio) / (sqrt(S) mean(ratio)); 5 standard errors
    se = float(ratio.std() / (math.sqrt(s) * ratio.mean()))
    assert abs(mc - log_evidence) < 5 * se + 1e-6, (mc, log_evidence, se)


def test_blr_bad_inputs(blr):
    with pytest.raises(ValueError, match="y"):
        BayesianLogisticRegression(blr.x, blr.y[:-1])
    with pytest.raises(ValueError, match="y"):
        BayesianLogisticRegression(blr.x, blr.y + 0.5)
    with pytest.raises(ValueError, match="prior_precision"):
        BayesianLogisticRegression(blr.x, blr.y, prior_precision=0.0)
    with pytest.raises(ValueError, match="x"):
        BayesianLogisticRegression(blr.x[:, 0], blr.y)
    with pytest.raises(ValueError, match="n"):
        blr.grid_posterior(n=0)


# -- issue 11 -----------------------------------------------------------------------------------
@pytest.mark.parametrize("q_mu, q_sigma, bad", [(math.nan, 1.0, "q_mu"), (0.0, math.inf, "q_sigma"),
                                                ("0", 1.0, "q_mu")])
def test_conjugate_elbo_refuses_nan_and_non_numbers(q_mu, q_sigma, bad):
    with pytest.raises((ValueError, TypeError), match=bad):
        ConjugateGaussianModel().elbo(torch.zeros(3), q_mu, q_sigma)


def test_logistic_regression_names_x_and_the_dtype_of_w():
    x, y = torch.zeros(4, 2), torch.tensor([0.0, 1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match=r"y must have one label per row of x \(5\)"):
        BayesianLogisticRegression(torch.zeros(5, 2), y)
    with pytest.raises(TypeError, match=r"w has dtype torch.float64 but x has torch.float32.*w\.float\(\)"):
        BayesianLogisticRegression(x, y).log_joint(torch.zeros(3, 2, dtype=torch.float64))
