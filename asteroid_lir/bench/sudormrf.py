"""LIR Sudo rm -rf against Asteroid's ``SuDORMRFImprovedNet`` with the same weights.

Both models are built with identical parameters (``LIRSuDORMRFNet.from_asteroid``), their
outputs are compared, then inference and one training step (forward, backward, Adam update) are
timed alternately in the same process.
"""

from __future__ import annotations

import argparse
from functools import partial

import torch
from asteroid.models import SuDORMRFImprovedNet

from ..models import LIRSuDORMRFNet
from .common import markdown_table, n_params, ratio_spread, spread, spread_text, time_alternating

NAME = "sudormrf"
DESCRIPTION = (
    "LIRSuDORMRFNet (1, S, 1) vs Asteroid SuDORMRFImprovedNet: inference and training step"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(NAME, DESCRIPTION)
    group.add_argument("--sudormrf-blocks", type=int, default=16, help="U-ConvBlocks (S)")
    group.add_argument("--sudormrf-seconds", type=float, default=4.0, help="input length (s)")
    group.add_argument("--sudormrf-batch", type=int, default=1, help="batch size")
    group.add_argument("--sudormrf-n-src", type=int, default=2, help="estimated sources")


def _train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, wav, target) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss = (model(wav) - target).pow(2).mean()
    loss.backward()
    optimizer.step()


def run(args: argparse.Namespace) -> dict:
    blocks = 2 if args.quick else args.sudormrf_blocks
    seconds = 0.5 if args.quick else args.sudormrf_seconds
    batch, n_src, device = args.sudormrf_batch, args.sudormrf_n_src, args.device
    torch.manual_seed(0)
    baseline = SuDORMRFImprovedNet(n_src=n_src, num_blocks=blocks, upsampling_depth=5).to(device)
    ours = LIRSuDORMRFNet.from_asteroid(baseline).to(device)
    wav = torch.randn(batch, int(seconds * 8000), device=device)

    models = {"asteroid": baseline, "lir": ours}
    baseline.eval()
    ours.eval()
    with torch.no_grad():
        ref, est = baseline(wav), ours(wav)
        rel_err = ((est - ref).norm() / ref.norm()).item()
        forwards = {k: partial(m, wav) for k, m in models.items()}
        infer = time_alternating(forwards, repeats=args.repeats, device=device)

    baseline.train()
    ours.train()
    target = torch.randn(batch, n_src, wav.shape[-1], device=device)
    steps = {
        k: partial(_train_step, m, torch.optim.Adam(m.parameters(), lr=1e-3), wav, target)
        for k, m in models.items()
    }
    train = time_alternating(steps, repeats=args.repeats, device=device)
    rows = [
        {
            "phase": phase,
            "config": f"1x{blocks}x1",
            "input": f"{batch}x{seconds:g}s",
            "asteroid_s": spread(runs["asteroid"]),
            "lir_s": spread(runs["lir"]),
            "ratio_lir_over_asteroid": ratio_spread(runs["lir"], runs["asteroid"]),
        }
        for phase, runs in (("inference", infer), ("training step", train))
    ]
    return {
        "rows": rows,
        "relative_l2_error": rel_err,
        "params": n_params(ours),
        "repeats": args.repeats,
    }


def to_markdown(result: dict) -> str:
    headers = ["phase", "config", "input", "Asteroid s (min/med/max)", "LIR s (min/med/max)"]
    table = []
    for r in result["rows"]:
        times = [spread_text(r["asteroid_s"]), spread_text(r["lir_s"])]
        ratio = spread_text(r["ratio_lir_over_asteroid"], "{:.2f}")
        table.append([r["phase"], r["config"], r["input"], *times, ratio])
    table = markdown_table([*headers, "LIR / Asteroid (min/med/max)"], table)
    return (
        f"{table}\n\nSame weights; relative L2 difference of the outputs: "
        f"{result['relative_l2_error']:.2e}; {result['params'] / 1e6:.2f} M parameters; "
        f"{result['repeats']} alternating runs after one warm-up."
    )
