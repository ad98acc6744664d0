"""Stage 4 of the WHAM! recipe: plots of an evaluated experiment, linked from ``results.md``.

Writes in the results folder (default: the experiment folder) ``snr_quartiles.png`` (SI-SDRi
and, for gated models, the steps by input-SNR quartile), ``training_curves.png``,
``steps_histogram.png`` (gated models) and ``example_spectrograms.png``; when stage 3 also scored
the held-out eSpeak NG voices (``eval_heldout_*/``), a section gives that figure.

Usage::

    python report.py --exp_dir exp/mini_cpu_sep_noisy [--results_dir DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from asteroid_lir.experiment.cli import run_stage
from asteroid_lir.experiment.plots import (
    bar_chart,
    plot_example,
    plot_steps_histogram,
    plot_training_curves,
)
from asteroid_lir.experiment.report import results_markdown


def held_out_section(exp_dir: Path) -> str:
    """Markdown of the held-out speech results of stage 3 (empty when there are none)."""
    lines = []
    for path in sorted(exp_dir.glob("eval_heldout_*/results.json")):
        held, folder = json.loads(path.read_text())["summary"], path.parent.name
        lines.append(
            f"- `{folder}`: SI-SDRi **{held['si_sdri']:.2f} dB** on {held['n_utterances']} "
            f"mixtures ([results]({folder}/results.md); listen: `{folder}/examples/`)"
        )
        if plot_example(path.parent / "examples", path.parent / "example_spectrograms.png"):
            lines.append(f"\n  ![first held-out example]({folder}/example_spectrograms.png)")
    title = "## Held-out speech: eSpeak NG voices the training corpus never uses"
    return "\n".join(["", title, "", *lines, ""]) if lines else ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Plots of a WHAM! experiment (recipe stage 4).")
    parser.add_argument("--exp_dir", required=True, help="experiment folder (with logs/)")
    parser.add_argument("--results_dir", default=None, help="folder of results.json (exp_dir)")
    args = parser.parse_args(argv)
    exp_dir = Path(args.exp_dir)
    out = Path(args.results_dir or exp_dir)
    if not (out / "results.json").is_file():
        raise FileNotFoundError(f"{out / 'results.json'} is missing: run stage 3 (--stage 3).")
    results = json.loads((out / "results.json").read_text())
    gated = results["model"]["gated"]
    quartiles = {f"Q{q['quartile']}": q for q in results["quartiles"]}
    si_sdri = {"SI-SDRi": {k: q["si_sdri"] for k, q in quartiles.items()}}
    steps = {k: q["steps_mean"] for k, q in quartiles.items()} if gated else None
    title = f"{results['tag']}: SI-SDRi by input-SNR quartile (low to high)"
    bar_chart(si_sdri, out / "snr_quartiles.png", "SI-SDRi (dB)", title, twin=steps,
              line=results["summary"]["si_sdri"], twin_label="refinement steps (mean)")  # fmt: skip
    plots = {"SI-SDRi by input-SNR quartile": "snr_quartiles.png"}
    if plot_training_curves(exp_dir, out / "training_curves.png", "loss (negative SI-SDR, dB)"):
        plots["Training curves"] = "training_curves.png"
    if gated:
        plot_steps_histogram(
            [r["steps"] for r in results["utterances"]], out / "steps_histogram.png"
        )
        plots["Refinement steps per mixture"] = "steps_histogram.png"
    if plot_example(out / "examples", out / "example_spectrograms.png"):
        plots["First example: spectrograms"] = "example_spectrograms.png"
    report = results_markdown(results, plots)
    (out / "results.md").write_text(report + (held_out_section(exp_dir) if out == exp_dir else ""))
    print(f"[stage 4] Wrote {', '.join(plots.values())} and results.md in {out}")
    return 0


if __name__ == "__main__":
    run_stage(main)
