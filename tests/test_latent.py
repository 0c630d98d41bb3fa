"""Tests for vi_helpers.latent: lerp and slerp against the unit circle, exact endpoints, fallbacks."""

from __future__ import annotations

import math

import pytest
import torch

from vi_helpers import latent as vl
from vi_helpers import widgets as vw


def test_slerp_orthogonal_unit_vectors_follow_the_circle():
    e1 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    e2 = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    for t in [0.1, 0.25, 0.5, 0.9]:
        want = math.cos(t * math.pi / 2) * e1 + math.sin(t * math.pi / 2) * e2
        torch.testing.assert_close(vl.slerp(e1, e2, t), want, rtol=0, atol=1e-12)
        assert abs(float(vl.slerp(e1, e2, t).norm()) - 1.0) < 1e-12


@pytest.mark.parametrize("fn", [vl.lerp, vl.slerp])
def test_interpolation_endpoints_are_exact(fn):
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(2, 5, generator=g)
    assert torch.equal(fn(a, b, 0.0), a)
    assert torch.equal(fn(a, b, 1.0), b)
    assert torch.equal(fn(a, b, 0), a)


def test_slerp_falls_back_to_lerp_for_parallel_and_zero_vectors():
    a = torch.tensor([1.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(vl.slerp(a, 3 * a, 0.3), 0.7 * a + 0.3 * 3 * a)
    torch.testing.assert_close(vl.slerp(a, -a, 0.25), 0.75 * a - 0.25 * a)
    zero = torch.zeros(2, dtype=torch.float64)
    torch.testing.assert_close(vl.slerp(zero, a, 0.5), 0.5 * a)
    torch.testing.assert_close(vl.lerp(a, zero, 0.25), 0.75 * a)


@pytest.mark.parametrize(
    "z0, z1, t, match",
    [
        (torch.zeros(2), torch.zeros(3), 0.5, "z0 and z1"),
        (torch.zeros(2), torch.zeros(2), 1.5, "t must"),
        (torch.zeros(2), torch.zeros(2), True, "t must"),
        ([0.0, 1.0], torch.zeros(2), 0.5, "z0"),
    ],
)
def test_slerp_bad_input(z0, z1, t, match):
    with pytest.raises((TypeError, ValueError), match=match):
        vl.slerp(z0, z1, t)


def test_widgets_re_export_the_paths():
    assert vw.lerp is vl.lerp and vw.slerp is vl.slerp


def test_slerp_keeps_the_norm_where_lerp_cuts_through_the_interior():
    """The module's why: for equal norms the arc keeps the norm; the line's midpoint
    between two orthogonal codes of norm sqrt(L) has norm sqrt(L / 2)."""
    L = 64
    z0 = torch.zeros(L, dtype=torch.float64)
    z1 = torch.zeros(L, dtype=torch.float64)
    z0[: L // 2] = 1.0
    z1[L // 2 :] = 1.0  # orthogonal, both of norm sqrt(L / 2); rescale to sqrt(L)
    z0, z1 = z0 * math.sqrt(2.0), z1 * math.sqrt(2.0)
    for t in [0.1, 0.5, 0.8]:
        assert abs(float(vl.slerp(z0, z1, t).norm()) - math.sqrt(L)) < 1e-10
    assert abs(float(vl.lerp(z0, z1, 0.5).norm()) - math.sqrt(L / 2)) < 1e-10


def test_slerp_works_on_the_last_dimension_of_a_batch():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(2, 4, 3, dtype=torch.float64, generator=g)
    batch = vl.slerp(z0, z1, 0.3)
    assert batch.shape == (4, 3)
    for i in range(4):
        torch.testing.assert_close(batch[i], vl.slerp(z0[i], z1[i], 0.3), rtol=0, atol=1e-15)
