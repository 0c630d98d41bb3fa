"""Tests for vi_helpers.widgets.concepts: the numbers shown against closed forms and quadrature."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate
from torch.distributions import Normal, kl_divergence

from vi_helpers import widgets as vw
from vi_helpers.models import ConjugateGaussianModel

# -- KL explorer ----------------------------------------------------------------------------------


def quad_kls(mu, sigma, w, m, s):
    def log_p(z):
        comps = [
            math.log(wk) + float(Normal(mk, sk).log_prob(torch.tensor(z, dtype=torch.float64)))
            for wk, mk, sk in zip(w, m, s, strict=True)
        ]
        top = max(comps)
        return top + math.log(sum(math.exp(c - top) for c in comps))

    def log_q(z):
        return -0.5 * ((z - mu) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)

    lo, hi = -30.0, 30.0
    qp = integrate.quad(
        lambda z: math.exp(log_q(z)) * (log_q(z) - log_p(z)), lo, hi, points=[mu, *m], limit=200
    )[0]
    pq = integrate.quad(
        lambda z: math.exp(log_p(z)) * (log_p(z) - log_q(z)), lo, hi, points=[mu, *m], limit=200
    )[0]
    return qp, pq


@pytest.mark.parametrize("mu, sigma", [(0.0, 1.0), (2.0, 0.5), (-1.0, 2.5)])
def test_kl_explorer_matches_quadrature(mu, sigma):
    w, m, s = (0.3, 0.7), (-2.0, 1.5), (0.5, 0.8)
    kx = vw.KLExplorer(weights=w, means=m, stds=s)
    kx.mu_slider.value = mu
    kx.sigma_slider.value = sigma
    qp, pq = quad_kls(mu, sigma, w, m, s)
    assert abs(kx.kl_qp - qp) < 1e-4
    assert abs(kx.kl_pq - pq) < 1e-4
    assert f"KL(q‖p) = {kx.kl_qp:8.4f}" in kx.info.value
    assert f"KL(p‖q) = {kx.kl_pq:8.4f}" in kx.info.value


def test_kl_explorer_single_gaussian_p_and_asymmetry():
    kx = vw.KLExplorer(weights=[1.0], means=[1.0], stds=[0.5])
    kx.mu_slider.value = -0.5
    kx.sigma_slider.value = 1.5
    want_qp = kl_divergence(Normal(-0.5, 1.5), Normal(1.0, 0.5))
    want_pq = kl_divergence(Normal(1.0, 0.5), Normal(-0.5, 1.5))
    assert abs(kx.kl_qp - float(want_qp)) < 1e-4
    assert abs(kx.kl_pq - float(want_pq)) < 1e-4
    # bimodal p: q inside one mode has the smaller reverse KL, q over both the smaller forward KL
    kb = vw.KLExplorer()
    kb.mu_slider.value, kb.sigma_slider.value = 2.0, 0.6
    narrow = (kb.kl_qp, kb.kl_pq)
    kb.mu_slider.value, kb.sigma_slider.value = 0.0, 2.1
    wide = (kb.kl_qp, kb.kl_pq)
    assert narrow[0] < wide[0] and narrow[1] > wide[1]


def test_blitted_plot_equals_a_full_redraw(pixels, monkeypatch):
    kx = vw.KLExplorer()
    kx.mu_slider.value = 1.0
    full_draws = []
    draw = kx._plot.canvas.draw
    monkeypatch.setattr(kx._plot.canvas, "draw", lambda: full_draws.append(1) or draw())
    kx.mu_slider.value = 1.5  # q moves, limits stay: blitted
    assert full_draws == []
    blitted = kx.plot.value
    kx._plot.invalidate()
    np.testing.assert_array_equal(pixels(blitted), pixels(kx._plot.png()))
    kx.mu_slider.value = -1.0
    assert kx.plot.value != blitted


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"weights": (0.5, 0.6)}, "weights"),
        ({"weights": (1.0,)}, "same length"),
        ({"stds": (0.5, -1.0)}, "stds"),
        ({"means": (0.0, float("nan"))}, "means"),
        ({"mu": 7.0}, "mu must"),
        ({"sigma": 0.01}, "sigma must"),
        ({"sigma_range": (0.0, 1.0)}, "sigma_range"),
        ({"mu_range": (1.0, -1.0)}, "mu_range"),
        ({"n_grid": 10}, "n_grid"),
    ],
)
def test_kl_explorer_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vw.KLExplorer(**kwargs)


# -- ELBO gap explorer --------------------------------------------------------------------------


def elbo_by_quadrature(model, x, m, s):
    """E_q[log p(x, z)] + H(q), the expectation by 40-point Gauss-Hermite (exact here)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    z = torch.tensor(m + s * nodes, dtype=torch.float64)
    expected = float((model.log_joint(x, z) * torch.tensor(weights)).sum()) / math.sqrt(2 * math.pi)
    return expected + 0.5 * math.log(2 * math.pi * math.e * s**2)


def log_evidence_by_quadrature(model, x):
    def integrand(z):
        return math.exp(float(model.log_joint(x, torch.tensor([z], dtype=torch.float64))[0]))

    return math.log(integrate.quad(integrand, -20, 20, points=[float(x.mean())], limit=200)[0])


@pytest.mark.parametrize("m, s", [(0.0, 1.0), (1.3, 0.2), (-1.0, 1.7)])
def test_elbo_gap_identity(m, s):
    model = ConjugateGaussianModel(mu0=0.5, sigma0=1.5, sigma=0.8)
    x = torch.tensor([1.2, 0.4, 2.0, 1.1], dtype=torch.float64)
    ex = vw.ELBOGapExplorer(model, x, mu_range=(-3.0, 3.0), sigma_range=(0.1, 3.0))
    ex.mu_slider.value = m
    ex.sigma_slider.value = s
    assert abs(ex.elbo + ex.kl - ex.log_evidence) < 1e-9
    # ConjugateGaussianModel.log_joint keeps sigma as a float32 number (0.8 is not exact
    # in float32): the quadrature references agree to about 1e-8, hence 1e-6
    assert abs(ex.log_evidence - log_evidence_by_quadrature(model, x)) < 1e-6
    assert abs(ex.elbo - elbo_by_quadrature(model, x, m, s)) < 1e-6
    post = model.posterior(x)
    want_kl = float(
        kl_divergence(
            Normal(torch.tensor(m, dtype=torch.float64), torch.tensor(s, dtype=torch.float64)), post
        )
    )
    assert abs(ex.kl - want_kl) < 1e-10
    assert f"ELBO {ex.elbo:.4f} + KL(q‖p(z|x)) {ex.kl:.4f}" in ex.info.value
    # the stacked bar: ELBO then KL on top, reaching log p(x)
    top = ex._kl_bar.get_y() + ex._kl_bar.get_height()
    assert abs(top - ex.log_evidence) < 1e-9
    assert abs(ex._elbo_bar.get_y() + ex._elbo_bar.get_height() - ex.elbo) < 1e-9


def test_elbo_gap_closes_at_the_posterior(pixels):
    model = ConjugateGaussianModel(0.0, 1.0, 1.0)
    x = torch.tensor([0.5, 1.5, 1.0])
    ex = vw.ELBOGapExplorer(model, x)
    m, s = ex.posterior
    ex.mu_slider.value = m
    ex.sigma_slider.value = s
    assert abs(ex.kl) < 1e-12
    assert abs(ex.elbo - ex.log_evidence) < 1e-12
    blitted = ex.plot.value
    ex._plot.invalidate()
    np.testing.assert_array_equal(pixels(blitted), pixels(ex._plot.png()))


@pytest.mark.parametrize(
    "model, x, kwargs, exc, match",
    [
        ("model", torch.ones(3), {}, TypeError, "model"),
        (None, torch.ones(2, 3), {}, ValueError, "x must"),
        (None, torch.ones(0), {}, ValueError, "x must not be empty"),
        (None, torch.ones(3), {"mu": 100.0}, ValueError, "mu must"),
        (None, torch.ones(3), {"sigma_range": (-1.0, 1.0)}, ValueError, "sigma_range"),
    ],
)
def test_elbo_gap_bad_input(model, x, kwargs, exc, match):
    model = ConjugateGaussianModel() if model is None else model
    with pytest.raises(exc, match=match):
        vw.ELBOGapExplorer(model, x, **kwargs)


# -- estimator variance explorer ---------------------------------------------------------------------


def test_estimator_explorer_closed_forms_and_samples():
    k, mu, sigma = 0.5, 1.5, 0.8
    ev = vw.EstimatorVarianceExplorer(k=k, mu=mu, sigma=1.0, n_samples=200, seed=3)
    ev.sigma_slider.value = sigma
    ev.n_slider.value = 5000
    a = mu - k
    want = {
        "score": {
            "mu": a**4 / sigma**2 + 14 * a**2 + 15 * sigma**2,
            "sigma": 2 * a**4 / sigma**2 + 60 * a**2 + 74 * sigma**2,
        },
        "pathwise": {"mu": 4 * sigma**2, "sigma": 4 * a**2 + 8 * sigma**2},
    }
    for est in want:
        for p in ("mu", "sigma"):
            assert ev.closed_form[est][p] == pytest.approx(want[est][p], rel=1e-12)
    assert ev.true_gradient == pytest.approx({"mu": 2 * a, "sigma": 2 * sigma})
    # both estimators used the same draws: recover z from the pathwise estimate 2 (z - k)
    z = k + ev.grad_pathwise["mu"] / 2
    torch.testing.assert_close(ev.grad_score["mu"], (z - k) ** 2 * (z - mu) / sigma**2)
    assert ev.grad_score["mu"].shape == (5000,)
    # pathwise estimates are Gaussian: mean within 5 standard errors, variance within
    # 5 standard errors of the sample variance (sd of s^2 is var * sqrt(2 / (n - 1)))
    g = ev.grad_pathwise["mu"]
    assert abs(float(g.mean()) - 2 * a) < 5 * math.sqrt(want["pathwise"]["mu"] / 5000)
    assert abs(float(g.var()) - want["pathwise"]["mu"]) < 5 * want["pathwise"]["mu"] * math.sqrt(
        2 / 4999
    )
    # score-function estimates: unbiased, larger variance
    gs = ev.grad_score["mu"]
    assert abs(float(gs.mean()) - 2 * a) < 5 * math.sqrt(want["score"]["mu"] / 5000)
    assert float(gs.var()) > 3 * float(g.var())
    # histograms are densities over their bins (clipped values land in the end bins)
    for stairs in (ev._score_stairs, ev._path_stairs):
        data = stairs.get_data()
        values, edges = data.values, data.edges
        assert float((values * np.diff(edges)).sum()) == pytest.approx(1.0, rel=1e-12)
    assert f"{want['pathwise']['mu']:8.3f}" in ev.info.value
    assert "(n = 5000)" in ev.info.value


def test_estimator_explorer_reproducible_and_blits(pixels):
    ev = vw.EstimatorVarianceExplorer(seed=1)
    ev2 = vw.EstimatorVarianceExplorer(seed=1)
    assert ev.plot.value == ev2.plot.value
    ev.n_slider.value = 210
    blitted = ev.plot.value
    ev._plot.invalidate()
    np.testing.assert_array_equal(pixels(blitted), pixels(ev._plot.png()))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sigma": 5.0}, "sigma must"),
        ({"n_range": (1, 10)}, "n_range"),
        ({"n_samples": 6000}, "n_samples"),
        ({"k": float("nan")}, "k must"),
        ({"mu": "1"}, "mu must"),
        ({"seed": -2}, "seed"),
    ],
)
def test_estimator_explorer_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vw.EstimatorVarianceExplorer(**kwargs)
