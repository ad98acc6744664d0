"""Reports of evaluated experiments: Markdown tables (the plots next to them are drawn by
:mod:`asteroid_lir.experiment.plots`).

:func:`results_markdown` renders a ``results.json`` of the recipes' evaluation: the model, the
training budget (steps done of planned; a run that a time bound stopped is flagged), the metric
table of one task (``summary``, ``quartiles``) or the table of several tasks (``tasks``, one
metric each, per prompt), examples and plots; :func:`adaptive_comparison` compares gated models
with their ungated networks at their operating points.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = [
    "adaptive_comparison",
    "adaptive_markdown",
    "compute_markdown",
    "operating_point",
    "fmt",
    "markdown_section",
    "markdown_table",
    "positions_markdown",
    "results_markdown",
    "training_line",
    "write_results",
]

#: How the tables name each metric, and its unit.
LABELS = {
    "si_sdr": ("SI-SDR", "dB"),
    "sdr": ("SDR", "dB"),
    "snr": ("SNR", "dB"),
    "stoi": ("STOI", ""),
    "pesq": ("PESQ", ""),
}


def fmt(value, digits: int = 2) -> str:
    """A table cell: ``-`` for ``None``, floats with ``digits`` decimals."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    """Lines of a Markdown table (cells through :func:`fmt`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]


def markdown_section(title: str, *blocks: str | list[str], level: int = 2) -> list[str]:
    """Lines of a Markdown section.

    Args:
        title: its heading (``level`` times ``#``).
        *blocks: paragraphs (a line) and tables or lists (lines), each after an empty line.

    Returns:
        list of str: the lines.
    """
    lines = [f"{'#' * level} {title}"]
    for block in blocks:
        lines += ["", *([block] if isinstance(block, str) else block)]
    return lines


def _label(metric: str) -> tuple[str, str]:
    name, unit = LABELS.get(metric, (metric, ""))
    return name, f" ({unit})" if unit else ""


def training_line(training: dict | None) -> str:
    """One bullet on the training budget: steps (epochs) done of planned, and a loud warning
    when a time bound stopped the run before its budget."""
    if not training:
        return "- training: not recorded"
    done, planned = training.get("global_steps"), training.get("steps_planned")
    text = f"- training: {done} steps" + (f" of {planned} planned" if planned else "")
    text += f" ({training.get('epochs_done')} of {training.get('epochs_planned')} epochs)"
    total = training.get("total_steps")
    if total is not None and total != done:
        text += f"; {total} steps in all phases (pre-training included)"
    if training.get("stopped_by_time"):
        text += (
            f"; **STOPPED BY THE TIME BOUND ({training.get('max_time_minutes')} min) BEFORE ITS "
            "BUDGET: this model depends on the machine's speed**"
        )
    return text


def _single_task(results: dict) -> list[str]:
    s = results["summary"]
    metrics, rows = s.get("metrics", ["si_sdr"]), []
    for metric in metrics:
        name, unit = _label(metric)
        mean = fmt(s[f"{metric}i"])
        rows.append([f"{name}i mean{unit}", f"**{mean}**" if metric == metrics[0] else mean])
        per_source = enumerate(s[f"{metric}i_per_source"], start=1)
        rows += [[f"{name}i source {k}{unit}", v] for k, v in per_source]
        rows.append([f"{name} of the mixture{unit}", s[f"input_{metric}"]])
        rows.append([f"{name} of the estimates{unit}", s[f"output_{metric}"]])
    rows.append(["input SNR, speech to noise (dB)", s.get("input_snr_mean")])
    if s.get("steps_mean") is not None:
        rows.append(["refinement steps per mixture (mean)", s["steps_mean"]])
    lines = ["", *markdown_table(["metric", "value"], rows)]
    if results.get("quartiles"):
        names = [_label(m)[0] + "i" + _label(m)[1] for m in metrics]
        header = ["quartile", "input SNR range (dB)", "mixtures", *names, "steps (mean)"]
        rows = [
            [f"Q{q['quartile']}", f"{q['snr_low']:.1f} .. {q['snr_high']:.1f}", q["count"]]
            + [q.get(f"{m}i") for m in metrics]
            + [q.get("steps_mean")]
            for q in results["quartiles"]
        ]
        lines += ["", *markdown_section("By input-SNR quartile", markdown_table(header, rows))]
    return lines


def _tasks(results: dict) -> list[str]:
    header = ["task", "metric", "mixture (dB)", "estimate (dB)", "improvement (dB)", "per prompt"]
    rows = []
    for task, res in results["tasks"].items():
        name = _label(res["metric"])[0]
        per = ", ".join(f"{p} {v['mean_improvement']:+.2f}" for p, v in res["per_prompt"].items())
        steps = f"; {res['steps_mean']:.2f} steps" if res.get("steps_mean") is not None else ""
        rows.append(
            [task, f"{name} / {name}i", res["input"], res["score"], res["improvement"], per + steps]
        )
    return ["", *markdown_table(header, rows)]


def results_markdown(results: dict, plots: dict[str, str] | None = None) -> str:
    """Render an evaluation's ``results.json`` as Markdown.

    Args:
        results: the results (``tag``, ``model``, ``training``, ``timing``, and ``summary`` (+
            ``quartiles``) or ``tasks``; optional ``examples``, ``notes``).
        plots: ``{caption: relative png path}`` to show below the tables.

    Returns:
        str: the Markdown document.
    """
    model = results["model"]
    structure = f"{model['structure']}, " if model.get("structure") else ""
    lines = [
        f"# Results: {results['tag']}",
        "",
        f"- test set: {results.get('test_set', '-')}",
        f"- model: `{model['name']}` {structure}{model['parameters'] / 1e6:.3f} M parameters",
        training_line(results.get("training")),
    ]
    prog = model.get("progressive")
    if prog and not prog["complete"]:
        lines.append(
            f"- progressive training **stopped during step {prog['steps_completed'] + 1} of "
            f"{prog['n_steps']}**: this is the step-{prog['exported_step']} model (blocks "
            f"1..{prog['exported_blocks']} of {prog['n_steps']})"
        )
    elif prog:
        lines.append(f"- progressive training: all {prog['n_steps']} steps completed")
    timing = results.get("timing", {})
    lines.append(
        f"- real-time factor: {fmt(timing.get('rtf'), 4)} ({timing.get('device')}, "
        f"{timing.get('threads')} thread(s); compute time / audio duration)"
    )
    lines.append(
        "- metrics: Asteroid's (`asteroid.metrics`, SNR from `asteroid.losses.sdr`), outputs "
        "matched to the references first; the improvement (i) is the estimate's value minus the "
        "mixture's"
    )
    lines += _single_task(results) if "summary" in results else _tasks(results)
    for note in results.get("notes", []):
        lines += ["", note]
    if results.get("examples"):
        lines += ["", "## Examples", ""]
        lines += [
            f"- [{ex}]({ex}): mixture, references and estimates (wav)" for ex in results["examples"]
        ]
    for caption, path in (plots or {}).items():
        lines += ["", *markdown_section(caption, f"![{caption}]({path})", level=3)]
    return "\n".join(lines).rstrip() + "\n"


def write_results(out_dir: Path, results: dict, indent: int = 2) -> None:
    """Write an evaluation's ``results.json`` and its :func:`results_markdown` (``results.md``)
    into ``out_dir`` (made when missing)."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / "results.json").write_text(json.dumps(results, indent=indent) + "\n")
    (Path(out_dir) / "results.md").write_text(results_markdown(results))


def operating_point(results: dict, tasks: list[str] | None = None) -> dict | None:
    """A measured model's average over tasks: improvement, refinement GMACs per mixture, steps
    per output, and its anytime curve (the same averages for ``k = 1 .. n_steps`` steps of the
    network without its gate); ``None`` for an unmeasured evaluation.

    Args:
        results: an evaluation's ``results.json`` with ``tasks``.
        tasks: the tasks to average (default: all but the five-prompt case).
    """
    tasks = [t for t in (tasks or results["tasks"]) if t in results["tasks"] and t != "FIVE"]
    res = [results["tasks"][t] for t in tasks]
    if not res or any(r.get("gmacs_per_mixture") is None for r in res):
        return None
    curves = [r["anytime"] or [] for r in res]
    return {
        "tasks": tasks,
        "improvement": _mean_of(res, "improvement"),
        "gmacs": _mean_of(res, "gmacs_per_mixture"),
        "steps": _mean_of(res, "steps_mean"),
        "anytime": [
            {"steps": points[0]["steps"], "improvement": _mean_of(points, "improvement"),
             "gmacs": _mean_of(points, "gmacs_per_mixture")}
            for points in zip(*curves)
        ],
    }  # fmt: skip


def _mean_of(records, key: str) -> float:
    return float(np.mean([r[key] for r in records]))


#: What the adaptive model must show against its ungated network at equal training steps
#: (issue 26): at least this fraction of the refinement's multiply-adds saved ...
MIN_SAVING = 0.30
#: ... for at most this drop of the mean improvement (dB).
MAX_DROP_DB = 0.3
#: Mean steps that differ by at least this much between two tasks or two prompt names "differ".
MIN_STEP_SPREAD = 0.25


def _spread(values: dict[str, float]) -> tuple[float, str, str]:
    low, high = min(values, key=values.get), max(values, key=values.get)
    return values[high] - values[low], low, high


def adaptive_comparison(pairs: dict[str, tuple[dict, dict]]) -> dict:
    """A gated model against its ungated network trained for the same steps, over seeds.

    Args:
        pairs: ``{seed: (ungated results.json, gated results.json)}`` of measured evaluations.

    Returns:
        dict: per seed (``improvement`` and ``gmacs`` of both, ``drop_db``, ``saving``, the
        training steps of both, the gated model's mean steps per task and per prompt name and
        their spreads), the means over seeds, and the verdicts: ``saving_ok`` (mean saving at
        least :data:`MIN_SAVING`), ``drop_ok`` (mean drop at most :data:`MAX_DROP_DB`),
        ``steps_differ`` (the mean steps of two tasks or two prompt names differ by at least
        :data:`MIN_STEP_SPREAD` in every seed), ``equal_steps`` (same training steps).

    Raises:
        ValueError: an evaluation without the measurements (an old ``results.json``).
    """
    seeds = {}
    for seed, (ungated, gated) in pairs.items():
        base, point = operating_point(ungated), operating_point(gated, list(ungated["tasks"]))
        if base is None or point is None:
            raise ValueError(f"seed {seed}: evaluate both models again (stage 3) to measure them.")
        by_task = {t: gated["tasks"][t]["steps_mean"] for t in point["tasks"]}
        weighted: dict[str, list[tuple[float, int]]] = {}  # per prompt name, over tasks
        for task in point["tasks"]:
            for name, v in gated["tasks"][task]["per_prompt"].items():
                weighted.setdefault(name, []).append((v["mean_steps"], v["n"]))
        by_prompt = {
            name: sum(s * n for s, n in entries) / sum(n for _, n in entries)
            for name, entries in weighted.items()
        }
        seeds[seed] = {
            "ungated": {k: base[k] for k in ("improvement", "gmacs", "steps")},
            "gated": {k: point[k] for k in ("improvement", "gmacs", "steps")},
            "drop_db": base["improvement"] - point["improvement"],
            "saving": 1.0 - point["gmacs"] / base["gmacs"],
            "training_steps": [r["training"].get("total_steps") for r in (ungated, gated)],
            "steps_by_task": by_task,
            "steps_by_prompt": by_prompt,
            "task_spread": _spread(by_task),
            "prompt_spread": _spread(by_prompt),
            "anytime": base["anytime"],
        }
    rows = list(seeds.values())
    mean = {key: _mean_of(rows, key) for key in ("drop_db", "saving")} | {
        f"{side}_{key}": _mean_of([r[side] for r in rows], key)
        for side in ("ungated", "gated")
        for key in ("improvement", "gmacs", "steps")
    }
    return {
        "seeds": seeds,
        "mean": mean,
        "std": {k: float(np.std([r[k] for r in rows])) for k in ("drop_db", "saving")},
        "saving_ok": mean["saving"] >= MIN_SAVING,
        "drop_ok": mean["drop_db"] <= MAX_DROP_DB,
        "steps_differ": all(
            max(r["task_spread"][0], r["prompt_spread"][0]) >= MIN_STEP_SPREAD for r in rows
        ),
        "equal_steps": all(len(set(r["training_steps"])) == 1 for r in rows),
    }


def adaptive_markdown(comparison: dict) -> str:
    """The Markdown of :func:`adaptive_comparison`: one row per seed, the means, the verdicts and
    the ungated network's anytime curve (mean over seeds)."""
    header = ["seed", "training steps (ungated / gated)", "ungated dB", "ungated GMACs",
              "gated dB", "gated GMACs", "gated steps", "drop (dB)", "GMACs saved",
              "steps by task (min .. max)", "steps by prompt (min .. max)"]  # fmt: skip
    rows = []
    for seed, r in comparison["seeds"].items():
        (_, t_low, t_high), (_, p_low, p_high) = r["task_spread"], r["prompt_spread"]
        rows.append([
            seed, " / ".join(str(s) for s in r["training_steps"]), r["ungated"]["improvement"],
            fmt(r["ungated"]["gmacs"], 4), r["gated"]["improvement"], fmt(r["gated"]["gmacs"], 4),
            r["gated"]["steps"], r["drop_db"], f"{100 * r['saving']:.1f} %",
            f"{t_low} {r['steps_by_task'][t_low]:.2f} .. {t_high} {r['steps_by_task'][t_high]:.2f}",
            f"{p_low} {r['steps_by_prompt'][p_low]:.2f} .. {p_high} "
            f"{r['steps_by_prompt'][p_high]:.2f}",
        ])  # fmt: skip
    m, sd = comparison["mean"], comparison["std"]
    rows.append([
        "mean", "", m["ungated_improvement"], fmt(m["ungated_gmacs"], 4), m["gated_improvement"],
        fmt(m["gated_gmacs"], 4), m["gated_steps"], f"{m['drop_db']:.2f} ± {sd['drop_db']:.2f}",
        f"{100 * m['saving']:.1f} ± {100 * sd['saving']:.1f} %", "", "",
    ])  # fmt: skip
    curves = [r["anytime"] for r in comparison["seeds"].values()]
    anytime = [
        f"{points[0]['steps']}: {_mean_of(points, 'improvement'):+.2f} dB at "
        f"{_mean_of(points, 'gmacs'):.4f} GMACs"
        for points in zip(*curves)
    ]

    def verdict(ok: bool) -> str:
        return "yes" if ok else "**NO**"

    verdicts = [
        f"- at least {100 * MIN_SAVING:.0f} % of the TSE GMACs saved (mean): "
        f"{verdict(comparison['saving_ok'])}",
        f"- drop of at most {MAX_DROP_DB} dB (mean): {verdict(comparison['drop_ok'])}",
        f"- mean steps differ between tasks or prompt names (by {MIN_STEP_SPREAD} or more, every "
        f"seed): {verdict(comparison['steps_differ'])}",
        f"- equal training steps: {verdict(comparison['equal_steps'])}",
    ]
    return "\n".join(markdown_section(
        "Adaptive TUSS: the gated model against its ungated network at equal training steps",
        "Improvement: the mean over tasks of the per-task improvement (SI-SDRi; SNRi for MSS). "
        "GMACs: the conditional TSE module's multiply-adds per mixture (gate included), counted.",
        markdown_table(header, rows), verdicts,
        "Anytime curve of the ungated network (mean over seeds; steps: improvement at GMACs): "
        + "; ".join(anytime) + ".",
        level=1,
    )) + "\n"  # fmt: skip


def compute_markdown(results: dict) -> str:
    """A section on what a measured refinement model spends: per task and per prompt the
    improvement, mean steps and the refinement's counted GMACs (TUSS: the conditional TSE module
    and its gate), and the anytime curve (the network without its gate run for ``1 .. n_steps``
    steps). Empty for an unmeasured evaluation."""
    point = operating_point(results)
    if point is None:
        return ""
    kind = "gated: the gate's steps" if results["model"].get("gated") else "ungated: every step"
    header = ["task", "improvement (dB)", "steps", "GMACs / mixture"]
    header += [f"{a['steps']} step(s): dB / GMACs" for a in point["anytime"]]
    rows = []
    for task in point["tasks"]:
        res = results["tasks"][task]
        curve = [f"{a['improvement']:+.2f} / {a['gmacs_per_mixture']:.4f}" for a in res["anytime"]]
        gmacs = f"{res['gmacs_per_mixture']:.4f}"
        rows.append([task, res["improvement"], res["steps_mean"], gmacs, *curve])
    curve = [f"{a['improvement']:+.2f} / {a['gmacs']:.4f}" for a in point["anytime"]]
    rows.append(["mean", point["improvement"], point["steps"], f"{point['gmacs']:.4f}", *curve])
    per_prompt = [
        f"- {task}: " + ", ".join(
            f"{name} {v['mean_improvement']:+.2f} / {v.get('mean_steps', float('nan')):.2f} / "
            f"{v.get('mean_gmacs', float('nan')):.4f}"
            for name, v in results["tasks"][task]["per_prompt"].items()
        )
        for task in point["tasks"]
    ]  # fmt: skip
    return "\n".join(markdown_section(
        "Compute of the refinement (TSE module)",
        f"Multiply-adds of the refinement steps and gate evaluations, counted with "
        f"`torch.utils.flop_counter.FlopCounterMode` per refined sample ({kind}). Average over "
        f"tasks: improvement {point['improvement']:+.2f} dB, {point['steps']:.2f} steps per "
        f"output, {point['gmacs']:.4f} GMACs per mixture.",
        markdown_table(header, rows), "Per prompt (improvement dB, steps, GMACs per output):",
        per_prompt,
    ))  # fmt: skip


def positions_markdown(summary: dict, title: str) -> str:
    """A section with the table of :func:`asteroid_lir.experiment.summaries.position_summary`."""
    header = ["position", "improvement (dB)", "min (dB)", "improved", "level (dB)", "silent"]
    rows = [
        [r["position"], f"{r['mean_improvement']:+.2f}", f"{r['min_improvement']:+.2f}",
         f"{100 * r['fraction_improved']:.0f} %", f"{r['mean_output_db']:.1f}",
         f"{100 * r['fraction_silent']:.0f} %"]
        for r in summary["by_position"]
    ]  # fmt: skip
    last = summary["last"]
    by_class = ", ".join(f"{k} {v:+.2f}" for k, v in last["by_class"].items())
    verdict = "yes" if last["passes"] else "NO"
    return "\n".join(markdown_section(
        title, markdown_table(header, rows),
        f"Last position by class (improvement): {by_class}. "
        f"Passes (improves, not silent): {verdict}.",
    ))  # fmt: skip
