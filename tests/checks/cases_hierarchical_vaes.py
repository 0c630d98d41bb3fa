"""Cases for the checks of notebook hierarchical_vaes: reference solution(s), other correct answers,
and typical mistakes with the hint each must get. Collected by ``test_common.py``."""

from __future__ import annotations

import torch

from vi_helpers.hierarchical import HierarchicalVAE
from vi_helpers.train import train_model


def free_bits_kl(kl_1, kl_2, delta_1, delta_2):
    return kl_1.mean(dim=0).clamp(min=delta_1).sum() + kl_2.mean(dim=0).clamp(min=delta_2).sum()


def _experiment(seeds, n_epochs, x_train, x_test, hidden_size, *, warmup=True,
                seed_init=True, x_eval=None, same_seed=False):
    rows = []
    for seed in seeds:
        s = seeds[0] if same_seed else seed
        if seed_init:
            torch.manual_seed(s)
        model = HierarchicalVAE(x_train.shape[1], hidden_size, (8, 4))
        train_model(model, x_train, n_epochs, 3e-3, seed=s, progress=False,
                    kl_warmup_epochs=n_epochs // 2 if warmup else 0)
        x = x_test if x_eval is None else x_eval
        kl = model.kl_per_layer(x)["z2"].sum()
        rows.append(torch.stack([kl, torch.tensor(float(model.active_units(x)["z2"][0]))]))
    return torch.stack(rows)


def collapse_experiment(seeds, n_epochs, x_train, x_test, hidden_size):
    return _experiment(seeds, n_epochs, x_train, x_test, hidden_size)


REFERENCE = {
    "free_bits_kl": free_bits_kl,
    "collapse_experiment": collapse_experiment,
}
N_CASES = {
    "free_bits_kl": 5,
    "collapse_experiment": 2,
}
ALTERNATIVES = [
    (
        "free_bits_kl",
        lambda kl_1, kl_2, d1, d2: sum(
            torch.maximum(kl.mean(0), torch.full_like(kl.mean(0), d)).sum()
            for kl, d in ((kl_1, d1), (kl_2, d2))
        ),
    ),
    # float64 results, a list of lists turned into a tensor
    (
        "collapse_experiment",
        lambda *a: torch.tensor(collapse_experiment(*a).tolist(), dtype=torch.float64),
    ),
]
MUTANTS = [
    (
        "free_bits_kl",
        "per_example",
        lambda k1, k2, d1, d2: k1.clamp(min=d1).sum(-1).mean() + k2.clamp(min=d2).sum(-1).mean(),
        "BATCH-MEAN KL",
    ),
    (
        "free_bits_kl",
        "layer_total",
        lambda k1, k2, d1, d2: k1.mean(0).sum().clamp(min=d1 * k1.shape[1])
        + k2.mean(0).sum().clamp(min=d2 * k2.shape[1]),
        "every UNIT",
    ),
    ("free_bits_kl", "one_delta", lambda k1, k2, d1, d2: free_bits_kl(k1, k2, d1, d1),
     "each layer's own floor"),
    ("free_bits_kl", "swapped", lambda k1, k2, d1, d2: free_bits_kl(k1, k2, d2, d1),
     "floors are swapped"),
    (
        "free_bits_kl",
        "min",
        lambda k1, k2, d1, d2: k1.mean(0).clamp(max=d1).sum() + k2.mean(0).clamp(max=d2).sum(),
        "not a minimum",
    ),
    ("free_bits_kl", "no_floor", lambda k1, k2, d1, d2: k1.mean(0).sum() + k2.mean(0).sum(),
     "plain KL"),
    ("collapse_experiment", "no_warmup",
     lambda *a: _experiment(*a, warmup=False), "kl_warmup_epochs=n_epochs // 2"),
    ("collapse_experiment", "on_train", lambda *a: _experiment(*a, x_eval=a[2]), "held-out"),
    ("collapse_experiment", "same_seed", lambda *a: _experiment(*a, same_seed=True),
     "every row is the run of the first seed"),
    ("collapse_experiment", "unseeded", lambda *a: _experiment(*a, seed_init=False),
     "two calls with the same seeds gave different numbers"),
]
