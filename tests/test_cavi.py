"""Tests for vi_helpers.cavi: the Normal-Gamma model and coordinate-ascent VI.

References are independent of the code under test: the joint density is rebuilt
from ``torch.distributions`` and integrated on a grid (evidence, posterior
moments, KL to the posterior), the closed-form ELBO is compared with a
large-sample Monte Carlo estimate, and the updates with direct quadrature.
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import DT
from torch.distributions import Gamma, Normal, StudentT

from vi_helpers.cavi import (
    CAVIResult,
    MeanFieldNormalGamma,
    NormalGamma,
    NormalGammaModel,
    cavi_update_mu,
    cavi_update_tau,
    gamma_entropy,
)

# (mu0, kappa0, a0, b0), N, seed: a weak prior with few points, an offset prior, more data
CASES = [
    ((0.0, 1.0, 2.0, 2.0), 10, 0),
    ((1.0, 0.5, 3.0, 1.0), 5, 1),
    ((-0.5, 2.0, 2.5, 4.0), 40, 2),
]


def data(n: int, seed: int, loc: float = 0.7, scale: float = 0.9) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return loc + scale * torch.randn(n, generator=g, dtype=DT)


def reference_log_joint(model: NormalGammaModel, x, mu, tau):
    """log p(x, mu, tau) from torch.distributions, written independently of the model."""
    log_prior_tau = Gamma(torch.tensor(model.a0, dtype=DT), torch.tensor(model.b0, dtype=DT)).log_prob(tau)
    log_prior_mu = Normal(model.mu0, torch.rsqrt(model.kappa0 * tau)).log_prob(mu)
    sd = torch.rsqrt(tau)
    log_lik = sum(Normal(mu, sd).log_prob(xn) for xn in x)  # one 0-dim tensor at a time
    return log_lik + log_prior_mu + log_prior_tau


def grid_posterior(model, x, n_grid=700):
    """Posterior on a grid wide enough to hold essentially all the mass."""
    post = model.posterior(x)
    sd_mu = math.sqrt(post.b / (post.kappa * max(post.a - 1.0, 0.5)))
    mus = torch.linspace(post.loc - 14 * sd_mu, post.loc + 14 * sd_mu, n_grid, dtype=DT)
    tau_hi = post.mean_tau + 14 * math.sqrt(post.var_tau)
    taus = torch.linspace(tau_hi / n_grid / 10, tau_hi, n_grid, dtype=DT)
    M, T = torch.meshgrid(mus, taus, indexing="ij")
    log_p = reference_log_joint(model, x, M, T)
    cell = float((mus[1] - mus[0]) * (taus[1] - taus[0]))
    log_z = float(torch.logsumexp(log_p.flatten(), 0)) + math.log(cell)
    log_density = log_p - log_z
    return M, T, torch.exp(log_density) * cell, log_z, log_density


# -- exact posterior and evidence ---------------------------------------------------------


@pytest.mark.parametrize("prior, n, seed", CASES)
def test_posterior_and_evidence_match_grid_integration(prior, n, seed):
    model = NormalGammaModel(*prior)
    x = data(n, seed)
    M, T, w, log_z, _ = grid_posterior(model, x)
    post = model.posterior(x)
    # the Riemann sum of a smooth density decaying at the edges is accurate to ~1e-8
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-9)
    assert model.log_evidence(x) == pytest.approx(log_z, abs=1e-6)
    mean_mu = float((w * M).sum())
    mean_tau = float((w * T).sum())
    assert post.mean_mu == pytest.approx(mean_mu, abs=1e-6)
    assert post.mean_tau == pytest.approx(mean_tau, rel=1e-6)
    assert post.var_mu == pytest.approx(float((w * (M - mean_mu) ** 2).sum()), rel=1e-5)
    assert post.var_tau == pytest.approx(float((w * (T - mean_tau) ** 2).sum()), rel=1e-5)
    # E[mu tau] != E[mu] E[tau] in general, but Cov(mu, tau) = 0 for the Normal-Gamma;
    # the dependence shows up in Var(mu | tau) = 1/(kappa tau), checked next
    cond_var_weighted = float((w * (M - post.loc) ** 2 * T).sum())
    assert cond_var_weighted == pytest.approx(1.0 / post.kappa, rel=1e-5)


@pytest.mark.parametrize("prior, n, seed", CASES)
def test_posterior_density_equals_joint_over_evidence(prior, n, seed):
    model = NormalGammaModel(*prior)
    x = data(n, seed)
    g = torch.Generator().manual_seed(seed + 10)
    mu = torch.randn(7, generator=g, dtype=DT) + 0.5
    tau = torch.rand(7, generator=g, dtype=DT) * 3 + 0.1
    lhs = model.posterior(x).log_prob(mu, tau)
    rhs = reference_log_joint(model, x, mu, tau) - model.log_evidence(x)
    torch.testing.assert_close(lhs, rhs, rtol=0, atol=1e-10)
    torch.testing.assert_close(model.log_joint(x, mu, tau), reference_log_joint(model, x, mu, tau))


def test_normal_gamma_marginals_match_torch_distributions():
    ng = NormalGamma(0.3, 4.0, 3.5, 2.0)
    t = ng.marginal_mu()
    assert isinstance(t, StudentT)
    assert ng.var_mu == pytest.approx(float(t.variance), rel=1e-12)
    assert ng.var_mu == pytest.approx(2.0 / (4.0 * 2.5), rel=1e-12)
    assert ng.mean_tau == pytest.approx(float(ng.marginal_tau().mean), rel=1e-12)
    assert ng.var_tau == pytest.approx(float(ng.marginal_tau().variance), rel=1e-12)
    # the Student-t marginal is the integral of the joint over tau (1-D quadrature)
    taus = torch.linspace(1e-6, 25.0, 200001, dtype=DT)
    for mu in (-1.0, 0.3, 1.7):
        joint = torch.exp(ng.log_prob(torch.full_like(taus, mu), taus))
        marginal = float(torch.trapezoid(joint, taus))
        assert marginal == pytest.approx(float(t.log_prob(torch.tensor(mu, dtype=DT)).exp()), rel=1e-7)
    assert NormalGamma(0.0, 1.0, 0.8, 1.0).var_mu == math.inf


def test_gamma_entropy_matches_torch():
    a = torch.tensor([0.3, 1.0, 2.5, 40.0], dtype=DT)
    b = torch.tensor([0.1, 1.0, 3.0, 7.0], dtype=DT)
    torch.testing.assert_close(gamma_entropy(a, b), Gamma(a, b).entropy())


# -- the updates ----------------------------------------------------------------------------


def test_update_mu_matches_bishop_by_hand():
    x = torch.tensor([1.0, 2.0, 4.0], dtype=DT)
    m, s = cavi_update_mu(x, 0.5, 1.0, 2.0)
    # (2*1 + 7) / (2 + 3) = 1.8 and precision (2 + 3) * 0.5 = 2.5
    assert float(m) == pytest.approx(1.8, abs=1e-14)
    assert float(s) == pytest.approx(2.5**-0.5, abs=1e-14)
    assert m.dtype == DT and s.dtype == DT and m.dim() == 0


def test_update_tau_matches_quadrature_over_q_mu():
    x = data(6, 3)
    mu0, kappa0, a0, b0 = 0.2, 1.5, 2.0, 1.0
    m, sd = 0.4, 1 / 3
    a, b = cavi_update_tau(x, m, sd, mu0, kappa0, a0, b0)
    # E_q(mu)[sum_n (x_n - mu)^2 + kappa0 (mu - mu0)^2] by trapezoid quadrature over q(mu)
    mus = torch.linspace(m - 12 * sd, m + 12 * sd, 20001, dtype=DT)
    dens = Normal(torch.tensor(m, dtype=DT), sd).log_prob(mus).exp()
    inner = ((x.unsqueeze(0) - mus.unsqueeze(1)) ** 2).sum(1) + kappa0 * (mus - mu0) ** 2
    expected = float(torch.trapezoid(dens * inner, mus))
    assert float(a) == pytest.approx(a0 + (6 + 1) / 2, abs=1e-14)
    assert float(b) == pytest.approx(b0 + 0.5 * expected, rel=1e-10)


@pytest.mark.parametrize("prior, n, seed", CASES)
def test_each_update_maximizes_the_elbo_over_its_factor(prior, n, seed):
    """Coordinate optimality: perturbing the freshly updated factor never raises the ELBO."""
    model = NormalGammaModel(*prior)
    x = data(n, seed)
    q0 = MeanFieldNormalGamma(model.mu0 + 1.0, 3.0, 2.0, 5.0)
    m, s = cavi_update_mu(x, q0.e_tau, model.mu0, model.kappa0)
    q1 = MeanFieldNormalGamma(float(m), float(s), q0.a, q0.b)
    a, b = cavi_update_tau(x, q1.m, q1.s, model.mu0, model.kappa0, model.a0, model.b0)
    q2 = MeanFieldNormalGamma(q1.m, q1.s, float(a), float(b))
    best1, best2 = model.elbo(x, q1), model.elbo(x, q2)
    for d in (-0.1, -1e-3, 1e-3, 0.1):
        f = math.exp(d)
        assert model.elbo(x, MeanFieldNormalGamma(q1.m + d, q1.s, q1.a, q1.b)) < best1
        assert model.elbo(x, MeanFieldNormalGamma(q1.m, q1.s * f, q1.a, q1.b)) < best1
        assert model.elbo(x, MeanFieldNormalGamma(q2.m, q2.s, q2.a * f, q2.b)) < best2
        assert model.elbo(x, MeanFieldNormalGamma(q2.m, q2.s, q2.a, q2.b * f)) < best2


# -- the ELBO -------------------------------------------------------------------------------


@pytest.mark.parametrize("prior, n, seed", CASES)
def test_closed_form_elbo_matches_monte_carlo(prior, n, seed):
    model = NormalGammaModel(*prior)
    x = data(n, seed)
    qs = [model.default_init(), model.cavi(x, 10).q, MeanFieldNormalGamma(0.1, 2.0, 1.5, 3.0)]
    S = 200_000
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(100 + seed)  # torch's Gamma sampler takes no generator
        for q in qs:
            mu = q.q_mu().sample((S,))
            tau = q.q_tau().sample((S,))
            w = reference_log_joint(model, x, mu, tau) - q.q_mu().log_prob(mu) - q.q_tau().log_prob(tau)
            se = float(w.std()) / math.sqrt(S)
            # 5 standard errors: a false failure has probability below 1e-6
            assert abs(model.elbo(x, q) - float(w.mean())) < 5 * se


@pytest.mark.parametrize("prior, n, seed", CASES)
def test_elbo_is_log_evidence_minus_kl_to_posterior(prior, n, seed):
    model = NormalGammaModel(*prior)
    x = data(n, seed)
    M, T, _, log_z, log_post = grid_posterior(model, x)
    q = model.cavi(x, 15).q
    cell = float((M[1, 0] - M[0, 0]) * (T[0, 1] - T[0, 0]))
    log_q = q.log_prob(M, T)
    kl_grid = float((log_q.exp() * (log_q - log_post)).sum()) * cell
    assert kl_grid > 0
    assert model.elbo(x, q) == pytest.approx(log_z - kl_grid, abs=1e-5)


@pytest.mark.parametrize("prior, n, seed", CASES)
def test_elbo_never_exceeds_log_evidence(prior, n, seed):
    model = NormalGammaModel(*prior)
    x = data(n, seed)
    log_z = model.log_evidence(x)
    g = torch.Generator().manual_seed(seed)
    for _ in range(200):
        u = torch.rand(4, generator=g, dtype=DT)
        q = MeanFieldNormalGamma(float(4 * u[0] - 2), float(50 * u[1] + 0.01),
                                 float(20 * u[2] + 0.1), float(20 * u[3] + 0.1))
        assert model.elbo(x, q) < log_z
    assert model.cavi(x, 50).elbo.max() < log_z


# -- CAVI -----------------------------------------------------------------------------------


@pytest.mark.parametrize("prior, n, seed", CASES)
@pytest.mark.parametrize("init", [None, (5.0, 0.01, 0.5, 50.0), (-3.0, 100.0, 30.0, 0.2)])
def test_cavi_elbo_is_monotone_and_converges(prior, n, seed, init):
    model = NormalGammaModel(*prior)
    x = data(n, seed)
    init = None if init is None else MeanFieldNormalGamma(*init)
    res = model.cavi(x, 30, init=init)
    assert isinstance(res, CAVIResult)
    assert res.elbo.shape == (61,) and len(res.trace) == 61
    assert res.trace[0] == (init or model.default_init())
    assert float(res.elbo.diff().min()) >= -1e-12
    assert float(res.elbo[-1] - res.elbo[-3]) < 1e-10  # converged
    assert res.elbo[-1] == pytest.approx(model.elbo(x, res.q), abs=1e-14)


@pytest.mark.parametrize("prior, n, seed", CASES)
def test_fixed_point_satisfies_both_updates_and_matches_exact_means(prior, n, seed):
    model = NormalGammaModel(*prior)
    x = data(n, seed)
    q = model.cavi(x, 60).q
    m, s = cavi_update_mu(x, q.e_tau, model.mu0, model.kappa0)
    a, b = cavi_update_tau(x, q.m, q.s, model.mu0, model.kappa0, model.a0, model.b0)
    assert float(m) == pytest.approx(q.m, rel=1e-12, abs=1e-12)
    assert float(s) == pytest.approx(q.s, rel=1e-12)
    assert float(a) == pytest.approx(q.a, rel=1e-12)
    assert float(b) == pytest.approx(q.b, rel=1e-12)
    # at the fixed point the means are exact: E_q[mu] = mu_N and E_q[tau] = a_N / b_N,
    # while Var_q[mu] = Var_p[mu] (a_N - 1) / a_N is too small
    post = model.posterior(x)
    assert q.m == pytest.approx(post.mean_mu, rel=1e-12, abs=1e-12)
    assert q.e_tau == pytest.approx(post.mean_tau, rel=1e-12)
    assert q.var_mu == pytest.approx(post.var_mu * (post.a - 1) / post.a, rel=1e-12)
    assert q.var_mu < post.var_mu and q.var_tau < post.var_tau


def test_sample_is_reproducible_and_leaves_global_rng_alone():
    model = NormalGammaModel(0.0, 1.0, 2.0, 2.0)
    state = torch.get_rng_state()
    a = model.sample(5, generator=torch.Generator().manual_seed(4))
    b = model.sample(5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(torch.get_rng_state(), state)
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    assert a[2].shape == (5,) and a[2].dtype == DT and a[1] > 0


# -- bad inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"kappa0": 0.0}, ValueError, "kappa0"),
        ({"kappa0": -1.0}, ValueError, "kappa0"),
        ({"a0": 0.0}, ValueError, "a0"),
        ({"b0": -2.0}, ValueError, "b0"),
        ({"b0": math.inf}, ValueError, "b0"),
        ({"mu0": math.nan}, ValueError, "mu0"),
        ({"mu0": "0"}, TypeError, "mu0"),
        ({"a0": True}, TypeError, "a0"),
    ],
)
def test_model_rejects_bad_hyperparameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        NormalGammaModel(**kwargs)


@pytest.mark.parametrize(
    "x, exc",
    [
        (torch.ones(2, 3, dtype=DT), ValueError),
        (torch.ones(0, dtype=DT), ValueError),
        (torch.tensor([1.0, math.nan], dtype=DT), ValueError),
        (torch.tensor([1, 2]), TypeError),
        ([1.0, 2.0], TypeError),
    ],
)
def test_methods_reject_bad_x(x, exc):
    model = NormalGammaModel()
    for call in (model.posterior, model.log_evidence, model.cavi,
                 lambda x: model.elbo(x, model.default_init()),
                 lambda x: cavi_update_mu(x, 1.0, 0.0, 1.0),
                 lambda x: cavi_update_tau(x, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0)):
        with pytest.raises(exc, match="x"):
            call(x)


def test_cavi_rejects_bad_arguments():
    model = NormalGammaModel()
    x = data(5, 0)
    with pytest.raises(ValueError, match="n_iter"):
        model.cavi(x, 0)
    with pytest.raises(TypeError, match="n_iter"):
        model.cavi(x, 2.5)
    with pytest.raises(TypeError, match="init"):
        model.cavi(x, 3, init=(0.0, 1.0, 1.0, 1.0))
    with pytest.raises(TypeError, match="q"):
        model.elbo(x, NormalGamma(0.0, 1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="e_tau"):
        cavi_update_mu(x, -1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="s"):
        cavi_update_tau(x, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="n"):
        model.sample(0)


@pytest.mark.parametrize(
    "args, match",
    [((0.0, -1.0, 1.0, 1.0), "s"), ((0.0, 1.0, 0.0, 1.0), "a"),
     ((0.0, 1.0, 1.0, -3.0), "b"), ((math.nan, 1.0, 1.0, 1.0), "m")],
)
def test_mean_field_rejects_bad_parameters(args, match):
    with pytest.raises(ValueError, match=match):
        MeanFieldNormalGamma(*args)


def test_densities_reject_bad_points():
    ng = NormalGamma(0.0, 1.0, 2.0, 1.0)
    with pytest.raises(ValueError, match="tau"):
        ng.log_prob(torch.zeros(3, dtype=DT), torch.tensor([1.0, 0.0, 2.0], dtype=DT))
    with pytest.raises(ValueError, match="mu and tau"):
        ng.log_prob(torch.zeros(3, dtype=DT), torch.ones(2, dtype=DT))
    with pytest.raises(ValueError, match="kappa"):
        NormalGamma(0.0, 0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="a must be .*> 0"):
        gamma_entropy(0.0, 1.0)


# -- issue 11 -----------------------------------------------------------------------------------
@pytest.mark.parametrize("a, b, bad", [(math.nan, 1.0, "a"), (2.0, torch.tensor([math.inf]), "b"),
                                       (torch.ones(1, device="meta"), 1.0, "a")])
def test_gamma_entropy_refuses_nan_and_meta(a, b, bad):
    with pytest.raises(ValueError, match=rf"^{bad} "):
        gamma_entropy(a, b)
