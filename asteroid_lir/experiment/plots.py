"""Plots of evaluated experiments (matplotlib PNGs, next to the Markdown reports of
:mod:`asteroid_lir.experiment.report`): training curves from Lightning's CSV logs, bars per
quartile, task or seed, quality against compute, the steps histogram of a gated model and the
spectrograms of an example.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .compute_report import operating_point

__all__ = [
    "bar_chart",
    "csv_log_files",
    "plot_example",
    "plot_quality_vs_compute",
    "plot_steps_histogram",
    "plot_training_curves",
    "read_csv_logs",
    "seed_bar_chart",
]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: works without a display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, dpi: int = 100) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)


def csv_log_files(log_dir: Path) -> list[Path]:
    """``metrics.csv`` of every training (re)start under ``log_dir/csv``, oldest first."""

    def version(path: Path) -> int:
        suffix = path.parent.name.rpartition("_")[2]
        return int(suffix) if suffix.isdigit() else -1

    return sorted(Path(log_dir).glob("csv/version_*/metrics.csv"), key=version)


def read_csv_logs(paths: list[Path]) -> dict[str, list[tuple[float, float]]]:
    """``{metric: [(step, value), ...]}`` from Lightning ``metrics.csv`` files of one training
    (the files of successive restarts continue each other: steps are global)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for path in paths:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("step") in ("", None):
                    continue
                for key, value in row.items():
                    if key not in ("epoch", "step") and value not in ("", None):
                        series.setdefault(key, []).append((float(row["step"]), float(value)))
    return {k: sorted(v) for k, v in series.items()}


def plot_training_curves(exp_dir: Path, path: Path, ylabel: str = "loss") -> bool:
    """Training and validation losses of an experiment against steps, one pair of curves per
    phase (a gated training's pre-training, without gate, has its own logs in ``pretrain/``);
    ``False`` (nothing drawn) without any log."""
    phases = {"pre-training": Path(exp_dir) / "pretrain", "training": Path(exp_dir)}
    curves = {p: read_csv_logs(csv_log_files(d / "logs")) for p, d in phases.items()}
    curves = {p: s for p, s in curves.items() if "val_loss" in s or "loss" in s}
    if not curves:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    offset = 0.0
    for phase, series in curves.items():
        prefix = f"{phase}: " if len(curves) > 1 else ""
        end = offset
        for key, style, label in (("loss", "-", "training"), ("val_loss", "o-", "validation")):
            if key in series:
                steps, values = zip(*series[key])
                ax.plot([offset + s for s in steps], values, style, ms=3, alpha=0.8,
                        label=f"{prefix}{label}")  # fmt: skip
                end = max(end, offset + max(steps))
        offset = end
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    _save(fig, path)
    return True


def bar_chart(
    groups: dict[str, dict[str, float]], path: Path, ylabel: str, title: str = "", line=None,
    twin: dict[str, float] | None = None, twin_label: str = "",
    errors: dict[str, dict[str, float]] | None = None,
) -> None:  # fmt: skip
    """Grouped bars: ``groups[series][category]``; an optional horizontal ``line`` (e.g. the
    mean), a second axis with ``twin[category]`` (e.g. the mean steps) and error bars
    ``errors[series][category]`` (e.g. the standard deviation over seeds)."""
    plt = _pyplot()
    categories = list(next(iter(groups.values())))
    x = np.arange(len(categories))
    width = 0.8 / len(groups)
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(categories) + 2), 4))
    for k, (series, values) in enumerate(groups.items()):
        heights = [np.nan if values.get(c) is None else values[c] for c in categories]
        err = None
        if errors and series in errors:
            err = [errors[series].get(c) or 0.0 for c in categories]
        ax.bar(x + k * width, heights, width, label=series, yerr=err, capsize=3 if err else 0)
    middle = x + width * (len(groups) - 1) / 2
    ax.set_xticks(middle)
    ax.set_xticklabels(categories)
    ax.axhline(0, color="k", lw=0.8)
    if line is not None:
        ax.axhline(line, color="k", ls="--", lw=1, label="mean")
    if twin:
        axis = ax.twinx()
        axis.plot(middle, [twin.get(c) for c in categories], "o-", color="tab:red")
        axis.set_ylabel(twin_label, color="tab:red")
        axis.set_ylim(0, max(v for v in twin.values() if v is not None) + 0.5)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(groups) > 1 or line is not None:
        ax.legend(loc="upper left")
    _save(fig, path)


def seed_bar_chart(
    values: dict[str, dict[str, list[float]]], path: Path, ylabel: str, title: str = ""
) -> None:
    """:func:`bar_chart` of per-seed figures ``values[series][category]``: the mean over the
    seeds with their standard deviation as error bars (categories without values are left
    out)."""
    from .stats import seed_summary

    summaries = {
        s: {c: seed_summary(v) for c, v in cats.items() if v} for s, cats in values.items()
    }

    def pick(key: str) -> dict:
        return {s: {c: x[key] for c, x in cats.items()} for s, cats in summaries.items()}

    bar_chart(pick("mean"), path, ylabel, title, errors=pick("std"))


def plot_quality_vs_compute(named: dict[str, dict], path: Path, ylabel: str) -> bool:
    """Quality against compute: each measured model's anytime curve (its network without the
    gate run for ``1 .. n_steps`` steps) as a line and its own operating point (a gated model's:
    the gate's steps) as a star; ``False`` (nothing drawn) when no model is measured.

    Args:
        named: ``{label: results.json}`` of evaluated experiments.
        path: the PNG to write.
        ylabel: the quality axis' label.
    """
    points = {label: operating_point(res) for label, res in named.items()}
    points = {label: p for label, p in points.items() if p is not None}
    if not points:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    for k, (label, point) in enumerate(points.items()):
        color = f"C{k}"
        curve = point["anytime"]
        ax.plot(
            [a["gmacs"] for a in curve], [a["improvement"] for a in curve], "o-", color=color,
            alpha=0.7, label=f"{label}: 1..{len(curve)} steps, no gate",
        )  # fmt: skip
        for a in curve:
            ax.annotate(str(a["steps"]), (a["gmacs"], a["improvement"]), fontsize=8,
                        xytext=(3, -10), textcoords="offset points", color=color)  # fmt: skip
        gated = named[label]["model"].get("gated")
        ax.plot(
            point["gmacs"], point["improvement"], "*" if gated else "s", ms=14 if gated else 8,
            color=color, mec="k",
            label=f"{label}: {'gated' if gated else 'as trained'}, {point['steps']:.2f} steps",
        )  # fmt: skip
    ax.set_xlabel("refinement (TSE) GMACs per mixture, counted")
    ax.set_ylabel(ylabel)
    ax.set_title("Quality vs compute (mean over tasks)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(fig, path)
    return True


def plot_steps_histogram(steps: list[float], path: Path) -> None:
    """Histogram of the refinement steps each mixture took (gated models)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    top = int(max(steps)) if steps else 1
    ax.hist(steps, bins=[b - 0.5 for b in range(0, top + 2)], rwidth=0.8)
    ax.set_xlabel("refinement steps run")
    ax.set_ylabel("mixtures")
    ax.set_title(f"mean {sum(steps) / max(len(steps), 1):.2f} steps")
    _save(fig, path)


def plot_example(examples_dir: Path, path: Path) -> bool:
    """Spectrograms of the first example of ``examples_dir`` (mixture, each reference and its
    estimate); ``False`` when there is none."""
    import soundfile as sf

    folders = sorted(p for p in Path(examples_dir).glob("*") if (p / "mixture.wav").is_file())
    if not folders:
        return False
    example = folders[0]
    refs = sorted(p.name[: -len("_reference.wav")] for p in example.glob("*_reference.wav"))
    names = ["mixture"] + [f"{r}_{kind}" for r in refs for kind in ("reference", "estimate")]
    plt = _pyplot()
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 1.6 * len(names)), sharex=True)
    for ax, name in zip(np.atleast_1d(axes), names):
        wav, sr = sf.read(example / f"{name}.wav", dtype="float32")
        ax.specgram(wav, NFFT=256, Fs=sr, noverlap=192, cmap="magma", vmin=-120)
        ax.set_ylabel("Hz")
        ax.set_title(name.replace("_", " "), fontsize=9, loc="left")
    np.atleast_1d(axes)[-1].set_xlabel(f"time (s): {example.name}")
    _save(fig, path, dpi=90)
    return True
