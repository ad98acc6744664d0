"""The TUSS slides' claims (``conf/grids/slides.yml``) and adaptive TUSS against its ungated
network (``conf/grids/adaptive.yml``), on the grids run by ``utils/run_grid.sh``.

- ``measure --exp_dir DIR``: the parameter count and the training steps (``measure.json``), and
  for an ungated refinement TUSS the per-task improvement with its TSE module skipped (every
  step returns its input, so the decoder reads ``z_0``): what the module contributes at all.
- ``report --grid FILE --root DIR``: per task of the slides, TUSS against the unconditional model
  of the same size and SFC-CA against band-split, each "ahead" claim reproduced only beyond the
  seeds' spread (:func:`asteroid_lir.experiment.stats.compare`), and the fifth prompt after
  training with at most four; ``report.md``, ``report.json`` and ``tasks.png``; for the
  adaptive grid, the gated model's TSE GMACs saved and its drop against its ungated network
  (:func:`asteroid_lir.experiment.compute_report.adaptive_comparison`) and
  ``quality_vs_compute.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from asteroid_lir.experiment import stats
from asteroid_lir.experiment.claims import claim, claim_lines, claims_main, mean_std, section
from asteroid_lir.experiment.cli import run_stage
from asteroid_lir.experiment.compute_report import adaptive_comparison, adaptive_markdown
from asteroid_lir.experiment.plots import plot_quality_vs_compute, seed_bar_chart
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
    out = {"parameters": results["model"]["parameters"], "train_steps": done["global_steps"]}
    model = results["model"]
    if (model.get("n_steps") or 1) > 1 and not model.get("gated"):
        out["tse_skipped"] = tse_skipped(exp_dir, results)
    return out


def tse_skipped(exp_dir: Path, results: dict) -> dict:
    """Per-task improvement of the network with its TSE steps replaced by the identity, on the
    test mixtures of its evaluation (the same seed and number per task)."""
    import tempfile
    from unittest import mock

    import torch
    import yaml

    from asteroid_lir.experiment.registry import load_model
    from asteroid_lir.experiment.unified_eval import evaluate_tasks

    torch.set_num_threads(1)
    conf = yaml.safe_load((exp_dir / "conf.yml").read_text())
    from prepare_data import resolve_paths  # beside this script (its folder is on sys.path)

    # Results of before the index was recorded: the embedded corpus (run from the recipe).
    path = results.get("index") or resolve_paths(conf, "data", "")[1] / "sources.json"
    index = json.loads(Path(path).read_text())
    n = next(iter(results["tasks"].values()))["n_mixtures"]
    ev = {**conf["evaluation"], "n_examples": 0, "five_prompt": False}
    model, _ = load_model(exp_dir)
    # Deliberately a patch, not a model option: no trained model is meant to run this way.
    with mock.patch.object(model.refiner, "refine", lambda z, block_idx: z):
        with tempfile.TemporaryDirectory() as tmp:
            tasks, _, _ = evaluate_tasks(model, index, ev, Path(tmp), torch.device("cpu"), n)
    return {task: summary["improvement"] for task, summary in tasks.items()}


def _improvements(runs: dict, entry: str, task: str) -> list[float]:
    results = (r["results"]["tasks"] for r in runs.get(entry, []))
    return [tasks[task]["improvement"] for tasks in results if task in tasks]


def comparison(runs: dict, name: str, better: str, worse: str) -> dict:
    rows, claims = [], []
    for task, spec in UNIFIED_TASKS.items():
        a, b = _improvements(runs, better, task), _improvements(runs, worse, task)
        unit = "SNRi" if spec.metric == "snr" else "SI-SDRi"
        if not (a and b):
            claims.append(claim(f"{name}_{task}", None, f"{task}: a model was not run"))
            continue
        c = stats.compare(a, b)
        beyond = "yes" if c["beyond_spread"] else "no"
        rows.append([task, unit, mean_std(c["better"]), mean_std(c["worse"]), c["diff"], beyond])
        where = "beyond" if c["beyond_spread"] else "within" if c["ahead"] else None
        text = (
            f"{task} ({unit}): {better} {c['better']['mean']:+.2f} dB vs {worse} "
            f"{c['worse']['mean']:+.2f} dB ({c['diff']:+.2f} dB; "
            + (f"{where} the seeds' spread)" if where else "behind)")
        )
        claims.append(claim(f"{name}_{task}", c["beyond_spread"], text, c))
    return {"name": name, "better": better, "worse": worse, "rows": rows, "claims": claims}


def five_prompts(runs: dict, entry: str = "tuss") -> dict:
    results = (r["results"]["tasks"] for r in runs.get(entry, []))
    lasts = [tasks["FIVE"]["five"]["last"] for tasks in results if "FIVE" in tasks]
    if not lasts:
        return {"claims": [claim("fifth_prompt", None, "no five-prompt evaluation")]}
    imp = stats.seed_summary([x["mean_improvement"] for x in lasts])
    ok = all(x["passes"] for x in lasts)
    levels = ", ".join(f"{x['mean_output_db']:.1f}" for x in lasts)
    text = (
        f"fifth output of five prompts (trained with at most four): {mean_std(imp, '+')} dB over "
        f"the mixture, level {levels} dB; "
        + ("improves and is not silent for every seed" if ok else "fails for some seed")
    )
    return {"claims": [claim("fifth_prompt", ok, text, {"improvement": imp})], "last": lasts}


def adaptive(runs: dict, out_dir: Path) -> tuple[dict, list[str]]:
    """The gated TUSS against its ungated network (issue 26), paired by seed."""
    ungated = {r["seed"]: r["results"] for r in runs["ungated"]}
    pairs = {str(r["seed"]): (ungated[r["seed"]], r["results"]) for r in runs["gated"]
             if r["seed"] in ungated}  # fmt: skip
    if not pairs:
        return {"claims": [claim("adaptive_tuss", None, "no seed with both models")]}, []
    c = adaptive_comparison(pairs)
    m, sd = c["mean"], c["std"]
    text = (
        f"gated TUSS spends {100 * m['saving']:.1f} ± {100 * sd['saving']:.1f} % fewer TSE "
        f"GMACs than its ungated network for a drop of {m['drop_db']:.2f} ± "
        f"{sd['drop_db']:.2f} dB ({m['gated_steps']:.2f} steps on average)"
    )
    # Does the gate beat the ungated network run for a fixed number of steps at the same compute
    # (its anytime curve at the gated model's mean steps)? A flat curve makes any saving free.
    fixed = {
        seed: stats.interpolate_curve(
            {p["steps"]: p["improvement"] for p in r["anytime"]}, r["gated"]["steps"]
        )
        for seed, r in c["seeds"].items()
    }
    known = {seed: v for seed, v in fixed.items() if v is not None}
    gated = {seed: c["seeds"][seed]["gated"]["improvement"] for seed in known}
    ahead = bool(known) and all(gated[s] >= v for s, v in known.items())
    curve = [p["improvement"] for r in c["seeds"].values() for p in r["anytime"][:1]]
    last = [p["improvement"] for r in c["seeds"].values() for p in r["anytime"][-1:]]
    per_seed = ", ".join(f"s{s} {gated[s]:.2f} vs {v:.2f} dB" for s, v in known.items())
    c["fixed_steps_at_gated_steps"] = fixed
    c["claims"] = [
        claim("adaptive_tuss", c["saving_ok"] and c["drop_ok"] and c["equal_steps"], text),
        claim("adaptive_steps_differ", c["steps_differ"],
              "mean steps differ between tasks or prompt names"),
        claim(
            "adaptive_beats_fixed_steps",
            ahead if known else None,
            f"gated vs its ungated network stopped after the same mean number of steps, per "
            f"seed: {per_seed}; the ungated network gives {np.mean(curve):.2f} dB after one step "
            f"and {np.mean(last):.2f} dB after all (what its later steps add is what a gate can "
            "save)",
        ),
    ]  # fmt: skip
    named = {
        f"{kind} s{seed}": res
        for seed, pair in pairs.items()
        for kind, res in zip(("ungated", "gated"), pair)
    }
    lines = ["", *adaptive_markdown(c).splitlines()[1:], *claim_lines(c["claims"])]
    added = tse_added(runs["ungated"])
    if added:
        c["tse_added"] = added
        lines.append(
            "- what the TSE module adds at all (the ungated network against the same network "
            "with every TSE step skipped, mean over seeds): "
            + ", ".join(f"{task} {v:+.2f} dB" for task, v in added.items())
        )
    if plot_quality_vs_compute(named, out_dir / "quality_vs_compute.png", "improvement (dB)"):
        lines += ["", "![Quality vs compute](quality_vs_compute.png)"]
    return c, lines


def tse_added(runs: list[dict]) -> dict | None:
    """Per task, the improvement of the network minus that with its TSE steps skipped
    (``measure.json``'s ``tse_skipped``), mean over the seeds that have it."""
    gains: dict[str, list[float]] = {}
    for r in runs:
        skipped = (r.get("measure") or {}).get("tse_skipped") or {}
        for task, value in skipped.items():
            gains.setdefault(task, []).append(r["results"]["tasks"][task]["improvement"] - value)
    return {task: float(np.mean(v)) for task, v in gains.items()} or None


def build(runs: dict, out_dir: Path) -> tuple[dict, list[str]]:
    report, lines = {}, []
    if "gated" in runs:
        report["adaptive"], lines = adaptive(runs, out_dir)
    if "tuss" not in runs:
        return report, lines
    report |= {
        "comparisons": [comparison(runs, *c) for c in COMPARISONS],
        "five": five_prompts(runs),
        "parameters": {e: r[0]["results"]["model"]["parameters"] for e, r in runs.items() if r},
    }
    lines += ["", "Parameters: " + ", ".join(f"{e} {n:,}" for e, n in report["parameters"].items())]
    for sec in report["comparisons"]:
        better, worse = sec["better"], sec["worse"]
        head = ["task", "metric", f"{better} (dB)", f"{worse} (dB)", "difference (dB)",
                "beyond spread"]  # fmt: skip
        lines += section(f"{better} vs {worse}", sec["claims"], head, sec["rows"])
    lines += section("Five prompts", report["five"]["claims"])
    entries = [e for e in ("tuss", "baseline", "tuss_sfc") if runs.get(e)]
    if entries:
        improvements = {e: {t: _improvements(runs, e, t) for t in UNIFIED_TASKS} for e in entries}
        seed_bar_chart(
            improvements, out_dir / "tasks.png", "improvement (dB)", "Equal training steps"
        )
    return report, lines + ["", "![Improvement per task](tasks.png)"]


if __name__ == "__main__":
    title = "The TUSS slides' claims and adaptive TUSS at mini scale"
    run_stage(lambda: claims_main(None, title, measure, build))
