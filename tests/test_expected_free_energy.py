"""Expected free energy (risk + ambiguity) against independent references: the
epistemic/pragmatic decomposition, torch.distributions, and Monte Carlo."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical, kl_divergence

from vi_helpers.free_energy import expected_free_energy

DT = torch.float64


def _random_world(seed, n_actions=3, n_states=4, n_obs=5):
    g = torch.Generator().manual_seed(seed)
    q_s = torch.softmax(torch.randn(n_actions, n_states, generator=g, dtype=DT), -1)
    likelihood = torch.softmax(2 * torch.randn(n_actions, n_states, n_obs, generator=g, dtype=DT), -1)
    log_pref = torch.log_softmax(torch.randn(n_obs, generator=g, dtype=DT), -1)
    return q_s, likelihood, log_pref


def test_risk_and_ambiguity_match_torch_distributions():
    q_s, likelihood, log_pref = _random_world(0)
    out = expected_free_energy(q_s, likelihood, log_pref)
    q_o = torch.einsum("as,aso->ao", q_s, likelihood)
    risk = kl_divergence(Categorical(probs=q_o), Categorical(logits=log_pref.expand_as(q_o)))
    ambiguity = (q_s * Categorical(probs=likelihood).entropy()).sum(-1)
    torch.testing.assert_close(out["risk"], risk)
    torch.testing.assert_close(out["ambiguity"], ambiguity)
    torch.testing.assert_close(out["efe"], risk + ambiguity)


def test_equals_minus_information_gain_minus_expected_log_preference():
    # G = -E_q(o) KL(q(s|o) || q(s)) - E_q(o) log p~(o): the epistemic + pragmatic form
    q_s, likelihood, log_pref = _random_world(1)
    joint = q_s.unsqueeze(-1) * likelihood  # (A, S, O) q(s, o)
    q_o = joint.sum(-2)
    posterior = joint / q_o.unsqueeze(-2)  # q(s | o)
    info_gain = (joint * (posterior.log() - q_s.unsqueeze(-1).log())).sum((-2, -1))
    pragmatic = (q_o * log_pref).sum(-1)
    out = expected_free_energy(q_s, likelihood, log_pref)
    torch.testing.assert_close(out["efe"], -info_gain - pragmatic)


def test_monte_carlo_estimate_of_the_definition():
    q_s, likelihood, log_pref = _random_world(2, n_actions=1)
    g = torch.Generator().manual_seed(3)
    n = 400_000
    s = torch.multinomial(q_s[0], n, replacement=True, generator=g)
    o = torch.multinomial(likelihood[0][s], 1, generator=g).squeeze(-1)
    q_o = q_s[0] @ likelihood[0]
    # log q(s) - log q(s|o) - log p~(o) = log q(o) - log p(o|s) - log p~(o)
    terms = q_o[o].log() - likelihood[0][s, o].log() - log_pref[o]
    estimate, se = terms.mean(), terms.std() / math.sqrt(n)
    assert abs(estimate - expected_free_energy(q_s, likelihood, log_pref)["efe"][0]) < 5 * se


def test_limits_deterministic_outcomes_and_preferences_met():
    q_s = torch.tensor([0.3, 0.7], dtype=DT)
    certain = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=DT)  # always observation 0
    out = expected_free_energy(q_s, certain, torch.tensor([0.0, -math.inf], dtype=DT))
    assert out["ambiguity"] == 0 and out["risk"] == 0  # preferred and predictable
    out = expected_free_energy(q_s, certain, torch.log(torch.tensor([0.2, 0.8], dtype=DT)))
    assert out["ambiguity"] == 0 and torch.isclose(out["risk"], torch.tensor(-math.log(0.2), dtype=DT))
    coin = torch.full((2, 2), 0.5, dtype=DT)
    out = expected_free_energy(q_s, coin, torch.log(torch.tensor([0.5, 0.5], dtype=DT)))
    assert out["risk"].abs() < 1e-12 and torch.isclose(out["ambiguity"], torch.tensor(math.log(2), dtype=DT))


def test_invalid_arguments():
    q_s, likelihood, log_pref = _random_world(4, n_actions=1)
    with pytest.raises(ValueError, match="likelihood"):
        expected_free_energy(q_s, likelihood[..., :3, :], log_pref)
    with pytest.raises(ValueError, match="log_preferences"):
        expected_free_energy(q_s, likelihood, log_pref[:3])
    with pytest.raises(ValueError, match="q_s must sum to 1"):
        expected_free_energy(2 * q_s, likelihood, log_pref)
    with pytest.raises(ValueError, match="q_s"):
        expected_free_energy(-q_s, likelihood, log_pref)
