"""Tests for vi_helpers.elbo: log-likelihoods vs torch.distributions, ELBO/IWAE vs exact evidence."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import DT
from torch.distributions import Bernoulli, Independent, Normal

from vi_helpers.elbo import (
    bernoulli_log_likelihood,
    elbo_analytic_kl,
    elbo_monte_carlo,
    gaussian_log_likelihood,
    iwae_bound,
    log_mean_exp,
)
from vi_helpers.kl import cross_entropy_normal, kl_univariate_normal
from vi_helpers.models import ConjugateGaussianModel


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- log-likelihoods --------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 6)])
@pytest.mark.parametrize("log_var_kind", ["float", "scalar", "vector"])
def test_gaussian_log_likelihood_matches_normal(shape, log_var_kind):
    g = gen(0)
    x = torch.randn(shape, generator=g, dtype=DT)
    x_hat = torch.randn(shape, generator=g, dtype=DT)
    log_var = {
        "float": -0.7,
        "scalar": torch.tensor(0.4, dtype=DT),
        "vector": torch.randn(shape[-1], generator=g, dtype=DT),
    }[log_var_kind]
    lv = torch.as_tensor(log_var, dtype=DT)
    ref = Normal(x_hat, torch.exp(0.5 * lv).expand(shape)).log_prob(x).sum(-1)
    got = gaussian_log_likelihood(x, x_hat, log_var)
    assert got.shape == torch.Size(shape[:-1])
    torch.testing.assert_close(got, ref)


@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 6)])
def test_bernoulli_log_likelihood_matches_bernoulli(shape):
    g = gen(1)
    x = (torch.rand(shape, generator=g, dtype=DT) > 0.5).to(DT)
    logits = 3 * torch.randn(shape, generator=g, dtype=DT)
    ref = Bernoulli(logits=logits).log_prob(x).sum(-1)
    torch.testing.assert_close(bernoulli_log_likelihood(x, logits), ref)


def test_bernoulli_log_likelihood_is_stable_for_large_logits():
    x = torch.tensor([[1.0, 0.0]], dtype=DT)
    logits = torch.tensor([[200.0, -200.0]], dtype=DT)
    torch.testing.assert_close(bernoulli_log_likelihood(x, logits), torch.zeros(1, dtype=DT))


# -- the conjugate model: exact posterior and evidence ----------------------------------


@pytest.fixture(scope="module")
def conjugate():
    model = ConjugateGaussianModel(mu0=0.5, sigma0=2.0, sigma=1.0)
    _, x = model.sample(10, generator=gen(2))
    return model, x.to(DT)


def _log_joint(model, x):
    return lambda z: model.log_joint(x, z)


@pytest.mark.parametrize(("q_mu", "q_sigma"), [(0.0, 1.0), (1.5, 0.3), (-1.0, 2.0)])
def test_elbo_monte_carlo_matches_closed_form(conjugate, q_mu, q_sigma):
    model, x = conjugate
    # R independent replicate estimates (a batched q), each from S samples
    R, S = 400, 50
    q = Normal(torch.full((R,), q_mu, dtype=DT), torch.full((R,), q_sigma, dtype=DT))
    est = elbo_monte_carlo(_log_joint(model, x), q, S, generator=gen(3))
    assert est.shape == (R,)
    exact = float(model.elbo(x, q_mu, q_sigma))
    se = float(est.std() / math.sqrt(R))
    # unbiased: the mean of the replicates lies within 5 standard errors
    assert abs(float(est.mean()) - exact) <= 5 * se, (float(est.mean()), exact, se)
    assert se < 0.05 * abs(exact)


def test_elbo_monte_carlo_at_posterior_equals_log_evidence(conjugate):
    model, x = conjugate
    # at q = p(z | x), log p(x, z) - log q(z) = log p(x) for every z: zero variance
    est = elbo_monte_carlo(_log_joint(model, x), model.posterior(x), 5, generator=gen(4))
    assert float(est) == pytest.approx(float(model.log_evidence(x)), abs=1e-6)


def test_elbo_monte_carlo_gradient_is_pathwise(conjugate):
    model, x = conjugate
    R = 2000
    m = torch.full((R,), 1.5, dtype=DT, requires_grad=True)
    s = torch.full((R,), 0.3, dtype=DT, requires_grad=True)
    est = elbo_monte_carlo(_log_joint(model, x), Normal(m, s), 1, generator=gen(5))
    est.sum().backward()  # replicate r's gradient lands in m.grad[r]
    m0 = torch.tensor(1.5, dtype=DT, requires_grad=True)
    s0 = torch.tensor(0.3, dtype=DT, requires_grad=True)
    model.elbo(x, m0, s0).backward()
    for got, exact in ((m.grad, m0.grad), (s.grad, s0.grad)):
        se = float(got.std() / math.sqrt(R))
        assert abs(float(got.mean()) - float(exact)) <= 5 * se + 1e-9


def test_elbo_is_below_log_evidence_with_equality_at_posterior(conjugate):
    model, x = conjugate
    g = gen(6)
    q_mu = 3 * torch.randn(500, generator=g, dtype=DT)
    q_sigma = torch.exp(torch.randn(500, generator=g, dtype=DT))
    log_ev = float(model.log_evidence(x))
    elbo = model.elbo(x, q_mu, q_sigma)
    assert bool((elbo < log_ev).all())
    post = model.posterior(x)
    assert float(model.elbo(x, post.mean, post.stddev)) == pytest.approx(log_ev, abs=1e-6)
    # the gap is KL(q || posterior)
    gap = log_ev - elbo
    torch.testing.assert_close(
        gap, kl_univariate_normal(q_mu, q_sigma, post.mean.expand(500), post.stddev.expand(500))
    )


@pytest.mark.parametrize(("q_mu", "q_sigma"), [(0.0, 1.0), (1.5, 0.3)])
def test_elbo_analytic_kl_reproduces_closed_form(conjugate, q_mu, q_sigma):
    model, x = conjugate
    n = x.numel()
    # E_q log N(x_i; z, sigma^2) = -H(q, N(x_i, sigma^2)) because N(x; z, s) = N(z; x, s)
    q_mu_t = torch.full((n,), q_mu, dtype=DT)
    expected_ll = -cross_entropy_normal(q_mu_t, q_sigma, x, model.sigma).sum()
    kl = kl_univariate_normal(torch.tensor(q_mu, dtype=DT), q_sigma, model.mu0, model.sigma0)
    got = elbo_analytic_kl(expected_ll, kl)
    assert float(got) == pytest.approx(float(model.elbo(x, q_mu, q_sigma)), abs=1e-9)


def test_iwae_bound_increases_with_k_and_approaches_log_evidence(conjugate):
    model, x = conjugate
    q = Normal(torch.tensor(1.0, dtype=DT), torch.tensor(1.0, dtype=DT))  # a poor q
    log_ev = float(model.log_evidence(x))
    elbo = float(model.elbo(x, 1.0, 1.0))
    # R replicates; L_K of replicate r uses the first K of its samples (common random
    # numbers), so differences L_K' - L_K have a small standard error.
    R, ks = 2000, (1, 4, 16, 64, 256)
    z = q.mean + q.stddev * torch.randn(ks[-1], R, generator=gen(9), dtype=DT)
    log_w = model.log_joint(x, z) - q.log_prob(z)
    bounds = [iwae_bound(log_w[:k]) for k in ks]
    assert all(b.shape == (R,) for b in bounds)
    means = [float(b.mean()) for b in bounds]
    ses = [float(b.std() / math.sqrt(R)) for b in bounds]
    # K = 1 is the ELBO: within 5 standard errors of the closed form
    assert abs(means[0] - elbo) <= 5 * ses[0]
    # the average bound increases with K ...
    assert all(b > a for a, b in zip(means, means[1:], strict=False)), means
    # ... significantly (> 5 standard errors of the paired difference) for small K
    for k in range(2):
        diff = bounds[k + 1] - bounds[k]
        assert float(diff.mean()) > 5 * float(diff.std() / math.sqrt(R))
    # it stays below log p(x) up to noise, and K = 256 closes > 99% of the ELBO's gap
    assert all(m <= log_ev + 5 * s for m, s in zip(means, ses, strict=True))
    assert log_ev - means[-1] < 0.01 * (log_ev - elbo)


def test_iwae_bound_k1_equals_log_weight_and_mean():
    log_w = torch.randn(1, 7, dtype=DT)
    torch.testing.assert_close(iwae_bound(log_w), log_w[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(iwae_bound(log_w), log_w.mean(0), rtol=0, atol=1e-12)


def test_iwae_bound_matches_naive_formula_and_is_stable():
    log_w = torch.randn(5, 3, dtype=DT)
    naive = torch.log(torch.exp(log_w).mean(0))
    torch.testing.assert_close(iwae_bound(log_w), naive)
    shifted = iwae_bound(log_w - 1000.0)  # exp(-1000) underflows in the naive formula
    torch.testing.assert_close(shifted, naive - 1000.0)
    # -inf weights are zero weights
    with_zero = torch.tensor([0.0, -math.inf], dtype=DT)
    assert float(iwae_bound(with_zero)) == pytest.approx(math.log(0.5))


@pytest.mark.parametrize(("shape", "dim"), [((4,), 0), ((3, 5), 1), ((3, 5), -1), ((2, 3, 4), 1)])
def test_log_mean_exp(shape, dim):
    x = 3 * torch.randn(shape, generator=gen(7), dtype=DT)
    ref = torch.log(torch.exp(x).mean(dim))
    torch.testing.assert_close(log_mean_exp(x, dim), ref)
    torch.testing.assert_close(log_mean_exp(x, dim, keepdim=True), ref.unsqueeze(dim))
    torch.testing.assert_close(log_mean_exp(x - 2000.0, dim), ref - 2000.0)


def test_elbo_monte_carlo_independent_q_and_rng_hygiene(conjugate):
    # event dims: q over a (3,)-vector, log_joint sums three independent copies
    model, x = conjugate
    q = Independent(Normal(torch.zeros(2, 3, dtype=DT), torch.ones(2, 3, dtype=DT)), 1)
    log_joint = lambda z: model.log_joint(x, z).sum(-1)
    state = torch.get_rng_state()
    a = elbo_monte_carlo(log_joint, q, 4000, generator=gen(8))
    b = elbo_monte_carlo(log_joint, q, 4000, generator=gen(8))
    assert torch.equal(torch.get_rng_state(), state)
    assert a.shape == (2,)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    exact = 3 * float(model.elbo(x, 0.0, 1.0))
    # SE of 4000 samples: estimated from one large run's spread, 5 sigma
    z = q.sample((4000,))
    se = float((log_joint(z) - q.log_prob(z)).std() / math.sqrt(4000))
    assert bool(((a - exact).abs() <= 5 * se).all())


# -- bad inputs -------------------------------------------------------------------------

Q = Normal(torch.zeros(3), torch.ones(3))
GOOD_LJ = lambda z: -z.pow(2)


@pytest.mark.parametrize(
    ("call", "exc", "name"),
    [
        (lambda: elbo_monte_carlo("f", Q, 3), TypeError, "log_joint"),
        (lambda: elbo_monte_carlo(GOOD_LJ, "q", 3), TypeError, "q"),
        (lambda: elbo_monte_carlo(GOOD_LJ, Q, 0), ValueError, "n_samples"),
        (lambda: elbo_monte_carlo(GOOD_LJ, Q, 2.5), TypeError, "n_samples"),
        (lambda: elbo_monte_carlo(GOOD_LJ, Q, 3, generator=1), TypeError, "generator"),
        (lambda: elbo_monte_carlo(lambda z: z.sum(0), Q, 3), ValueError, "log_joint"),
        (lambda: elbo_monte_carlo(lambda z: 1.0, Q, 3), TypeError, "log_joint"),
        (lambda: elbo_analytic_kl(torch.zeros(3), torch.zeros(2)), ValueError, "kl"),
        (lambda: elbo_analytic_kl([0.0], torch.zeros(1)), TypeError, "expected_log_lik"),
        (lambda: elbo_analytic_kl(torch.zeros(2), -torch.ones(2)), ValueError, "kl"),
        (
            lambda: elbo_analytic_kl(torch.zeros(2), torch.full((2,), float("nan"))),
            ValueError,
            "kl",
        ),
        (lambda: iwae_bound(torch.zeros(0, 3)), ValueError, "log_w"),
        (lambda: iwae_bound(torch.tensor(1.0)), ValueError, "log_w"),
        (lambda: iwae_bound(torch.tensor([0.0, float("nan")])), ValueError, "log_w"),
        (lambda: iwae_bound([0.0]), TypeError, "log_w"),
        (lambda: log_mean_exp(torch.zeros(3), 1), ValueError, "dim"),
        (lambda: log_mean_exp(torch.zeros(3), 0.0), TypeError, "dim"),
        (lambda: log_mean_exp(torch.zeros(0), 0), ValueError, "x"),
        (lambda: log_mean_exp(torch.tensor([float("inf")]), 0), ValueError, "x"),
        (
            lambda: gaussian_log_likelihood(torch.zeros(2, 3), torch.zeros(2, 4)),
            ValueError,
            "x_hat",
        ),
        (
            lambda: gaussian_log_likelihood(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(4)),
            ValueError,
            "log_var",
        ),
        (
            lambda: bernoulli_log_likelihood(torch.full((2, 3), 2.0), torch.zeros(2, 3)),
            ValueError,
            "x",
        ),
        (lambda: bernoulli_log_likelihood(torch.zeros(2, 3), torch.zeros(3)), ValueError, "logits"),
    ],
)
def test_bad_inputs_name_the_argument(call, exc, name):
    with pytest.raises(exc, match=name):
        call()


# -- issue 11: a zero or NaN variance, a NaN log-joint --------------------------------------------
@pytest.mark.parametrize("log_var", [-math.inf, math.nan, torch.tensor([0.0, math.nan])])
def test_gaussian_log_likelihood_refuses_a_zero_or_nan_variance(log_var):
    with pytest.raises(ValueError, match="log_var contains 1 NaN or infinite"):
        gaussian_log_likelihood(torch.zeros(3, 2), torch.zeros(3, 2), log_var)


def test_elbo_monte_carlo_refuses_a_nan_log_joint():
    q = Normal(torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match="log_joint returned NaN"):
        elbo_monte_carlo(lambda z: torch.full(z.shape, math.nan), q, 4)
