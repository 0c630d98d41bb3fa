"""The reference loop: a VAE trained the way tutorials write it.

This is the training loop of pytorch/examples ``vae/main.py`` (Kingma & Welling's
MLP VAE), which most course material copies:

* a ``DataLoader`` over a ``TensorDataset``, batch 128, shuffled;
* the decoder output squashed with ``sigmoid`` and scored with
  ``F.binary_cross_entropy(..., reduction="sum")`` plus the analytic KL, summed
  over the batch;
* ``torch.optim.Adam`` with ``lr=1e-3``;
* ``loss.item()`` every batch to accumulate the epoch's loss (a host sync per
  batch; on a CPU it is cheap, on a GPU it stalls the queue).

Dynamic binarization is done the tutorial way, ``torch.bernoulli(data)`` on each
batch, so every epoch sees a fresh binary sample of the grey-level images.

The *model* is not the tutorial's: the benchmark passes the very same
``vi_helpers.VariationalAutoencoder`` (same architecture, same initial weights)
to this loop and to ``vi_helpers.train_model``, so that the comparison differs
only in the training loop. The model returns logits; the tutorial's decoder
ends in a sigmoid, which :func:`train_epoch` applies.

Keyword options of :func:`train_epoch` switch single choices for the ablation
(BCE on logits, no per-batch sync; the loader may also be ``vi_helpers``'
``Minibatches`` instead of a ``DataLoader``); their defaults are the tutorial's.
On a GPU the loop is the tutorial's too: the ``DataLoader`` iterates CPU tensors
and each batch is moved with ``.to(device)``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

__all__ = ["loss_function", "loss_function_logits", "make_loader", "train_epoch"]


def loss_function(recon_x, x, mu, logvar):
    """pytorch/examples' loss: summed BCE on probabilities + summed analytic KL."""
    BCE = F.binary_cross_entropy(recon_x, x, reduction="sum")
    # see Appendix B from VAE paper: Kingma and Welling. Auto-Encoding Variational Bayes. ICLR, 2014
    # 0.5 * sum(1 + log(sigma^2) - mu^2 - sigma^2)
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


def loss_function_logits(logits, x, mu, logvar):
    """The same loss computed from logits (``binary_cross_entropy_with_logits``)."""
    BCE = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


def make_loader(x: torch.Tensor, batch_size: int = 128, *, seed: int | None = None) -> DataLoader:
    """``DataLoader(TensorDataset(x), batch_size, shuffle=True)``, as the tutorials build it.

    ``seed`` only fixes the shuffling order (a ``torch.Generator``), for repeatability.
    """
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(TensorDataset(x), batch_size=batch_size, shuffle=True, generator=generator)


def train_epoch(
    model: torch.nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    *,
    logits: bool = False,
    sync: bool = True,
    binarize: bool | str = True,
    mixed_precision: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> float:
    """One epoch of the tutorial's ``train()``; returns the average loss per example (nats).

    Args:
        model: returns ``(logits, mu, logvar)`` (a ``vi_helpers.VariationalAutoencoder``
            with ``likelihood="bernoulli"``).
        loader: yields ``(data,)`` batches (a ``DataLoader``) or ``data`` tensors
            (``vi_helpers.data.Minibatches``).
        optimizer: e.g. ``torch.optim.Adam(model.parameters(), lr=1e-3)``.
        logits: score the logits with ``binary_cross_entropy_with_logits`` instead of
            ``sigmoid`` + ``binary_cross_entropy`` (an ablation; the tutorial uses False).
        sync: call ``loss.item()`` every batch (the tutorial); False accumulates on the
            device and reads the total once per epoch.
        binarize: draw ``torch.bernoulli(data)`` per batch (dynamic binarization);
            ``"uniform"`` draws the same law as ``torch.rand_like(data) < data`` (an
            ablation: what ``vi_helpers.data.dynamic_binarize`` does); False: none.
        mixed_precision: run the forward pass under ``torch.autocast`` with this dtype
            (an ablation; the loss is computed in float32).
        device: move each batch there with ``.to(device)`` (pytorch/examples on a GPU);
            ``None`` keeps it where the loader put it.
    """
    model.train()
    train_loss = 0.0 if sync else torch.zeros((), dtype=torch.float64, device=device)
    n_seen = 0
    for batch in loader:
        data = batch[0] if isinstance(batch, (tuple, list)) else batch
        if device is not None:
            data = data.to(device)
        if binarize == "uniform":
            data = (torch.rand_like(data) < data).to(data.dtype)
        elif binarize:
            data = torch.bernoulli(data)
        optimizer.zero_grad()
        if mixed_precision is None:
            out, mu, logvar = model(data)
        else:
            with torch.autocast(data.device.type, dtype=mixed_precision):
                out, mu, logvar = model(data)
            out, mu, logvar = out.float(), mu.float(), logvar.float()
        if logits:
            loss = loss_function_logits(out, data, mu, logvar)
        else:
            loss = loss_function(torch.sigmoid(out), data, mu, logvar)
        loss.backward()
        if sync:
            train_loss += loss.item()
        else:
            train_loss += loss.detach()
        optimizer.step()
        n_seen += data.shape[0]
    return float(train_loss) / n_seen
