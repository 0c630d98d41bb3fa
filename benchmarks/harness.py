"""The measuring harness: data, the model, clocks, test-ELBO curves and the two training loops.

Both loops train the same ``vi_helpers.VariationalAutoencoder`` from the same initial
weights: ``run_vi_helpers`` through ``vi_helpers.train_model``, :class:`IdiomaticRun`
through the tutorial loop of ``benchmarks/idiomatic.py``. A :class:`Curve` evaluates
the test -ELBO after every epoch with the training clock paused.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import statistics
import time
from pathlib import Path

import torch

from vi_helpers import VariationalAutoencoder, train_model
from vi_helpers.data import Minibatches, dynamic_binarize, load_mnist, read_idx

from . import idiomatic
from .config import ARCH, EVAL_SEED, TEST_BINARIZE_SEED


# ============================================================================ utilities
def log(msg: str = "") -> None:
    print(msg, flush=True)


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def synchronize(device: torch.device) -> None:
    """Wait for ``device``'s queued work (a no-op on the CPU), before reading a clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StopTraining(Exception):
    """Raised from a batch hook to end a ``train_model`` run early (it propagates out of
    the trainer, whose ``finally`` leaves the model in a usable state)."""


# ================================================================================ data
class Data:
    """MNIST in [0, 1] and the statically binarized test set, loaded once per process
    and moved to ``device`` once."""

    def __init__(self, data_dir: Path, *, smoke: bool, n_train: int | None, n_test: int | None,
                 device: str | torch.device = "cpu"):
        self.data_dir = data_dir
        self.smoke = smoke
        self.n_train = n_train
        self.n_test = n_test
        self.device = torch.device(device)
        self._cache: dict[str, torch.Tensor] = {}

    def _load(self, split: str) -> torch.Tensor:
        if self.smoke:
            # a smoke run only needs MNIST-format files; the tiny fixture files of the
            # tests cannot match the published checksums, so read them unverified
            stem = "train-images-idx3-ubyte" if split == "train" else "t10k-images-idx3-ubyte"
            for name in (f"{stem}.gz", stem):
                if (self.data_dir / name).is_file():
                    images = read_idx(self.data_dir / name)
                    break
            else:
                raise FileNotFoundError(f"{stem}(.gz) not found in {self.data_dir}")
            x = torch.from_numpy(images.reshape(images.shape[0], -1)).float() / 255.0
        else:
            x, _ = load_mnist(self.data_dir, split=split)  # checksums verified
        limit = self.n_train if split == "train" else self.n_test
        return x[:limit].contiguous() if limit else x

    @property
    def train_host(self) -> torch.Tensor:
        """The training images on the CPU (what a ``DataLoader`` iterates)."""
        if "train_host" not in self._cache:
            self._cache["train_host"] = self._load("train")
        return self._cache["train_host"]

    @property
    def train(self) -> torch.Tensor:
        """The training images on ``device``."""
        if "train" not in self._cache:
            self._cache["train"] = self.train_host.to(self.device)
        return self._cache["train"]

    @property
    def test(self) -> torch.Tensor:
        """The test set binarized once, with a fixed seed (on the CPU), on ``device``."""
        if "test" not in self._cache:
            grey = self._load("test")
            gen = torch.Generator().manual_seed(TEST_BINARIZE_SEED)
            self._cache["test"] = dynamic_binarize(grey, generator=gen).to(self.device)
        return self._cache["test"]


def new_model(seed: int, device: str | torch.device = "cpu") -> VariationalAutoencoder:
    """The benchmark model with initial weights fixed by ``seed`` (drawn on the CPU)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VariationalAutoencoder(
            ARCH["input_size"], ARCH["hidden_size"], ARCH["latent_size"], likelihood="bernoulli"
        )
    return model.to(device)


@torch.no_grad()
def test_nelbo(model: torch.nn.Module, x_test: torch.Tensor) -> float:
    """Test -ELBO in nats per image: single sample, fixed generator (repeatable, and it
    consumes none of the training run's random numbers)."""
    gen = torch.Generator(device=x_test.device).manual_seed(EVAL_SEED)
    return -float(model.elbo(x_test, generator=gen).mean())


# ============================================================================== clocks
@contextlib.contextmanager
def _stopwatch(device: torch.device, add):
    """Time the block (wall and process CPU seconds, the device's queue drained at both
    ends) and pass the two to ``add(wall, cpu)``."""
    synchronize(device)
    t, c = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        synchronize(device)
        add(time.perf_counter() - t, time.process_time() - c)


class Clock:
    """Training seconds since creation, minus the time spent inside ``paused()`` blocks
    (evaluations, and the other loop's epochs when the two are interleaved). On an
    accelerator every reading waits for the queued work first."""

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        synchronize(self.device)
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()
        self.paused_s = 0.0
        self.paused_cpu = 0.0

    def train_seconds(self) -> float:
        synchronize(self.device)
        return time.perf_counter() - self.start - self.paused_s

    def train_cpu_seconds(self) -> float:
        return time.process_time() - self.cpu_start - self.paused_cpu

    def _add_paused(self, wall: float, cpu: float) -> None:
        self.paused_s += wall
        self.paused_cpu += cpu

    def paused(self):
        return _stopwatch(self.device, self._add_paused)


class StepClock:
    """Training seconds accumulated only inside ``running()`` blocks (one per epoch)."""

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    def train_seconds(self) -> float:
        return self.seconds

    def train_cpu_seconds(self) -> float:
        return self.cpu_seconds

    def _add(self, wall: float, cpu: float) -> None:
        self.seconds += wall
        self.cpu_seconds += cpu

    def running(self):
        return _stopwatch(self.device, self._add)

    @contextlib.contextmanager
    def paused(self):  # not running between epochs anyway
        yield


# ============================================================================== curves
class Curve:
    """Test -ELBO after each epoch against training seconds (clock paused to evaluate)."""

    def __init__(self, model, x_test, clock: Clock, *, target: float | None, stop: bool,
                 every: int = 1, min_epochs: int = 0, max_train_cpu_s: float | None = None,
                 max_train_s: float | None = None, on_epoch=None, label: str | None = None):
        self.model, self.x_test, self.clock = model, x_test, clock
        self.label = label  # print a line per evaluation when set
        self.target, self.stop, self.every = target, stop, every
        self.min_epochs = min_epochs
        self.on_epoch = on_epoch  # run after each epoch's evaluation, clock paused
        self.max_train_cpu_s, self.max_train_s = max_train_cpu_s, max_train_s
        self.points: list[dict] = []
        self.epochs_done = 0
        self.budget_hit = False

    @property
    def reached(self) -> bool:
        return (self.target is not None and bool(self.points)
                and min(p["test_nelbo"] for p in self.points) <= self.target)

    def _evaluate(self, t: float, cpu: float, *, final: bool) -> float:
        with self.clock.paused():
            value = test_nelbo(self.model, self.x_test)
            if self.label:
                log(f"    {self.label} epoch {self.epochs_done:3d}: test -ELBO {value:7.2f} "
                    f"after {t:7.1f} s of training ({time.strftime('%H:%M:%S')})")
            if self.on_epoch is not None and not final:
                self.on_epoch()
        self.points.append({"epoch": self.epochs_done, "train_s": t, "train_cpu_s": cpu,
                            "test_nelbo": value})
        return value

    def end_of_epoch(self, *, final: bool = False) -> None:
        """Record the training time, then evaluate with the clock paused; raise
        :class:`StopTraining` when the target is reached (if ``stop``)."""
        self.epochs_done += 1
        t, cpu = self.clock.train_seconds(), self.clock.train_cpu_seconds()
        if final or self.epochs_done % self.every == 0:
            value = self._evaluate(t, cpu, final=final)
            reached = self.target is not None and value <= self.target
            if self.stop and reached and self.epochs_done >= self.min_epochs and not final:
                raise StopTraining
        over_cpu = self.max_train_cpu_s is not None and cpu >= self.max_train_cpu_s
        over_wall = self.max_train_s is not None and t >= self.max_train_s
        if (over_cpu or over_wall) and not final:
            self.budget_hit = True
            if not self.points or self.points[-1]["epoch"] != self.epochs_done:
                with self.clock.paused():
                    value = test_nelbo(self.model, self.x_test)
                self.points.append({"epoch": self.epochs_done, "train_s": t,
                                    "train_cpu_s": cpu, "test_nelbo": value})
            raise StopTraining

    def summary(self) -> dict:
        reached = None
        if self.target is not None:
            reached = next((p for p in self.points if p["test_nelbo"] <= self.target), None)
        epoch_s = []
        prev = 0.0
        for p in self.points:
            if self.every == 1:
                epoch_s.append(p["train_s"] - prev)
                prev = p["train_s"]
        return {
            "points": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in p.items()}
                       for p in self.points],
            "epochs": self.epochs_done,
            "ttq_s": reached["train_s"] if reached else None,
            "ttq_epochs": reached["epoch"] if reached else None,
            "epoch_s": epoch_s,
            "final_test_nelbo": self.points[-1]["test_nelbo"] if self.points else None,
        }


class EpochHook:
    """``transform`` for ``train_model``: dynamic binarization, plus a call to
    ``curve.end_of_epoch()`` when the first batch of the next epoch arrives (the model
    then holds exactly the weights at the end of the previous epoch)."""

    def __init__(self, n_batches: int, curve: Curve):
        self.n_batches = n_batches
        self.curve = curve
        self.calls = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.calls and self.calls % self.n_batches == 0:
            self.curve.end_of_epoch()
        self.calls += 1
        return dynamic_binarize(x)


# ====================================================================== training runs
def run_vi_helpers(model, data: Data, *, batch_size: int, learning_rate: float,
                   lr_schedule, n_epochs: int, seed: int, target: float | None,
                   stop_at_target: bool, min_epochs: int = 0, every: int = 1,
                   max_train_cpu_s: float | None = None,
                   max_train_s: float | None = None, on_epoch=None,
                   label: str | None = None, clock: Clock | None = None,
                   mixed_precision: str | None = None, **trainer) -> dict:
    """Train with ``vi_helpers.train_model`` (tensor dataset on ``data.device``, dynamic
    binarization); ``trainer`` holds further ``train_model`` keywords.

    ``on_epoch()`` runs after each epoch's evaluation with this run's clock paused: the
    A/B comparison runs one epoch of the other loop there, interleaving the two.
    """
    x = data.train
    clock = Clock(data.device) if clock is None else clock
    curve = Curve(model, data.test, clock, target=target, stop=stop_at_target, every=every,
                  min_epochs=min_epochs, max_train_cpu_s=max_train_cpu_s,
                  max_train_s=max_train_s, on_epoch=on_epoch, label=label)
    hook = EpochHook(math.ceil(x.shape[0] / batch_size), curve)
    status = "completed"
    try:
        history = train_model(
            model, x, n_epochs, learning_rate, batch_size=batch_size, lr_schedule=lr_schedule,
            transform=hook, seed=seed, progress=False, device=data.device,
            mixed_precision=getattr(torch, mixed_precision) if mixed_precision else None,
            **trainer,
        )
        status = history.status
        curve.end_of_epoch(final=True)
    except StopTraining:
        status = "budget" if curve.budget_hit else "target reached"
    out = curve.summary()
    schedule_name = (lr_schedule if lr_schedule is None or isinstance(lr_schedule, str)
                     else getattr(lr_schedule, "__name__", "callable"))
    out.update(status=status, batch_size=batch_size, learning_rate=learning_rate,
               lr_schedule=schedule_name, mixed_precision=mixed_precision,
               planned_epochs=n_epochs, **trainer,
               train_cpu_s=clock.train_cpu_seconds(), train_s=clock.train_seconds())
    return out


def make_batches(x: torch.Tensor, loader: str, batch_size: int, seed: int):
    """The tutorial's ``DataLoader`` (``loader="dataloader"``) or ``vi_helpers``'
    :class:`~vi_helpers.data.Minibatches` (``"tensor"``), shuffled from ``seed``."""
    if loader == "dataloader":
        return idiomatic.make_loader(x, batch_size, seed=seed)
    return Minibatches(x, batch_size, generator=torch.Generator().manual_seed(seed))


class IdiomaticRun:
    """The tutorial loop of ``benchmarks/idiomatic.py``, advanced one epoch per ``step()``
    so that it can be interleaved with ``train_model``. It keeps its own RNG state, so
    interleaving changes neither loop's random numbers. On an accelerator it does what
    pytorch/examples does: the ``DataLoader`` iterates CPU tensors and every batch is
    moved with ``.to(device)``."""

    def __init__(self, model, data: Data, *, seed: int, target: float | None,
                 stop_at_target: bool, n_epochs: int, min_epochs: int = 0,
                 batch_size: int = 128, learning_rate: float = 1e-3, logits: bool = False,
                 sync: bool = True, loader: str = "dataloader", label: str | None = None):
        self.model = model.to(data.device)
        self.device = data.device
        self.n_epochs, self.min_epochs, self.stop_at_target = n_epochs, min_epochs, stop_at_target
        self.kw = {"logits": logits, "sync": sync, "device": data.device}
        self.settings = {"batch_size": batch_size, "learning_rate": learning_rate,
                         "lr_schedule": None, "logits": logits, "sync": sync, "loader": loader}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.rng_state = torch.get_rng_state()
        self.cuda_rng = self._seeded_cuda_state(seed)
        self.batches = make_batches(data.train_host, loader, batch_size, seed)
        self.clock = StepClock(data.device)
        with self.clock.running():  # building the optimizer counts, as in the tutorial
            self.optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
        self.curve = Curve(model, data.test, self.clock, target=target, stop=False, label=label)

    def _seeded_cuda_state(self, seed: int):
        if self.device.type != "cuda":
            return None
        with torch.random.fork_rng(devices=[self.device]):
            torch.cuda.manual_seed(seed)
            return torch.cuda.get_rng_state(self.device)

    @property
    def done(self) -> bool:
        epochs = self.curve.epochs_done
        if epochs >= self.n_epochs:
            return True
        return self.stop_at_target and self.curve.reached and epochs >= self.min_epochs

    def step(self) -> None:
        outer = torch.get_rng_state()
        outer_cuda = torch.cuda.get_rng_state(self.device) if self.cuda_rng is not None else None
        torch.set_rng_state(self.rng_state)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state(self.cuda_rng, self.device)
        try:
            with self.clock.running():
                idiomatic.train_epoch(self.model, self.batches, self.optimizer, **self.kw)
            self.rng_state = torch.get_rng_state()
            if self.cuda_rng is not None:
                self.cuda_rng = torch.cuda.get_rng_state(self.device)
        finally:
            torch.set_rng_state(outer)
            if outer_cuda is not None:
                torch.cuda.set_rng_state(outer_cuda, self.device)
        self.curve.end_of_epoch()

    def summary(self) -> dict:
        out = self.curve.summary()
        out.update(self.settings, status="target reached" if self.curve.reached else "completed",
                   planned_epochs=self.n_epochs, train_cpu_s=self.clock.train_cpu_seconds(),
                   train_s=self.clock.train_seconds())
        return out


def run_idiomatic(model, data: Data, *, n_epochs: int, seed: int, target: float | None,
                  stop_at_target: bool, min_epochs: int = 0, **loop) -> dict:
    """The tutorial loop alone, for at most ``n_epochs``, stopping (if ``stop_at_target``)
    once the target is reached and ``min_epochs`` are done."""
    run = IdiomaticRun(model, data, seed=seed, target=target, stop_at_target=stop_at_target,
                       n_epochs=n_epochs, min_epochs=min_epochs, **loop)
    while not run.done:
        run.step()
    return run.summary()


def run_settings(ctx, model, seed: int, settings: dict, *, min_epochs: int = 0,
                 on_epoch=None, label: str | None = None) -> dict:
    """``train_model`` with ``settings``: without a schedule it runs until the target is
    reached (and ``min_epochs`` are done) or the epoch cap; a schedule has a fixed horizon
    of ``settings["n_epochs"]`` epochs, so that run is never cut short. Settings beyond
    the schedule's (e.g. ``init_decoder_bias``) are passed to ``train_model``."""
    schedule = settings.get("lr_schedule")
    known = {"batch_size", "learning_rate", "lr_schedule", "n_epochs", "mixed_precision"}
    return run_vi_helpers(
        model, ctx.data, batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"], lr_schedule=schedule,
        n_epochs=settings["n_epochs"] if schedule else ctx.max_epochs, seed=seed,
        target=ctx.target, stop_at_target=schedule is None, min_epochs=min_epochs,
        on_epoch=on_epoch, label=None if ctx.smoke else label,
        mixed_precision=settings.get("mixed_precision"),
        **{k: v for k, v in settings.items() if k not in known},
    )
