"""Paper Table 2 as measured here: peak training memory and time per training step of
end-to-end (1, 16, 1) training against progressive training of (2, 8, 1), (2, 4, 2), (2, 2, 4),
(4, 4, 1), (4, 2, 2) and (4, 1, 4): the same 16 U-ConvBlock applications, the same batch.

Every progressive step k is measured on its own copy of the model, in the state that
``ProgressiveSystem`` trains it in (``enter_step(k)``: frozen prefix, optimizer over step k's
parameters, its own training loss path); a progressive row reports the maximum peak over its
steps and the mean over its steps of the time of one training step (the steps get the same
number of epochs). End-to-end rows use ``LIRSystem`` with the same loss, batch and Adam.

What ``peak_bytes`` counts, in one training step (forward, backward, ``optimizer.step()``)
after a warm-up step:

- CUDA: ``torch.cuda.max_memory_allocated``, with one model on the GPU: parameters, optimizer
  state, batch, activations, gradients, temporaries and the math libraries' workspaces (cuBLAS
  allocates them through PyTorch: a constant of tens of MiB that shrinks every ratio's distance
  to 1; ``per_step[].breakdown.allocated_before_step`` is what was allocated before the step).
- CPU: the tensors the step must hold (parameters, optimizer state, batch, activations saved
  for backward, gradients), followed by
  :class:`~asteroid_lir.bench.training_memory.TrainingMemoryMeter`; the profiler's allocator peak
  (:class:`~asteroid_lir.bench.common.PeakMemory`) would also count every operation's scratch
  space, which Table 2 does not compare (and the committed figures would become incomparable).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from ..engine.progressive import ProgressiveSystem
from ..engine.system import LIRSystem
from ..losses import SpeechPITLoss
from ..models.lir_sudormrf import LIRSuDORMRFNet
from .common import PeakMemory, markdown_table, ratio_spread, spread, time_alternating
from .training_memory import TrainingMemoryMeter

NAME = "progressive"
DESCRIPTION = "paper Table 2: peak training memory and time per step, progressive vs end to end"

#: Rows of paper Table 2: (blocks, sub-blocks, iterations, mode).
TABLE2_CONFIGS = [
    (1, 16, 1, "end_to_end"),
    (2, 8, 1, "progressive"),
    (2, 4, 2, "progressive"),
    (2, 2, 4, "progressive"),
    (4, 4, 1, "progressive"),
    (4, 2, 2, "progressive"),
    (4, 1, 4, "progressive"),
]
#: Pass criteria of the issue: progressive peak / end-to-end peak, by number of blocks.
MAX_PEAK_RATIO = {2: 0.55, 4: 0.35}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(NAME)
    arg = group.add_argument
    arg("--progressive-batch", type=int, default=1, help="batch size (default 1)")
    arg("--progressive-seconds", type=float, default=4.0, help="input length in s (default 4)")
    n_src = "model outputs: 3 = noisy separation (2 speakers + noise, default), 2 = enhancement"
    arg("--progressive-n-src", type=int, default=3, help=n_src)


# ---------------------------------------------------------------------------- training steps
class _StepRunner:
    """One model in one training state (end to end, or progressive step k), on one batch."""

    def __init__(self, system: LIRSystem, batch: tuple[torch.Tensor, torch.Tensor]):
        self.system, self.batch = system, batch
        self.optimizer = system.configure_optimizers()
        if isinstance(self.optimizer, (list, tuple)):
            self.optimizer = self.optimizer[0][0]

    def train_step(self, mark: Callable[[str], None] = lambda phase: None) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.system.common_step(self.batch, 0, train=True)
        mark("forward")
        loss.backward()
        mark("backward")
        self.optimizer.step()
        mark("step")

    def measure_peak(self, device: str) -> dict:
        self.train_step()  # warm-up: optimizer state allocated, as in steady training
        self.optimizer.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            with PeakMemory(device) as mem:
                self.train_step()
            return {
                "peak_bytes": mem.allocated_peak,
                # Parameters, Adam state, the batch and the math libraries' workspaces (cuBLAS
                # allocates its workspace through PyTorch's allocator): the part of the peak
                # that no activation accounts for.
                "breakdown": {"allocated_before_step": mem.allocated_before},
            }
        with TrainingMemoryMeter(self.system.model, self.optimizer, self.batch) as meter:
            self.train_step(meter.mark)
        self.optimizer.zero_grad(set_to_none=True)
        return {"peak_bytes": int(meter.peak_bytes), "breakdown": meter.breakdown}


def _sizes(args: argparse.Namespace) -> dict:
    n_src = getattr(args, "progressive_n_src", 3)
    if args.quick:
        model = dict(n_filters=32, bn_chan=16, upsampling_depth=3)
        return dict(model=model, batch=1, seconds=0.5, n_src=n_src)
    # The paper's Sudo rm -rf sizes (encoder 512 bases, kernel 21, stride 10, bottleneck 128,
    # depth 5), 4-s inputs at 8 kHz.
    return dict(
        model=dict(n_filters=512, bn_chan=128, upsampling_depth=5),
        batch=getattr(args, "progressive_batch", 1),
        seconds=getattr(args, "progressive_seconds", 4.0),
        n_src=n_src,
    )


def build_step_runners(
    config: tuple[int, int, int, str], sizes: dict, batch, device: str
) -> list[Callable[[], _StepRunner]]:
    """Builders of the training-step runners of one Table 2 row, one per progressive step.

    Args:
        config: ``(n_blocks, n_sub_blocks, n_iters, "progressive" | "end_to_end")``.
        sizes: ``{"model": LIRSuDORMRFNet size arguments, "n_src": outputs, ...}``.
        batch: ``(mixture, targets)`` of one training step.
        device: where to run.

    Returns:
        list: callables building a runner whose ``measure_peak(device)`` and calls time and
        measure one training step (used by the bench and by
        :func:`asteroid_lir.experiment.measure.sudormrf_train_memory`).
    """
    n_blocks, n_sub, n_iters, mode = config
    loss = SpeechPITLoss(n_speech=sizes["n_src"] - 1)

    def model() -> LIRSuDORMRFNet:
        torch.manual_seed(0)
        return LIRSuDORMRFNet(
            n_src=sizes["n_src"],
            n_blocks=n_blocks,
            n_sub_blocks=n_sub,
            n_iters=n_iters,
            head_per_block=mode == "progressive",
            **sizes["model"],
        ).to(device)

    def adam(params):
        return torch.optim.Adam(params, lr=1e-3)

    if mode == "end_to_end":

        def e2e() -> _StepRunner:
            net = model()
            return _StepRunner(LIRSystem(net, adam(net.parameters()), loss, None), batch)

        return [e2e]

    def prog(step: int) -> _StepRunner:
        system = ProgressiveSystem(model(), adam, loss, None, epochs_per_step=1)
        system.train()
        system.enter_step(step)
        return _StepRunner(system, batch)

    return [lambda k=k: prog(k) for k in range(1, n_blocks + 1)]


def run(args: argparse.Namespace) -> dict:
    sizes = _sizes(args)
    device = args.device
    gen = torch.Generator().manual_seed(0)
    n_samples = int(sizes["seconds"] * 8000)
    targets = torch.randn(sizes["batch"], sizes["n_src"], n_samples, generator=gen)
    batch = (targets.sum(1).to(device), targets.to(device))
    names = [f"{b}x{s}x{i}" for b, s, i, _ in TABLE2_CONFIGS]
    builders = {
        n: build_step_runners(c, sizes, batch, device) for n, c in zip(names, TABLE2_CONFIGS)
    }

    # Memory: one model at a time, so that nothing else is allocated while it is measured.
    memory: dict[str, list[dict]] = {name: [] for name in builders}
    with tqdm(total=sum(map(len, builders.values())), desc="memory", unit="step") as bar:
        for name, step_builders in builders.items():
            for build in step_builders:
                memory[name].append(build().measure_peak(device))  # the runner is freed here
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
                bar.update()

    # Time: every (row, step) model alive at once, timed in turn (A B C A B C ...).
    runners = {
        (name, k): build()
        for name, step_builders in builders.items()
        for k, build in enumerate(step_builders, start=1)
    }
    repeats, warmup = args.repeats, 1
    with tqdm(total=(repeats + warmup) * len(runners), desc="time", unit="step") as bar:
        fns = {key: (lambda r=r: (r.train_step(), bar.update())) for key, r in runners.items()}
        runs = time_alternating(fns, repeats=repeats, warmup=warmup, device=device)
    del runners

    # Mean over the steps (equal epochs each) of each round's time: one list of `repeats`.
    per_round = {}
    for name, steps in memory.items():
        step_runs = [runs[(name, k)] for k in range(1, len(steps) + 1)]
        per_round[name] = [sum(r) / len(r) for r in zip(*step_runs)]
    reference = names[0]
    reference_peak = max(s["peak_bytes"] for s in memory[reference])
    rows, checks = [], {}
    for name, (n_blocks, n_sub, n_iters, mode) in zip(names, TABLE2_CONFIGS):
        peak = max(s["peak_bytes"] for s in memory[name])
        rows.append(
            {
                "config": name,
                "mode": mode,
                "blocks": n_blocks,
                "sub_blocks": n_sub,
                "iterations": n_iters,
                "peak_bytes": peak,
                "step_seconds": spread(per_round[name])["median"],
                "step_seconds_spread": spread(per_round[name]),
                "per_step": [
                    {
                        "step": k,
                        "peak_bytes": s["peak_bytes"],
                        "breakdown": s["breakdown"],
                        "median_seconds": spread(runs[(name, k)])["median"],
                    }
                    for k, s in enumerate(memory[name], start=1)
                ],
                "peak_vs_end_to_end": peak / reference_peak,
                "time_vs_end_to_end": ratio_spread(per_round[name], per_round[reference])["median"],
            }
        )
        limit = MAX_PEAK_RATIO.get(n_blocks) if mode == "progressive" else None
        if limit is not None:
            checks[f"{name}_peak_ratio<={limit}"] = peak / reference_peak <= limit
    return {
        "rows": rows,
        "sizes": {**sizes, "samples": n_samples},
        "memory_counted": (
            "torch.cuda.max_memory_allocated"
            if device.startswith("cuda")
            else "params + Adam state + batch + saved activations + grads (TrainingMemoryMeter)"
        ),
        "repeats": repeats,
        "checks": checks,
        "quick": bool(args.quick),
    }


def to_markdown(result: dict) -> str:
    headers = ["config (N x S x I)", "training", "peak MiB", "peak vs e2e", "peak MiB per step"]
    headers += ["s / training step", "time vs e2e"]
    table = [
        [
            row["config"],
            row["mode"].replace("_", "-"),
            f"{row['peak_bytes'] / 2**20:.1f}",
            f"{row['peak_vs_end_to_end']:.3f}",
            " / ".join(f"{s['peak_bytes'] / 2**20:.0f}" for s in row["per_step"]),
            f"{row['step_seconds']:.3f}",
            f"{row['time_vs_end_to_end']:.2f}",
        ]
        for row in result["rows"]
    ]
    sizes = result["sizes"]
    lines = [
        f"model {sizes['model']}, {sizes['n_src']} outputs, batch {sizes['batch']} x "
        f"{sizes['seconds']:g} s at 8 kHz; memory counted: {result['memory_counted']}; "
        f"time: median over {result['repeats']} alternating rounds of the mean over the steps.",
        "",
        markdown_table(headers, table),
        "",
        "checks: " + ", ".join(f"{k}={v}" for k, v in result["checks"].items()),
    ]
    return "\n".join(lines)
