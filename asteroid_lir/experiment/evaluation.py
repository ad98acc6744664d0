"""Evaluation of a separation model on test mixtures, for every task of the recipes.

Metrics come from Asteroid: ``si_sdr``, ``sdr``, ``stoi`` and ``pesq`` from
``asteroid.metrics.get_metrics`` (pb_bss_eval, as Asteroid's own recipes), and the plain ``snr``
(music is scored with it, as in the TUSS paper) from Asteroid's SDR module
(``asteroid.losses.sdr``). Every metric is given for the estimate, for the mixture taken as the
estimate (``input_<metric>``) and as the improvement (``<metric>i``).

Outputs are matched to references before scoring (:func:`asteroid_lir.chunking.assign_in_groups`,
by the first metric): a prompt model's outputs only among outputs of the same prompt; a model
with fixed outputs each reference to a distinct output among the first ``candidates`` (the speech
outputs of a WHAM! model, whose noise output is never matched to a speaker; all outputs of the
unconditional baseline, an oracle choice in its favour).

Tables (means per source and per prompt, by input-SNR quartile, the timing) are built from its
rows by :mod:`asteroid_lir.experiment.summaries`.

Refinement models can be measured as well (``evaluate_items(..., measure=True)``,
:func:`asteroid_lir.experiment.measure.measured_refinement`): the steps each output took (a
gated TUSS decides per prompt), the multiply-adds its refinement steps actually spent (TUSS:
the conditional TSE module and its gate), and the anytime curve: the scores and multiply-adds
of the network without its gate run for ``1 .. n_steps`` steps
(:func:`~asteroid_lir.experiment.summaries.anytime_summary`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn

from ..chunking import assign_in_groups, source_groups
from ..inference import run_model

__all__ = [
    "EvaluationError",
    "evaluate_items",
    "input_snr",
    "item_mixture",
    "pairwise_scores",
    "score_sources",
    "speech_items",
]


class EvaluationError(RuntimeError):
    """A test item could not be separated or scored (the message names it)."""


_LOSS_TYPES = {"si_sdr": ("sisdr", True), "snr": ("snr", False)}  # (sdr_type, zero_mean)


def pairwise_scores(est: np.ndarray, refs: np.ndarray, metric: str = "si_sdr") -> np.ndarray:
    """Score (dB) of every (output, reference) pair, ``(n_out, n_ref)``.

    Args:
        est: ``(n_out, time)`` outputs.
        refs: ``(n_ref, time)`` references.
        metric: ``"si_sdr"`` (zero-mean signals) or ``"snr"``.
    """
    from asteroid.losses.sdr import SingleSrcNegSDR

    if metric not in _LOSS_TYPES:
        raise ValueError(
            f"Unknown metric {metric!r} for matching; choose from {list(_LOSS_TYPES)}."
        )
    est, refs = np.asarray(est, dtype=np.float64), np.asarray(refs, dtype=np.float64)
    if est.ndim != 2 or refs.ndim != 2 or est.shape[-1] != refs.shape[-1]:
        raise ValueError(
            f"Expected (n, time) estimates and references of one length, got {est.shape} and "
            f"{refs.shape}."
        )
    sdr_type, zero_mean = _LOSS_TYPES[metric]
    # Every pair as one batch of single-source losses (the pairwise loss needs n_out == n_ref).
    n_out, n_ref = len(est), len(refs)
    pairs_est = torch.from_numpy(est).repeat_interleave(n_ref, 0)
    pairs_ref = torch.from_numpy(refs).repeat(n_out, 1)
    loss = SingleSrcNegSDR(sdr_type, zero_mean=zero_mean, reduction="none")
    return -loss(pairs_est, pairs_ref).reshape(n_out, n_ref).numpy()


def _metric(name: str, mix: np.ndarray, refs: np.ndarray, est: np.ndarray, rate: int) -> tuple:
    # (estimate's values, mixture's values), one per reference.
    if name == "snr":
        out = np.diag(pairwise_scores(est, refs, "snr"))
        inp = pairwise_scores(np.repeat(mix[None], len(refs), 0), refs, "snr").diagonal()
        return out, inp
    from asteroid.metrics import get_metrics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # mir_eval's deprecation notice
        values = get_metrics(
            mix, refs, est, sample_rate=rate, metrics_list=[name], average=False,
            compute_permutation=False,
        )  # fmt: skip
    return np.ravel(values[name]), np.ravel(values[f"input_{name}"])


def score_sources(
    mix: np.ndarray,
    refs: np.ndarray,
    est: np.ndarray,
    sample_rate: int,
    metrics: Sequence[str] = ("si_sdr",),
    prompts: Sequence[str] | None = None,
    candidates: int | None = None,
) -> tuple[dict, np.ndarray]:
    """Metrics of one mixture, outputs matched to references first.

    Args:
        mix: ``(time,)`` mixture.
        refs: ``(n_ref, time)`` references (in prompt order for a prompt model).
        est: ``(n_out, time)`` outputs.
        sample_rate: sample rate in Hz.
        metrics: metric names; the first one (``si_sdr`` or ``snr``) matches the outputs.
        prompts: the prompt of each output/reference (prompt models), or ``None``.
        candidates: fixed-output models: only the first ``candidates`` outputs may be matched.

    Returns:
        tuple: ``{metric: [per ref], "input_<metric>": [...], "<metric>i": [...],
        "output": [matched output per ref], "output_db": [level relative to the mixture]}`` and
        the matched estimates ``(n_ref, time)``.

    Raises:
        ValueError: outputs of the wrong shape (fewer candidates than references, another
            length).
    """
    mix = np.asarray(mix, dtype=np.float64)
    refs, est = np.asarray(refs, dtype=np.float64), np.asarray(est, dtype=np.float64)
    pool = est if candidates is None else est[:candidates]
    if est.ndim != 2 or est.shape[-1] != refs.shape[-1] or len(pool) < len(refs):
        raise ValueError(
            f"The model gave outputs of shape {tuple(est.shape)}; expected at least {len(refs)} "
            f"sources of {refs.shape[-1]} samples."
        )
    groups = None if prompts is None else source_groups(list(prompts), len(refs))
    matched = assign_in_groups(pairwise_scores(pool, refs, metrics[0] if metrics[0] in _LOSS_TYPES
                                              else "si_sdr"), groups)  # fmt: skip
    chosen = pool[matched]
    scores: dict = {"output": [int(m) for m in matched]}
    energy = (mix**2).sum() + 1e-12
    scores["output_db"] = [float(10 * np.log10(((e**2).sum() + 1e-12) / energy)) for e in chosen]
    for name in metrics:
        out, inp = _metric(name, mix, refs, chosen, sample_rate)
        scores[name], scores[f"input_{name}"] = out.tolist(), inp.tolist()
        scores[f"{name}i"] = (out - inp).tolist()
    return scores, chosen


def input_snr(speech: np.ndarray, noise: np.ndarray) -> float:
    """Speech-to-noise ratio of a mixture in dB (``inf`` without noise)."""
    p_noise, p_speech = float(np.sum(noise**2)), float(np.sum(speech**2))
    if p_noise == 0.0:
        return float("inf")
    return float(10 * np.log10(max(p_speech, 1e-12) / p_noise))


def write_example(folder: Path, mix, refs, est, sample_rate: int, names: Sequence[str]) -> None:
    """Mixture, references and estimates (scaled to the mixture's peak) as float WAVs."""
    folder.mkdir(parents=True, exist_ok=True)
    peak = float(np.abs(mix).max()) or 1.0
    sf.write(folder / "mixture.wav", np.asarray(mix), sample_rate, subtype="FLOAT")
    for name, ref, out in zip(names, refs, est):
        sf.write(folder / f"{name}_reference.wav", np.asarray(ref), sample_rate, subtype="FLOAT")
        scaled = np.asarray(out) * (peak / max(float(np.abs(out).max()), 1e-8))
        sf.write(folder / f"{name}_estimate.wav", scaled, sample_rate, subtype="FLOAT")


def speech_items(test_json: str | Path, task: str, sample_rate: int) -> list[dict]:
    """Evaluation items of the whole mixtures of a WHAM!-layout test set
    (:class:`asteroid_lir.data.WhamDataset`, targets the speakers then the noise): the speech
    references, the noise (for the input SNR) and the speech outputs as the only candidates.
    Each item is read when it is scored (``load``).

    Args:
        test_json: the test set's metadata (``tt.json``).
        task: ``sep_noisy`` or ``enh_single``.
        sample_rate: sample rate in Hz.
    """
    from ..data import WhamDataset

    dataset = WhamDataset(str(test_json), task=task, segment=None, sample_rate=sample_rate,
                          return_noise=True, return_id=True)  # fmt: skip
    n_speech = dataset.n_speech

    def load(i: int) -> dict:
        mix, targets = dataset[i][:2]
        return {"mixture": mix.numpy(), "references": targets[:n_speech].numpy(),
                "noise": targets[n_speech].numpy(), "candidates": n_speech}  # fmt: skip

    return [{"id": e["id"], "load": lambda i=i: load(i)} for i, e in enumerate(dataset.entries)]


def item_mixture(item: dict) -> tuple[dict, torch.Tensor]:
    """An evaluation item's data (loaded when the item is lazy, see :func:`speech_items`) and
    its mixture as a ``(1, time)`` float32 tensor."""
    data = {"id": item["id"], **item["load"]()} if "load" in item else item
    return data, torch.from_numpy(np.asarray(data["mixture"], dtype=np.float32))[None]


def evaluate_items(
    model: nn.Module,
    items: Iterable[dict],
    sample_rate: int,
    metrics: Sequence[str] = ("si_sdr",),
    device: torch.device | str | None = None,
    examples_dir: Path | None = None,
    n_examples: int = 0,
    progress: str | None = "evaluation",
    measure: bool = False,
) -> tuple[list[dict], dict]:
    """Separate and score test mixtures.

    Args:
        model: a separation model (prompt models get each item's prompts; gated models report
            their steps).
        items: dicts with ``id``, ``mixture`` ``(time,)``, ``references`` ``(n, time)``, and
            optionally ``prompts``, ``noise`` (for the input SNR), ``candidates`` (see
            :func:`score_sources`) and ``names`` (of the references: default the prompts, or
            ``s1``, ``s2``, ... in the examples); or ``id`` and ``load``, a function giving the
            others (read inside the error handling, so that a file that cannot be read is
            reported with its item).
        sample_rate: sample rate in Hz.
        metrics: metric names (module docstring).
        device: where the model runs (default: CPU).
        examples_dir: where example WAVs go (``<examples_dir>/<id>/``).
        n_examples: how many of the first items get example WAVs.
        progress: the progress bar's label (``None``: no bar).
        measure (bool): refinement models: count the refinement's multiply-adds and compute
            the anytime curve (a second, counted pass; the timing is the first pass's).

    Returns:
        tuple: one row per item (``id``, ``prompts``, the scores, ``input_snr``, ``example``;
        gated models: ``steps``, the mean over outputs, and ``output_steps``, per reference;
        measured: ``refine_gmacs`` (the item's), ``output_gmacs`` (per reference: that
        output's refined sample, or the item's for a model with one refined sample) and
        ``anytime``, one entry per step count ``k``: ``{"steps": k, "gmacs": ...,
        "<metric>i": [per reference]}``) and the timing (``compute_seconds``,
        ``audio_seconds``).

    Raises:
        EvaluationError: naming the item whose separation or scoring failed.
    """
    from tqdm import tqdm

    device = torch.device(device or "cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda device: None
    rows, compute_s, audio_s = [], 0.0, 0.0
    with torch.inference_mode():
        for k, item in enumerate(tqdm(items, desc=progress, unit="mix", disable=progress is None)):
            try:
                item, wav = item_mixture(item)
                mix, wav = wav[0].numpy(), wav.to(device)
                sync(device)
                tic = time.perf_counter()
                est, steps = run_model(model, wav, item.get("prompts"))
                sync(device)
                compute_s += time.perf_counter() - tic
                audio_s += mix.shape[-1] / sample_rate
                refs = np.asarray(item["references"])
                scores, chosen = score_sources(
                    mix, refs, est[0].float().cpu().numpy(), sample_rate, metrics,
                    item.get("prompts"), item.get("candidates"),
                )  # fmt: skip
                row = {"id": str(item["id"]), "prompts": item.get("prompts"), **scores}
                row["names"] = item.get("names") or item.get("prompts")
                if item.get("noise") is not None:
                    row["input_snr"] = input_snr(refs.sum(0), np.asarray(item["noise"]))
                if steps is not None:
                    row["output_steps"] = _per_reference(steps[0], scores["output"])
                    row["steps"] = float(np.mean(row["output_steps"]))
                if measure:
                    row.update(_measured(model, wav, item, scores["output"], sample_rate, metrics))
                if examples_dir is not None and k < n_examples:
                    names = item.get("names") or [f"s{j + 1}" for j in range(len(refs))]
                    write_example(examples_dir / row["id"], mix, refs, chosen, sample_rate, names)
                    row["example"] = row["id"]
            except Exception as err:
                raise EvaluationError(
                    f"Evaluation failed on {item.get('id', k)!r} (item {k}): "
                    f"{type(err).__name__}: {err}"
                ) from err
            rows.append(row)
    return rows, {"compute_seconds": compute_s, "audio_seconds": audio_s}


def _per_reference(values: torch.Tensor, matched: list[int]) -> list[float]:
    # One value per output (a prompt model's) taken for each reference's matched output, or one
    # value for the whole item (a model with one refined sample) repeated.
    values = values.reshape(-1).double().cpu()
    if values.numel() == 1:
        return [float(values[0])] * len(matched)
    return [float(values[m]) for m in matched]


def _measured(model, wav, item: dict, matched: list[int], sample_rate: int, metrics) -> dict:
    # The counted refinement cost of one item and its anytime curve (first metric only).
    from .measure import measured_refinement

    prompts = item.get("prompts")
    inputs = (wav,) if prompts is None else (wav, [list(prompts)])
    run = measured_refinement(model, inputs, anytime=True)
    refs, mix = np.asarray(item["references"]), np.asarray(item["mixture"], dtype=np.float32)
    out = {
        "refine_gmacs": float(run.macs.sum()) / 1e9,
        "output_gmacs": [v / 1e9 for v in _per_reference(run.macs[0], matched)],
        "output_steps": _per_reference(run.steps[0], matched),
        "anytime": [],
    }
    for k, (est, macs) in enumerate(run.anytime, start=1):
        scores, _ = score_sources(
            mix, refs, est[0].float().cpu().numpy(), sample_rate, metrics[:1], prompts,
            item.get("candidates"),
        )  # fmt: skip
        imp = f"{metrics[0]}i"
        out["anytime"].append({"steps": k, "gmacs": float(macs.sum()) / 1e9, imp: scores[imp]})
    return out
