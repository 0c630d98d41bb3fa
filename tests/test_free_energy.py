"""Tests for vi_helpers.free_energy.

References, all independent of the module:

* a :class:`ConjugateGaussianModel` written as a one-dimensional linear VAE, whose
  closed-form ``elbo``, exact ``posterior`` and ``log_evidence`` are the truth;
* linear VAEs (pPCA) with orthogonal decoder columns, whose exact posterior
  ``N(M^-1 W^T (x - b), s2 M^-1)``, ``M = W^T W + s2 I``, is diagonal, so the best
  diagonal Gaussian *is* the posterior and ``F(q*) = -log p(x)``; ``log p(x)`` from
  ``torch.distributions.MultivariateNormal`` and ``KL(q || posterior)`` from
  ``torch.distributions.kl_divergence``;
* ``VariationalAutoencoder.elbo`` replayed with the same random numbers.

Monte Carlo tolerances are stated as a number of standard errors.
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import DT, exact_log_px, exact_posterior, gen, linear_vae_near_posterior
from torch.distributions import MultivariateNormal, kl_divergence

from vi_helpers.free_energy import amortization_gap, free_energy, optimize_local_posterior
from vi_helpers.models import ConjugateGaussianModel, LinearGaussianVAE, VariationalAutoencoder


# -- reference models ---------------------------------------------------------------------------
def _conjugate_as_linear_vae(model: ConjugateGaussianModel, n: int) -> LinearGaussianVAE:
    """z' ~ N(0, 1), x = mu0 + sigma0 z' + noise: the conjugate model with z = mu0 + sigma0 z'."""
    with torch.random.fork_rng():
        vae = LinearGaussianVAE(n, 1).double()
    with torch.no_grad():
        vae.decoder.weight.fill_(model.sigma0)
        vae.decoder.bias.fill_(model.mu0)
        vae.obs_log_var.fill_(2 * math.log(model.sigma))
    return vae


# -- free_energy ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "mu0, sigma0, sigma, m, s",
    [(0.0, 1.0, 1.0, 0.3, 0.5), (1.5, 2.0, 0.7, 2.0, 0.1), (-1.0, 0.5, 2.0, -0.8, 1.5)],
)
def test_free_energy_matches_conjugate_closed_form(mu0, sigma0, sigma, m, s):
    model = ConjugateGaussianModel(mu0, sigma0, sigma)
    x = torch.tensor([0.3, 1.9, -0.4, 1.1], dtype=DT)
    vae = _conjugate_as_linear_vae(model, len(x))
    # q(z) = N(m, s^2) is q(z') = N((m - mu0) / sigma0, (s / sigma0)^2): the ELBO is invariant
    mu = torch.tensor([[(m - mu0) / sigma0]], dtype=DT)
    log_var = torch.tensor([[2 * math.log(s / sigma0)]], dtype=DT)
    S = 20_000
    F_hat = free_energy(vae, x[None], mu, log_var, n_samples=S, generator=gen(1))
    want = -model.elbo(x, m, s)
    # standard error from the per-sample reconstruction terms, drawn again with the same seed
    eps = torch.randn((S, 1, 1), generator=gen(1), dtype=DT)
    z = mu + torch.exp(0.5 * log_var) * eps
    with torch.no_grad():
        per_sample = vae.log_likelihood(x.expand(S, 1, -1), vae.decoder(z))
    se = float(per_sample.std()) / math.sqrt(S)
    assert F_hat.shape == (1,)
    assert abs(float(F_hat.detach()[0]) - float(want)) < 5 * se + 1e-9  # 5 standard errors


def test_free_energy_is_minus_log_px_plus_kl_to_posterior():
    vae, x = linear_vae_near_posterior(perturb=0.3, var_factor=2.0)
    mu, log_var = vae.encode(x)
    S = 20_000
    F_hat = free_energy(vae, x, mu.detach(), log_var.detach(), n_samples=S, generator=gen(2))
    post_mean, post_cov = exact_posterior(vae, x)
    q = MultivariateNormal(mu.detach(), covariance_matrix=torch.diag_embed(log_var.detach().exp()))
    kl = kl_divergence(q, MultivariateNormal(post_mean, covariance_matrix=post_cov))
    want = -exact_log_px(vae, x) + kl
    # the closed-form ELBO of the linear VAE is a second, exact reference
    assert torch.allclose(want, -vae.analytic_elbo(x).detach(), atol=1e-9)
    # MC error of the reconstruction term: sd per sample <= 3 nats here, S = 20,000 -> se < 0.03
    assert torch.allclose(F_hat.detach(), want, atol=0.1)
    assert (F_hat.detach() >= -exact_log_px(vae, x) - 0.1).all()
    assert (kl > 0.05).all()  # the test would notice a missing KL term


def test_free_energy_at_exact_posterior_is_minus_log_px():
    """F(q) >= -log p(x), with equality at the posterior (a diagonal one here)."""
    vae, x = linear_vae_near_posterior()
    post_mean, post_cov = exact_posterior(vae, x)
    log_var = torch.diagonal(post_cov).log().expand_as(post_mean)
    F_post = free_energy(vae, x, post_mean, log_var, n_samples=40_000, generator=gen(3))
    assert torch.allclose(F_post.detach(), -exact_log_px(vae, x), atol=0.05)
    for shift in (0.3, -0.5):  # any other q is worse by its KL to the posterior
        F_other = free_energy(vae, x, post_mean + shift, log_var, n_samples=40_000,
                              generator=gen(3))
        assert (F_other.detach() > F_post.detach() + 0.1).all()


def test_free_energy_equals_minus_vae_elbo_with_same_noise():
    torch.manual_seed(0)
    vae = VariationalAutoencoder(10, 16, 3, likelihood="bernoulli")
    x = torch.rand(4, 10, generator=gen(4))
    mu, log_var = vae.encode(x)
    F_hat = free_energy(vae, x, mu, log_var, n_samples=3, generator=gen(5))
    elbo = vae.elbo(x, n_samples=3, generator=gen(5))
    assert torch.allclose(F_hat, -elbo, atol=1e-5)


def test_free_energy_is_differentiable_in_q():
    vae, x = linear_vae_near_posterior()
    mu = torch.zeros(len(x), 3, dtype=DT, requires_grad=True)
    log_var = torch.zeros(len(x), 3, dtype=DT, requires_grad=True)
    free_energy(vae, x, mu, log_var, n_samples=4, generator=gen(6)).sum().backward()
    assert mu.grad is not None and log_var.grad is not None
    assert mu.grad.abs().sum() > 0 and log_var.grad.abs().sum() > 0


# -- optimize_local_posterior ---------------------------------------------------------------------
@pytest.mark.parametrize("init", ["encoder", "prior"])
def test_local_optimum_is_theexact_posterior(init):
    # a poor encoder: the optimization has to do the work
    vae, x = linear_vae_near_posterior(perturb=0.5, var_factor=3.0)
    mu, log_var, history = optimize_local_posterior(
        vae, x, init=init, n_steps=800, learning_rate=0.05, n_samples=16, seed=0
    )
    post_mean, post_cov = exact_posterior(vae, x)
    q = MultivariateNormal(mu, covariance_matrix=torch.diag_embed(log_var.exp()))
    kl = kl_divergence(q, MultivariateNormal(post_mean, covariance_matrix=post_cov))
    # F(q) + log p(x) = KL(q || posterior): the optimized q reaches the exact-posterior ELBO
    assert (kl < 0.02).all(), kl
    assert torch.allclose(mu, post_mean, atol=0.05)
    assert torch.allclose(log_var.exp(), torch.diagonal(post_cov).expand_as(mu), rtol=0.15)
    assert len(history) == 800
    start = sum(history[:20]) / 20
    end = sum(history[-20:]) / 20
    assert end < start
    assert abs(end + float(exact_log_px(vae, x).mean())) < 0.1  # F -> -log p(x)


def test_local_optimization_leaves_the_model_alone_and_is_repeatable():
    vae, x = linear_vae_near_posterior(perturb=0.2)
    vae.train()
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    rng = torch.get_rng_state()
    out1 = optimize_local_posterior(vae, x, n_steps=30, seed=3)
    out2 = optimize_local_posterior(vae, x, n_steps=30, seed=3)
    assert torch.equal(torch.get_rng_state(), rng)  # the global RNG is untouched
    assert vae.training  # the mode is restored
    assert all(torch.equal(before[k], v) for k, v in vae.state_dict().items())
    assert all(p.grad is None for p in vae.parameters())  # nothing accumulated
    assert torch.equal(out1[0], out2[0]) and torch.equal(out1[1], out2[1])
    assert out1[2] == out2[2]
    assert not out1[0].requires_grad


def test_zero_steps_returns_the_starting_point():
    vae, x = linear_vae_near_posterior(perturb=0.2)
    mu, log_var, history = optimize_local_posterior(vae, x, init="encoder", n_steps=0)
    enc_mu, enc_log_var = vae.encode(x)
    assert torch.equal(mu, enc_mu.detach()) and torch.equal(log_var, enc_log_var.detach())
    assert history == []
    mu, log_var, _ = optimize_local_posterior(vae, x, init="prior", n_steps=0)
    assert torch.equal(mu, torch.zeros_like(mu)) and torch.equal(log_var, torch.zeros_like(mu))


def test_rows_are_optimized_independently():
    """Optimizing a batch is optimizing each row: duplicating a row does not change it."""
    vae, x = linear_vae_near_posterior(perturb=0.3)
    mu_a, _, _ = optimize_local_posterior(vae, x[:2], n_steps=200, seed=1)
    mu_b, _, _ = optimize_local_posterior(vae, x[:2].repeat(3, 1), n_steps=200, seed=1)
    post_mean, _ = exact_posterior(vae, x[:2])
    # both reach the same optimum, up to the Monte Carlo noise of different random numbers
    assert torch.allclose(mu_b[:2], mu_a, atol=0.05)
    assert torch.allclose(mu_b[2:4], post_mean, atol=0.05)


# -- amortization_gap -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gap_case():
    vae, x = linear_vae_near_posterior(perturb=0.05, var_factor=2.5, seed=7)
    # 40,000 evaluation samples: the ELBO estimates have standard errors of about 0.01 nats,
    # so the tolerances of 0.05 below are about 5 standard errors
    out = amortization_gap(vae, x, k=5000, n_steps=600, n_samples=16, n_eval_samples=40_000,
                           seed=0, reduction="none")
    return vae, x, out


def test_amortization_gap_against_exact_values(gap_case):
    vae, x, out = gap_case
    log_px = exact_log_px(vae, x)
    elbo_enc = vae.analytic_elbo(x).detach()
    assert torch.allclose(out["log_px"], log_px, atol=0.03)
    assert torch.allclose(out["elbo_encoder"], elbo_enc, atol=0.05)  # MC, common noise
    # the diagonal family contains the posterior: no approximation gap, all amortization
    assert torch.allclose(out["approximation_gap"], torch.zeros_like(log_px), atol=0.05)
    assert torch.allclose(out["amortization_gap"], log_px - elbo_enc, atol=0.06)
    assert (out["amortization_gap"] > 0.3).all()  # a real gap, not a vacuous test


def test_amortization_gap_decomposition_adds_up(gap_case):
    vae, x, out = gap_case
    total = out["approximation_gap"] + out["amortization_gap"]
    assert torch.allclose(total, out["inference_gap"], atol=1e-9)
    exact_total = exact_log_px(vae, x) - vae.analytic_elbo(x).detach()
    assert torch.allclose(out["inference_gap"], exact_total, atol=0.06)
    assert torch.allclose(out["log_px"] - out["elbo_local"], out["approximation_gap"])


def test_amortization_gap_mean_reduction():
    vae, x = linear_vae_near_posterior(perturb=0.4, seed=8)
    kwargs = dict(k=200, n_steps=50, n_eval_samples=200, seed=2)
    per_example = amortization_gap(vae, x, reduction="none", **kwargs)
    means = amortization_gap(vae, x, **kwargs)
    assert set(means) == {"log_px", "elbo_local", "elbo_encoder", "approximation_gap",
                          "amortization_gap", "inference_gap"}
    for name, value in means.items():
        assert isinstance(value, float)
        assert per_example[name].shape == (len(x),)
        assert value == pytest.approx(float(per_example[name].mean()), abs=1e-12)


def test_amortization_gap_of_a_nonlinear_vae_is_finite_and_ordered():
    torch.manual_seed(0)
    vae = VariationalAutoencoder(12, 16, 2, likelihood="bernoulli")
    x = torch.rand(6, 12, generator=gen(9))
    out = amortization_gap(vae, x, k=400, n_steps=150, n_eval_samples=400)
    assert all(math.isfinite(v) for v in out.values())
    assert out["amortization_gap"] > -0.05  # >= 0 up to Monte Carlo noise
    assert out["log_px"] >= out["elbo_encoder"] - 0.05


# -- bad inputs -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    vae, x = linear_vae_near_posterior()
    mu, log_var = (t.detach() for t in vae.encode(x))
    return vae, x, mu, log_var


@pytest.mark.parametrize(
    "change, exc, match",
    [
        (dict(x=torch.zeros(5, 4, dtype=DT)), ValueError, "x"),
        (dict(x=torch.zeros(6, dtype=DT)), ValueError, "x"),
        (dict(mu=torch.zeros(5, 2, dtype=DT)), ValueError, "mu"),
        (dict(mu=torch.zeros(4, 3, dtype=DT)), ValueError, "mu"),
        (dict(log_var=torch.zeros(5, 2, dtype=DT)), ValueError, "log_var"),
        (dict(log_var=torch.full((5, 3), math.nan, dtype=DT)), ValueError, "log_var"),
        (dict(mu=[[0.0, 0.0, 0.0]]), TypeError, "mu"),
        (dict(n_samples=0), ValueError, "n_samples"),
        (dict(n_samples=1.5), TypeError, "n_samples"),
        (dict(generator=3), TypeError, "generator"),
        (dict(model="vae"), TypeError, "model"),
    ],
)
def test_free_energy_bad_inputs(small, change, exc, match):
    vae, x, mu, log_var = small
    args = dict(model=vae, x=x, mu=mu, log_var=log_var, n_samples=2, generator=None)
    args.update(change)
    with pytest.raises(exc, match=match):
        free_energy(args.pop("model"), args.pop("x"), args.pop("mu"), args.pop("log_var"), **args)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(init="posterior"), ValueError, "init"),
        (dict(n_steps=-1), ValueError, "n_steps"),
        (dict(learning_rate=0.0), ValueError, "learning_rate"),
        (dict(n_samples=0), ValueError, "n_samples"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed=1.0), TypeError, "seed"),
    ],
)
def test_optimize_local_posterior_bad_inputs(small, kwargs, exc, match):
    vae, x, _, _ = small
    with pytest.raises(exc, match=match):
        optimize_local_posterior(vae, x, **kwargs)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(k=0), ValueError, "k"),
        (dict(n_eval_samples=0), ValueError, "n_eval_samples"),
        (dict(chunk_size=0), ValueError, "chunk_size"),
        (dict(reduction="sum"), ValueError, "reduction"),
        (dict(n_steps=-2), ValueError, "n_steps"),
    ],
)
def test_amortization_gap_bad_inputs(small, kwargs, exc, match):
    vae, x, _, _ = small
    with pytest.raises(exc, match=match):
        amortization_gap(vae, x, **kwargs)


def test_bad_model_and_x(small):
    vae, x, _, _ = small
    with pytest.raises(TypeError, match="model"):
        optimize_local_posterior(torch.nn.Linear(3, 3), x)
    with pytest.raises(ValueError, match="x"):
        amortization_gap(vae, x[:, :4])
    with pytest.raises(TypeError, match="x"):
        optimize_local_posterior(vae, x.numpy())


# -- issue 11: parameters of q of another dtype are refused; a diverged search stops ------------
def test_free_energy_refuses_mu_of_another_dtype_naming_both_and_the_fix():
    model = VariationalAutoencoder(4, 8, 2, likelihood="bernoulli")
    x = torch.rand(3, 4)
    mu, log_var = torch.zeros(3, 2, dtype=torch.float64), torch.zeros(3, 2)
    with pytest.raises(TypeError, match=r"mu has dtype torch.float64 but model has torch.float32; "
                                        r"convert it: mu\.float\(\)"):
        free_energy(model, x, mu, log_var)
    # the data x is cast (the dtype rule): float64 x with float32 mu works
    assert free_energy(model, x.double(), mu.float(), log_var).dtype == torch.float32


def test_optimize_local_posterior_stops_when_it_diverges(capsys):
    """Root cause 4: it used to report an internal variable (z contains NaN)."""
    torch.manual_seed(0)
    model = VariationalAutoencoder(4, 8, 2, likelihood="bernoulli")
    mu, log_var, history = optimize_local_posterior(model, torch.rand(3, 4), learning_rate=1e6,
                                                    n_steps=50)
    out = capsys.readouterr().out
    assert "diverged" in out and "learning_rate" in out
    assert len(history) < 50 and bool(torch.isfinite(mu).all() & torch.isfinite(log_var).all())
