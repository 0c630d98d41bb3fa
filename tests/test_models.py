"""Tests for vi_helpers.models: the seed API, likelihoods, and the models with exact answers.

Every value is compared with an independent reference: the seed's own formulas
written out here, torch.distributions, hand-built multivariate normals, grids
and Monte Carlo with tolerances stated in standard errors.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, MultivariateNormal, Normal

from vi_helpers import GenerativeModel, VariationalAutoencoder, VariationalDistribution
from vi_helpers.models import (
    BayesianLogisticRegression,
    ConjugateGaussianModel,
    LinearGaussianVAE,
    ProbabilisticPCA,
    reparameterize,
)

D, H, L, B = 12, 16, 3, 7


def _vae(likelihood="mse", seed=0, **kwargs):
    torch.manual_seed(seed)
    return VariationalAutoencoder(D, H, L, likelihood=likelihood, **kwargs)


def _x(seed=1, b=B, d=D):
    return torch.rand(b, d, generator=torch.Generator().manual_seed(seed))


def _seed_loss(x, x_hat, mean, log_var):
    """The seed note's loss_function, verbatim."""
    recon_loss = torch.mean(torch.sum((x - x_hat) ** 2, dim=1))
    kl_loss = -0.5 * torch.mean(torch.sum(1 + log_var - mean**2 - torch.exp(log_var), dim=1))
    return recon_loss + kl_loss


# ----------------------------------------------------------------------------- seed API
def test_seed_classes_positional_and_shapes():
    torch.manual_seed(0)
    enc = VariationalDistribution(D, H, L)
    dec = GenerativeModel(L, H, D)
    vae = VariationalAutoencoder(D, H, L)
    x = _x()
    z, mean, log_var = enc(x)
    assert z.shape == mean.shape == log_var.shape == (B, L)
    assert dec(z).shape == (B, D)
    x_hat, mean, log_var = vae(x)
    assert x_hat.shape == (B, D) and mean.shape == (B, L) and log_var.shape == (B, L)
    # the seed's submodule layout: encoder.encoder/mean/log_var, decoder.decoder
    assert isinstance(vae.encoder, VariationalDistribution)
    assert isinstance(vae.decoder, GenerativeModel)
    assert [type(m).__name__ for m in vae.encoder.encoder] == ["Linear", "ReLU", "Linear", "ReLU"]
    assert [type(m).__name__ for m in vae.decoder.decoder] == [
        "Linear", "ReLU", "Linear", "ReLU", "Linear"
    ]
    assert vae.likelihood == "mse" and vae.beta == 1.0 and vae.free_bits == 0.0


def test_variational_distribution_reparameterization_by_seeding():
    torch.manual_seed(0)
    enc = VariationalDistribution(D, H, L)
    x = _x()
    torch.manual_seed(123)
    z, mean, log_var = enc(x)
    torch.manual_seed(123)
    eps = torch.randn(B, L)  # the seed draws eps = randn_like(std)
    h = enc.encoder(x)
    torch.testing.assert_close(mean, enc.mean(h), rtol=0, atol=0)
    torch.testing.assert_close(log_var, enc.log_var(h), rtol=0, atol=0)
    torch.testing.assert_close(z, mean + torch.exp(0.5 * log_var) * eps, rtol=1e-6, atol=1e-6)


def test_reparameterize_generator_and_gradients():
    mu = torch.tensor([[0.5, -1.0]], requires_grad=True)
    log_var = torch.tensor([[0.2, -0.4]], requires_grad=True)
    z = reparameterize(mu, log_var, generator=torch.Generator().manual_seed(5))
    eps = torch.randn(1, 2, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(z, mu + torch.exp(0.5 * log_var) * eps)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones(1, 2))
    torch.testing.assert_close(log_var.grad, 0.5 * torch.exp(0.5 * log_var.detach()) * eps)


def test_loss_function_equals_seed_formula():
    vae = _vae()
    x = _x()
    x_hat, mean, log_var = vae(x)
    got = vae.loss_function(x, x_hat, mean, log_var)  # positional, as the seed calls it
    want = _seed_loss(x, x_hat, mean, log_var)
    assert got.dim() == 0
    got, want = got.item(), want.item()
    assert abs(got - want) < 1e-6 * max(1.0, abs(want))


def test_loss_function_gradient_flows():
    vae = _vae()
    x = _x()
    loss = vae.loss_function(x, *vae(x))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in vae.parameters())


# -------------------------------------------------------------------------- likelihoods
@pytest.mark.parametrize("obs_log_var", [None, -1.3])
def test_gaussian_log_likelihood_vs_torch_distributions(obs_log_var):
    vae = _vae("gaussian", obs_log_var=obs_log_var)
    if obs_log_var is None:
        with torch.no_grad():
            vae.obs_log_var.fill_(0.7)  # a learned parameter: check it is used
    x = _x()
    x_hat = torch.randn(B, D, generator=torch.Generator().manual_seed(3))
    sigma = torch.exp(0.5 * vae.obs_log_var.detach())
    want = Normal(x_hat, sigma).log_prob(x).sum(dim=-1)
    torch.testing.assert_close(vae.log_likelihood(x, x_hat).detach(), want)
    torch.testing.assert_close(vae.reconstruction_loss(x, x_hat).detach(), -want)


def test_learned_obs_log_var_is_a_parameter():
    vae = _vae("gaussian")
    assert any(p is vae.obs_log_var for p in vae.parameters())
    assert "obs_log_var" not in vae.config
    fixed = _vae("gaussian", obs_log_var=-2.0)
    assert all(p is not fixed.obs_log_var for p in fixed.parameters())
    assert fixed.config["obs_log_var"] == -2.0


def test_bernoulli_log_likelihood_vs_torch_distributions():
    vae = _vae("bernoulli")
    x = (_x() > 0.5).float()
    logits = 3 * torch.randn(B, D, generator=torch.Generator().manual_seed(3))
    want = Bernoulli(logits=logits).log_prob(x).sum(dim=-1)
    torch.testing.assert_close(vae.log_likelihood(x, logits), want)
    torch.testing.assert_close(vae.reconstruction_loss(x, logits), -want)
    # decode returns the mean image, the sigmoid of the logits
    z = torch.randn(4, L)
    torch.testing.assert_close(vae.decode(z), torch.sigmoid(vae.decoder(z)))


def test_mse_is_gaussian_half_variance_minus_constant():
    vae = _vae("mse")
    x = _x()
    x_hat = torch.randn(B, D, generator=torch.Generator().manual_seed(3))
    nll = -Normal(x_hat, math.sqrt(0.5)).log_prob(x).sum(dim=-1)
    mse = vae.reconstruction_loss(x, x_hat)
    torch.testing.assert_close(mse, (x - x_hat).pow(2).sum(dim=-1))
    torch.testing.assert_close(mse, nll - 0.5 * D * math.log(math.pi))
    torch.testing.assert_close(vae.log_likelihood(x, x_hat), -nll)


def test_return_terms_elbo_identity():
    vae = _vae("mse")
    x = _x()
    x_hat, mean, log_var = vae(x)
    loss, terms = vae.loss_function(x, x_hat, mean, log_var, return_terms=True)
    kl = (0.5 * (mean**2 + log_var.exp() - 1 - log_var)).sum(-1).mean()
    log_lik = Normal(x_hat, math.sqrt(0.5)).log_prob(x).sum(-1).mean()
    torch.testing.assert_close(terms["kl"], kl.detach())
    torch.testing.assert_close(terms["log_lik"], log_lik.detach())
    torch.testing.assert_close(terms["recon"], (x - x_hat).pow(2).sum(-1).mean().detach())
    torch.testing.assert_close(loss.detach(), terms["recon"] + terms["kl"])


@pytest.mark.parametrize("beta", [0.0, 0.5, 4.0])
def test_beta_weights_the_kl(beta):
    vae = _vae("gaussian", beta=beta)
    x = _x()
    x_hat, mean, log_var = vae(x)
    recon = -Normal(x_hat, 1.0).log_prob(x).sum(-1).mean()
    kl = (0.5 * (mean**2 + log_var.exp() - 1 - log_var)).sum(-1).mean()
    torch.testing.assert_close(vae.loss_function(x, x_hat, mean, log_var), recon + beta * kl)
    # a call-time beta overrides the model's
    torch.testing.assert_close(
        vae.loss_function(x, x_hat, mean, log_var, beta=2.0), recon + 2.0 * kl
    )


@pytest.mark.parametrize("free_bits", [0.0, 0.05, 0.5, 10.0])
def test_free_bits_clamps_per_dimension_batch_mean(free_bits):
    vae = _vae("mse", free_bits=free_bits)
    x = _x()
    x_hat, mean, log_var = vae(x)
    recon = (x - x_hat).pow(2).sum(-1).mean()
    kl_dims = (0.5 * (mean**2 + log_var.exp() - 1 - log_var)).mean(dim=0)  # (L,)
    want = recon + torch.clamp(kl_dims, min=free_bits).sum()
    torch.testing.assert_close(vae.loss_function(x, x_hat, mean, log_var), want)
    if free_bits == 10.0:
        # every dimension is under the floor: the KL term is the constant L * lambda
        torch.testing.assert_close(want - recon, torch.tensor(L * 10.0))


@pytest.mark.parametrize("free_bits", [0.0, 100.0])
def test_free_bits_removes_kl_gradient_below_floor(free_bits):
    vae = _vae("mse")
    x = _x()
    x_hat, mean, log_var = vae(x)
    mean = mean.detach().requires_grad_(True)
    # x_hat detached: only the KL term depends on mean
    vae.loss_function(x, x_hat.detach(), mean, log_var, free_bits=free_bits).backward()
    if free_bits > 0:  # every dimension's KL is under the floor: no gradient at all
        assert float(mean.grad.abs().max()) == 0.0
    else:  # d/dmu of mean_b sum_j mu^2 / 2
        torch.testing.assert_close(mean.grad, mean.detach() / B)


@pytest.mark.parametrize("likelihood", ["mse", "gaussian", "bernoulli"])
def test_elbo_equals_monte_carlo_average(likelihood):
    vae = _vae(likelihood)
    x = (_x() > 0.5).float() if likelihood == "bernoulli" else _x()
    s = 5
    got = vae.elbo(x, n_samples=s, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        mean, log_var = vae.encode(x)
        eps = torch.randn(s, B, L, generator=torch.Generator().manual_seed(9))
        z = mean + torch.exp(0.5 * log_var) * eps
        out = vae.decoder(z)
        if likelihood == "bernoulli":
            log_lik = Bernoulli(logits=out).log_prob(x).sum(-1)
        else:
            var = 0.5 if likelihood == "mse" else 1.0
            log_lik = Normal(out, math.sqrt(var)).log_prob(x).sum(-1)
        q = Normal(mean, torch.exp(0.5 * log_var))
        kl = torch.distributions.kl_divergence(q, Normal(0.0, 1.0)).sum(-1)
        want = log_lik.mean(0) - kl
    assert got.shape == (B,)
    torch.testing.assert_close(got.detach(), want, rtol=1e-5, atol=1e-5)


def test_sample_and_config():
    vae = _vae("bernoulli", beta=2.0, free_bits=0.1)
    s = vae.sample(5, generator=torch.Generator().manual_seed(0))
    assert s.shape == (5, D) and float(s.min()) >= 0 and float(s.max()) <= 1
    again = VariationalAutoencoder(**vae.config)
    assert again.config == vae.config


# ---------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("cls", [VariationalDistribution, GenerativeModel, VariationalAutoencoder])
@pytest.mark.parametrize("position", [0, 1, 2])
@pytest.mark.parametrize(
    "bad, exc", [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)]
)
def test_bad_sizes_name_the_argument(cls, position, bad, exc):
    names = {
        VariationalDistribution: ("input_size", "hidden_size", "latent_size"),
        GenerativeModel: ("latent_size", "hidden_size", "output_size"),
        VariationalAutoencoder: ("input_size", "hidden_size", "latent_size"),
    }[cls]
    args = [4, 5, 2]
    args[position] = bad
    with pytest.raises(exc, match=names[position]):
        cls(*args)


def test_unknown_likelihood():
    with pytest.raises(ValueError, match="likelihood"):
        VariationalAutoencoder(D, H, L, likelihood="poisson")


@pytest.mark.parametrize("kwargs, name", [({"beta": -1.0}, "beta"), ({"free_bits": -0.1}, "free_bits"),
                                          ({"obs_log_var": float("nan"), "likelihood": "gaussian"},
                                           "obs_log_var"),
                                          ({"obs_log_var": 0.0}, "obs_log_var")])
def test_bad_options(kwargs, name):
    with pytest.raises(ValueError, match=name):
        VariationalAutoencoder(D, H, L, **kwargs)


@pytest.mark.parametrize(
    "x, exc",
    [
        (torch.rand(B, D + 1), ValueError),  # wrong width
        (torch.rand(2, B, D), ValueError),  # wrong rank
        (torch.full((B, D), float("nan")), ValueError),
        (torch.ones(B, D, dtype=torch.int64), TypeError),
        ([[0.0] * D], TypeError),
    ],
)
def test_forward_rejects_bad_x(x, exc):
    vae = _vae()
    with pytest.raises(exc, match="x"):
        vae(x)


def test_loss_rejects_mismatched_shapes():
    vae = _vae()
    x = _x()
    x_hat, mean, log_var = vae(x)
    with pytest.raises(ValueError, match="x_hat"):
        vae.loss_function(x, x_hat[:-1], mean, log_var)
    with pytest.raises(ValueError, match="mean"):
        vae.loss_function(x, x_hat, mean[:-1], log_var[:-1])
    with pytest.raises(ValueError, match="log_var"):
        vae.loss_function(x, x_hat, mean, log_var[:, :-1])
    with pytest.raises(ValueError, match="x"):
        vae.loss_function(x.clone().fill_(float("nan")), x_hat, mean, log_var)


def test_bernoulli_rejects_x_outside_unit_interval():
    vae = _vae("bernoulli")
    with pytest.raises(ValueError, match="x"):
        vae.log_likelihood(torch.full((B, D), 2.0), torch.zeros(B, D))


def test_decoder_rejects_wrong_latent_width():
    vae = _vae()
    with pytest.raises(ValueError, match="z"):
        vae.decode(torch.zeros(3, L + 1))
    with pytest.raises(ValueError, match="n_samples"):
        vae.elbo(_x(), n_samples=0)
    with pytest.raises(TypeError, match="n"):
        vae.sample(2.0)


# --------------------------------------------------------------------- linear Gaussian VAE
def _linear_vae(d=6, latent=2, seed=0):
    torch.manual_seed(seed)
    m = LinearGaussianVAE(d, latent).double()
    with torch.no_grad():
        m.obs_log_var.fill_(-1.0)
        m.encoder_log_var.copy_(torch.linspace(-1.5, -0.5, latent, dtype=torch.float64))
    return m


def test_linear_vae_exact_log_likelihood_vs_hand_built_mvn():
    m = _linear_vae()
    x = torch.randn(20, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    W, b = m.decoder.weight.detach(), m.decoder.bias.detach()
    cov = W @ W.T + math.exp(-1.0) * torch.eye(6, dtype=torch.float64)
    want = MultivariateNormal(b, covariance_matrix=cov).log_prob(x)
    torch.testing.assert_close(m.exact_log_likelihood(x).detach(), want)


def test_linear_vae_analytic_elbo_vs_monte_carlo_and_bound():
    m = _linear_vae()
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    s = 200_000
    with torch.no_grad():
        mean, log_var = m.encode(x)
        q = Normal(mean, torch.exp(0.5 * log_var))
        eps = torch.randn(
            s, *mean.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64
        )
        z = mean + torch.exp(0.5 * log_var) * eps
        W, b = m.decoder.weight, m.decoder.bias
        log_lik = Normal(z @ W.T + b, math.exp(-0.5)).log_prob(x).sum(-1)
        log_w = log_lik + Normal(0.0, 1.0).log_prob(z).sum(-1) - q.log_prob(z).sum(-1)
        mc, se = log_w.mean(0), log_w.std(0) / math.sqrt(s)
        analytic = m.analytic_elbo(x)
        exact = m.exact_log_likelihood(x)
    # 5 standard errors of the Monte Carlo mean
    assert bool(((analytic - mc).abs() < 5 * se).all()), (analytic, mc, se)
    assert bool((analytic <= exact + 1e-10).all())
    assert bool((exact - analytic > 1e-3).all())  # the encoder is not the posterior here


def test_linear_vae_elbo_equals_log_likelihood_at_exact_posterior():
    m = _linear_vae(d=5, latent=2)
    with torch.no_grad():
        # orthogonal columns make the true posterior covariance diagonal
        q, _ = torch.linalg.qr(torch.randn(5, 2, generator=torch.Generator().manual_seed(2),
                                           dtype=torch.float64))
        W = q * torch.tensor([2.0, 0.7], dtype=torch.float64)
        m.decoder.weight.copy_(W)
        s2 = math.exp(float(m.obs_log_var))
        M = W.T @ W + s2 * torch.eye(2, dtype=torch.float64)
        A = torch.linalg.solve(M, W.T)
        m.encoder_mean.weight.copy_(A)
        m.encoder_mean.bias.copy_(-A @ m.decoder.bias)
        m.encoder_log_var.copy_(torch.log(s2 / torch.diagonal(M)))
        x = torch.randn(10, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        torch.testing.assert_close(m.analytic_elbo(x), m.exact_log_likelihood(x), rtol=0, atol=1e-9)


def test_linear_vae_bad_sizes():
    with pytest.raises(ValueError, match="latent_size"):
        LinearGaussianVAE(3, 4)
    with pytest.raises(ValueError, match="input_size"):
        LinearGaussianVAE(0, 1)
    with pytest.raises(ValueError, match="x"):
        LinearGaussianVAE(3, 1).exact_log_likelihood(torch.zeros(2, 4))


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
