"""Stage 4 of the WHAM! recipe: plots of an evaluated experiment, linked from ``results.md``.

Writes in the results folder (default: the experiment folder):

- ``snr_quartiles.png``: SI-SDRi by input-SNR quartile (and steps per quartile for gated models);
- ``training_curves.png``: training and validation loss (and learning rate) from the CSV logs;
- ``steps_histogram.png``: refinement steps run per mixture, for gated models;
- ``example_spectrograms.png``: spectrograms of the first example (mixture, each reference and
  its estimate), to look at beside the wavs of ``examples/``;

and, when stage 3 also scored the held-out eSpeak NG voices (``eval_heldout_*/``), a section that
gives that figure, the spectrograms of its first example, and where its wavs are.

Usage::

    python report.py --exp_dir exp/mini_cpu_sep_noisy [--results_dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import matplotlib
import soundfile as sf

matplotlib.use("Agg")  # files only: works without a display
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local.cli import run_cli  # noqa: E402
from local.summary import results_markdown  # noqa: E402


def csv_log_files(log_dir: Path) -> list[Path]:
    """``metrics.csv`` of every training (re)start under ``log_dir/csv``, oldest first."""

    def version(path: Path) -> int:
        suffix = path.parent.name.rpartition("_")[2]
        return int(suffix) if suffix.isdigit() else -1

    return sorted((log_dir / "csv").glob("version_*/metrics.csv"), key=version)


def read_csv_logs(paths: list[Path]) -> dict[str, list[tuple[float, float]]]:
    """``{metric: [(x, value), ...]}`` from Lightning ``metrics.csv`` files of one training.

    ``x`` is the global step for the per-step training ``loss`` and the epoch for the rest.
    The files of successive restarts continue each other (steps and epochs are global), so
    joining them gives the whole run.
    """
    series: dict[str, list[tuple[float, float]]] = {}
    for path in paths:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                for key, value in row.items():
                    if key in ("epoch", "step") or value in ("", None):
                        continue
                    if key == "loss":
                        x = float(row["step"])
                    elif row.get("epoch"):
                        x = float(row["epoch"])
                    else:
                        continue  # epoch-less rows (hp_metric, lr) carry nothing to plot here
                    series.setdefault(key, []).append((x, float(value)))
    return series


def plot_quartiles(results: dict, path: Path) -> None:
    quartiles = [q for q in results["quartiles"] if q["si_sdri"] is not None]
    labels = [f"Q{q['quartile']}\n{q['snr_low']:.1f}..{q['snr_high']:.1f} dB" for q in quartiles]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(labels, [q["si_sdri"] for q in quartiles], color="tab:blue")
    ax.axhline(results["summary"]["si_sdri"], color="k", ls="--", lw=1, label="mean")
    ax.set_xlabel("input SNR quartile (speech to noise)")
    ax.set_ylabel("SI-SDRi (dB)")
    ax.set_title(f"{results['tag']}: SI-SDRi by input SNR")
    if results["model"]["gated"]:
        twin = ax.twinx()
        twin.plot(labels, [q["steps_mean"] for q in quartiles], "o-", color="tab:red")
        twin.set_ylabel("refinement steps (mean)", color="tab:red")
        max_steps = results["model"].get("n_steps") or max(q["steps_mean"] for q in quartiles)
        twin.set_ylim(0, max_steps + 0.5)  # the full range, so small differences do not look big
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_training_curves(runs: dict[str, list[Path]], path: Path) -> bool:
    """Training and validation losses of each training phase; ``False`` without any log."""
    curves = {phase: read_csv_logs(files) for phase, files in runs.items() if files}
    curves = {p: s for p, s in curves.items() if "val_loss" in s or "loss" in s}
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    epoch_offset = 0.0
    for phase, series in curves.items():
        prefix = f"{phase}: " if len(curves) > 1 else ""
        n_epochs = len(series.get("val_loss", [])) or 1
        if "loss" in series:
            steps, values = zip(*series["loss"])
            # Training loss is logged per step: put it on the epoch axis of the validation loss.
            scale = n_epochs / max(max(steps) + 1, 1)
            xs = [epoch_offset + (s + 1) * scale for s in steps]
            ax.plot(xs, values, alpha=0.5, label=f"{prefix}training loss")
        if "val_loss" in series:
            epochs, values = zip(*series["val_loss"])
            xs = [epoch_offset + e + 1 for e in epochs]
            ax.plot(xs, values, "o-", ms=3, label=f"{prefix}validation loss")
        epoch_offset += n_epochs
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (negative SI-SDR, dB)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_steps_histogram(results: dict, path: Path) -> None:
    steps = [r["steps"] for r in results["utterances"] if "steps" in r]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    top = int(max(steps)) if steps else 1
    ax.hist(steps, bins=[b - 0.5 for b in range(0, top + 2)], rwidth=0.8)
    ax.set_xlabel("refinement steps run")
    ax.set_ylabel("mixtures")
    ax.set_title(f"mean {sum(steps) / max(len(steps), 1):.2f} steps")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_example(examples_dir: Path, path: Path) -> bool:
    """Spectrograms of the first example of ``examples_dir``; ``False`` when there is none."""
    folders = sorted(p for p in examples_dir.glob("*") if (p / "mixture.wav").is_file())
    if not folders:
        return False
    example = folders[0]
    names = ["mixture"] + [
        f"{src}_{kind}"
        for src in sorted({p.name.split("_")[0] for p in example.glob("s*_reference.wav")})
        for kind in ("reference", "estimate")
    ]
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 1.6 * len(names)), sharex=True)
    for ax, name in zip(axes, names):
        wav, sr = sf.read(example / f"{name}.wav", dtype="float32")
        ax.specgram(wav, NFFT=256, Fs=sr, noverlap=192, cmap="magma", vmin=-120)
        ax.set_ylabel("Hz")
        ax.set_title(name.replace("_", " "), fontsize=9, loc="left")
    axes[-1].set_xlabel(f"time (s): {example.name}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def held_out_section(exp_dir: Path) -> str:
    """Markdown of the held-out speech results of stage 3 (empty when there are none); draws
    the spectrograms of each held-out set's first example."""
    lines = []
    for path in sorted(exp_dir.glob("eval_heldout_*/results.json")):
        held = json.loads(path.read_text())["summary"]
        folder = path.parent.name
        lines.append(
            f"- `{folder}`: SI-SDRi **{held['si_sdri']:.2f} dB** on {held['n_utterances']} "
            f"mixtures ([results]({folder}/results.md); listen: `{folder}/examples/`)"
        )
        png = path.parent / "example_spectrograms.png"
        if plot_example(path.parent / "examples", png):
            lines.append(f"\n  ![first held-out example]({folder}/{png.name})")
    if not lines:
        return ""
    title = "## Held-out speech: eSpeak NG voices the training corpus never uses"
    return "\n".join(["", title, "", *lines, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Plots of a WHAM! experiment (recipe stage 4).")
    parser.add_argument("--exp_dir", required=True, help="experiment folder (with logs/)")
    parser.add_argument("--results_dir", default=None, help="folder of results.json (exp_dir)")
    args = parser.parse_args(argv)
    exp_dir = Path(args.exp_dir)
    out = Path(args.results_dir) if args.results_dir else exp_dir
    results_path = out / "results.json"
    if not results_path.is_file():
        raise FileNotFoundError(f"{results_path} is missing: run stage 3 (./run.sh --stage 3).")
    results = json.loads(results_path.read_text())
    plots: dict[str, str] = {}
    plot_quartiles(results, out / "snr_quartiles.png")
    plots["SI-SDRi by input-SNR quartile"] = "snr_quartiles.png"
    runs = {
        "pre-training": csv_log_files(exp_dir / "pretrain" / "logs"),  # gated models only
        "training": csv_log_files(exp_dir / "logs"),
    }
    if plot_training_curves(runs, out / "training_curves.png"):
        plots["Training curves"] = "training_curves.png"
    if results["model"]["gated"]:
        plot_steps_histogram(results, out / "steps_histogram.png")
        plots["Refinement steps per mixture"] = "steps_histogram.png"
    if plot_example(out / "examples", out / "example_spectrograms.png"):
        plots["First example: spectrograms"] = "example_spectrograms.png"
    report = results_markdown(results, plots)
    if out == exp_dir:
        report += held_out_section(exp_dir)
    (out / "results.md").write_text(report)
    for name in plots.values():
        print(f"[stage 4] Wrote {out / name}")
    print(f"[stage 4] Report: {out / 'results.md'}")
    return 0


if __name__ == "__main__":
    run_cli(main)
