"""Stage 3 of the unified recipe: score a trained model on the tasks of the TUSS slides.

Fixed test mixtures are drawn from the ``tt`` split for every task
(:data:`asteroid_lir.data.unified.TASKS`): SE (speech, sfxbg), SS (speech x 2, sfxbg), USS
(2-4 sfx), MSS (vocals, bass, drums, other; stems of one song) and CASS (speech, sfxbg,
musicbg). A prompt model (TUSS) gets the task's prompts; the unconditional baseline has each
reference matched to one of its outputs (an oracle choice in its favour). Scores
(:mod:`asteroid_lir.experiment.evaluation`): SI-SDR and SI-SDRi (MSS: SNR and SNRi), per prompt
and per task (the mean of the per-prompt means, as the TUSS reference averages its scores).

The five-prompt case (prompt models; ``evaluation.five_prompt``): mixtures of speech, ambience
(sfxbg) and three stems of one song, five prompts in a rotated order, for a model trained with at
most four. Reported per prompt position; the fifth output must improve over the mixture and not
be silent (its level relative to the mixture in dB). Writes ``results.json``, ``results.md`` and
``examples/<task>/`` in ``--out_dir`` (default: the experiment folder).

Usage::

    python eval.py --exp_dir exp/tuss_cpu --meta_dir data/metadata/<corpus> [--gpus 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import yaml

from asteroid_lir.experiment.cli import run_stage
from asteroid_lir.experiment.evaluation import evaluate_items, per_prompt_summary, position_summary
from asteroid_lir.experiment.registry import check_model, describe_model, load_model
from asteroid_lir.experiment.report import positions_markdown, results_markdown
from asteroid_lir.inference import takes_prompts

FIVE = "FIVE"


def main(argv=None) -> int:
    from asteroid_lir.data.unified import make_task_mixtures
    from asteroid_lir.tasks import UNIFIED_TASKS as TASKS

    parser = argparse.ArgumentParser(description="Evaluate a unified-separation model (stage 3).")
    parser.add_argument("--exp_dir", required=True, help="experiment folder with best_model.pth")
    parser.add_argument("--meta_dir", required=True, help="folder with sources.json")
    parser.add_argument("--out_dir", default=None, help="where results go (default: exp_dir)")
    parser.add_argument("--gpus", default="", help="GPU id (empty: CPU)")
    parser.add_argument("--n_per_task", type=int, default=None, help="mixtures per task")
    args = parser.parse_args(argv)
    exp_dir, index_path = Path(args.exp_dir), Path(args.meta_dir) / "sources.json"
    out_dir = Path(args.out_dir or exp_dir)
    for path in (exp_dir / "conf.yml", index_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run the stages before first.")
    conf, index = (
        yaml.safe_load((exp_dir / "conf.yml").read_text()),
        json.loads(index_path.read_text()),
    )
    ev, rate = conf["evaluation"], int(index["sample_rate"])
    model, package = load_model(exp_dir)
    check_model(model, rate, where=exp_dir)
    device = torch.device(f"cuda:{args.gpus.split(',')[0]}" if args.gpus else "cpu")
    prompted = takes_prompts(model)
    n = int(args.n_per_task or ev.get("n_per_task", 25))
    tasks = list(TASKS) + ([FIVE] if prompted and ev.get("five_prompt", True) else [])
    results = {
        "tag": exp_dir.name,
        "test_set": f"{n} mixtures of {ev.get('seconds', 3.0):g} s per task from {index_path}",
        **describe_model(model, package),
        "tasks": {},
        "notes": [],
    }
    timing = {"compute_seconds": 0.0, "audio_seconds": 0.0}
    for task in tasks:
        try:
            mixtures = make_task_mixtures(
                index, task, n, float(ev.get("seconds", 3.0)), int(ev.get("seed", 0))
            )
        except ValueError as err:
            results["notes"].append(f"{task}: skipped ({err})")
            continue
        if not prompted and max(len(m["prompts"]) for m in mixtures) > model.n_src:
            results["notes"].append(f"{task}: skipped ({model.n_src} outputs, more sources)")
            continue
        metric = TASKS[task].metric if task in TASKS else "si_sdr"
        items = [
            {
                "id": m["id"],
                "mixture": m["mixture"],
                "references": m["sources"],
                "prompts": m["prompts"] if prompted else None,
                "names": m["prompts"],
            }
            for m in mixtures
        ]
        rows, spent = evaluate_items(
            model.to(device),
            items,
            rate,
            (metric,),
            device,
            out_dir / "examples" / task,
            int(ev.get("n_examples", 2)),
            None,
        )
        for key in timing:
            timing[key] += spent[key]
        summary = per_prompt_summary(rows, metric)
        summary["five"] = position_summary(rows, metric) if task == FIVE else None
        results["tasks"][task] = {**summary, "mixtures": rows}
        print(
            f"[stage 3] {task}: {metric} {summary['score']:.2f} dB, improvement "
            f"{summary['improvement']:+.2f} dB ({len(rows)} mixtures)",
            flush=True,
        )
    results["timing"] = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "rtf": timing["compute_seconds"] / max(timing["audio_seconds"], 1e-9),
    }
    if FIVE in results["tasks"]:
        title = (
            "Five prompts (speech, sfxbg and three stems of one song; trained with at most four)"
        )
        results["notes"].append(positions_markdown(results["tasks"][FIVE]["five"], title))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out_dir / "results.md").write_text(results_markdown(results))
    print(f"[stage 3] Wrote {out_dir / 'results.json'} and results.md")
    return 0


if __name__ == "__main__":
    run_stage(main)
