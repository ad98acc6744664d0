"""LIR Sudo rm -rf against Asteroid's ``SuDORMRFImprovedNet`` with the same weights.

Both models are built with identical parameters (``LIRSuDORMRFNet.from_asteroid``), their
outputs are compared, then inference and one training step (forward, backward, Adam update) are
timed alternately in the same process.
"""

from __future__ import annotations

import argparse

import torch
from asteroid.models import SuDORMRFImprovedNet

from ..models import LIRSuDORMRFNet
from .common import markdown_table, ratio_spread, spread, spread_text, time_alternating

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

    baseline.eval()
    ours.eval()
    with torch.no_grad():
        ref, est = baseline(wav), ours(wav)
        rel_err = ((est - ref).norm() / ref.norm()).item()
        infer = time_alternating(
            {"asteroid": lambda: baseline(wav), "lir": lambda: ours(wav)},
            repeats=args.repeats,
            device=device,
        )

    baseline.train()
    ours.train()
    target = torch.randn(batch, n_src, wav.shape[-1], device=device)
    opt_b = torch.optim.Adam(baseline.parameters(), lr=1e-3)
    opt_o = torch.optim.Adam(ours.parameters(), lr=1e-3)
    train = time_alternating(
        {
            "asteroid": lambda: _train_step(baseline, opt_b, wav, target),
            "lir": lambda: _train_step(ours, opt_o, wav, target),
        },
        repeats=args.repeats,
        device=device,
    )
    rows = []
    for phase, runs in (("inference", infer), ("training step", train)):
        rows.append(
            {
                "phase": phase,
                "config": f"1x{blocks}x1",
                "input": f"{batch}x{seconds:g}s",
                "asteroid_s": spread(runs["asteroid"]),
                "lir_s": spread(runs["lir"]),
                "ratio_lir_over_asteroid": ratio_spread(runs["lir"], runs["asteroid"]),
            }
        )
    return {
        "rows": rows,
        "relative_l2_error": rel_err,
        "params": sum(p.numel() for p in ours.parameters()),
        "repeats": args.repeats,
    }


def to_markdown(result: dict) -> str:
    table = markdown_table(
        [
            "phase",
            "config",
            "input",
            "Asteroid s (min/med/max)",
            "LIR s (min/med/max)",
            "LIR / Asteroid (min/med/max)",
        ],
        [
            [
                r["phase"],
                r["config"],
                r["input"],
                spread_text(r["asteroid_s"]),
                spread_text(r["lir_s"]),
                spread_text(r["ratio_lir_over_asteroid"], "{:.2f}"),
            ]
            for r in result["rows"]
        ],
    )
    return (
        f"{table}\n\nSame weights; relative L2 difference of the outputs: "
        f"{result['relative_l2_error']:.2e}; {result['params'] / 1e6:.2f} M parameters; "
        f"{result['repeats']} alternating runs after one warm-up."
    )
