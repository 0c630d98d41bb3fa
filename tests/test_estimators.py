"""Tests for vi_helpers.estimators: unbiasedness, closed-form variances, black-box VI."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import DT

from vi_helpers.bbvi import GaussianVIResult, fit_gaussian_vi
from vi_helpers.estimators import (
    pathwise_gradient,
    score_function_gradient,
    true_gradient_quadratic,
    variance_pathwise_quadratic,
    variance_score_function_quadratic,
)
from vi_helpers.models import BayesianLogisticRegression, ConjugateGaussianModel

ESTIMATORS = {"score": score_function_gradient, "pathwise": pathwise_gradient}
# (mu, sigma, k) for f(z) = (z - k)^2
POINTS = [(1.0, 1.0, 0.0), (0.0, 1.0, 0.0), (2.0, 0.5, 1.0), (-1.0, 2.0, 0.5)]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def quadratic(k):
    return lambda z: (z - k).pow(2)


def scalar(v):
    return torch.tensor(v, dtype=DT)


# -- closed forms -----------------------------------------------------------------------


def test_closed_forms_at_mu1_sigma1_k0():
    # Mohamed et al. (2020): score-function variance 30 vs pathwise 4 for the mean
    assert [float(v) for v in true_gradient_quadratic(1.0, 1.0, 0.0)] == [2.0, 2.0]
    assert [float(v) for v in variance_score_function_quadratic(1.0, 1.0, 0.0)] == [30.0, 136.0]
    assert [float(v) for v in variance_pathwise_quadratic(1.0, 1.0, 0.0)] == [4.0, 12.0]


def test_closed_forms_are_elementwise_over_tensors():
    mu = torch.tensor([p[0] for p in POINTS], dtype=DT)
    sigma = torch.tensor([p[1] for p in POINTS], dtype=DT)
    k = torch.tensor([p[2] for p in POINTS], dtype=DT)
    for fn in (
        true_gradient_quadratic,
        variance_score_function_quadratic,
        variance_pathwise_quadratic,
    ):
        vec = fn(mu, sigma, k)
        for i, point in enumerate(POINTS):
            for a, b in zip(vec, fn(*point), strict=True):
                assert float(a[i]) == pytest.approx(float(b), rel=1e-12)


# -- unbiasedness -----------------------------------------------------------------------


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize(
    ("estimator", "kwargs"),
    [
        ("score", {}),
        ("score", {"baseline": "mean"}),
        ("score", {"baseline": 1.5}),
        ("pathwise", {}),
    ],
)
def test_estimators_are_unbiased(point, estimator, kwargs):
    mu, sigma, k = point
    n = 200_000
    g_mu, g_sigma = ESTIMATORS[estimator](
        quadratic(k), scalar(mu), scalar(sigma), n, generator=gen(1), **kwargs
    )
    assert g_mu.shape == (n,) and g_sigma.shape == (n,)
    for est, exact in zip((g_mu, g_sigma), true_gradient_quadratic(mu, sigma, k), strict=True):
        se = float(est.std() / math.sqrt(n))
        # 5 standard errors of the Monte Carlo mean
        assert abs(float(est.mean()) - float(exact)) <= 5 * se, (
            float(est.mean()),
            float(exact),
            se,
        )


@pytest.mark.parametrize("estimator", ["score", "pathwise"])
def test_vector_parameters_unbiased(estimator):
    mu = torch.tensor([1.0, 0.0, 2.0], dtype=DT)
    sigma = torch.tensor([1.0, 1.0, 0.5], dtype=DT)
    k = torch.tensor([0.0, 0.0, 1.0], dtype=DT)
    n = 200_000
    g_mu, g_sigma = ESTIMATORS[estimator](
        lambda z: (z - k).pow(2).sum(-1), mu, sigma, n, generator=gen(2)
    )
    assert g_mu.shape == (n, 3) and g_sigma.shape == (n, 3)
    for est, exact in zip((g_mu, g_sigma), true_gradient_quadratic(mu, sigma, k), strict=True):
        se = est.std(0) / math.sqrt(n)
        assert bool(((est.mean(0) - exact).abs() <= 5 * se).all())


# -- variances vs closed forms ----------------------------------------------------------


def _check_variance(est: torch.Tensor, exact: float) -> None:
    """Sample variance within 5 standard errors of ``exact``.

    SE of the sample variance: sqrt((m4 - v^2) / n) with m4 the fourth central
    moment. The score function's sigma-component is heavy-tailed (kurtosis ~ 270),
    so its relative SE at n = 1e6 is ~1.6%; we also require the relative SE to be
    under 3% so that the check is sharp.
    """
    n = est.shape[0]
    c = est - est.mean()
    var = float(c.pow(2).mean())
    se = math.sqrt(max(float(c.pow(4).mean()) - var**2, 0.0) / n)
    assert se < 0.03 * exact
    assert abs(var - exact) <= 5 * se, (var, exact, se)


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("estimator", ["score", "pathwise"])
def test_single_sample_variances_match_closed_forms(point, estimator):
    mu, sigma, k = point
    g_mu, g_sigma = ESTIMATORS[estimator](
        quadratic(k), scalar(mu), scalar(sigma), 1_000_000, generator=gen(3)
    )
    closed = {"score": variance_score_function_quadratic, "pathwise": variance_pathwise_quadratic}
    var_mu, var_sigma = closed[estimator](mu, sigma, k)
    _check_variance(g_mu, float(var_mu))
    _check_variance(g_sigma, float(var_sigma))


def test_variance_at_mu1_sigma1_k0_is_30_vs_4():
    n = 1_000_000
    sf, _ = score_function_gradient(quadratic(0.0), scalar(1.0), scalar(1.0), n, generator=gen(4))
    pw, _ = pathwise_gradient(quadratic(0.0), scalar(1.0), scalar(1.0), n, generator=gen(4))
    assert float(sf.var()) == pytest.approx(30.0, rel=0.03)
    assert float(pw.var()) == pytest.approx(4.0, rel=0.01)


def test_pathwise_vector_variances_are_per_coordinate():
    # with a separable f, each coordinate's pathwise gradient only sees its own z_d
    mu = torch.tensor([1.0, 2.0], dtype=DT)
    sigma = torch.tensor([1.0, 0.5], dtype=DT)
    k = torch.tensor([0.0, 1.0], dtype=DT)
    g_mu, g_sigma = pathwise_gradient(
        lambda z: (z - k).pow(2).sum(-1), mu, sigma, 1_000_000, generator=gen(5)
    )
    var_mu, var_sigma = variance_pathwise_quadratic(mu, sigma, k)
    for d in range(2):
        _check_variance(g_mu[:, d], float(var_mu[d]))
        _check_variance(g_sigma[:, d], float(var_sigma[d]))


@pytest.mark.parametrize("point", POINTS)
def test_baselines_reduce_score_function_variance(point):
    mu, sigma, k = point
    n = 200_000
    args = (quadratic(k), scalar(mu), scalar(sigma), n)
    plain = score_function_gradient(*args, generator=gen(6))
    loo = score_function_gradient(*args, baseline="mean", generator=gen(6))
    # E f = (mu - k)^2 + sigma^2 is the natural constant baseline
    const = score_function_gradient(
        *args, baseline=scalar((mu - k) ** 2 + sigma**2), generator=gen(6)
    )
    for i in range(2):
        assert float(loo[i].var()) < 0.9 * float(plain[i].var())
        assert float(const[i].var()) < 0.9 * float(plain[i].var())


# -- behaviour --------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ["score", "pathwise"])
def test_estimators_are_reproducible_and_leave_inputs_alone(estimator):
    mu = scalar(0.3).requires_grad_(True)
    sigma = scalar(1.2)
    state = torch.get_rng_state()
    a = ESTIMATORS[estimator](quadratic(0.0), mu, sigma, 50, generator=gen(7))
    b = ESTIMATORS[estimator](quadratic(0.0), mu, sigma, 50, generator=gen(7))
    assert torch.equal(torch.get_rng_state(), state)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
        assert not x.requires_grad
    assert mu.grad is None


def test_pathwise_works_under_no_grad_and_matches_derivative():
    with torch.no_grad():
        g_mu, g_sigma = pathwise_gradient(
            lambda z: torch.sin(z), scalar(0.4), scalar(0.7), 1000, generator=gen(8)
        )
    eps = torch.randn(1000, generator=gen(8), dtype=DT)  # the estimator's own noise
    z = 0.4 + 0.7 * eps
    torch.testing.assert_close(g_mu, torch.cos(z))
    torch.testing.assert_close(g_sigma, torch.cos(z) * eps)


@pytest.mark.parametrize("baseline", [None, 0.7, "mean"])
def test_score_function_single_sample_formula(baseline):
    mu, sigma = torch.tensor([0.4, -1.0], dtype=DT), torch.tensor([0.7, 2.0], dtype=DT)
    f = lambda z: torch.cos(z).sum(-1)
    g_mu, g_sigma = score_function_gradient(f, mu, sigma, 1000, baseline=baseline, generator=gen(8))
    eps = torch.randn(1000, 2, generator=gen(8), dtype=DT)  # the estimator's own noise
    fz = f(mu + sigma * eps)
    if baseline == "mean":
        b = (fz.sum() - fz) / 999
    else:
        b = 0.0 if baseline is None else baseline
    w = (fz - b).unsqueeze(-1)
    # d/dmu log N(z; mu, sigma^2) = eps / sigma; d/dsigma = (eps^2 - 1) / sigma
    torch.testing.assert_close(g_mu, w * eps / sigma)
    torch.testing.assert_close(g_sigma, w * (eps.pow(2) - 1) / sigma)


def test_score_function_accepts_black_box_f():
    # a step function: no useful derivative, but the score function is still unbiased
    f = lambda z: (z > 0).to(z.dtype)
    mu, sigma, n = 0.3, 1.0, 200_000
    g_mu, _ = score_function_gradient(f, scalar(mu), scalar(sigma), n, generator=gen(9))
    exact = math.exp(-0.5 * (mu / sigma) ** 2) / (
        sigma * math.sqrt(2 * math.pi)
    )  # d/dmu Phi(mu/sigma)
    assert abs(float(g_mu.mean()) - exact) <= 5 * float(g_mu.std()) / math.sqrt(n)


# -- black-box VI -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def conjugate():
    model = ConjugateGaussianModel(mu0=0.5, sigma0=2.0, sigma=1.0)
    _, x = model.sample(20, generator=gen(10))
    return model, x


@pytest.mark.parametrize(
    ("estimator", "n_steps", "n_samples", "lr"),
    [("pathwise", 400, 16, 0.05), ("score", 800, 64, 0.03)],
)
def test_fit_gaussian_vi_recovers_conjugate_posterior(conjugate, estimator, n_steps, n_samples, lr):
    model, x = conjugate
    post = model.posterior(x)
    state = torch.get_rng_state()
    result = fit_gaussian_vi(
        lambda z: model.log_joint(x, z.squeeze(-1)),
        1,
        n_steps=n_steps,
        n_samples=n_samples,
        learning_rate=lr,
        estimator=estimator,
        seed=0,
    )
    assert torch.equal(torch.get_rng_state(), state)
    assert isinstance(result, GaussianVIResult)
    assert result.mu.shape == (1,) and result.log_sigma.shape == (1,)
    assert not result.mu.requires_grad
    assert len(result.elbo_history) == n_steps
    assert all(isinstance(v, float) for v in result.elbo_history)
    # posterior sd is 0.22; Adam's final iterate jitters by a few hundredths
    assert float(result.mu) == pytest.approx(float(post.mean), abs=0.1)
    assert float(result.sigma) == pytest.approx(float(post.stddev), rel=0.15)
    # the ELBO climbs to (about) log p(x): the exact posterior is in the family
    log_ev = float(model.log_evidence(x))
    late = sum(result.elbo_history[-100:]) / 100
    assert sum(result.elbo_history[:10]) / 10 < late - 5
    assert abs(late - log_ev) < 0.2


def test_fit_gaussian_vi_seed_is_reproducible(conjugate):
    model, x = conjugate
    kw = {"n_steps": 20, "n_samples": 4, "learning_rate": 0.1, "seed": 3}
    lj = lambda z: model.log_joint(x, z.squeeze(-1))
    a, b = fit_gaussian_vi(lj, 1, **kw), fit_gaussian_vi(lj, 1, **kw)
    assert torch.equal(a.mu, b.mu) and a.elbo_history == b.elbo_history
    c = fit_gaussian_vi(lj, 1, **(kw | {"seed": 4}))
    assert not torch.equal(a.mu, c.mu)


def test_fit_gaussian_vi_on_bayesian_logistic_regression():
    g = gen(11)
    x = torch.randn(40, 2, generator=g)
    w_true = torch.tensor([1.5, -1.0])
    y = (torch.rand(40, generator=g) < torch.sigmoid(x @ w_true)).float()
    model = BayesianLogisticRegression(x, y, prior_precision=1.0)
    result = fit_gaussian_vi(
        model.log_joint,
        2,
        n_steps=600,
        n_samples=16,
        learning_rate=0.05,
        seed=0,
        init_mu=torch.zeros(2),
    )
    w1, w2, density, log_z = model.grid_posterior(lim=5.0, n=201)
    cell = (w1[1] - w1[0]) ** 2
    mean_grid = torch.stack([(density * w1).sum() * cell, (density * w2[:, None]).sum() * cell])
    # Gaussian VI's mean lands near the (slightly skewed) posterior mean
    torch.testing.assert_close(result.mu, mean_grid, atol=0.15, rtol=0)
    # the ELBO lower-bounds the log evidence
    assert sum(result.elbo_history[-100:]) / 100 < log_z + 0.05


# -- bad inputs -------------------------------------------------------------------------

MU, SIGMA = torch.zeros(3), torch.ones(3)
F = lambda z: z.pow(2).sum(-1)


@pytest.mark.parametrize("estimator", ["score", "pathwise"])
@pytest.mark.parametrize(
    ("args", "exc", "name"),
    [
        (("f", MU, SIGMA, 5), TypeError, "f"),
        ((F, [0.0], SIGMA, 5), TypeError, "mu"),
        ((F, MU, -SIGMA, 5), ValueError, "sigma"),
        ((F, MU, torch.zeros(3), 5), ValueError, "sigma"),
        ((F, MU, torch.ones(2), 5), ValueError, "sigma"),
        ((F, MU, SIGMA, 0), ValueError, "n_samples"),
        ((F, MU, SIGMA, 5.0), TypeError, "n_samples"),
        ((lambda z: z.pow(2), MU, SIGMA, 5), ValueError, "f"),  # (S, 3), not (S,)
        ((lambda z: z.sum(-1).tolist(), MU, SIGMA, 5), TypeError, "f"),
        ((lambda z: z.sum(-1) / 0.0, MU, SIGMA, 5), ValueError, "f"),
    ],
)
def test_estimator_bad_inputs(estimator, args, exc, name):
    with pytest.raises(exc, match=name):
        ESTIMATORS[estimator](*args)


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"baseline": "median"}, ValueError, "baseline"),
        ({"baseline": [1.0]}, TypeError, "baseline"),
        ({"baseline": torch.ones(3)}, ValueError, "baseline"),
        ({"baseline": math.nan}, ValueError, "baseline"),
        ({"generator": 1}, TypeError, "generator"),
    ],
)
def test_score_function_bad_options(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        score_function_gradient(F, MU, SIGMA, 5, **kwargs)


def test_score_function_loo_baseline_needs_two_samples():
    with pytest.raises(ValueError, match="n_samples"):
        score_function_gradient(F, MU, SIGMA, 1, baseline="mean")


def test_pathwise_refuses_non_differentiable_f():
    with pytest.raises(ValueError, match="f"):
        pathwise_gradient(lambda z: torch.from_numpy(z.detach().numpy()).sum(-1), MU, SIGMA, 5)


@pytest.mark.parametrize(
    "fn", [true_gradient_quadratic, variance_score_function_quadratic, variance_pathwise_quadratic]
)
@pytest.mark.parametrize(
    ("args", "exc", "name"),
    [
        ((1.0, 0.0, 0.0), ValueError, "sigma"),
        ((1.0, -1.0, 0.0), ValueError, "sigma"),
        ((torch.ones(2), torch.ones(3), 0.0), ValueError, "sigma"),
        (("1", 1.0, 0.0), TypeError, "mu"),
        ((1.0, 1.0, None), TypeError, "k"),
    ],
)
def test_closed_form_bad_inputs(fn, args, exc, name):
    with pytest.raises(exc, match=name):
        fn(*args)


LJ = lambda z: -z.pow(2).sum(-1)
FIT = {"n_steps": 3, "n_samples": 2, "learning_rate": 0.1}


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "name"),
    [
        ((None, 2), {}, TypeError, "log_joint"),
        ((LJ, 0), {}, ValueError, "dim"),
        ((LJ, 2.0), {}, TypeError, "dim"),
        ((LJ, 2), {"n_steps": 0}, ValueError, "n_steps"),
        ((LJ, 2), {"n_samples": -1}, ValueError, "n_samples"),
        ((LJ, 2), {"learning_rate": 0.0}, ValueError, "learning_rate"),
        ((LJ, 2), {"estimator": "reinforce"}, ValueError, "estimator"),
        ((LJ, 2), {"seed": -1}, ValueError, "seed"),
        ((LJ, 2), {"seed": 1.5}, TypeError, "seed"),
        ((LJ, 2), {"init_mu": torch.zeros(3)}, ValueError, "init_mu"),
        ((LJ, 2), {"init_mu": [0.0, 0.0]}, TypeError, "init_mu"),
        ((lambda z: -z.pow(2), 2), {}, ValueError, "log_joint"),  # (S, 2), not (S,)
        ((lambda z: z.sum(-1) / 0.0, 2), {}, ValueError, "log_joint"),
    ],
)
def test_fit_gaussian_vi_bad_inputs(args, kwargs, exc, name):
    with pytest.raises(exc, match=name):
        fit_gaussian_vi(*args, **(FIT | kwargs))


def test_fit_gaussian_vi_reports_divergence():
    # "log p(x, z)" = exp(z) is unbounded above: mu runs off and exp overflows float32
    with pytest.raises(RuntimeError, match="learning_rate"):
        fit_gaussian_vi(
            lambda z: z.exp().sum(-1), 1, n_steps=100, n_samples=2, learning_rate=10.0, seed=0
        )
