"""Tests for vi_helpers.models: the seed API, likelihoods and the linear VAE.

Every value is compared with an independent reference: the seed's own formulas
written out here, torch.distributions, hand-built multivariate normals, grids
and Monte Carlo with tolerances stated in standard errors.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, MultivariateNormal, Normal

from vi_helpers import GenerativeModel, VariationalAutoencoder, VariationalDistribution, models
from vi_helpers.models import LinearGaussianVAE, reparameterize

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


def test_models_re_exports_the_exact_models():
    from vi_helpers import exact_models

    for name in ("ConjugateGaussianModel", "ProbabilisticPCA", "BayesianLogisticRegression"):
        assert getattr(models, name) is getattr(exact_models, name)


def test_forward_uses_the_decoder_network_unchecked_on_its_own_latents():
    vae = _vae()
    with torch.no_grad():
        for p in vae.encoder.parameters():
            p.fill_(float("nan"))  # a diverged encoder: NaN latents
        x_hat, _, _ = vae(_x())
        assert bool(torch.isnan(x_hat).all())  # a NaN loss for the trainer's guard, no error
        with pytest.raises(ValueError, match="z"):
            vae.decoder(torch.full((2, L), float("nan")))  # a user's z is checked


# -- issue 11: the model's own forward/encode/decode/elbo cast data to its dtype ----------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_model_methods_cast_data_to_the_model_dtype(dtype):
    torch.manual_seed(0)
    model = VariationalAutoencoder(4, 8, 2, likelihood="bernoulli")
    x = torch.rand(3, 4).to(dtype).float()  # representable in dtype: both calls see one x
    for method, arg in (("encode", x), ("decode", x[:, :2])):
        want, got = getattr(model, method)(arg), getattr(model, method)(arg.to(dtype))
        assert all(torch.equal(a, b) for a, b in zip(
            want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,),
            strict=True))
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(model.elbo(x, generator=g()), model.elbo(x.to(dtype), generator=g()))
    linear = LinearGaussianVAE(4, 2)
    assert torch.equal(linear.analytic_elbo(x), linear.analytic_elbo(x.to(dtype)))


def test_reparameterize_checks_its_arguments():
    """Root cause 2: no checks at all, and no shape check between mu and log_var."""
    with pytest.raises(ValueError, match="mu and log_var must have the same shape"):
        reparameterize(torch.zeros(3, 2), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="log_var contains 1 NaN"):
        reparameterize(torch.zeros(2), torch.tensor([0.0, math.nan]))
    with pytest.raises(TypeError, match="generator"):
        reparameterize(torch.zeros(2), torch.zeros(2), generator=0)
    with pytest.raises(ValueError, match="mu is on the meta device"):
        reparameterize(torch.zeros(2, device="meta"), torch.zeros(2))
