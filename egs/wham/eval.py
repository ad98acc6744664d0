"""Stage 3 of the WHAM! recipe: evaluate a trained model on whole test utterances.

Scores (:mod:`asteroid_lir.experiment.evaluation`): SI-SDR and SDR (``--extra_metrics``: also
STOI and PESQ) of every speech source, the estimates matched to the speakers with PIT over the
speech outputs only, their improvements over the mixture, the means by input-SNR quartile (with
the steps of gated models), the real-time factor; a few examples are written. Before scoring, the
model is checked against the task and the sample rate it was trained for. ``--gate_budget``
calibrates a gated model's exit margin on the validation mixtures first
(:func:`asteroid_lir.engine.gated.calibrate_exit_margin`). Outputs
``results.json`` and ``results.md`` in ``--out_dir`` (default: the experiment folder).

Usage::

    python eval.py --exp_dir exp/mini_cpu_sep_noisy --meta_dir data/<corpus>/metadata \
        --task sep_noisy [--out_dir DIR] [--gpus 0] [--max_utterances N] [--extra_metrics] \
        [--gate_budget STEPS]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml

from asteroid_lir.engine.gated import calibrate_exit_margin
from asteroid_lir.experiment.cli import run_stage
from asteroid_lir.experiment.evaluation import evaluate_items, item_mixture, speech_items
from asteroid_lir.experiment.registry import check_model, describe_model, load_model
from asteroid_lir.experiment.report import write_results
from asteroid_lir.experiment.summaries import quartile_table, summarize, timing_record
from asteroid_lir.experiment.trainer import eval_device


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Evaluate a WHAM! experiment (recipe stage 3).")
    parser.add_argument("--exp_dir", required=True, help="experiment folder with best_model.pth")
    parser.add_argument("--meta_dir", required=True, help="folder with tt.json")
    parser.add_argument("--task", required=True, choices=("sep_noisy", "enh_single"))
    parser.add_argument("--out_dir", default=None, help="where results go (default: exp_dir)")
    parser.add_argument("--gpus", default="", help="GPU id to evaluate on (empty: CPU)")
    parser.add_argument("--max_utterances", type=int, default=None, help="evaluate the first N")
    parser.add_argument("--n_examples", type=int, default=None, help="example wavs to write")
    parser.add_argument("--extra_metrics", action="store_true", help="also STOI and PESQ (slow)")
    parser.add_argument(
        "--gate_budget",
        type=float,
        default=None,
        help="gated model: set its exit margin so that the validation mixtures "
        "(cv.json of --valid_dir) take this many steps on average",
    )
    parser.add_argument("--valid_dir", default=None, help="folder with cv.json (default: meta_dir)")
    return parser.parse_args(argv)


def evaluate(args) -> dict:
    from asteroid_lir.tasks import n_speech

    exp_dir, tt_json = Path(args.exp_dir), Path(args.meta_dir) / "tt.json"
    if not (exp_dir / "conf.yml").is_file():
        raise FileNotFoundError(
            f"{exp_dir / 'conf.yml'} is missing: train the experiment first (stage 2)."
        )
    conf = yaml.safe_load((exp_dir / "conf.yml").read_text())
    if not tt_json.is_file():
        raise FileNotFoundError(f"Test metadata {tt_json} is missing: run stage 1 first.")
    model, package = load_model(exp_dir)  # a folder without best_model.pth: run stage 2
    if conf["data"].get("task") not in (None, args.task):
        raise ValueError(
            f"The model of {exp_dir} was trained for task {conf['data']['task']!r}, "
            f"not --task {args.task}."
        )
    n_out = n_speech(args.task) + int(conf["data"].get("return_noise", True))
    check_model(model, conf["data"]["sample_rate"], n_out, f"{exp_dir} (--task {args.task})")
    device, rate = eval_device(args.gpus), int(conf["data"]["sample_rate"])
    gate = None
    if args.gate_budget is not None:  # before the test set: calibrated on validation mixtures
        cv_json = Path(args.valid_dir or args.meta_dir) / "cv.json"
        if not cv_json.is_file():
            raise FileNotFoundError(f"--gate_budget calibrates on {cv_json}, which is missing.")
        valid = speech_items(cv_json, args.task, rate)
        mixtures = (item_mixture(v)[1].to(device) for v in valid)
        margin = calibrate_exit_margin(model.to(device), mixtures, args.gate_budget)
        gate = {"budget": args.gate_budget, "exit_margin": margin}
        print(f"[stage 3] Exit margin {margin:.3f}: {args.gate_budget:g} steps on {len(valid)} "
              "validation mixtures")  # fmt: skip
    items, ev = speech_items(tt_json, args.task, rate), conf.get("evaluation") or {}
    n_utt = min(len(items), int(args.max_utterances or ev.get("max_utterances") or len(items)))
    metrics = tuple(ev.get("metrics", ("si_sdr", "sdr")))
    metrics += tuple(m for m in ("stoi", "pesq") if args.extra_metrics and m not in metrics)
    out_dir = Path(args.out_dir or exp_dir)
    n_examples = args.n_examples if args.n_examples is not None else ev.get("n_examples", 3)
    print(f"[stage 3] Evaluating {exp_dir} on {n_utt} mixtures of {tt_json} ({', '.join(metrics)})")
    rows, timing = evaluate_items(model.to(device), items[:n_utt], rate, metrics, device,
                                  out_dir / "examples", int(n_examples))  # fmt: skip
    record = describe_model(model, package, (conf.get("model") or {}).get("preset"))
    per_mix = {f"{m}i": np.array([np.mean(r[f"{m}i"]) for r in rows]) for m in metrics}
    steps = np.array([r["steps"] for r in rows]) if record["model"]["gated"] else None
    summary = summarize(rows, metrics, timing)
    return {
        "tag": exp_dir.name,
        "task": args.task,
        "test_set": str(tt_json),
        **record,
        **({"gate": gate} if gate else {}),
        "timing": timing_record(device, timing) | timing,
        "summary": summary,
        "quartiles": quartile_table(np.array([r["input_snr"] for r in rows]), per_mix, steps),
        "examples": [f"examples/{r['example']}" for r in rows if "example" in r],
        "utterances": rows,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    results = evaluate(args)
    out_dir = Path(args.out_dir or args.exp_dir)
    write_results(out_dir, results)
    s = results["summary"]
    steps = f", {s['steps_mean']:.2f} steps per mixture" if s["steps_mean"] is not None else ""
    others = "".join(f", {m.upper()}i {s[f'{m}i']:.2f}" for m in s["metrics"] if m != "si_sdr")
    print(
        f"[stage 3] SI-SDRi {s['si_sdri']:.2f} dB (per source "
        f"{', '.join(f'{v:.2f}' for v in s['si_sdri_per_source'])}){others}, "
        f"RTF {s['rtf']:.4f}{steps}"
    )
    print(f"[stage 3] Wrote {out_dir / 'results.json'} and {out_dir / 'results.md'}")
    return 0


if __name__ == "__main__":
    run_stage(main)
