"""Evaluation of a unified-separation model on the tasks of the TUSS slides.

Fixed test mixtures are drawn from the ``tt`` split for every task
(:data:`asteroid_lir.tasks.UNIFIED_TASKS`): SE (speech, sfxbg), SS (speech x 2, sfxbg), USS (2-4
sfx), MSS (vocals, bass, drums, other; stems of one song) and CASS (speech, sfxbg, musicbg). A
prompt model (TUSS) gets the task's prompts; a model with fixed outputs (the unconditional
baseline) has each reference matched to one of its outputs (an oracle choice in its favour).
Scores (SI-SDR and SI-SDRi; MSS: SNR and SNRi) per prompt and per task, the mean of the
per-prompt means as the TUSS reference averages its scores
(:func:`~asteroid_lir.experiment.summaries.per_prompt_summary`). Refinement models with several
steps (iterated or gated TSE module) are measured too: per task and per prompt the mean steps
and the refinement's counted multiply-adds, and the anytime curve (the network without its gate
run for 1 .. I steps).

The five-prompt case (:data:`FIVE`; prompt models, ``evaluation.five_prompt``): mixtures of
speech, ambience (sfxbg) and three stems of one song, five prompts in a rotated order, for a model
trained with at most four. Reported per prompt position; the fifth output must improve over the
mixture and not be silent (its level relative to the mixture in dB,
:func:`~asteroid_lir.experiment.summaries.position_summary`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..inference import takes_prompts
from .evaluation import evaluate_items
from .summaries import per_prompt_summary, position_summary

__all__ = ["FIVE", "evaluate_tasks", "is_measured"]

#: The name of the five-prompt case in the results.
FIVE = "FIVE"


def is_measured(model) -> bool:
    """Whether the evaluation counts ``model``'s refinement (a refinement model with several
    steps, or a gated one)."""
    refiner = getattr(model, "refiner", None)
    return refiner is not None and (refiner.n_steps > 1 or refiner.gated)


def evaluate_tasks(
    model, index: dict, ev: dict, out_dir: Path, device: torch.device, n_per_task: int
) -> tuple[dict, dict, list[str]]:
    """Score ``model`` on every task of the unified recipe.

    Args:
        model: the model (eval mode), at the sample rate of ``index``.
        index (dict): the source index of stage 1 (``sources.json``).
        ev (dict): the configuration's ``evaluation`` section (``seconds``, ``seed``,
            ``n_examples``, ``five_prompt``).
        out_dir (Path): where ``examples/<task>/`` go.
        device: where the model runs.
        n_per_task (int): mixtures per task.

    Returns:
        tuple: ``{task: summary with its "mixtures" rows}``, the timing (``compute_seconds``,
        ``audio_seconds``) and notes (skipped tasks).
    """
    from ..data.unified import make_task_mixtures
    from ..tasks import UNIFIED_TASKS as TASKS

    prompted, measure = takes_prompts(model), is_measured(model)
    rate = int(index["sample_rate"])
    tasks = list(TASKS) + ([FIVE] if prompted and ev.get("five_prompt", True) else [])
    results, notes = {}, []
    timing = {"compute_seconds": 0.0, "audio_seconds": 0.0}
    for task in tasks:
        try:
            mixtures = make_task_mixtures(
                index, task, n_per_task, float(ev.get("seconds", 3.0)), int(ev.get("seed", 0))
            )
        except ValueError as err:
            notes.append(f"{task}: skipped ({err})")
            continue
        if not prompted and max(len(m["prompts"]) for m in mixtures) > model.n_src:
            notes.append(f"{task}: skipped ({model.n_src} outputs, more sources)")
            continue
        metric = TASKS[task].metric if task in TASKS else "si_sdr"
        items = [{"id": m["id"], "mixture": m["mixture"], "references": m["sources"],
                  "prompts": m["prompts"] if prompted else None, "names": m["prompts"]}
                 for m in mixtures]  # fmt: skip
        rows, spent = evaluate_items(
            model.to(device), items, rate, (metric,), device, out_dir / "examples" / task,
            int(ev.get("n_examples", 2)), None, measure=measure,
        )  # fmt: skip
        for key in timing:
            timing[key] += spent[key]
        summary = per_prompt_summary(rows, metric)
        summary["five"] = position_summary(rows, metric) if task == FIVE else None
        results[task] = {**summary, "mixtures": rows}
        cost = ""
        if summary["gmacs_per_mixture"] is not None:
            cost = f", {summary['steps_mean']:.2f} steps, {summary['gmacs_per_mixture']:.3f} GMACs"
        print(
            f"[stage 3] {task}: {metric} {summary['score']:.2f} dB, improvement "
            f"{summary['improvement']:+.2f} dB{cost} ({len(rows)} mixtures)",
            flush=True,
        )
    return results, timing, notes
