"""Tests for vi_helpers.evaluate.

References: the linear VAE's exact marginal likelihood (pPCA), importance
weights rebuilt by hand with torch.distributions from the same random numbers,
constructed encoder means with known variances, and the KL formula written out.
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import linear_vae_near_posterior
from torch.distributions import Bernoulli, Normal

from vi_helpers import VariationalAutoencoder, train_model
from vi_helpers.evaluate import (
    active_units,
    elbo,
    iwae_curve,
    kl_per_dimension,
    log_likelihood_is,
    reconstruction_error,
)

D, L = 8, 3


@pytest.fixture(scope="module")
def linear():
    """Encoder close to the exact posterior and a little wider: a good proposal."""
    return linear_vae_near_posterior(D, (2.0, 1.2, 0.6), perturb=0.01, var_factor=1.3, n=64)


@pytest.fixture(scope="module")
def poor_linear():
    """Encoder off the posterior and too narrow: a loose ELBO, a clear IWAE curve."""
    return linear_vae_near_posterior(D, (2.0, 1.2, 0.6), perturb=0.3, var_factor=0.3, n=64)


def _vae(likelihood, seed=0):
    torch.manual_seed(seed)
    return VariationalAutoencoder(D, 16, L, likelihood=likelihood)


def _data(likelihood, b=5):
    x = torch.rand(b, D, generator=torch.Generator().manual_seed(1))
    return (x > 0.5).float() if likelihood == "bernoulli" else x


@pytest.fixture(scope="module")
def trained(digits_train):
    """Two small Gaussian VAEs on digits: beta = 1 and a collapsing beta = 10."""
    models = {}
    for beta in (1.0, 10.0):
        torch.manual_seed(0)
        m = VariationalAutoencoder(64, 64, 8, likelihood="gaussian", obs_log_var=math.log(0.02))
        train_model(m, digits_train, 10, 1e-2, beta=beta, seed=0, progress=False)
        models[beta] = m
    return models


# ---------------------------------------------------------------- importance sampling
def test_is_matches_exact_log_likelihood_for_large_k(linear):
    m, x = linear
    est = log_likelihood_is(m, x, k=4000, chunk_size=1000,
                            generator=torch.Generator().manual_seed(0))
    exact = m.exact_log_likelihood(x).detach()
    assert est.shape == (64,) and not est.requires_grad
    # for this proposal the relative variance of the weights is about 0.1, so one
    # estimate has sd ~ sqrt(0.1 / 4000) = 0.005: allow 6 sd per example, and 6 sd of
    # the mean over 64 examples for the average
    assert float((est - exact).abs().max()) < 0.03
    assert abs(float((est - exact).mean())) < 0.004


def test_is_is_a_lower_bound_for_small_k(poor_linear):
    m, x = poor_linear
    exact = float(m.exact_log_likelihood(x).detach().mean())
    gen = torch.Generator().manual_seed(1)
    for k in (1, 5):
        # 20 repeats over 64 examples: averages with a standard error far below the gaps
        reps = torch.stack([log_likelihood_is(m, x, k=k, generator=gen) for _ in range(20)])
        se = float(reps.mean(1).std()) / math.sqrt(20)
        assert float(reps.mean()) < exact - 5 * se, (k, float(reps.mean()), exact, se)


def test_iwae_curve_increases_with_k(poor_linear):
    m, x = poor_linear
    curve = iwae_curve(m, x, ks=(1, 10, 100, 1000), generator=torch.Generator().manual_seed(2))
    assert list(curve) == [1, 10, 100, 1000]
    values = list(curve.values())
    assert all(isinstance(v, float) for v in values)
    assert all(a < b for a, b in zip(values, values[1:], strict=False))
    exact = float(m.exact_log_likelihood(x).detach().mean())
    assert values[-1] < exact + 0.01 and values[0] < exact


def test_is_k1_mean_matches_analytic_elbo(linear):
    m, x = linear
    # K = 1 is an unbiased single-sample ELBO; 5 standard errors over 400 repeats
    reps = torch.stack([
        log_likelihood_is(m, x, k=1, generator=torch.Generator().manual_seed(i)) for i in range(400)
    ])
    mc, se = reps.mean(0), reps.std(0) / math.sqrt(400)
    analytic = m.analytic_elbo(x).detach()
    assert bool(((mc - analytic).abs() < 5 * se).all())


def _hand_log_weights(model, x, likelihood, eps):
    mean, log_var = model.encode(x)
    q = Normal(mean, torch.exp(0.5 * log_var))
    z = mean + torch.exp(0.5 * log_var) * eps
    out = model.decoder(z)
    if likelihood == "bernoulli":
        log_lik = Bernoulli(logits=out).log_prob(x).sum(-1)
    else:
        var = 0.5 if likelihood == "mse" else 1.0
        log_lik = Normal(out, math.sqrt(var)).log_prob(x).sum(-1)
    return log_lik + Normal(0.0, 1.0).log_prob(z).sum(-1) - q.log_prob(z).sum(-1)


@pytest.mark.parametrize("likelihood", ["mse", "gaussian", "bernoulli"])
@pytest.mark.parametrize("chunks", [(20,), (7, 7, 6)])
def test_is_vs_hand_computation(likelihood, chunks):
    model = _vae(likelihood)
    x = _data(likelihood)
    k = sum(chunks)
    got = log_likelihood_is(model, x, k=k, chunk_size=chunks[0],
                            generator=torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        eps = torch.cat([torch.randn(c, 5, L, generator=gen) for c in chunks])
        log_w = _hand_log_weights(model, x, likelihood, eps)
    want = torch.logsumexp(log_w, 0) - math.log(k)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_is_restores_training_mode_and_accepts_float32(linear):
    m, x = linear
    m.train()
    out = log_likelihood_is(m, x.float(), k=3, generator=torch.Generator().manual_seed(0))
    assert m.training and out.dtype == torch.float64
    m.eval()
    log_likelihood_is(m, x, k=3)
    assert not m.training


# -------------------------------------------------------------------- active units, KL
def test_active_units_on_constructed_means():
    g = torch.Generator().manual_seed(0)
    stds = torch.tensor([0.0, 0.05, 0.08, 0.2, 1.0], dtype=torch.float64)
    z = torch.randn(4000, 5, generator=g, dtype=torch.float64)
    z = (z - z.mean(0)) / z.std(0, correction=0)  # exactly unit population variance
    means = 3.0 + z * stds
    count, variances = active_units(means)
    torch.testing.assert_close(variances, stds**2)
    assert count == 2  # 0.04 and 1.0 exceed 0.01; 0.0025 and 0.0064 do not
    assert active_units(means, threshold=0.005)[0] == 3
    assert active_units(means, threshold=0.0)[0] == 4
    assert active_units(means, threshold=2.0)[0] == 0


def test_active_units_model_and_means_agree(trained, digits_train):
    m = trained[1.0]
    count, variances = active_units(m, digits_train)
    with torch.no_grad():
        means = m.encode(digits_train)[0]
    count2, variances2 = active_units(means)
    assert count == count2
    torch.testing.assert_close(variances, variances2)


def test_posterior_collapse_has_few_active_units(trained, digits_train):
    active = active_units(trained[1.0], digits_train)[0]
    collapsed = active_units(trained[10.0], digits_train)[0]
    assert collapsed <= 1 < 3 <= active, (collapsed, active)
    kl_collapsed = kl_per_dimension(trained[10.0], digits_train)
    assert float(kl_collapsed.sum()) < 0.1


def test_kl_per_dimension_vs_hand(trained, digits_train):
    m = trained[1.0]
    with torch.no_grad():
        mu, log_var = m.encode(digits_train)
    want = (0.5 * (mu**2 + log_var.exp() - 1 - log_var)).mean(0)
    got = kl_per_dimension(m, digits_train)
    assert got.shape == (8,)
    torch.testing.assert_close(got, want)
    q = Normal(mu, torch.exp(0.5 * log_var))
    total = torch.distributions.kl_divergence(q, Normal(0.0, 1.0)).sum(-1).mean()
    torch.testing.assert_close(got.sum(), total, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- reconstruction, ELBO
@pytest.mark.parametrize("likelihood", ["mse", "gaussian", "bernoulli"])
def test_reconstruction_error_vs_hand(likelihood):
    model = _vae(likelihood)
    x = _data(likelihood, b=9)
    got = reconstruction_error(model, x)
    with torch.no_grad():
        mu, _ = model.encode(x)
        out = model.decoder(mu)
        if likelihood == "bernoulli":
            x_hat = torch.sigmoid(out)
            log_lik = Bernoulli(logits=out).log_prob(x).sum(-1).mean()
        else:
            x_hat = out
            var = 0.5 if likelihood == "mse" else 1.0
            log_lik = Normal(out, math.sqrt(var)).log_prob(x).sum(-1).mean()
    assert set(got) == {"mse", "log_lik"}
    assert got["mse"] == pytest.approx(float((x - x_hat).pow(2).sum(-1).mean()), rel=1e-6)
    assert got["log_lik"] == pytest.approx(float(log_lik), rel=1e-6)


def test_elbo_convenience(linear):
    m, x = linear
    torch.testing.assert_close(elbo(m, x), m.analytic_elbo(x).detach())
    vae = _vae("bernoulli")
    xb = _data("bernoulli")
    got = elbo(vae, xb, n_samples=4, generator=torch.Generator().manual_seed(0))
    want = vae.elbo(xb, n_samples=4, generator=torch.Generator().manual_seed(0)).detach()
    torch.testing.assert_close(got, want)
    assert not got.requires_grad


# -------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "call, exc, name",
    [
        (lambda m, x: log_likelihood_is(m, x, k=0), ValueError, "k"),
        (lambda m, x: log_likelihood_is(m, x, k=2.0), TypeError, "k"),
        (lambda m, x: log_likelihood_is(m, x, chunk_size=0), ValueError, "chunk_size"),
        (lambda m, x: log_likelihood_is(m, x[:, :-1]), ValueError, "x"),
        (lambda m, x: log_likelihood_is(m, x[0]), ValueError, "x"),
        (lambda m, x: log_likelihood_is(m, x * float("nan")), ValueError, "x"),
        (lambda m, x: log_likelihood_is(m, x, generator=0), TypeError, "generator"),
        (lambda m, x: log_likelihood_is("model", x), TypeError, "model"),
        (lambda m, x: log_likelihood_is(torch.nn.Linear(2, 2), x), TypeError, "model"),
        (lambda m, x: iwae_curve(m, x, ks=()), ValueError, "ks"),
        (lambda m, x: iwae_curve(m, x, ks=(1, 0)), ValueError, "ks"),
        (lambda m, x: active_units(m), ValueError, "x"),
        (lambda m, x: active_units(x, x), ValueError, "x"),
        (lambda m, x: active_units(x[0]), ValueError, "model_or_means"),
        (lambda m, x: active_units(x[:1]), ValueError, "model_or_means"),
        (lambda m, x: active_units([1.0, 2.0]), TypeError, "model_or_means"),
        (lambda m, x: active_units(x, threshold=-1.0), ValueError, "threshold"),
        (lambda m, x: kl_per_dimension(m, x[:, :3]), ValueError, "x"),
        (lambda m, x: reconstruction_error(m, x.long()), TypeError, "x"),
        (lambda m, x: elbo(m, x, n_samples=0), ValueError, "n_samples"),
    ],
)
def test_bad_inputs_name_the_argument(linear, call, exc, name):
    m, x = linear
    with pytest.raises(exc, match=name):
        call(m, x)
