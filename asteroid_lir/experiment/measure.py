"""Counted compute: multiply-adds with ``torch.utils.flop_counter.FlopCounterMode``.

:func:`count_macs` is the one counter of the library (benchmarks, evaluation): it counts the
matrix products, convolutions and attention of whatever runs inside it, including PyTorch's CPU
kernel of ``scaled_dot_product_attention``, which ``FlopCounterMode`` does not count by itself.
One multiply-add is two FLOPs.

:func:`measured_refinement` separates a batch with a refinement model (any family) and counts
the multiply-adds of its refinement steps only (the blocks and the gate: TUSS's conditional TSE
module), per refined sample (TUSS: per prompt), as the gate actually spent them; optionally the
anytime curve, the network without its gate run for ``1 .. n_steps`` steps, with the
multiply-adds of each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

__all__ = ["MeasuredRun", "count_macs", "measured_refinement"]


def _sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


#: Operators ``FlopCounterMode`` leaves uncounted, with their FLOP formulas (shape-based).
_EXTRA_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_flops}


def count_macs(fn: Callable, *args, **kwargs) -> tuple[Any, int]:
    """Run ``fn(*args, **kwargs)`` and count its multiply-adds.

    Args:
        fn: what to run.
        *args, **kwargs: its arguments.

    Returns:
        tuple: ``fn``'s result and the multiply-adds (``FlopCounterMode``'s FLOPs / 2).
    """
    with FlopCounterMode(display=False, custom_mapping=_EXTRA_FORMULAS) as counter:
        result = fn(*args, **kwargs)
    return result, counter.get_total_flops() // 2


@dataclasses.dataclass
class MeasuredRun:
    """A separation with its counted refinement cost.

    Attributes:
        estimates: the model's output for the batch.
        steps: refinement steps of each refined sample, in the model's layout (``(batch,)``, or
            ``(batch, n_prompts)`` for TUSS), ``torch.long``.
        macs: counted multiply-adds of the refinement (blocks and gate evaluations) of each
            refined sample, same layout, ``torch.long``.
        anytime: for ``k = 1 .. n_steps``: ``(estimates, macs)`` of the network without its gate
            run for ``k`` steps (``macs`` per refined sample, as ``macs``); empty unless asked.
    """

    estimates: torch.Tensor
    steps: torch.Tensor
    macs: torch.Tensor
    anytime: list[tuple[torch.Tensor, torch.Tensor]] = dataclasses.field(default_factory=list)


def measured_refinement(model, inputs: tuple, anytime: bool = False) -> MeasuredRun:
    """Separate ``inputs`` and count the refinement's multiply-adds per refined sample.

    Each refined sample (one per input, one per (input, prompt) for TUSS) is refined on its own
    under the counter: every operation of a refinement step acts on each sample separately, so
    a sample's count is what it costs inside a batch too (a gated sample that exits costs no
    later step), and the counts add up to the batch's. The stem and the heads run once and are
    not counted: their cost does not depend on the steps.

    Args:
        model: a model built on a refinement core (``RefinementModelMixin``), eval mode.
        inputs (tuple): the model's inputs (``(wav,)``, or ``(wav, prompts)`` for TUSS).
        anytime (bool): also run the network without its gate for ``1 .. n_steps`` steps.

    Returns:
        MeasuredRun: estimates, steps and multiply-adds (gated: as the gate decided; ungated:
        all steps).
    """
    refiner = model.refiner
    # FlopCounterMode's module tracker switches grad mode on, which inference mode forbids: run
    # outside it, on ordinary copies of the inputs, without autograd.
    with torch.inference_mode(False), torch.no_grad():
        inputs = tuple(x.clone() if isinstance(x, torch.Tensor) else x for x in inputs)
        ctx, z = model.encode(*inputs)
        latents, steps, macs = [], [], []
        for i in range(z.shape[0]):
            if refiner.gated:
                (latent, taken), count = count_macs(refiner.run_gated, z[i : i + 1])
                head_idx = 0
            else:
                (block_idx, latent), count = count_macs(refiner.run, z[i : i + 1])
                head_idx, taken = refiner.head_index(block_idx), torch.tensor([refiner.n_steps])
            latents.append(latent)
            steps.append(taken.reshape(1).long())
            macs.append(count)
        estimates = model.decode(ctx, torch.cat(latents), head_idx)
        per_sample = torch.tensor(macs, dtype=torch.long)
        run = MeasuredRun(
            estimates,
            model.sample_steps(ctx, torch.cat(steps)),
            model.sample_steps(ctx, per_sample),
        )
        if anytime:
            path, spent = refiner.iter_steps(z), 0
            for _ in range(refiner.n_steps):
                (block_idx, z_k), count = count_macs(next, path)
                spent += count  # the batch's first k steps
                est = model.decode(ctx, z_k, refiner.head_index(block_idx))
                per = torch.full((z.shape[0],), spent // z.shape[0], dtype=torch.long)
                run.anytime.append((est, model.sample_steps(ctx, per)))
    return run
