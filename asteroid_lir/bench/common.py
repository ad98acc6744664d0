"""Measurement helpers shared by the benchmarks: machine description, alternating timing, the
spread of repeated measurements, the peak-memory meter, fresh processes, tables."""

from __future__ import annotations

import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

import torch

__all__ = [
    "PeakMemory",
    "in_fresh_process",
    "machine_info",
    "markdown_table",
    "n_params",
    "ratio_spread",
    "spread",
    "spread_text",
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
    return {
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "device": device,
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def sync(device: str) -> None:
    """Wait for queued GPU work so that wall-clock timings are complete."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_alternating(
    fns: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1, device: str = "cpu"
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


def spread_text(
    s: dict[str, float],
    fmt: str = "{:.3f}",
    keys: Sequence[str] = ("min", "median", "max"),
    sep: str = " / ",
) -> str:
    """A :func:`spread` as text, e.g. ``"0.412 / 0.430 / 0.455"`` (min / median / max).

    Args:
        s: a dict from :func:`spread` or :func:`ratio_spread`.
        fmt: format of each number.
        keys: which of ``min``, ``median``, ``max`` to show, in order.
        sep: text between the numbers.

    Returns:
        str: the formatted values.
    """
    return sep.join(fmt.format(s[k]) for k in keys)


# ------------------------------------------------------------------------------ memory
def _rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="utf-8") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _peak_rss_bytes() -> int:
    """Peak resident set size of this process (``VmHWM``; ``ru_maxrss`` where there is none)."""
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux: 5 written to ``/proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="utf-8") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """The benchmarks' peak-memory meter: ``with PeakMemory(device) as mem: work()``.

    It measures two quantities (bytes) around the block:

    - **resident** (the process): :attr:`rss_before` and :attr:`rss_peak`. With
      ``reset_rss=True`` the kernel's peak (``VmHWM``) is reset on entry where Linux allows it
      (:attr:`rss_reset`): ``rss_before`` is the resident size then, ``rss_peak`` the block's
      peak; otherwise they are the process' peak before and after the block (``VmHWM``, or
      ``ru_maxrss`` where there is none), which is what a fresh process per case measures.
    - **allocated** (PyTorch's allocator on ``device``): :attr:`allocated_before` and
      :attr:`allocated_peak`. CUDA: ``torch.cuda.memory_allocated`` on entry and
      ``torch.cuda.max_memory_allocated`` over the block. CPU, only with
      ``cpu_allocations=True``: the maximum running sum of the profiler's memory events (every
      allocation and free of the CPU allocator in the block, in order; ``allocated_before`` is
      0). The profiler slows the block down, so do not time it.

    Args:
        device: ``"cpu"`` or ``"cuda[:N]"`` (synchronised around the block).
        reset_rss: reset the process' peak resident size on entry (see above).
        cpu_allocations: follow the CPU allocator with the profiler (see above).
    """

    def __init__(self, device: str = "cpu", reset_rss: bool = False, cpu_allocations: bool = False):
        self.device = device
        self.reset_rss = reset_rss
        self.cpu_allocations = cpu_allocations
        self.rss_before = self.rss_peak = 0
        self.rss_reset = False
        self.allocated_before = self.allocated_peak = 0
        self._profiler = None

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def allocated_increase(self) -> int:
        """Peak bytes allocated during the block above what was allocated on entry."""
        return self.allocated_peak - self.allocated_before

    def __enter__(self) -> PeakMemory:
        sync(self.device)
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            self.allocated_before = torch.cuda.memory_allocated()
        elif self.cpu_allocations:
            from torch.profiler import ProfilerActivity, profile

            self._profiler = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
            self._profiler.__enter__()
        if self.reset_rss:
            self.rss_reset = _reset_peak_rss()
            self.rss_before = _rss_bytes()
        else:
            self.rss_before = _peak_rss_bytes()
        return self

    def __exit__(self, *exc) -> None:
        sync(self.device)
        self.rss_peak = _peak_rss_bytes()
        if self.cuda:
            self.allocated_peak = int(torch.cuda.max_memory_allocated())
        elif self._profiler is not None:
            self._profiler.__exit__(*exc)
            events = [
                e for e in self._profiler.profiler.kineto_results.events() if e.name() == "[memory]"
            ]
            events.sort(key=lambda e: e.start_ns())
            current = peak = 0
            for event in events:
                current += event.nbytes()
                peak = max(peak, current)
            self.allocated_peak = peak
            self._profiler = None


def in_fresh_process(fn: Callable[..., dict], kwargs: dict, threads: int | None = None) -> dict:
    """Run ``fn(**kwargs)`` in a fresh Python process (no allocator state, no inherited peak).

    Args:
        fn: a module-level function returning a JSON-serialisable dict.
        kwargs: its arguments (JSON-serialisable).
        threads: ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` of the child (None: inherited).

    Returns:
        dict: what ``fn`` returned in the child.

    Raises:
        subprocess.CalledProcessError: the child failed (with its ``stdout`` and ``stderr``).
    """
    env = dict(os.environ)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    call = json.dumps([fn.__module__, fn.__name__, kwargs])
    cmd = [sys.executable, "-m", "asteroid_lir.bench.common", call]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def n_params(module: torch.nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


def markdown_table(headers: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += [
        "| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |"
        for row in rows
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # the child of in_fresh_process
    _module, _name, _kwargs = json.loads(sys.argv[1])
    print(json.dumps(getattr(importlib.import_module(_module), _name)(**_kwargs)))
