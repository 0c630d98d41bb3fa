"""Training: the trainer behind the seed's ``train_model``.

The seed's loop iterates ``for data in dataset``: over a ``(N, D)`` tensor that
visits one *row* at a time. That is batch-size-1 SGD (N optimizer steps per
epoch, each on a 1-D tensor on which the seed's ``sum(dim=1)`` even fails).
Here a tensor is shuffled and cut into vectorized minibatches instead.

What the trainer adds, all keyword-only so every seed call still works:

* minibatches, shuffling and a seed that makes a run bitwise repeatable
  (the global RNG is forked, so calling code's random stream is untouched);
* a per-epoch :class:`History` that keeps the ELBO, reconstruction and KL apart;
* ``beta``, linear KL warm-up (Bowman et al. 2016), free bits (Kingma et al.
  2016), gradient clipping, a cosine or custom learning-rate schedule;
* a NaN/Inf guard: training that diverges stops with a message and keeps the
  last good weights;
* Ctrl-C (``KeyboardInterrupt``) returns the partial history and keeps the model;
* tqdm progress bars (``tqdm.auto``: a widget in Jupyter, text elsewhere).

:func:`train_model` is a short loop over named steps (as Pyro's ``Trace_ELBO.loss``
over ``_get_traces``): ``_setup`` checks the arguments; per batch ``_Run.kl_weight``,
``_Run.loss`` (forward, optional autocast, loss), the NaN guard, ``_Run.update``;
then ``_end_epoch``.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ._validate import (
    as_data_tensor,
    check_device,
    check_finite_weights,
    check_input_size,
    check_model_input,
    check_nonnegative_float,
    check_nonnegative_int,
    check_optional,
    check_positive_float,
    check_positive_int,
    check_tensor,
    eval_mode,
)
from .data import Minibatches

__all__ = ["History", "make_adam", "train_model", "fit_linear_vae", "maximize_analytic_elbo"]


class History(list):
    """Per-epoch average training loss: a ``list`` of floats, as the seed returns.

    Extra attributes, each a list with one float per completed epoch:

    * ``elbo``: average training ELBO per example, in nats (``log_lik - kl``);
    * ``recon``: average reconstruction term of the loss (the seed's summed
      squared error for ``likelihood="mse"``, a negative log-likelihood otherwise);
    * ``kl``: average ``KL(q(z|x) || p(z))`` per example, in nats;
    * ``val_elbo``: average ELBO on ``validation_data`` (empty if none given);
    * ``beta``, ``lr``: the KL weight and learning rate at the epoch's end;
    * ``epoch_time``: wall-clock seconds per epoch.

    ``status`` is ``"completed"``, ``"diverged"`` or ``"interrupted"``, and
    ``message`` says what happened when it is not ``"completed"``.
    """

    def __init__(self):
        super().__init__()
        self.elbo: list[float] = []
        self.recon: list[float] = []
        self.kl: list[float] = []
        self.val_elbo: list[float] = []
        self.beta: list[float] = []
        self.lr: list[float] = []
        self.epoch_time: list[float] = []
        self.status = "completed"
        self.message = ""

    @property
    def losses(self) -> list[float]:
        """The plain list of per-epoch losses."""
        return list(self)

    def __repr__(self) -> str:
        tail = f", last loss {self[-1]:.4f}" if len(self) else ""
        return f"History({len(self)} epochs, status={self.status!r}{tail})"


def _check_batch(i: int, batch, input_size, device, dtype) -> torch.Tensor:
    """One batch of an iterable dataset, checked and cast to the model's dtype and device."""
    if isinstance(batch, (tuple, list)) and batch:  # (x, y) from a TensorDataset
        batch = batch[0]
    name = f"dataset batch {i}"
    batch = as_data_tensor(name, batch)
    check_tensor(name, batch, ndim=(1, 2), allow_float16=True)  # TypeError if not a tensor
    return check_input_size(name, batch, input_size).to(device=device, dtype=dtype)


def _epoch_batches(dataset, input_size, batch_size, shuffle, generator, device, dtype):
    """Return (a function that yields one epoch of batches, number of batches or None).

    Every batch is cast to the model's ``dtype`` and ``device`` (the dtype rule of
    :mod:`vi_helpers._validate`). A list of batches is checked whole, up front.
    """
    dataset = as_data_tensor("dataset", dataset)
    if isinstance(dataset, torch.Tensor):
        check_tensor("dataset", dataset, ndim=(2, 3), allow_float16=True)
        data = check_input_size("dataset", dataset, input_size).to(device=device, dtype=dtype)
        if data.dim() == 3:  # already a stack of batches, as the seed's loop expects
            return (lambda: iter(data.unbind(0))), data.shape[0]
        batches = Minibatches(data, batch_size, shuffle=shuffle, generator=generator)
        return (lambda: iter(batches)), len(batches)
    if isinstance(dataset, tuple):
        raise TypeError(
            "dataset must not be a tuple: for (x, y) pass x alone, train_model(model, x) "
            "(the labels are not used); a list of (B, D) batches or a DataLoader also work"
        )
    # isinstance, not iter(dataset) is dataset: iter() on a DataLoader draws a seed from
    # the global RNG, before train_model forks it for a seeded run
    if not isinstance(dataset, Iterable) or isinstance(dataset, Iterator):
        raise TypeError(
            "dataset must be a (N, D) tensor, a DataLoader or a list of (B, D) batches that "
            "every epoch can iterate again (not a one-shot iterator such as a generator), "
            f"got {type(dataset).__name__}"
        )
    if isinstance(dataset, list):  # all checked before any weight moves
        dataset = [_check_batch(i, b, input_size, device, dtype) for i, b in enumerate(dataset)]

    def epoch():
        for i, batch in enumerate(dataset):
            yield _check_batch(i, batch, input_size, device, dtype)

    return epoch, len(dataset) if hasattr(dataset, "__len__") else None


def _accepts(fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _params_finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def make_adam(params: list[torch.Tensor], learning_rate: float) -> torch.optim.Adam:
    """``torch.optim.Adam`` with the fused kernel where every parameter allows it.

    The fused kernel updates all parameters in one pass instead of a dozen
    elementwise ops per tensor. For the MNIST VAE on a CPU that is about 0.4 ms per
    step instead of about 4 ms, roughly half the time of a batch-128 step (see
    ``benchmarks/README.md``). The update is the same Adam update; only the
    floating-point rounding order differs.
    """
    if isinstance(params, torch.Tensor) or not isinstance(params, Iterable):
        raise TypeError(f"params must be a list of tensors, got {type(params).__name__}")
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"params[{i}] must be a torch.Tensor, got {type(p).__name__}")
    learning_rate = check_positive_float("learning_rate", learning_rate)
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=learning_rate, fused=True if fused else None)


@dataclass
class _Run:
    """Everything one training run needs, checked and built by :func:`_setup`."""

    model: torch.nn.Module
    n_epochs: int
    params: list[torch.Tensor]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    step_scheduler: bool  # per step (cosine) rather than per epoch (callable)
    epoch_batches: Callable[[], Iterable[torch.Tensor]]
    n_batches: int | None
    device: torch.device
    custom_loss: bool  # training_loss(x, ...) instead of forward + loss_function
    has_terms: bool
    pass_beta: bool
    free_bits: float | None
    target_beta: float
    kl_warmup_epochs: int
    grad_clip: float | None
    transform: Callable[[torch.Tensor], torch.Tensor] | None
    mixed_precision: torch.dtype | None
    validation_data: torch.Tensor | None
    last_good: list[torch.Tensor]  # the weights that last gave a finite loss

    def kl_weight(self, epoch: int, i: int) -> float:
        """The KL weight at batch ``i`` of ``epoch``: linear warm-up, per step when possible."""
        if not self.kl_warmup_epochs:
            return self.target_beta
        done = epoch + (i + 1) / self.n_batches if self.n_batches else epoch + 1
        return self.target_beta * min(1.0, done / self.kl_warmup_epochs)

    def loss(self, x: torch.Tensor, beta: float):
        """Forward pass (under autocast if asked) and the model's loss: ``(loss, terms or None)``."""
        kwargs = {"beta": beta} if self.pass_beta else {}
        if self.free_bits is not None:
            kwargs["free_bits"] = self.free_bits
        autocast = torch.autocast(
            self.device.type, dtype=self.mixed_precision or torch.bfloat16,
            enabled=self.mixed_precision is not None,
        )
        if self.custom_loss:  # models beyond (x_hat, mean, log_var): hierarchical VAEs, diffusion
            with autocast:
                loss, terms = self.model.training_loss(x, **kwargs)
            return loss.float(), terms
        if self.mixed_precision is None:
            x_hat, mean, log_var = self.model(x)
        else:  # matmuls in bfloat16; the loss and its reductions in the data's precision
            with autocast:
                out = self.model(x)
            x_hat, mean, log_var = (t.to(x.dtype) for t in out)
        if self.has_terms:
            return self.model.loss_function(x, x_hat, mean, log_var, return_terms=True, **kwargs)
        return self.model.loss_function(x, x_hat, mean, log_var, **kwargs), None

    def update(self, loss: torch.Tensor) -> None:
        """Backward, clip, keep the weights that gave this finite loss, then step Adam."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        with torch.no_grad():  # these weights just gave a finite loss: keep them before stepping
            for buf, p in zip(self.last_good, self.params, strict=True):
                buf.copy_(p)
        self.optimizer.step()
        if self.step_scheduler:
            self.scheduler.step()


def _loss_options(model, custom_loss: bool, beta, free_bits, kl_warmup_epochs) -> dict:
    """How to call the model's loss: the ``_Run`` fields about terms, beta and free bits."""
    loss_fn = model.training_loss if custom_loss else model.loss_function
    takes_beta = _accepts(loss_fn, "beta")
    if free_bits is not None and not _accepts(loss_fn, "free_bits"):
        raise ValueError("free_bits needs a model whose loss_function accepts free_bits")
    if (beta is not None or kl_warmup_epochs) and not takes_beta:
        raise ValueError("beta and kl_warmup_epochs need a loss_function that accepts beta")
    return dict(
        custom_loss=custom_loss, has_terms=custom_loss or _accepts(loss_fn, "return_terms"),
        pass_beta=takes_beta and (beta is not None or bool(kl_warmup_epochs)),
        free_bits=free_bits, kl_warmup_epochs=kl_warmup_epochs,
        target_beta=beta if beta is not None else float(getattr(model, "beta", 1.0)),
    )


def _make_scheduler(optimizer, lr_schedule, total_steps: int | None):
    """``(scheduler or None, whether it steps per batch)`` for ``lr_schedule``."""
    if lr_schedule == "cosine":
        if total_steps is None:
            raise ValueError("lr_schedule='cosine' needs a dataset with a known length")
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps), True
    if callable(lr_schedule):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lr_schedule), False
    return None, False


def _setup(model, dataset, n_epochs, learning_rate, *, batch_size, beta, kl_warmup_epochs,
           free_bits, grad_clip, lr_schedule, seed, device, shuffle, transform,
           validation_data, mixed_precision) -> _Run:
    """Check every argument of :func:`train_model` (before any weight moves) and build the run."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    custom_loss = callable(getattr(model, "training_loss", None))
    if not custom_loss and not hasattr(model, "loss_function"):
        raise TypeError("model must define loss_function(x, x_hat, mean, log_var) "
                        "or training_loss(x, *, beta=None, free_bits=None)")
    n_epochs = check_positive_int("n_epochs", n_epochs)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    batch_size = check_positive_int("batch_size", batch_size)
    kl_warmup_epochs = check_nonnegative_int("kl_warmup_epochs", kl_warmup_epochs)
    beta = check_optional(check_nonnegative_float, "beta", beta)
    free_bits = check_optional(check_nonnegative_float, "free_bits", free_bits)
    grad_clip = check_optional(check_positive_float, "grad_clip", grad_clip)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    if lr_schedule is not None and lr_schedule != "cosine" and not callable(lr_schedule):
        raise ValueError(f"lr_schedule must be None, 'cosine' or a callable, got {lr_schedule!r}")
    if transform is not None and not callable(transform):
        raise TypeError(f"transform must be callable, got {type(transform).__name__}")
    if mixed_precision is not None and mixed_precision != torch.bfloat16:
        raise ValueError(f"mixed_precision must be None or torch.bfloat16, got {mixed_precision!r}")
    params = list(model.parameters())
    if not params:
        raise ValueError("model has no parameters to train")
    check_finite_weights(model)  # also refuses float16 and meta weights
    device = check_device("device", device) if device is not None else params[0].device
    input_size, dtype = getattr(model, "input_size", None), params[0].dtype
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    epoch_batches, n_batches = _epoch_batches(
        dataset, input_size, batch_size, shuffle, generator, device, dtype
    )
    if n_batches == 0:
        raise ValueError("dataset must not be empty")
    loss_options = _loss_options(model, custom_loss, beta, free_bits, kl_warmup_epochs)
    model.to(device)
    if validation_data is not None:
        validation_data = _check_validation_data(model, validation_data)
    optimizer = make_adam(params, learning_rate)
    scheduler, step_scheduler = _make_scheduler(
        optimizer, lr_schedule, n_epochs * n_batches if n_batches else None
    )
    return _Run(
        model=model, n_epochs=n_epochs, params=params, optimizer=optimizer,
        scheduler=scheduler, step_scheduler=step_scheduler, epoch_batches=epoch_batches,
        n_batches=n_batches, device=device, grad_clip=grad_clip, transform=transform,
        mixed_precision=mixed_precision, validation_data=validation_data,
        last_good=[p.detach().clone() for p in params], **loss_options,
    )


def _check_validation_data(model: torch.nn.Module, validation_data) -> torch.Tensor:
    """``validation_data`` cast to the model's dtype and device, and its ELBO tried once,
    so that a problem shows before training rather than after the first epoch."""
    x = check_model_input(model, as_data_tensor("validation_data", validation_data),
                          "validation_data")
    if not hasattr(model, "analytic_elbo") and not callable(getattr(model, "elbo", None)):
        raise TypeError("validation_data needs a model with elbo(x, *, generator=None) -> (B,)")
    with torch.random.fork_rng(devices=[]):  # a model that ignores generator leaves no trace
        try:
            value = _mean_elbo(model, x)
        except (RuntimeError, TypeError, ValueError) as err:
            raise ValueError(
                f"validation_data: model.elbo(validation_data) fails before training: {err}"
            ) from err
    if value != value:  # NaN with finite weights and data: the model cannot score it
        raise ValueError("validation_data: model.elbo(validation_data) is NaN before training")
    return x


def train_model(
    model: torch.nn.Module,
    dataset,
    n_epochs: int = 100,
    learning_rate: float = 0.001,
    *,
    batch_size: int = 128,
    beta: float | None = None,
    kl_warmup_epochs: int = 0,
    free_bits: float | None = None,
    grad_clip: float | None = None,
    lr_schedule: str | Callable[[int], float] | None = None,
    seed: int | None = None,
    device: str | torch.device | None = None,
    shuffle: bool = True,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    validation_data: torch.Tensor | None = None,
    progress: bool = True,
    verbose: bool = False,
    mixed_precision: torch.dtype | None = None,
) -> History:
    r"""Train a VAE by minimizing its ``loss_function`` with Adam.

    Called as the seed calls it, ``train_model(model, dataset, n_epochs,
    learning_rate)``, it returns the list of per-epoch average losses. The loss
    of a batch is the model's ``loss_function`` (a batch mean); the epoch
    average weights each batch by its size, so it is the mean over examples.

    Args:
        model: a module whose ``forward(x)`` returns ``(x_hat, mean, log_var)`` and
            that has ``loss_function(x, x_hat, mean, log_var)`` (the seed's VAE); or a
            module with ``training_loss(x, *, beta=None, free_bits=None) -> (loss,
            terms)``, where ``loss`` is a scalar batch mean and ``terms`` a dict of
            scalar tensors ``recon``, ``kl`` and ``log_lik`` (nats, batch means, so
            ``ELBO = log_lik - kl``): models whose forward pass is not one encoder and
            one decoder (hierarchical VAEs, diffusion) train through this.
        dataset: a ``(N, D)`` tensor (shuffled into minibatches of ``batch_size``),
            a ``(n_batches, B, D)`` tensor, a ``DataLoader``, or a re-iterable of
            ``(B, D)`` tensors (or ``(x, y)`` tuples).
        n_epochs: passes over the data (> 0).
        learning_rate: Adam's step size (> 0).
        batch_size: rows per minibatch when ``dataset`` is a ``(N, D)`` tensor.
        beta: KL weight; ``None`` keeps the model's own ``beta``.
        kl_warmup_epochs: ramp the KL weight linearly from 0 to ``beta`` over this
            many epochs (per step when the number of batches is known).
        free_bits: per-dimension KL floor in nats; ``None`` keeps the model's.
        grad_clip: clip the gradients' global L2 norm to this value.
        lr_schedule: ``None``, ``"cosine"`` (anneal to 0 over the run, per step) or a
            function ``epoch -> factor`` multiplying ``learning_rate``.
        seed: make the run bitwise repeatable (shuffling and the reparameterization
            noise). The caller's global RNG state is restored afterwards.
        device: where to train (default: where the model's parameters are).
        shuffle: reshuffle a tensor dataset every epoch.
        transform: applied to every batch before the forward pass, e.g.
            :func:`vi_helpers.data.dynamic_binarize`.
        validation_data: ``(M, D)`` tensor; its average ELBO is logged every epoch.
        progress: show a tqdm progress bar over epochs.
        verbose: also print the seed's line ``Epoch e, Loss: l`` every epoch.
        mixed_precision: ``torch.bfloat16`` runs the forward pass under
            ``torch.autocast`` (matmuls in bfloat16, weights, gradients and Adam in
            float32); the outputs are cast back to the data's dtype before the loss,
            so the loss and its reductions stay in full precision. On CPUs with
            AVX512-BF16 or AMX, and on recent GPUs, that doubles matmul throughput;
            elsewhere bfloat16 is emulated and slower. ``None`` (default): full
            precision.

    Returns:
        :class:`History`, a ``list`` of per-epoch average losses with the ELBO,
        reconstruction and KL kept separately as attributes.
    """
    run = _setup(
        model, dataset, n_epochs, learning_rate, batch_size=batch_size, beta=beta,
        kl_warmup_epochs=kl_warmup_epochs, free_bits=free_bits, grad_clip=grad_clip,
        lr_schedule=lr_schedule, seed=seed, device=device, shuffle=shuffle, transform=transform,
        validation_data=validation_data, mixed_precision=mixed_precision,
    )
    history, was_training = History(), model.training
    model.train()
    fork_devices = [run.device.index or 0] if run.device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        bar = tqdm(range(run.n_epochs), desc="training", unit="epoch", disable=not progress)
        try:
            for epoch in bar:
                t0 = time.perf_counter()
                epoch_sums = _train_epoch(run, history, epoch)
                if epoch_sums is None or not _end_epoch(run, history, epoch, *epoch_sums, t0):
                    return history  # diverged: the last good weights are restored
                postfix = {"loss": f"{history[-1]:.3f}"}
                if history.val_elbo:
                    postfix["val_elbo"] = f"{history.val_elbo[-1]:.2f}"
                bar.set_postfix(postfix, refresh=False)
                if verbose:
                    print(f"Epoch {epoch}, Loss: {history[-1]:.4f}")
        except KeyboardInterrupt:
            history.status = "interrupted"
            history.message = (
                f"interrupted after {len(history)} complete epoch(s); the model keeps its "
                "current weights and the history so far is returned"
            )
            print(history.message)
        finally:
            bar.close()
            model.train(was_training)
    return history


def _train_epoch(run: _Run, history: History, epoch: int):
    """One pass over the data: ``(sums, n_seen, has_terms, beta)``, or ``None`` if it diverged.

    ``sums`` holds the size-weighted sums of loss, recon, kl and log_lik as one
    tensor, so the batches cost no host sync beyond the NaN guard.
    """
    sums = torch.zeros(4, dtype=torch.float64, device=run.device)
    n_seen, beta, terms = 0, run.target_beta, None
    for i, x in enumerate(run.epoch_batches()):
        if run.transform is not None:
            x = run.transform(x)
        beta = run.kl_weight(epoch, i)
        loss, terms = run.loss(x, beta)
        if not bool(torch.isfinite(loss)):  # the NaN guard: one host sync per step
            _diverged(run, history, epoch, i, loss.item())
            return None
        run.update(loss)
        b = x.shape[0] if x.dim() == 2 else 1
        n_seen += b
        if terms is not None:
            sums += b * torch.stack(
                [loss.detach(), terms["recon"], terms["kl"], terms["log_lik"]]
            ).to(sums.dtype)
        else:
            sums[0] += b * loss.detach().to(sums.dtype)
    if n_seen == 0:
        raise ValueError("dataset must not be empty")
    return sums, n_seen, terms is not None, beta


def _end_epoch(run: _Run, history: History, epoch: int, sums, n_seen: int, has_terms: bool,
               beta: float, t0: float) -> bool:
    """Step a per-epoch schedule and record the epoch in ``history``; ``False`` if it diverged."""
    if run.scheduler is not None and not run.step_scheduler:
        run.scheduler.step()
    avg = (sums / n_seen).tolist()  # the one sync per epoch
    if not _params_finite(run.model):
        _diverged(run, history, epoch, None, avg[0])
        return False
    history.append(avg[0])
    if has_terms:
        history.recon.append(avg[1])
        history.kl.append(avg[2])
        history.elbo.append(avg[3] - avg[2])
    if run.validation_data is not None:
        history.val_elbo.append(_mean_elbo(run.model, run.validation_data))
    history.beta.append(beta)
    history.lr.append(run.optimizer.param_groups[0]["lr"])
    history.epoch_time.append(time.perf_counter() - t0)
    return True


def _diverged(run: _Run, history: History, epoch: int, batch, value: float) -> None:
    """Restore the last weights that gave a finite loss and record why training stopped."""
    with torch.no_grad():
        for p, buf in zip(run.model.parameters(), run.last_good, strict=True):
            p.copy_(buf)
    at = f"epoch {epoch}" + (f", batch {batch}" if batch is not None else "")
    history.status = "diverged"
    history.message = (
        f"training diverged at {at}: loss = {value}. Stopped and restored the last "
        "weights that gave a finite loss. Try a smaller learning_rate or grad_clip, "
        "or check the data for extreme values."
    )
    print(history.message)


@torch.no_grad()
def _mean_elbo(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Average single-sample ELBO (nats) with a fixed generator, so it is repeatable
    and does not consume the training run's random numbers."""
    if hasattr(model, "analytic_elbo"):  # linear VAE: the exact expectation
        return float(model.analytic_elbo(x).mean())
    if not hasattr(model, "elbo"):
        return float("nan")
    with eval_mode(model):
        gen = torch.Generator(device=x.device).manual_seed(0)
        return float(model.elbo(x, generator=gen).mean())


# The analytic-ELBO fits live in their own module; importable from here as before
# (``from vi_helpers.train import fit_linear_vae``). Imported last: they use make_adam.
from .analytic_fit import fit_linear_vae, maximize_analytic_elbo  # noqa: E402
