"""Adaptive early exit: does the cost of a gated model follow the steps it actually takes?

One process, timings interleaved (A B C A B C ...): a batch run with every sample forced to exit
after 1, 2, ..., ``n_iters`` steps, one U-ConvBlock pass alone on the same batch, and a mixed
batch where half of the samples exit after one step. Multiply-adds are counted with
``torch.utils.flop_counter.FlopCounterMode`` (:func:`asteroid_lir.experiment.measure.count_macs`;
gate, one U-ConvBlock pass through Asteroid's reference ``UConvBlock.forward``, and the fixed
encoder/bottleneck/mask/decoder part).
"""

from __future__ import annotations

import argparse

import torch
from asteroid.masknn.convolutional import UConvBlock

from ..experiment import measure
from ..models.gated_lir_sudormrf import GatedLIRSuDORMRFNet
from .common import markdown_table, n_params, ratio_spread, spread, spread_text, time_alternating

NAME = "early-exit"
DESCRIPTION = "gated LIR Sudo rm -rf: time per batch vs steps taken, mixed batch, gate overhead"

# Pass criteria of the issue ("Must show").
MIN_STEP_FRACTION = 0.8  # each extra step costs at least this share of one U-ConvBlock pass
MAX_GATE_OVERHEAD = 0.003  # gate multiply-adds / one U-ConvBlock pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(NAME)
    arg = group.add_argument
    arg("--early-exit-batch", type=int, default=4, help="batch size (default 4)")
    arg("--early-exit-seconds", type=float, default=4.0, help="input length in s (default 4)")
    arg("--early-exit-iters", type=int, default=4, help="maximum steps (default 4)")


def _sizes(args: argparse.Namespace) -> dict:
    if args.quick:
        model = dict(n_filters=32, bn_chan=16, upsampling_depth=3, gate_kernel_size=400)
        return dict(model=model, batch=2, seconds=0.5, n_iters=4)
    return dict(
        # The paper's Sudo rm -rf sizes (enhancement: speech + noise outputs).
        model=dict(n_filters=512, bn_chan=128, upsampling_depth=5, gate_kernel_size=3200),
        batch=getattr(args, "early_exit_batch", 4),
        seconds=getattr(args, "early_exit_seconds", 4.0),
        n_iters=getattr(args, "early_exit_iters", 4),
    )


def macs_by_part(model: GatedLIRSuDORMRFNet, wav: torch.Tensor) -> dict:
    """Multiply-adds of the parts of a gated model for the batch ``wav``.

    Args:
        model: the gated model (eval mode).
        wav: input ``(batch, time)``.

    Returns:
        dict: ``fixed`` (encoder, bottleneck, mask network, decoder), ``uconv_pass`` (one
        application of the block), ``gate`` (one gate evaluation), all for the whole batch.
    """
    masker = model.masker
    with torch.no_grad():
        z = masker.embed(model.forward_encoder(wav))

        def fixed():
            tf_rep = model.forward_encoder(wav)
            masks = masker.masks(masker.embed(tf_rep), 0)
            model.decoder(model.apply_masks(tf_rep, masks))

        def uconv_pass():
            # Asteroid's reference forward: plain convolutions, all of them counted.
            for sub_block in masker.blocks[0]:
                UConvBlock.forward(sub_block, z)

        parts = {"fixed": fixed, "uconv_pass": uconv_pass, "gate": lambda: masker.gate(z)}
        return {name: measure.count_macs(fn)[1] for name, fn in parts.items()}


def run(args: argparse.Namespace) -> dict:
    sizes = _sizes(args)
    device = args.device
    torch.manual_seed(0)
    model = GatedLIRSuDORMRFNet(n_src=2, n_sub_blocks=1, n_iters=sizes["n_iters"], **sizes["model"])
    model = model.eval().to(device)
    n_iters, batch = sizes["n_iters"], sizes["batch"]
    if batch < 2:
        raise ValueError(f"The mixed-batch measurement needs a batch of at least 2, got {batch}.")
    wav = torch.randn(batch, int(sizes["seconds"] * model.sample_rate), device=device)
    with torch.no_grad():
        z0 = model.masker.embed(model.forward_encoder(wav))
    mixed_steps = torch.full((batch,), n_iters, dtype=torch.long, device=device)
    mixed_steps[: batch // 2] = 1

    fns = {
        f"exit after {k}": (lambda k=k: model.forward_with_steps(wav, force_steps=k))
        for k in range(1, n_iters + 1)
    }
    fns["U-ConvBlock pass"] = lambda: model.masker.refine(z0, 0)
    fns["mixed"] = lambda: model.forward_with_steps(wav, force_steps=mixed_steps)
    with torch.inference_mode():
        runs = time_alternating(fns, repeats=args.repeats, warmup=1, device=device)
        steps_mixed = model.forward_with_steps(wav, force_steps=mixed_steps)[1]
    macs = macs_by_part(model.cpu(), wav.cpu())

    def predicted(steps_per_sample: list[int]) -> float:
        # Gate evaluations: before every step after min_steps, plus the one that said exit.
        per_sample_fixed = macs["fixed"] / batch
        total = 0.0
        for s in steps_per_sample:
            n_gates = max(0, min(s + 1, n_iters) - model.masker.min_steps)
            total += per_sample_fixed + (s * macs["uconv_pass"] + n_gates * macs["gate"]) / batch
        return total

    uconv_runs = runs["U-ConvBlock pass"]
    base = runs["exit after 1"]

    def extra_step(k: int) -> float:
        # Round by round (the runs of one round are adjacent in time, so a drifting machine
        # hits them alike): (t_k - t_{k-1}) / t_uconv, then the median over the rounds.
        prev_runs, runs_k = runs[f"exit after {k - 1}"], runs[f"exit after {k}"]
        fractions = [(b - a) / u for a, b, u in zip(prev_runs, runs_k, uconv_runs)]
        return spread(fractions)["median"]

    def row(name: str, steps: str, gmacs: float, extra: float | None) -> dict:
        return {
            "run": name,
            "steps": steps,
            "median_s": spread(runs[name])["median"],
            "spread_s": spread(runs[name]),
            "vs_1_step": ratio_spread(runs[name], base)["median"],
            "gmacs": gmacs,
            "extra_step_in_uconv_passes": extra,
        }

    extras = {k: extra_step(k) for k in range(2, n_iters + 1)}
    rows = [
        row(f"exit after {k}", str(k), predicted([k] * batch) / 1e9, extras.get(k))
        for k in range(1, n_iters + 1)
    ]
    all_max = runs[f"exit after {n_iters}"]
    mixed_steps_text = "/".join(str(int(s)) for s in steps_mixed.tolist())
    rows.append(row("mixed", mixed_steps_text, predicted(mixed_steps.tolist()) / 1e9, None))
    rows.append(row("U-ConvBlock pass", "-", macs["uconv_pass"] / 1e9, 1.0))
    mixed_vs_all = ratio_spread(runs["mixed"], all_max)
    checks = {
        "each_extra_step_ge_0.8_uconv": all(e >= MIN_STEP_FRACTION for e in extras.values()),
        "mixed_cheaper_than_all_max": mixed_vs_all["max"] < 1.0,
        "gate_mac_overhead_lt_0.3pct": macs["gate"] / macs["uconv_pass"] < MAX_GATE_OVERHEAD,
    }
    return {
        "rows": rows,
        "sizes": {**sizes, "n_src": 2, "samples": wav.shape[-1]},
        "max_steps_vs_1_step": ratio_spread(all_max, base),
        "max_steps_vs_1_step_predicted": predicted([n_iters] * batch) / predicted([1] * batch),
        "mixed_vs_all_max": mixed_vs_all,
        "mixed_vs_all_max_predicted": predicted(mixed_steps.tolist())
        / predicted([n_iters] * batch),
        "macs": macs,
        "gate": {
            "params": n_params(model.masker.gate),
            "uconv_block_params": n_params(model.masker.blocks[0]),
            "macs_vs_uconv_pass": macs["gate"] / macs["uconv_pass"],
        },
        "quick": bool(args.quick),
        "checks": checks,
    }


def to_markdown(result: dict) -> str:
    headers = ["run", "steps", "median s", "min-max s", "vs 1 step", "G MACs"]
    headers += ["extra step / U-Conv"]
    table = []
    for r in result["rows"]:
        min_max = spread_text(r["spread_s"], "{:.4g}", keys=("min", "max"), sep="-")
        extra = r["extra_step_in_uconv_passes"]
        cells = [r["run"], r["steps"], r["median_s"], min_max, r["vs_1_step"], r["gmacs"]]
        table.append([*cells, "" if extra is None else extra])
    gate, top, mixed = result["gate"], result["max_steps_vs_1_step"], result["mixed_vs_all_max"]
    lines = [
        f"Sizes: {result['sizes']}",
        "",
        markdown_table(headers, table),
        "",
        f"- max/1 step: measured {top['median']:.3g}x (min {top['min']:.3g}, max "
        f"{top['max']:.3g}), predicted from MACs {result['max_steps_vs_1_step_predicted']:.3g}x",
        f"- mixed/all max: measured {mixed['median']:.3g}x (max {mixed['max']:.3g}), "
        f"predicted {result['mixed_vs_all_max_predicted']:.3g}x",
        f"- gate: {gate['params']} parameters (U-ConvBlock {gate['uconv_block_params']}), "
        f"{100 * gate['macs_vs_uconv_pass']:.3f} % of one U-ConvBlock pass in MACs",
        "- checks: " + ", ".join(f"{k}={v}" for k, v in result["checks"].items()),
    ]
    return "\n".join(lines)
