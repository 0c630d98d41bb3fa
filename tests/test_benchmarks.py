"""The benchmark suite: its arithmetic, its reference loop, and a smoke run end to end.

The smoke run (``python -m benchmarks --smoke``) trains on 512 MNIST images for a few
steps and writes results.{json,md,png} into ``tmp_path`` (never over the committed
results). It reads ``../shared/data/mnist`` when that folder holds the four MNIST
files (as in CI) and otherwise tiny IDX files written here.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import config, driver, idiomatic, report
from benchmarks.phases import notebooks, peak

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"
MNIST_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


# ------------------------------------------------------------------ tiny IDX files
def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX: magic 0x0000 0x08 ndim, big-endian uint32 sizes, then the uint8 data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0))


def write_tiny_mnist(folder: Path, n_train: int = 600, n_test: int = 300) -> Path:
    """Digit-like 28x28 images: a bright bar whose position depends on the label."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for stem_images, stem_labels, n in (
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", n_train),
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", n_test),
    ):
        labels = rng.integers(0, 10, size=n)
        images = rng.integers(0, 40, size=(n, 28, 28))
        for i, label in enumerate(labels):
            images[i, 4 + 2 * label : 7 + 2 * label, 4:24] = 250
        write_idx(folder / f"{stem_images}.gz", images)
        write_idx(folder / f"{stem_labels}.gz", labels)
    return folder


def _has_mnist(folder: Path) -> bool:
    return all((folder / f"{s}.gz").is_file() or (folder / s).is_file() for s in MNIST_STEMS)


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory) -> Path:
    if _has_mnist(SHARED_MNIST):
        return SHARED_MNIST
    return write_tiny_mnist(tmp_path_factory.mktemp("tiny_mnist"))


def test_tiny_idx_files_read_back(tmp_path):
    from vi_helpers.data import read_idx

    folder = write_tiny_mnist(tmp_path, n_train=7, n_test=3)
    images = read_idx(folder / "train-images-idx3-ubyte.gz")
    labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (7, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (3,) and int(labels.max()) <= 9
    assert int(images.max()) == 250


# ----------------------------------------------------------------------- arithmetic
def test_forward_macs_counts_every_linear_layer():
    from vi_helpers import VariationalAutoencoder

    model = VariationalAutoencoder(784, 400, 20, likelihood="bernoulli")
    # independent count: in_features * out_features of every nn.Linear in the model
    macs = sum(m.in_features * m.out_features for m in model.modules()
               if isinstance(m, torch.nn.Linear))
    assert config.forward_macs() == macs == 971_200
    dec = sum(m.in_features * m.out_features for m in model.decoder.modules()
              if isinstance(m, torch.nn.Linear))
    assert config.decoder_macs() == dec
    assert config.epoch_flops(60_000) == pytest.approx(3 * 2 * macs * 60_000)


def test_measure_mm_is_positive_and_finite():
    gflops = peak.measure_mm(64, 64, 64, repeats=2, min_time=0.001)
    assert math.isfinite(gflops) and gflops > 0


def test_measure_mm_agrees_with_a_hand_timed_loop():
    """The Timer's estimate is within a factor of 3 of a plain perf_counter loop (a
    wrong FLOP count or per-call time would be off by orders of magnitude)."""
    import time

    a, b = torch.randn(128, 256), torch.randn(256, 128)
    torch.mm(a, b)
    best = math.inf
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(50):
            torch.mm(a, b)
        best = min(best, (time.perf_counter() - t) / 50)
    by_hand = 2.0 * 128 * 256 * 128 / best / 1e9
    by_timer = peak.measure_mm(128, 256, 128, repeats=5, min_time=0.01)
    assert by_hand / 3 < by_timer < by_hand * 3


@pytest.mark.parametrize("batch", [1, 5])
def test_tutorial_loss_is_the_models_negative_elbo_summed(batch):
    """pytorch/examples' loss (sigmoid + BCE sum + KL sum) is the batch *sum* of the
    vi_helpers model's per-example negative ELBO; the logits version is the same."""
    from vi_helpers import VariationalAutoencoder

    torch.manual_seed(0)
    model = VariationalAutoencoder(12, 8, 3, likelihood="bernoulli")
    x = torch.bernoulli(torch.full((batch, 12), 0.4))
    logits, mu, log_var = model(x)
    reference = model.loss_function(x, logits, mu, log_var) * batch  # batch mean -> sum
    tutorial = idiomatic.loss_function(torch.sigmoid(logits), x, mu, log_var)
    from_logits = idiomatic.loss_function_logits(logits, x, mu, log_var)
    torch.testing.assert_close(tutorial, reference, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(from_logits, reference, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    ("kw", "loader"),
    [({}, "dataloader"), ({"logits": True, "sync": False}, "dataloader"),
     ({"logits": True, "sync": False, "device": "cpu"}, "tensor")],
)
def test_train_epoch_lowers_the_loss(kw, loader):
    """The tutorial loop trains, over a DataLoader's (x,) tuples or Minibatches' tensors."""
    from benchmarks.harness import make_batches
    from vi_helpers import VariationalAutoencoder

    torch.manual_seed(0)
    model = VariationalAutoencoder(16, 16, 2, likelihood="bernoulli")
    x = torch.rand(64, 16) * 0.2
    x[:32, :8] = 0.9
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loader = make_batches(x, loader, 16, seed=0)
    losses = [idiomatic.train_epoch(model, loader, optimizer, **kw) for _ in range(5)]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]


def test_unknown_phase_is_refused():
    with pytest.raises(SystemExit):
        driver.parse_args(["--only", "nope"])


def test_defaults_are_the_issues_values():
    args = driver.parse_args([])
    assert args.iwae_k == 5000 and args.train_minutes == 30.0
    assert "notebooks" in args.phases
    smoke = driver.parse_args(["--smoke"])
    assert smoke.iwae_k == 10 and "notebooks" not in smoke.phases


# ------------------------------------------------------------------------ smoke run
@pytest.fixture(scope="module")
def smoke(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("bench")
    committed = BENCH / "results.json"
    before = committed.stat().st_mtime_ns if committed.is_file() else None
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--threads", "1",
         "--data-dir", str(mnist_dir), "--out-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    after = committed.stat().st_mtime_ns if committed.is_file() else None
    assert before == after, "the smoke run touched the committed benchmarks/results.json"
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((out / "results.json").read_text())
    return out, doc, proc.stdout


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_smoke_writes_all_outputs(smoke):
    out, doc, stdout = smoke
    assert "plan (" in stdout  # the plan with estimated times is printed first
    md = (out / "results.md").read_text()
    assert "SMOKE RUN" in md and "Headline figures" in md and "Machine:" in md
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert doc["schema"] == 1 and doc["smoke"] is True
    for key in ("cpu_model", "cores", "torch", "torch_threads"):
        assert key in doc["machine"]
    assert doc["machine"]["torch_threads"] == 1
    expected = {"env", "peak", "ttq", "ablation", "overhead", "long", "iwae", "ppca", "widgets"}
    assert expected <= set(doc["phases"])
    assert "notebooks" not in doc["phases"]
    for name in expected:
        assert "error" not in doc["phases"][name], doc["phases"][name]
        assert doc["phases"][name]["_meta"]["seconds"] >= 0


def test_smoke_time_to_quality_is_sane(smoke):
    _, doc, _ = smoke
    ttq = doc["phases"]["ttq"]
    for name in ("vi_helpers", "idiomatic"):
        for run in ttq["runs"][name]:
            values = [p["test_nelbo"] for p in run["points"]]
            times = [p["train_s"] for p in run["points"]]
            assert all(_finite(v) and v > 0 for v in values)
            assert times == sorted(times) and times[0] > 0
            assert values[-1] < values[0]  # the ELBO improves
            assert _finite(run["ttq_s"]) and run["ttq_s"] > 0
    assert _finite(ttq["ratio"]) and ttq["ratio"] > 0
    s = doc["summary"]
    assert _finite(s["sgemm_peak_gflops"]) and s["sgemm_peak_gflops"] > 0
    assert _finite(s["epoch_s_idiomatic_128"]) and s["epoch_s_idiomatic_128"] > 0
    assert 0 < s["matmul_fraction_idiomatic_128"] < 10
    assert _finite(s["nelbo_10ep_idiomatic"]) and _finite(s["nelbo_10ep_vi_helpers_best"])
    # the A runs really used the best settings (precision included), the B runs the tutorial's
    best = ttq["best_settings"]
    for run in ttq["runs"]["vi_helpers"]:
        assert run["batch_size"] == best["batch_size"]
        assert run["mixed_precision"] == best["mixed_precision"] == "bfloat16"
    assert {run["batch_size"] for run in ttq["runs"]["idiomatic"]} == {128}
    abl = doc["phases"]["ablation"]
    loop_rows, opt_rows = abl["loop_rows"], abl["opt_rows"]
    assert len(loop_rows) == 8 and len(opt_rows) >= 5
    assert all(_finite(r["epoch_s"]) and r["epoch_s"] > 0 for r in loop_rows + opt_rows)
    # loop-only choices keep the tutorial loop's epochs to the target
    assert {r["epochs_to_target"] for r in loop_rows} == {loop_rows[0]["epochs_to_target"]}


def test_smoke_quality_figures_are_sane(smoke):
    _, doc, _ = smoke
    ph = doc["phases"]
    iw = ph["iwae"]
    assert iw["k"] == 10 and iw["n_images"] > 0
    assert _finite(iw["nll"]) and iw["nll"] > 0
    # the IWAE bound is tighter than the ELBO: its NLL is lower (up to Monte Carlo noise)
    assert iw["nll"] <= iw["test_nelbo"] + 1.0
    assert isinstance(iw["active_units"], int) and 0 <= iw["active_units"] <= 20
    assert _finite(iw["estimated_seconds"]) and iw["estimated_seconds"] > 0
    longr = ph["long"]
    assert longr["run"]["epochs"] >= 1 and _finite(longr["test_nelbo"])
    for row in ph["ppca"]["rows"]:
        # the linear VAE can only approach pPCA's maximum likelihood from below
        assert row["gap_loglik"] >= -1e-6 and row["gap_elbo"] >= row["gap_loglik"] - 1e-6
        assert _finite(row["linear_vae_loglik"])
    over = ph["overhead"]
    assert over["trainer_step_ms"] > 0 and over["lean_step_ms"] > 0
    wd = ph["widgets"]  # measured in the run, in a real kernel
    assert 0 < wd["median_ms"] <= wd["p90_ms"] < 10_000
    assert "LatentExplorer slider" in wd["cases"] and len(wd["cases"]) >= 5


def test_only_reruns_one_phase_and_keeps_the_rest(smoke, mnist_dir):
    out, doc, _ = smoke
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--threads", "1", "--only", "widgets",
         "--data-dir", str(mnist_dir), "--out-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    again = json.loads((out / "results.json").read_text())
    assert again["phases"]["ttq"] == doc["phases"]["ttq"]
    assert again["phases"]["widgets"]["_meta"]["date"] >= doc["phases"]["widgets"]["_meta"]["date"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("**Run time:** about 25 s on 2 CPU cores", 25.0),
     ("**Run time:** about 7.5 s", 7.5),
     ("no run time stated", None)],
)
def test_stated_run_time_is_read_from_the_notebook(tmp_path, text, expected):
    path = tmp_path / "01_x.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": [text]}]}))
    assert notebooks.stated_run_time(path) == expected


def test_committed_results_render_from_their_json():
    """results.md is the rendering of results.json: the committed pair must agree, so the
    package renders a full run's document (every phase's section) the way it was written."""
    doc = json.loads((BENCH / "results.json").read_text())
    assert report.render_markdown(doc) == (BENCH / "results.md").read_text()


def test_every_phase_renders_a_section():
    doc = json.loads((BENCH / "results.json").read_text())
    md = report.render_markdown(doc)
    for heading in ("## sgemm peak", "## Time to quality", "## Ablation", "## Trainer overhead",
                    "## Long training", "## IWAE NLL", "## Exactness", "## Widgets",
                    "## Course run time"):
        assert md.count(heading) == 1, heading
    assert "cannot render" not in md
