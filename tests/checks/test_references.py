"""The checks' own references and number formatting, against independent sources."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vi_helpers import checks
from vi_helpers.cavi_mixture import gmm_update_assignments
from vi_helpers.checks import (
    _runner,
    evaluating_vaes,
    free_energy,
    kl_divergence,
    latent_space,
    mean_field_cavi,
)
from vi_helpers.elbo import iwae_bound as vi_iwae_bound
from vi_helpers.kl import kl_diag_normal
from vi_helpers.models import ConjugateGaussianModel


def run_check(name, fn, capsys):
    result = getattr(checks, f"check_{name}")(fn)
    return result, capsys.readouterr()


# ------------------------------------------------------------------ the references themselves
def test_free_energy_reference_matches_conjugate_model():
    x = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    m, s = torch.tensor(0.4, dtype=torch.float64), torch.tensor(0.7, dtype=torch.float64)
    ref = free_energy._free_energy_reference(x, m, s, 0.5, 1.5, 0.8)
    model = ConjugateGaussianModel(0.5, 1.5, 0.8)
    torch.testing.assert_close(ref, -model.elbo(x, m, s), rtol=1e-12, atol=1e-12)


def test_assignments_reference_matches_the_package_update():
    x = torch.tensor([1.0, 2.0, 4.5, -0.5], dtype=torch.float64)
    m, s = torch.tensor([0.5, 3.0], dtype=torch.float64), torch.tensor([0.4, 1.3], dtype=torch.float64)
    torch.testing.assert_close(
        mean_field_cavi._assignments_reference(x, m, s), gmm_update_assignments(x, m, s)
    )


def test_iwae_and_kl_references_match_vi_helpers():
    g = torch.Generator().manual_seed(0)
    log_w = 300 * torch.randn(9, 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(evaluating_vaes._iwae_reference(log_w), vi_iwae_bound(log_w))
    mq, lq, mp, lp = torch.randn(4, 3, 5, generator=g, dtype=torch.float64)
    mutants = kl_divergence._kl_diag_mutants(mq, lq, mp, lp)
    torch.testing.assert_close(mutants["half"] / 2, kl_diag_normal(mq, lq, mp, lp))


def test_slerp_reference_is_a_rotation_for_unit_vectors():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 7, generator=g, dtype=torch.float64)
    a, b = a / a.norm(), b / b.norm()
    omega = torch.acos(a @ b)
    for t in (0.0, 0.2, 0.5, 0.9, 1.0):
        z = latent_space._slerp_reference(a, b, t)
        assert math.isclose(float(z.norm()), 1.0, rel_tol=1e-12)
        assert math.isclose(float(torch.acos((z @ a).clamp(-1, 1))), t * float(omega), abs_tol=1e-7)


def test_active_units_cases_do_not_depend_on_the_variance_estimator(capsys):
    for correction in (0, 1):
        result, _ = run_check(
            "active_units",
            lambda mu, threshold=0.01, c=correction: int(
                (mu.var(0, correction=c) > threshold).sum()
            ),
            capsys,
        )
        assert result.status == "passed"


def test_check_result():
    r = checks.CheckResult("x", "failed", 1, 3, ["h"])
    assert not r and repr(r) == "CheckResult('x', failed, 1/3)"
    assert checks.CheckResult("x", "passed", 3, 3)
    assert r._ipython_display_() is None
    with pytest.raises(ValueError, match="status"):
        checks.CheckResult("x", "ok", 1, 1)


def test_numbers_are_rounded_and_never_negative_zero():
    assert _runner.num(-0.00001) == "0.0000"
    assert _runner.num(float("-inf")) == "-inf" and _runner.num(float("nan")) == "nan"
    assert _runner.num(123456.0) == "1.2346e+05"
    assert _runner.fmt(torch.arange(5.0)) == "[0.0000, 1.0000, 2.0000, …] shape (5,)"
    assert np.isclose(float(_runner.fmt(torch.tensor(2 / 3))), 0.6667)




def test_diffusion_references_match_independent_routes():
    from vi_helpers import diffusion as df
    from vi_helpers.checks import diffusion as checks_diffusion
    from vi_helpers.diffusion_gaussian import gaussian_data_elbo

    g = torch.Generator().manual_seed(12)
    x_t, eps = torch.randn(2, 4, 3, generator=g, dtype=torch.float64)
    ref = checks_diffusion._reverse_mean_reference(x_t, eps, 0.95, 0.4)
    torch.testing.assert_close(ref, (x_t - 0.05 / math.sqrt(0.6) * eps) / math.sqrt(0.95))
    mean = torch.tensor([0.5, -1.0], dtype=torch.float64)
    cov = torch.tensor([[0.4, 0.1], [0.1, 0.2]], dtype=torch.float64)
    alpha = df.noise_schedule(30, "linear")
    x0 = mean + torch.randn(100_000, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    for variance in df.VARIANCES:
        elbo, _ = gaussian_data_elbo(x0, mean, cov, alpha, reverse=variance)
        gap = torch.distributions.MultivariateNormal(mean, cov).log_prob(x0) - elbo
        expected = checks_diffusion._covariance_kls(mean, cov, alpha, variance)
        assert abs(float(gap.mean() - expected)) < 4 * float(gap.std()) / math.sqrt(len(gap))
