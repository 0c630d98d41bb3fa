"""Tests for the mixture-model CAVI in vi_helpers.cavi (Blei, Kucukelbir & McAuliffe 2017, section 3).

References are independent of the code under test: the exact evidence by enumerating
every assignment (each with its Gaussian marginal likelihood from torch.distributions),
a Monte Carlo ELBO from torch.distributions samples, autograd for the coordinate
optimality of each update, and a data set whose clusters are known.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.distributions import Categorical, MultivariateNormal, Normal

from vi_helpers.cavi_mixture import gmm_cavi, gmm_elbo, gmm_update_assignments, gmm_update_means

DT = torch.float64


def clusters(n_per: int, centres, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.cat([c + torch.randn(n_per, generator=g, dtype=DT) for c in centres])


def exact_log_evidence(x: torch.Tensor, n_components: int, sigma0: float) -> float:
    """log p(x): sum over all C^N assignments; given c, the points of component j are
    jointly N(0, I + sigma0^2 11^T) (mu_j integrated out)."""
    terms = []
    for c in itertools.product(range(n_components), repeat=x.numel()):
        c = torch.tensor(c)
        total = -x.numel() * math.log(n_components)
        for j in range(n_components):
            xs = x[c == j]
            if xs.numel():
                cov = torch.eye(xs.numel(), dtype=DT) + sigma0**2 * torch.ones(xs.numel(), xs.numel(), dtype=DT)
                total += float(MultivariateNormal(torch.zeros(xs.numel(), dtype=DT), cov).log_prob(xs))
        terms.append(total)
    return float(torch.logsumexp(torch.tensor(terms, dtype=DT), 0))


def monte_carlo_elbo(x, phi, m, s, sigma0, n_samples, seed):
    g = torch.Generator().manual_seed(seed)
    mu = m + s * torch.randn(n_samples, m.numel(), generator=g, dtype=DT)  # (S, C)
    u = torch.rand(n_samples, x.numel(), 1, generator=g, dtype=DT)
    c = (u > phi.cumsum(1)[None]).sum(-1).clamp(max=m.numel() - 1)  # (S, N) draws from q(c)
    log_p = (Normal(0.0, sigma0).log_prob(mu).sum(1) - x.numel() * math.log(m.numel())
             + Normal(mu.gather(1, c), 1.0).log_prob(x).sum(1))
    log_q = Normal(m, s).log_prob(mu).sum(1) + Categorical(probs=phi).log_prob(c).sum(1)
    terms = log_p - log_q
    return float(terms.mean()), float(terms.std() / math.sqrt(n_samples))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_elbo_never_decreases_and_stays_below_the_exact_evidence(seed):
    x = clusters(2, [-2.0, 2.0], seed)  # N = 4: 2^4 assignments to enumerate
    result = gmm_cavi(x, 2, 3.0, generator=torch.Generator().manual_seed(seed))
    assert (result.elbo.diff() >= -1e-12).all()
    assert float(result.elbo[-1]) <= exact_log_evidence(x, 2, 3.0)


def test_elbo_matches_monte_carlo_for_an_arbitrary_q():
    x = clusters(5, [-3.0, 0.5, 4.0], 3)
    g = torch.Generator().manual_seed(4)
    phi = torch.softmax(torch.randn(x.numel(), 3, generator=g, dtype=DT), 1)
    m, s = torch.tensor([-1.0, 0.0, 2.0], dtype=DT), torch.tensor([0.5, 1.2, 0.3], dtype=DT)
    mc, se = monte_carlo_elbo(x, phi, m, s, 2.0, 200_000, 5)
    assert abs(float(gmm_elbo(x, phi, m, s, 2.0)) - mc) < 4 * se


def test_each_update_is_a_stationary_point_of_the_elbo_in_its_factor():
    """Coordinate optimality by autograd: zero gradient in (m, log s) after the means update,
    and in the logits of phi (the softmax parameters) after the assignments update."""
    x = clusters(6, [-2.0, 1.0, 3.0], 6)
    phi = torch.softmax(torch.randn(x.numel(), 3, generator=torch.Generator().manual_seed(7), dtype=DT), 1)
    m, s = gmm_update_means(x, phi, 1.5)
    theta = torch.cat([m, s.log()]).requires_grad_(True)
    (grad,) = torch.autograd.grad(gmm_elbo(x, phi, theta[:3], theta[3:].exp(), 1.5), theta)
    assert grad.abs().max() < 1e-10
    phi_new = gmm_update_assignments(x, m, s)
    logits = phi_new.log().requires_grad_(True)
    (grad,) = torch.autograd.grad(gmm_elbo(x, torch.softmax(logits, 1), m, s, 1.5), logits)
    assert grad.abs().max() < 1e-10


def test_updates_match_their_formulas_by_hand():
    x = torch.tensor([0.0, 2.0], dtype=DT)
    phi = gmm_update_assignments(x, torch.tensor([0.0, 2.0], dtype=DT), torch.tensor([1.0, 1.0], dtype=DT))
    # log phi_nj = m_j x_n - (m_j^2 + s_j^2)/2: for x = 0 the logits are (-1/2, -5/2), for x = 2 (-1/2, 3/2)
    torch.testing.assert_close(phi[0], torch.softmax(torch.tensor([-0.5, -2.5], dtype=DT), 0))
    torch.testing.assert_close(phi[1], torch.softmax(torch.tensor([-0.5, 1.5], dtype=DT), 0))
    m, s = gmm_update_means(x, torch.tensor([[1.0, 0.0], [0.5, 0.5]], dtype=DT), 1.0)
    # component 1: precision 1 + 1.5, mean (0 + 1) / 2.5; component 2: precision 1.5, mean 1 / 1.5
    torch.testing.assert_close(m, torch.tensor([1 / 2.5, 1 / 1.5], dtype=DT))
    torch.testing.assert_close(s, torch.tensor([2.5, 1.5], dtype=DT).rsqrt())


def test_far_away_data_do_not_overflow():
    x = torch.tensor([1000.0, 1001.0, -999.0], dtype=DT)
    phi = gmm_update_assignments(x, torch.tensor([1000.0, -1000.0], dtype=DT), torch.ones(2, dtype=DT))
    assert torch.isfinite(phi).all()
    torch.testing.assert_close(phi.argmax(1), torch.tensor([0, 0, 1]))


def test_best_restart_recovers_separated_clusters_up_to_labels():
    x = clusters(100, [-5.0, 0.0, 5.0], 8)
    runs = [gmm_cavi(x, 3, 10.0, generator=torch.Generator().manual_seed(r)) for r in range(10)]
    best = max(runs, key=lambda r: float(r.elbo[-1]))
    sample_means = torch.stack([x[:100].mean(), x[100:200].mean(), x[200:].mean()])
    torch.testing.assert_close(best.m.sort().values, sample_means, atol=0.05, rtol=0)
    # label switching: every run reaching the best ELBO has the same means up to a permutation
    top = [r for r in runs if float(r.elbo[-1]) > float(best.elbo[-1]) - 1e-6]
    assert all(torch.allclose(r.m.sort().values, best.m.sort().values, atol=1e-6) for r in top)


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda x: gmm_cavi(x, 0, 1.0), ValueError),
        (lambda x: gmm_cavi(x, 10, 1.0), ValueError),
        (lambda x: gmm_cavi(x, 2, -1.0), ValueError),
        (lambda x: gmm_cavi(x, 2, 1.0, generator=0), TypeError),
        (lambda x: gmm_update_assignments(x, torch.zeros(2, dtype=DT), torch.zeros(2, dtype=DT)), ValueError),
        (lambda x: gmm_update_assignments(x, torch.zeros(2, dtype=DT), torch.ones(3, dtype=DT)), ValueError),
        (lambda x: gmm_update_means(x, torch.full((4, 2), 0.3, dtype=DT), 1.0), ValueError),
        (lambda x: gmm_update_means(x, torch.full((3, 2), 0.5, dtype=DT), 1.0), ValueError),
    ],
)
def test_invalid_arguments(call, error):
    with pytest.raises(error):
        call(torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=DT))
