"""Reports of evaluated experiments: Markdown tables (the plots next to them are drawn by
:mod:`asteroid_lir.experiment.plots`).

:func:`results_markdown` renders a ``results.json`` of the recipes' evaluation: the model, the
training budget (steps done of planned; a run that a time bound stopped is flagged), the metric
table of one task (``summary``, ``quartiles``) or the table of several tasks (``tasks``, one
metric each, per prompt), examples and plots. What a refinement model spends (GMACs, steps) and
gated models against their ungated networks: :mod:`asteroid_lir.experiment.compute_report`.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = [
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
