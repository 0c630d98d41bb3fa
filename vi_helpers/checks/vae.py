"""Checks for the exercises of notebook 05 The VAE (``notebooks/05_*.ipynb``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from ._runner import F64, Case, CheckResult, finish, gen, rand, randn, to_f64

__all__ = ['check_vae_loss_bernoulli']

def _bce_terms(x, logits):
    """Per-element -log Bernoulli(x; sigmoid(logits)), stable, x may be fractional."""
    return -(x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits))


def _vae_loss_reference(x, logits, mu, log_var):
    if bool(((x == 0) | (x == 1)).all()):
        recon = -Bernoulli(logits=logits).log_prob(x).sum(-1)
    else:  # grey levels: the continuous relaxation, outside Bernoulli's support
        recon = _bce_terms(x, logits).sum(-1)
    q = Independent(Normal(mu, (0.5 * log_var).exp()), 1)
    prior = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    return (recon + kl_divergence(q, prior)).mean()


def _vae_loss_mutants(x, logits, mu, log_var, x32, logits32):
    recon = _bce_terms(x, logits).sum(-1)
    kl_dim = 0.5 * (mu.pow(2) + log_var.exp() - 1 - log_var)
    kl = kl_dim.sum(-1)
    kl_log_std = (0.5 * (mu.pow(2) + (2 * log_var).exp() - 1 - 2 * log_var)).sum(-1)
    p32 = torch.sigmoid(logits32)
    naive = -(x32 * torch.log(p32) + (1 - x32) * torch.log(1 - p32))
    return {
        "no_kl": recon.mean(),
        "minus_kl": (recon - kl).mean(),
        "mean_pixels": (recon / x.shape[-1] + kl).mean(),
        "mean_pixels_and_dims": (recon / x.shape[-1] + kl_dim.mean(-1)).mean(),
        "sum_batch": (recon + kl).sum(),
        "kl_mean_dims": (recon + kl_dim.mean(-1)).mean(),
        "kl_half": (recon + 2 * kl).mean(),
        "kl_log_std": (recon + kl_log_std).mean(),
        "sigmoid_twice": (_bce_terms(x, torch.sigmoid(logits)).sum(-1) + kl).mean(),
        "swapped_args": (_bce_terms(logits, x).sum(-1) + kl).mean(),
        "vector": recon + kl,
        "nonfinite": (to_f64(naive).sum(-1) + kl).mean(),
    }


_VAE_HINTS = {
    "no_kl": "you forgot the KL term: the loss is the reconstruction term PLUS the KL.",
    "minus_kl": ("the KL is added to the reconstruction loss (the loss is −ELBO), not subtracted."),
    "mean_pixels": (
        "you averaged the binary cross-entropy over the pixels (e.g. the default "
        "reduction='mean'): SUM it over the data dimension and average only over the batch."
    ),
    "mean_pixels_and_dims": (
        "you averaged over pixels and latent dimensions: sum both over their dimension and "
        "average only over the batch."
    ),
    "sum_batch": "you summed over the batch: the loss is the batch MEAN of the per-example terms.",
    "kl_mean_dims": "the KL of a diagonal Gaussian is the SUM over latent dimensions, not the mean.",
    "kl_half": "your KL term is twice too large: a factor ½ is missing.",
    "kl_log_std": (
        "the argument log_var is the log of the VARIANCE: σ² = exp(log_var), not exp(2·log_var)."
    ),
    "sigmoid_twice": (
        "`logits` are pre-sigmoid scores: a ..._with_logits loss applies the sigmoid itself, "
        "so do not apply it first."
    ),
    "swapped_args": (
        "the arguments of the BCE are swapped: the logits are the prediction, x is the target."
    ),
    "vector": "return a single number: the average over the batch of the per-example losses.",
    "nonfinite": (
        "your loss is inf or nan for confident logits: in float32 sigmoid(40) rounds to 1, so log(1 - sigmoid(·)) is log 0. "
        "Use a numerically stable form, e.g. torch.nn.functional.binary_cross_entropy_with_logits "
        "or F.logsigmoid."
    ),
}


def _vae_loss_case(label, x, logits, mu, log_var):
    a = tuple(t.to(torch.float32) for t in (x, logits, mu, log_var))
    d = tuple(to_f64(t) for t in a)
    return Case(
        label,
        a,
        _vae_loss_reference(*d),
        _vae_loss_mutants(*d, a[0], a[1]),
    )


def _vae_loss_cases() -> list[Case]:
    """The cases of :func:`check_vae_loss_bernoulli`, with their references and mutants."""
    g = gen(606)

    def binary(*shape):
        return (rand(g, *shape) < 0.4).float()

    confident_x = binary(3, 10)
    confident_logits = 40.0 * (2 * confident_x - 1)
    confident_logits[:, 0] *= -1  # one confidently wrong pixel per example: costs 40 nats
    cases = [
        _vae_loss_case(
            "logits = 0, mu = 0, log_var = 0: log 2 per pixel, KL = 0",
            binary(2, 5),
            torch.zeros(2, 5),
            torch.zeros(2, 3),
            torch.zeros(2, 3),
        ),
        _vae_loss_case(
            "random batch B = 8, D = 12, L = 3",
            binary(8, 12),
            2 * randn(g, 8, 12),
            randn(g, 8, 3),
            0.5 * randn(g, 8, 3),
        ),
        _vae_loss_case(
            "grey-level x in [0, 1]",
            rand(g, 4, 6),
            2 * randn(g, 4, 6),
            randn(g, 4, 2),
            0.5 * randn(g, 4, 2),
        ),
        _vae_loss_case(
            "a single example (B = 1)",
            binary(1, 7),
            randn(g, 1, 7),
            randn(g, 1, 2),
            0.3 * randn(g, 1, 2),
        ),
        _vae_loss_case(
            "confident logits (±40): needs a stable BCE",
            confident_x,
            confident_logits,
            randn(g, 3, 2),
            0.3 * randn(g, 3, 2),
        ),
        _vae_loss_case(
            "large KL: mu ≈ ±5, log_var in [-4, 3]",
            binary(4, 8),
            randn(g, 4, 8),
            5.0 * randn(g, 4, 3),
            -4.0 + 7.0 * rand(g, 4, 3),
        ),
    ]
    return cases


def check_vae_loss_bernoulli(vae_loss_bernoulli) -> CheckResult:
    r"""Check ``vae_loss_bernoulli(x, logits, mu, log_var) -> scalar`` (notebook 05).

    The negative ELBO of a Bernoulli-decoder VAE, averaged over the batch: for each
    example the binary cross-entropy with logits summed over the ``D`` pixels plus
    :math:`\mathrm{KL}(\mathcal N(\mu,\mathrm{diag}\,e^{\log\sigma^2})\,\|\,\mathcal N(0,I))`
    summed over the ``L`` latent dimensions. Shapes ``x, logits: (B, D)``,
    ``mu, log_var: (B, L)``. Reference: ``Bernoulli(logits=...).log_prob`` and
    ``kl_divergence`` from ``torch.distributions``.
    """
    cases = _vae_loss_cases()
    return finish(
        "vae_loss_bernoulli",
        vae_loss_bernoulli,
        cases,
        "scalar",
        _VAE_HINTS,
        "compute the two terms separately for the first failing case (reconstruction summed "
        "over pixels, KL summed over latent dims, one value per example), then average over "
        "the batch.",
    )




# -- a training loop with KL warm-up and free bits (build) ------------------------------


def _tiny_vae(seed: int):
    from ..models import VariationalAutoencoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VariationalAutoencoder(12, 16, 3, likelihood="bernoulli")


def _copy(model):
    twin = _tiny_vae(0)
    twin.load_state_dict(model.state_dict())
    return twin


def _loop(model, x, n_epochs, lr, batch_size, warmup, free_bits, seed, variant):
    """A hand-written trainer with one deliberate mistake (``variant``): the mutants."""
    import math

    from ..kl import kl_standard_normal_per_dim

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    shuffle = torch.Generator().manual_seed(seed)
    n, n_batches, losses = x.shape[0], math.ceil(x.shape[0] / batch_size), []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for epoch in range(n_epochs):
            order = torch.arange(n) if variant == "no_shuffle" else torch.randperm(n, generator=shuffle)
            total, batch_losses = 0.0, []
            for i in range(n_batches):
                batch = x[order[i * batch_size:(i + 1) * batch_size]]
                done = epoch + 1 if variant == "warmup_per_epoch" else epoch + (i + 1) / n_batches
                beta = min(1.0, done / warmup) if warmup else 1.0
                x_hat, mean, log_var = model(batch)
                kl_dims = kl_standard_normal_per_dim(mean, log_var)  # (B, L)
                if variant == "free_bits_per_example":
                    kl = kl_dims.clamp(min=free_bits).sum(-1).mean()
                elif variant == "free_bits_total":
                    kl = kl_dims.sum(-1).mean().clamp(min=free_bits * kl_dims.shape[-1])
                else:
                    kl = kl_dims.mean(0).clamp(min=free_bits).sum()
                loss = model.reconstruction_loss(batch, x_hat).mean() + beta * kl
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * batch.shape[0]
                batch_losses.append(loss.item())
            losses.append(sum(batch_losses) / len(batch_losses) if variant == "batch_mean" else total / n)
    return torch.tensor(losses, dtype=F64)


_TRAIN_HINTS = {
    "warmup_per_epoch": (
        "your KL weight changes once per epoch; the warm-up ramps it per optimizer step: after "
        "batch i of epoch e, beta = min(1, (e + (i + 1) / n_batches) / kl_warmup_epochs)."
    ),
    "free_bits_per_example": (
        "free bits clamp each latent dimension's KL averaged over the BATCH, not each "
        "example's: average over the batch first, then clamp, then sum over dimensions."
    ),
    "free_bits_total": (
        "free bits clamp each latent dimension separately (a floor of δ nats per dimension), "
        "not the total KL."
    ),
    "batch_mean": (
        "the epoch's loss is the mean over examples: weight each batch's loss by its size "
        "(the last batch is smaller), instead of averaging the batch losses."
    ),
    "no_shuffle": (
        "shuffle the rows every epoch with torch.randperm(N, generator=...) from one "
        "torch.Generator seeded with `seed`, as train_model does."
    ),
    "weights": (
        "your losses match but the trained weights do not: take exactly one Adam step per "
        "batch, on the loss you record."
    ),
}


def check_train_vae(train_vae) -> CheckResult:
    r"""Check ``train_vae(model, x, n_epochs, learning_rate, batch_size, kl_warmup_epochs,
    free_bits, seed) -> (n_epochs,)`` (notebook 05).

    The student's loop must reproduce :func:`vi_helpers.train.train_model` on the
    same seed: the per-epoch mean losses, and (checked afterwards) the trained
    weights. Reference: ``train_model`` itself, run on a copy of the same initial
    model (a tiny Bernoulli VAE, ``D = 12``, ``H = 16``, ``L = 3``).
    """
    from ..train import train_model

    g = gen(707)
    data = (rand(g, 50, 12) > 0.5).to(torch.float32)
    reference_models = {}

    def case(label, n, n_epochs, batch_size, warmup, free_bits, seed):
        student_model = _tiny_vae(seed)
        ref_model = _copy(student_model)
        x = data[:n]
        history = train_model(ref_model, x, n_epochs, 3e-3, batch_size=batch_size,
                              kl_warmup_epochs=warmup, free_bits=free_bits, seed=seed, progress=False)
        reference_models[id(student_model)] = ref_model
        mutants = {
            v: _loop(_copy(student_model), x, n_epochs, 3e-3, batch_size, warmup, free_bits, seed, v)
            for v in ("warmup_per_epoch", "free_bits_per_example", "free_bits_total", "batch_mean",
                      "no_shuffle")
        }
        args = (student_model, x, n_epochs, 3e-3, batch_size, warmup, free_bits, seed)
        return Case(label, args, torch.tensor(list(history), dtype=F64), mutants,
                    rtol=1e-4, atol=1e-4, post=_weights_post)

    def _weights_post(out, args):
        ref = reference_models[id(args[0])]
        for p, q in zip(args[0].parameters(), ref.parameters(), strict=True):
            if not torch.allclose(p.detach(), q.detach(), rtol=1e-3, atol=1e-4):
                return "weights"
        return None

    with torch.random.fork_rng(devices=[]):
        cases = [
            case("plain ELBO: no warm-up, no free bits, 48 rows in batches of 16", 48, 3, 16, 0, 0.0, 0),
            case("KL warm-up over 2 epochs", 48, 3, 16, 2, 0.0, 1),
            case("free bits: δ = 0.02 nats per latent dimension (some above, some below)", 48, 3, 16, 0, 0.02, 2),
            case("warm-up and free bits δ = 0.03, 50 rows: the last batch has 2", 50, 3, 16, 2, 0.03, 3),
        ]

    def isolated(*args):  # the student's torch.manual_seed must not touch the caller's RNG
        with torch.random.fork_rng(devices=[]):
            return train_vae(*args)

    return finish(
        "train_vae",
        isolated if callable(train_vae) else train_vae,
        cases,
        "tensor",
        _TRAIN_HINTS,
        "compare your first epoch with train_model's on the first case: print the KL weight "
        "and the loss of every batch, and check the shuffling (one torch.Generator seeded "
        "once, torch.manual_seed(seed) for the encoder's noise).",
    )


__all__ += ["check_train_vae"]


# -- the decoder variance as a KL weight (experiment) -----------------------------------

#: The recipe of the decoder-variance sweep: hidden units, latent size, Adam step, batch.
VARIANCE_RECIPE = {"hidden_size": 64, "latent_size": 8, "learning_rate": 3e-3, "batch_size": 128}


def _variance_models(x_train, variances, seeds, n_epochs, to_log_var):
    """One Gaussian-decoder VAE per (variance, seed), trained by the recipe (forked RNG).

    ``to_log_var`` maps sigma^2 to the ``obs_log_var`` passed to the model
    (``math.log`` for the reference; the mutants pass other maps).
    """
    from ..models import VariationalAutoencoder
    from ..train import train_model

    r = VARIANCE_RECIPE
    models = {}
    with torch.random.fork_rng(devices=[]):
        for variance in variances:
            for seed in seeds:
                torch.manual_seed(seed)
                model = VariationalAutoencoder(x_train.shape[1], r["hidden_size"], r["latent_size"],
                                               likelihood="gaussian", obs_log_var=to_log_var(variance))
                train_model(model, x_train, n_epochs, r["learning_rate"], batch_size=r["batch_size"],
                            seed=seed, progress=False)
                models[variance, seed] = model
    return models


def _variance_table(models, x, variances, seeds, reduce="mean"):
    from ..kl import kl_standard_normal_per_dim

    out = torch.zeros(len(variances), len(seeds), VARIANCE_RECIPE["latent_size"], dtype=F64)
    with torch.no_grad():
        for i, variance in enumerate(variances):
            for j, seed in enumerate(seeds):
                kl = kl_standard_normal_per_dim(*models[variance, seed].encode(x))  # (N, L)
                out[i, j] = kl.sum(0) if reduce == "sum" else kl.mean(0)
    return out


_VARIANCE_HINTS = {
    "train_data": (
        "you measured the KL on the training images; the experiment asks for the held-out "
        "images (x_test)."
    ),
    "raw_variance": (
        "obs_log_var is the LOG of the decoder variance: pass math.log(sigma2), not sigma2."
    ),
    "log_std": (
        "obs_log_var is the log of the VARIANCE σ², not of the standard deviation σ: "
        "pass math.log(sigma2)."
    ),
    "sum": "report the KL per image: average each dimension's KL over the held-out images, do not sum.",
}


def check_decoder_variance_sweep(decoder_variance_sweep) -> CheckResult:
    r"""Check ``decoder_variance_sweep(x_train, x_test, variances, seeds, n_epochs) -> (n_var, n_seeds, L)`` (notebook 05).

    For every decoder variance :math:`\sigma^2` and seed: ``torch.manual_seed(seed)``,
    ``VariationalAutoencoder(D, 64, 8, likelihood="gaussian", obs_log_var=log σ²)``,
    ``train_model`` with learning rate ``3e-3``, batches of 128 and ``seed=seed``,
    then the held-out KL of each latent dimension,
    ``kl_standard_normal_per_dim(*model.encode(x_test)).mean(0)`` (nats per image).
    Reference: the same recipe run here on a small subset of the digits (few epochs,
    so the check is fast).
    """
    import math

    from ..data import load_digits

    x_all, _ = load_digits(split="train")
    x_train, x_test = x_all[:192], x_all[192:256]

    def case(label, variances, seeds, n_epochs):
        def table(to_log_var, x=x_test, reduce="mean"):
            models = _variance_models(x_train, variances, seeds, n_epochs, to_log_var)
            return _variance_table(models, x, variances, seeds, reduce)

        models = _variance_models(x_train, variances, seeds, n_epochs, math.log)
        mutants = {
            "train_data": _variance_table(models, x_train, variances, seeds),
            "sum": _variance_table(models, x_test, variances, seeds, reduce="sum"),
            "raw_variance": table(float),
            "log_std": table(lambda v: 0.5 * math.log(v)),
        }
        ref = _variance_table(models, x_test, variances, seeds)
        return Case(label, (x_train, x_test, variances, seeds, n_epochs), ref, mutants,
                    rtol=1e-3, atol=1e-3)

    cases = [
        case("variances (0.5, 0.05), seed 0, 3 epochs on 192 images", (0.5, 0.05), (0,), 3),
        case("one variance (0.02), seeds (1, 2), 2 epochs", (0.02,), (1, 2), 2),
    ]

    def isolated(*args):  # the student's torch.manual_seed must not touch the caller's RNG
        with torch.random.fork_rng(devices=[]):
            return decoder_variance_sweep(*args)

    return finish(
        "decoder_variance_sweep",
        isolated if callable(decoder_variance_sweep) else decoder_variance_sweep,
        cases,
        "tensor",
        _VARIANCE_HINTS,
        "follow the recipe exactly (torch.manual_seed(seed) before building each model, "
        "seed=seed for train_model) and return a tensor of shape (number of variances, "
        "number of seeds, 8): one KL per latent dimension.",
    )


__all__ += ["check_decoder_variance_sweep", "VARIANCE_RECIPE"]
