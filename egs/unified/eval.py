"""Stage 3 of the unified recipe: score a trained model on the tasks of the TUSS slides.

Fixed test mixtures are drawn from the ``tt`` split for every task
(:data:`asteroid_lir.data.unified.TASKS`): SE (speech, sfxbg), SS (speech x 2, sfxbg), USS
(2-4 sfx), MSS (vocals, bass, drums, other; stems of one song) and CASS (speech, sfxbg,
musicbg). A prompt model (TUSS) gets the task's prompts; the unconditional baseline has each
reference matched to one of its outputs (an oracle choice in its favour). Scores
(:mod:`asteroid_lir.experiment.unified_eval`): SI-SDR and SI-SDRi (MSS: SNR and SNRi), per prompt
and per task (the mean of the per-prompt means, as the TUSS reference averages its scores).
Refinement models (iterated or gated TSE module) also get, per task and per prompt, the mean
steps and the TSE module's counted GMACs, and the anytime curve (the network without its gate
run for 1 .. I steps).

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
from asteroid_lir.experiment.registry import check_model, describe_model, load_model
from asteroid_lir.experiment.report import compute_markdown, positions_markdown, results_markdown
from asteroid_lir.experiment.unified_eval import FIVE, evaluate_tasks


def main(argv=None) -> int:
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
    ev = conf["evaluation"]
    if conf["training"].get("num_threads"):  # the training's threads (1 on a busy 2-core CPU:
        torch.set_num_threads(int(conf["training"]["num_threads"]))  # 2 were 17x slower here)
    model, package = load_model(exp_dir)
    check_model(model, int(index["sample_rate"]), where=exp_dir)
    device = torch.device(f"cuda:{args.gpus.split(',')[0]}" if args.gpus else "cpu")
    n = int(args.n_per_task or ev.get("n_per_task", 25))
    tasks, timing, notes = evaluate_tasks(model, index, ev, out_dir, device, n)
    results = {
        "tag": exp_dir.name,
        "test_set": f"{n} mixtures of {ev.get('seconds', 3.0):g} s per task from {index_path}",
        **describe_model(model, package),
        "tasks": tasks,
        "notes": notes,
        "timing": {
            "device": str(device),
            "threads": torch.get_num_threads(),
            "rtf": timing["compute_seconds"] / max(timing["audio_seconds"], 1e-9),
        },
    }
    if FIVE in tasks:
        title = (
            "Five prompts (speech, sfxbg and three stems of one song; trained with at most four)"
        )
        results["notes"].append(positions_markdown(tasks[FIVE]["five"], title))
    compute = compute_markdown(results)
    if compute:
        results["notes"].append(compute)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out_dir / "results.md").write_text(results_markdown(results))
    print(f"[stage 3] Wrote {out_dir / 'results.json'} and results.md")
    return 0


if __name__ == "__main__":
    run_stage(main)
