"""Checks for the exercises of notebook 06 The latent space (``notebooks/06_*.ipynb``)."""

from __future__ import annotations

import torch

from ._runner import F64, Case, CheckResult, finish, gen, randn, to_f64

__all__ = ['check_slerp']

def _slerp_reference(z0, z1, t):
    """Shoemake/White slerp in float64, the angle from a stable half-angle formula."""
    a, b = z0 / z0.norm(), z1 / z1.norm()
    omega = 2.0 * torch.atan2((a - b).norm(), (a + b).norm())
    if float(omega) < 1e-12:  # (anti)parallel within float64: the limit is lerp
        return (1 - t) * z0 + t * z1
    s = torch.sin(omega)
    return torch.sin((1 - t) * omega) / s * z0 + torch.sin(t * omega) / s * z1


def _slerp_plain(z0, z1, t, *, normalize=True, fallback=False):
    """The textbook formula; without the parallel fallback it gives nan when parallel."""
    if normalize:
        dot = (z0 / z0.norm()) @ (z1 / z1.norm())
    else:
        dot = z0 @ z1
    omega = torch.acos(dot.clamp(-1.0, 1.0))
    s = torch.sin(omega)
    if fallback and float(s) < 1e-12:
        return (1 - t) * z0 + t * z1
    return torch.sin((1 - t) * omega) / s * z0 + torch.sin(t * omega) / s * z1


def _slerp_mutants(z0, z1, t, z0_32, z1_32):
    a, b = z0 / z0.norm(), z1 / z1.norm()
    return {
        "lerp": (1 - t) * z0 + t * z1,
        "swapped": _slerp_reference(z0, z1, 1 - t),
        "no_normalize": _slerp_plain(z0, z1, t, normalize=False, fallback=True),
        "unit_output": _slerp_reference(a, b, t),
        # without the fallback, float32 parallel vectors give 0/0 = nan
        "nonfinite": to_f64(_slerp_plain(z0_32, z1_32, t)),
    }


_SLERP_HINTS = {
    "lerp": (
        "your result lies on the straight line between z0 and z1 (linear interpolation). "
        "Slerp follows the arc: for two orthogonal unit vectors at t = 0.5 the result must "
        "still have norm 1."
    ),
    "swapped": "at t = 0 you must return z0 and at t = 1 z1: your two weights are swapped.",
    "no_normalize": (
        "normalize both vectors before computing the angle between them: the angle depends "
        "only on their directions."
    ),
    "unit_output": (
        "interpolate the vectors themselves, not their normalized directions: the result "
        "should keep their lengths (t = 0 gives z0 exactly)."
    ),
    "nonfinite": (
        "for (nearly) parallel vectors sin Ω ≈ 0 and the formula divides 0 by 0: fall back "
        "to linear interpolation when the vectors are nearly parallel (and clamp the cosine "
        "to [-1, 1] before arccos)."
    ),
}


def check_slerp(slerp) -> CheckResult:
    r"""Check ``slerp(z0, z1, t) -> (L,)`` (notebook 06).

    Spherical linear interpolation (Shoemake 1985; White 2016, *Sampling
    Generative Networks*) of two float32 ``(L,)`` vectors at ``t`` in [0, 1] (a
    Python float): with :math:`\Omega` the angle between ``z0`` and ``z1``,
    weights :math:`\sin((1-t)\Omega)/\sin\Omega` and :math:`\sin(t\Omega)/\sin\Omega`
    on the vectors themselves, falling back to linear interpolation when they are
    nearly parallel (0/0; lerp is the limit). Antiparallel vectors, where slerp is
    undefined, are not among the cases. Reference: float64, the angle from the stable half-angle
    formula :math:`\Omega = 2\,\mathrm{atan2}(\|a-b\|, \|a+b\|)` of the unit vectors.
    """
    g = gen(707)

    def case(label, z0, z1, t):
        z0, z1 = z0.to(torch.float32), z1.to(torch.float32)
        d0, d1 = to_f64(z0), to_f64(z1)
        return Case(
            label,
            (z0, z1, float(t)),
            _slerp_reference(d0, d1, float(t)),
            _slerp_mutants(d0, d1, float(t), z0, z1),
        )

    e = torch.eye(3)
    base = randn(g, 6)
    cases = [
        case("t = 0 returns z0", randn(g, 5), randn(g, 5), 0.0),
        case("t = 1 returns z1", randn(g, 5), randn(g, 5), 1.0),
        case("orthogonal unit vectors, t = 0.5: stays on the unit circle", e[0], e[1], 0.5),
        case("random 8-dim vectors, t = 0.3", randn(g, 8), randn(g, 8), 0.3),
        case("different lengths, t = 0.7", randn(g, 4), 3.0 * randn(g, 4), 0.7),
        case(
            "nearly parallel vectors (angle ≈ 1e-6), t = 0.5", base, base + 1e-6 * randn(g, 6), 0.5
        ),
        case("parallel vectors of lengths 1 and 2, t = 0.25", e[0], 2.0 * e[0], 0.25),
        case(
            "identical vectors, t = 0.4",
            torch.tensor([3.0, 4.0, 0.0, 0.0]),
            torch.tensor([3.0, 4.0, 0.0, 0.0]),
            0.4,
        ),
    ]
    return finish(
        "slerp",
        slerp,
        cases,
        "tensor",
        _SLERP_HINTS,
        "check t = 0, t = 1 and two orthogonal unit vectors at t = 0.5 by hand, then the "
        "case of parallel vectors.",
    )




# -- how much ELBO a latent size costs (experiment) -------------------------------------

#: The recipe of the latent-size sweep: hidden units, Adam step, batch, KL warm-up epochs.
SWEEP_RECIPE = {"hidden_size": 128, "learning_rate": 3e-3, "batch_size": 64, "kl_warmup_epochs": 5}


def _sweep_models(x_train, latent_sizes, seeds, n_epochs):
    """Train one Bernoulli VAE per (latent size, seed) by the recipe, under a forked RNG."""
    from ..models import VariationalAutoencoder
    from ..train import train_model

    r = SWEEP_RECIPE
    models = {}
    with torch.random.fork_rng(devices=[]):
        for latent in latent_sizes:
            for seed in seeds:
                torch.manual_seed(seed)
                model = VariationalAutoencoder(x_train.shape[1], r["hidden_size"], latent,
                                               likelihood="bernoulli")
                train_model(model, x_train, n_epochs, r["learning_rate"], batch_size=r["batch_size"],
                            kl_warmup_epochs=r["kl_warmup_epochs"], seed=seed, progress=False)
                models[latent, seed] = model
    return models


def _sweep_table(models, x, latent_sizes, seeds, n_samples=10, reduce="mean"):
    out = torch.zeros(len(latent_sizes), len(seeds), dtype=F64)
    with torch.no_grad():
        for i, latent in enumerate(latent_sizes):
            for j, seed in enumerate(seeds):
                elbo = models[latent, seed].elbo(x, n_samples=n_samples, generator=gen(0))
                out[i, j] = elbo.sum() if reduce == "sum" else elbo.mean()
    return out


_SWEEP_HINTS = {
    "train_data": (
        "you evaluated the ELBO on the training images; the experiment asks for held-out "
        "images (x_test), which is what tells you whether more latent dimensions generalize."
    ),
    "one_sample": (
        "estimate each image's ELBO with n_samples=10 and the generator "
        "torch.Generator().manual_seed(0), as the recipe says (you used a single sample)."
    ),
    "sum": "report the ELBO per image: average over the held-out images, do not sum.",
}


def check_latent_size_sweep(latent_size_sweep) -> CheckResult:
    r"""Check ``latent_size_sweep(x_train, x_test, latent_sizes, seeds, n_epochs) -> (n_L, n_seeds)`` (notebook 06).

    For every latent size and seed: ``torch.manual_seed(seed)``, a Bernoulli
    ``VariationalAutoencoder(D, 128, L)``, ``train_model`` with learning rate
    ``3e-3``, batches of 64, 5 epochs of KL warm-up and ``seed=seed``, then the
    mean held-out ELBO per image from ``model.elbo(x_test, n_samples=10,
    generator=torch.Generator().manual_seed(0))``. Reference: the same recipe run
    here on a small subset of the digits (few epochs, so the check is fast).
    """
    from ..data import load_digits

    x_all, _ = load_digits(split="train")
    x_train, x_test = x_all[:192], x_all[192:256]

    def case(label, latent_sizes, seeds, n_epochs):
        models = _sweep_models(x_train, latent_sizes, seeds, n_epochs)
        ref = _sweep_table(models, x_test, latent_sizes, seeds)
        mutants = {
            "train_data": _sweep_table(models, x_train, latent_sizes, seeds),
            "one_sample": _sweep_table(models, x_test, latent_sizes, seeds, n_samples=1),
            "sum": _sweep_table(models, x_test, latent_sizes, seeds, reduce="sum"),
        }
        return Case(label, (x_train, x_test, latent_sizes, seeds, n_epochs), ref, mutants,
                    rtol=1e-3, atol=1e-3)

    cases = [
        case("latent sizes (1, 3), seeds (0, 1), 2 epochs on 192 images", (1, 3), (0, 1), 2),
        case("one latent size, three seeds (4, 5, 6), 3 epochs", (2,), (4, 5, 6), 3),
    ]

    def isolated(*args):  # the student's torch.manual_seed must not touch the caller's RNG
        with torch.random.fork_rng(devices=[]):
            return latent_size_sweep(*args)

    return finish(
        "latent_size_sweep",
        isolated if callable(latent_size_sweep) else latent_size_sweep,
        cases,
        "tensor",
        _SWEEP_HINTS,
        "follow the recipe exactly (seed the initial weights with torch.manual_seed(seed) "
        "before building each model, and pass seed=seed to train_model); return a tensor "
        "with one row per latent size and one column per seed.",
    )


__all__ += ["check_latent_size_sweep", "SWEEP_RECIPE"]
