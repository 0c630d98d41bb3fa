"""Tests for vi_helpers.kl against torch.distributions, hand values and quadrature."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import DT
from torch.distributions import (
    Bernoulli,
    Categorical,
    Independent,
    MultivariateNormal,
    Normal,
    kl_divergence,
)

from vi_helpers.kl import (
    cross_entropy_categorical,
    cross_entropy_normal,
    entropy_categorical,
    entropy_normal,
    kl_bernoulli,
    kl_categorical,
    kl_diag_normal,
    kl_full_normal,
    kl_monte_carlo,
    kl_standard_normal,
    kl_standard_normal_per_dim,
    kl_univariate_normal,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rand_normal_params(shape, g):
    mu = torch.randn(shape, generator=g, dtype=DT)
    sigma = torch.exp(0.5 * torch.randn(shape, generator=g, dtype=DT))
    return mu, sigma


def rand_cov(batch, d, g):
    a = torch.randn(*batch, d, d, generator=g, dtype=DT)
    return a @ a.transpose(-2, -1) + 0.5 * torch.eye(d, dtype=DT)


def rand_probs(shape, g):
    return torch.softmax(2.0 * torch.randn(shape, generator=g, dtype=DT), dim=-1)


ELEMENTWISE_SHAPES = [(), (3,), (2, 4), (2, 3, 2)]
VECTOR_SHAPES = [(1,), (5,), (3, 4), (2, 3, 2)]


# -- the two original functions ---------------------------------------------------------


@pytest.mark.parametrize("shape", VECTOR_SHAPES)
def test_kl_standard_normal_matches_torch(shape):
    g = gen(0)
    mu, sigma = rand_normal_params(shape, g)
    log_var = 2 * sigma.log()
    ref = kl_divergence(Normal(mu, sigma), Normal(torch.zeros_like(mu), torch.ones_like(mu)))
    torch.testing.assert_close(kl_standard_normal_per_dim(mu, log_var), ref)
    torch.testing.assert_close(kl_standard_normal(mu, log_var), ref.sum(-1))


# -- closed forms vs torch.distributions ------------------------------------------------


@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
@pytest.mark.parametrize("seed", [1, 2])
def test_kl_univariate_normal_matches_torch(shape, seed):
    g = gen(seed)
    mu_q, sigma_q = rand_normal_params(shape, g)
    mu_p, sigma_p = rand_normal_params(shape, g)
    got = kl_univariate_normal(mu_q, sigma_q, mu_p, sigma_p)
    ref = kl_divergence(Normal(mu_q, sigma_q), Normal(mu_p, sigma_p))
    assert got.shape == torch.Size(shape)
    torch.testing.assert_close(got, ref)
    assert bool((got >= 0).all())


def test_kl_univariate_normal_accepts_numbers():
    # hand value: log 2 + (1 + 1) / 8 - 1/2
    got = kl_univariate_normal(0.0, 1.0, 1.0, 2.0)
    assert got.dim() == 0
    assert float(got) == pytest.approx(math.log(2) + 0.25 - 0.5, rel=1e-6)
    mu_q = torch.tensor([0.0, 1.0], dtype=DT)
    got = kl_univariate_normal(mu_q, 1.0, 0.0, 1.0)
    torch.testing.assert_close(got, 0.5 * mu_q**2)


@pytest.mark.parametrize("shape", VECTOR_SHAPES)
def test_kl_diag_normal_matches_independent(shape):
    g = gen(3)
    mu_q, sigma_q = rand_normal_params(shape, g)
    mu_p, sigma_p = rand_normal_params(shape, g)
    got = kl_diag_normal(mu_q, 2 * sigma_q.log(), mu_p, 2 * sigma_p.log())
    ref = kl_divergence(
        Independent(Normal(mu_q, sigma_q), 1), Independent(Normal(mu_p, sigma_p), 1)
    )
    assert got.shape == torch.Size(shape[:-1])
    torch.testing.assert_close(got, ref)


def test_kl_diag_normal_reduces_to_standard_normal():
    g = gen(4)
    mu, sigma = rand_normal_params((4, 3), g)
    zeros = torch.zeros_like(mu)
    torch.testing.assert_close(
        kl_diag_normal(mu, 2 * sigma.log(), zeros, zeros), kl_standard_normal(mu, 2 * sigma.log())
    )


@pytest.mark.parametrize("batch", [(), (4,), (2, 3)])
@pytest.mark.parametrize("d", [1, 2, 5])
def test_kl_full_normal_matches_multivariate_normal(batch, d):
    g = gen(5 + d)
    mu_q = torch.randn(*batch, d, generator=g, dtype=DT)
    mu_p = torch.randn(*batch, d, generator=g, dtype=DT)
    cov_q, cov_p = rand_cov(batch, d, g), rand_cov(batch, d, g)
    got = kl_full_normal(mu_q, cov_q, mu_p, cov_p)
    ref = kl_divergence(MultivariateNormal(mu_q, cov_q), MultivariateNormal(mu_p, cov_p))
    assert got.shape == torch.Size(batch)
    torch.testing.assert_close(got, ref)


def test_kl_full_normal_with_diagonal_covariances_equals_diag():
    g = gen(6)
    mu_q, sigma_q = rand_normal_params((3, 4), g)
    mu_p, sigma_p = rand_normal_params((3, 4), g)
    got = kl_full_normal(mu_q, torch.diag_embed(sigma_q**2), mu_p, torch.diag_embed(sigma_p**2))
    torch.testing.assert_close(
        got, kl_diag_normal(mu_q, 2 * sigma_q.log(), mu_p, 2 * sigma_p.log())
    )


@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
def test_kl_bernoulli_matches_torch(shape):
    g = gen(7)
    p_q = torch.rand(shape, generator=g, dtype=DT) * 0.98 + 0.01
    p_p = torch.rand(shape, generator=g, dtype=DT) * 0.98 + 0.01
    got = kl_bernoulli(p_q, p_p)
    torch.testing.assert_close(got, kl_divergence(Bernoulli(probs=p_q), Bernoulli(probs=p_p)))


@pytest.mark.parametrize(
    ("p_q", "p_p", "expected"),
    [
        (0.0, 0.5, math.log(2)),  # 0 log 0 = 0: only the (1-p_q) term is left
        (1.0, 0.5, math.log(2)),
        (0.0, 0.0, 0.0),
        (1.0, 1.0, 0.0),
        (0.5, 0.0, math.inf),  # q puts mass on 1, p does not
        (0.0, 1.0, math.inf),
        (0.25, 0.75, 0.5 * math.log(3)),  # 0.25 log(1/3) + 0.75 log 3
    ],
)
def test_kl_bernoulli_boundary_values(p_q, p_p, expected):
    got = kl_bernoulli(torch.tensor([p_q], dtype=DT), torch.tensor([p_p], dtype=DT))
    assert float(got[0]) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("shape", [(2,), (5,), (3, 4), (2, 3, 6)])
def test_kl_categorical_matches_torch(shape):
    g = gen(8)
    q, p = rand_probs(shape, g), rand_probs(shape, g)
    got = kl_categorical(q, p)
    assert got.shape == torch.Size(shape[:-1])
    torch.testing.assert_close(got, kl_divergence(Categorical(probs=q), Categorical(probs=p)))


def test_kl_categorical_zeros_and_infinity():
    q = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]], dtype=DT)
    p = torch.tensor([[0.25, 0.25, 0.5], [0.5, 0.0, 0.5]], dtype=DT)
    got = kl_categorical(q, p)
    assert float(got[0]) == pytest.approx(math.log(2))  # q_k = 0 terms vanish
    assert math.isinf(float(got[1])) and float(got[1]) > 0  # p_k = 0 < q_k


# -- non-negativity, equality, asymmetry ------------------------------------------------


def _equal_cases():
    g = gen(9)
    mu, sigma = rand_normal_params((3, 4), g)
    cov = rand_cov((3,), 4, g)
    probs = rand_probs((3, 4), g)
    p = torch.rand(3, 4, generator=g, dtype=DT)
    return [
        ("univariate", kl_univariate_normal(mu, sigma, mu, sigma)),
        ("diag", kl_diag_normal(mu, sigma.log(), mu, sigma.log())),
        ("full", kl_full_normal(mu, cov, mu, cov)),
        ("bernoulli", kl_bernoulli(p, p)),
        ("categorical", kl_categorical(probs, probs)),
    ]


@pytest.mark.parametrize("case", range(5))
def test_kl_is_zero_at_equality(case):
    _, value = _equal_cases()[case]
    torch.testing.assert_close(value, torch.zeros_like(value), atol=1e-12, rtol=0)


@pytest.mark.parametrize("seed", range(5))
def test_kl_is_nonnegative_on_random_pairs(seed):
    g = gen(100 + seed)
    mu_q, sigma_q = rand_normal_params((50, 3), g)
    mu_p, sigma_p = rand_normal_params((50, 3), g)
    assert bool((kl_univariate_normal(mu_q, sigma_q, mu_p, sigma_p) >= 0).all())
    assert bool((kl_diag_normal(mu_q, sigma_q.log(), mu_p, sigma_p.log()) >= 0).all())
    cov_q, cov_p = rand_cov((50,), 3, g), rand_cov((50,), 3, g)
    assert bool((kl_full_normal(mu_q, cov_q, mu_p, cov_p) >= -1e-12).all())
    assert bool((kl_bernoulli(torch.rand(50, generator=g), torch.rand(50, generator=g)) >= 0).all())
    assert bool((kl_categorical(rand_probs((50, 4), g), rand_probs((50, 4), g)) >= -1e-12).all())


def test_kl_is_asymmetric():
    # KL(N(0,1) || N(1,4)) = log 2 + 2/8 - 1/2; KL(N(1,4) || N(0,1)) = -log 2 + 5/2 - 1/2
    forward = float(kl_univariate_normal(0.0, 1.0, 1.0, 2.0))
    reverse = float(kl_univariate_normal(1.0, 2.0, 0.0, 1.0))
    assert forward == pytest.approx(math.log(2) - 0.25, rel=1e-6)
    assert reverse == pytest.approx(2.0 - math.log(2), rel=1e-6)
    assert reverse > 2 * forward


# -- entropies and cross-entropies ------------------------------------------------------


@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
def test_entropy_normal_matches_torch(shape):
    mu, sigma = rand_normal_params(shape, gen(10))
    torch.testing.assert_close(entropy_normal(2 * sigma.log()), Normal(mu, sigma).entropy())


@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
def test_kl_equals_cross_entropy_minus_entropy_normal(shape):
    g = gen(11)
    mu_q, sigma_q = rand_normal_params(shape, g)
    mu_p, sigma_p = rand_normal_params(shape, g)
    ce = cross_entropy_normal(mu_q, sigma_q, mu_p, sigma_p)
    h = entropy_normal(2 * sigma_q.log())
    torch.testing.assert_close(ce - h, kl_univariate_normal(mu_q, sigma_q, mu_p, sigma_p))
    # H(q, q) = H(q)
    torch.testing.assert_close(cross_entropy_normal(mu_q, sigma_q, mu_q, sigma_q), h)


@pytest.mark.parametrize(
    ("mu_q", "sigma_q", "mu_p", "sigma_p"), [(0.0, 1.0, 1.0, 2.0), (2.0, 0.3, -1.0, 0.7)]
)
def test_cross_entropy_normal_matches_quadrature(mu_q, sigma_q, mu_p, sigma_p):
    # independent reference: -int q(z) log p(z) dz by the trapezoid rule on +-12 sigma_q
    z = torch.linspace(mu_q - 12 * sigma_q, mu_q + 12 * sigma_q, 200_001, dtype=DT)
    q = Normal(torch.tensor(mu_q, dtype=DT), sigma_q)
    integrand = -q.log_prob(z).exp() * Normal(torch.tensor(mu_p, dtype=DT), sigma_p).log_prob(z)
    ref = float(torch.trapezoid(integrand, z))
    assert float(cross_entropy_normal(mu_q, sigma_q, mu_p, sigma_p)) == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("shape", [(2,), (6,), (3, 4)])
def test_entropy_categorical_matches_torch(shape):
    probs = rand_probs(shape, gen(12))
    torch.testing.assert_close(entropy_categorical(probs), Categorical(probs=probs).entropy())


def test_entropy_categorical_extremes():
    uniform = torch.full((5,), 0.2, dtype=DT)
    onehot = torch.tensor([0.0, 1.0, 0.0], dtype=DT)
    assert float(entropy_categorical(uniform)) == pytest.approx(math.log(5))
    assert float(entropy_categorical(onehot)) == 0.0


@pytest.mark.parametrize("shape", [(2,), (6,), (3, 4)])
def test_cross_entropy_categorical(shape):
    g = gen(13)
    q, p = rand_probs(shape, g), rand_probs(shape, g)
    ce = cross_entropy_categorical(q, p)
    # -E_q log p, with E_q from torch's Categorical log_prob over every outcome
    k = shape[-1]
    outcomes = torch.arange(k).reshape(k, *([1] * (len(shape) - 1)))
    ref = -(q.movedim(-1, 0) * Categorical(probs=p).log_prob(outcomes)).sum(0)
    torch.testing.assert_close(ce, ref)
    torch.testing.assert_close(ce - entropy_categorical(q), kl_categorical(q, p))


# -- Monte Carlo ------------------------------------------------------------------------


def _mc_cases():
    g = gen(14)
    mu_q, sigma_q = rand_normal_params((3,), g)
    mu_p, sigma_p = rand_normal_params((3,), g)
    mu2q, s2q = rand_normal_params((2, 4), g)
    mu2p, s2p = rand_normal_params((2, 4), g)
    cov_q, cov_p = rand_cov((2,), 3, g), rand_cov((2,), 3, g)
    m3q, m3p = torch.randn(2, 3, generator=g, dtype=DT), torch.randn(2, 3, generator=g, dtype=DT)
    pq, pp = (
        torch.rand(4, generator=g, dtype=DT) * 0.8 + 0.1,
        torch.rand(4, generator=g, dtype=DT) * 0.8 + 0.1,
    )
    cq, cp = rand_probs((3, 5), g), rand_probs((3, 5), g)
    return {
        "normal": (Normal(mu_q, sigma_q), Normal(mu_p, sigma_p)),
        "independent": (Independent(Normal(mu2q, s2q), 1), Independent(Normal(mu2p, s2p), 1)),
        "mvn": (MultivariateNormal(m3q, cov_q), MultivariateNormal(m3p, cov_p)),
        "bernoulli": (Bernoulli(probs=pq), Bernoulli(probs=pp)),
        "categorical": (Categorical(probs=cq), Categorical(probs=cp)),
    }


@pytest.mark.parametrize("name", ["normal", "independent", "mvn", "bernoulli", "categorical"])
def test_kl_monte_carlo_within_five_standard_errors(name):
    q, p = _mc_cases()[name]
    est, se = kl_monte_carlo(q, p, 20_000, generator=gen(15))
    exact = kl_divergence(q, p)
    assert est.shape == q.batch_shape and se.shape == q.batch_shape
    assert bool((se > 0).all())
    # the estimator is unbiased: each element within 5 standard errors of the exact KL
    assert bool(((est - exact).abs() <= 5 * se).all()), (est, exact, se)
    # and the SE is small enough for this to be a real check
    assert bool((se < 0.05 * exact.abs() + 0.01).all())


def test_kl_monte_carlo_sharp_cases():
    # q == p: every term log q(z) - log p(z) is exactly 0
    q = Normal(torch.randn(4, dtype=DT), torch.ones(4, dtype=DT))
    est, se = kl_monte_carlo(q, Normal(q.loc.clone(), q.scale.clone()), 100, generator=gen(17))
    assert torch.equal(est, torch.zeros(4, dtype=DT)) and torch.equal(se, torch.zeros(4, dtype=DT))
    # nearby normals: terms are -0.1 z + 0.005 with sd 0.1, so the SE is ~7e-4 and an
    # offset of 0.005 would be 7 standard errors away
    q = Normal(torch.zeros((), dtype=DT), torch.ones((), dtype=DT))
    p = Normal(torch.tensor(0.1, dtype=DT), torch.ones((), dtype=DT))
    est, se = kl_monte_carlo(q, p, 20_000, generator=gen(18))
    assert float(se) == pytest.approx(0.1 / math.sqrt(20_000), rel=0.05)
    assert abs(float(est) - 0.005) <= 5 * float(se)


def test_kl_monte_carlo_is_reproducible_differentiable_and_leaves_global_rng():
    mu = torch.tensor([0.3, -1.0], dtype=DT, requires_grad=True)
    q = Normal(mu, torch.ones(2, dtype=DT))
    p = Normal(torch.zeros(2, dtype=DT), torch.ones(2, dtype=DT))
    state = torch.get_rng_state()
    a, _ = kl_monte_carlo(q, p, 100, generator=gen(16))
    b, _ = kl_monte_carlo(q, p, 100, generator=gen(16))
    assert torch.equal(torch.get_rng_state(), state)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    a.sum().backward()  # pathwise gradient through rsample
    assert mu.grad is not None and bool(torch.isfinite(mu.grad).all())


# -- bad inputs -------------------------------------------------------------------------

T = torch.ones(3)
T2 = torch.ones(2)
PROBS = torch.full((2, 4), 0.25)
COV = torch.eye(2).expand(3, 2, 2).clone()
MU = torch.zeros(3, 2)
NOT_PD = torch.tensor([[1.0, 2.0], [2.0, 1.0]]).expand(3, 2, 2).clone()
NOT_SYM = torch.tensor([[1.0, 0.5], [0.0, 1.0]]).expand(3, 2, 2).clone()

BAD = [
    (kl_univariate_normal, (T, -T, T, T), ValueError, "sigma_q"),
    (kl_univariate_normal, (T, T, T, 0 * T), ValueError, "sigma_p"),
    (kl_univariate_normal, (T, T, T2, T), ValueError, "mu_p"),
    (kl_univariate_normal, ([0.0], 1.0, 0.0, 1.0), TypeError, "mu_q"),
    (kl_univariate_normal, (T, T, T, torch.ones(3, dtype=torch.int64)), TypeError, "sigma_p"),
    (kl_univariate_normal, (T, T, T, float("nan")), ValueError, "sigma_p"),
    (kl_diag_normal, (T, T, T, T2), ValueError, "log_var_p"),
    (
        kl_diag_normal,
        (torch.tensor(0.0), torch.tensor(0.0), torch.tensor(0.0), torch.tensor(0.0)),
        ValueError,
        "mu_q",
    ),
    (kl_diag_normal, (T, "x", T, T), TypeError, "log_var_q"),
    (kl_diag_normal, (T, T * float("nan"), T, T), ValueError, "log_var_q"),
    (kl_full_normal, (MU, NOT_PD, MU, COV), ValueError, "cov_q"),
    (kl_full_normal, (MU, COV, MU, NOT_PD), ValueError, "cov_p"),
    (kl_full_normal, (MU, COV, MU, NOT_SYM), ValueError, "cov_p"),
    (kl_full_normal, (MU, COV[0], MU, COV), ValueError, "cov_q"),
    (kl_full_normal, (MU, COV, torch.zeros(3, 3), COV), ValueError, "mu_p"),
    (kl_full_normal, (MU.numpy(), COV, MU, COV), TypeError, "mu_q"),
    (kl_bernoulli, (torch.tensor([1.5]), torch.tensor([0.5])), ValueError, "p_q"),
    (kl_bernoulli, (torch.tensor([0.5]), torch.tensor([-0.1])), ValueError, "p_p"),
    (kl_bernoulli, (torch.tensor([0.5]), torch.tensor([0.5, 0.5])), ValueError, "p_p"),
    (kl_categorical, (PROBS * 2, PROBS), ValueError, "probs_q"),
    (kl_categorical, (PROBS, torch.tensor([[1.2, -0.2], [0.5, 0.5]])), ValueError, "probs_p"),
    (kl_categorical, (PROBS, PROBS[0]), ValueError, "probs_q"),
    (kl_categorical, (PROBS, [0.5, 0.5]), TypeError, "probs_p"),
    (entropy_normal, ([0.0],), TypeError, "log_var"),
    (entropy_normal, (torch.tensor([float("inf")]),), ValueError, "log_var"),
    (cross_entropy_normal, (T, T, T, -T), ValueError, "sigma_p"),
    (cross_entropy_normal, (T, 0 * T, T, T), ValueError, "sigma_q"),
    (entropy_categorical, (PROBS * 0.5,), ValueError, "probs"),
    (cross_entropy_categorical, (PROBS, PROBS * 0.5), ValueError, "probs_p"),
]


@pytest.mark.parametrize(("fn", "args", "exc", "name"), BAD)
def test_bad_inputs_name_the_argument(fn, args, exc, name):
    with pytest.raises(exc, match=name):
        fn(*args)


def _normal(shape):
    return Normal(torch.zeros(shape), torch.ones(shape))


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"q": "normal"}, TypeError, "q"),
        ({"p": torch.zeros(3)}, TypeError, "p"),
        ({"p": _normal(4)}, ValueError, "q and p"),
        ({"p": Independent(_normal((3, 1)), 1)}, ValueError, "q and p"),
        ({"n_samples": 1}, ValueError, "n_samples"),
        ({"n_samples": 10.0}, TypeError, "n_samples"),
        ({"generator": 0}, TypeError, "generator"),
    ],
)
def test_kl_monte_carlo_bad_inputs(kwargs, exc, name):
    args = {"q": _normal(3), "p": _normal(3), "n_samples": 10} | kwargs
    generator = args.pop("generator", None)
    with pytest.raises(exc, match=name):
        kl_monte_carlo(args["q"], args["p"], args["n_samples"], generator=generator)


# -- issue 11: NaN and infinite arguments are refused, naming them --------------------------------
def test_kl_standard_normal_refuses_nan_and_zero_variance():
    from vi_helpers.kl import kl_standard_normal, kl_standard_normal_per_dim

    with pytest.raises(ValueError, match="mu contains 1 NaN"):
        kl_standard_normal(torch.tensor([math.nan, 0.0]), torch.zeros(2))
    with pytest.raises(ValueError, match="log_var contains 1 NaN or infinite"):
        kl_standard_normal(torch.zeros(2), torch.tensor([-math.inf, 0.0]))
    # the per-dimension building block of training losses lets NaN through to the NaN guard
    assert torch.isnan(kl_standard_normal_per_dim(torch.tensor([math.nan]), torch.zeros(1))).all()


def test_rank_messages_say_a_range_not_fifteen_alternatives():
    """Root cause 8: "1 or 2 or 3 ... or 15 dimension(s)"."""
    from vi_helpers.kl import kl_diag_normal

    with pytest.raises(ValueError, match=r"mu_q must have 1 to 15 dimension\(s\), got shape \(\)"):
        kl_diag_normal(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(0.0), torch.tensor(0.0))
