"""Reports of what a refinement model spends: its operating point (improvement, refinement
GMACs and steps per mixture, the anytime curve of its network), the compute section of an
evaluation's ``results.md``, and a gated model against its ungated network at equal training
steps over seeds (issue 26's adaptive TUSS claims).
"""

from __future__ import annotations

import numpy as np

from .report import fmt, markdown_section, markdown_table

__all__ = ["adaptive_comparison", "adaptive_markdown", "compute_markdown", "operating_point"]


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
