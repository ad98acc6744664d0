"""Markdown summary of the unified recipe's results (``results.md``)."""

from __future__ import annotations

__all__ = ["comparison_markdown", "results_markdown"]

_NAMES = {"si_sdr": ("SI-SDR", "SI-SDRi"), "snr": ("SNR", "SNRi")}


def results_markdown(results: dict) -> str:
    """The tables of one model's ``results.json``."""
    lines = [
        f"# {results['model']} ({results['parameters']:,} parameters, {results['sample_rate']} Hz)",
        "",
        f"{results['n_per_task']} test mixtures of {results['mixture_seconds']:g} s per task; "
        f"real-time factor {results.get('real_time_factor', float('nan')):.3f}"
        + (f"; trained {results['training']} steps." if results.get("training") else "."),
        "",
        "| Task | Metric | Mixture (dB) | Estimate (dB) | Improvement (dB) "
        "| Per prompt (improvement) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for task, res in results["tasks"].items():
        if task == "FIVE":
            continue
        metric, imp = _NAMES[res["metric"]]
        per = ", ".join(f"{p} {v['mean_improvement']:+.2f}" for p, v in res["per_prompt"].items())
        lines.append(
            f"| {task} | {metric} / {imp} | {res['input']:.2f} | {res['score']:.2f} | "
            f"{res['improvement']:+.2f} | {per} |"
        )
    five = results["tasks"].get("FIVE")
    if five:
        lines += [
            "",
            "## Five prompts (trained with at most four)",
            "",
            "Speech, sfxbg, bass, vocals and drums (stems of one song), the order rotated per "
            "mixture. SI-SDRi by prompt position; an output under -30 dB relative to the mixture "
            "counts as silent.",
            "",
            "| Position | SI-SDRi (dB) | min (dB) | improved | output level (dB) | silent |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for row in five["five"]["by_position"]:
            lines.append(
                f"| {row['position']} | {row['mean_improvement']:+.2f} | "
                f"{row['min_improvement']:+.2f} | {100 * row['fraction_improved']:.0f} % | "
                f"{row['mean_output_db']:.1f} | {100 * row['fraction_silent']:.0f} % |"
            )
        fifth = five["five"]["fifth"]
        by_class = ", ".join(f"{k} {v:+.2f}" for k, v in fifth["by_class"].items())
        lines += [
            "",
            f"Fifth prompt by class (SI-SDRi): {by_class}. "
            f"Passes (improves, not silent): {'yes' if fifth['passes'] else 'NO'}.",
        ]
    if results.get("skipped"):
        lines += ["", "Skipped: " + "; ".join(f"{k} ({v})" for k, v in results["skipped"].items())]
    return "\n".join(lines) + "\n"


def comparison_markdown(named: dict[str, dict]) -> str:
    """Task improvements of several models side by side (``{label: results}``)."""
    labels = list(named)
    tasks = [t for t in next(iter(named.values()))["tasks"] if t != "FIVE"]
    lines = [
        "| Task | "
        + " | ".join(f"{lab} ({named[lab]['parameters']:,} params)" for lab in labels)
        + " |",
        "|---|" + "---:|" * len(labels),
    ]
    for task in tasks:
        cells = []
        for lab in labels:
            res = named[lab]["tasks"].get(task)
            cells.append(f"{res['improvement']:+.2f}" if res else "-")
        metric = _NAMES[named[labels[0]]["tasks"][task]["metric"]][1]
        lines.append(f"| {task} ({metric}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
