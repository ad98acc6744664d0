"""Stage 3 of the unified recipe: score a trained model on the tasks of the TUSS slides and, for
prompt models, the five-prompt case (:mod:`asteroid_lir.experiment.unified_eval`: the test
mixtures, the scores per prompt and per task, the compute of refinement models). Writes
``results.json``, ``results.md`` and ``examples/<task>/`` in ``--out_dir`` (default: the
experiment folder).

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
from asteroid_lir.experiment.compute_report import compute_markdown
from asteroid_lir.experiment.registry import check_model, describe_model, load_model
from asteroid_lir.experiment.report import positions_markdown, write_results
from asteroid_lir.experiment.summaries import timing_record
from asteroid_lir.experiment.trainer import eval_device
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
    conf = yaml.safe_load((exp_dir / "conf.yml").read_text())
    index, ev = json.loads(index_path.read_text()), conf["evaluation"]
    if conf["training"].get("num_threads"):  # the training's threads (1 on a busy 2-core CPU:
        torch.set_num_threads(int(conf["training"]["num_threads"]))  # 2 were 17x slower here)
    model, package = load_model(exp_dir)
    check_model(model, int(index["sample_rate"]), where=exp_dir)
    device, n = eval_device(args.gpus), int(args.n_per_task or ev.get("n_per_task", 25))
    tasks, timing, notes = evaluate_tasks(model, index, ev, out_dir, device, n)
    results = {
        "tag": exp_dir.name,
        "test_set": f"{n} mixtures of {ev.get('seconds', 3.0):g} s per task from {index_path}",
        "index": str(index_path.resolve()),
        **describe_model(model, package),
        "tasks": tasks,
        "notes": notes,
        "timing": timing_record(device, timing),
    }
    if FIVE in tasks:
        title = (
            "Five prompts (speech, sfxbg and three stems of one song; trained with at most four)"
        )
        results["notes"].append(positions_markdown(tasks[FIVE]["five"], title))
    compute = compute_markdown(results)
    if compute:
        results["notes"].append(compute)
    write_results(out_dir, results, indent=1)
    print(f"[stage 3] Wrote {out_dir / 'results.json'} and results.md")
    return 0


if __name__ == "__main__":
    run_stage(main)
