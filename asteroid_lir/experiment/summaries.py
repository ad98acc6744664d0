"""Summaries of evaluated rows (:func:`asteroid_lir.experiment.evaluation.evaluate_items`).

Means over mixtures and references (:func:`summarize`), per prompt (:func:`per_prompt_summary`,
the TUSS reference's mean of per-prompt means), along the anytime curve of a refinement model
(:func:`anytime_summary`), by output position (:func:`position_summary`, the five-prompt case)
and by input-SNR quartile (:func:`quartile_table`), and the timing record of an evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "SILENT_DB",
    "anytime_summary",
    "per_prompt_summary",
    "position_summary",
    "quartile_table",
    "summarize",
    "timing_record",
]


def _mean(values) -> float | None:
    """The mean of ``values`` as a float; ``None`` for no values."""
    return float(np.mean(values)) if len(values) else None


def summarize(rows: list[dict], metrics: Sequence[str], timing: dict) -> dict:
    """Means over mixtures and references (and per reference) of every metric, the mean input
    SNR, the real-time factor and the mean steps of gated models."""
    summary: dict = {"n_utterances": len(rows), "metrics": list(metrics)}
    for metric in metrics:
        imp = np.array([r[f"{metric}i"] for r in rows])  # (n_utt, n_ref)
        summary[f"{metric}i"] = float(imp.mean())
        summary[f"{metric}i_per_source"] = [float(v) for v in imp.mean(0)]
        summary[f"input_{metric}"] = float(np.mean([r[f"input_{metric}"] for r in rows]))
        summary[f"output_{metric}"] = float(np.mean([r[metric] for r in rows]))
    snrs = np.array([r.get("input_snr", np.nan) for r in rows])
    summary["input_snr_mean"] = _mean(snrs[np.isfinite(snrs)])
    summary["rtf"] = _real_time_factor(timing)
    summary["steps_mean"] = _mean([r["steps"] for r in rows if "steps" in r])
    return summary


def timing_record(device: torch.device | str | None, timing: dict) -> dict:
    """The ``timing`` of an evaluation's results: the device, torch's CPU threads and the
    real-time factor (compute time / audio duration) of
    :func:`~asteroid_lir.experiment.evaluation.evaluate_items`' ``timing``."""
    rtf = _real_time_factor(timing)
    return {"device": str(device), "threads": torch.get_num_threads(), "rtf": rtf}


def _real_time_factor(timing: dict) -> float:
    return timing["compute_seconds"] / max(timing["audio_seconds"], 1e-9)


def _grouped(rows: list[dict], get, groups=lambda row: row["names"]) -> dict[str, list[float]]:
    # {group: [the values of every row in it]}: ``get(row)`` gives a row's values, one per
    # reference (``None``: the row is left out), ``groups(row)`` the group of each reference
    # (default: its name, the prompt).
    per: dict = {}
    for row in rows:
        for group, value in zip(groups(row), get(row) or []):
            per.setdefault(group, []).append(value)
    return per


def _mean_of_means(per: dict[str, list[float]]) -> float:
    return float(np.mean([np.mean(v) for v in per.values()]))


def per_prompt_summary(rows: list[dict], metric: str) -> dict:
    """Per-prompt means of the score, its improvement and the mixture's score, and the task's
    means (the mean of the per-prompt means, as the TUSS reference averages its scores); the
    references are named by the rows' ``names`` (their prompts).

    With per-output steps (gated models) and counted cost (``evaluate_items(...,
    measure=True)``) also: per prompt ``mean_steps`` and ``mean_gmacs`` (the refinement's
    multiply-adds of that output, in G); for the task ``steps_mean`` (over every output),
    ``gmacs_per_mixture`` (the refinement's G multiply-adds per mixture) and ``anytime``
    (:func:`anytime_summary`)."""
    keys = {"score": metric, "improvement": f"{metric}i", "input": f"input_{metric}",
            "steps": "output_steps", "gmacs": "output_gmacs"}  # fmt: skip
    per = {k: _grouped(rows, lambda r, key=key: r.get(key)) for k, key in keys.items()}
    prompts = {
        name: {f"mean_{k}": float(np.mean(g[name])) for k, g in per.items() if name in g}
        | {"n": len(scores)}
        for name, scores in per["score"].items()
    }
    return {
        "metric": metric,
        "n_mixtures": len(rows),
        **{k: _mean_of_means(per[k]) for k in ("score", "improvement", "input")},
        "steps_mean": _mean([s for r in rows for s in r.get("output_steps") or []]),
        "gmacs_per_mixture": _mean([r["refine_gmacs"] for r in rows if "refine_gmacs" in r]),
        "anytime": anytime_summary(rows, metric),
        "per_prompt": prompts,
    }


def anytime_summary(rows: list[dict], metric: str) -> list[dict] | None:
    """The anytime curve of measured rows: for each step count ``k``, the improvement (the mean
    of the per-prompt means) and the refinement's G multiply-adds per mixture; ``None`` for rows
    without it."""
    if not rows or not rows[0].get("anytime"):
        return None
    curve = []
    for k, point in enumerate(rows[0]["anytime"]):
        per = _grouped(rows, lambda r, k=k: r["anytime"][k][f"{metric}i"])
        curve.append({
            "steps": point["steps"],
            "improvement": _mean_of_means(per),
            "gmacs_per_mixture": float(np.mean([r["anytime"][k]["gmacs"] for r in rows])),
            "per_prompt": {name: float(np.mean(v)) for name, v in per.items()},
        })  # fmt: skip
    return curve


#: Output level (dB relative to the mixture) under which an output counts as silent.
SILENT_DB = -30.0


def position_summary(rows: list[dict], metric: str) -> dict:
    """Scores by output (prompt) position, and the last position in detail: the mean, minimum
    and fraction of improvements above zero, the output level and the fraction of silent outputs
    (:data:`SILENT_DB`), the last position by class; it ``passes`` when it improves on average
    and is not silent (the TUSS slides' five-prompt case)."""
    by_pos = []
    for pos in range(len(rows[0]["names"])):
        imps = np.array([r[f"{metric}i"][pos] for r in rows])
        levels = np.array([r["output_db"][pos] for r in rows])
        by_pos.append({
            "position": pos + 1, "mean_improvement": float(imps.mean()),
            "min_improvement": float(imps.min()), "fraction_improved": float((imps > 0).mean()),
            "mean_output_db": float(levels.mean()),
            "fraction_silent": float((levels < SILENT_DB).mean()),
        })  # fmt: skip
    last = dict(by_pos[-1])
    by_class = _grouped(rows, lambda r: r[f"{metric}i"][-1:], lambda r: r["names"][-1:])
    last["by_class"] = {c: float(np.mean(v)) for c, v in sorted(by_class.items())}
    last["passes"] = bool(last["mean_improvement"] > 0 and last["mean_output_db"] > SILENT_DB)
    return {"by_position": by_pos, "last": last}


def quartile_table(snrs: np.ndarray, values: dict, steps: np.ndarray | None) -> list[dict]:
    """Mean of each per-mixture value (and steps) in each quartile of input SNR.

    Args:
        snrs: input SNR of each mixture (``inf`` for a noise-free one: last quartile).
        values: ``{name: per-mixture values}``, e.g. ``{"si_sdri": ..., "sdri": ...}``.
        steps: refinement steps of each mixture (gated models) or ``None``.

    Returns:
        list of dict: one row per quartile with its SNR range, count and means.
    """
    finite = np.isfinite(snrs)
    if not finite.any():
        return []
    edges = np.quantile(snrs[finite], [0.0, 0.25, 0.5, 0.75, 1.0])
    # Quartile index of each mixture; the top edge belongs to the last quartile.
    bins = np.clip(np.searchsorted(edges, snrs, side="right") - 1, 0, 3)
    rows = []
    for q in range(4):
        sel = bins == q
        row = {"quartile": q + 1, "snr_low": float(edges[q]), "snr_high": float(edges[q + 1])}
        row["count"] = int(sel.sum())
        row.update({name: _mean(per_mix[sel]) for name, per_mix in values.items()})
        row["steps_mean"] = None if steps is None else _mean(steps[sel])
        rows.append(row)
    return rows
