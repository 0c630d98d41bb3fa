"""What the benchmark measures against: the model, the targets, anchors, goals and settings.

Every number here is a choice of the benchmark, not a measurement; the phases read
them, and ``results.json`` records the values a run used.
"""

from __future__ import annotations

SCHEMA_VERSION = 1
PHASES = (
    "env", "peak", "ttq", "ablation", "overhead", "long", "iwae", "ppca", "widgets", "notebooks",
)
#: Architecture of the benchmark model: vi_helpers' VAE, 784-400-400-20 encoder and
#: 20-400-400-784 decoder (two hidden layers of 400 each side), Bernoulli decoder.
ARCH = {"input_size": 784, "hidden_size": 400, "latent_size": 20}
TARGET_NATS = 105.0
EVAL_SEED = 0  # generator of the single-sample test ELBO
TEST_BINARIZE_SEED = 0  # the static binarization of the test set

#: The vi_helpers trainer's best settings for time-to-105 on this model, found by trying
#: batch sizes 64-1024, learning rates 1e-3 to 5e-3 and cosine / warm-up schedules (see
#: README and the ablation phase). ``n_epochs`` is a schedule's horizon (None: constant rate).
BEST = {"batch_size": 256, "learning_rate": 1e-3, "lr_schedule": None, "n_epochs": None,
        "mixed_precision": "bfloat16"}
#: The tutorial's settings.
TUTORIAL = {"batch_size": 128, "learning_rate": 1e-3}
QUALITY_EPOCHS = 10

ANCHORS = {
    "elbo_10_epochs": 102.6,  # a reproduction of pytorch/examples' VAE on binarized MNIST
    "iwae_nll_burda": 86.76,  # Burda et al. (2015), VAE with one stochastic layer, 3,280 epochs
}
GOALS = {"ttq_ratio": 0.5, "iwae_nll": 88.0, "course_total_s": None}

#: Optimization choices tried against the best settings, one change at a time (each run
#: with vi_helpers.train_model to the target).
VARIANTS = (
    ("float32 (no autocast)", {"mixed_precision": None}),
    ("batch 128 (same learning rate)", {"batch_size": 128}),
    ("batch 512 (same learning rate)", {"batch_size": 512}),
    ("learning rate 2e-3", {"learning_rate": 2e-3}),
    ("cosine schedule to 0 over 9 epochs", {"lr_schedule": "cosine", "n_epochs": 9}),
)


def forward_macs(arch: dict = ARCH) -> int:
    """Multiply-accumulates of one example's forward pass through the Linear layers."""
    d, h, latent = arch["input_size"], arch["hidden_size"], arch["latent_size"]
    encoder = d * h + h * h + 2 * h * latent  # two hidden layers, mean and log_var heads
    return encoder + decoder_macs(arch)


def decoder_macs(arch: dict = ARCH) -> int:
    """Multiply-accumulates of one decoder pass, ``z -> x_hat``."""
    d, h, latent = arch["input_size"], arch["hidden_size"], arch["latent_size"]
    return latent * h + h * h + h * d


def epoch_flops(n_examples: int, arch: dict = ARCH) -> float:
    """Matmul FLOPs of one training epoch: forward (2 per MAC) times 3 for forward + backward."""
    return 3 * 2 * forward_macs(arch) * n_examples


def settings_str(settings: dict) -> str:
    """``batch 256, Adam 0.001, constant, bfloat16 autocast``: a row label for settings."""
    sched = settings.get("lr_schedule")
    text = f"batch {settings['batch_size']}, Adam {settings['learning_rate']:g}"
    text += f", {sched} over {settings['n_epochs']} epochs" if sched else ", constant"
    if settings.get("mixed_precision"):
        text += f", {settings['mixed_precision']} autocast"
    return text
