"""Cases for the checks of notebook latent_space: reference solution(s), other correct answers,
and typical mistakes with the hint each must get. Collected by ``test_common.py``."""

from __future__ import annotations

import torch


def slerp(z0, z1, t):
    cos_omega = torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1.0, 1.0)
    omega = torch.acos(cos_omega)
    if torch.sin(omega).abs() < 1e-6:
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)

def _slerp_dot_threshold(z0, z1, t):
    dot = (z0 @ z1) / (z0.norm() * z1.norm())
    if dot > 0.9995:
        return z0 + t * (z1 - z0)
    omega = torch.arccos(dot)
    return (torch.sin((1 - t) * omega) / torch.sin(omega)) * z0 + (
        torch.sin(t * omega) / torch.sin(omega)
    ) * z1

def _naive_slerp(z0, z1, t):
    omega = torch.acos((z0 / z0.norm()) @ (z1 / z1.norm()))
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)

def _slerp_unnormalized_angle(z0, z1, t):
    omega = torch.acos((z0 @ z1).clamp(-1, 1))
    if torch.sin(omega) < 1e-6:
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


REFERENCE = {
    "slerp": slerp,
}
N_CASES = {
    "slerp": 8,
}
ALTERNATIVES = [
    # threshold on the cosine instead of on sin(omega), no clamp
    ("slerp", lambda z0, z1, t: _slerp_dot_threshold(z0, z1, t)),
]
MUTANTS = [
    ("slerp", "lerp", lambda z0, z1, t: (1 - t) * z0 + t * z1, "straight line"),
    ("slerp", "swapped", lambda z0, z1, t: slerp(z0, z1, 1 - t), "weights are swapped"),
    ("slerp", "no_normalize", _slerp_unnormalized_angle, "normalize both vectors"),
    (
        "slerp",
        "unit_output",
        lambda z0, z1, t: slerp(z0 / z0.norm(), z1 / z1.norm(), t),
        "not their normalized directions",
    ),
    ("slerp", "no_fallback", _naive_slerp, "nearly parallel"),
]
