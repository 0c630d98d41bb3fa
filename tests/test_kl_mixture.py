"""Tests for vi_helpers.kl.kl_normal_mixture and normal_mixture against closed forms.

A mixture of one component, or of identical components, is a Gaussian, so both
KLs have closed forms (:func:`vi_helpers.kl.kl_univariate_normal`, itself tested
against ``torch.distributions``); the mixture density is checked against a sum
of ``torch.distributions.Normal`` densities. The quadrature check of two
different components is in ``tests/widgets/test_concepts.py`` (KLExplorer).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal

from vi_helpers import widgets as vw
from vi_helpers.kl import kl_normal_mixture, kl_univariate_normal, normal_mixture


def closed_form(mu, sigma, m, s) -> tuple[float, float]:
    mu_, sigma_, m_, s_ = (torch.tensor(v, dtype=torch.float64) for v in (mu, sigma, m, s))
    return (
        float(kl_univariate_normal(mu_, sigma_, m_, s_)),
        float(kl_univariate_normal(m_, s_, mu_, sigma_)),
    )


@pytest.mark.parametrize(
    "mu, sigma, m, s",
    [(0.0, 1.0, 0.0, 1.0), (0.5, 0.1, -1.0, 2.0), (3.0, 4.0, 0.0, 0.3), (-4.0, 0.2, 4.0, 0.2)],
)
def test_kl_normal_mixture_single_gaussian_matches_closed_form(mu, sigma, m, s):
    kl_qp, kl_pq = vw.kl_normal_mixture(mu, sigma, [1.0], [m], [s])
    want_qp, want_pq = closed_form(mu, sigma, m, s)
    assert abs(kl_qp - want_qp) < 1e-8
    assert abs(kl_pq - want_pq) < 1e-8


def test_identical_components_are_one_gaussian():
    kl_qp, kl_pq = kl_normal_mixture(
        0.7, 1.3, torch.tensor([0.2, 0.3, 0.5]), (-0.5, -0.5, -0.5), [0.8, 0.8, 0.8]
    )
    want_qp, want_pq = closed_form(0.7, 1.3, -0.5, 0.8)
    assert abs(kl_qp - want_qp) < 1e-8
    assert abs(kl_pq - want_pq) < 1e-8


def test_normal_mixture_density_is_the_weighted_sum():
    w, m, s = (0.3, 0.7), (-2.0, 1.5), (0.5, 0.8)
    p = normal_mixture(w, m, s)
    z = torch.linspace(-6.0, 6.0, 97, dtype=torch.float64)
    want = sum(
        wk
        * Normal(torch.tensor(mk, dtype=torch.float64), torch.tensor(sk, dtype=torch.float64))
        .log_prob(z)
        .exp()
        for wk, mk, sk in zip(w, m, s, strict=True)
    )
    torch.testing.assert_close(p.log_prob(z).exp(), want, rtol=1e-12, atol=0)
    assert p.log_prob(z).dtype == torch.float64


def test_both_kls_are_nonnegative_and_differ_for_a_bimodal_p():
    kl_qp, kl_pq = kl_normal_mixture(2.0, 0.6, (0.5, 0.5), (-2.0, 2.0), (0.6, 0.6))
    # q on one mode: p >= q / 2, so KL(q || p) <= log 2, nearly equal (q misses the other mode)
    assert math.log(2.0) - 0.01 < kl_qp <= math.log(2.0)
    assert kl_pq > 1.0 > kl_qp >= 0.0


def test_kl_normal_mixture_bad_input():
    with pytest.raises(ValueError, match="sigma"):
        vw.kl_normal_mixture(0.0, 0.0, [1.0], [0.0], [1.0])
    with pytest.raises(ValueError, match="mu"):
        vw.kl_normal_mixture(float("inf"), 1.0, [1.0], [0.0], [1.0])
    with pytest.raises(ValueError, match="n_grid"):
        kl_normal_mixture(0.0, 1.0, [1.0], [0.0], [1.0], n_grid=100)


@pytest.mark.parametrize(
    "weights, means, stds, exc, match",
    [
        ((0.5, 0.6), (0.0, 1.0), (1.0, 1.0), ValueError, "weights"),
        ((1.0,), (0.0, 1.0), (1.0, 1.0), ValueError, "same length"),
        ((0.5, 0.5), (0.0, 1.0), (1.0, 0.0), ValueError, "stds"),
        ((), (), (), ValueError, "weights"),
        ((1.0,), ("a",), (1.0,), TypeError, "means"),
    ],
)
def test_normal_mixture_bad_input(weights, means, stds, exc, match):
    with pytest.raises(exc, match=match):
        normal_mixture(weights, means, stds)
