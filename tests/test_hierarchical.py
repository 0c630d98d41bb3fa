"""Tests for vi_helpers.hierarchical and vi_helpers.hierarchical_linear.

Independent references: torch.distributions (MultivariateNormal of the joint
Gaussian, Normal log-densities, kl_divergence), ancestral sampling, plain Monte
Carlo averages of log p(x, z) - log q(z | x), and the closed-form pPCA optimum
(Tipping & Bishop 1999).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from vi_helpers.hierarchical import (
    HierarchicalVAE,
    kl_diag_normal_per_dim,
    precision_weighted_merge,
    vae_hidden_size_for,
)
from vi_helpers.hierarchical_linear import (
    LinearHierarchicalVAE,
    fit_linear_hierarchical_vae,
    moment_matched_points,
)
from vi_helpers.models import ProbabilisticPCA, VariationalAutoencoder
from vi_helpers.train import train_model

DT = torch.float64
#: The linear two-level VAE must reach the exact optimum within this many nats per image.
LINEAR_TOLERANCE_NATS = 0.02


def _random_linear(d=4, sizes=(3, 2), seed=0, scale=0.5):
    torch.manual_seed(seed)
    model = LinearHierarchicalVAE(d, sizes).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, dtype=DT))
    return model


def _hvae(seed=0, **kwargs):
    torch.manual_seed(seed)
    return HierarchicalVAE(64, 32, (6, 3), **kwargs)


# ------------------------------------------------------------------ linear: the exact marginal
def test_linear_marginal_equals_the_joint_gaussian_marginal():
    """Build the joint Gaussian of (z2, z1, x) as a linear map of independent noise and
    marginalize by selecting the x block: an independent route to p(x)."""
    model = _random_linear()
    l1, l2 = model.latent_sizes
    d = model.input_size
    A, a = model.prior_map.weight.detach(), model.prior_map.bias.detach()
    W, b = model.decoder.weight.detach(), model.decoder.bias.detach()
    s1 = (0.5 * model.prior_log_var_1.detach()).exp()
    sigma = (0.5 * model.obs_log_var.detach()).exp()
    # (z2, z1, x) = M @ (n2, n1, nx) + offset, with independent standard normal noise
    M = torch.zeros(l2 + l1 + d, l2 + l1 + d, dtype=DT)
    M[:l2, :l2] = torch.eye(l2, dtype=DT)
    M[l2:l2 + l1, :l2] = A
    M[l2:l2 + l1, l2:l2 + l1] = torch.diag(s1)
    M[l2 + l1:] = W @ M[l2:l2 + l1]
    M[l2 + l1:, l2 + l1:] = sigma * torch.eye(d, dtype=DT)
    offset = torch.cat([torch.zeros(l2, dtype=DT), a, W @ a + b])
    joint = MultivariateNormal(offset, covariance_matrix=M @ M.T)
    x_block = slice(l2 + l1, None)
    reference = MultivariateNormal(joint.mean[x_block],
                                   covariance_matrix=joint.covariance_matrix[x_block, x_block])
    x = torch.randn(7, d, dtype=DT, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model.exact_log_likelihood(x), reference.log_prob(x))


def test_linear_marginal_matches_ancestral_samples_and_monte_carlo():
    model = _random_linear(d=3, sizes=(2, 1))
    g = torch.Generator().manual_seed(2)
    n = 400_000
    with torch.no_grad():
        z2 = torch.randn(n, 1, dtype=DT, generator=g)
        mu_p1, log_var_p1 = model.prior_1(z2)
        z1 = mu_p1 + (0.5 * log_var_p1).exp() * torch.randn(mu_p1.shape, dtype=DT, generator=g)
        noise = (0.5 * model.obs_log_var).exp() * torch.randn(n, 3, dtype=DT, generator=g)
        x = model.decoder(z1) + noise
        marginal = model.marginal()
        torch.testing.assert_close(x.mean(0), marginal.mean, atol=0.02, rtol=0)
        torch.testing.assert_close(torch.cov(x.T), marginal.covariance_matrix, atol=0.03, rtol=0.02)
        # log p(x0) = log E_{p(z1)}[p(x0 | z1)]: a plain Monte Carlo average over the samples
        x0 = torch.tensor([[0.3, -0.2, 0.5]], dtype=DT)
        log_lik = model.log_likelihood(x0.expand(n, 3), model.decoder(z1))
        mc = torch.logsumexp(log_lik, 0) - math.log(n)
        assert abs(float(mc - model.exact_log_likelihood(x0)[0])) < 0.01


def test_linear_analytic_elbo_terms_match_monte_carlo():
    model = _random_linear()
    x = torch.randn(3, 4, dtype=DT, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        terms = model.analytic_elbo_terms(x)
        out = model.top_down(x, n_samples=200_000, generator=g)
        kl_1, kl_2 = model.kl_per_unit(out)
        log_lik = model.log_likelihood(x.expand(out.x_hat.shape), out.x_hat)
        for name, mc in (("log_lik", log_lik), ("kl_1", kl_1.sum(-1))):
            se = mc.std(0) / math.sqrt(mc.shape[0])
            assert bool(((mc.mean(0) - terms[name]).abs() < 5 * se + 1e-9).all()), name
        torch.testing.assert_close(kl_2[0].sum(-1), terms["kl_2"])
        log_w = model.log_weights(x, 200_000, generator=g)
        se = log_w.std(0) / math.sqrt(log_w.shape[0])
        assert bool(((log_w.mean(0) - model.analytic_elbo(x)).abs() < 5 * se).all())
        # an ELBO is a lower bound on the exact log p(x)
        assert bool((model.analytic_elbo(x) <= model.exact_log_likelihood(x)).all())


def test_moment_matched_points_keep_mean_and_covariance(digits_train):
    pts = moment_matched_points(digits_train)
    x = digits_train.double()
    assert pts.shape == (128, 64)
    torch.testing.assert_close(pts.mean(0), x.mean(0))
    torch.testing.assert_close(torch.cov(pts.T, correction=0), torch.cov(x.T, correction=0))


def test_linear_two_level_vae_reaches_the_exact_marginal_likelihood(digits_train):
    """The global optimum of the ELBO is the pPCA maximum likelihood with L = L_1."""
    model, history = fit_linear_hierarchical_vae(digits_train, (8, 4), seed=0)
    x = digits_train.double()
    model = model.double()
    with torch.no_grad():
        elbo = model.analytic_elbo(x).mean().item()
        exact = model.exact_log_likelihood(x).mean().item()
    best = ProbabilisticPCA(8).fit(digits_train).max_log_likelihood()
    assert elbo <= exact + 1e-9 and exact <= best + 1e-9
    assert best - elbo < LINEAR_TOLERANCE_NATS
    assert exact - elbo < LINEAR_TOLERANCE_NATS
    assert abs(history[-1] - elbo) < 1e-3  # moment-matched points give the full-data ELBO


# ------------------------------------------------------------------ KL and merge helpers
def test_kl_diag_normal_per_dim_matches_torch_distributions():
    g = torch.Generator().manual_seed(5)
    mq, lq, mp, lp = (torch.randn(4, 3, dtype=DT, generator=g) for _ in range(4))
    ref = kl_divergence(Normal(mq, (0.5 * lq).exp()), Normal(mp, (0.5 * lp).exp()))
    torch.testing.assert_close(kl_diag_normal_per_dim(mq, lq, mp, lp), ref)


def test_precision_weighted_merge_is_the_normalized_product_of_gaussians():
    g = torch.Generator().manual_seed(6)
    mu_hat, mu_p = torch.randn(2, 5, dtype=DT, generator=g)
    lv_hat, lv_p = 2 * torch.randn(2, 5, dtype=DT, generator=g)
    mu_q, lv_q = precision_weighted_merge(mu_hat, lv_hat, mu_p, lv_p)
    # reference: the product of the two densities on a grid, normalized numerically
    grid = torch.linspace(-30, 30, 400_001, dtype=DT)[:, None]
    log_prod = Normal(mu_hat, (0.5 * lv_hat).exp()).log_prob(grid) + Normal(
        mu_p, (0.5 * lv_p).exp()).log_prob(grid)
    dens = torch.exp(log_prod - log_prod.max(0).values)
    dens = dens / torch.trapezoid(dens, grid[:, 0], dim=0)
    mean = torch.trapezoid(dens * grid, grid[:, 0], dim=0)
    var = torch.trapezoid(dens * (grid - mean) ** 2, grid[:, 0], dim=0)
    torch.testing.assert_close(mu_q, mean, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(lv_q.exp(), var, atol=1e-6, rtol=1e-5)


def test_vae_hidden_size_for_matches_the_parameter_count():
    for h in (10, 71, 256):
        n = sum(p.numel() for p in VariationalAutoencoder(64, h, 8).parameters())
        assert vae_hidden_size_for(n, 64, 8) == h
        assert vae_hidden_size_for(n + 3, 64, 8) == h


# ------------------------------------------------------------------ the neural HVAE
@pytest.mark.parametrize("merge", ["residual", "precision"])
def test_elbo_decomposition_matches_monte_carlo(digits_small, merge):
    """recon - KL_1 - KL_2 (analytic KLs) and the mean log-weight estimate the same ELBO;
    the log-weights use torch.distributions log-densities of every factor."""
    model = _hvae(merge=merge).double().eval()
    x = digits_small[:4].double()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        out = model.top_down(x, n_samples=20_000, generator=g)
        kl_1, kl_2 = model.kl_per_unit(out)
        std = lambda lv: (0.5 * lv).exp()  # noqa: E731
        log_p = (model.log_likelihood(x.expand(out.x_hat.shape), out.x_hat)
                 + Normal(out.mu_p1, std(out.log_var_p1)).log_prob(out.z1).sum(-1)
                 + Normal(0.0, 1.0).log_prob(out.z2).sum(-1))
        log_q = (Normal(out.mu_q2, std(out.log_var_q2)).log_prob(out.z2).sum(-1)
                 + Normal(out.mu_q1, std(out.log_var_q1)).log_prob(out.z1).sum(-1))
        mc = log_p - log_q  # (S, B)
        decomposed = model.log_likelihood(x.expand(out.x_hat.shape), out.x_hat) \
            - kl_1.sum(-1) - kl_2.sum(-1)
        se = torch.sqrt(mc.var(0) / mc.shape[0] + decomposed.var(0) / mc.shape[0])
        assert bool(((mc.mean(0) - decomposed.mean(0)).abs() < 5 * se).all())
        # the KL of the top layer is exactly KL(q(z2|x) || N(0, I)) from torch.distributions
        ref = kl_divergence(Normal(out.mu_q2[0], std(out.log_var_q2[0])), Normal(0.0, 1.0))
        torch.testing.assert_close(kl_2[0], ref)
        # the log-weights the class computes are the same as these
        lw = model.log_weights(x, 3, generator=torch.Generator().manual_seed(8))
        out3 = model.top_down(x, n_samples=3, generator=torch.Generator().manual_seed(8))
        ref3 = (model.log_likelihood(x.expand(out3.x_hat.shape), out3.x_hat)
                + Normal(out3.mu_p1, std(out3.log_var_p1)).log_prob(out3.z1).sum(-1)
                + Normal(0.0, 1.0).log_prob(out3.z2).sum(-1)
                - Normal(out3.mu_q2, std(out3.log_var_q2)).log_prob(out3.z2).sum(-1)
                - Normal(out3.mu_q1, std(out3.log_var_q1)).log_prob(out3.z1).sum(-1))
        torch.testing.assert_close(lw, ref3)


def test_iwae_bound_is_above_the_elbo_and_increases_with_k(digits_small):
    """In expectation: ELBO = L_1 <= L_10 <= L_100 <= log p(x), on the linear model, whose
    ELBO (closed form) and log p(x) (exact) are known; averages over replicates, so the
    ordering is not an accident of one draw."""
    linear = _random_linear()
    xl = torch.randn(3, 4, dtype=DT, generator=torch.Generator().manual_seed(10))
    g = torch.Generator().manual_seed(9)
    with torch.no_grad():
        log_w = linear.log_weights(xl, 100_000, generator=g)  # (K R, B): R sets of K
        reps = {k: (torch.logsumexp(log_w.reshape(-1, k, 3), dim=1) - math.log(k)).mean(-1)
                for k in (1, 10, 100)}
        elbo = linear.analytic_elbo(xl).mean().item()
        log_px = linear.exact_log_likelihood(xl).mean().item()
    mean = {k: r.mean().item() for k, r in reps.items()}
    se = {k: r.std().item() / math.sqrt(len(r)) for k, r in reps.items()}
    assert abs(mean[1] - elbo) < 5 * se[1]  # K = 1 is the ELBO
    assert mean[10] - mean[1] > 3 * math.hypot(se[1], se[10])
    assert mean[100] - mean[10] > 3 * math.hypot(se[10], se[100])
    assert mean[100] < log_px and log_px - elbo > 0.5  # a real gap for the bound to close

    model = _hvae().double().eval()
    x = digits_small[:16].double()
    g = torch.Generator().manual_seed(9)
    with torch.no_grad():
        bounds = {k: model.iwae_bound(x, k=k, generator=g).mean().item() for k in (10, 1000)}
    assert bounds[10] < bounds[1000]
    # one chunk: exactly log (1/K) sum_k w_k of the same log-weights, as iwae_bound gives
    with torch.no_grad():
        direct = linear.iwae_bound(xl, k=100, chunk_size=100, generator=torch.Generator().manual_seed(2))
        lw = linear.log_weights(xl, 100, generator=torch.Generator().manual_seed(2))
        torch.testing.assert_close(direct, torch.logsumexp(lw, 0) - math.log(100))
        one = model.iwae_bound(x, k=50, chunk_size=50, generator=torch.Generator().manual_seed(1))
        lw = model.log_weights(x, 50, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(one, torch.logsumexp(lw, 0) - math.log(50))
        # chunks of 7, 7, ..., 1 draw the same number of samples: the same bound up to noise
        chunked = model.iwae_bound(x, k=50, chunk_size=7, generator=g)
    assert chunked.shape == (16,) and abs(chunked.mean().item() - bounds[10]) < 1.0


def test_training_through_train_model_lowers_the_loss_and_is_repeatable(digits_small):
    def run():
        model = _hvae(free_bits=(0.0, 0.05))
        hist = train_model(model, digits_small, 6, 3e-3, seed=3, progress=False,
                           kl_warmup_epochs=2, validation_data=digits_small[:64])
        return model, hist

    model_a, hist_a = run()
    model_b, hist_b = run()
    assert hist_a.status == "completed"
    assert hist_a[-1] < hist_a[0] - 1.0
    assert list(hist_a) == list(hist_b) and hist_a.val_elbo == hist_b.val_elbo
    for p, q in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(p, q)
    for i in range(6):  # the ELBO the trainer logs is log_lik - kl of the terms
        assert hist_a.elbo[i] == pytest.approx(-hist_a.recon[i] - hist_a.kl[i])


def test_free_bits_floor_each_layer_separately(digits_small):
    model = _hvae()
    x = digits_small[:16]
    torch.manual_seed(0)
    loss_plain, terms = model.training_loss(x, free_bits=0.0)
    for delta in [(0.0, 5.0), (5.0, 0.0), (5.0, 5.0)]:
        torch.manual_seed(0)
        loss, t = model.training_loss(x, free_bits=delta)
        l1, l2 = model.latent_sizes
        # at initialization every unit's KL is far below 5 nats: each floored layer counts 5 * L_i
        expected = (-t["log_lik"] + (delta[0] * l1 if delta[0] else t["kl_1"])
                    + (delta[1] * l2 if delta[1] else t["kl_2"]))
        assert loss.item() == pytest.approx(float(expected), rel=1e-5)
        assert float(t["kl"]) == pytest.approx(float(terms["kl"]), rel=1e-6)


def test_active_units_and_kl_per_layer_shapes_and_consistency(digits_small):
    model = _hvae().eval()
    x = digits_small[:64]
    g = torch.Generator().manual_seed(0)
    au = model.active_units(x, generator=g)
    kl = model.kl_per_layer(x, n_samples=50, generator=g)
    assert au["z1"][1].shape == (6,) and au["z2"][1].shape == (3,)
    assert au["z2"][0] == int((model.bottom_up(x)[0].detach().var(0, correction=0) > 0.01).sum())
    assert kl["z1"].shape == (6,) and kl["z2"].shape == (3,)
    with torch.no_grad():
        elbo_terms = model.elbo(x, n_samples=400, generator=g)
    with torch.no_grad():
        out = model.top_down(x, n_samples=400, generator=g)
        recon = model.log_likelihood(x.expand(out.x_hat.shape), out.x_hat).mean()
    # the per-unit KLs sum to the ELBO's KL term (up to Monte Carlo error)
    assert float(recon - kl["z1"].sum() - kl["z2"].sum()) == pytest.approx(
        float(elbo_terms.mean()), abs=0.2)
    samples = model.sample(5, generator=g)
    assert samples.shape == (5, 64) and bool(((samples >= 0) & (samples <= 1)).all())


# ------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: HierarchicalVAE(64, 32, (8,)), ValueError, "latent_sizes"),
        (lambda: HierarchicalVAE(64, 32, (8, 0)), ValueError, "latent_sizes[1]"),
        (lambda: HierarchicalVAE(64, 0), ValueError, "hidden_size"),
        (lambda: HierarchicalVAE(64, 32, free_bits=(0.1, -1.0)), ValueError, "free_bits[1]"),
        (lambda: HierarchicalVAE(64, 32, free_bits=(0.1, 0.2, 0.3)), ValueError, "free_bits"),
        (lambda: HierarchicalVAE(64, 32, merge="average"), ValueError, "merge"),
        (lambda: HierarchicalVAE(64, 32, beta=-1.0), ValueError, "beta"),
        (lambda: LinearHierarchicalVAE(4, (2, 3)), ValueError, "latent_sizes"),
        (lambda: vae_hidden_size_for(0, 64, 8), ValueError, "n_parameters"),
        (lambda: fit_linear_hierarchical_vae(torch.ones(5, 3), (2, 1)), ValueError, "x"),
        (lambda: fit_linear_hierarchical_vae(torch.randn(5, 3), (2, 1), n_steps=0),
         ValueError, "n_steps"),
    ],
)
def test_bad_constructor_arguments_name_the_argument(call, error, name):
    with pytest.raises(error, match=name.replace("[", r"\[").replace("]", r"\]")):
        call()


def test_bad_call_arguments_name_the_argument():
    model = _hvae()
    x = torch.rand(4, 64)
    with pytest.raises(ValueError, match="x"):
        model.elbo(torch.rand(4, 63))
    with pytest.raises(TypeError, match="x"):
        model.elbo(torch.ones(4, 64, dtype=torch.int64))
    with pytest.raises(ValueError, match="x"):
        model.elbo(torch.full((4, 64), float("nan")))
    with pytest.raises(ValueError, match="n_samples"):
        model.elbo(x, n_samples=0)
    with pytest.raises(TypeError, match="generator"):
        model.elbo(x, generator=0)
    with pytest.raises(ValueError, match="k"):
        model.iwae_bound(x, k=0)
    with pytest.raises(ValueError, match="chunk_size"):
        model.iwae_bound(x, k=5, chunk_size=0)
    with pytest.raises(ValueError, match="beta"):
        model.training_loss(x, beta=-0.5)
    with pytest.raises(TypeError, match="free_bits"):
        model.training_loss(x, free_bits="lots")
    with pytest.raises(ValueError, match="threshold"):
        model.active_units(x, threshold=-1.0)
    with pytest.raises(ValueError, match="x"):
        model.active_units(x[:1])
    with pytest.raises(ValueError, match="mu_q and log_var_p"):
        kl_diag_normal_per_dim(torch.zeros(2), torch.zeros(2), torch.zeros(2), torch.zeros(3))
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="free_bits"):
        train_model(model, x, 1, 1e-3, free_bits=-1.0, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters(), strict=True))
