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


# -- how much ELBO a latent size costs (experiment) -------------------------------------
def latent_size_sweep(x_train, x_test, latent_sizes, seeds, n_epochs):
    from vi_helpers import VariationalAutoencoder, train_model

    out = torch.zeros(len(latent_sizes), len(seeds))
    for i, latent in enumerate(latent_sizes):
        for j, seed in enumerate(seeds):
            torch.manual_seed(seed)
            model = VariationalAutoencoder(x_train.shape[1], 128, latent, likelihood="bernoulli")
            train_model(model, x_train, n_epochs, 3e-3, batch_size=64, kl_warmup_epochs=5, seed=seed,
                        progress=False)
            with torch.no_grad():
                elbo = model.elbo(x_test, n_samples=10, generator=torch.Generator().manual_seed(0))
            out[i, j] = elbo.mean()
    return out


def _sweep_eval(x_on, n_samples=10, reduce="mean"):
    from vi_helpers.checks.latent_space import _sweep_models, _sweep_table

    def fn(x_train, x_test, latent_sizes, seeds, n_epochs):
        models = _sweep_models(x_train, latent_sizes, seeds, n_epochs)
        x = x_train if x_on == "train" else x_test
        return _sweep_table(models, x, latent_sizes, seeds, n_samples=n_samples, reduce=reduce)

    return fn


REFERENCE["latent_size_sweep"] = latent_size_sweep
N_CASES["latent_size_sweep"] = 2
MUTANTS += [
    ("latent_size_sweep", "train_data", _sweep_eval("train"), "held-out images"),
    ("latent_size_sweep", "one_sample", _sweep_eval("test", n_samples=1), "single sample"),
    ("latent_size_sweep", "sum", _sweep_eval("test", reduce="sum"), "do not sum"),
]
