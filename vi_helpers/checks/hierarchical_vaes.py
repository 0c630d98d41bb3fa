"""Checks for the exercises of notebook 11 Hierarchical VAEs (``notebooks/11_*.ipynb``)."""

from __future__ import annotations

import functools

import torch

from ._runner import F64, Case, CheckResult, finish, gen, rand, to_f64

__all__ = ["check_free_bits_kl", "check_collapse_experiment"]


# ============================================================================ free bits per layer
def _floored(kl: torch.Tensor, delta: float) -> torch.Tensor:
    """sum_j max(delta, mean_b kl[b, j]) in float64."""
    return kl.mean(dim=0).clamp(min=delta).sum()


def _free_bits_mutants(kl_1, kl_2, d1, d2) -> dict[str, torch.Tensor]:
    return {
        "per_example": kl_1.clamp(min=d1).sum(-1).mean() + kl_2.clamp(min=d2).sum(-1).mean(),
        "layer_total": kl_1.mean(0).sum().clamp(min=d1 * kl_1.shape[1])
        + kl_2.mean(0).sum().clamp(min=d2 * kl_2.shape[1]),
        "one_delta": _floored(kl_1, d1) + _floored(kl_2, d1),
        "swapped": _floored(kl_1, d2) + _floored(kl_2, d1),
        "min": kl_1.mean(0).clamp(max=d1).sum() + kl_2.mean(0).clamp(max=d2).sum(),
        "batch_sum": kl_1.sum(0).clamp(min=d1).sum() + kl_2.sum(0).clamp(min=d2).sum(),
        "no_floor": kl_1.mean(0).sum() + kl_2.mean(0).sum(),
        "one_layer": _floored(kl_1, d1),
    }


_FREE_BITS_HINTS = {
    "per_example": (
        "you floored each example's KL before averaging over the batch: free bits floor "
        "each unit's BATCH-MEAN KL, so examples below the floor still get gradients as "
        "long as the unit's average is above it."
    ),
    "layer_total": (
        "you floored the total KL of each layer: the floor applies to every UNIT "
        "(column) separately, so one busy unit cannot hide the collapse of the others."
    ),
    "one_delta": "use each layer's own floor: delta_1 for kl_1 and delta_2 for kl_2.",
    "swapped": "the floors are swapped: delta_1 belongs to kl_1 (the bottom layer z_1), "
    "delta_2 to kl_2 (the top layer z_2).",
    "min": "a floor is a MAXIMUM with delta (the KL counts as at least delta), not a minimum.",
    "batch_sum": "average over the batch (dim 0) before flooring; do not sum over it.",
    "no_floor": "you returned the plain KL: apply the floors delta_1 and delta_2.",
    "one_layer": "add the floored KL of BOTH layers.",
}


def check_free_bits_kl(free_bits_kl) -> CheckResult:
    r"""Check ``free_bits_kl(kl_1, kl_2, delta_1, delta_2) -> scalar`` (notebook 11).

    :math:`\sum_j\max(\delta_1,\overline{\mathrm{KL}}_{1j})+\sum_k\max(\delta_2,\overline{\mathrm{KL}}_{2k})`
    for per-unit KLs ``kl_1 (B, L_1)`` and ``kl_2 (B, L_2)``, where the bar is the
    mean over the batch (Kingma et al. 2016, per layer). Reference: float64.
    """
    g = gen(1111)

    def case(label, kl_1, kl_2, d1, d2):
        a, b = to_f64(kl_1), to_f64(kl_2)
        expected = _floored(a, d1) + _floored(b, d2)
        return Case(label, (kl_1, kl_2, float(d1), float(d2)), expected,
                    _free_bits_mutants(a, b, d1, d2))

    spread = torch.tensor([0.02, 0.3, 1.5, 0.0, 4.0])
    cases = [
        case("floors 0: the plain batch-mean KL", rand(g, 6, 5), rand(g, 6, 3), 0.0, 0.0),
        case("top layer collapsed (KL_2 ≈ 0), delta = (0.1, 0.5)",
             2.0 * rand(g, 8, 4), 0.01 * rand(g, 8, 2), 0.1, 0.5),
        case("units on both sides of the floors, delta = (0.25, 0.05)",
             spread * 2.0 * rand(g, 10, 5), spread[:3] * 2.0 * rand(g, 10, 3), 0.25, 0.05),
        case("one example far above, the rest at 0 (B = 4)",
             torch.tensor([[3.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]),
             torch.tensor([[0.0], [0.0], [0.0], [2.0]]), 0.5, 0.2),
        case("B = 1, delta = (1.0, 0.0)", rand(g, 1, 3), 3.0 * rand(g, 1, 2), 1.0, 0.0),
    ]
    return finish(
        "free_bits_kl", free_bits_kl, cases, "scalar", _FREE_BITS_HINTS,
        "take the first failing case, compute kl.mean(dim=0) of each layer by hand, "
        "raise every entry below its layer's floor to the floor, and add everything up.",
    )


# ============================================================================ the collapse experiment
#: The protocol of the experiment exercise (notebook 11): what the reference runs.
EXPERIMENT_LATENT_SIZES = (8, 4)
EXPERIMENT_LEARNING_RATE = 3e-3


def _experiment_runs(seeds, n_epochs, x_train, x_test, hidden_size, *, warmup=True):
    """Run the protocol: ``{"test": rows, "train": rows}``, each ``(len(seeds), 2)`` float64
    (top-layer KL in nats, active top-layer units), measured on either data set."""
    from ..hierarchical import HierarchicalVAE
    from ..train import train_model

    rows = {"test": [], "train": []}
    for seed in seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = HierarchicalVAE(x_train.shape[1], hidden_size, EXPERIMENT_LATENT_SIZES)
            train_model(model, x_train, n_epochs, EXPERIMENT_LEARNING_RATE, seed=seed,
                        kl_warmup_epochs=n_epochs // 2 if warmup else 0, progress=False)
            model.eval()
            for name, x in (("test", x_test), ("train", x_train)):
                kl = model.kl_per_layer(x, generator=gen(0))["z2"].sum()
                active = model.active_units(x, generator=gen(0))["z2"][0]
                rows[name].append([float(kl), float(active)])
    return {name: torch.tensor(r, dtype=F64) for name, r in rows.items()}


_EXPERIMENT_HINTS = {
    "no_warmup": (
        "your runs match training WITHOUT warm-up: pass kl_warmup_epochs=n_epochs // 2 "
        "to train_model."
    ),
    "same_seed": (
        "every row is the run of the first seed: build the model after "
        "torch.manual_seed(seed) and pass seed=seed to train_model, for each seed in seeds."
    ),
    "on_train": "measure on the held-out images x_test, not on the training images.",
    "unseeded": (
        "two calls with the same seeds gave different numbers: call torch.manual_seed(seed) "
        "right before building the model (its initial weights) and pass seed=seed to "
        "train_model (its shuffling and noise)."
    ),
}


def _forked(fn):
    """``fn`` run in a forked global RNG: the student's ``torch.manual_seed`` stays inside."""

    @functools.wraps(fn)
    def run(*args):
        with torch.random.fork_rng(devices=[]):
            return fn(*args)

    return run


def _experiment_probe(fn) -> str | None:
    """Run a small case twice in one forked RNG: different answers mean unseeded runs."""
    x_train, x_test = _experiment_data()
    try:
        with torch.random.fork_rng(devices=[]):
            a = torch.as_tensor(fn((7,), 2, x_train, x_test, 8), dtype=F64)
            b = torch.as_tensor(fn((7,), 2, x_train, x_test, 8), dtype=F64)
    except Exception:  # the cases already reported the error
        return None
    return None if a.shape == b.shape and torch.equal(a, b) else "unseeded"


def _experiment_data():
    from ..data import load_digits

    x, _ = load_digits(split="all")
    return x[:256].clone(), x[256:320].clone()


def check_collapse_experiment(collapse_experiment) -> CheckResult:
    r"""Check the protocol of ``collapse_experiment(seeds, n_epochs, x_train, x_test, hidden_size)`` (notebook 11).

    For each seed: ``torch.manual_seed(seed)``, build
    ``HierarchicalVAE(D, hidden_size, (8, 4))``, train it with ``train_model(model,
    x_train, n_epochs, 3e-3, seed=seed, kl_warmup_epochs=n_epochs // 2,
    progress=False)``, and report the held-out KL of the top layer (nats, summed over
    its units) and its number of active units; return a ``(len(seeds), 2)`` tensor.
    The check runs the protocol on small cases (256 training digits, a few epochs)
    against the same protocol run here, and diagnoses a missing warm-up, one seed
    for every run, measuring on the training data and unseeded runs. The caller's
    global RNG is left as it was.
    """
    x_train, x_test = _experiment_data()

    def case(label, seeds, n_epochs, hidden_size):
        args = (seeds, n_epochs, x_train, x_test, hidden_size)
        runs = _experiment_runs(*args)
        expected = runs["test"]
        mutants = {
            "no_warmup": _experiment_runs(*args, warmup=False)["test"],
            "on_train": runs["train"],
            "same_seed": expected[:1].expand_as(expected),
        }
        return Case(label, args, expected, mutants)

    cases = [
        case("seeds (0, 1), 4 epochs, H = 16", (0, 1), 4, 16),
        case("seeds (2, 3), 6 epochs, H = 8", (2, 3), 6, 8),
    ]
    return finish(
        "collapse_experiment",
        _forked(collapse_experiment) if callable(collapse_experiment) else collapse_experiment,
        cases, "tensor", _EXPERIMENT_HINTS,
        "compare your steps with the protocol in the exercise, one at a time: the model's "
        "sizes, the learning rate 3e-3, kl_warmup_epochs=n_epochs // 2, the held-out data.",
        probe=lambda _: _experiment_probe(collapse_experiment),
    )
