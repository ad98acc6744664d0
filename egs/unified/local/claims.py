"""The TUSS slides' claims on the grid of ``conf/grids/slides.yml`` (``utils/run_grid.sh``).

- ``measure --exp_dir DIR``: nothing beyond ``results.json`` is needed (writes the parameter
  count and the training steps to ``measure.json`` for the report).
- ``report --grid FILE --root DIR``: per task of the slides, TUSS against the unconditional model
  of the same size and SFC-CA against band-split, each "ahead" claim reproduced only beyond the
  seeds' spread (:func:`asteroid_lir.experiment.stats.compare`), and the fifth prompt after
  training with at most four; ``report.md``, ``report.json`` and ``tasks.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from asteroid_lir.experiment import stats
from asteroid_lir.experiment.cli import run_stage
from asteroid_lir.experiment.grid import collect, load_grid
from asteroid_lir.experiment.report import bar_chart, markdown_table
from asteroid_lir.tasks import UNIFIED_TASKS

#: (claim, the model claimed ahead, the other): TUSS vs the unconditional model of its size
#: (slides), SFC-CA vs band-split front ends (slide 41).
COMPARISONS = [
    ("tuss_vs_unconditional", "tuss", "baseline"),
    ("sfc_vs_band_split", "tuss_sfc", "tuss"),
]


def measure(exp_dir: Path) -> dict:
    results = json.loads((exp_dir / "results.json").read_text())
    done = json.loads((exp_dir / "train_done.json").read_text())
    return {"parameters": results["model"]["parameters"], "train_steps": done["global_steps"]}


def _improvements(runs: dict, entry: str, task: str) -> list[float]:
    return [
        r["results"]["tasks"][task]["improvement"]
        for r in runs.get(entry, [])
        if task in r["results"]["tasks"]
    ]


def _claim(name: str, verdict: bool | None, text: str, numbers: dict | None = None) -> dict:
    label = "not run" if verdict is None else ("reproduced" if verdict else "not reproduced")
    return {"name": name, "verdict": label, "text": text, "numbers": numbers or {}}


def comparison(runs: dict, name: str, better: str, worse: str) -> dict:
    rows, claims = [], []
    for task, spec in UNIFIED_TASKS.items():
        a, b = _improvements(runs, better, task), _improvements(runs, worse, task)
        unit = "SNRi" if spec.metric == "snr" else "SI-SDRi"
        if not (a and b):
            claims.append(_claim(f"{name}_{task}", None, f"{task}: a model was not run"))
            continue
        c = stats.compare(a, b)
        rows.append(
            [
                task,
                unit,
                f"{c['better']['mean']:.2f} ± {c['better']['std']:.2f}",
                f"{c['worse']['mean']:.2f} ± {c['worse']['std']:.2f}",
                c["diff"],
                "yes" if c["beyond_spread"] else "no",
            ]
        )
        claims.append(
            _claim(
                f"{name}_{task}",
                c["beyond_spread"],
                f"{task} ({unit}): {better} {c['better']['mean']:+.2f} dB vs {worse} "
                f"{c['worse']['mean']:+.2f} dB ({c['diff']:+.2f} dB; "
                + (
                    "beyond the seeds' spread)"
                    if c["beyond_spread"]
                    else "within the seeds' spread)"
                    if c["ahead"]
                    else "behind)"
                ),
                c,
            )
        )
    return {"name": name, "better": better, "worse": worse, "rows": rows, "claims": claims}


def five_prompts(runs: dict, entry: str = "tuss") -> dict:
    lasts = [
        r["results"]["tasks"]["FIVE"]["five"]["last"]
        for r in runs.get(entry, [])
        if "FIVE" in r["results"]["tasks"]
    ]
    if not lasts:
        return {"claims": [_claim("fifth_prompt", None, "no five-prompt evaluation")]}
    imp = stats.seed_summary([x["mean_improvement"] for x in lasts])
    ok = all(x["passes"] for x in lasts)
    text = (
        f"fifth output of five prompts (trained with at most four): {imp['mean']:+.2f} ± "
        f"{imp['std']:.2f} dB over the mixture, level "
        + ", ".join(f"{x['mean_output_db']:.1f}" for x in lasts)
        + " dB; "
        + ("improves and is not silent for every seed" if ok else "fails for some seed")
    )
    return {"claims": [_claim("fifth_prompt", ok, text, {"improvement": imp})], "last": lasts}


def report_markdown(report: dict) -> str:
    lines = [
        "# The TUSS slides' claims at mini scale",
        "",
        f"Grid: `{report['grid']}` — every "
        f"model {report['steps']} training steps, seeds {report['seeds']}; improvements in "
        'dB as mean ± standard deviation over seeds. "Ahead" is reproduced only when every '
        "seed of one model scores above every seed of the other.",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in report["meta"].items()]
    for sec in report["comparisons"]:
        head = [
            "task",
            "metric",
            f"{sec['better']} (dB)",
            f"{sec['worse']} (dB)",
            "difference (dB)",
            "beyond spread",
        ]
        lines += [
            "",
            f"## {sec['better']} vs {sec['worse']}",
            "",
            *markdown_table(head, sec["rows"]),
            "",
        ]
        lines += [f"- **{c['verdict']}** ({c['name']}): {c['text']}" for c in sec["claims"]]
    lines += ["", "## Five prompts", ""]
    lines += [f"- **{c['verdict']}** ({c['name']}): {c['text']}" for c in report["five"]["claims"]]
    lines += ["", "![Improvement per task](tasks.png)", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("measure", "report"))
    parser.add_argument("--exp_dir", help="measure: a trained and evaluated run")
    parser.add_argument("--grid", help="report: the grid file as run")
    parser.add_argument("--root", help="report: the folder of the runs")
    parser.add_argument("--out_dir", default=None, help="report: where it goes (default: root)")
    parser.add_argument("--command", dest="command_line", default=None, help="as it was run")
    parser.add_argument("--machine", default=None, help="where it ran")
    parser.add_argument("--wall_seconds", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "measure":
        out = measure(Path(args.exp_dir))
        (Path(args.exp_dir) / "measure.json").write_text(json.dumps(out, indent=1) + "\n")
        return 0
    grid = load_grid(args.grid)
    runs = collect(grid, args.root, ("results.json", "measure.json"))
    wall = args.wall_seconds
    meta = {
        "command": f"`{args.command_line}`",
        "machine": args.machine,
        "wall time": None if wall is None else f"{wall // 60} min {wall % 60} s",
        "runs at a time": f"{args.jobs}, {grid['threads']} thread(s) each",
        "parameters": ", ".join(
            f"{e} {r[0]['results']['model']['parameters']:,}" for e, r in runs.items() if r
        ),
    }
    report = {
        "grid": args.grid,
        "steps": grid["steps"],
        "seeds": grid["seeds"],
        "meta": {k: v for k, v in meta.items() if v is not None},
        "comparisons": [comparison(runs, *c) for c in COMPARISONS],
        "five": five_prompts(runs),
    }
    out = Path(args.out_dir or args.root)
    out.mkdir(parents=True, exist_ok=True)
    entries = [e for e in ("tuss", "baseline", "tuss_sfc") if runs.get(e)]
    if entries:
        means = {
            e: {
                t: stats.seed_summary(_improvements(runs, e, t))["mean"]
                for t in UNIFIED_TASKS
                if _improvements(runs, e, t)
            }
            for e in entries
        }
        spread = {
            e: {
                t: stats.seed_summary(_improvements(runs, e, t))["std"]
                for t in UNIFIED_TASKS
                if _improvements(runs, e, t)
            }
            for e in entries
        }
        bar_chart(
            means, out / "tasks.png", "improvement (dB)", "Equal training steps", errors=spread
        )
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "report.md").write_text(report_markdown(report))
    for sec in (*report["comparisons"], report["five"]):
        for c in sec["claims"]:
            print(f"[claims] {c['verdict']}: {c['name']}: {c['text']}")
    return 0


if __name__ == "__main__":
    run_stage(main)
