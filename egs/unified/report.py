"""Stage 4 of the unified recipe: plots and the markdown report of an evaluated experiment.

Writes into ``--results_dir`` (default: the experiment folder):

* ``tasks.png``: improvement per task (SI-SDRi, SNRi for MSS), and per prompt within each task;
* ``five_prompts.png``: SI-SDRi by prompt position in the five-prompt case (prompted models);
* ``training.png``: training and validation loss against steps (all resumed runs joined);
* ``results.md``: regenerated from ``results.json``, plus a comparison table with the models of
  ``--compare`` (other evaluated experiment folders, e.g. the unconditional baseline).

Usage::

    python report.py --exp_dir exp/tuss_cpu [--results_dir DIR] [--compare exp/baseline_cpu]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local.cli import run_cli  # noqa: E402
from local.summary import comparison_markdown, results_markdown  # noqa: E402


def read_logs(exp_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """``{"loss": [(step, value)], "val_loss": [...]}`` from every CSV log version."""
    curves: dict[str, list[tuple[int, float]]] = {"loss": [], "val_loss": []}
    for path in sorted((exp_dir / "logs" / "csv").glob("version_*/metrics.csv")):
        with open(path) as handle:
            for row in csv.DictReader(handle):
                for key in curves:
                    if row.get(key) not in (None, "") and row.get("step") not in (None, ""):
                        curves[key].append((int(float(row["step"])), float(row[key])))
    return {k: sorted(v) for k, v in curves.items()}


def plot_tasks(named: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = list(named)
    tasks = [t for t in named[labels[0]]["tasks"] if t != "FIVE"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / len(labels)
    for k, lab in enumerate(labels):
        values = [named[lab]["tasks"].get(t, {}).get("improvement", np.nan) for t in tasks]
        axes[0].bar(np.arange(len(tasks)) + k * width, values, width, label=lab)
    axes[0].set_xticks(np.arange(len(tasks)) + width * (len(labels) - 1) / 2)
    axes[0].set_xticklabels(
        [
            f"{t}\n({'SNRi' if named[labels[0]]['tasks'][t]['metric'] == 'snr' else 'SI-SDRi'})"
            for t in tasks
        ]
    )
    axes[0].axhline(0, color="k", lw=0.8)
    axes[0].set_ylabel("improvement over the mixture (dB)")
    axes[0].legend()
    axes[0].set_title("Per task")
    names, values = [], []
    main = named[labels[0]]
    for t in tasks:
        for prompt, res in main["tasks"][t]["per_prompt"].items():
            names.append(f"{t}:{prompt}")
            values.append(res["mean_improvement"])
    axes[1].barh(np.arange(len(names)), values)
    axes[1].set_yticks(np.arange(len(names)))
    axes[1].set_yticklabels(names, fontsize=8)
    axes[1].axvline(0, color="k", lw=0.8)
    axes[1].invert_yaxis()
    axes[1].set_xlabel("improvement (dB)")
    axes[1].set_title(f"Per prompt ({labels[0]})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_five(results: dict, path: Path) -> bool:
    five = results["tasks"].get("FIVE")
    if not five:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = five["five"]["by_position"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar([r["position"] for r in rows], [r["mean_improvement"] for r in rows])
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("prompt position (trained with at most 4)")
    ax.set_ylabel("SI-SDRi (dB)")
    ax.set_title("Five prompts")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_training(curves: dict, path: Path) -> bool:
    if not curves["loss"]:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, style in (("loss", "-"), ("val_loss", "o-")):
        if curves[key]:
            steps, values = zip(*curves[key])
            ax.plot(steps, values, style, label=key, ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (negative SNR, dB)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Report of a unified experiment (stage 4).")
    parser.add_argument("--exp_dir", required=True)
    parser.add_argument("--results_dir", default=None)
    parser.add_argument("--compare", action="append", default=[], help="other experiment folders")
    args = parser.parse_args(argv)
    exp_dir = Path(args.exp_dir)
    out = Path(args.results_dir) if args.results_dir else exp_dir
    res_path = out / "results.json"
    if not res_path.is_file():
        raise FileNotFoundError(f"{res_path} is missing: run stage 3 first (--stage 3).")
    results = json.loads(res_path.read_text())
    named = {exp_dir.name: results}
    for other in args.compare:
        path = Path(other) / "results.json"
        if not path.is_file():
            raise FileNotFoundError(f"--compare {other}: no results.json (evaluate it first).")
        named[Path(other).name] = json.loads(path.read_text())
    plot_tasks(named, out / "tasks.png")
    figures = ["tasks.png"]
    if plot_five(results, out / "five_prompts.png"):
        figures.append("five_prompts.png")
    if plot_training(read_logs(exp_dir), out / "training.png"):
        figures.append("training.png")
    text = results_markdown(results)
    if len(named) > 1:
        text += "\n## Comparison (improvement, dB)\n\n" + comparison_markdown(named)
    text += "\n" + "\n".join(f"![{f}]({f})" for f in figures) + "\n"
    (out / "results.md").write_text(text)
    print(f"[stage 4] Wrote {', '.join(figures)} and results.md in {out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
