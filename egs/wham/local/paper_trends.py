"""The paper's three claims at small scale (issue 15): grid, measurements and report.

``local/paper_trends.sh`` trains every entry of :data:`GRID` through ``run.sh`` under one
wall-time budget per model, then calls this module:

- ``grid``: the entries, one ``tag conf`` line each (the shell script's loop reads it);
- ``write-conf``: the configuration an entry is trained with (its ``conf/trends/`` file with the
  budget written over ``training.max_time_minutes``; for progressive entries, the epochs of each
  step from a timing of that step's training batches on this machine, see
  :func:`progressive_step_epochs`);
- ``measure``: what ``results.json`` does not hold: parameters, compute per second of audio
  (``torch.utils.flop_counter.FlopCounterMode``; per number of steps for the gated model), and
  the memory of one training step (:mod:`asteroid_lir.bench.progressive`'s meter);
- ``report``: :func:`build_report`, a pure function of every entry's ``results.json`` and
  ``measure.json``, rendered as ``report.md`` / ``report.json`` with matplotlib plots.

Usage::

    python local/paper_trends.py grid
    python local/paper_trends.py write-conf --tag TAG --budget_minutes M --out FILE
    python local/paper_trends.py measure --exp_dir exp/paper_trends/TAG --budget_minutes M
    python local/paper_trends.py report --root exp/paper_trends [--out_dir DIR] [--note TEXT]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from local.cli import run_cli  # noqa: E402

RECIPE_DIR = Path(__file__).resolve().parents[1]

#: Grid entries: tag -> configuration (relative to the recipe folder).
GRID = {
    "t1_1x1x1": "conf/trends/t1_1x1x1.yml",
    "t1_1x1x2": "conf/trends/t1_1x1x2.yml",
    "t1_1x1x3": "conf/trends/t1_1x1x3.yml",
    "t1_1x1x4": "conf/trends/t1_1x1x4.yml",
    "t1_1x4x1": "conf/trends/t1_1x4x1.yml",
    "t2_prog_2x2x1": "conf/trends/t2_prog_2x2x1.yml",
    "t2_prog_4x1x1": "conf/trends/t2_prog_4x1x1.yml",
    "gated_1x1x4": "conf/trends/gated_1x1x4.yml",
}
#: Table 1: one U-ConvBlock iterated 1..4 times (equal parameters).
ITERATED = ["t1_1x1x1", "t1_1x1x2", "t1_1x1x3", "t1_1x1x4"]
#: Table 1: iterated model against a conventional one with several times its parameters.
ITERATED_VS_CONVENTIONAL = ("t1_1x1x4", "t1_1x4x1")
#: Table 2: progressive models (2 and 4 blocks) and the end-to-end model of the same graph
#: (four U-ConvBlock applications).
PROGRESSIVE = {2: "t2_prog_2x2x1", 4: "t2_prog_4x1x1"}
END_TO_END = "t1_1x4x1"
#: Fig. 5: the gated model and its ungated baselines (3 and 4 steps).
GATED = "gated_1x1x4"
BASELINES = {3: "t1_1x1x3", 4: "t1_1x1x4"}

#: Pass criteria (dB / ratios), stated in the report.
CRITERIA = {
    # Table 1: the iterated model is within this many dB of the conventional one.
    "iterated_vs_conventional_db": 1.0,
    # Table 2: progressive within this many dB of end to end ...
    "progressive_db": 1.0,
    # ... with at most this fraction of its training-step memory (asteroid_lir.bench.progressive
    # MAX_PEAK_RATIO at the paper's sizes).
    "progressive_memory_ratio": {2: 0.55, 4: 0.35},
    # Fig. 5: Spearman(input SNR, steps) at most this ...
    "spearman_max": -0.3,
    # ... and SI-SDRi within this many dB of the ungated model at the same mean steps.
    "gated_db": 0.5,
}


# ----------------------------------------------------------------------------- statistics
def spearman(x, y) -> float | None:
    """Spearman rank correlation (average ranks for ties); ``None`` if either is constant.

    Args:
        x, y: sequences of the same length (at least 3 values).

    Returns:
        float or None: the correlation, ``None`` when it is undefined.
    """
    from scipy.stats import spearmanr

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.size < 3:
        raise ValueError(
            f"spearman needs two sequences of the same length >= 3, got {x.shape}, {y.shape}."
        )
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(spearmanr(x, y).statistic)


def interpolate_curve(points: dict[float, float], x: float) -> float | None:
    """Piecewise-linear interpolation of ``{x: y}`` at ``x`` (``None`` outside the range)."""
    if not points:
        return None
    xs = sorted(points)
    if x < xs[0] or x > xs[-1]:
        return None
    return float(np.interp(x, xs, [points[k] for k in xs]))


def progressive_step_epochs(
    step_seconds: list[float],
    budget_seconds: float,
    batches_per_epoch: int,
    val_batches: int,
    margin: float = 0.85,
) -> list[int]:
    """Epochs of each progressive step so that each step gets an equal share of the budget.

    One epoch of step k is estimated as ``batches_per_epoch`` training batches plus
    ``val_batches`` validation batches at a third of a training batch's time (forward only),
    from ``step_seconds[k]``, the measured time of one training batch of step k. Only
    ``margin`` of the budget is planned (data loading, logging and the first slow batches are
    not in the timing): the time bound of the run stays the budget's safety net.

    Args:
        step_seconds: seconds of one training batch of each step.
        budget_seconds: wall time of the whole training.
        batches_per_epoch: training batches per epoch.
        val_batches: validation batches per epoch.
        margin: fraction of the budget planned.

    Returns:
        list of int: at least one epoch per step.
    """
    if not step_seconds or min(step_seconds) <= 0 or budget_seconds <= 0:
        raise ValueError(
            f"Need positive step times and budget, got {step_seconds} and {budget_seconds}."
        )
    share = margin * budget_seconds / len(step_seconds)
    epochs = []
    for seconds in step_seconds:
        epoch_s = seconds * (batches_per_epoch + val_batches / 3)
        epochs.append(max(1, int(share // epoch_s)))
    return epochs


# ----------------------------------------------------------------------------- report
def _si(entries: dict, tag: str) -> float | None:
    entry = entries.get(tag)
    return None if entry is None else entry["results"]["summary"]["si_sdri"]


def _model_row(entries: dict, tag: str) -> dict:
    """Common columns of one trained model (``available: False`` when it was not run)."""
    entry = entries.get(tag)
    if entry is None:
        return {"tag": tag, "available": False}
    res, meas = entry["results"], entry.get("measure") or {}
    flops = meas.get("flops_per_second")
    train = meas.get("train_done") or {}
    return {
        "tag": tag,
        "available": True,
        "structure": res["model"].get("structure"),
        "parameters": res["model"]["parameters"],
        "si_sdri": res["summary"]["si_sdri"],
        "sdri": res["summary"].get("sdri"),
        "gflops_per_second": None if flops is None else _flops_value(flops) / 1e9,
        "train_wall_s": train.get("wall_seconds_this_run"),
        # A gated run's own count is its joint phase's: add the pre-training's.
        "train_steps": (
            sum(p.get("global_steps") or 0 for p in train["phases"].values())
            if train.get("phases")
            else train.get("global_steps")
        ),
        "stopped_by_time": train.get("stopped_by_time"),
    }


def _flops_value(flops) -> float:
    # Ungated: one number. Gated: {steps: flops}; the full depth is the comparable figure.
    if isinstance(flops, dict):
        return float(flops[max(flops, key=int)])
    return float(flops)


def _flops_at(measure: dict | None, steps: float) -> float | None:
    """GFLOPs per second of audio of a gated model at a (mean) number of steps, interpolated
    between its measured step counts."""
    flops = (measure or {}).get("flops_per_second")
    if not isinstance(flops, dict):
        return None
    value = interpolate_curve({float(k): v for k, v in flops.items()}, steps)
    return None if value is None else value / 1e9


def table1_section(entries: dict) -> dict:
    """Table 1 trend: more iterations at equal parameters, iterated vs conventional."""
    rows = [_model_row(entries, t) for t in ITERATED + [ITERATED_VS_CONVENTIONAL[1]]]
    claims = []
    si = [_si(entries, t) for t in ("t1_1x1x1", "t1_1x1x2", "t1_1x1x4")]
    if None in si:
        claims.append(_claim("more_iterations", None, "1x1x1, 1x1x2 or 1x1x4 was not run", {}))
    else:
        ok = si[0] < si[1] < si[2]
        steps = [
            _model_row(entries, t)["train_steps"] for t in ("t1_1x1x1", "t1_1x1x2", "t1_1x1x4")
        ]
        why = ""
        if not ok and None not in steps and steps[2] < steps[0]:
            why = (
                f". Likely reason: at equal training wall time an iteration costs a forward and "
                f"backward pass, so the 4-iteration model ran {steps[2]} batches against "
                f"{steps[0]} for 1 iteration ({steps[2] / steps[0]:.0%}); the paper compares "
                "equal epochs, trained to convergence"
            )
        claims.append(
            _claim(
                "more_iterations",
                ok,
                f"SI-SDRi 1x1x1 {si[0]:.2f} dB, 1x1x2 {si[1]:.2f} dB, 1x1x4 {si[2]:.2f} dB "
                f"({'increasing' if ok else 'not increasing'}; same parameters){why}",
                {"si_sdri": dict(zip(("1x1x1", "1x1x2", "1x1x4"), si)), "train_steps": steps},
            )
        )
    it, conv = (_si(entries, t) for t in ITERATED_VS_CONVENTIONAL)
    if it is None or conv is None:
        claims.append(_claim("iterated_vs_conventional", None, "a model was not run", {}))
    else:
        p_it, p_conv = (
            entries[t]["results"]["model"]["parameters"] for t in ITERATED_VS_CONVENTIONAL
        )
        gap = conv - it
        ok = gap <= CRITERIA["iterated_vs_conventional_db"]
        claims.append(
            _claim(
                "iterated_vs_conventional",
                ok,
                f"1x1x4 ({p_it / 1e6:.2f} M) {it:.2f} dB vs 1x4x1 ({p_conv / 1e6:.2f} M, "
                f"{p_conv / p_it:.1f}x the parameters) {conv:.2f} dB: gap {gap:+.2f} dB "
                f"(criterion: at most {CRITERIA['iterated_vs_conventional_db']:g} dB)",
                {"gap_db": gap, "param_ratio": p_conv / p_it},
            )
        )
    return {"rows": rows, "claims": claims}


def table2_section(entries: dict) -> dict:
    """Table 2 trend: progressive (2, 4 blocks) vs end to end, SI-SDRi and training memory."""
    rows = []
    for tag in [END_TO_END, *PROGRESSIVE.values()]:
        row = _model_row(entries, tag)
        if row["available"]:
            meas = entries[tag].get("measure") or {}
            mem = meas.get("train_memory") or {}
            row["train_memory_mib"] = (
                mem["peak_bytes"] / 2**20 if mem.get("peak_bytes") is not None else None
            )
            prog = entries[tag]["results"]["model"].get("progressive")
            row["progressive"] = prog
        rows.append(row)
    by_tag = {r["tag"]: r for r in rows}
    e2e = by_tag[END_TO_END]
    claims = []
    for n_blocks, tag in PROGRESSIVE.items():
        prog = by_tag[tag]
        name = f"progressive_{n_blocks}_blocks"
        if not (prog["available"] and e2e["available"]):
            claims.append(_claim(name, None, f"{tag} or {END_TO_END} was not run", {}))
            continue
        gap = e2e["si_sdri"] - prog["si_sdri"]
        mem_p, mem_e = prog.get("train_memory_mib"), e2e.get("train_memory_mib")
        ratio = None if not (mem_p and mem_e) else mem_p / mem_e
        max_ratio = CRITERIA["progressive_memory_ratio"][n_blocks]
        complete = (prog.get("progressive") or {}).get("complete", True)
        ok = (
            gap <= CRITERIA["progressive_db"]
            and ratio is not None
            and ratio <= max_ratio
            and complete
        )
        text = (
            f"{n_blocks} blocks: SI-SDRi {prog['si_sdri']:.2f} dB vs end to end "
            f"{e2e['si_sdri']:.2f} dB (gap {gap:+.2f} dB, criterion at most "
            f"{CRITERIA['progressive_db']:g} dB); training-step memory "
            + (
                f"{mem_p:.1f} vs {mem_e:.1f} MiB (ratio {ratio:.2f}, "
                f"criterion at most {max_ratio:g})"
                if ratio is not None
                else "not measured"
            )
            + ("" if complete else "; training stopped before the last step")
        )
        if ratio is not None and ratio > max_ratio:
            text += (
                ". Likely reason for the memory: what every step holds whatever its block "
                "(the encoder's and decoder's activations at the mini model's 256 bases, the "
                "parameters, the Adam state and the batch) weighs more against one small "
                "U-ConvBlock (depth 4) than at the paper's sizes"
            )
        claims.append(_claim(name, ok, text, {"gap_db": gap, "memory_ratio": ratio}))
    return {"rows": rows, "claims": claims}


def fig5_section(entries: dict) -> dict:
    """Fig. 5: steps and SI-SDRi per input-SNR quartile of the gated model vs its baselines."""
    gated = entries.get(GATED)
    out: dict = {"available": gated is not None, "claims": []}
    if gated is None:
        out["claims"].append(_claim("gate_adapts", None, f"{GATED} was not run", {}))
        return out
    res = gated["results"]
    utts = res["utterances"]
    snrs = [u["input_snr"] for u in utts]
    steps = [u["steps"] for u in utts]
    finite = [(s, k) for s, k in zip(snrs, steps) if math.isfinite(s)]
    rho = spearman(*zip(*finite)) if len(finite) >= 3 else None
    quartiles = {"gated": res["quartiles"]}
    for n, tag in BASELINES.items():
        if tag in entries:
            quartiles[f"{n} steps"] = entries[tag]["results"]["quartiles"]
    mean_steps = res["summary"]["steps_mean"]
    # Ungated models trained under the same budget, by number of steps (1x1x1 .. 1x1x4).
    curve = {
        float(entries[t]["results"]["model"]["n_steps"]): _si(entries, t)
        for t in ITERATED
        if t in entries
    }
    same_steps = interpolate_curve(curve, mean_steps)
    si = res["summary"]["si_sdri"]
    out.update(
        {
            "spearman_snr_steps": rho,
            "steps_mean": mean_steps,
            "steps_histogram": {
                f"{k:g}": int(sum(1 for s in steps if s == k)) for k in sorted(set(steps))
            },
            "gflops_per_second_at_mean_steps": _flops_at(gated.get("measure"), mean_steps),
            "si_sdri": si,
            "ungated_curve": {str(k): v for k, v in sorted(curve.items())},
            "ungated_si_sdri_at_mean_steps": same_steps,
            "baselines": {str(n): _si(entries, t) for n, t in BASELINES.items()},
            "quartiles": quartiles,
            "row": _model_row(entries, GATED),
        }
    )
    base4 = entries.get(BASELINES[4])
    per_step = ((base4 or {}).get("measure") or {}).get("per_step")
    lam = (gated.get("measure") or {}).get("lambda")
    if per_step and lam is not None:
        out["oracle"] = oracle_section(per_step, lam, (gated.get("measure") or {}).get("per_step"))
    rho_ok = rho is not None and rho <= CRITERIA["spearman_max"]
    si_ok = same_steps is not None and si >= same_steps - CRITERIA["gated_db"]
    rho_text = "undefined (every mixture took the same steps)" if rho is None else f"{rho:+.2f}"
    same_text = "-" if same_steps is None else f"{same_steps:.2f} dB"
    why = []
    oracle_rho = (out.get("oracle") or {}).get("oracle_spearman_snr")
    if not rho_ok and oracle_rho is not None and oracle_rho > CRITERIA["spearman_max"]:
        why.append(
            f"even an oracle gate would not do it: the steps that maximise SI-SDRi - lambda * "
            f"steps for the ungated {BASELINES[4]} have Spearman {oracle_rho:+.2f} with input SNR "
            "(each step's gain does not depend on the input SNR in these models)"
        )
    pre = ((gated.get("measure") or {}).get("train_done") or {}).get("phases", {}).get("pretrain")
    base = _model_row(entries, BASELINES[4]).get("train_steps")
    if not si_ok and pre and base:
        why.append(
            f"the gated network was pre-trained for {pre.get('global_steps')} batches against "
            f"{base} for the 4-step baseline (the joint phase takes a share of the same budget)"
        )
    out["claims"].append(
        _claim(
            "gate_adapts",
            rho_ok and si_ok,
            f"Spearman(input SNR, steps) {rho_text} (criterion at most "
            f"{CRITERIA['spearman_max']:g}); {mean_steps:.2f} steps on average; SI-SDRi "
            f"{si:.2f} dB vs {same_text} for the ungated models at the same mean steps "
            f"(interpolated; criterion: at most {CRITERIA['gated_db']:g} dB below)"
            + ("" if not why else ". Likely reasons: " + "; ".join(why)),
            {"spearman": rho, "si_sdri": si, "ungated_at_mean_steps": same_steps},
        )
    )
    base3 = _si(entries, BASELINES[3])
    if base3 is not None:
        steps3 = _model_row(entries, BASELINES[3]).get("train_steps")
        why3 = ""
        if si <= base3 and pre and steps3:
            why3 = (
                f" with {mean_steps:.2f} steps on average, its network pre-trained for "
                f"{pre.get('global_steps')} batches against {steps3} for the 3-step baseline"
            )
        out["claims"].append(
            _claim(
                "gated_beats_3_steps",
                si > base3,
                f"gated {si:.2f} dB vs 3-step baseline {base3:.2f} dB{why3}",
                {"gated": si, "baseline_3": base3},
            )
        )
    return out


def oracle_steps(per_step: list[dict], lam: float, min_steps: int = 1) -> list[int]:
    """Per mixture, the number of steps ``k >= min_steps`` maximising ``SI-SDRi_k - lam * k``
    (what a perfect gate would choose for the loss ``L_sep + lam * C_hat``)."""
    out = []
    for row in per_step:
        si = np.asarray(row["si_sdri"], dtype=float)
        ks = np.arange(1, si.size + 1)
        score = np.where(ks >= min_steps, si - lam * ks, -np.inf)
        out.append(int(ks[int(np.argmax(score))]))
    return out


def oracle_section(per_step: list[dict], lam: float, gated_rows: list[dict] | None) -> dict:
    """Is there anything for a gate to adapt to? Marginal gain of each step of the ungated
    model against input SNR, the oracle steps for ``lam``, and the trained gate's logits."""
    snr = [r["input_snr"] for r in per_step]
    si = np.array([r["si_sdri"] for r in per_step], dtype=float)  # (n_utt, n_steps)
    gains = {}
    for k in range(1, si.shape[1]):
        g = si[:, k] - si[:, k - 1]
        gains[str(k + 1)] = {
            "mean": float(g.mean()),
            "std": float(g.std()),
            "share_above_lambda": float((g > lam).mean()),
            "spearman_snr": spearman(snr, g),
        }
    oracle = oracle_steps(per_step, lam)
    out = {
        "lambda": lam,
        "marginal_gain": gains,
        "oracle_steps_mean": float(np.mean(oracle)),
        "oracle_spearman_snr": spearman(snr, oracle),
        "oracle_histogram": {str(k): oracle.count(k) for k in sorted(set(oracle))},
    }
    if gated_rows:
        logits = {}
        for step in gated_rows[0]["gate_logit"]:
            v = [r["gate_logit"][step] for r in gated_rows]
            logits[step] = {
                "mean": float(np.mean(v)),
                "std": float(np.std(v)),
                "spearman_snr": spearman([r["input_snr"] for r in gated_rows], v),
            }
        out["gate_logits"] = logits
    return out


def _claim(name: str, ok: bool | None, text: str, numbers: dict) -> dict:
    verdict = "not run" if ok is None else ("reproduced" if ok else "not reproduced")
    return {"name": name, "verdict": verdict, "text": text, "numbers": numbers}


def build_report(entries: dict, meta: dict | None = None) -> dict:
    """The report as data: one section per claim, each claim with its verdict and numbers.

    Args:
        entries: ``{tag: {"results": results.json, "measure": measure.json or None}}`` of the
            grid entries that were run (missing tags are reported as not run).
        meta: free information carried into the report (command, wall time, machine, notes).

    Returns:
        dict: ``table1``, ``table2``, ``fig5``, ``meta`` and ``criteria``.
    """
    return {
        "meta": dict(meta or {}),
        "criteria": CRITERIA,
        "table1": table1_section(entries),
        "table2": table2_section(entries),
        "fig5": fig5_section(entries),
    }


# ----------------------------------------------------------------------------- markdown
def _f(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _claims_md(claims: list[dict]) -> list[str]:
    return [f"- **{c['verdict']}** ({c['name']}): {c['text']}" for c in claims]


def report_markdown(report: dict, plots: dict[str, str] | None = None) -> str:
    """Render :func:`build_report`'s output as Markdown (``plots``: caption -> png path)."""
    plots = plots or {}
    meta = report["meta"]
    lines = ["# The paper's three claims at small scale", ""]
    if meta.get("summary"):
        lines += [meta["summary"], ""]
    lines += [
        "| claim | verdict |",
        "|---|---|",
        *(
            f"| {section}: {c['name']} | {c['verdict']} |"
            for section in ("table1", "table2", "fig5")
            for c in report[section]["claims"]
        ),
        "",
    ]
    t1 = report["table1"]
    lines += [
        "## 1. Table 1 trend: iterations at equal parameters",
        "",
        "| model | structure | parameters (M) | GFLOPs / s of audio | training steps | "
        "SI-SDRi (dB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in t1["rows"]:
        if not r["available"]:
            lines.append(f"| {r['tag']} | not run | | | | |")
            continue
        lines.append(
            f"| {r['tag']} | {r['structure']} | {r['parameters'] / 1e6:.3f} | "
            f"{_f(r['gflops_per_second'])} | {_f(r['train_steps'])} | {_f(r['si_sdri'])} |"
        )
    lines += ["", *_claims_md(t1["claims"]), ""]
    t2 = report["table2"]
    lines += [
        "## 2. Table 2 trend: progressive vs end-to-end training",
        "",
        "| model | structure | parameters (M) | training-step memory (MiB) | training steps | "
        "SI-SDRi (dB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in t2["rows"]:
        if not r["available"]:
            lines.append(f"| {r['tag']} | not run | | | | |")
            continue
        prog = r.get("progressive")
        note = "" if not prog else f" (progressive, step {prog['exported_step']}/{prog['n_steps']})"
        lines.append(
            f"| {r['tag']} | {r['structure']}{note} | {r['parameters'] / 1e6:.3f} | "
            f"{_f(r.get('train_memory_mib'), 1)} | {_f(r['train_steps'])} | {_f(r['si_sdri'])} |"
        )
    if meta.get("memory_note"):
        lines += ["", meta["memory_note"]]
    lines += ["", *_claims_md(t2["claims"]), ""]
    f5 = report["fig5"]
    lines += ["## 3. Fig. 5: adaptive early exit", ""]
    if f5["available"]:
        names = list(f5["quartiles"])
        lines += [
            "| quartile | input SNR (dB) | mixtures | gated steps | "
            + " | ".join(f"SI-SDRi {n} (dB)" for n in names)
            + " |",
            "|---|---|---|---|" + "---|" * len(names),
        ]
        for i, q in enumerate(f5["quartiles"]["gated"]):
            vals = " | ".join(_f(f5["quartiles"][n][i]["si_sdri"]) for n in names)
            lines.append(
                f"| Q{q['quartile']} | {q['snr_low']:.1f} .. {q['snr_high']:.1f} | {q['count']} | "
                f"{_f(q['steps_mean'])} | {vals} |"
            )
        curve = ", ".join(f"{k} steps {_f(v)} dB" for k, v in f5["ungated_curve"].items())
        lines += [
            "",
            f"- mean steps {_f(f5['steps_mean'])}, histogram {f5['steps_histogram']}, "
            f"Spearman(input SNR, steps) {_f(f5['spearman_snr_steps'])}; compute at the mean "
            f"steps {_f(f5['gflops_per_second_at_mean_steps'], 3)} GFLOPs per second of audio, "
            f"{_f(f5['row'].get('train_steps'))} training batches (pre-training and joint)",
            f"- ungated models of the same budget: {curve}",
        ]
    oracle = f5.get("oracle")
    if oracle:
        lines += [
            "",
            f"Is there anything to adapt to? The ungated 4-step model ({BASELINES[4]}), per test "
            f"mixture, step by step (lambda = {oracle['lambda']:g} dB per step):",
            "",
            "| step | mean gain (dB) | std (dB) | share of mixtures gaining > lambda | "
            "Spearman(input SNR, gain) |",
            "|---|---|---|---|---|",
        ]
        for k, g in oracle["marginal_gain"].items():
            lines.append(
                f"| {k} | {_f(g['mean'])} | {_f(g['std'])} | {_f(g['share_above_lambda'])} | "
                f"{_f(g['spearman_snr'])} |"
            )
        lines += [
            "",
            f"- oracle steps (maximising SI-SDRi - lambda * steps): mean "
            f"{_f(oracle['oracle_steps_mean'])}, histogram {oracle['oracle_histogram']}, "
            f"Spearman(input SNR, oracle steps) {_f(oracle['oracle_spearman_snr'])}",
        ]
        for step, g in (oracle.get("gate_logits") or {}).items():
            lines.append(
                f"- trained gate before step {int(step) + 1}: logit(process) - logit(exit) mean "
                f"{_f(g['mean'])}, std over mixtures {_f(g['std'])}, Spearman(input SNR, logit) "
                f"{_f(g['spearman_snr'])}"
            )
    lines += ["", *_claims_md(f5["claims"]), ""]
    if meta.get("gate_investigation"):
        lines += [
            "## Why the gate does (not) adapt: measurements",
            "",
            meta["gate_investigation"],
            "",
        ]
    if plots:
        lines += ["## Plots", ""] + [f"![{cap}]({path})" for cap, path in plots.items()] + [""]
    lines += ["## Run", ""]
    for key in ("command", "wall_time", "machine", "budget", "notes"):
        if meta.get(key):
            lines.append(f"- {key.replace('_', ' ')}: {meta[key]}")
    lines.append("- criteria: " + ", ".join(f"{k} = {v}" for k, v in report["criteria"].items()))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- plots
def write_plots(report: dict, out_dir: Path) -> dict[str, str]:
    """Matplotlib PNGs of the three sections; returns ``{caption: file name}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = {}
    rows = [r for r in report["table1"]["rows"] if r["available"]]
    if rows:
        fig, ax = plt.subplots(figsize=(6, 4))
        for r in rows:
            x = r["gflops_per_second"] or 0.0
            ax.scatter(x, r["si_sdri"], s=20 + r["parameters"] / 2e4)
            ax.annotate(r["tag"].removeprefix("t1_"), (x, r["si_sdri"]), fontsize=8)
        ax.set_xlabel("GFLOPs per second of audio")
        ax.set_ylabel("SI-SDRi (dB)")
        ax.set_title("Table 1 trend (marker area ~ parameters)")
        fig.tight_layout()
        fig.savefig(out_dir / "table1.png", dpi=100)
        plt.close(fig)
        plots["Table 1 trend"] = "table1.png"
    rows = [r for r in report["table2"]["rows"] if r["available"]]
    if rows:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.5))
        labels = [r["tag"].removeprefix("t1_").removeprefix("t2_") for r in rows]
        a1.bar(labels, [r["si_sdri"] for r in rows], color="tab:blue")
        a1.set_ylabel("SI-SDRi (dB)")
        a2.bar(labels, [r.get("train_memory_mib") or 0 for r in rows], color="tab:orange")
        a2.set_ylabel("training-step memory (MiB)")
        for a in (a1, a2):
            a.tick_params(axis="x", labelsize=7)
        fig.suptitle("Table 2 trend: progressive vs end to end")
        fig.tight_layout()
        fig.savefig(out_dir / "table2.png", dpi=100)
        plt.close(fig)
        plots["Table 2 trend"] = "table2.png"
    f5 = report["fig5"]
    if f5["available"]:
        fig, ax = plt.subplots(figsize=(7, 4))
        q_gated = f5["quartiles"]["gated"]
        labels = [f"Q{q['quartile']}\n{q['snr_low']:.1f}..{q['snr_high']:.1f}" for q in q_gated]
        names = list(f5["quartiles"])
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            xs = np.arange(len(labels)) + (i - (len(names) - 1) / 2) * width
            vals = [q["si_sdri"] or 0 for q in f5["quartiles"][name]]
            ax.bar(xs, vals, width, label=name)
        ax.set_xticks(np.arange(len(labels)), labels)
        ax.set_xlabel("input SNR quartile (dB)")
        ax.set_ylabel("SI-SDRi (dB)")
        twin = ax.twinx()
        twin.plot(np.arange(len(labels)), [q["steps_mean"] for q in q_gated], "ko-")
        twin.set_ylabel("gated: steps (mean)")
        twin.set_ylim(0, 4.5)
        ax.legend(loc="lower left", fontsize=8)
        ax.set_title(f"Fig. 5 trend (Spearman SNR/steps {_f(f5['spearman_snr_steps'])})")
        fig.tight_layout()
        fig.savefig(out_dir / "fig5.png", dpi=100)
        plt.close(fig)
        plots["Fig. 5 trend"] = "fig5.png"
    return plots


# ----------------------------------------------------------------------------- measuring
def _load_conf(path: Path) -> dict:
    from local.config import load_config

    return load_config(str(path), [])


def flops_per_second(model, sample_rate: int, n_steps: int | None = None) -> float:
    """FLOPs of separating one second of audio (batch 1), ``FlopCounterMode``'s count."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    wav = torch.randn(1, sample_rate, generator=torch.Generator().manual_seed(0))
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        if n_steps is None:
            model(wav)
        else:
            model(wav, n_steps)
    return float(counter.get_total_flops())


def train_memory(conf: dict) -> dict:
    """Memory of one training step of ``conf``'s model at its batch and chunk sizes (CPU:
    parameters, Adam state, batch, saved activations and gradients, as counted by
    :class:`asteroid_lir.bench.progressive.TrainingMemoryMeter`; maximum over progressive
    steps)."""
    mode = "progressive" if conf["training"]["mode"] == "progressive" else "end_to_end"
    sizes, builders = _step_runners(conf, mode, int(conf["model"]["n_src"]))
    peaks = [b().measure_peak("cpu")["peak_bytes"] for b in builders]
    return {
        "peak_bytes": max(peaks),
        "per_step_peak_bytes": peaks,
        "batch": sizes["batch"],
        "seconds": sizes["seconds"],
    }


def _step_runners(conf: dict, mode: str, n_src: int) -> tuple[dict, list]:
    """The bench's training-step runners (one per progressive step) for ``conf``'s model at its
    batch and chunk sizes, on a fixed random batch: ``(sizes, builders)``."""
    import torch

    from asteroid_lir.bench.progressive import build_step_runners

    m, train = conf["model"], conf["training"]
    sizes = {
        "model": {k: m[k] for k in ("n_filters", "bn_chan", "upsampling_depth")},
        "batch": int(train["batch_size"]),
        "seconds": float(conf["data"]["segment"]),
        "n_src": n_src,
    }
    n = int(sizes["seconds"] * conf["data"]["sample_rate"])
    targets = torch.randn(sizes["batch"], n_src, n, generator=torch.Generator().manual_seed(0))
    structure = (int(m["n_blocks"]), int(m["n_sub_blocks"]), int(m["n_iters"]), mode)
    return sizes, build_step_runners(structure, sizes, (targets.sum(1), targets), "cpu")


def per_step_scores(model, meta_dir: Path, task: str, max_utterances: int | None = None) -> list:
    """SI-SDRi of every test mixture after each refinement step, and the gate's logits.

    An ungated model is decoded after every step (``forward_steps``); a gated one is run with
    ``force_steps=k`` for every ``k`` (the gate is deterministic in eval mode), and the gate's
    ``process - exit`` logit difference on ``z_k`` is recorded for every gated step ``k``.
    The scoring is ``eval.py``'s (PIT over the speech sources, SI-SDR only).

    Returns:
        list of dict: per mixture ``id``, ``input_snr``, ``si_sdri`` (one value per number of
        steps ``1..n_steps``, mean over speakers) and, for a gated model, ``gate_logit``
        (``{step: logit difference}``) and ``steps`` (what the gate chose).
    """
    import importlib.util

    import torch

    from asteroid_lir.data import WhamDataset

    spec = importlib.util.spec_from_file_location("wham_eval", RECIPE_DIR / "eval.py")
    wham_eval = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wham_eval)
    sample_rate = int(model.sample_rate)
    dataset = WhamDataset(
        str(meta_dir / "tt.json"),
        task=task,
        segment=None,
        sample_rate=sample_rate,
        return_noise=True,
        return_id=True,
    )
    n_utt = min(len(dataset), max_utterances or len(dataset))
    gated = getattr(model.refiner, "gated", False)
    refiner = model.refiner
    rows = []
    model.eval()
    with torch.inference_mode():
        for i in range(n_utt):
            mix, targets, _ = dataset[i]
            speech, noise = targets[: dataset.n_speech], targets[dataset.n_speech]
            wav = mix[None]
            if gated:
                ests = [model(wav, k) for k in range(1, model.n_steps + 1)]
            else:
                ests = model.forward_steps(wav)
            si = []
            for est in ests:
                scores, _ = wham_eval.score_utterance(mix, speech, est[0], sample_rate, ("si_sdr",))
                si.append(float(np.mean(scores["si_sdri"])))
            row = {
                "id": str(dataset.entries[i]["id"]),
                "input_snr": wham_eval.snr_db(speech.sum(0), noise),
                "si_sdri": si,
            }
            if gated:
                _, z = model.encode(wav)
                logits = {}
                for step, block_idx in enumerate(refiner.step_schedule()):
                    if step >= refiner.min_steps:
                        out = refiner.gate(z)[0]
                        logits[str(step)] = float(out[1] - out[0])
                    z = refiner.refine(z, block_idx)
                row["gate_logit"] = logits
                row["steps"] = int(model.forward_with_steps(wav)[1][0])
            rows.append(row)
    return rows


def measure(exp_dir: Path, meta_dir: Path | None = None, task: str = "sep_noisy") -> dict:
    """``measure.json`` of a trained entry: parameters, FLOPs, training memory, training, and
    (with ``meta_dir``, for iterated or gated models) the per-step scores of the test set."""
    from local.models import load_model

    conf = _load_conf(exp_dir / "conf.yml")
    model, _ = load_model(exp_dir / "best_model.pth")
    sr = int(conf["data"]["sample_rate"])
    out: dict = {"parameters": int(sum(p.numel() for p in model.parameters()))}
    if getattr(model.refiner, "gated", False):
        lo = model.refiner.min_steps
        out["flops_per_second"] = {
            str(k): flops_per_second(model, sr, k) for k in range(lo, model.n_steps + 1)
        }
        out["train_memory"] = None
    else:
        out["flops_per_second"] = flops_per_second(model, sr)
        out["train_memory"] = train_memory(conf)
    if meta_dir is not None and (out["train_memory"] is None or model.n_steps > 1):
        if not getattr(model.refiner, "head_per_block", False):
            out["per_step"] = per_step_scores(model, meta_dir, task)
    gated_conf = conf.get("gated") or {}
    if "lambda" in gated_conf:
        out["lambda"] = float(gated_conf["lambda"])
    done = exp_dir / "train_done.json"
    out["train_done"] = json.loads(done.read_text()) if done.is_file() else None
    return out


def write_conf(tag: str, budget_minutes: float, out: Path, threads: int) -> None:
    """Write the configuration of one grid entry, bounded by ``budget_minutes``."""
    import yaml

    if tag not in GRID:
        raise ValueError(f"Unknown grid entry {tag!r}; known: {list(GRID)}.")
    source = RECIPE_DIR / GRID[tag]
    conf = _load_conf(source)
    extra: dict = {"training": {"max_time_minutes": float(budget_minutes)}}
    if conf["training"]["mode"] == "progressive":
        epochs = progressive_step_epochs(
            _time_progressive_steps(conf, threads),
            budget_minutes * 60,
            int(conf["training"]["limit_train_batches"]),
            val_batches=math.ceil(conf["data"]["mini"]["n_valid"] / conf["training"]["batch_size"]),
        )
        # The epochs decide; the time bound (10 % over the budget) is only a safety net.
        extra["training"].update(
            epochs=sum(epochs), max_time_minutes=round(1.1 * budget_minutes, 2)
        )
        extra["progressive"] = {"epochs_per_step": epochs}
    out.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(
        {"defaults": os.path.relpath(source, out.parent), **extra}, sort_keys=False
    )
    out.write_text(f"# Written by local/paper_trends.py write-conf ({tag}).\n{text}")


def _time_progressive_steps(conf: dict, threads: int) -> list[float]:
    """Seconds of one training batch of each progressive step (median of 3 after a warm-up)."""
    import time

    import torch

    torch.set_num_threads(threads)
    times = []
    for build in _step_runners(conf, "progressive", n_src=3)[1]:
        runner = build()
        runner.train_step()
        laps = []
        for _ in range(3):
            start = time.perf_counter()
            runner.train_step()
            laps.append(time.perf_counter() - start)
        times.append(float(np.median(laps)))
    return times


def load_entries(root: Path) -> dict:
    """``{tag: {"results": ..., "measure": ...}}`` of the grid entries evaluated under ``root``."""
    entries = {}
    for tag in GRID:
        res = root / tag / "results.json"
        if res.is_file():
            meas = root / tag / "measure.json"
            entries[tag] = {
                "results": json.loads(res.read_text()),
                "measure": json.loads(meas.read_text()) if meas.is_file() else None,
            }
    return entries


def run_meta(args: argparse.Namespace) -> dict:
    """The report's closing note from the command line of ``report``."""
    meta: dict = {"memory_note": MEMORY_NOTE}
    if args.command:
        meta["command"] = f"`{args.command}`"
    if args.wall_seconds is not None:
        wall = int(args.wall_seconds)
        meta["wall_time"] = f"{wall // 60} min {wall % 60} s (the whole grid)"
    if args.machine:
        meta["machine"] = args.machine
    if args.budget_minutes is not None:
        together = (
            "two trainings at a time, each with one thread (every model under the same conditions)"
            if args.parallel == 2
            else "one training at a time"
        )
        meta["budget"] = (
            f"{args.budget_minutes:g} min of training wall time per model ({together}"
            + (f", {args.threads} thread(s) each" if args.threads and args.parallel == 1 else "")
            + "); progressive models: epochs per step from a timing of each step, "
            "the time bound 10 % above the budget as a safety net"
        )
    if args.notes:
        meta["gate_investigation"] = Path(args.notes).read_text().strip()
    return meta


#: What the memory column measures (on CPU).
MEMORY_NOTE = (
    "Training-step memory: one training step (forward, backward, Adam step) at the training "
    "batch and chunk sizes, measured by `asteroid_lir.bench.progressive`'s "
    "`TrainingMemoryMeter` on CPU: parameters + Adam state + batch + activations saved for "
    "backward (deduplicated by storage) + gradients, maximum over the step; for progressive "
    "models the maximum over the training steps k = 1..N (frozen prefix under no_grad). On a "
    "GPU (`--id`) the same rows would come from `torch.cuda.max_memory_allocated` through the "
    "bench; here the CPU meter is used."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("grid")
    p = sub.add_parser("write-conf")
    p.add_argument("--tag", required=True)
    p.add_argument("--budget_minutes", type=float, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=1)
    p = sub.add_parser("measure")
    p.add_argument("--exp_dir", required=True)
    p.add_argument("--meta_dir", default=None, help="test metadata: per-step scores")
    p.add_argument("--task", default="sep_noisy")
    p = sub.add_parser("report")
    p.add_argument("--root", required=True)
    p.add_argument("--out_dir", default=None)
    p.add_argument("--command", default=None, help="the command that ran the grid")
    p.add_argument("--wall_seconds", type=float, default=None, help="its wall time")
    p.add_argument("--machine", default=None, help="where it ran")
    p.add_argument("--budget_minutes", type=float, default=None)
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--notes", default=None, help="Markdown file: the gate investigation")
    args = parser.parse_args(argv)
    if args.cmd == "grid":
        for tag, conf in GRID.items():
            print(tag, conf)
    elif args.cmd == "write-conf":
        write_conf(args.tag, args.budget_minutes, Path(args.out), args.threads)
    elif args.cmd == "measure":
        exp_dir = Path(args.exp_dir)
        meta_dir = Path(args.meta_dir) if args.meta_dir else None
        result = measure(exp_dir, meta_dir, args.task)
        (exp_dir / "measure.json").write_text(json.dumps(result, indent=2) + "\n")
    else:
        root = Path(args.root)
        out_dir = Path(args.out_dir) if args.out_dir else root
        out_dir.mkdir(parents=True, exist_ok=True)
        meta = run_meta(args)
        report = build_report(load_entries(root), meta)
        plots = write_plots(report, out_dir)
        (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        (out_dir / "report.md").write_text(report_markdown(report, plots))
        for section in ("table1", "table2", "fig5"):
            for claim in report[section]["claims"]:
                print(f"[report] {claim['verdict']}: {claim['name']}: {claim['text']}")
        print(f"[report] Wrote {out_dir / 'report.md'}")
    return 0


if __name__ == "__main__":
    run_cli(main)
