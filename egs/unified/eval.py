"""Stage 3 of the unified recipe: score a trained model on the tasks of the TUSS slides.

Fixed test mixtures are drawn from the ``tt`` split for every task
(:data:`asteroid_lir.data.unified.TASKS`): SE (speech, sfxbg), SS (speech x 2, sfxbg), USS
(2-4 sfx), MSS (vocals, bass, drums, other; stems of one song) and CASS (speech, sfxbg,
musicbg). A prompted model (TUSS) gets the task's prompts; outputs of equal prompts are matched
to their references by the best assignment. The unconditional baseline (fixed outputs) has each
reference matched to one of its outputs by the best assignment over all of them (an oracle
choice in its favour). Scores: SI-SDR and SI-SDRi (MSS: SNR and SNRi), per prompt and per task
(the mean of the per-prompt means, as the TUSS reference averages its scores).

The five-prompt case (prompted models; ``evaluation.five_prompt``): mixtures of speech,
ambience (sfxbg) and three stems of one song (bass, vocals, drums), five prompts in a rotated
order per mixture, for a model trained with at most four prompts. Reported per prompt position;
the fifth position's output must improve over the mixture and not be silent (its level relative
to the mixture is given in dB).

Writes ``results.json``, ``results.md`` and ``examples/<task>/*.wav`` in ``--out_dir``
(default: the experiment folder).

Usage::

    python eval.py --exp_dir exp/tuss_cpu --meta_dir data/metadata/<corpus> [--gpus 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local.cli import run_cli  # noqa: E402
from local.metrics import score_mixture  # noqa: E402
from local.summary import results_markdown  # noqa: E402

FIVE = "FIVE"
#: Output level (dB relative to the mixture) under which an output counts as silent.
SILENT_DB = -30.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Evaluate a unified-separation model (stage 3).")
    parser.add_argument("--exp_dir", required=True, help="experiment folder with best_model.pth")
    parser.add_argument("--meta_dir", required=True, help="folder with sources.json")
    parser.add_argument("--out_dir", default=None, help="where results go (default: exp_dir)")
    parser.add_argument("--gpus", default="", help="GPU id (empty: CPU)")
    parser.add_argument("--n_per_task", type=int, default=None, help="mixtures per task")
    return parser.parse_args(argv)


def load_model(exp_dir: Path):
    """The trained model (``best_model.pth``) and its package."""
    path = exp_dir / "best_model.pth"
    if not path.is_file():
        raise FileNotFoundError(f"No trained model {path}: run stage 2 first (--stage 2).")
    from asteroid.models import BaseModel

    import asteroid_lir  # noqa: F401  (registers the models with Asteroid)
    from asteroid_lir.models.base import load_model_conf

    package = load_model_conf(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BaseModel.from_pretrained(package)
    return model.eval(), package


def separate(model, mixture: np.ndarray, prompts: list[str] | None, device) -> np.ndarray:
    """Outputs ``(n_out, time)`` of one mixture."""
    wav = torch.from_numpy(mixture)[None].to(device)
    with torch.inference_mode():
        est = model(wav, [prompts]) if prompts is not None else model(wav)
    return est[0].float().cpu().numpy()


def summarise(rows: list[dict], metric: str) -> dict:
    """Per-prompt and task means of the scored mixtures of one task."""
    per_prompt: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        for name, ref in zip(row["prompts"], row["scores"]["refs"]):
            slot = per_prompt.setdefault(name, {"score": [], "improvement": [], "input": []})
            for key in slot:
                slot[key].append(ref[key])
    prompts = {
        name: {f"mean_{k}": float(np.mean(v)) for k, v in values.items()}
        | {"n": len(values["score"])}
        for name, values in per_prompt.items()
    }
    return {
        "metric": metric,
        "n_mixtures": len(rows),
        "score": float(np.mean([p["mean_score"] for p in prompts.values()])),
        "improvement": float(np.mean([p["mean_improvement"] for p in prompts.values()])),
        "input": float(np.mean([p["mean_input"] for p in prompts.values()])),
        "per_prompt": prompts,
    }


def five_prompt_summary(rows: list[dict]) -> dict:
    """Scores by prompt position of the five-prompt case; the fifth position in detail."""
    by_pos = []
    for pos in range(5):
        imps = [r["scores"]["refs"][pos]["improvement"] for r in rows]
        levels = [r["scores"]["refs"][pos]["output_db"] for r in rows]
        by_pos.append(
            {
                "position": pos + 1,
                "mean_improvement": float(np.mean(imps)),
                "min_improvement": float(np.min(imps)),
                "fraction_improved": float(np.mean(np.array(imps) > 0)),
                "mean_output_db": float(np.mean(levels)),
                "fraction_silent": float(np.mean(np.array(levels) < SILENT_DB)),
            }
        )
    fifth_by_class: dict[str, list[float]] = {}
    for r in rows:
        fifth_by_class.setdefault(r["prompts"][4], []).append(r["scores"]["refs"][4]["improvement"])
    fifth = dict(by_pos[4])
    fifth["by_class"] = {k: float(np.mean(v)) for k, v in sorted(fifth_by_class.items())}
    fifth["passes"] = bool(fifth["mean_improvement"] > 0 and fifth["mean_output_db"] > SILENT_DB)
    return {"by_position": by_pos, "fifth": fifth}


def main(argv=None) -> int:
    args = parse_args(argv)
    exp_dir, meta_dir = Path(args.exp_dir), Path(args.meta_dir)
    out_dir = Path(args.out_dir) if args.out_dir else exp_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    conf_path = exp_dir / "conf.yml"
    if not conf_path.is_file():
        raise FileNotFoundError(f"{conf_path} is missing: run stage 2 first (--stage 2).")
    conf = yaml.safe_load(conf_path.read_text())
    ev = conf["evaluation"]
    threads = conf["training"].get("num_threads")
    if threads:
        torch.set_num_threads(int(threads))
    from asteroid_lir.data.unified import TASKS, make_task_mixtures
    from asteroid_lir.inference import takes_prompts

    index_path = meta_dir / "sources.json"
    if not index_path.is_file():
        raise FileNotFoundError(f"{index_path} is missing: run stage 1 (--stage 1).")
    index = json.loads(index_path.read_text())
    model, package = load_model(exp_dir)
    if int(model.sample_rate) != int(index["sample_rate"]):
        raise ValueError(
            f"The model works at {model.sample_rate:g} Hz, the test sources are at "
            f"{index['sample_rate']} Hz."
        )
    device = torch.device(f"cuda:{args.gpus.split(',')[0]}" if args.gpus else "cpu")
    model.to(device)
    prompted = takes_prompts(model)
    n_out = None if prompted else int(model.n_src)
    n = int(args.n_per_task or ev.get("n_per_task", 25))
    seconds, seed = float(ev.get("seconds", 3.0)), int(ev.get("seed", 0))
    n_examples = int(ev.get("n_examples", 2))
    tasks = list(TASKS)
    if prompted and ev.get("five_prompt", True):
        tasks.append(FIVE)
    results: dict = {
        "model": type(model).__name__,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "sample_rate": int(model.sample_rate),
        "mixture_seconds": seconds,
        "n_per_task": n,
        "training": (package.get("infos", {}).get("recipe") or {}).get("global_steps"),
        "tasks": {},
        "skipped": {},
    }
    total_audio, total_time = 0.0, 0.0
    for task in tasks:
        try:
            mixtures = make_task_mixtures(index, task, n, seconds, seed)
        except ValueError as err:
            results["skipped"][task] = str(err)
            print(f"[stage 3] {task}: skipped ({err})")
            continue
        metric = TASKS[task].metric if task in TASKS else "si_sdr"
        if n_out is not None and max(len(m["prompts"]) for m in mixtures) > n_out:
            results["skipped"][task] = f"{n_out} outputs for up to 5 sources"
            continue
        rows = []
        for k, mix in enumerate(mixtures):
            start = time.time()
            est = separate(model, mix["mixture"], mix["prompts"] if prompted else None, device)
            total_time += time.time() - start
            total_audio += seconds
            scores = score_mixture(
                est, mix["sources"], mix["mixture"], mix["prompts"] if prompted else None, metric
            )
            rows.append({"id": mix["id"], "prompts": mix["prompts"], "scores": scores})
            if k < n_examples:
                ex_dir = out_dir / "examples" / task
                ex_dir.mkdir(parents=True, exist_ok=True)
                sf.write(ex_dir / f"{mix['id']}_mixture.wav", mix["mixture"], index["sample_rate"])
                for j, name in enumerate(mix["prompts"]):
                    out = scores["refs"][j]["output"]
                    sf.write(
                        ex_dir / f"{mix['id']}_{j + 1}_{name}.wav", est[out], index["sample_rate"]
                    )
        summary = summarise(rows, metric)
        if task == FIVE:
            summary["five"] = five_prompt_summary(rows)
        summary["mixtures"] = rows
        results["tasks"][task] = summary
        print(
            f"[stage 3] {task}: {metric} {summary['score']:.2f} dB, improvement "
            f"{summary['improvement']:+.2f} dB ({len(rows)} mixtures)",
            flush=True,
        )
    results["real_time_factor"] = total_time / max(total_audio, 1e-9)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out_dir / "results.md").write_text(results_markdown(results))
    print(f"[stage 3] Wrote {out_dir / 'results.json'} and results.md")
    return 0


if __name__ == "__main__":
    run_cli(main)
