"""Markdown summary of an evaluation (``results.md``), shared by stages 3 and 4."""

from __future__ import annotations

__all__ = ["results_markdown"]


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def results_markdown(results: dict, plots: dict[str, str] | None = None) -> str:
    """Render ``results.json`` (as written by ``eval.py``) as Markdown.

    Args:
        results: the evaluation results.
        plots: optional ``{caption: relative png path}`` to link below the tables.

    Returns:
        str: the Markdown document.
    """
    s = results["summary"]
    lines = [
        f"# Results: {results['tag']}",
        "",
        f"- task: `{results['task']}`, test set: `{results['test_set']}` "
        f"({s['n_utterances']} mixtures, whole utterances)",
        f"- model: `{results['model']['name']}` {results['model']['structure']}, "
        f"{results['model']['parameters'] / 1e6:.3f} M parameters",
        f"- real-time factor: {_fmt(s['rtf'], 4)} ({results['timing']['device']}, "
        f"{results['timing']['threads']} thread(s); compute time / audio duration)",
        "",
        "| metric | value |",
        "|---|---|",
        f"| SI-SDRi mean over speech sources (dB) | **{_fmt(s['si_sdri'])}** |",
    ]
    for k, value in enumerate(s["si_sdri_per_source"]):
        lines.append(f"| SI-SDRi speech source {k + 1} (dB) | {_fmt(value)} |")
    lines += [
        f"| SI-SDR of the mixture (dB) | {_fmt(s['input_si_sdr'])} |",
        f"| SI-SDR of the estimates (dB) | {_fmt(s['output_si_sdr'])} |",
        f"| input SNR, speech to noise (dB) | {_fmt(s['input_snr_mean'])} |",
    ]
    if s.get("steps_mean") is not None:
        lines.append(f"| refinement steps per mixture (mean) | {_fmt(s['steps_mean'])} |")
    lines += [
        "",
        "## SI-SDRi by input-SNR quartile",
        "",
        "| quartile | input SNR range (dB) | mixtures | SI-SDRi (dB) | steps (mean) |",
        "|---|---|---|---|---|",
    ]
    for q in results["quartiles"]:
        lines.append(
            f"| Q{q['quartile']} | {_fmt(q['snr_low'], 1)} .. {_fmt(q['snr_high'], 1)} | "
            f"{q['count']} | {_fmt(q['si_sdri'])} | {_fmt(q.get('steps_mean'))} |"
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
