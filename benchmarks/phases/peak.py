"""``peak``: matmul throughput on the model's matrix shapes and a large square.

The float32 peak is the bound that s/epoch is reported against (``config.epoch_flops``
over it); bfloat16 on the best settings' batch is context for their autocast.
"""

from __future__ import annotations

import torch
from torch.utils import benchmark

from ..config import ARCH, BEST, TUTORIAL, epoch_flops
from ..harness import log


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
               dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> float:
    """Best GFLOP/s of ``torch.mm`` (m x k @ k x n) on ``device``.

    ``torch.utils.benchmark.Timer.blocked_autorange`` picks the number of calls per
    block and runs blocks for ``repeats x min_time`` seconds (it synchronizes CUDA
    around each block); the fastest block is the estimate, since contention on a
    shared machine only ever adds time. The timer runs with this process's number
    of torch threads (its own default is one).
    """
    a = torch.randn(m, k, dtype=dtype, device=device)
    b = torch.randn(k, n, dtype=dtype, device=device)
    out = torch.empty(m, n, dtype=dtype, device=device)
    torch.mm(a, b, out=out)  # warm-up: the first call initializes the BLAS
    timer = benchmark.Timer(stmt="torch.mm(a, b, out=out)",
                            globals={"torch": torch, "a": a, "b": b, "out": out},
                            num_threads=torch.get_num_threads())
    measurement = timer.blocked_autorange(min_run_time=repeats * min_time)
    return 2.0 * m * k * n / min(measurement.times) / 1e9


def _timed_shapes(shapes, *, dtype, repeats, min_time, device, tag) -> list[dict]:
    rows = []
    for m, k, n in shapes:
        g = measure_mm(m, k, n, repeats=repeats, min_time=min_time, dtype=dtype, device=device)
        rows.append({"m": m, "k": k, "n": n, "gflops": round(g, 2)})
        log(f"  {tag} {m:5d}x{k:5d} @ {k:5d}x{n:5d}: {g:7.1f} GFLOP/s")
    return rows


def run(ctx) -> dict:
    repeats, min_time = (2, 0.01) if ctx.smoke else (7, 0.1)
    timing = {"repeats": repeats, "min_time": min_time, "device": ctx.device}
    rows = _timed_shapes(sgemm_shapes(sorted({TUTORIAL["batch_size"], BEST["batch_size"]})),
                         dtype=torch.float32, tag="sgemm", **timing)
    # the same shapes in bfloat16, for the best settings' autocast (context, not the bound)
    bf16 = _timed_shapes(sgemm_shapes([BEST["batch_size"]])[:-1], dtype=torch.bfloat16,
                         tag="bf16", **timing)
    return {"shapes": rows, "peak_gflops": max(r["gflops"] for r in rows), "repeats": repeats,
            "bf16_shapes": bf16, "bf16_peak_gflops": max(r["gflops"] for r in bf16),
            "note": ("best block of torch.utils.benchmark.Timer.blocked_autorange of torch.mm "
                     "(float32) per shape; peak = max over shapes. The bound uses the float32 "
                     "peak; bf16 rows are context")}


def _table(rows: list[dict]) -> list[str]:
    return ["| m x k @ k x n | GFLOP/s |", "|---|---|"] + [
        f"| {r['m']}x{r['k']} @ {r['k']}x{r['n']} | {r['gflops']:.1f} |" for r in rows]


def to_markdown(result: dict) -> list[str]:
    out = ["## sgemm peak", ""] + _table(result["shapes"])
    if result.get("bf16_shapes"):
        out += ["", "bfloat16, the best settings' batch (autocast runs the model's matmuls "
                "in bfloat16):", ""] + _table(result["bf16_shapes"])
    out += ["", f"Peak: {result['peak_gflops']:.1f} GFLOP/s. Epoch FLOPs count forward "
            "matmuls x 3 (forward + backward): "
            f"{epoch_flops(60000) / 1e9:.0f} GFLOP per epoch of 60,000 images.", ""]
    return out
