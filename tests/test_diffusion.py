"""Tests of vi_helpers.diffusion and vi_helpers.diffusion_gaussian against independent references.

References: sequential simulation of the forward chain (marginals), Bayes' rule on a
quadrature grid (posteriors), torch.distributions log-densities of sampled chains
(the ELBO as a sum of KLs), MultivariateNormal.log_prob (the exact Gaussian case),
autograd of log q(x_t) (the score).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal

from vi_helpers import diffusion as df
from vi_helpers.diffusion_gaussian import gaussian_data_elbo, gaussian_reverse_kernels
from vi_helpers.kl import kl_diag_normal, kl_full_normal
from vi_helpers.train import train_model

F64 = torch.float64


def _gaussian_data():
    mean = torch.tensor([1.5, -2.0, 0.5], dtype=F64)
    chol = torch.tensor([[1.0, 0, 0], [0.6, 0.5, 0], [-0.3, 0.2, 0.3]], dtype=F64)
    return mean, chol @ chol.T


def _sigma_points(mean, cov):
    """2D points whose average of any quadratic in x equals its expectation under N(mean, cov)."""
    d = mean.shape[0]
    evals, evecs = torch.linalg.eigh(cov)
    spread = (evecs * (d * evals).sqrt()).T
    return torch.cat([mean + spread, mean - spread])


# ----------------------------------------------------------------------------- schedule
def test_linear_schedule_matches_ho_et_al_at_1000_steps():
    alpha = df.noise_schedule(1000, "linear")
    assert alpha.dtype == F64 and alpha.shape == (1000,)
    assert float(1 - alpha[0]) == pytest.approx(1e-4)
    assert float(1 - alpha[-1]) == pytest.approx(0.02)


def test_cosine_schedule_follows_its_closed_form():
    n = 50
    a_bar = df.alpha_bar(df.noise_schedule(n, "cosine"))
    s = 0.008
    t = torch.arange(n + 1, dtype=F64) / n
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    expected = f / f[0]
    # equal until the clip of 1 - alpha at 0.999 acts on the very last step
    torch.testing.assert_close(a_bar[:-1], expected[:-1], rtol=1e-10, atol=0)
    assert bool((a_bar[1:] < a_bar[:-1]).all()) and a_bar[0] == 1


# ------------------------------------------------------------------------ forward process
@pytest.mark.parametrize("kind", df.SCHEDULES)
def test_forward_marginal_matches_sequential_simulation(kind):
    alpha = df.noise_schedule(20, kind)
    n = 40_000
    x0 = torch.tensor([[1.5, -0.7]], dtype=F64).expand(n, 2)
    g = torch.Generator().manual_seed(0)
    x = x0
    for t in range(1, 21):
        x = df.forward_step(x, t, alpha, generator=g)
        if t in (1, 5, 20):
            mean, var = df.forward_marginal(x0, t, alpha)
            se_mean = (var[0] / n).sqrt()
            se_var = var[0] * math.sqrt(2 / n)
            assert ((x.mean(0) - mean[0]).abs() < 5 * se_mean).all()
            assert ((x.var(0) - var[0]).abs() < 5 * se_var).all()


def test_forward_sample_returns_its_noise():
    alpha = df.noise_schedule(10, "linear")
    x0 = torch.randn(6, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    t = torch.tensor([1, 2, 3, 5, 9, 10])
    x_t, eps = df.forward_sample(x0, t, alpha, generator=torch.Generator().manual_seed(2))
    mean, var = df.forward_marginal(x0, t, alpha)
    torch.testing.assert_close(x_t, mean + var.sqrt() * eps)


@pytest.mark.parametrize("t", [2, 7, 30])
def test_forward_posterior_matches_bayes_rule_on_a_grid(t):
    """q(x_{t-1} | x_t, x0) ∝ q(x_t | x_{t-1}) q(x_{t-1} | x0), normalized by quadrature."""
    alpha = df.noise_schedule(30, "cosine")
    x0 = torch.tensor([[0.8]], dtype=F64)
    x_t = torch.tensor([[0.3]], dtype=F64)
    m_prev, v_prev = df.forward_marginal(x0, t - 1, alpha)
    mean, var = df.forward_posterior(x0, x_t, t, alpha)
    sd = var.sqrt().item()
    grid = torch.linspace(mean.item() - 12 * sd, mean.item() + 12 * sd, 200_001, dtype=F64)
    a_t = alpha[t - 1]
    log_w = Normal(a_t.sqrt() * grid, (1 - a_t).sqrt()).log_prob(x_t[0, 0]) + Normal(
        m_prev[0, 0], v_prev[0, 0].sqrt()
    ).log_prob(grid)
    w = torch.softmax(log_w, dim=0)
    grid_mean = (w * grid).sum()
    grid_var = (w * (grid - grid_mean) ** 2).sum()
    torch.testing.assert_close(grid_mean, mean[0, 0], rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(grid_var, var[0, 0], rtol=1e-6, atol=0)


# ----------------------------------------------------------------------- weights, ELBO
@pytest.mark.parametrize("variance", df.VARIANCES)
def test_kl_of_each_step_is_offset_plus_weighted_eps_error(variance):
    """kl_diag_normal of the two Gaussians == D c_t + w_t |eps - eps_hat|^2 (t >= 2)."""
    n_steps, d = 25, 4
    alpha = df.noise_schedule(n_steps, "linear")
    a_bar = df.alpha_bar(alpha)
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(5, d, generator=g, dtype=F64)
    eps_hat = torch.randn(5, d, generator=g, dtype=F64)
    w = df.elbo_weights(alpha, variance)
    c = df.elbo_offsets(alpha, variance)
    var_p = df.reverse_variance(alpha, variance)
    for t in (2, 3, 12, 25):
        x_t, eps = df.forward_sample(x0, t, alpha, generator=g)
        x0_hat = (x_t - (1 - a_bar[t]).sqrt() * eps_hat) / a_bar[t].sqrt()
        mu_q, var_q = df.forward_posterior(x0, x_t, t, alpha)
        mu_p, _ = df.forward_posterior(x0_hat, x_t, t, alpha)
        kl = kl_diag_normal(mu_q, var_q.log(), mu_p, var_p[t - 1].log().expand_as(mu_p))
        expected = d * c[t - 1] + w[t - 1] * (eps - eps_hat).pow(2).sum(-1)
        torch.testing.assert_close(kl, expected, rtol=1e-9, atol=1e-9)


def test_posterior_weights_are_half_the_snr_ratio_minus_one():
    alpha = df.noise_schedule(40, "cosine")
    a_bar = df.alpha_bar(alpha)
    snr = a_bar / (1 - a_bar)
    w = df.elbo_weights(alpha, "posterior")
    torch.testing.assert_close(w[1:], 0.5 * (snr[1:-1] / snr[2:] - 1))
    assert float(w[0]) == pytest.approx(0.5)
    assert float(df.elbo_weights(alpha, "forward")[0]) == pytest.approx(0.5)


def _small_model(n_steps=6, variance="forward", seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return df.GaussianDiffusion(2, 16, n_steps=n_steps, variance=variance).double()


@pytest.mark.parametrize("variance", df.VARIANCES)
def test_elbo_as_sum_of_kls_matches_a_monte_carlo_estimate(variance):
    """E_q[log p(x_{0:T}) - log q(x_{1:T}|x0)] from sampled chains vs the KL form."""
    model = _small_model(variance=variance)
    n_steps, n = model.n_steps, 20_000
    alpha = model.alpha
    var_p = df.reverse_variance(alpha, variance)
    x0 = torch.tensor([[0.4, -1.1]], dtype=F64).expand(n, 2)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        xs = [x0]
        for t in range(1, n_steps + 1):
            xs.append(df.forward_step(xs[-1], t, alpha, generator=g))
        log_ratio = Normal(0.0, 1.0).log_prob(xs[-1]).sum(-1)  # log p(x_T)
        for t in range(1, n_steps + 1):
            mu = model.reverse_mean(xs[t], t)
            log_ratio += Normal(mu, var_p[t - 1].sqrt()).log_prob(xs[t - 1]).sum(-1)
            a_t = alpha[t - 1]
            log_ratio -= Normal(a_t.sqrt() * xs[t - 1], (1 - a_t).sqrt()).log_prob(xs[t]).sum(-1)
        kl_form = model.elbo(x0, generator=torch.Generator().manual_seed(5))
    se = math.sqrt(log_ratio.var() / n + kl_form.var() / n)
    assert abs(float(log_ratio.mean() - kl_form.mean())) < 4 * se


def test_training_loss_terms_estimate_the_elbo_without_bias():
    model = _small_model(n_steps=5)
    x = torch.tensor([[0.4, -1.1]], dtype=F64).expand(40_000, 2)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(6)
        _, terms = model.training_loss(x)
        exact = model.elbo(x, generator=torch.Generator().manual_seed(7))
    estimate = terms["log_lik"] - terms["kl"]
    assert abs(float(estimate - exact.mean())) < 0.05 * abs(float(exact.mean())) + 0.05


# --------------------------------------------------------------------- Gaussian data
@pytest.mark.parametrize(("n_steps", "kind"), [(1, "linear"), (20, "linear"), (200, "cosine"),
                                               (1000, "linear")])
def test_optimal_kernels_make_the_elbo_equal_log_p(n_steps, kind):
    mean, cov = _gaussian_data()
    x0 = MultivariateNormal(mean, cov).sample((7,))
    x0 = torch.cat([x0, (mean + 6.0).unsqueeze(0)])  # far in the tail too
    elbo, terms = gaussian_data_elbo(x0, mean, cov, df.noise_schedule(n_steps, kind))
    log_p = MultivariateNormal(mean, cov).log_prob(x0)
    torch.testing.assert_close(elbo, log_p, rtol=0, atol=1e-6)
    assert terms["kl"].shape == (8, n_steps - 1)


def test_reverse_kernels_match_regression_on_forward_samples():
    mean, cov = _gaussian_data()
    alpha = df.noise_schedule(10, "linear")
    a_mat, b, sigma = gaussian_reverse_kernels(mean, cov, alpha)
    g = torch.Generator().manual_seed(8)
    n, t = 200_000, 4
    x0 = mean + torch.randn(n, 3, generator=g, dtype=F64) @ torch.linalg.cholesky(cov).T
    x_prev, _ = df.forward_sample(x0, t - 1, alpha, generator=g)
    x_t = df.forward_step(x_prev, t, alpha, generator=g)
    design = torch.cat([x_t, torch.ones(n, 1, dtype=F64)], dim=1)
    coef = torch.linalg.lstsq(design, x_prev).solution
    resid = x_prev - design @ coef
    torch.testing.assert_close(coef[:3].T, a_mat[t - 1], rtol=0, atol=0.02)
    torch.testing.assert_close(coef[3], b[t - 1], rtol=0, atol=0.02)
    torch.testing.assert_close(resid.T @ resid / n, sigma[t - 1], rtol=0, atol=0.005)


def test_prior_costs_are_kls_of_the_top_marginal():
    """E over data of the ELBO loss from a prior p(x_T) is KL(q(x_T) || p(x_T))."""
    mean, cov = _gaussian_data()
    alpha = df.noise_schedule(20, "cosine")[:12]  # a truncated chain: alpha_bar_T not tiny
    a_top = df.alpha_bar(alpha)[-1]
    x0 = _sigma_points(mean, cov)
    exact, _ = gaussian_data_elbo(x0, mean, cov, alpha)
    eye = torch.eye(3, dtype=F64)
    c_top = a_top * cov + (1 - a_top) * eye
    m_top = a_top.sqrt() * mean
    for prior, p_mean in (("standard", torch.zeros(3, dtype=F64)), ("learned_mean", m_top)):
        elbo, _ = gaussian_data_elbo(x0, mean, cov, alpha, prior=prior)
        expected = kl_full_normal(m_top, c_top, p_mean, eye)
        torch.testing.assert_close((exact - elbo).mean(), expected, rtol=1e-9, atol=1e-12)
        assert float(expected) > 0.01


@pytest.mark.parametrize("variance", df.VARIANCES)
def test_fixed_variance_gap_is_a_sum_of_covariance_kls(variance):
    mean, cov = _gaussian_data()
    alpha = df.noise_schedule(15, "linear")
    _, _, sigma = gaussian_reverse_kernels(mean, cov, alpha)
    var = df.reverse_variance(alpha, variance)
    zero = torch.zeros(3, dtype=F64)
    expected = sum(
        kl_full_normal(zero, sigma[i], zero, var[i] * torch.eye(3, dtype=F64)) for i in range(15)
    )
    x0 = _sigma_points(mean, cov)
    elbo, _ = gaussian_data_elbo(x0, mean, cov, alpha, reverse=variance)
    gap = (MultivariateNormal(mean, cov).log_prob(x0) - elbo).mean()
    torch.testing.assert_close(gap, expected, rtol=1e-9, atol=1e-12)


def test_neural_elbo_with_the_optimal_denoiser_matches_the_closed_form():
    """GaussianDiffusion.elbo with eps_theta = E[eps | x_t] vs gaussian_data_elbo (MC mean)."""
    mean, cov = _gaussian_data()
    model = df.GaussianDiffusion(3, 8, n_steps=8, variance="forward").double()
    a_bar = model.alpha_bar

    class Oracle(torch.nn.Module):
        def forward(self, x_t, t):
            a = a_bar[t][:, None, None]
            c_t = a * cov + (1 - a) * torch.eye(3, dtype=F64)
            centred = (x_t - a_bar[t].sqrt()[:, None] * mean).unsqueeze(-1)
            return (1 - a_bar[t]).sqrt()[:, None] * torch.linalg.solve(c_t, centred).squeeze(-1)

    model.denoiser = Oracle()
    x0 = torch.tensor([[1.0, -1.5, 0.2]], dtype=F64).expand(20_000, 3)
    with torch.no_grad():
        mc = model.elbo(x0, generator=torch.Generator().manual_seed(9))
    exact, _ = gaussian_data_elbo(x0[:1], mean, cov, model.alpha, prior="standard",
                                  reverse="forward")
    assert abs(float(mc.mean() - exact[0])) < 4 * float(mc.std()) / math.sqrt(len(mc))


def test_optimal_eps_prediction_is_a_scaled_score():
    """E[eps | x_t] = -sqrt(1 - alpha_bar_t) * grad log q(x_t) (Vincent 2011)."""
    mean, cov = _gaussian_data()
    alpha = df.noise_schedule(50, "linear")
    t = 10
    a = df.alpha_bar(alpha)[t]
    marginal = MultivariateNormal(a.sqrt() * mean, a * cov + (1 - a) * torch.eye(3, dtype=F64))
    g = torch.Generator().manual_seed(10)
    n = 200_000
    x0 = mean + torch.randn(n, 3, generator=g, dtype=F64) @ torch.linalg.cholesky(cov).T
    x_t, eps = df.forward_sample(x0, t, alpha, generator=g)
    design = torch.cat([x_t, torch.ones(n, 1, dtype=F64)], dim=1)
    coef = torch.linalg.lstsq(design, eps).solution  # E[eps | x_t] is affine in x_t
    points = marginal.sample((5,)).requires_grad_()
    (score,) = torch.autograd.grad(marginal.log_prob(points).sum(), points)
    eps_hat = torch.cat([points.detach(), torch.ones(5, 1, dtype=F64)], 1) @ coef
    torch.testing.assert_close(eps_hat, -(1 - a).sqrt() * score, rtol=0, atol=0.02)


# ----------------------------------------------------------------------- train, sample
def _digits_like(n=96, d=5, seed=11):
    g = torch.Generator().manual_seed(seed)
    return torch.tanh(torch.randn(n, d, generator=g) @ torch.randn(d, d, generator=g))


def test_training_through_train_model_is_bitwise_repeatable_and_reduces_the_loss():
    x = _digits_like()
    states, histories = [], []
    for _ in range(2):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = df.GaussianDiffusion(5, 32, n_steps=20)
        hist = train_model(model, x, 40, 1e-2, batch_size=32, seed=3, progress=False,
                           validation_data=x[:16])
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        histories.append(hist)
    assert histories[0].status == "completed"
    assert list(histories[0]) == list(histories[1])
    assert histories[0].val_elbo == histories[1].val_elbo
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
    assert sum(histories[0][-5:]) / 5 < 0.8 * sum(histories[0][:5]) / 5
    assert histories[0].val_elbo[-1] > histories[0].val_elbo[0]
    assert len(histories[0].kl) == 40 and math.isfinite(histories[0].elbo[-1])


def test_elbo_loss_option_trains_and_logs_the_same_terms():
    x = _digits_like()
    model = df.GaussianDiffusion(5, 16, n_steps=10, loss="elbo")
    hist = train_model(model, x, 5, 1e-3, batch_size=32, seed=0, progress=False)
    # with loss="elbo" the loss is the negative one-draw ELBO estimate itself
    for loss, elbo in zip(hist, hist.elbo, strict=True):
        assert loss == pytest.approx(-elbo, rel=1e-5)


def test_sampling_is_seeded_and_returns_the_chain():
    model = _small_model(n_steps=7)
    a = model.sample(4, generator=torch.Generator().manual_seed(0))
    chain = model.sample(4, generator=torch.Generator().manual_seed(0), return_chain=True)
    assert a.shape == (4, 2) and chain.shape == (8, 4, 2)
    assert torch.equal(chain[0], a)
    b = model.sample(4, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(a, b)


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: df.noise_schedule(0), ValueError, "n_steps"),
        (lambda: df.noise_schedule(10, "quadratic"), ValueError, "kind"),
        (lambda: df.alpha_bar(torch.tensor([0.5, 1.0])), ValueError, "alpha"),
        (lambda: df.forward_marginal(torch.zeros(3, 2), 11, df.noise_schedule(10)), ValueError,
         "t must lie in 1..10"),
        (lambda: df.forward_marginal(torch.zeros(3, 2), 0, df.noise_schedule(10)), ValueError, "t"),
        (lambda: df.forward_marginal(torch.zeros(3, 2), 2.0, df.noise_schedule(10)), TypeError, "t"),
        (lambda: df.forward_marginal(torch.zeros(3, 2), torch.ones(2, dtype=torch.long),
                                     df.noise_schedule(10)), ValueError, "t"),
        (lambda: df.forward_marginal(torch.zeros(3), 1, df.noise_schedule(10)), ValueError, "x"),
        (lambda: df.forward_posterior(torch.zeros(3, 2), torch.zeros(3, 3), 2,
                                      df.noise_schedule(10)), ValueError, "x0 and x_t"),
        (lambda: df.GaussianDiffusion(2, 8, n_steps=1), ValueError, "n_steps"),
        (lambda: df.GaussianDiffusion(2, 8, variance="learned"), ValueError, "variance"),
        (lambda: df.GaussianDiffusion(2, 8, loss="mse"), ValueError, "loss"),
        (lambda: df.GaussianDiffusion(2, 8).training_loss(torch.zeros(4, 3)), ValueError, "x"),
        (lambda: df.GaussianDiffusion(2, 8).training_loss(torch.zeros(4, 2), beta=0.5),
         ValueError, "beta"),
        (lambda: df.GaussianDiffusion(2, 8).training_loss(torch.zeros(4, 2), free_bits=0.1),
         ValueError, "free_bits"),
        (lambda: df.GaussianDiffusion(2, 8).sample(0), ValueError, "n"),
        (lambda: gaussian_data_elbo(torch.zeros(2, 3), *_gaussian_data(), df.noise_schedule(5),
                                    prior="uniform"), ValueError, "prior"),
        (lambda: gaussian_data_elbo(torch.zeros(2, 2), *_gaussian_data(), df.noise_schedule(5)),
         ValueError, "x0"),
        (lambda: gaussian_reverse_kernels(torch.zeros(3, dtype=F64), torch.eye(2, dtype=F64),
                                          df.noise_schedule(5)), ValueError, "cov"),
    ],
)
def test_bad_arguments_raise_errors_that_name_them(call, error, name):
    with pytest.raises(error, match=name):
        call()


def test_train_model_refuses_beta_before_any_weight_moves():
    model = df.GaussianDiffusion(5, 8, n_steps=10)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="beta"):
        train_model(model, _digits_like(), 2, 1e-2, beta=0.5, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
