"""Summary of local/adaptive.sh: gated vs ungated TUSS at equal training steps, over seeds.

Reads ``<exp_dir>/<prefix>_ungated_s<seed>/results.json`` and ``<prefix>_gated_s<seed>/`` of
every seed (stage 3 of both), and writes ``<exp_dir>/<prefix>_summary.md``, ``.json`` and
``<prefix>_quality_vs_compute.png`` (:func:`asteroid_lir.experiment.report.adaptive_comparison`).

Usage::

    python local/adaptive_summary.py --exp_dir exp --prefix adaptive --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from asteroid_lir.experiment.cli import run_stage
from asteroid_lir.experiment.report import (
    adaptive_comparison,
    adaptive_markdown,
    plot_quality_vs_compute,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Gated vs ungated TUSS over seeds.")
    parser.add_argument("--exp_dir", default="exp")
    parser.add_argument("--prefix", default="adaptive")
    parser.add_argument("--seeds", nargs="+", required=True)
    args = parser.parse_args(argv)
    root, pairs, named = Path(args.exp_dir), {}, {}
    for seed in args.seeds:
        runs = {}
        for kind in ("ungated", "gated"):
            path = root / f"{args.prefix}_{kind}_s{seed}" / "results.json"
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: run local/adaptive.sh first.")
            runs[kind] = named[f"{kind} s{seed}"] = json.loads(path.read_text())
        pairs[seed] = (runs["ungated"], runs["gated"])
    comparison = adaptive_comparison(pairs)
    text = adaptive_markdown(comparison)
    plot = root / f"{args.prefix}_quality_vs_compute.png"
    if plot_quality_vs_compute(named, plot, "improvement, mean over tasks (dB)"):
        text += f"\n![Quality vs compute]({plot.name})\n"
    (root / f"{args.prefix}_summary.json").write_text(json.dumps(comparison, indent=1) + "\n")
    (root / f"{args.prefix}_summary.md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    run_stage(main)
