"""Measurement helpers shared by the benchmarks: machine description, alternating timing, tables."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

import torch

__all__ = [
    "machine_info",
    "markdown_table",
    "ratio_spread",
    "spread",
    "sync",
    "time_alternating",
]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str = "cpu") -> dict:
    """Describe where a benchmark ran (recorded next to every result).

    Args:
        device: ``"cpu"`` or ``"cuda"``.

    Returns:
        dict: CPU model, logical CPUs, torch threads, torch/python versions, GPU name if any,
        the device used and the UTC date.
    """
    info = {
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "device": device,
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gpu": None,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def sync(device: str) -> None:
    """Wait for queued GPU work so that wall-clock timings are complete."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_alternating(
    fns: dict[str, Callable[[], object]],
    repeats: int = 5,
    warmup: int = 1,
    device: str = "cpu",
) -> dict[str, list[float]]:
    """Time several callables in turn (A B C A B C ...), so that drifts hit all of them alike.

    Args:
        fns: name -> callable taking no argument.
        repeats: counted rounds.
        warmup: rounds run first and not counted.
        device: synchronised around each call when it is a CUDA device.

    Returns:
        dict: name -> list of ``repeats`` durations in seconds.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}.")
    runs: dict[str, list[float]] = {name: [] for name in fns}
    for round_idx in range(warmup + repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            if round_idx >= warmup:
                runs[name].append(time.perf_counter() - start)
    return runs


def spread(values: Sequence[float]) -> dict[str, float]:
    """Minimum, median and maximum of a list of measurements."""
    if not values:
        raise ValueError("spread() needs at least one value.")
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def ratio_spread(a_runs: Sequence[float], b_runs: Sequence[float]) -> dict[str, float]:
    """Spread of the pair-by-pair ratios ``a[i] / b[i]`` (robust when the machine speed drifts)."""
    if len(a_runs) != len(b_runs):
        raise ValueError(f"Runs differ in count: {len(a_runs)} vs {len(b_runs)}.")
    return spread([a / b for a, b in zip(a_runs, b_runs)])


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown_table(headers: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
