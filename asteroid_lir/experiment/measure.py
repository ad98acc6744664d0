"""What a results table does not hold: compute, training memory and the anytime curve.

- :func:`flops_per_second`: FLOPs of separating one second of audio, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (for a refinement model, per number of steps).
- :func:`sudormrf_train_memory`: memory of one training step of a Sudo rm -rf configuration at
  its batch and chunk sizes, with the benchmark's meter (:mod:`asteroid_lir.bench.progressive`).
- :func:`anytime_scores`: per mixture, the score after every refinement step (the ungated
  network decoded after each step, a gated one forced to each step count) and a gated model's
  gate logits: the data of the oracle gate (:func:`asteroid_lir.experiment.stats.oracle_steps`)
  and of the anytime curve.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .evaluation import score_sources

__all__ = ["anytime_scores", "flops_per_second", "sudormrf_train_memory"]


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
        float: the total of ``FlopCounterMode`` (two per multiply-accumulate).
    """
    from torch.utils.flop_counter import FlopCounterMode

    wav = torch.randn(1, int(sample_rate), generator=torch.Generator().manual_seed(0))
    if n_steps is not None:
        forward_kwargs["n_steps"] = int(n_steps)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(wav, **forward_kwargs)
    finally:
        model.train(was_training)
    return float(counter.get_total_flops())


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
    sizes = {
        "model": {k: model_conf[k] for k in ("n_filters", "bn_chan", "upsampling_depth")},
        "batch": int(batch_size),
        "seconds": float(seconds),
        "n_src": n_src,
    }
    n = int(seconds * sample_rate)
    gen = torch.Generator().manual_seed(0)
    targets = torch.randn(int(batch_size), n_src, n, generator=gen)
    structure = (
        int(model_conf["n_blocks"]),
        int(model_conf["n_sub_blocks"]),
        int(model_conf["n_iters"]),
        "progressive" if progressive else "end_to_end",
    )
    runners = build_step_runners(structure, sizes, (targets.sum(1), targets), "cpu")
    peaks = [build().measure_peak("cpu")["peak_bytes"] for build in runners]
    return {
        "peak_bytes": int(max(peaks)),
        "per_step_peak_bytes": [int(p) for p in peaks],
        "batch": int(batch_size),
        "seconds": float(seconds),
    }


def _gate_logits(model: nn.Module, wav: torch.Tensor) -> dict[str, float]:
    # The gate's "process - exit" logit difference before every gated step (no exit taken).
    refiner = model.refiner
    _, z = model.encode(wav)
    out = {}
    for step, block_idx in enumerate(refiner.step_schedule()):
        if step >= refiner.min_steps:
            logits = refiner.gate(z)[0]
            out[str(step)] = float(logits[1] - logits[0])
        z = refiner.refine(z, block_idx)
    return out


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
    from .evaluation import input_snr

    gated = bool(getattr(getattr(model, "refiner", None), "gated", False))
    model = model.to(device).eval()
    rows = []
    with torch.inference_mode():
        for item in items:
            data = item["load"]() if "load" in item else item
            wav = torch.as_tensor(np.asarray(data["mixture"]), dtype=torch.float32)[None]
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
