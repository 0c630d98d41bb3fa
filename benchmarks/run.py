"""Benchmark suite of the course: speed, quality against the literature, exactness, run time.

usage::

    python benchmarks/run.py --data-dir ../shared/data/mnist            # everything (< 45 min, 2 cores)
    python benchmarks/run.py --data-dir ../shared/data/mnist --only ttq  # one phase (repeatable)
    python benchmarks/run.py --data-dir ../shared/data/mnist --smoke --out-dir /tmp/b  # ~20 s

Phases (``--only`` selects; results of phases not run are kept from an earlier
``results.json`` in ``--out-dir``, so phases can be refreshed one at a time):

``env``        machine, torch, threads, date, command (always recorded).
``peak``       sgemm peak: ``torch.mm`` on the model's matrix shapes and a large square, best of several.
``ttq``        time to quality: seconds of training until the test -ELBO <= 105 nats, vi_helpers'
               trainer (best settings) against the tutorial loop of ``benchmarks/idiomatic.py``, run
               alternately A, B, A, B in this process; s/epoch and the fraction of the matmul bound;
               the test -ELBO after 10 epochs (anchor 102.6 nats).
``ablation``   each training choice's effect on time-to-105.
``overhead``   what ``vi_helpers.train_model`` spends per step beyond a lean loop, and on what.
``long``       the same model trained for ``--train-minutes`` CPU-minutes (cosine schedule).
``iwae``       IWAE ``--iwae-k`` NLL on the full test set and active units of the ``long`` model.
``ppca``       linear VAE against the exact pPCA log-likelihood on the 8x8 digits.
``widgets``    in-kernel widget update latency (from ``benchmarks/widget_latency.json``).
``notebooks``  seconds per notebook and in total with OMP_NUM_THREADS=1 and =2 (temp copies).

Data protocol: MNIST images scaled to [0, 1]; training batches are binarized dynamically
(a fresh Bernoulli draw every time a batch is used); the test set is binarized once with
``torch.Generator().manual_seed(0)``. "Test -ELBO" is the single-sample ELBO with a fixed
generator (seed 0) on that static test set, evaluated after every epoch with the training
clock paused.

Outputs in ``--out-dir`` (default ``benchmarks/``): ``results.json``, ``results.md``,
``results.png``; the long-trained model is kept in ``<out-dir>/_scratch/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import json
import math
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# run as a script from anywhere: the repository's package and this folder come first
for _p in (str(HERE), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import idiomatic  # noqa: E402
import torch  # noqa: E402

from vi_helpers import VariationalAutoencoder, train_model  # noqa: E402
from vi_helpers.data import dynamic_binarize, load_mnist, read_idx  # noqa: E402
from vi_helpers.train import make_adam  # noqa: E402

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
#: README and the ablation phase): the tutorial's own batch 128 and Adam 1e-3 with a
#: constant learning rate. ``n_epochs`` is a schedule's horizon (None: constant rate).
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


# ============================================================================ utilities
def log(msg: str = "") -> None:
    print(msg, flush=True)


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover
        pass
    return platform.processor() or platform.machine()


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def fmt_s(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def forward_macs(arch: dict = ARCH) -> int:
    """Multiply-accumulates of one example's forward pass through the Linear layers."""
    d, h, latent = arch["input_size"], arch["hidden_size"], arch["latent_size"]
    encoder = d * h + h * h + 2 * h * latent  # two hidden layers, mean and log_var heads
    decoder = latent * h + h * h + h * d
    return encoder + decoder


def decoder_macs(arch: dict = ARCH) -> int:
    d, h, latent = arch["input_size"], arch["hidden_size"], arch["latent_size"]
    return latent * h + h * h + h * d


def epoch_flops(n_examples: int, arch: dict = ARCH) -> float:
    """Matmul FLOPs of one training epoch: forward (2 per MAC) times 3 for forward + backward."""
    return 3 * 2 * forward_macs(arch) * n_examples


class StopTraining(Exception):
    """Raised from a batch hook to end a ``train_model`` run early (it propagates out of
    the trainer, whose ``finally`` leaves the model in a usable state)."""


# ================================================================================ data
class Data:
    """MNIST in [0, 1], the statically binarized test set, loaded once per process."""

    def __init__(self, data_dir: Path, *, smoke: bool, n_train: int | None, n_test: int | None):
        self.data_dir = data_dir
        self.smoke = smoke
        self.n_train = n_train
        self.n_test = n_test
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
    def train(self) -> torch.Tensor:
        if "train" not in self._cache:
            self._cache["train"] = self._load("train")
        return self._cache["train"]

    @property
    def test(self) -> torch.Tensor:
        """The test set binarized once, with a fixed seed."""
        if "test" not in self._cache:
            grey = self._load("test")
            gen = torch.Generator().manual_seed(TEST_BINARIZE_SEED)
            self._cache["test"] = dynamic_binarize(grey, generator=gen)
        return self._cache["test"]


def new_model(seed: int) -> VariationalAutoencoder:
    """The benchmark model with initial weights fixed by ``seed``."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return VariationalAutoencoder(
            ARCH["input_size"], ARCH["hidden_size"], ARCH["latent_size"], likelihood="bernoulli"
        )


@torch.no_grad()
def test_nelbo(model: torch.nn.Module, x_test: torch.Tensor) -> float:
    """Test -ELBO in nats per image: single sample, fixed generator (repeatable, and it
    consumes none of the training run's random numbers)."""
    gen = torch.Generator().manual_seed(EVAL_SEED)
    return -float(model.elbo(x_test, generator=gen).mean())


class Clock:
    """Training seconds since creation, minus the time spent inside ``paused()`` blocks
    (evaluations, and the other loop's epochs when the two are interleaved)."""

    def __init__(self):
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()
        self.paused_s = 0.0
        self.paused_cpu = 0.0

    def train_seconds(self) -> float:
        return time.perf_counter() - self.start - self.paused_s

    def train_cpu_seconds(self) -> float:
        return time.process_time() - self.cpu_start - self.paused_cpu

    @contextlib.contextmanager
    def paused(self):
        t, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.paused_s += time.perf_counter() - t
            self.paused_cpu += time.process_time() - c


class StepClock:
    """Training seconds accumulated only inside ``running()`` blocks (one per epoch)."""

    def __init__(self):
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    def train_seconds(self) -> float:
        return self.seconds

    def train_cpu_seconds(self) -> float:
        return self.cpu_seconds

    @contextlib.contextmanager
    def running(self):
        t, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - t
            self.cpu_seconds += time.process_time() - c

    @contextlib.contextmanager
    def paused(self):  # not running between epochs anyway
        yield


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

    def end_of_epoch(self, *, final: bool = False) -> None:
        """Record the training time, then evaluate with the clock paused; raise
        :class:`StopTraining` when the target is reached (if ``stop``)."""
        self.epochs_done += 1
        t, cpu = self.clock.train_seconds(), self.clock.train_cpu_seconds()
        if final or self.epochs_done % self.every == 0:
            with self.clock.paused():
                value = test_nelbo(self.model, self.x_test)
                if self.label:
                    log(f"    {self.label} epoch {self.epochs_done:3d}: test -ELBO {value:7.2f} "
                        f"after {t:7.1f} s of training ({time.strftime('%H:%M:%S')})")
                if self.on_epoch is not None and not final:
                    self.on_epoch()
            self.points.append({"epoch": self.epochs_done, "train_s": t, "train_cpu_s": cpu,
                                "test_nelbo": value})
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
                   lr_schedule: str | None, n_epochs: int, seed: int, target: float | None,
                   stop_at_target: bool, min_epochs: int = 0, every: int = 1,
                   max_train_cpu_s: float | None = None,
                   max_train_s: float | None = None, on_epoch=None,
                   label: str | None = None, clock: Clock | None = None,
                   mixed_precision: str | None = None) -> dict:
    """Train with ``vi_helpers.train_model`` (tensor dataset, dynamic binarization).

    ``on_epoch()`` runs after each epoch's evaluation with this run's clock paused: the
    A/B comparison runs one epoch of the other loop there, interleaving the two.
    """
    x = data.train
    clock = Clock() if clock is None else clock
    curve = Curve(model, data.test, clock, target=target, stop=stop_at_target, every=every,
                  min_epochs=min_epochs, max_train_cpu_s=max_train_cpu_s,
                  max_train_s=max_train_s, on_epoch=on_epoch, label=label)
    hook = EpochHook(math.ceil(x.shape[0] / batch_size), curve)
    status = "completed"
    try:
        history = train_model(
            model, x, n_epochs, learning_rate, batch_size=batch_size, lr_schedule=lr_schedule,
            transform=hook, seed=seed, progress=False,
            mixed_precision=getattr(torch, mixed_precision) if mixed_precision else None,
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
               planned_epochs=n_epochs,
               train_cpu_s=clock.train_cpu_seconds(), train_s=clock.train_seconds())
    return out


class IdiomaticRun:
    """The tutorial loop of ``benchmarks/idiomatic.py``, advanced one epoch per ``step()``
    so that it can be interleaved with ``train_model``. It keeps its own RNG state, so
    interleaving changes neither loop's random numbers."""

    def __init__(self, model, data: Data, *, seed: int, target: float | None,
                 stop_at_target: bool, n_epochs: int, min_epochs: int = 0,
                 batch_size: int = 128, learning_rate: float = 1e-3, logits: bool = False,
                 sync: bool = True, loader: str = "dataloader", label: str | None = None):
        self.model = model
        self.n_epochs, self.min_epochs, self.stop_at_target = n_epochs, min_epochs, stop_at_target
        self.kw = {"logits": logits, "sync": sync}
        self.settings = {"batch_size": batch_size, "learning_rate": learning_rate,
                         "lr_schedule": None, "logits": logits, "sync": sync, "loader": loader}
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.rng_state = torch.get_rng_state()
        x = data.train
        self.batches = (idiomatic.make_loader(x, batch_size, seed=seed) if loader == "dataloader"
                        else idiomatic.tensor_batches(x, batch_size, seed=seed))
        self.clock = StepClock()
        with self.clock.running():  # building the optimizer counts, as in the tutorial
            self.optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
        self.curve = Curve(model, data.test, self.clock, target=target, stop=False, label=label)

    @property
    def done(self) -> bool:
        epochs = self.curve.epochs_done
        if epochs >= self.n_epochs:
            return True
        return self.stop_at_target and self.curve.reached and epochs >= self.min_epochs

    def step(self) -> None:
        outer = torch.get_rng_state()
        torch.set_rng_state(self.rng_state)
        try:
            with self.clock.running():
                idiomatic.train_epoch(self.model, self.batches, self.optimizer, **self.kw)
            self.rng_state = torch.get_rng_state()
        finally:
            torch.set_rng_state(outer)
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


# ============================================================================== phases
class Context:
    def __init__(self, args):
        self.args = args
        self.smoke = args.smoke
        self.out_dir = Path(args.out_dir).resolve()
        self.scratch = self.out_dir / "_scratch"
        n_train, n_test = (args.smoke_train, args.smoke_test) if args.smoke else (None, None)
        self.data = Data(Path(args.data_dir).expanduser().resolve(), smoke=args.smoke,
                         n_train=n_train, n_test=n_test)
        self.results: dict = {}
        self.ran: set[str] = set()  # phases run by this process
        self.calibration: dict = {}

    # effective settings (smoke shrinks everything)
    @property
    def target(self) -> float:
        """105 nats; in a smoke run (tiny data) 90% of the untrained model's -ELBO."""
        if self.args.target is None:
            if self.smoke:
                self.args.target = round(0.9 * test_nelbo(new_model(self.args.seed),
                                                          self.data.test), 2)
            else:
                self.args.target = TARGET_NATS
        return self.args.target

    @property
    def best(self) -> dict:
        best = dict(BEST)
        if self.smoke and best["n_epochs"]:
            best["n_epochs"] = 3
        return best

    @property
    def quality_epochs(self) -> int:
        return 3 if self.smoke else QUALITY_EPOCHS

    @property
    def max_epochs(self) -> int:
        return 3 if self.smoke else self.args.max_epochs


# ------------------------------------------------------------------------------ env
def phase_env(ctx: Context) -> dict:
    omp = os.environ.get("OMP_NUM_THREADS")
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "cores_available": available_cores(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "env_OMP_NUM_THREADS": omp,
        "env_MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS"),
        "blas": "mkl" if torch.backends.mkl.is_available() else "other",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# ----------------------------------------------------------------------------- peak
def sgemm_shapes(batch_sizes) -> list[tuple[int, int, int]]:
    """(m, k, n) of the model's matmuls (forward, input-grad and weight-grad) and a square."""
    d, h = ARCH["input_size"], ARCH["hidden_size"]
    shapes = []
    for b in batch_sizes:
        # forward X W^T of the 784->400, 400->400 and 400->784 layers (the last is also
        # the input-gradient shape of the first), then weight gradients dY^T X
        shapes += [(b, d, h), (b, h, h), (b, h, d), (h, b, d), (h, b, h), (d, b, h)]
    shapes.append((1024, 1024, 1024))
    return list(dict.fromkeys(shapes))


def measure_mm(m: int, k: int, n: int, *, repeats: int, min_time: float,
               dtype: torch.dtype = torch.float32) -> float:
    """Best GFLOP/s of ``torch.mm`` over ``repeats`` timings of >= ``min_time`` s."""
    a = torch.randn(m, k, dtype=dtype)
    b = torch.randn(k, n, dtype=dtype)
    out = torch.empty(m, n, dtype=dtype)
    torch.mm(a, b, out=out)
    inner = 1
    while True:  # calibrate the inner loop to last min_time
        t = time.perf_counter()
        for _ in range(inner):
            torch.mm(a, b, out=out)
        dt = time.perf_counter() - t
        if dt >= min_time or inner >= 1 << 16:
            break
        inner *= 2
    best = dt / inner
    for _ in range(repeats - 1):
        t = time.perf_counter()
        for _ in range(inner):
            torch.mm(a, b, out=out)
        best = min(best, (time.perf_counter() - t) / inner)
    return 2.0 * m * k * n / best / 1e9


def phase_peak(ctx: Context) -> dict:
    repeats, min_time = (2, 0.01) if ctx.smoke else (7, 0.1)
    rows = []
    for m, k, n in sgemm_shapes(sorted({TUTORIAL["batch_size"], BEST["batch_size"]})):
        g = measure_mm(m, k, n, repeats=repeats, min_time=min_time)
        rows.append({"m": m, "k": k, "n": n, "gflops": round(g, 2)})
        log(f"  sgemm {m:5d}x{k:5d} @ {k:5d}x{n:5d}: {g:7.1f} GFLOP/s")
    peak = max(r["gflops"] for r in rows)
    # the same shapes in bfloat16, for the best settings' autocast (context, not the bound)
    bf16 = []
    for m, k, n in sgemm_shapes([BEST["batch_size"]])[:-1]:
        g = measure_mm(m, k, n, repeats=repeats, min_time=min_time, dtype=torch.bfloat16)
        bf16.append({"m": m, "k": k, "n": n, "gflops": round(g, 2)})
        log(f"  bf16 {m:5d}x{k:5d} @ {k:5d}x{n:5d}: {g:7.1f} GFLOP/s")
    return {"shapes": rows, "peak_gflops": peak, "repeats": repeats,
            "bf16_shapes": bf16, "bf16_peak_gflops": max(r["gflops"] for r in bf16),
            "note": ("best of several timings of torch.mm (float32) per shape; peak = max "
                     "over shapes. The bound uses the float32 peak; bf16 rows are context")}


def calibrate(ctx: Context) -> dict:
    """Seconds per epoch of the loops and batch sizes used, from a few timed steps (for
    the plan's estimates)."""
    if ctx.calibration:
        return ctx.calibration
    x = ctx.data.train
    steps = 3 if ctx.smoke else 12
    out = {}
    sizes = sorted({BEST["batch_size"], 128} | {v.get("batch_size", 128) for _, v in VARIANTS})
    amp = getattr(torch, BEST["mixed_precision"]) if BEST.get("mixed_precision") else None
    for name, bs in [("idiomatic", 128)] + [(f"vi_helpers_{b}", b) for b in sizes]:
        model = new_model(0)
        sub = x[: bs * steps]

        def epoch(model=model, sub=sub, bs=bs, name=name):
            if name == "idiomatic":
                opt = torch.optim.Adam(model.parameters(), lr=1e-3)
                idiomatic.train_epoch(model, idiomatic.make_loader(sub, bs, seed=0), opt)
            else:
                train_model(model, sub, 1, 1e-3, batch_size=bs, transform=dynamic_binarize,
                            progress=False, mixed_precision=amp)

        epoch()  # warm-up: first calls allocate and initialize; an estimate must not scale that
        out[name] = _time(epoch) / sub.shape[0] * x.shape[0]
    out["eval_s"] = _time(lambda: test_nelbo(new_model(0), ctx.data.test))
    ctx.calibration = out
    return out


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# ------------------------------------------------------------------------------ ttq
def run_settings(ctx: Context, model, seed: int, settings: dict, *, min_epochs: int = 0,
                 on_epoch=None, label: str | None = None) -> dict:
    """``train_model`` with ``settings``: without a schedule it runs until the target is
    reached (and ``min_epochs`` are done) or the epoch cap; a schedule has a fixed horizon
    of ``settings["n_epochs"]`` epochs, so that run is never cut short."""
    schedule = settings.get("lr_schedule")
    return run_vi_helpers(
        model, ctx.data, batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"], lr_schedule=schedule,
        n_epochs=settings["n_epochs"] if schedule else ctx.max_epochs, seed=seed,
        target=ctx.target, stop_at_target=schedule is None, min_epochs=min_epochs,
        on_epoch=on_epoch, label=None if ctx.smoke else label,
        mixed_precision=settings.get("mixed_precision"),
    )


def _curve_str(run: dict) -> str:
    return ", ".join(f"{p['test_nelbo']:.2f}" for p in run["points"])


def phase_ttq(ctx: Context) -> dict:
    """A, B, A, B repetitions of the two loops, each pair from the same initial weights."""
    best = ctx.best
    reps = 1 if ctx.smoke else ctx.args.reps
    runs: dict[str, list] = {"vi_helpers": [], "idiomatic": []}
    for r in range(reps):
        seed = ctx.args.seed + r
        init = new_model(seed)
        # the first repetition trains at least QUALITY_EPOCHS epochs (the 10-epoch quality
        # figure); later ones stop once the target is reached
        min_epochs = ctx.quality_epochs if r == 0 else 0
        log(f"  rep {r + 1}/{reps}: A = vi_helpers.train_model ({_settings_str(best)}) and "
            "B = idiomatic loop, epochs interleaved A, B, A, B, ...")
        loop_b = IdiomaticRun(copy.deepcopy(init), ctx.data, seed=seed, target=ctx.target,
                              stop_at_target=True, n_epochs=ctx.max_epochs,
                              min_epochs=min_epochs, label=None if ctx.smoke else "B")

        def b_epoch(loop_b=loop_b):
            if not loop_b.done:
                loop_b.step()

        a = run_settings(ctx, copy.deepcopy(init), seed, best, min_epochs=min_epochs,
                         on_epoch=b_epoch, label="A")
        while not loop_b.done:  # A stopped first: B finishes alone
            loop_b.step()
        b = loop_b.summary()
        runs["vi_helpers"].append(a)
        runs["idiomatic"].append(b)
        for tag, run in (("A", a), ("B", b)):
            log(f"    {tag}: {fmt_s(run['ttq_s'])} to {ctx.target:g} nats (epoch "
                f"{run['ttq_epochs']}), {median(run['epoch_s']):.2f} s/epoch; -ELBO per epoch: "
                f"{_curve_str(run)}")
    ratios = [
        a["ttq_s"] / b["ttq_s"] if a["ttq_s"] and b["ttq_s"] else None
        for a, b in zip(runs["vi_helpers"], runs["idiomatic"], strict=True)
    ]
    ratio = median(ratios) if all(r is not None for r in ratios) else None
    # contention on a shared machine only ever adds time, and on 2 busy cores it can make
    # single epochs tens of times slower; epochs-to-target x the fastest epoch of the run is
    # an estimate of the same time that such spikes do not move
    for run in runs["vi_helpers"] + runs["idiomatic"]:
        fastest = min(run["epoch_s"]) if run["epoch_s"] else None
        run["fastest_epoch_s"] = fastest
        run["ttq_robust_s"] = fastest * run["ttq_epochs"] if fastest and run["ttq_epochs"] else None
    ratios_robust = [
        a["ttq_robust_s"] / b["ttq_robust_s"] if a["ttq_robust_s"] and b["ttq_robust_s"] else None
        for a, b in zip(runs["vi_helpers"], runs["idiomatic"], strict=True)
    ]
    ttq_a = median([a["ttq_s"] for a in runs["vi_helpers"]])
    ttq_b = median([b["ttq_s"] for b in runs["idiomatic"]])
    s_epoch_b = median([s for b in runs["idiomatic"] for s in b["epoch_s"]])
    s_epoch_a = median([s for a in runs["vi_helpers"] for s in a["epoch_s"]])

    def at_epoch(run, epoch):
        return next((p["test_nelbo"] for p in run["points"] if p["epoch"] == epoch), None)

    q_epochs = ctx.quality_epochs
    vi_q = at_epoch(runs["vi_helpers"][0], q_epochs)
    vi_q_run = None
    if vi_q is None:  # a schedule with another horizon: rerun with a 10-epoch horizon
        log(f"  vi_helpers best settings over a {q_epochs}-epoch horizon (10-epoch quality)")
        vi_q_run = run_settings(ctx, new_model(ctx.args.seed), ctx.args.seed,
                                dict(best, n_epochs=q_epochs), min_epochs=q_epochs)
        vi_q = at_epoch(vi_q_run, q_epochs)
    return {
        "target_nats": ctx.target,
        "n_train": int(ctx.data.train.shape[0]),
        "best_settings": best,
        "tutorial_settings": dict(TUTORIAL, loss="sigmoid + binary_cross_entropy(sum)",
                                  loader="DataLoader(TensorDataset)", sync=".item() per batch"),
        "order": ("epochs interleaved A (vi_helpers), B (idiomatic), A, B, ...; each "
                  "repetition from the same initial weights for both (seed, seed + 1, ...)"),
        "reps": reps,
        "runs": runs,
        "ttq_s": {"vi_helpers": ttq_a, "idiomatic": ttq_b},
        "ratio_per_rep": ratios,
        "ratio": ratio,
        "ratio_of_medians": (ttq_a / ttq_b) if ttq_a and ttq_b else None,
        "ratio_robust_per_rep": ratios_robust,
        "ratio_robust": (median(ratios_robust) if all(r is not None for r in ratios_robust)
                         else None),
        "ttq_robust_s": {"vi_helpers": median([a["ttq_robust_s"] for a in runs["vi_helpers"]]),
                         "idiomatic": median([b["ttq_robust_s"] for b in runs["idiomatic"]])},
        "fastest_epoch_s": {
            "vi_helpers_best": min((a["fastest_epoch_s"] for a in runs["vi_helpers"]
                                    if a["fastest_epoch_s"]), default=None),
            "idiomatic_128": min((b["fastest_epoch_s"] for b in runs["idiomatic"]
                                  if b["fastest_epoch_s"]), default=None)},
        "epoch_s": {"vi_helpers_best": s_epoch_a, "idiomatic_128": s_epoch_b},
        "quality": {
            "epochs": q_epochs,
            "idiomatic": at_epoch(runs["idiomatic"][0], q_epochs),
            "vi_helpers_best": vi_q,
            "vi_helpers_extra_run": vi_q_run,
        },
    }


# ------------------------------------------------------------------------- ablation
#: Optimization choices tried against the best settings, one change at a time (each run
#: with vi_helpers.train_model to the target).
VARIANTS = (
    ("float32 (no autocast)", {"mixed_precision": None}),
    ("batch 128 (same learning rate)", {"batch_size": 128}),
    ("batch 512 (same learning rate)", {"batch_size": 512}),
    ("learning rate 2e-3", {"learning_rate": 2e-3}),
    ("cosine schedule to 0 over 9 epochs", {"lr_schedule": "cosine", "n_epochs": 9}),
)


def phase_ablation(ctx: Context) -> dict:
    """Which choices matter for time-to-105: loop choices, then optimization choices.

    Loop choices (BCE on logits, no per-batch sync, tensor minibatches, the vi_helpers
    trainer) leave the arithmetic of training unchanged, so the number of epochs to the
    target is the tutorial loop's; each is timed for one epoch, alternating with an epoch
    of the tutorial loop, and its time-to-target is estimated as epochs x s/epoch.
    Optimization choices (batch size, learning rate, schedule) change the number of epochs
    and are run to the target with ``train_model``, from the same initial weights.
    """
    best = ctx.best
    seed = ctx.args.seed
    init = new_model(seed)
    x = ctx.data.train
    ttq = ctx.results.get("ttq") if "ttq" in ctx.ran else None

    # -- the tutorial loop and the trainer at the tutorial settings, run to the target
    if ttq and ttq["runs"]["idiomatic"]:
        base = ttq["runs"]["idiomatic"][0]
    else:
        base = run_idiomatic(copy.deepcopy(init), ctx.data, n_epochs=ctx.max_epochs, seed=seed,
                             target=ctx.target, stop_at_target=True)
    base_epochs = base["ttq_epochs"]
    base_s = median(base["epoch_s"])
    # contention only adds time: the fastest epoch is the estimate that spikes do not move
    base_fast = min(base["epoch_s"]) if base["epoch_s"] else None

    def one_epoch(loader: str, fused: bool = False, **kw) -> float:
        model = copy.deepcopy(init)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            batches = (idiomatic.make_loader(x, 128, seed=seed) if loader == "dataloader"
                       else idiomatic.tensor_batches(x, 128, seed=seed))
            opt = (make_adam(list(model.parameters()), 1e-3) if fused
                   else torch.optim.Adam(model.parameters(), lr=1e-3))
            t = time.perf_counter()
            idiomatic.train_epoch(model, batches, opt, **kw)
            return time.perf_counter() - t

    def trainer_epoch(mixed_precision=None) -> float:
        model = copy.deepcopy(init)
        t = time.perf_counter()
        train_model(model, x, 1, 1e-3, batch_size=128, transform=dynamic_binarize, seed=seed,
                    progress=False, mixed_precision=mixed_precision)
        return time.perf_counter() - t

    loop_rows = [{"choice": "tutorial loop: DataLoader, sigmoid + BCE, .item() every batch",
                  "epoch_s": base_fast, "relative_epoch_time": 1.0,
                  "epochs_to_target": base_epochs,
                  "ttq_s": base_fast * base_epochs if base_fast and base_epochs else None,
                  "measured_ttq_s": base["ttq_s"], "measured": False}]
    log(f"  {loop_rows[0]['choice']}: {fmt_s(loop_rows[0]['ttq_s'])} (epoch {base_epochs}; "
        f"measured {fmt_s(base['ttq_s'])})")
    steps = [
        ("+ BCE on logits", lambda: one_epoch("dataloader", logits=True, sync=True)),
        ("+ no per-batch .item() (one sync per epoch)",
         lambda: one_epoch("dataloader", logits=True, sync=False)),
        ("+ tensor minibatches (randperm + index_select) instead of a DataLoader",
         lambda: one_epoch("tensor", logits=True, sync=False)),
        ("+ fused Adam (`torch.optim.Adam(fused=True)`, one kernel for all parameters)",
         lambda: one_epoch("tensor", fused=True, logits=True, sync=False)),
        ("+ binarize as `rand < x` instead of `torch.bernoulli(x)` (the same law)",
         lambda: one_epoch("tensor", fused=True, logits=True, sync=False, binarize="uniform")),
        ("vi_helpers.train_model (all of the above, plus its checks and NaN guard)",
         trainer_epoch),
        ("vi_helpers.train_model + bfloat16 autocast (`mixed_precision=torch.bfloat16`)",
         lambda: trainer_epoch(torch.bfloat16)),
    ]
    n_timed = 1 if ctx.smoke else ctx.args.ablation_epochs
    for label, fn in steps:
        refs, times = [], []
        for _ in range(n_timed):  # alternate with the tutorial loop: drift cancels
            refs.append(one_epoch("dataloader", logits=False, sync=True))
            times.append(fn())
        rel = min(times) / min(refs)  # fastest against fastest: robust to load spikes
        est = rel * base_fast if base_fast else None
        loop_rows.append({"choice": label, "epoch_s": est, "relative_epoch_time": rel,
                          "epochs_to_target": base_epochs,
                          "ttq_s": est * base_epochs if est and base_epochs else None,
                          "timed_epochs_s": times, "tutorial_epochs_s": refs,
                          "measured": False})
        log(f"  {label}: x{rel:.3f} s/epoch -> {fmt_s(loop_rows[-1]['ttq_s'])} (estimated)")

    # -- optimization choices with the trainer, one change from the best settings
    if ttq and ttq["runs"]["vi_helpers"]:
        best_run = ttq["runs"]["vi_helpers"][0]
    else:
        best_run = run_settings(ctx, copy.deepcopy(init), seed, best)
    opt_rows = [_row(f"best settings: {_settings_str(best)}", best_run, measured=True)]
    log(f"  {opt_rows[0]['choice']}: {fmt_s(best_run['ttq_s'])} (epoch {best_run['ttq_epochs']})")
    for label, change in VARIANTS:
        settings = dict(best, **change)
        if settings == best:
            continue
        if ctx.smoke:
            settings["n_epochs"] = min(settings.get("n_epochs") or 3, 3)
        run = run_settings(ctx, copy.deepcopy(init), seed, settings, label=label[:12])
        opt_rows.append(_row(label, run, measured=True))
        log(f"  {label}: {fmt_s(run['ttq_s'])} (epoch {run['ttq_epochs']}); "
            f"-ELBO per epoch: {_curve_str(run)}")
    trainer_rel = next(r["relative_epoch_time"] for r in loop_rows
                       if r["choice"].startswith("vi_helpers.train_model (all"))
    return {
        "loop_rows": loop_rows,
        "opt_rows": opt_rows,
        "baseline_ttq_s": base["ttq_s"],
        "epoch_s_at_128": {"idiomatic": base_s,
                           "vi_helpers": trainer_rel * base_s if base_s else None},
        "note": ("loop rows: fastest of their epochs / fastest of the tutorial epochs timed in "
                 f"alternation with them ({n_timed} pair(s) each), times the fastest epoch of "
                 "the tutorial run; time-to-target = the tutorial's epochs-to-target x s/epoch. "
                 "Optimization rows: train_model runs to the target from the same weights"),
    }


def _settings_str(settings: dict) -> str:
    sched = settings.get("lr_schedule")
    text = f"batch {settings['batch_size']}, Adam {settings['learning_rate']:g}"
    text += f", {sched} over {settings['n_epochs']} epochs" if sched else ", constant"
    if settings.get("mixed_precision"):
        text += f", {settings['mixed_precision']} autocast"
    return text


def _row(label: str, run: dict, *, measured: bool) -> dict:
    fastest = min(run["epoch_s"]) if run["epoch_s"] else None
    return {
        "choice": label,
        "measured": measured,
        "epoch_s": median(run["epoch_s"]),
        "fastest_epoch_s": fastest,
        "epochs_to_target": run["ttq_epochs"],
        "ttq_s": run["ttq_s"],
        "ttq_robust_s": fastest * run["ttq_epochs"] if fastest and run["ttq_epochs"] else None,
        "curve": [round(p["test_nelbo"], 2) for p in run["points"]],
    }


# ------------------------------------------------------------------------- overhead
def phase_overhead(ctx: Context) -> dict:
    """Per-step cost of ``train_model`` against a lean loop doing the same arithmetic,
    and the cost of each per-batch extra of the trainer measured on its own."""
    x = ctx.data.train
    bs = 128
    n_steps = 8 if ctx.smoke else 150
    sub = x[: bs * n_steps]
    if sub.shape[0] < bs * n_steps:
        n_steps = sub.shape[0] // bs
        sub = sub[: bs * n_steps]
    seed = ctx.args.seed
    reps = 2 if ctx.smoke else 5

    def trainer():
        model = new_model(seed)
        t = time.perf_counter()
        train_model(model, sub, 1, 1e-3, batch_size=bs, transform=dynamic_binarize,
                    seed=seed, progress=False)
        return (time.perf_counter() - t) / n_steps

    def lean():
        model = new_model(seed)
        opt = make_adam(list(model.parameters()), 1e-3)  # the trainer's Adam
        enc, dec = model.encoder, model.decoder.decoder
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            t = time.perf_counter()
            order = torch.randperm(sub.shape[0])
            total = torch.zeros((), dtype=torch.float64)
            for start in range(0, sub.shape[0], bs):
                xb = sub.index_select(0, order[start:start + bs])
                xb = (torch.rand_like(xb) < xb).to(xb.dtype)  # the trainer's binarization
                h = enc.encoder(xb)
                mu, log_var = enc.mean(h), enc.log_var(h)
                z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
                logits = dec(z)
                rec = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, xb, reduction="sum")
                kl = 0.5 * (mu.pow(2) + log_var.exp() - 1.0 - log_var).sum()
                loss = (rec + kl) / xb.shape[0]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach()
            float(total)
            return (time.perf_counter() - t) / n_steps

    trainer_s, lean_s = [], []
    for _ in range(reps):  # alternate, best of reps
        trainer_s.append(trainer())
        lean_s.append(lean())
    t_tr, t_lean = min(trainer_s), min(lean_s)

    # the trainer's per-batch extras, each timed alone
    model = new_model(seed)
    params = list(model.parameters())
    last_good = [p.detach().clone() for p in params]
    xb = torch.bernoulli(sub[:bs])
    n = 20 if ctx.smoke else 300

    def per_call(fn) -> float:
        fn()
        best = math.inf
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            best = min(best, (time.perf_counter() - t) / n)
        return best

    def copy_weights():
        with torch.no_grad():
            for buf, p in zip(last_good, params, strict=True):
                buf.copy_(p)

    with torch.no_grad():
        x_hat, mean, log_var = model(xb)
        loss = model.loss_function(xb, x_hat, mean, log_var)
    enc, dec = model.encoder, model.decoder.decoder

    def raw_forward():
        with torch.no_grad():
            h = enc.encoder(xb)
            mu, lv = enc.mean(h), enc.log_var(h)
            dec(mu + torch.randn_like(mu) * torch.exp(0.5 * lv))

    def checked_forward():
        with torch.no_grad():
            model(xb)

    def raw_loss():
        with torch.no_grad():
            rec = torch.nn.functional.binary_cross_entropy_with_logits(
                x_hat, xb, reduction="none").sum(-1)
            kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)
            (rec.mean() + kl.mean())

    def checked_loss():
        with torch.no_grad():
            model.loss_function(xb, x_hat, mean, log_var, return_terms=True)

    extras = {
        "last_good_copy_us": per_call(copy_weights) * 1e6,
        "isfinite_loss_us": per_call(lambda: bool(torch.isfinite(loss))) * 1e6,
        "forward_checks_us": (per_call(checked_forward) - per_call(raw_forward)) * 1e6,
        "loss_checks_and_terms_us": (per_call(checked_loss) - per_call(raw_loss)) * 1e6,
        "dynamic_binarize_checks_us": (per_call(lambda: dynamic_binarize(xb))
                                       - per_call(lambda: (torch.rand_like(xb) < xb).to(xb.dtype))
                                       ) * 1e6,
    }
    return {
        "batch_size": bs,
        "steps": n_steps,
        "trainer_step_ms": t_tr * 1e3,
        "lean_step_ms": t_lean * 1e3,
        "overhead_ms": (t_tr - t_lean) * 1e3,
        "overhead_fraction": (t_tr - t_lean) / t_tr,
        "extras_us": {k: round(v, 1) for k, v in extras.items()},
        "note": ("lean = the same arithmetic (tensor minibatches, BCE on logits, analytic KL, "
                 "Adam) without the trainer's per-batch checks, weight backup and bookkeeping; "
                 "best of alternating repetitions"),
    }


# ----------------------------------------------------------------------------- long
def phase_long(ctx: Context) -> dict:
    """Train for a CPU-time budget with a cosine learning-rate schedule *in time*.

    The learning rate after each epoch is ``lr * (1 + cos(pi * p)) / 2``, where ``p`` is
    the fraction of the budget used so far, and training stops at ``p = 1``; so the rate
    anneals to 0 exactly when the budget runs out, however fast the machine turns out to
    be. ``p`` is the larger of CPU time / budget and wall time / (1.5 x budget / threads):
    the second only binds on a machine so busy that the CPU budget would take too long.
    """
    threads = torch.get_num_threads()
    budget_cpu = ctx.args.train_minutes * 60.0
    budget_wall = 1.5 * budget_cpu / threads
    bs = ctx.args.long_batch
    lr = ctx.args.long_lr
    x = ctx.data.train
    # a short timed probe, only to space the ~25 evaluations of the curve
    steps = 4 if ctx.smoke else 30
    probe = x[: bs * steps]
    t = time.perf_counter()
    amp = None if ctx.args.long_precision == "float32" else ctx.args.long_precision
    train_model(new_model(ctx.args.seed + 100), probe, 1, lr, batch_size=bs,
                transform=dynamic_binarize, progress=False,
                mixed_precision=getattr(torch, amp) if amp else None)
    wall_epoch = (time.perf_counter() - t) * x.shape[0] / probe.shape[0]
    expected_epochs = max(1, int(budget_cpu / threads / max(wall_epoch, 1e-9)))
    every = max(1, expected_epochs // 25)
    log(f"  budget {ctx.args.train_minutes:g} CPU-min (~{fmt_s(budget_cpu / threads)} on "
        f"{threads} threads); ~{expected_epochs} epochs expected at ~{wall_epoch:.1f} s/epoch")

    clock = Clock()

    def progress() -> float:
        return max(clock.train_cpu_seconds() / budget_cpu, clock.train_seconds() / budget_wall)

    def cosine_in_time(epoch: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress())))

    model = new_model(ctx.args.seed)
    run = run_vi_helpers(model, ctx.data, batch_size=bs, learning_rate=lr,
                         lr_schedule=cosine_in_time, n_epochs=1_000_000, seed=ctx.args.seed,
                         target=None, stop_at_target=False, every=every,
                         max_train_cpu_s=budget_cpu, max_train_s=budget_wall,
                         label=None if ctx.smoke else "long", clock=clock,
                         mixed_precision=amp)
    ctx.scratch.mkdir(parents=True, exist_ok=True)
    torch.save({"config": model.config, "state_dict": model.state_dict(),
                "epochs": run["epochs"]}, ctx.scratch / "long_model.pt")
    log(f"  trained {run['epochs']} epochs in {fmt_s(run['train_s'])} "
        f"({run['train_cpu_s'] / 60:.1f} CPU-min): test -ELBO {run['final_test_nelbo']:.2f}")
    return {
        "budget_cpu_minutes": ctx.args.train_minutes,
        "threads": threads,
        "batch_size": bs,
        "learning_rate": lr,
        "mixed_precision": amp,
        "lr_schedule": "cosine over the time budget, updated per epoch",
        "run": run,
        "test_nelbo": run["final_test_nelbo"],
        "cpu_minutes": run["train_cpu_s"] / 60,
        "wall_minutes": run["train_s"] / 60,
        "note": ("CPU-minutes = process CPU time (all threads) while training, evaluations "
                 "excluded. lr = lr0 (1 + cos(pi p)) / 2 after each epoch, p = the fraction of "
                 "the budget used (CPU time, or wall time / (1.5 budget / threads) if larger); "
                 "training stops at p = 1"),
    }


def load_long_model(ctx: Context) -> VariationalAutoencoder:
    path = ctx.scratch / "long_model.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the 'long' phase first")
    saved = torch.load(path, weights_only=True)
    model = VariationalAutoencoder(**saved["config"])
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return model


# ----------------------------------------------------------------------------- iwae
def phase_iwae(ctx: Context) -> dict:
    from vi_helpers import evaluate

    model = load_long_model(ctx)
    x = ctx.data.test
    k = ctx.args.iwae_k
    chunk = ctx.args.iwae_chunk
    # FLOP estimate: k decoder passes per image dominate (the encoder runs once per image)
    flops = 2.0 * decoder_macs() * k * x.shape[0]
    # runtime estimate from a few images
    n_probe = min(x.shape[0], 4 if ctx.smoke else 20)
    t = time.perf_counter()
    iwae_ll(evaluate, model, x[:n_probe], k, chunk, ctx.args.iwae_sample_batch)
    est = (time.perf_counter() - t) * x.shape[0] / n_probe
    log(f"  IWAE k={k} on {x.shape[0]} images: {flops / 1e12:.1f} TFLOP of decoder matmuls; "
        f"estimated {fmt_s(est)} (from {n_probe} images)")
    t = time.perf_counter()
    ll = iwae_ll(evaluate, model, x, k, chunk, ctx.args.iwae_sample_batch)
    iwae_s = time.perf_counter() - t
    nll = -float(ll.mean())
    se = float(ll.std()) / math.sqrt(ll.numel())
    log(f"  IWAE NLL {nll:.2f} ± {se:.2f} nats in {fmt_s(iwae_s)}")
    with torch.no_grad():
        elbo = test_nelbo(model, x)
    t = time.perf_counter()
    au = active_units_of(evaluate, model, x)
    au_s = time.perf_counter() - t
    peak = (ctx.results.get("peak") or {}).get("peak_gflops")
    return {
        "k": k,
        "n_images": int(x.shape[0]),
        "nll": nll,
        "nll_se": se,
        "test_nelbo": elbo,
        "seconds": iwae_s,
        "estimated_seconds": est,
        "decoder_tflop": flops / 1e12,
        "matmul_bound_s": flops / (peak * 1e9) if peak else None,
        "active_units": au["n"],
        "active_units_threshold": au["threshold"],
        "active_unit_variances": au["variances"],
        "chunk_images": chunk,
        "sample_batch": ctx.args.iwae_sample_batch,
        "active_units_seconds": au_s,
        "latent_size": ARCH["latent_size"],
    }


def iwae_ll(evaluate, model, x, k: int, chunk: int, sample_batch: int,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """``vi_helpers.evaluate.log_likelihood_is`` over ``chunk`` images at a time (its own
    ``batch_size`` chunks the ``k`` samples): memory ~ chunk x sample_batch x 784 floats."""
    if generator is None:
        generator = torch.Generator().manual_seed(EVAL_SEED)
    parts = [
        evaluate.log_likelihood_is(model, x[i:i + chunk], k=k, batch_size=sample_batch,
                                   generator=generator)
        for i in range(0, x.shape[0], chunk)
    ]
    return torch.cat(parts)


def active_units_of(evaluate, model, x) -> dict:
    count, variances = evaluate.active_units(model, x)
    return {"n": int(count), "threshold": 0.01,
            "variances": [round(float(v), 4) for v in variances]}


# ----------------------------------------------------------------------------- ppca
def phase_ppca(ctx: Context) -> dict:
    """Linear VAE (``fit_linear_vae``) against pPCA's closed-form maximum likelihood.

    The linear VAE's ELBO optimum is the pPCA maximum likelihood (Lucas et al. 2019), so
    the gaps are optimization gaps; both log-likelihoods are exact (Gaussian marginals),
    computed in float64, in nats per image, on all 1797 digits.
    """
    from vi_helpers.data import load_digits
    from vi_helpers.models import ProbabilisticPCA
    from vi_helpers.train import fit_linear_vae

    x, _ = load_digits(split="all")
    x64 = x.double()
    n_steps = 100 if ctx.smoke else None
    rows = []
    for latent in ctx.args.ppca_latent:
        ppca = ProbabilisticPCA(latent).fit(x)
        exact = ppca.max_log_likelihood()
        kwargs = {"n_steps": n_steps} if n_steps else {}
        t = time.perf_counter()
        out = fit_linear_vae(x, latent, **kwargs)
        fit_s = time.perf_counter() - t
        model = (out[0] if isinstance(out, tuple) else out).double().eval()
        with torch.no_grad():
            vae_ll = float(model.exact_log_likelihood(x64).mean())
            vae_elbo = float(model.analytic_elbo(x64).mean())
            ppca_ll = float(ppca.log_likelihood(x64).mean())
        rows.append({
            "latent_size": latent,
            "ppca_loglik": exact,
            "ppca_loglik_rows": ppca_ll,
            "linear_vae_loglik": vae_ll,
            "linear_vae_elbo": vae_elbo,
            "gap_loglik": exact - vae_ll,
            "gap_elbo": exact - vae_elbo,
            "fit_seconds": fit_s,
            "n_steps": n_steps or "default",
        })
        log(f"  L={latent}: pPCA {exact:.3f}, linear VAE log-lik {vae_ll:.3f} "
            f"(gap {exact - vae_ll:.4f}), ELBO {vae_elbo:.3f} (gap {exact - vae_elbo:.4f}) "
            f"nats/image, fit {fit_s:.1f} s")
    return {
        "data": f"sklearn digits, all {x.shape[0]} images, D={x.shape[1]}, pixels / 16",
        "rows": rows,
        "gap_loglik": max(r["gap_loglik"] for r in rows),
        "gap_elbo": max(r["gap_elbo"] for r in rows),
    }


# -------------------------------------------------------------------------- widgets
def phase_widgets(ctx: Context) -> dict:
    """In-kernel widget update latency, measured now with the widgets issue's script
    (``benchmarks/widget_latency.py``: a fresh kernel, every widget, >= 200 updates per
    case; a smoke run does 20). The browser round trip needs Chromium and JupyterLab,
    so it is not rerun here: it is quoted from ``benchmarks/widget_latency.json``."""
    import widget_latency

    n_updates = 20 if ctx.smoke else 300
    kernel = widget_latency.measure_in_kernel(n_updates)
    cases = {name: {k: c.get(k) for k in ("median_ms", "p90_ms", "cpu_median_ms")}
             for name, c in kernel.items()}
    for name, c in cases.items():
        log(f"  {name:44s} median {c['median_ms']:6.2f} ms, p90 {c['p90_ms']:6.2f} ms")
    explorer = kernel["LatentExplorer slider"]
    path = ROOT / "benchmarks" / "widget_latency.json"
    browser, browser_file = {}, None
    if path.is_file():
        browser = json.loads(path.read_text()).get("browser_round_trip") or {}
        browser_file = datetime.datetime.fromtimestamp(
            path.stat().st_mtime, datetime.UTC).replace(microsecond=0).isoformat()
    vae_medians = [kernel[c]["median_ms"] for c in widget_latency.VAE_CASES if c in kernel]
    return {
        "source": f"benchmarks/widget_latency.py in-kernel part, {n_updates} updates per case",
        "case": "LatentExplorer slider",
        "median_ms": explorer["median_ms"],
        "p90_ms": explorer["p90_ms"],
        "cpu_median_ms": explorer.get("cpu_median_ms"),
        "cases": cases,
        "target_ms": widget_latency.TARGET_KERNEL_MS,
        "vae_widgets_met": all(m <= widget_latency.TARGET_KERNEL_MS for m in vae_medians),
        "browser_median_ms": browser.get("load_median_ms", browser.get("src_median_ms")),
        "browser_p90_ms": browser.get("load_p90_ms", browser.get("src_p90_ms")),
        "browser_source": (f"benchmarks/widget_latency.json ({browser_file})"
                           if browser_file else None),
    }


# ------------------------------------------------------------------------ notebooks
def notebook_paths() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def stated_run_time(path: Path) -> float | None:
    """The ``**Run time:** about N s`` a notebook states for itself."""
    m = re.search(r"Run time:\**\s*about\s*(\d+(?:\.\d+)?)\s*s", path.read_text())
    return float(m.group(1)) if m else None


def phase_notebooks(ctx: Context) -> dict:
    """Execute temp copies with tools/run_notebooks.py (one fresh kernel per notebook)."""
    paths = notebook_paths()
    settings = [int(t) for t in ctx.args.notebook_threads.split(",") if t]
    table: dict[str, dict] = {p.name: {"stated_s": stated_run_time(p)} for p in paths}
    totals = {}
    with tempfile.TemporaryDirectory(prefix="vi-bench-nb-") as tmp:
        for n in settings:
            work = Path(tmp) / f"threads{n}"
            (work / "figures").mkdir(parents=True)  # figures_dir() finds this, not the repo's
            shutil.copytree(ROOT / "notebooks", work / "notebooks",
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
            env = dict(os.environ, OMP_NUM_THREADS=str(n), MKL_NUM_THREADS=str(n),
                       PYTHONHASHSEED="0",
                       PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
            total = 0.0
            for p in paths:
                cmd = [sys.executable, str(ROOT / "tools" / "run_notebooks.py"),
                       str(work / "notebooks" / p.name)]
                t = time.perf_counter()
                proc = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True,
                                      timeout=ctx.args.notebook_timeout)
                wall = time.perf_counter() - t
                m = re.search(rf"{re.escape(p.name)}\s+([\d.]+) s", proc.stdout)
                entry = {"seconds": float(m.group(1)) if m else None, "process_s": wall,
                         "ok": proc.returncode == 0 and m is not None}
                if not entry["ok"]:
                    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                    entry["error"] = " | ".join(tail)[-400:]
                table[p.name][f"threads{n}"] = entry
                if entry["seconds"] is not None:
                    total += entry["seconds"]
                log(f"  OMP_NUM_THREADS={n} {p.name:35s} "
                    f"{fmt_s(entry['seconds']) if entry['ok'] else 'FAILED'}")
            totals[f"threads{n}"] = total
    return {
        "notebooks": table,
        "total_s": totals,
        "n_notebooks": len(paths),
        "all_ok": all(e.get(f"threads{n}", {}).get("ok", False)
                      for e in table.values() for n in settings) if paths else False,
        "how": ("tools/run_notebooks.py on temporary copies (committed notebooks untouched), "
                "one fresh kernel per notebook, full fidelity"),
    }


# ============================================================================== driver
PHASE_FUNCS = {
    "env": phase_env,
    "peak": phase_peak,
    "ttq": phase_ttq,
    "ablation": phase_ablation,
    "overhead": phase_overhead,
    "long": phase_long,
    "iwae": phase_iwae,
    "ppca": phase_ppca,
    "widgets": phase_widgets,
    "notebooks": phase_notebooks,
}


def estimate_plan(ctx: Context, phases: list[str]) -> dict[str, float]:
    """Estimated seconds per phase, from a few timed training steps and the sgemm peak."""
    need_cal = any(p in phases for p in ("ttq", "ablation", "long"))
    cal = calibrate(ctx) if need_cal else {}
    ev = cal.get("eval_s", 0.3)
    s_id = cal.get("idiomatic", 6.0) + ev
    s_vi = cal.get(f"vi_helpers_{BEST['batch_size']}", 6.0) + ev
    # epochs to 105 nats: about 6 at batch 128 and Adam 1e-3 (measured), more otherwise
    e_target = 3 if ctx.smoke else 7
    q = ctx.quality_epochs
    reps = 1 if ctx.smoke else ctx.args.reps
    est = {"env": 0.1, "peak": 2.0 if ctx.smoke else 12.0}
    est["ttq"] = (max(q, e_target) + (reps - 1) * e_target) * (s_vi + s_id)
    n_timed = 1 if ctx.smoke else ctx.args.ablation_epochs
    est["ablation"] = 6 * n_timed * 2 * s_id
    for _, change in VARIANTS:
        bs = change.get("batch_size", BEST["batch_size"])
        epochs = change.get("n_epochs") or min(ctx.max_epochs, round(e_target * max(1, bs / 128)))
        est["ablation"] += epochs * (cal.get(f"vi_helpers_{bs}", 6.0) + ev)
    est["overhead"] = 3.0 if ctx.smoke else 30.0
    threads = torch.get_num_threads()
    est["long"] = ctx.args.train_minutes * 60.0 / threads + 26 * ev
    peak = (ctx.results.get("peak") or {}).get("peak_gflops") or 100.0
    n_test = ctx.args.smoke_test if ctx.smoke else 10000
    flops = 2.0 * decoder_macs() * ctx.args.iwae_k * n_test
    # decoder matmuls at ~60% of the peak, plus ~30% for the elementwise log-likelihoods
    est["iwae"] = flops / (0.6 * peak * 1e9) * 1.3
    est["ppca"] = 2.0 if ctx.smoke else 15.0
    est["widgets"] = 5.0 if ctx.smoke else 30.0
    per = [stated_run_time(p) or 25.0 for p in notebook_paths()]
    n_settings = len([t for t in ctx.args.notebook_threads.split(",") if t])
    est["notebooks"] = n_settings * sum(sec + 5.0 for sec in per)  # + a kernel start each
    return {p: est[p] for p in phases}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"),
                   help="folder with the four MNIST IDX files (.gz or raw)")
    p.add_argument("--out-dir", default=str(HERE),
                   help="where results.{json,md,png} go (default: benchmarks/)")
    p.add_argument("--only", action="append", default=None, metavar="PHASE",
                   help=f"run only these phases (repeat or comma-separate): {', '.join(PHASES)}")
    p.add_argument("--skip", action="append", default=None, metavar="PHASE",
                   help="run all phases but these")
    p.add_argument("--smoke", action="store_true",
                   help="tiny data and budgets, k=10, no notebooks (for the tests, ~20 s)")
    p.add_argument("--iwae-k", type=int, default=None,
                   help="importance samples per image for the NLL (default 5000; smoke 10)")
    p.add_argument("--iwae-chunk", type=int, default=50,
                   help="images per call of log_likelihood_is")
    p.add_argument("--iwae-sample-batch", type=int, default=200,
                   help="importance samples per chunk inside log_likelihood_is (its batch_size)")
    p.add_argument("--train-minutes", type=float, default=None,
                   help="CPU-minutes of training for the IWAE model (default 30; smoke 0.05)")
    p.add_argument("--long-lr", type=float, default=1e-3,
                   help="initial learning rate of the long run's cosine schedule")
    p.add_argument("--long-batch", type=int, default=128, help="batch size of the long run")
    p.add_argument("--long-precision", choices=["bfloat16", "float32"], default="bfloat16",
                   help="autocast dtype of the long run's forward pass (float32: none)")
    p.add_argument("--target", type=float, default=None,
                   help="test -ELBO target in nats (default 105; smoke: 0.9 x the initial)")
    p.add_argument("--reps", type=int, default=2, help="A,B repetitions in the ttq phase")
    p.add_argument("--max-epochs", type=int, default=15,
                   help="epoch cap for runs that stop at the target")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ablation-epochs", type=int, default=2,
                   help="epochs timed per loop choice (each paired with a tutorial epoch)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: all available cores, whatever OMP_NUM_THREADS "
                        "says, so that `make bench` and a direct run measure the same thing)")
    p.add_argument("--ppca-latent", type=lambda v: [int(t) for t in v.split(",")],
                   default=[2, 5, 10], help="latent sizes of the pPCA check (comma-separated)")
    p.add_argument("--notebook-threads", default="1,2",
                   help="OMP_NUM_THREADS settings for the notebooks phase")
    p.add_argument("--notebook-timeout", type=int, default=600)
    p.add_argument("--smoke-train", type=int, default=512)
    p.add_argument("--smoke-test", type=int, default=256)
    args = p.parse_args(argv)
    if args.iwae_k is None:
        args.iwae_k = 10 if args.smoke else 5000
    if args.train_minutes is None:
        args.train_minutes = 0.05 if args.smoke else 30.0
    selected = []
    for item in args.only or []:
        selected += [s.strip() for s in item.split(",") if s.strip()]
    skipped = []
    for item in args.skip or []:
        skipped += [s.strip() for s in item.split(",") if s.strip()]
    for name in selected + skipped:
        if name not in PHASES:
            p.error(f"unknown phase {name!r}; choose from {', '.join(PHASES)}")
    if not selected:
        selected = [ph for ph in PHASES if not (args.smoke and ph == "notebooks")]
    args.phases = [ph for ph in PHASES if ph in selected and ph not in skipped]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = args.threads or available_cores()
    torch.set_num_threads(threads)
    ctx = Context(args)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    json_path = ctx.out_dir / "results.json"
    previous = {}
    if json_path.is_file():
        try:
            previous = json.loads(json_path.read_text())
        except json.JSONDecodeError:
            previous = {}
        if previous.get("schema") != SCHEMA_VERSION or bool(previous.get("smoke")) != args.smoke:
            previous = {}
    command = "python benchmarks/run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]) \
        if argv is None else "python benchmarks/run.py " + " ".join(map(shlex.quote, argv))
    started = time.perf_counter()

    phases = list(args.phases)
    if "env" not in phases:
        phases.insert(0, "env")
    # the matmul peak is measured in the same run as anything reported against it
    if any(p in phases for p in ("ttq", "ablation", "iwae")) and "peak" not in phases:
        phases.insert(1, "peak")
    ctx.results.update(previous.get("phases", {}))

    log(f"vi_helpers benchmark -- {now_iso()} -- {cpu_model()}, {available_cores()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {loadavg()}")
    log(f"command: {command}")
    # env and peak first, then the plan (its estimates use the measured peak)
    for name in ("env", "peak"):
        if name in phases:
            _run_phase(ctx, name, command, None)
    rest = [p for p in phases if p not in ("env", "peak")]
    plan = estimate_plan(ctx, rest)
    total_est = sum(plan.values())
    log(f"plan ({fmt_s(total_est)} estimated):")
    for name, sec in plan.items():
        log(f"  {name:10s} ~{fmt_s(sec)}")
    ctx.results["_plan"] = {k: round(v, 1) for k, v in plan.items()}
    failures = []
    for name in rest:
        if not _run_phase(ctx, name, command, plan.get(name)):
            failures.append(name)
        _write_outputs(ctx, command)
    _write_outputs(ctx, command)
    log(f"done in {fmt_s(time.perf_counter() - started)}; results in {ctx.out_dir}")
    if failures:
        log(f"FAILED phases: {', '.join(failures)}")
    return 1 if failures else 0


def _run_phase(ctx: Context, name: str, command: str, estimate: float | None) -> bool:
    log(f"== {name}" + (f" (estimated {fmt_s(estimate)})" if estimate is not None else ""))
    load_before = loadavg()
    t = time.perf_counter()
    try:
        result = PHASE_FUNCS[name](ctx)
        ok = True
        ctx.ran.add(name)
    except Exception as err:  # a failing phase must not lose the others' results
        import traceback

        traceback.print_exc()
        result = {"error": f"{type(err).__name__}: {err}"}
        ok = False
    seconds = time.perf_counter() - t
    result = dict(result)
    result["_meta"] = {"date": now_iso(), "command": command, "seconds": round(seconds, 2),
                       "estimated_seconds": round(estimate, 1) if estimate else None,
                       "threads": torch.get_num_threads(), "loadavg_before": load_before,
                       "loadavg_after": loadavg()}
    ctx.results[name] = result
    log(f"   {name} took {fmt_s(seconds)}" + ("" if ok else " -- FAILED"))
    return ok


# ============================================================================= outputs
def _clean(obj):
    """JSON-safe: floats rounded, NaN/inf -> None."""
    if isinstance(obj, float):
        return round(obj, 4) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def summary(results: dict) -> dict:
    """The headline figures, each with its anchor and goal."""
    ttq = results.get("ttq", {})
    abl = results.get("ablation", {})
    peak = (results.get("peak") or {}).get("peak_gflops")
    iw = results.get("iwae", {})
    pp = results.get("ppca", {})
    wd = results.get("widgets", {})
    nb = results.get("notebooks", {})
    longr = results.get("long", {})
    n_train = ttq.get("n_train") or 60000
    flops = epoch_flops(n_train)
    epoch_s = dict(ttq.get("epoch_s") or {})
    e128 = (abl.get("epoch_s_at_128") or {})

    def frac(seconds):
        return (flops / (peak * 1e9)) / seconds if seconds and peak else None

    ratio = ttq.get("ratio")
    fastest = ttq.get("fastest_epoch_s") or {}
    best_settings = ttq.get("best_settings") or {}
    best_is_128_fp32 = (best_settings.get("batch_size") == 128
                        and not best_settings.get("mixed_precision"))
    s = {
        "ttq_vi_helpers_s": (ttq.get("ttq_s") or {}).get("vi_helpers"),
        "ttq_idiomatic_s": (ttq.get("ttq_s") or {}).get("idiomatic"),
        "ttq_ratio": ratio,
        "ttq_ratio_goal": GOALS["ttq_ratio"],
        "ttq_goal_met": (ratio <= GOALS["ttq_ratio"]) if ratio else None,
        "ttq_vi_helpers_robust_s": (ttq.get("ttq_robust_s") or {}).get("vi_helpers"),
        "ttq_idiomatic_robust_s": (ttq.get("ttq_robust_s") or {}).get("idiomatic"),
        "ttq_ratio_robust": ttq.get("ratio_robust"),
        "fastest_epoch_s_idiomatic_128": fastest.get("idiomatic_128"),
        "fastest_epoch_s_vi_helpers_best": fastest.get("vi_helpers_best"),
        # the A runs are at batch 128 in float32 only if the best settings are
        "fastest_epoch_s_vi_helpers_128": (
            fastest.get("vi_helpers_best") if best_is_128_fp32 else None),
        # measured in the A,B runs (both at batch 128 when the best batch is 128)
        "epoch_s_idiomatic_128": epoch_s.get("idiomatic_128") or e128.get("idiomatic"),
        "epoch_s_vi_helpers_128": (epoch_s.get("vi_helpers_best") if best_is_128_fp32
                                   else e128.get("vi_helpers")),
        "epoch_s_vi_helpers_best": epoch_s.get("vi_helpers_best"),
        "epoch_gflop": flops / 1e9,
        "sgemm_peak_gflops": peak,
    }
    s["matmul_fraction_idiomatic_128"] = frac(s["epoch_s_idiomatic_128"])
    s["matmul_fraction_vi_helpers_128"] = frac(s["epoch_s_vi_helpers_128"])
    s["matmul_fraction_vi_helpers_best"] = frac(s["epoch_s_vi_helpers_best"])
    s["matmul_fraction_idiomatic_fastest"] = frac(s["fastest_epoch_s_idiomatic_128"])
    s["matmul_fraction_vi_helpers_fastest"] = frac(s["fastest_epoch_s_vi_helpers_best"])
    s["matmul_fraction_vi_helpers_128_fastest"] = frac(s["fastest_epoch_s_vi_helpers_128"])
    q = ttq.get("quality") or {}
    s.update({
        "nelbo_10ep_idiomatic": q.get("idiomatic"),
        "nelbo_10ep_vi_helpers_best": q.get("vi_helpers_best"),
        "nelbo_10ep_anchor": ANCHORS["elbo_10_epochs"],
        "iwae_nll": iw.get("nll"),
        "iwae_k": iw.get("k"),
        "iwae_seconds": iw.get("seconds"),
        "iwae_nll_anchor": ANCHORS["iwae_nll_burda"],
        "iwae_nll_goal": GOALS["iwae_nll"],
        "iwae_goal_met": (iw["nll"] <= GOALS["iwae_nll"]) if iw.get("nll") is not None else None,
        "long_cpu_minutes": longr.get("cpu_minutes"),
        "long_epochs": (longr.get("run") or {}).get("epochs"),
        "active_units": iw.get("active_units"),
        "ppca_gap_nats": pp.get("gap_loglik"),
        "ppca_elbo_gap_nats": pp.get("gap_elbo"),
        "widget_median_ms": wd.get("median_ms"),
        "widget_p90_ms": wd.get("p90_ms"),
        "course_total_s": nb.get("total_s"),
    })
    return s


def _write_outputs(ctx: Context, command: str) -> None:
    results = {k: v for k, v in ctx.results.items()}
    doc = {
        "schema": SCHEMA_VERSION,
        "smoke": ctx.smoke,
        "generated": now_iso(),
        "command": command,
        "machine": results.get("env", {}),
        "summary": summary(results),
        "phases": results,
    }
    doc = _clean(doc)
    (ctx.out_dir / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    (ctx.out_dir / "results.md").write_text(render_markdown(doc))
    try:
        plot_results(doc, ctx.out_dir / "results.png")
    except Exception as err:  # a figure must not cost the numbers
        log(f"  (results.png not written: {type(err).__name__}: {err})")


def _f(value, spec: str = ".1f", unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:{spec}}{unit}"


def _met(flag) -> str:
    return {True: "met", False: "missed", None: "n/a"}[flag]


def render_markdown(doc: dict) -> str:
    s = doc["summary"]
    ph = doc["phases"]
    m = doc.get("machine") or {}
    ttq = ph.get("ttq", {})
    best = ttq.get("best_settings") or BEST
    target = ttq.get("target_nats", TARGET_NATS)
    bound = s["epoch_gflop"] / s["sgemm_peak_gflops"] if s.get("sgemm_peak_gflops") else None

    def pct(key):
        return _f(_pct(s.get(key)), ".0f", "% of the matmul bound")

    lines = [
        "# Benchmark results",
        "",
        "Written by `benchmarks/run.py`; the method is in `benchmarks/README.md`."
        + (" **SMOKE RUN: tiny data, the numbers mean nothing.**" if doc.get("smoke") else ""),
        "",
        f"- Machine: {m.get('cpu_model', '?')}, {m.get('cores_available', '?')} cores, "
        f"torch {m.get('torch', '?')} ({m.get('blas', '?')}, {m.get('cpu_capability', '?')}), "
        f"{m.get('torch_threads', '?')} torch threads (OMP_NUM_THREADS in the environment: "
        f"{m.get('env_OMP_NUM_THREADS')}), Python {m.get('python', '?')}, {m.get('platform', '?')}",
        f"- Date: {doc['generated']}",
        f"- Command: `{doc['command']}` (a phase refreshed by another command names its own "
        "below)",
        "",
        "## Headline figures",
        "",
        "| figure | value | anchor | goal | |",
        "|---|---|---|---|---|",
        f"| seconds of training to test -ELBO <= {target:g} nats, vi_helpers.train_model "
        f"({_settings_str(best)}) | {_f(s['ttq_vi_helpers_s'], '.1f', ' s')} | | | |",
        f"| same, idiomatic loop (DataLoader, batch 128, Adam 1e-3, sigmoid + BCE, .item()) | "
        f"{_f(s['ttq_idiomatic_s'], '.1f', ' s')} | | | |",
        f"| ratio vi_helpers / idiomatic (median over A,B repetitions) | "
        f"{_f(s['ttq_ratio'], '.2f')} | 1 | <= {GOALS['ttq_ratio']} | {_met(s['ttq_goal_met'])} |",
        f"| same, contention-robust: epochs to target x fastest epoch, vi_helpers / idiomatic | "
        f"{_f(s.get('ttq_vi_helpers_robust_s'), '.1f', ' s')} / "
        f"{_f(s.get('ttq_idiomatic_robust_s'), '.1f', ' s')} = "
        f"{_f(s.get('ttq_ratio_robust'), '.2f')} | | <= {GOALS['ttq_ratio']} | |",
        f"| s/epoch at batch 128, idiomatic loop: median (fastest) | "
        f"{_f(s['epoch_s_idiomatic_128'], '.2f', ' s')} "
        f"({_f(s.get('fastest_epoch_s_idiomatic_128'), '.2f', ' s')}) "
        f"| bound {_f(bound, '.2f', ' s')} | | {pct('matmul_fraction_idiomatic_128')} "
        f"({_f(_pct(s.get('matmul_fraction_idiomatic_fastest')), '.0f', '%')}) |",
        f"| s/epoch at batch 128, vi_helpers.train_model, float32 (from the ablation: the "
        f"tutorial's median x the timed ratio) | "
        f"{_f(s['epoch_s_vi_helpers_128'], '.2f', ' s')} "
        f"| bound {_f(bound, '.2f', ' s')} | | {pct('matmul_fraction_vi_helpers_128')} |",
        f"| s/epoch with the best settings ({_settings_str(best)}): median (fastest) | "
        f"{_f(s.get('epoch_s_vi_helpers_best'), '.2f', ' s')} "
        f"({_f(s.get('fastest_epoch_s_vi_helpers_best'), '.2f', ' s')}) "
        f"| float32 bound {_f(bound, '.2f', ' s')} | | "
        f"{pct('matmul_fraction_vi_helpers_best')} "
        f"({_f(_pct(s.get('matmul_fraction_vi_helpers_fastest')), '.0f', '%')}) |",
        f"| test -ELBO after 10 epochs, idiomatic loop | {_f(s['nelbo_10ep_idiomatic'], '.2f')} "
        f"nats | {ANCHORS['elbo_10_epochs']} (pytorch/examples reproduction, 1 hidden layer) "
        "| | |",
        f"| test -ELBO after 10 epochs, vi_helpers.train_model ({_settings_str(best)}) | "
        f"{_f(s['nelbo_10ep_vi_helpers_best'], '.2f')} nats | {ANCHORS['elbo_10_epochs']} | | |",
        f"| IWAE NLL, k={_f(s['iwae_k'], 'd')}, full test set; model trained "
        f"{_f(s['long_cpu_minutes'], '.1f')} CPU-min ({_f(s['long_epochs'], 'd')} epochs) | "
        f"{_f(s['iwae_nll'], '.2f')} nats | {ANCHORS['iwae_nll_burda']} (Burda et al. 2015, "
        f"3,280 epochs) | <= {GOALS['iwae_nll']:g} | {_met(s['iwae_goal_met'])} |",
        f"| IWAE evaluation time | {_f(s['iwae_seconds'], '.0f', ' s')} | | | |",
        f"| active units of the long-trained model (of {ARCH['latent_size']}) | "
        f"{_f(s['active_units'], 'd')} | | | |",
        f"| pPCA max log-lik. - linear VAE exact log-lik. (digits, worst L) | "
        f"{_f(s['ppca_gap_nats'], '.4f')} nats/image | 0 (Lucas et al. 2019) | | |",
        f"| widget update latency in the kernel, median / p90 | "
        f"{_f(s['widget_median_ms'], '.1f')} / {_f(s['widget_p90_ms'], '.1f')} ms | | | |",
    ]
    totals = s.get("course_total_s") or {}
    for key, value in totals.items():
        lines.append(f"| course run time, all notebooks, OMP_NUM_THREADS={key[7:]} | "
                     f"{_f(value, '.0f', ' s')} | | | |")
    lines += ["", "Test -ELBO: the single-sample ELBO with a fixed generator (seed 0) on the "
              "test set binarized once (seed 0). It is evaluated after every epoch with the "
              "training clock paused, so evaluation time is excluded from every training time "
              "above. Training batches are binarized afresh each time they are drawn.", ""]
    lines += _md_phases(doc)
    return "\n".join(lines) + "\n"


def _pct(x):
    return None if x is None else 100 * x


def _md_phases(doc: dict) -> list[str]:
    ph = doc["phases"]
    out = []

    def meta(name):
        mm = (ph.get(name) or {}).get("_meta") or {}
        return (f"_{name}: {mm.get('date', '?')}, {mm.get('seconds', '?')} s"
                f" (estimated {mm.get('estimated_seconds')}), {mm.get('threads', '?')} threads, "
                f"load {mm.get('loadavg_before')} -> {mm.get('loadavg_after')}, "
                f"`{mm.get('command', '?')}`_")

    out += ["## Model and comparison", "",
            "Both loops train the *same* model, `vi_helpers.VariationalAutoencoder(784, 400, 20, "
            "likelihood=\"bernoulli\")`, from the same initial weights: its encoder is "
            "784-400-400-(20, 20) and its decoder 20-400-400-784, i.e. **two hidden layers of "
            "400 units on each side** (pytorch/examples' \"784-400-20\" VAE has one). The loss "
            "is the same negative ELBO (Bernoulli log-likelihood + analytic KL); the loops "
            "differ only in how they train: the idiomatic loop sums the loss over the batch "
            "(Adam is invariant to that scale), squashes with sigmoid and uses "
            "`binary_cross_entropy`, a `DataLoader`, `.item()` every batch and "
            "`torch.bernoulli`; vi_helpers uses BCE on logits, batch-mean loss, tensor "
            "minibatches, one sync per epoch, the fused Adam kernel and `rand < x` "
            "binarization, and its best settings add a larger batch and bfloat16 autocast "
            "for the forward pass (the test -ELBO is always evaluated in float32).", ""]
    for name in PHASES:
        res = ph.get(name)
        if not res:
            continue
        if "error" in res:
            out += [f"## {name}", "", f"FAILED: `{res['error']}`", "", meta(name), ""]
            continue
        try:
            out += _md_phase(name, res, meta)
        except (KeyError, TypeError, ValueError) as err:  # e.g. a result from an older version
            out += [f"## {name}", "", f"(cannot render: {type(err).__name__}: {err}; rerun "
                    f"`--only {name}`)", ""]
    return out


def _md_phase(name: str, res: dict, meta) -> list[str]:
    out: list[str] = []
    if name == "peak":
        out += ["## sgemm peak", "", "| m x k @ k x n | GFLOP/s |", "|---|---|"]
        out += [f"| {r['m']}x{r['k']} @ {r['k']}x{r['n']} | {r['gflops']:.1f} |"
                for r in res["shapes"]]
        if res.get("bf16_shapes"):
            out += ["", "bfloat16, the best settings' batch (autocast runs the model's matmuls "
                    "in bfloat16):", "", "| m x k @ k x n | GFLOP/s |", "|---|---|"]
            out += [f"| {r['m']}x{r['k']} @ {r['k']}x{r['n']} | {r['gflops']:.1f} |"
                    for r in res["bf16_shapes"]]
        out += ["", f"Peak: {res['peak_gflops']:.1f} GFLOP/s. Epoch FLOPs count forward "
                "matmuls x 3 (forward + backward): "
                f"{epoch_flops(60000) / 1e9:.0f} GFLOP per epoch of 60,000 images.", "",
                meta(name), ""]
    elif name == "ttq":
        out += ["## Time to quality", "",
                f"Epochs interleaved A, B, A, B, ... in one process; each repetition starts "
                f"both loops from the same initial weights. Target {res['target_nats']:g} nats. "
                "Seconds are training time to the end of the first epoch at or below the "
                "target; \"fastest\" is the run's fastest epoch, and epochs x fastest epoch "
                "is the contention-robust estimate.", "",
                "| rep | A: vi_helpers s (epochs) | B: idiomatic s (epochs) | ratio A/B | "
                "A fastest epoch | B fastest epoch | robust ratio |",
                "|---|---|---|---|---|---|---|"]
        for i, (a, b) in enumerate(zip(res["runs"]["vi_helpers"], res["runs"]["idiomatic"],
                                       strict=True)):
            r = res["ratio_per_rep"][i]
            rr = (res.get("ratio_robust_per_rep") or [None] * (i + 1))[i]
            out.append(f"| {i + 1} | {_f(a['ttq_s'], '.1f')} ({a['ttq_epochs']}) | "
                       f"{_f(b['ttq_s'], '.1f')} ({b['ttq_epochs']}) | {_f(r, '.2f')} | "
                       f"{_f(a.get('fastest_epoch_s'), '.2f', ' s')} | "
                       f"{_f(b.get('fastest_epoch_s'), '.2f', ' s')} | {_f(rr, '.2f')} |")
        for i, (a, b) in enumerate(zip(res["runs"]["vi_helpers"], res["runs"]["idiomatic"],
                                       strict=True)):
            out += ["", f"Rep {i + 1}, test -ELBO @ training seconds:", ""]
            out.append("- A, vi_helpers: " + ", ".join(
                f"{p['test_nelbo']:.2f} @ {p['train_s']:.0f}" for p in a["points"]))
            out.append("- B, idiomatic: " + ", ".join(
                f"{p['test_nelbo']:.2f} @ {p['train_s']:.0f}" for p in b["points"]))
        out += ["", meta(name), ""]
    elif name == "ablation":
        out += ["## Ablation: which choices matter for time-to-105", "",
                "Loop choices, at the tutorial's batch 128 and Adam 1e-3 (cumulative). They do "
                "not change the arithmetic, so time-to-target = the tutorial loop's "
                "epochs-to-target x s/epoch, where s/epoch = the tutorial run's fastest epoch x "
                "(fastest epoch with the choice / fastest tutorial epoch, timed alternately):",
                "",
                "| choice | s/epoch | epochs to target | time to target |",
                "|---|---|---|---|"]
        for r in res["loop_rows"]:
            rel = r.get("relative_epoch_time")
            out.append(f"| {r['choice']} | {_f(r['epoch_s'], '.2f')}"
                       + (f" (x{rel:.2f})" if rel else "") + f" | "
                       f"{_f(r['epochs_to_target'], 'd')} | {_f(r['ttq_s'], '.1f', ' s')}"
                       + ("" if r["measured"] else " (est.)") + " |")
        out += ["", "Optimization choices with `vi_helpers.train_model`, one change at a "
                "time from the best settings, each run to the target from the same "
                "initial weights:", "",
                "| choice | s/epoch: median (fastest) | epochs to target | time to target: "
                "measured (epochs x fastest) | -ELBO per epoch |",
                "|---|---|---|---|---|"]
        for r in res["opt_rows"]:
            out.append(f"| {r['choice']} | {_f(r['epoch_s'], '.2f')} "
                       f"({_f(r.get('fastest_epoch_s'), '.2f')}) | "
                       f"{_f(r['epochs_to_target'], 'd')} | {_f(r['ttq_s'], '.1f', ' s')} "
                       f"({_f(r.get('ttq_robust_s'), '.1f', ' s')}) | "
                       + ", ".join(f"{v:.1f}" for v in r["curve"]) + " |")
        out += ["", meta(name), ""]
    elif name == "overhead":
        ex = res["extras_us"]
        out += ["## Trainer overhead (batch 128)", "",
                f"`train_model` {res['trainer_step_ms']:.2f} ms/step vs a lean loop "
                f"{res['lean_step_ms']:.2f} ms/step: {res['overhead_ms']:.2f} ms "
                f"({100 * res['overhead_fraction']:.0f}%). Per-batch extras timed alone "
                "(microseconds): " + ", ".join(f"{k} {v:.0f}" for k, v in ex.items()) + ".",
                "", meta(name), ""]
    elif name == "long":
        run = res["run"]
        out += ["## Long training (IWAE model)", "",
                f"`train_model`, batch {res['batch_size']}, Adam {res['learning_rate']:g} "
                f"annealed to 0 by a cosine schedule over the time budget"
                + (f", {res['mixed_precision']} autocast" if res.get("mixed_precision") else "")
                + "; trained "
                f"{run['epochs']} epochs in {res['wall_minutes']:.1f} min wall, "
                f"{res['cpu_minutes']:.1f} CPU-min (budget {res['budget_cpu_minutes']:g}). "
                f"Final test -ELBO {_f(res['test_nelbo'], '.2f')} nats. {res['note']}.", "",
                "Test -ELBO @ epoch: " + ", ".join(
                    f"{p['test_nelbo']:.2f} @ {p['epoch']}" for p in run["points"]), "",
                meta(name), ""]
    elif name == "iwae":
        out += ["## IWAE NLL and active units", "",
                f"k={res['k']} on {res['n_images']} test images: NLL {res['nll']:.2f} "
                f"± {res['nll_se']:.2f} (s.e. over images) nats, test -ELBO "
                f"{res['test_nelbo']:.2f}; {res['seconds']:.0f} s (estimated beforehand "
                f"{res['estimated_seconds']:.0f} s; {res['decoder_tflop']:.1f} TFLOP of "
                f"decoder matmuls, matmul bound {_f(res.get('matmul_bound_s'), '.0f')} s). "
                f"Active units: {res['active_units']} of {res['latent_size']} "
                f"(threshold {res['active_units_threshold']}).", "", meta(name), ""]
    elif name == "ppca":
        out += ["## Exactness: linear VAE vs pPCA", "",
                f"{res['data']}. Exact log-likelihoods (Gaussian marginals, float64), nats "
                "per image; gap = pPCA maximum - linear VAE (>= 0 up to rounding).", "",
                "| L | pPCA max log-lik. | linear VAE log-lik. | gap | linear VAE ELBO | "
                "ELBO gap | fit |", "|---|---|---|---|---|---|---|"]
        for r in res["rows"]:
            out.append(f"| {r['latent_size']} | {r['ppca_loglik']:.3f} | "
                       f"{r['linear_vae_loglik']:.3f} | {r['gap_loglik']:.4f} | "
                       f"{r['linear_vae_elbo']:.3f} | {r['gap_elbo']:.4f} | "
                       f"{r['fit_seconds']:.1f} s |")
        out += ["", meta(name), ""]
    elif name == "widgets":
        out += ["## Widgets", "",
                f"In-kernel update latency, measured in this run by {res['source']} (a fresh "
                "kernel, one thread; the time from setting a control to the new PNG in the "
                f"`Image` widget). Target: median <= {res.get('target_ms')} ms for the VAE "
                f"image widgets ({'met' if res.get('vae_widgets_met') else 'not met by all'}). "
                f"Browser round trip (key press to new image, headless Chromium): median "
                f"{_f(res.get('browser_median_ms'), '.0f')} ms, p90 "
                f"{_f(res.get('browser_p90_ms'), '.0f')} ms, from {res.get('browser_source')} "
                "(not rerun here).", "",
                "| case | median ms | p90 ms | CPU median ms |", "|---|---|---|---|"]
        for case, v in (res.get("cases") or {}).items():
            out.append(f"| {case} | {_f(v.get('median_ms'), '.2f')} | "
                       f"{_f(v.get('p90_ms'), '.2f')} | {_f(v.get('cpu_median_ms'), '.2f')} |")
        out += ["", meta(name), ""]
    elif name == "notebooks":
        keys = sorted({k for e in res["notebooks"].values() for k in e if k.startswith("threads")})
        out += ["## Course run time (full fidelity)", "",
                "| notebook | stated | " + " | ".join(f"OMP_NUM_THREADS={k[7:]}" for k in keys)
                + " |", "|---|---|" + "---|" * len(keys)]
        for nbname, e in res["notebooks"].items():
            cells = []
            for k in keys:
                v = e.get(k, {})
                cells.append(_f(v.get("seconds"), ".1f", " s") if v.get("ok") else "FAILED")
            out.append(f"| {nbname} | {_f(e.get('stated_s'), '.0f', ' s')} | "
                       + " | ".join(cells) + " |")
        out.append("| **total** | | " + " | ".join(
            _f(res["total_s"].get(k), ".0f", " s") for k in keys) + " |")
        out += ["", res["how"] + ".", "", meta(name), ""]
    return out


def plot_results(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ph = doc["phases"]
    ttq = ph.get("ttq")
    longr = ph.get("long")
    if not ttq or "runs" not in ttq:
        return
    ncols = 2 if longr and "run" in longr else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.5 * ncols, 4.2), squeeze=False)
    ax = axes[0, 0]
    colors = {"vi_helpers": "tab:blue", "idiomatic": "tab:orange"}
    labels = {"vi_helpers": "vi_helpers.train_model (best settings)",
              "idiomatic": "idiomatic loop (DataLoader, batch 128)"}
    for name, runs in ttq["runs"].items():
        for i, run in enumerate(runs):
            pts = run["points"]
            ax.plot([p["train_s"] for p in pts], [p["test_nelbo"] for p in pts], "o-",
                    color=colors[name], alpha=1.0 if i == 0 else 0.45, ms=3,
                    label=labels[name] if i == 0 else None)
    target = ttq.get("target_nats", TARGET_NATS)
    ax.axhline(target, color="k", ls="--", lw=1, label=f"{target:g} nats")
    vals = [p["test_nelbo"] for runs in ttq["runs"].values() for r in runs for p in r["points"]]
    if vals:
        ax.set_ylim(min(vals) - 2, min(max(vals), target + 40) + 2)
    ax.set_xlabel("training wall-clock seconds (evaluation excluded)")
    ax.set_ylabel("test -ELBO (nats)")
    ratio = ttq.get("ratio")
    ax.set_title("Time to quality" + (f": ratio {ratio:.2f}" if ratio else ""))
    ax.legend(fontsize=8)
    if ncols == 2:
        ax = axes[0, 1]
        pts = longr["run"]["points"]
        ax.plot([p["train_cpu_s"] / 60 for p in pts], [p["test_nelbo"] for p in pts], "o-", ms=3,
                color="tab:blue", label="test -ELBO")
        iw = ph.get("iwae") or {}
        if iw.get("nll") is not None:
            ax.axhline(iw["nll"], color="tab:green", ls="-", lw=1,
                       label=f"IWAE NLL k={iw['k']}: {iw['nll']:.2f}")
        ax.axhline(ANCHORS["iwae_nll_burda"], color="gray", ls=":", lw=1,
                   label=f"Burda et al. NLL {ANCHORS['iwae_nll_burda']}")
        ax.axhline(GOALS["iwae_nll"], color="k", ls="--", lw=1, label=f"goal {GOALS['iwae_nll']:g}")
        vals = [p["test_nelbo"] for p in pts]
        ax.set_ylim(ANCHORS["iwae_nll_burda"] - 2, min(max(vals), 120) + 2)
        ax.set_xlabel("training CPU-minutes")
        ax.set_ylabel("nats")
        ax.set_title("Long training")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
