"""The machine a benchmark ran on: CPU model, cores, load, torch build and threads."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def loadavg() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (``None`` where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        return None


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (the platform's processor elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover
        pass
    return platform.processor() or platform.machine()


def available_cores() -> int:
    """Cores this process may run on (its affinity mask), not all the machine's cores."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def accelerator(device: str | torch.device | None) -> dict:
    """Name, capability and memory of a CUDA ``device``; ``{}`` for the CPU."""
    device = torch.device(device or "cpu")
    if device.type != "cuda":
        return {}
    props = torch.cuda.get_device_properties(device)
    return {
        "device": str(device),
        "device_name": props.name,
        "device_capability": f"{props.major}.{props.minor}",
        "device_memory_gib": round(props.total_memory / 2**30, 1),
        "cuda": torch.version.cuda,
    }


def describe(device: str | torch.device | None = None) -> dict:
    """The ``env`` phase's record: machine, torch build, threads and environment."""
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "cores_available": available_cores(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "env_OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "env_MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS"),
        "blas": "mkl" if torch.backends.mkl.is_available() else "other",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **accelerator(device),
    }
