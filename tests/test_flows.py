"""Normalizing flows (vi_helpers.flows, vi_helpers.flow_vae) against independent references:
autograd Jacobians, torch.distributions, quadrature on a grid, a known Gaussian posterior,
and the diagonal-Gaussian VAE of vi_helpers.models."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd.functional import jacobian
from torch.distributions import MultivariateNormal

from vi_helpers import evaluate
from vi_helpers.data import load_digits
from vi_helpers.flow_vae import FlowVAE, inference_gaps, optimize_local_flow
from vi_helpers.flows import (
    Banana,
    FlowFamily,
    fit_flow_vi,
    full_covariance_gaussian,
    grid_log_density,
    mean_field_gaussian,
    planar_constrain_u,
    planar_forward,
    planar_inverse,
)
from vi_helpers.train import train_model

DT = torch.float64


def _random_theta(family: FlowFamily, seed: int, *batch: int, scale: float = 0.8):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*batch, family.n_params, generator=g, dtype=DT)


# -- log-determinants against autograd Jacobians ----------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_planar_log_det_matches_autograd_jacobian(seed):
    g = torch.Generator().manual_seed(seed)
    L = 3
    u, w = torch.randn(2, L, generator=g, dtype=DT) * 1.5
    u_hat = planar_constrain_u(u, w)
    b = torch.randn(1, generator=g, dtype=DT)
    for z in torch.randn(5, L, generator=g, dtype=DT):
        J = jacobian(lambda v: planar_forward(v, u_hat, w, b)[0], z)
        _, log_det = planar_forward(z, u_hat, w, b)
        torch.testing.assert_close(log_det, torch.linalg.slogdet(J)[1], rtol=1e-10, atol=1e-10)
        assert torch.linalg.det(J) > 0  # invertible and orientation-preserving


@pytest.mark.parametrize("base", ["full", "diagonal"])
@pytest.mark.parametrize("n_layers", [0, 1, 3])
def test_flow_log_det_matches_autograd_jacobian(base, n_layers):
    family = FlowFamily(3, n_layers, base=base)
    theta = _random_theta(family, 10 + n_layers)
    eps = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=DT)
    z, log_det = family.transform(theta, eps)
    for i in range(eps.shape[0]):
        J = jacobian(lambda e: family.transform(theta, e)[0], eps[i])
        torch.testing.assert_close(log_det[i], torch.linalg.slogdet(J)[1], rtol=1e-10, atol=1e-10)


def test_planar_constraint():
    g = torch.Generator().manual_seed(2)
    u, w = 3 * torch.randn(2, 1000, 4, generator=g, dtype=DT)
    u_hat = planar_constrain_u(u, w)
    assert bool(((w * u_hat).sum(-1) > -1 + 0.99e-3).all())
    keep = (w * u).sum(-1) >= 0
    torch.testing.assert_close(u_hat[keep], u[keep])  # already invertible: unchanged
    zero = planar_constrain_u(torch.zeros(4, dtype=DT), w[0])
    assert bool((zero == 0).all())  # u = 0 is the identity map


def test_planar_parameters_are_not_identifiable_but_order_matters():
    # (u, w, b) -> (-u, -w, -b) gives the same layer (u_hat flips with u and w), so the
    # parameters an encoder predicts are not unique; swapping two layers changes the map.
    family = FlowFamily(2, 2)
    theta = _random_theta(family, 6)
    eps = torch.randn(50, 2, generator=torch.Generator().manual_seed(7), dtype=DT)
    z, log_det = family.transform(theta, eps)
    k = family.n_base_params
    flipped = torch.cat([theta[:k], -theta[k:]])
    z_flip, log_det_flip = family.transform(flipped, eps)
    torch.testing.assert_close(z_flip, z, rtol=0, atol=1e-14)
    torch.testing.assert_close(log_det_flip, log_det, rtol=0, atol=1e-14)
    n = 2 * family.dim + 1
    swapped = torch.cat([theta[:k], theta[k + n :], theta[k : k + n]])
    assert float((family.transform(swapped, eps)[0] - z).abs().max()) > 1e-3


# -- inverses and densities -------------------------------------------------------------------
def test_planar_inverse_roundtrip_near_non_invertible_limit():
    g = torch.Generator().manual_seed(3)
    w = torch.randn(2, generator=g, dtype=DT)
    u = -0.999 * w / w.pow(2).sum()  # w^T u = -0.999: nearly singular, still invertible
    u_hat = planar_constrain_u(u, w)
    z = 2 * torch.randn(200, 2, generator=g, dtype=DT)
    y, _ = planar_forward(z, u_hat, w, torch.tensor([0.3], dtype=DT))
    torch.testing.assert_close(planar_inverse(y, u_hat, w, torch.tensor([0.3], dtype=DT)), z)


def test_flow_inverse_and_batched_parameters():
    family = FlowFamily(2, 3)
    theta = _random_theta(family, 4, 5)  # 5 flows, one per "data point"
    z, log_q = family.sample_and_log_prob(theta, 7, generator=torch.Generator().manual_seed(0))
    assert z.shape == (7, 5, 2) and log_q.shape == (7, 5)
    torch.testing.assert_close(family.log_prob(theta, z), log_q, rtol=1e-9, atol=1e-9)
    for b in range(5):  # the batch rows are independent flows
        torch.testing.assert_close(family.log_prob(theta[b], z[:, b]), log_q[:, b])


def test_gaussian_families_match_torch_distributions():
    family = full_covariance_gaussian(3)
    theta = _random_theta(family, 5)
    m, C = family.base_params(theta)
    reference = MultivariateNormal(m, scale_tril=C)
    z, log_q = family.sample_and_log_prob(theta, 50, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(log_q, reference.log_prob(z))
    torch.testing.assert_close(family.log_prob(theta, z), reference.log_prob(z))
    mf = mean_field_gaussian(3)
    theta_mf = _random_theta(mf, 6)
    m, C = mf.base_params(theta_mf)
    assert torch.equal(C, torch.diag(theta_mf[3:6].exp()))
    assert mf.n_params == 6 and family.n_params == 9 and FlowFamily(3, 2).n_params == 9 + 14


def test_flow_density_integrates_to_one_on_a_grid():
    family = FlowFamily(2, 4)
    theta = _random_theta(family, 7, scale=0.6)
    theta[2:4] = -0.7  # a compact base, so the grid holds the mass
    axis, points, _, _ = grid_log_density(lambda z: z.sum(-1) * 0, 7.0, 401)
    cell = float(axis[1] - axis[0]) ** 2
    mass = float(family.log_prob(theta, points).exp().sum() * cell)
    assert abs(mass - 1.0) < 1e-4


def test_banana_is_normalized_with_the_stated_moments():
    banana = Banana(curvature=0.5, sd=0.35)
    w1, w2, density, log_z = banana.grid_posterior(lim=12.0, n=481)
    assert abs(log_z) < 1e-4
    z2 = w2[:, None].expand_as(density)
    cell = float(w1[1] - w1[0]) ** 2
    var_z2 = float((density * z2.pow(2)).sum() * cell)
    assert abs(var_z2 - (2 * 0.5**2 + 0.35**2)) < 1e-3


# -- fitting by VI ----------------------------------------------------------------------------
def _gaussian_target():
    mean = torch.tensor([1.0, -0.5], dtype=DT)
    cov = torch.tensor([[1.0, 0.8], [0.8, 1.5]], dtype=DT)
    return MultivariateNormal(mean, cov)


def test_fit_reaches_a_known_gaussian_posterior():
    target = _gaussian_target()  # the exact posterior of a conjugate model
    family = full_covariance_gaussian(2)
    fit = fit_flow_vi(target.log_prob, family, n_steps=800, n_samples=64, learning_rate=0.05, seed=0)
    assert fit.status == "completed" and len(fit.elbo_history) == 800
    q = family.gaussian(fit.theta)
    kl = float(torch.distributions.kl_divergence(q, target))
    assert kl < 0.005
    torch.testing.assert_close(q.mean, target.mean, atol=0.05, rtol=0)
    torch.testing.assert_close(q.covariance_matrix, target.covariance_matrix, atol=0.08, rtol=0)


def test_flow_fit_is_repeatable_and_leaves_the_global_rng_alone():
    target = _gaussian_target()
    family = FlowFamily(2, 2)
    state = torch.get_rng_state()
    a = fit_flow_vi(target.log_prob, family, n_steps=50, n_samples=16, learning_rate=0.02, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    b = fit_flow_vi(target.log_prob, family, n_steps=50, n_samples=16, learning_rate=0.02, seed=3)
    assert torch.equal(a.theta, b.theta) and a.elbo_history == b.elbo_history
    c = fit_flow_vi(target.log_prob, family, n_steps=50, n_samples=16, learning_rate=0.02, seed=4)
    assert not torch.equal(a.theta, c.theta)


def test_divergence_keeps_the_last_good_parameters(capsys):
    target = _gaussian_target()
    calls = []

    def breaks_after_five(z):
        calls.append(1)
        return target.log_prob(z) * (math.nan if len(calls) > 5 else 1.0)

    fit = fit_flow_vi(breaks_after_five, FlowFamily(2, 1), n_steps=20, n_samples=8,
                      learning_rate=0.05, seed=0)
    assert fit.status == "diverged" and "learning_rate" in fit.message
    assert "learning_rate" in capsys.readouterr().out
    assert len(fit.elbo_history) == 5 and bool(torch.isfinite(fit.theta).all())
    # a learning rate large enough to blow up the scale: kept parameters still give a finite ELBO
    precision = torch.linalg.inv(target.covariance_matrix)

    def log_density(z):  # by hand: torch.distributions refuses NaN arguments
        d = z - target.mean
        return -0.5 * ((d @ precision) * d).sum(-1)

    fit = fit_flow_vi(log_density, FlowFamily(2, 1), n_steps=50, n_samples=8,
                      learning_rate=1e4, seed=0)
    assert fit.status == "diverged"
    z, log_q = fit.sample_and_log_prob(8, generator=torch.Generator().manual_seed(0))
    assert bool(torch.isfinite(log_density(z) - log_q).all())


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        ({"log_joint": 3.0}, TypeError, "log_joint"),
        ({"family": "full"}, TypeError, "family"),
        ({"n_steps": 0}, ValueError, "n_steps"),
        ({"n_samples": 2.5}, TypeError, "n_samples"),
        ({"learning_rate": -0.1}, ValueError, "learning_rate"),
        ({"seed": -1}, ValueError, "seed"),
        ({"init": torch.zeros(3, dtype=DT)}, ValueError, "init"),
        ({"log_joint": lambda z: z.sum()}, ValueError, "log_joint"),
    ],
)
def test_fit_bad_arguments_are_named(kwargs, exc, name):
    args = dict(log_joint=_gaussian_target().log_prob, family=full_covariance_gaussian(2),
                n_steps=5, n_samples=4, learning_rate=0.01)
    args.update(kwargs)
    with pytest.raises(exc, match=name):
        fit_flow_vi(**args)


def test_family_bad_arguments_are_named():
    with pytest.raises(ValueError, match="dim"):
        FlowFamily(0)
    with pytest.raises(ValueError, match="n_layers"):
        FlowFamily(2, -1)
    with pytest.raises(ValueError, match="base"):
        FlowFamily(2, base="lower")
    family = FlowFamily(2, 1)
    with pytest.raises(ValueError, match="theta"):
        family.sample_and_log_prob(torch.zeros(4, dtype=DT), 3)
    with pytest.raises(ValueError, match="n_samples"):
        family.sample_and_log_prob(family.init_params(), 0)
    with pytest.raises(ValueError, match="z"):
        family.log_prob(family.init_params(), torch.zeros(5, 3, dtype=DT))


# -- the flow VAE -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    x_train, _ = load_digits(split="train", binarize=True)
    x_test, _ = load_digits(split="test", binarize=True)
    return x_train, x_test[:20]


@pytest.fixture(scope="module")
def trained(digits):
    x_train, _ = digits
    models = {}
    for M in (0, 2):
        model = FlowVAE(64, 32, 2, M, seed=0)
        history = train_model(model, x_train, n_epochs=5, learning_rate=3e-3, seed=0, progress=False)
        assert history.status == "completed"
        models[M] = model
    return models


def test_flow_vae_training_loss_contract(digits):
    x = digits[1]
    model = FlowVAE(64, 16, 3, 2, seed=1)
    torch.manual_seed(0)
    loss, terms = model.training_loss(x, beta=0.5)
    assert set(terms) == {"recon", "kl", "log_lik"}
    assert all(t.dim() == 0 and not t.requires_grad for t in terms.values())
    torch.testing.assert_close(loss.detach(), terms["recon"] + 0.5 * terms["kl"])
    torch.testing.assert_close(terms["log_lik"], -terms["recon"])
    with pytest.raises(ValueError, match="free_bits"):
        model.training_loss(x, free_bits=0.5)
    with pytest.raises(ValueError, match="x"):
        model.encode(x[:, :10])


def test_flow_vae_training_is_repeatable(digits):
    x_train, x_val = digits
    runs = []
    for _ in range(2):
        model = FlowVAE(64, 16, 2, 1, seed=0)
        h = train_model(model, x_train[:256], n_epochs=2, seed=0, progress=False, validation_data=x_val)
        runs.append((list(h), h.val_elbo, [p.clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][2], runs[1][2], strict=True))


def test_gaussian_flow_vae_is_the_diagonal_vae(trained, digits):
    model, x = trained[0], digits[1]
    vae = model.as_gaussian_vae()
    theta = model.encode(x)
    mean, log_var = vae.encode(x)
    torch.testing.assert_close(theta[:, :2], mean)
    torch.testing.assert_close(2 * theta[:, 2:4], log_var)
    with torch.no_grad():  # MC KL of the flow code vs the closed form of notebook 5
        _, kl = model.elbo_samples(x, theta, 20000, generator=torch.Generator().manual_seed(0))
        kl_closed = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum(-1)
    assert (kl.mean(0) - kl_closed).abs().max() < 0.05
    with pytest.raises(ValueError, match="n_layers"):
        trained[2].as_gaussian_vae()


def test_local_optimization_improves_on_the_encoder(trained, digits):
    theta0, hist0 = optimize_local_flow(trained[2], digits[1], n_steps=0)
    torch.testing.assert_close(theta0, trained[2].encode(digits[1]).detach())
    assert hist0 == []
    _, hist = optimize_local_flow(trained[2], digits[1], n_steps=150, n_samples=16, seed=0)
    assert sum(hist[-10:]) / 10 > sum(hist[:10]) / 10


def test_inference_gaps_against_evaluate_for_the_gaussian_encoder(trained, digits):
    model, x = trained[0], digits[1]
    gaps = inference_gaps(model, x, k=1000, n_steps=200, n_eval_samples=2000, seed=0,
                          reduction="none")
    torch.testing.assert_close(gaps["inference_gap"],
                               gaps["approximation_gap"] + gaps["amortization_gap"])
    assert gaps["amortization_gap"].min() > -0.05
    assert gaps["approximation_gap"].mean() > -0.02
    vae = model.as_gaussian_vae()
    log_px = evaluate.log_likelihood_is(vae, x, k=5000, generator=torch.Generator().manual_seed(1))
    elbo = evaluate.elbo(vae, x, n_samples=2000, generator=torch.Generator().manual_seed(2))
    assert abs(float((gaps["log_px"] - log_px).mean())) < 0.05
    assert abs(float((gaps["elbo_encoder"] - elbo).mean())) < 0.05


def test_inference_gaps_for_a_flow_encoder(trained, digits):
    gaps = inference_gaps(trained[2], digits[1], k=500, n_steps=150, n_eval_samples=500, seed=0)
    assert gaps["amortization_gap"] > -0.02 and gaps["approximation_gap"] > -0.02
    assert math.isclose(gaps["inference_gap"], gaps["approximation_gap"] + gaps["amortization_gap"],
                        abs_tol=1e-9)
    with pytest.raises(TypeError, match="model"):
        inference_gaps(object(), digits[1])
    with pytest.raises(ValueError, match="reduction"):
        inference_gaps(trained[2], digits[1], reduction="sum")
