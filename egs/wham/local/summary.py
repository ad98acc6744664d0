"""Markdown summary of an evaluation (``results.md``), shared by stages 3 and 4."""

from __future__ import annotations

__all__ = ["results_markdown"]


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


#: How the tables name each metric, and its unit.
LABELS = {
    "si_sdr": ("SI-SDR", "dB"),
    "sdr": ("SDR", "dB"),
    "stoi": ("STOI", ""),
    "pesq": ("PESQ", ""),
}


def _label(metric: str) -> tuple[str, str]:
    name, unit = LABELS.get(metric, (metric, ""))
    return name, f" ({unit})" if unit else ""


def results_markdown(results: dict, plots: dict[str, str] | None = None) -> str:
    """Render ``results.json`` (as written by ``eval.py``) as Markdown.

    Args:
        results: the evaluation results.
        plots: optional ``{caption: relative png path}`` to link below the tables.

    Returns:
        str: the Markdown document.
    """
    s = results["summary"]
    model = results["model"]
    metrics = s.get("metrics", ["si_sdr"])
    lines = [
        f"# Results: {results['tag']}",
        "",
        f"- task: `{results['task']}`, test set: `{results['test_set']}` "
        f"({s['n_utterances']} mixtures, whole utterances)",
        f"- model: `{model['name']}` {model['structure'] + ', ' if model['structure'] else ''}"
        f"{model['parameters'] / 1e6:.3f} M parameters",
    ]
    prog = model.get("progressive")
    if prog:
        if prog["complete"]:
            lines.append(f"- progressive training: all {prog['n_steps']} steps completed")
        else:
            lines.append(
                f"- progressive training **stopped during step {prog['steps_completed'] + 1} of "
                f"{prog['n_steps']}**: this is the step-{prog['exported_step']} model (blocks "
                f"1..{prog['exported_blocks']} of {prog['n_steps']})"
            )
    lines += [
        f"- real-time factor: {_fmt(s['rtf'], 4)} ({results['timing']['device']}, "
        f"{results['timing']['threads']} thread(s); compute time / audio duration)",
        "- metrics: `asteroid.metrics.get_metrics` (pb_bss_eval), PIT over the speech sources; "
        "the improvement (i) is the estimate's value minus the mixture's",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for metric in metrics:
        name, unit = _label(metric)
        value = _fmt(s[f"{metric}i"])
        lines.append(
            f"| {name}i mean over speech sources{unit} | "
            + (f"**{value}** |" if metric == "si_sdr" else f"{value} |")
        )
        for k, per_source in enumerate(s[f"{metric}i_per_source"]):
            lines.append(f"| {name}i speech source {k + 1}{unit} | {_fmt(per_source)} |")
        lines.append(f"| {name} of the mixture{unit} | {_fmt(s[f'input_{metric}'])} |")
        lines.append(f"| {name} of the estimates{unit} | {_fmt(s[f'output_{metric}'])} |")
    lines.append(f"| input SNR, speech to noise (dB) | {_fmt(s['input_snr_mean'])} |")
    if s.get("steps_mean") is not None:
        lines.append(f"| refinement steps per mixture (mean) | {_fmt(s['steps_mean'])} |")
    names = [_label(m)[0] + "i" + _label(m)[1] for m in metrics]
    lines += [
        "",
        "## By input-SNR quartile",
        "",
        "| quartile | input SNR range (dB) | mixtures | " + " | ".join(names) + " | steps (mean) |",
        "|---|---|---|" + "---|" * len(names) + "---|",
    ]
    for q in results["quartiles"]:
        values = " | ".join(_fmt(q.get(f"{m}i")) for m in metrics)
        lines.append(
            f"| Q{q['quartile']} | {_fmt(q['snr_low'], 1)} .. {_fmt(q['snr_high'], 1)} | "
            f"{q['count']} | {values} | {_fmt(q.get('steps_mean'))} |"
        )
    if results.get("examples"):
        lines += ["", "## Examples", ""]
        for ex in results["examples"]:
            lines.append(f"- [{ex}]({ex}): mixture, references and estimates (wav)")
    if plots:
        lines += ["", "## Plots", ""]
        for caption, path in plots.items():
            lines += [f"### {caption}", "", f"![{caption}]({path})", ""]
    return "\n".join(lines).rstrip() + "\n"
