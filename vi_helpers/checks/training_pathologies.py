"""Checks for the exercises of notebook 07 When training goes wrong (``notebooks/07_*.ipynb``)."""

from __future__ import annotations

import torch

from ._runner import F64, Case, CheckResult, finish, gen, to_f64

__all__ = ['check_active_units', 'check_linear_warmup']

def _latents_with_variances(g, n, variances, offsets=None):
    """(n, L) latents whose columns have exactly the given (population) variances."""
    L = len(variances)
    z = torch.randn(n, L, generator=g, dtype=F64)
    z = (z - z.mean(0)) / z.std(0, correction=0)
    z = z * torch.tensor(variances, dtype=F64).sqrt()
    if offsets is not None:
        z = z + torch.tensor(offsets, dtype=F64)
    return z


def _population_variance(mu: torch.Tensor) -> torch.Tensor:
    centred = mu - mu.sum(0) / mu.shape[0]
    return centred.pow(2).sum(0) / mu.shape[0]


def _active_mutants(mu, threshold):
    var = _population_variance(mu)
    L = mu.shape[1]
    return {
        "std": int((var.sqrt() > threshold).sum()),
        "wrong_axis": int((_population_variance(mu.T) > threshold).sum()),
        "inactive": int(L - (var > threshold).sum()),
        "mean": int((mu.mean(0).abs() > threshold).sum()),
        "ignore_threshold": int((var > 0.01).sum()),
    }


_ACTIVE_HINTS = {
    "std": (
        "you compared the standard deviation with the threshold: Burda et al. threshold the "
        "VARIANCE (over the data) of the encoder mean."
    ),
    "wrong_axis": (
        "compute the variance over the data points (dim 0, the N rows), one variance per "
        "latent dimension."
    ),
    "inactive": "you counted the INACTIVE dimensions; count those whose variance exceeds the "
    "threshold.",
    "mean": (
        "a unit is active when its encoder mean VARIES across the data, whatever its average "
        "value: threshold a variance, not a mean."
    ),
    "ignore_threshold": "use the `threshold` argument instead of a fixed 0.01.",
    "mask": "return the count (an int), not the per-dimension mask: sum the mask.",
}


def check_active_units(active_units) -> CheckResult:
    r"""Check ``active_units(mu, threshold=0.01) -> int`` (notebook 07).

    The number of latent dimensions whose encoder mean varies over the data:
    :math:`\#\{j: \mathrm{Var}_x(\mu_j(x)) > \text{threshold}\}` (Burda, Grosse &
    Salakhutdinov 2016), for ``mu`` of shape ``(N, L)``. The threshold is passed
    positionally in the custom-threshold case. The cases keep every variance far
    from the threshold, so the biased and the unbiased variance give the same count.
    Reference: float64 centred second moments.
    """
    g = gen(808)

    def case(label, mu, threshold=None):
        mu32 = mu.to(torch.float32)
        thr = 0.01 if threshold is None else threshold
        dmu = to_f64(mu32)
        expected = int((_population_variance(dmu) > thr).sum())
        args = (mu32,) if threshold is None else (mu32, float(threshold))
        return Case(label, args, expected, _active_mutants(dmu, thr))

    collapsed = torch.tensor([[0.5, -2.0, 3.0]]).repeat(200, 1)
    cases = [
        case(
            "all 4 dimensions active (variances ≈ 1)",
            _latents_with_variances(g, 200, [1.0, 0.8, 1.5, 2.0]),
        ),
        case("collapsed encoder: every row identical", collapsed),
        case(
            "variances 1, 0.5, 0.05, 0.003, 1e-6",
            _latents_with_variances(g, 200, [1.0, 0.5, 0.05, 0.003, 1e-6]),
        ),
        case(
            "threshold = 0.05, variances 1, 0.03, 0.2, 0.005, 1e-4, 0.5",
            _latents_with_variances(g, 200, [1.0, 0.03, 0.2, 0.005, 1e-4, 0.5]),
            threshold=0.05,
        ),
        case(
            "means far from 0 (≈ 1000), variances 2 and 1e-4",
            _latents_with_variances(g, 200, [2.0, 1e-4], offsets=[1000.0, -1000.0]),
        ),
        case(
            "N = 50 examples, L = 8 latents",
            _latents_with_variances(g, 50, [1.0, 1e-5, 0.3, 1e-4, 0.02, 2.0, 1e-3, 0.5]),
        ),
    ]
    return finish(
        "active_units",
        active_units,
        cases,
        "int",
        _ACTIVE_HINTS,
        "print the per-dimension variances of mu for the first failing case and count by "
        "hand how many exceed the threshold.",
    )




# ----------------------------------------------------------------------------- linear_warmup
def _warmup_mutants(epoch: int, warmup_epochs: int) -> dict[str, float]:
    ramp = (epoch + 1) / warmup_epochs
    return {
        "zero_start": min(1.0, epoch / warmup_epochs),
        "uncapped": ramp,
        "late": min(1.0, (epoch + 1) / (warmup_epochs + 1)),
        "int_division": float(min(1, (epoch + 1) // warmup_epochs)),
        "decay": max(0.0, 1.0 - epoch / warmup_epochs),
    }


_WARMUP_HINTS = {
    "zero_start": (
        "in epoch 0 your factor is 0, so the whole first epoch takes no step at all: the ramp "
        "should reach 1/warmup_epochs in epoch 0 and 1 in epoch warmup_epochs - 1."
    ),
    "uncapped": (
        "after the warm-up the factor must stay at 1 (the full learning rate); yours keeps "
        "growing."
    ),
    "late": (
        "your ramp reaches the full learning rate one epoch late: epoch warmup_epochs - 1 (the "
        "last warm-up epoch, counting from 0) should already have factor 1."
    ),
    "int_division": (
        "your factor jumps from 0 to 1: // is integer division. Divide with / so that the factor "
        "grows in equal steps."
    ),
    "decay": "a warm-up INCREASES the learning rate from small to full; yours decreases it.",
}


def check_linear_warmup(linear_warmup) -> CheckResult:
    r"""Check ``linear_warmup(epoch, warmup_epochs) -> float`` (notebook 07).

    The factor that multiplies the learning rate in epoch ``epoch`` (counted from 0)
    of a linear learning-rate warm-up over ``warmup_epochs`` epochs:
    :math:`\min\big(1, (e+1)/E\big)`, so that epoch 0 already takes a small step
    and epoch :math:`E-1` the full one. ``train_model(lr_schedule=...)`` calls the
    function once per epoch (``torch.optim.lr_scheduler.LambdaLR``). Reference:
    the closed form in float64.
    """

    def case(label, epoch, warmup_epochs):
        expected = torch.tensor(min(1.0, (epoch + 1) / warmup_epochs), dtype=F64)
        mutants = {
            k: torch.tensor(v, dtype=F64) for k, v in _warmup_mutants(epoch, warmup_epochs).items()
        }
        return Case(label, (epoch, warmup_epochs), expected, mutants, rtol=1e-6, atol=1e-6)

    cases = [
        case("epoch 0 of a 5-epoch warm-up", 0, 5),
        case("epoch 2 of a 5-epoch warm-up", 2, 5),
        case("epoch 4: the last warm-up epoch", 4, 5),
        case("epoch 12, long after the warm-up", 12, 5),
        case("epoch 3 of a 10-epoch warm-up", 3, 10),
        case("a 1-epoch warm-up: epoch 0", 0, 1),
    ]
    return finish(
        "linear_warmup",
        linear_warmup,
        cases,
        "scalar",
        _WARMUP_HINTS,
        "print your factor for epochs 0 to 7 with warmup_epochs = 5: it should read 0.2, 0.4, "
        "0.6, 0.8, 1, 1, 1, 1.",
    )
