"""Cases for the checks of notebook vae: reference solution(s), other correct answers,
and typical mistakes with the hint each must get. Collected by ``test_common.py``."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def vae_loss_bernoulli(x, logits, mu, log_var):
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)
    kl = 0.5 * (mu**2 + log_var.exp() - 1.0 - log_var).sum(dim=-1)
    return (recon + kl).mean()


REFERENCE = {
    "vae_loss_bernoulli": vae_loss_bernoulli,
}
N_CASES = {
    "vae_loss_bernoulli": 6,
}
ALTERNATIVES = [
    (
        "vae_loss_bernoulli",
        lambda x, logits, mu, log_var: torch.mean(
            -(x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(1)
            - 0.5 * (1 + log_var - mu.pow(2) - log_var.exp()).sum(1)
        ),
    ),
]
MUTANTS = [
    (
        "vae_loss_bernoulli",
        "no_kl",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1).mean()
        ),
        "forgot the KL term",
    ),
    (
        "vae_loss_bernoulli",
        "minus_kl",
        lambda x, lg, mu, lv: (
            2 * F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1).mean()
            - vae_loss_bernoulli(x, lg, mu, lv)
        ),
        "not subtracted",
    ),
    (
        "vae_loss_bernoulli",
        "bce_default_mean",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(lg, x)
            + (0.5 * (mu**2 + lv.exp() - 1 - lv).sum(-1)).mean()
        ),
        "reduction='mean'",
    ),
    (
        "vae_loss_bernoulli",
        "sum_batch",
        lambda x, lg, mu, lv: vae_loss_bernoulli(x, lg, mu, lv) * x.shape[0],
        "summed over the batch",
    ),
    (
        "vae_loss_bernoulli",
        "kl_mean_dims",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1)
            + 0.5 * (mu**2 + lv.exp() - 1 - lv).mean(-1)
        ).mean(),
        "SUM over latent dimensions",
    ),
    (
        "vae_loss_bernoulli",
        "kl_no_half",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1)
            + (mu**2 + lv.exp() - 1 - lv).sum(-1)
        ).mean(),
        "factor ½ is missing",
    ),
    (
        "vae_loss_bernoulli",
        "kl_log_std",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1)
            + 0.5 * (mu**2 + torch.exp(2 * lv) - 1 - 2 * lv).sum(-1)
        ).mean(),
        "log of the VARIANCE",
    ),
    (
        "vae_loss_bernoulli",
        "sigmoid_twice",
        lambda x, lg, mu, lv: vae_loss_bernoulli(x, torch.sigmoid(lg), mu, lv),
        "pre-sigmoid",
    ),
    (
        "vae_loss_bernoulli",
        "swapped_args",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(x, lg, reduction="none").sum(-1)
            + 0.5 * (mu**2 + lv.exp() - 1 - lv).sum(-1)
        ).mean(),
        "arguments of the BCE are swapped",
    ),
    (
        "vae_loss_bernoulli",
        "vector",
        lambda x, lg, mu, lv: (
            F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1)
            + 0.5 * (mu**2 + lv.exp() - 1 - lv).sum(-1)
        ),
        "average over the batch",
    ),
    (
        "vae_loss_bernoulli",
        "naive_bce",
        lambda x, lg, mu, lv: (
            -(x * torch.log(torch.sigmoid(lg)) + (1 - x) * torch.log(1 - torch.sigmoid(lg))).sum(-1)
            + 0.5 * (mu**2 + lv.exp() - 1 - lv).sum(-1)
        ).mean(),
        "numerically stable",
    ),
]


# -- a training loop with KL warm-up and free bits (build) ------------------------------
def train_vae(model, x, n_epochs, learning_rate, batch_size, kl_warmup_epochs, free_bits, seed):
    import math

    from vi_helpers.kl import kl_standard_normal_per_dim

    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    shuffle = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n, n_batches = x.shape[0], math.ceil(x.shape[0] / batch_size)
    losses = []
    for epoch in range(n_epochs):
        order = torch.randperm(n, generator=shuffle)
        total = 0.0
        for i in range(n_batches):
            batch = x[order[i * batch_size:(i + 1) * batch_size]]
            beta = min(1.0, (epoch + (i + 1) / n_batches) / kl_warmup_epochs) if kl_warmup_epochs else 1.0
            x_hat, mean, log_var = model(batch)
            kl = kl_standard_normal_per_dim(mean, log_var).mean(dim=0).clamp(min=free_bits).sum()
            loss = model.reconstruction_loss(batch, x_hat).mean() + beta * kl
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * batch.shape[0]
        losses.append(total / n)
    return torch.tensor(losses)


def _train_with_loss_function(model, x, n_epochs, learning_rate, batch_size, kl_warmup_epochs, free_bits, seed):
    # the model's own loss_function with beta and free_bits (an equally correct answer)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    shuffle = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n, losses, step, n_batches = x.shape[0], [], 0, -(-x.shape[0] // batch_size)
    for _epoch in range(n_epochs):
        total = 0.0
        for batch in x[torch.randperm(n, generator=shuffle)].split(batch_size):
            step += 1
            beta = min(1.0, step / (n_batches * kl_warmup_epochs)) if kl_warmup_epochs else 1.0
            loss = model.loss_function(batch, *model(batch), beta=beta, free_bits=free_bits)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / n)
    return torch.tensor(losses)


def _train_variant(variant):
    from vi_helpers.checks.vae import _loop

    def fn(model, x, n_epochs, learning_rate, batch_size, kl_warmup_epochs, free_bits, seed):
        return _loop(model, x, n_epochs, learning_rate, batch_size, kl_warmup_epochs, free_bits, seed, variant)

    return fn


def _two_steps_per_batch(model, x, n_epochs, learning_rate, batch_size, kl_warmup_epochs, free_bits, seed):
    losses = train_vae(model, x, n_epochs, learning_rate, batch_size, kl_warmup_epochs, free_bits, seed)
    with torch.no_grad():  # right losses, wrong weights
        for p in model.parameters():
            p.add_(0.01)
    return losses


REFERENCE["train_vae"] = train_vae
N_CASES["train_vae"] = 4
ALTERNATIVES.append(("train_vae", _train_with_loss_function))
MUTANTS += [
    ("train_vae", "warmup_per_epoch", _train_variant("warmup_per_epoch"), "ramps it per optimizer step"),
    ("train_vae", "free_bits_per_example", _train_variant("free_bits_per_example"), "averaged over the BATCH"),
    ("train_vae", "free_bits_total", _train_variant("free_bits_total"), "not the total KL"),
    ("train_vae", "batch_mean", _train_variant("batch_mean"), "weight each batch's loss by its size"),
    ("train_vae", "no_shuffle", _train_variant("no_shuffle"), "shuffle the rows every epoch"),
    ("train_vae", "weights", _two_steps_per_batch, "trained weights do not"),
]


# -- the decoder variance as a KL weight (experiment) -----------------------------------
def decoder_variance_sweep(x_train, x_test, variances, seeds, n_epochs):
    import math

    from vi_helpers import VariationalAutoencoder, train_model
    from vi_helpers.kl import kl_standard_normal_per_dim

    out = torch.zeros(len(variances), len(seeds), 8)
    for i, sigma2 in enumerate(variances):
        for j, seed in enumerate(seeds):
            torch.manual_seed(seed)
            model = VariationalAutoencoder(x_train.shape[1], 64, 8, likelihood="gaussian",
                                           obs_log_var=math.log(sigma2))
            train_model(model, x_train, n_epochs, 3e-3, batch_size=128, seed=seed, progress=False)
            with torch.no_grad():
                mu, log_var = model.encode(x_test)
            out[i, j] = kl_standard_normal_per_dim(mu, log_var).mean(dim=0)
    return out


def _variance_sweep_via_distributions(x_train, x_test, variances, seeds, n_epochs):
    # the KL from torch.distributions instead of the closed form (an equally correct answer)
    import math

    from torch.distributions import Normal, kl_divergence

    from vi_helpers import VariationalAutoencoder, train_model

    rows = []
    for sigma2 in variances:
        row = []
        for seed in seeds:
            torch.manual_seed(seed)
            model = VariationalAutoencoder(64, 64, 8, likelihood="gaussian", obs_log_var=math.log(sigma2))
            train_model(model, x_train, n_epochs, 3e-3, batch_size=128, seed=seed, progress=False)
            with torch.no_grad():
                mu, log_var = model.encode(x_test)
                q = Normal(mu, (0.5 * log_var).exp())
                row.append(kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).mean(0))
        rows.append(torch.stack(row))
    return torch.stack(rows)


def _variance_variant(to_log_var, on="test", reduce="mean"):
    from vi_helpers.checks.vae import _variance_models, _variance_table

    def fn(x_train, x_test, variances, seeds, n_epochs):
        models = _variance_models(x_train, variances, seeds, n_epochs, to_log_var)
        x = x_train if on == "train" else x_test
        return _variance_table(models, x, variances, seeds, reduce=reduce)

    return fn


def _log(v):
    import math

    return math.log(v)


REFERENCE["decoder_variance_sweep"] = decoder_variance_sweep
N_CASES["decoder_variance_sweep"] = 2
ALTERNATIVES.append(("decoder_variance_sweep", _variance_sweep_via_distributions))
MUTANTS += [
    ("decoder_variance_sweep", "train_data", _variance_variant(_log, on="train"), "held-out images"),
    ("decoder_variance_sweep", "sum", _variance_variant(_log, reduce="sum"), "do not sum"),
    ("decoder_variance_sweep", "raw_variance", _variance_variant(float), "not sigma2"),
    ("decoder_variance_sweep", "log_std", _variance_variant(lambda v: 0.5 * _log(v)), "not of the standard deviation"),
]
