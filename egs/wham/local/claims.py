"""The paper's claims on the grid of ``conf/grids/paper.yml`` (run by ``utils/run_grid.sh``).

- ``measure --exp_dir DIR``: what ``results.json`` does not hold (``measure.json``): FLOPs per
  second of audio (per number of steps for refinement models), the memory of one training step
  and, for iterated or gated models, the SI-SDRi of every test mixture after each step (the
  anytime curve and the oracle gate's data); for gated models also the gate's logits on the
  validation mixtures (what calibrates the budgeted gate's exit margin).
- ``report --grid FILE --root DIR``: Table 1, Table 2 and Fig. 5 with every claim marked
  reproduced or not, from the seeds' results (:mod:`asteroid_lir.experiment.stats`: a claim of
  "better" holds only beyond the seeds' spread); ``report.md``, ``report.json`` and plots.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from asteroid_lir.experiment import stats
from asteroid_lir.experiment.claims import claim, claims_main, mean_std, section
from asteroid_lir.experiment.cli import run_stage
from asteroid_lir.experiment.config import load_config
from asteroid_lir.experiment.plots import bar_chart, seed_bar_chart
from asteroid_lir.experiment.report import fmt

ITERATED = ["t1_1x1x1", "t1_1x1x2", "t1_1x1x4"]  # equal parameters, 1-4 iterations
CONVENTIONAL = ("t1_1x1x4", "t1_1x4x1")  # iterated vs 4x its parameters
END_TO_END, PROGRESSIVE = "t1_1x4x1", {2: "t2_prog_2x2x1", 4: "t2_prog_4x1x1"}
#: Fig. 5 per regime (task; the corpus' input-SNR range when it is not WHAM!'s; the step loss
#: when it is not the last step's):
#: (gated entry, its ungated network, the 3-step baseline).
GATED = {
    "sep_noisy": ("gated_1x1x4", "t1_1x1x4", "t1_1x1x3"),
    "enh_single": ("enh_gated_1x1x4", "enh_1x1x4", None),
    "enh_single_snr-10to20": ("enhw_gated_1x1x4", "enhw_1x1x4", None),
    "enh_single_snr-10to20_step_loss-every": ("enhwe_gated_1x1x4", "enhwe_1x1x4", None),
    "sep_noisy_step_loss-every": ("sepe_gated_1x1x4", "sepe_1x1x4", None),
    "enh_single_snr-10to20_lambda-1": ("enhwl_gated_1x1x4", "enhw_1x1x4", None),
    "enh_single_snr-4to16_step_loss-every": ("enhwn_gated_1x1x4", "enhwn_1x1x4", None),
    "enh_single_snr-4to16_step_loss-every_frozen": ("enhwnf_gated_1x1x4", "enhwn_1x1x4", None),
}
CRITERIA = {
    "conventional_db": 1.0,
    "progressive_db": 1.0,
    "memory_ratio": {2: 0.55, 4: 0.35},
    "spearman_max": -0.3,
    "gated_db": 0.5,
}
#: Mean steps of the budgeted gate (``budget_gate``): the paper's gate took 3.6 of 4 (Sec. 4.3).
BUDGET = 3.6
PAPER_MEMORY = "asteroid_lir/bench/results/sudormrf_earlyexit_progressive.json"
GATED_CONF = Path(__file__).resolve().parents[1] / "conf" / "trends" / "gated_1x1x4.yml"


def measure(exp_dir: Path) -> dict:
    """``measure.json`` of one trained run (see the module docstring)."""
    import torch

    from asteroid_lir.experiment import measure as meter
    from asteroid_lir.experiment.evaluation import speech_items
    from asteroid_lir.experiment.registry import load_model

    torch.set_num_threads(1)
    conf = yaml.safe_load((exp_dir / "conf.yml").read_text())
    results = json.loads((exp_dir / "results.json").read_text())
    model, _ = load_model(exp_dir)
    rate, refiner, training = int(conf["data"]["sample_rate"]), model.refiner, conf["training"]
    steps = range(1, model.n_steps + 1)
    out: dict = {
        "flops_per_second": {str(k): meter.flops_per_second(model, rate, k) for k in steps}
    }
    if not refiner.gated:
        out["train_memory"] = meter.sudormrf_train_memory(
            conf["model"], training["batch_size"], conf["data"]["segment"], rate,
            training["mode"] == "progressive",
        )  # fmt: skip
    if model.n_steps > 1 and not refiner.head_per_block:
        items = speech_items(results["test_set"], results["task"], rate)
        out["anytime"] = meter.anytime_scores(model, items, rate)
    if refiner.gated:  # what calibrates an exit margin (the report's budgeted gate)
        valid = Path(results["test_set"]).with_name("cv.json")
        out["valid_gate_logit"] = meter.gate_logit_rows(
            model, speech_items(valid, results["task"], rate)
        )
    return out


def _seeds(runs: dict, entry: str) -> list[float]:
    return [r["results"]["summary"]["si_sdri"] for r in runs.get(entry, [])]


def _summary(runs: dict, entry: str) -> dict:
    return stats.seed_summary(_seeds(runs, entry))


def _row(runs: dict, entry: str) -> list:
    if not runs.get(entry):
        return [entry, "not run", None, None, None, None]
    first, s = runs[entry][0], _summary(runs, entry)
    model = first["results"]["model"]
    flops = (first.get("measure") or {}).get("flops_per_second") or {}
    gmacs = flops[max(flops, key=int)] / 2e9 if flops else None
    return [entry, model["structure"], model["parameters"] / 1e6, gmacs, mean_std(s), s["n"]]


def table1(runs: dict) -> dict:
    claims = []
    if all(runs.get(e) for e in ITERATED):
        steps = zip(ITERATED, ITERATED[1:])
        pairs = [stats.compare(_seeds(runs, b), _seeds(runs, a)) for a, b in steps]
        means = " / ".join(f"{_summary(runs, e)['mean']:.2f}" for e in ITERATED)
        ok = all(p["beyond_spread"] for p in pairs)
        diffs = ", ".join(f"{p['diff']:+.2f} dB" for p in pairs)
        verdict = (
            "each step up beyond the seeds' spread"
            if ok
            else f"not every step up is beyond the seeds' spread ({diffs})"
        )
        text = f"1x1x1 / 1x1x2 / 1x1x4: {means} dB; {verdict}"
        claims.append(claim("more_iterations", ok, text, {"pairs": pairs}))
    else:
        claims.append(claim("more_iterations", None, "an iterated model was not run"))
    if all(runs.get(e) for e in CONVENTIONAL):
        it, conv = (_summary(runs, e) for e in CONVENTIONAL)
        gap, limit = conv["mean"] - it["mean"], CRITERIA["conventional_db"]
        text = (
            f"1x1x4 {mean_std(it)} dB vs 1x4x1 (4x the U-ConvBlock parameters) {mean_std(conv)} "
            f"dB: gap {gap:+.2f} dB (criterion: at most {limit:g} dB)"
        )
        claims.append(claim("iterated_vs_conventional", gap <= limit, text, {"gap_db": gap}))
    rows = [_row(runs, e) for e in [*ITERATED[:2], "t1_1x1x3", ITERATED[2], CONVENTIONAL[1]]]
    return {"rows": rows, "claims": claims}


def _memory(runs: dict, entry: str) -> float | None:
    mem = [(r.get("measure") or {}).get("train_memory") for r in runs.get(entry, [])]
    return mem[0]["peak_bytes"] / 2**20 if mem and mem[0] else None


def table2(runs: dict, repo: Path) -> dict:
    claims, rows = [], [_row(runs, END_TO_END) + [_memory(runs, END_TO_END)]]
    bench = json.loads((repo / PAPER_MEMORY).read_text()) if (repo / PAPER_MEMORY).is_file() else {}
    rows_at_paper_sizes = bench.get("benchmarks", {}).get("progressive", {}).get("rows", [])
    paper = {r["config"]: r["peak_vs_end_to_end"] for r in rows_at_paper_sizes}
    for n, entry in PROGRESSIVE.items():
        rows.append(_row(runs, entry) + [_memory(runs, entry)])
        if not (runs.get(entry) and runs.get(END_TO_END)):
            claims.append(claim(f"progressive_{n}_blocks", None, "a model was not run"))
            continue
        prog, e2e = _summary(runs, entry), _summary(runs, END_TO_END)
        mem, mem_e2e = _memory(runs, entry), _memory(runs, END_TO_END)
        ratio = mem / mem_e2e if mem and mem_e2e else None
        gap, limit = e2e["mean"] - prog["mean"], CRITERIA["memory_ratio"][n]
        ok = gap <= CRITERIA["progressive_db"] and ratio is not None and ratio <= limit
        text = (
            f"{n} blocks {mean_std(prog)} dB vs end to end {mean_std(e2e)} dB (gap {gap:+.2f} dB, "
            f"criterion at most {CRITERIA['progressive_db']:g}); training-step memory at the "
            f"grid's sizes {fmt(ratio)} of end to end (criterion at most {limit:g})"
        )
        claims.append(
            claim(f"progressive_{n}_blocks", ok, text, {"gap_db": gap, "memory_ratio": ratio})
        )
    return {"rows": rows, "claims": claims, "paper_sizes_memory_ratio": paper}


def _anytime_rows(runs: dict, entry: str) -> list[tuple[dict, list[dict]]]:
    """``(run, its per-mixture anytime rows)`` of every seed of ``entry`` measured so."""
    return [(r, r["measure"]["anytime"]) for r in runs.get(entry, [])
            if (r.get("measure") or {}).get("anytime")]  # fmt: skip


def _anytime_curve(runs: dict, entry: str) -> list[float] | None:
    curves = [np.mean([u["scores"] for u in rows], axis=0)
              for _, rows in _anytime_rows(runs, entry)]  # fmt: skip
    return [float(v) for v in np.mean(curves, axis=0)] if curves else None


def _anytime_by_quartile(runs: dict, entry: str) -> list[dict] | None:
    """The ungated network's SI-SDRi after each step in each input-SNR quartile (and the
    quartile's mean input SNR), mean over the seeds (the same test mixtures)."""
    from asteroid_lir.experiment.summaries import quartile_table

    per_seed, keys = [], []
    for _, rows in _anytime_rows(runs, entry):
        scores = np.array([u["scores"] for u in rows])
        snr = np.array([u["input_snr"] for u in rows], dtype=float)
        keys = ["input_snr", *(str(k + 1) for k in range(scores.shape[1]))]
        values = dict(zip(keys, [snr, *scores.T]))
        per_seed.append(quartile_table(snr, values, None))
    if not per_seed:
        return None
    return [{key: float(np.mean([seed[q][key] for seed in per_seed])) for key in keys}
            for q in range(4)]  # fmt: skip


def _oracle_of(scores: np.ndarray, snr: list[float], lam: float) -> dict:
    # Per mixture the steps that maximise score - lam * steps: their mean and their rank
    # correlation with the input SNR.
    steps = stats.oracle_steps(scores, lam)
    return {"oracle_steps_mean": float(steps.mean()),
            "spearman_snr_oracle_steps": stats.spearman(snr, steps)}  # fmt: skip


def oracle(runs: dict, entry: str, lam: float) -> dict | None:
    """Would a perfect gate adapt? Per seed of the ungated network: the oracle's steps and their
    rank correlation with the input SNR, and what each step brings."""
    per_seed = []
    for r, rows in _anytime_rows(runs, entry):
        scores, snr = np.array([u["scores"] for u in rows]), [u["input_snr"] for u in rows]
        per_seed.append({
            "seed": r["seed"],
            **_oracle_of(scores, snr, lam),
            "marginal_gains": stats.marginal_gains(scores, snr, lam),
        })  # fmt: skip
    return {"lambda": lam, "seeds": per_seed} if per_seed else None


def gate_diagnostics(runs: dict, gated: str, lam: float) -> list[dict]:
    """Why a gate follows the input SNR or not, per seed of the gated model: the rank correlation
    of the input SNR with the gate's logit (going on minus exiting) at each decision, its range
    (the gate exits below 0), and the oracle of the jointly trained network itself."""
    out = []
    for r, rows in _anytime_rows(runs, gated):
        if "gate_logit" not in rows[0]:
            continue
        snr = [u["input_snr"] for u in rows]
        logits = {k: [u["gate_logit"][k] for u in rows] for k in rows[0]["gate_logit"]}
        out.append({
            "seed": r["seed"],
            "spearman_snr_logit": {k: stats.spearman(snr, v) for k, v in logits.items()},
            "logit_range": {k: [float(min(v)), float(max(v))] for k, v in logits.items()},
            **_oracle_of(np.array([u["scores"] for u in rows]), snr, lam),
        })  # fmt: skip
    return out


def fig5(runs: dict, task: str) -> dict:
    gated, network, base3 = GATED[task]
    out: dict = {"task": task, "claims": []}
    # The oracle needs only the ungated network: lambda is the gated run's, or the gated
    # configuration's when the gated model was not run.
    conf = Path(runs[gated][0]["exp_dir"]) / "conf.yml" if runs.get(gated) else GATED_CONF
    lam = float(load_config(conf)["gated"]["lambda"])
    out["oracle"] = oracle(runs, network, lam)
    out["anytime_by_quartile"] = _anytime_by_quartile(runs, network)
    if not runs.get(gated):
        out["claims"].append(claim(f"gate_adapts_{task}", None, f"{gated} was not run"))
        return out
    rho, steps, si = [], [], []
    for r in runs[gated]:
        utts = [u for u in r["results"]["utterances"] if np.isfinite(u["input_snr"])]
        rho.append(stats.spearman([u["input_snr"] for u in utts], [u["steps"] for u in utts]))
        steps.append(r["results"]["summary"]["steps_mean"])
        si.append(r["results"]["summary"]["si_sdri"])
    curve = _anytime_curve(runs, network)
    entries = [e for e in (gated, network, base3) if e]
    quartiles = {e: [r["results"]["quartiles"] for r in runs.get(e, [])] for e in entries}
    claim_, same = _gate_claim(f"gate_adapts_{task}", rho, steps, si, curve)
    out.update(spearman=rho, steps_mean=steps, si_sdri=si, anytime_curve=curve,
               ungated_at_mean_steps=same, quartiles=quartiles,
               gate=gate_diagnostics(runs, gated, lam))  # fmt: skip
    out["claims"].append(claim_)
    budgeted = budget_gate(runs, gated)
    if budgeted:
        rho, steps, si = (budgeted[k] for k in ("spearman", "steps_mean", "si_sdri"))
        claim_, budgeted["ungated_at_mean_steps"] = _gate_claim(
            f"gate_adapts_{task}_budget", rho, steps, si, curve,
            f"at the exit margin that spends {BUDGET:g} steps on the validation mixtures: ",
        )  # fmt: skip
        out["claims"].append(claim_)
        out["budget"] = budgeted
    return out


def _gate_claim(name: str, rho: list, steps: list, si: list, curve: list | None,
                prefix: str = "") -> tuple[dict, float | None]:  # fmt: skip
    # The Fig. 5 claim of a gate's seeds: it follows the input SNR (mean Spearman), takes fewer
    # than every step, and loses little to the ungated network run for the same mean steps
    # (interpolated on its anytime curve, also returned).
    curve_at = {k + 1.0: v for k, v in enumerate(curve or [])}
    same = stats.interpolate_curve(curve_at, float(np.mean(steps))) if curve else None
    # A seed whose gate gives every mixture the same steps (Spearman undefined) did not adapt:
    # it counts as 0 in the mean.
    rho_mean = float(np.mean([0.0 if v is None else v for v in rho])) if rho else None
    n_max = len(curve) if curve else 4
    ok = (rho_mean is not None and rho_mean <= CRITERIA["spearman_max"] and np.mean(steps) < n_max
          and same is not None and np.mean(si) >= same - CRITERIA["gated_db"])  # fmt: skip
    text = (
        f"{prefix}Spearman(input SNR, steps) per seed {', '.join(fmt(v) for v in rho)} (mean "
        f"{fmt(rho_mean)}{', - (the same steps for every mixture) as 0' if None in rho else ''}"
        f", criterion at most {CRITERIA['spearman_max']:g}); "
        f"{np.mean(steps):.2f} of {n_max} steps on average; SI-SDRi {np.mean(si):.2f} dB vs "
        f"{fmt(same)} dB for the ungated network run for the same mean steps (criterion: at "
        f"most {CRITERIA['gated_db']:g} dB below)"
    )
    return claim(name, ok, text, {"spearman_mean": rho_mean}), same


def budget_gate(runs: dict, gated: str) -> dict | None:
    """The gated seeds at the exit margin calibrated on their validation mixtures to spend
    ``BUDGET`` steps on average (:func:`asteroid_lir.masknn.gating.exit_margin_for_budget`, what
    ``eval.py --gate_budget`` does), applied to the test mixtures: the steps each one takes and
    its score at that step (the network forced to each step count). None when no seed was
    measured on its validation set."""
    from asteroid_lir.experiment.summaries import quartile_table
    from asteroid_lir.masknn.gating import exit_margin_for_budget, exit_steps

    out: dict = {"budget": BUDGET, "margin": [], "spearman": [], "steps_mean": [], "si_sdri": [],
                 "quartiles": []}  # fmt: skip
    for r, rows in _anytime_rows(runs, gated):
        valid = r["measure"].get("valid_gate_logit")
        if not valid:
            continue
        keys = sorted(rows[0]["gate_logit"], key=int)  # the steps taken before each decision
        first = int(keys[0])
        if first < 1:  # an exit before step 1 has no score among the anytime rows (steps 1..n)
            raise ValueError(f"{gated}: the budgeted gate needs min_steps >= 1, got {first}.")
        margin = exit_margin_for_budget([[v["gate_logit"][k] for k in keys] for v in valid],
                                        BUDGET, first)  # fmt: skip
        steps = exit_steps([[u["gate_logit"][k] for k in keys] for u in rows], margin, first)
        snr = np.array([u["input_snr"] for u in rows], dtype=float)
        scores = np.array([u["scores"][n - 1] for u, n in zip(rows, steps)])
        out["margin"].append(margin)
        out["spearman"].append(stats.spearman(snr, steps))
        out["steps_mean"].append(float(steps.mean()))
        out["si_sdri"].append(float(scores.mean()))
        out["quartiles"].append(quartile_table(snr, {"si_sdri": scores}, steps))
    return out if out["margin"] else None


def _quartile_means(per_seed: list, key: str) -> list[float | None]:
    """Mean over the seeds of ``key`` in each input-SNR quartile (None where no seed has it)."""
    means = []
    for rows in zip(*per_seed):  # quartile k of every seed
        known = [r[key] for r in rows if r.get(key) is not None and np.isfinite(r[key])]
        means.append(float(np.mean(known)) if known else None)
    return means


def _quartile_cells(per_seed: list) -> list[str]:
    si, steps = (_quartile_means(per_seed, key) for key in ("si_sdri", "steps_mean"))
    return [
        f"Q{k + 1}: " + ("no mixture" if s is None else f"{s:.2f} dB")
        + ("" if n is None else f", {n:.2f} steps")
        for k, (s, n) in enumerate(zip(si, steps))
    ]  # fmt: skip


def report_body(report: dict) -> list[str]:
    header = ["entry", "structure", "parameters (M)", "GMAC/s", "SI-SDRi (dB)", "seeds"]
    lines = []
    if report["table1"]:
        lines += section("Table 1: iterations at equal parameters", report["table1"]["claims"],
                         header, report["table1"]["rows"])  # fmt: skip
    if report["table2"]:
        lines += section("Table 2: progressive vs end-to-end training",
                         report["table2"]["claims"], [*header, "training-step memory (MiB)"],
                         report["table2"]["rows"])  # fmt: skip
    paper = report["table2"] and report["table2"]["paper_sizes_memory_ratio"]
    if paper:
        lines.append(
            f"- training-step memory at the paper's sizes (`{PAPER_MEMORY}`), of end to "
            "end 1x16x1: " + ", ".join(f"{k} {v:.2f}" for k, v in paper.items())
        )
    for sec in report["fig5"]:
        lines += section(f"Fig. 5: the gate ({sec['task']})", sec["claims"])
        if sec.get("plot"):
            lines += ["", f"![Fig. 5, {sec['task']}]({sec['plot']})", ""]
        for entry, per_seed in (sec.get("quartiles") or {}).items():
            if per_seed:
                cells = "; ".join(_quartile_cells(per_seed))
                lines.append(f"- {entry} by input-SNR quartile (mean over seeds): {cells}")
        if sec.get("anytime_curve"):
            lines.append(
                "- ungated network after each step (mean over seeds): "
                + ", ".join(f"{k + 1}: {v:.2f} dB" for k, v in enumerate(sec["anytime_curve"]))
            )
        for k, row in enumerate(sec.get("anytime_by_quartile") or []):
            curve = " / ".join(f"{v:+.2f}" for key, v in row.items() if key != "input_snr")
            lines.append(
                f"- ungated network, input-SNR quartile Q{k + 1} (mean input SNR "
                f"{row['input_snr']:.1f} dB), SI-SDRi after steps 1..n: {curve} dB"
            )
        for seed in (sec.get("oracle") or {}).get("seeds", []):
            gains = ", ".join(
                f"{k}: {g['mean']:+.2f} ({fmt(g['spearman'])})"
                for k, g in seed["marginal_gains"].items()
            )
            lines.append(
                f"- oracle gate (lambda {sec['oracle']['lambda']:g}), seed {seed['seed']}: "
                f"{seed['oracle_steps_mean']:.2f} steps on average, Spearman with input SNR "
                f"{fmt(seed['spearman_snr_oracle_steps'])}; what step k adds, mean dB (Spearman "
                f"with input SNR): {gains}"
            )
        if sec.get("budget"):
            b = sec["budget"]
            lines.append(
                f"- budgeted gate ({b['budget']:g} steps on the validation mixtures), exit margin "
                f"per seed {', '.join(f'{m:.2f}' for m in b['margin'])}, by input-SNR quartile "
                f"of the test set (mean over seeds): {'; '.join(_quartile_cells(b['quartiles']))}"
            )
        for seed in sec.get("gate") or []:
            logits = ", ".join(
                f"{k}: {fmt(rho)} ({lo:.2f}..{hi:.2f})"
                for (k, rho), (lo, hi) in zip(seed["spearman_snr_logit"].items(),
                                              seed["logit_range"].values())
            )  # fmt: skip
            lines.append(
                f"- gate, seed {seed['seed']}: Spearman(input SNR, logit of going on minus "
                f"exiting; its range, exit below 0) after step {logits}; the oracle of its "
                f"jointly trained network: {seed['oracle_steps_mean']:.2f} steps, Spearman with "
                f"input SNR {fmt(seed['spearman_snr_oracle_steps'])}"
            )
    plot = report.get("table_plot")
    return lines + (["", f"![Table 1]({plot})"] if plot else [])


def write_plots(report: dict, runs: dict, out_dir: Path) -> None:
    entries = [*ITERATED[:2], "t1_1x1x3", ITERATED[2], END_TO_END, *PROGRESSIVE.values()]
    if any(runs.get(e) for e in entries):
        seed_bar_chart({"SI-SDRi": {e: _seeds(runs, e) for e in entries}},
                       out_dir / "table1.png", "SI-SDRi (dB)", "Equal training steps")  # fmt: skip
        report["table_plot"] = "table1.png"
    for sec in report["fig5"]:
        quartiles = {e: v for e, v in (sec.get("quartiles") or {}).items() if v}
        if not quartiles:
            continue
        bars = {e: {f"Q{k + 1}": v for k, v in enumerate(_quartile_means(per_seed, "si_sdri"))}
                for e, per_seed in quartiles.items()}  # fmt: skip
        steps = _quartile_means(quartiles.get(GATED[sec["task"]][0], []), "steps_mean")
        twin = {f"Q{k + 1}": v for k, v in enumerate(steps) if v is not None} or None
        sec["plot"] = f"fig5_{sec['task']}.png"
        title = f"{sec['task']}\nby input-SNR quartile, low to high SNR"
        bar_chart(bars, out_dir / sec["plot"], "SI-SDRi (dB)", title, twin=twin,
                  twin_label="steps of the gated model")  # fmt: skip


def _fig5_regimes(runs: dict) -> list[str]:
    # A regime whose gated model the grid holds; one whose network alone it holds (its oracle)
    # once, under the first regime of that network (several gates may share one network).
    networks = {network for gated, network, _ in GATED.values() if gated in runs}
    shown = []
    for task, (gated, network, base3) in GATED.items():
        if gated in runs or ((network in runs or base3 in runs) and network not in networks):
            shown.append(task)
            networks.add(network)
    return shown


def build(runs: dict, out_dir: Path) -> tuple[dict, list[str]]:
    # A part whose entries the grid does not hold is left out (a grid run with --entries
    # reports what it ran; an entry of the grid without results shows as "not run").
    def held(*entries: str | None) -> bool:
        return any(e in runs for e in entries)

    report = {
        "table1": table1(runs) if held(*ITERATED, *CONVENTIONAL) else None,
        "table2": table2(runs, Path(__file__).parents[3])
        if held(END_TO_END, *PROGRESSIVE.values())
        else None,
        "fig5": [fig5(runs, task) for task in _fig5_regimes(runs)],
    }
    write_plots(report, runs, out_dir)
    return report, report_body(report)


if __name__ == "__main__":
    run_stage(lambda: claims_main(None, "The paper's claims at mini scale", measure, build))
