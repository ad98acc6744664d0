"""Counted compute, training memory and the anytime curve: what a results table does not hold.

- :func:`count_macs` is the one counter of the library (benchmarks, evaluation, reports): it
  counts the multiply-adds (``torch.utils.flop_counter.FlopCounterMode``'s FLOPs / 2) of the
  matrix products, convolutions and attention of whatever runs inside it, including PyTorch's CPU
  kernel of ``scaled_dot_product_attention``, which ``FlopCounterMode`` does not count by itself;
  :func:`flops_per_second` applies it to one second of audio.
- :func:`measured_refinement` separates a batch with a refinement model (any family) and counts
  the multiply-adds of its refinement steps only (the blocks and the gate: TUSS's conditional TSE
  module), per refined sample (TUSS: per prompt), as the gate actually spent them; optionally the
  anytime curve, the network without its gate run for ``1 .. n_steps`` steps.
- :func:`sudormrf_train_memory`: memory of one training step of a Sudo rm -rf configuration at
  its batch and chunk sizes, with the benchmark's meter (:mod:`asteroid_lir.bench.progressive`).
- :func:`anytime_scores`: per mixture, the score after every refinement step (the ungated
  network decoded after each step, a gated one forced to each step count) and a gated model's
  gate logits: the data of the oracle gate (:func:`asteroid_lir.experiment.stats.oracle_steps`)
  and of the anytime curve. :func:`gate_logit_rows`: the gate logits alone (of a validation
  set: what calibrates an exit margin, :func:`asteroid_lir.masknn.gating.exit_margin_for_budget`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from .evaluation import input_snr, item_mixture, score_sources

__all__ = [
    "MeasuredRun",
    "anytime_scores",
    "count_macs",
    "flops_per_second",
    "gate_logit_rows",
    "measured_refinement",
    "sudormrf_train_memory",
]


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
        per_sample = model.sample_steps(ctx, torch.tensor(macs, dtype=torch.long))
        run = MeasuredRun(estimates, model.sample_steps(ctx, torch.cat(steps)), per_sample)
        if anytime:
            path, spent = refiner.iter_steps(z), 0
            for _ in range(refiner.n_steps):
                (block_idx, z_k), count = count_macs(next, path)
                spent += count  # the batch's first k steps
                est = model.decode(ctx, z_k, refiner.head_index(block_idx))
                per = torch.full((z.shape[0],), spent // z.shape[0], dtype=torch.long)
                run.anytime.append((est, model.sample_steps(ctx, per)))
    return run


def flops_per_second(
    model: nn.Module, sample_rate: int, n_steps: int | None = None, **forward_kwargs
) -> float:
    """FLOPs of separating one second of audio (batch 1, no gradient).

    Args:
        model: a separation model.
        sample_rate: its sample rate.
        n_steps: refinement steps to run (``None``: the model's default path).
        **forward_kwargs: further arguments of the forward pass (e.g. ``prompts``).

    Returns:
        float: FLOPs, two per multiply-add (:func:`count_macs`).
    """
    wav = torch.randn(1, int(sample_rate), generator=torch.Generator().manual_seed(0))
    if n_steps is not None:
        forward_kwargs["n_steps"] = int(n_steps)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            _, macs = count_macs(model, wav, **forward_kwargs)
    finally:
        model.train(was_training)
    return 2.0 * macs


def sudormrf_train_memory(
    model_conf: dict, batch_size: int, seconds: float, sample_rate: int, progressive: bool
) -> dict:
    """Memory of one training step (forward, backward, Adam step) of a Sudo rm -rf model.

    Counted on the CPU by the benchmark's meter: parameters, Adam state, batch, activations saved
    for backward and gradients; for progressive training the maximum over the block steps
    (frozen prefix under ``no_grad``).

    Args:
        model_conf: ``n_blocks``, ``n_sub_blocks``, ``n_iters``, ``n_filters``, ``bn_chan``,
            ``upsampling_depth``, ``n_src``.
        batch_size: training batch.
        seconds: training chunk length.
        sample_rate: Hz.
        progressive: one runner per block step (else one end-to-end step).

    Returns:
        dict: ``peak_bytes``, ``per_step_peak_bytes``, ``batch``, ``seconds``.
    """
    from ..bench.progressive import build_step_runners

    n_src = int(model_conf["n_src"])
    sizes = {"model": {k: model_conf[k] for k in ("n_filters", "bn_chan", "upsampling_depth")}}
    sizes["n_src"] = n_src
    gen = torch.Generator().manual_seed(0)
    targets = torch.randn(int(batch_size), n_src, int(seconds * sample_rate), generator=gen)
    structure = [int(model_conf[k]) for k in ("n_blocks", "n_sub_blocks", "n_iters")]
    mode = "progressive" if progressive else "end_to_end"
    runners = build_step_runners((*structure, mode), sizes, (targets.sum(1), targets), "cpu")
    peaks = [build().measure_peak("cpu")["peak_bytes"] for build in runners]
    return {
        "peak_bytes": int(max(peaks)),
        "per_step_peak_bytes": [int(p) for p in peaks],
        "batch": int(batch_size),
        "seconds": float(seconds),
    }


def _gate_logits(model: nn.Module, wav: torch.Tensor) -> dict[str, float]:
    # The gate's "process - exit" logit difference before every gated step (no exit taken),
    # keyed by the steps taken before the decision.
    logits = model.gate_margin_logits(wav)[0]
    return {str(model.refiner.min_steps + k): float(v) for k, v in enumerate(logits)}


def gate_logit_rows(
    model: nn.Module, items: Sequence[dict], device: torch.device | str = "cpu"
) -> list[dict]:
    """A gated model's ``process - exit`` logits before each decision, every step taken.

    Args:
        model: a gated refinement model.
        items: evaluation items, as for :func:`anytime_scores`.
        device: where to run.

    Returns:
        list of dict: per mixture ``id`` and ``gate_logit`` (keyed by the steps taken before
        the decision, as in :func:`anytime_scores`).
    """
    model = model.to(device).eval()
    with torch.inference_mode():
        return [
            {
                "id": str(item["id"]),
                "gate_logit": _gate_logits(model, item_mixture(item)[1].to(device)),
            }
            for item in items
        ]


def anytime_scores(
    model: nn.Module,
    items: Sequence[dict],
    sample_rate: int,
    metric: str = "si_sdr",
    device: torch.device | str = "cpu",
) -> list[dict]:
    """Score of every mixture after each refinement step ``1..n_steps``.

    Args:
        model: a refinement model (``n_steps``, ``forward_steps``; gated models are forced to
            each step count, which is exact since the gate is deterministic in eval mode).
        items: evaluation items (:func:`asteroid_lir.experiment.evaluation.evaluate_items`'
            format: ``mixture``, ``references``, optional ``noise``, ``candidates``; or a
            ``load`` callable giving them).
        sample_rate: Hz.
        metric: ``si_sdr`` or ``snr``: the improvement, averaged over the references.
        device: where to run.

    Returns:
        list of dict: per mixture ``id``, ``scores`` (one improvement per step count) and, with a
        noise reference, ``input_snr``; for a gated model also ``gate_logit`` and ``steps`` (what
        its gate chose).
    """
    gated = bool(getattr(getattr(model, "refiner", None), "gated", False))
    model = model.to(device).eval()
    rows = []
    with torch.inference_mode():
        for item in items:
            data, wav = item_mixture(item)
            wav = wav.to(device)
            if gated:
                ests = [model(wav, n_steps=k) for k in range(1, model.n_steps + 1)]
            else:
                ests = model.forward_steps(wav)
            per_step = []
            for est in ests:
                scores, _ = score_sources(
                    data["mixture"], data["references"], est[0].float().cpu().numpy(),
                    sample_rate, (metric,), candidates=data.get("candidates"),
                )  # fmt: skip
                per_step.append(float(np.mean(scores[f"{metric}i"])))
            row = {"id": str(item["id"]), "scores": per_step}
            if data.get("noise") is not None:
                row["input_snr"] = input_snr(np.sum(data["references"], 0), data["noise"])
            if gated:
                row["gate_logit"] = _gate_logits(model, wav)
                row["steps"] = int(model.forward_with_steps(wav)[1][0])
            rows.append(row)
    return rows
