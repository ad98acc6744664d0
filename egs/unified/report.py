"""Stage 4 of the unified recipe: plots and the Markdown report of an evaluated experiment.

Writes into ``--results_dir`` (default: the experiment folder) ``tasks.png`` (improvement per
task, side by side with the models of ``--compare``), ``five_prompts.png`` (SI-SDRi by prompt
position, prompt models), ``quality_vs_compute.png`` (refinement models: the anytime curve of
each measured model, 1 .. I steps without gate, and its operating point, a gated model's star),
``training.png`` (losses against steps) and ``results.md``, with a comparison table when other
evaluated experiments are given.

Usage::

    python report.py --exp_dir exp/tuss_cpu [--results_dir DIR] [--compare exp/baseline_cpu]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from asteroid_lir.experiment.cli import run_stage
from asteroid_lir.experiment.compute_report import operating_point
from asteroid_lir.experiment.plots import bar_chart, plot_quality_vs_compute, plot_training_curves
from asteroid_lir.experiment.report import fmt, markdown_table, results_markdown


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Report of a unified experiment (stage 4).")
    parser.add_argument("--exp_dir", required=True)
    parser.add_argument("--results_dir", default=None)
    parser.add_argument("--compare", action="append", default=[], help="other experiment folders")
    args = parser.parse_args(argv)
    exp_dir = Path(args.exp_dir)
    out = Path(args.results_dir or exp_dir)
    named = {}
    for folder in [out, *map(Path, args.compare)]:
        if not (folder / "results.json").is_file():
            raise FileNotFoundError(f"{folder} has no results.json: run stage 3 for it first.")
        named[folder.name] = json.loads((folder / "results.json").read_text())
    results = named[out.name]
    tasks = [t for t in results["tasks"] if t != "FIVE"]
    improvements = {
        f"{name} ({res['model']['parameters'] / 1e6:.2f} M)": {
            t: res["tasks"][t]["improvement"] for t in tasks if t in res["tasks"]
        }
        for name, res in named.items()
    }
    bar_chart(improvements, out / "tasks.png", "improvement over the mixture (dB)", "Per task")
    plots = {"Improvement per task (SNRi for MSS, SI-SDRi otherwise)": "tasks.png"}
    five = (results["tasks"].get("FIVE") or {}).get("five")  # by prompt position
    if five:
        by_pos = {str(r["position"]): r["mean_improvement"] for r in five["by_position"]}
        bar_chart({"SI-SDRi": by_pos}, out / "five_prompts.png", "SI-SDRi (dB)", "Five prompts")
        plots["Five prompts: SI-SDRi by prompt position"] = "five_prompts.png"
    ylabel = "improvement over the mixture, mean over tasks (dB)"
    if plot_quality_vs_compute(named, out / "quality_vs_compute.png", ylabel):
        title = "Quality vs refinement compute (anytime curves, operating points)"
        plots[title] = "quality_vs_compute.png"
    if plot_training_curves(exp_dir, out / "training.png", "loss (negative SNR, dB)"):
        plots["Training curves"] = "training.png"
    text = results_markdown(results, plots)
    if len(named) > 1:
        rows = [[t, *(v.get(t) for v in improvements.values())] for t in tasks]
        points = [operating_point(res) or {} for res in named.values()]
        rows.append(["steps (mean)", *(p.get("steps") for p in points)])
        rows.append(["TSE GMACs / mixture", *(fmt(p.get("gmacs"), 4) for p in points)])
        table = markdown_table(["task", *improvements], rows)
        title = "Comparison (improvement in dB; steps and TSE GMACs of measured models)"
        text += f"\n## {title}\n\n" + "\n".join(table) + "\n"
    (out / "results.md").write_text(text)
    print(f"[stage 4] Wrote {', '.join(plots.values())} and results.md in {out}")
    return 0


if __name__ == "__main__":
    run_stage(main)
