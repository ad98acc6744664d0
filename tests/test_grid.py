"""Experiment grids: the statistics (asteroid_lir.experiment.stats), the budget of every run
(asteroid_lir.experiment.grid), the measurements (asteroid_lir.experiment.measure) and the
WHAM! recipe's claims report run as a command on synthetic run folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from asteroid_lir.experiment import grid as grid_mod
from asteroid_lir.experiment import stats
from asteroid_lir.experiment.config import load_config
from asteroid_lir.experiment.evaluation import evaluate_items
from asteroid_lir.experiment.measure import anytime_scores, flops_per_second, gate_logit_rows
from asteroid_lir.masknn.gating import exit_steps
from asteroid_lir.models import LIRSuDORMRFNet

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "wham"
SNRS = [-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]


# --------------------------------------------------------------------------- statistics
def test_spearman_and_ties():
    assert stats.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert stats.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Ties take average ranks: ranks (1, 2, 3, 4) vs (1.5, 1.5, 3.5, 3.5) -> 2 / sqrt(5).
    assert stats.spearman([1, 2, 3, 4], [0, 0, 1, 1]) == pytest.approx(2 / np.sqrt(5))
    assert stats.spearman([1, 2, 3], [5, 5, 5]) is None
    with pytest.raises(ValueError, match="same length"):
        stats.spearman([1, 2, 3], [1, 2])


def test_interpolate_curve():
    curve = {1.0: 3.0, 2.0: 4.0, 4.0: 8.0}
    assert stats.interpolate_curve(curve, 3.0) == pytest.approx(6.0)
    assert stats.interpolate_curve(curve, 1.0) == pytest.approx(3.0)
    assert stats.interpolate_curve(curve, 4.5) is None
    assert stats.interpolate_curve({}, 2.0) is None


def test_seed_summary_and_comparison_beyond_the_spread():
    s = stats.seed_summary([1.0, 2.0, 3.0])
    assert (s["mean"], s["std"], s["min"], s["max"], s["n"]) == (2.0, 1.0, 1.0, 3.0, 3)
    assert stats.seed_summary([4.0])["std"] == 0.0
    with pytest.raises(ValueError, match="finite"):
        stats.seed_summary([1.0, float("nan")])
    apart = stats.compare([3.1, 3.3, 3.2], [2.9, 3.0, 2.8])
    assert apart["beyond_spread"] and apart["ahead"] and apart["diff"] == pytest.approx(0.3)
    # Ahead on average, but one seed of the better model scores below one of the other.
    overlap = stats.compare([3.5, 3.4, 2.9], [3.0, 3.1, 3.0])
    assert overlap["ahead"] and not overlap["beyond_spread"]
    assert not stats.compare([1.0, 1.1], [2.0, 2.1])["ahead"]


def test_oracle_steps_and_marginal_gains():
    # Every mixture gains 1 dB at step 2 and 0.1 dB after: at lambda 0.3 the oracle stops at 2.
    flat = np.array([[1.0, 2.0, 2.1, 2.2]] * 8)
    assert stats.oracle_steps(flat, 0.3).tolist() == [2] * 8
    assert stats.oracle_steps(flat, 0.0).tolist() == [4] * 8
    assert stats.oracle_steps(flat, 0.3, min_steps=3).tolist() == [3] * 8
    gains = stats.marginal_gains(flat, SNRS, 0.3)
    assert gains["2"]["mean"] == pytest.approx(1.0) and gains["3"]["share_above_lambda"] == 0.0
    assert gains["2"]["spearman"] is None  # the same gain for every input
    # Low-SNR mixtures keep gaining, high-SNR ones do not: the oracle's steps fall with SNR.
    adaptive = np.array([[1.0, 2.0, 3.0, 4.0] if s < 0 else [1.0, 1.1, 1.2, 1.3] for s in SNRS])
    steps = stats.oracle_steps(adaptive, 0.3)
    assert steps.tolist() == [4, 4, 4, 4, 1, 1, 1, 1]
    assert stats.spearman(SNRS, steps) < -0.8
    with pytest.raises(ValueError, match="min_steps"):
        stats.oracle_steps(flat, 0.3, min_steps=5)


# --------------------------------------------------------------------------- grids
def _grid_file(tmp_path: Path, entries: dict, steps: int = 2000, **extra) -> Path:
    path = tmp_path / "grid.yml"
    path.write_text(
        yaml.safe_dump({"steps": steps, "seeds": [0, 1, 2], **extra, "entries": entries})
    )
    return path


def _runs(tmp_path: Path, entries: dict, **kw) -> dict:
    grid = grid_mod.load_grid(_grid_file(tmp_path, entries, **kw))
    return {(r["entry"], r["seed"]): r for r in grid_mod.grid_runs(grid, RECIPE)}


def test_every_run_gets_the_same_steps_its_seed_and_no_time_bound(tmp_path):
    runs = _runs(
        tmp_path,
        {
            "e2e": {"conf": "conf/trends/t1_1x4x1.yml"},
            "prog": {"conf": "conf/trends/t2_prog_4x1x1.yml"},
            "gated": {"conf": "conf/trends/gated_1x1x4.yml", "joint_share": 0.1},
            "enh": {
                "conf": "conf/trends/t1_1x1x4.yml",
                "args": ["--task", "enh_single"],
                "set": ["optim.lr=5e-4"],
            },
        },
    )
    assert len(runs) == 12
    e2e = runs[("e2e", 1)]
    assert e2e["tag"] == "e2e_s1" and e2e["args"] == []
    # 2000 steps of 50-batch epochs (training.limit_train_batches of the mini configurations).
    assert e2e["overrides"][:4] == [
        "training.epochs=40",
        "training.seed=1",
        "training.num_threads=1",
        "training.max_time_minutes=null",
    ]
    # Progressive: the same 40 epochs, split evenly between the blocks by the procedure.
    assert runs[("prog", 0)]["overrides"][0] == "training.epochs=40"
    # Gated: the two phases share the total, 90 : 10 like the paper's 180 : 20 epochs.
    assert runs[("gated", 2)]["overrides"][:2] == ["training.epochs=36", "gated.joint_epochs=4"]
    assert runs[("enh", 0)]["args"] == ["--task", "enh_single"]
    assert runs[("enh", 0)]["overrides"][-1] == "optim.lr=5e-4"
    # The overrides give the configuration the budget.
    conf = load_config(RECIPE / "conf/trends/gated_1x1x4.yml", runs[("gated", 2)]["overrides"])
    assert conf["training"]["epochs"] + conf["gated"]["joint_epochs"] == 40
    assert conf["training"]["max_time_minutes"] is None and conf["training"]["seed"] == 2


def test_bad_grids_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        grid_mod.load_grid(tmp_path / "missing.yml")
    with pytest.raises(ValueError, match="names no configuration"):
        grid_mod.load_grid(_grid_file(tmp_path, {"a": {"set": []}}))
    with pytest.raises(ValueError, match="unknown keys"):
        grid_mod.load_grid(_grid_file(tmp_path, {"a": {"conf": "x.yml", "epochs": 3}}))
    with pytest.raises(ValueError, match="'steps' must be"):
        grid_mod.load_grid(_grid_file(tmp_path, {"a": {"conf": "x.yml"}}, steps=0))
    with pytest.raises(ValueError, match="whole number of epochs"):
        _runs(tmp_path, {"a": {"conf": "conf/trends/t1_1x1x1.yml"}}, steps=2010)
    with pytest.raises(ValueError, match="split evenly"):  # 30 epochs, 4 blocks
        _runs(tmp_path, {"a": {"conf": "conf/trends/t2_prog_4x1x1.yml"}}, steps=1500)
    with pytest.raises(ValueError, match="fixed number of steps per epoch"):
        _runs(
            tmp_path,
            {
                "a": {
                    "conf": "conf/trends/t1_1x1x1.yml",
                    "set": ["training.limit_train_batches=null"],
                }
            },
        )


def test_the_paper_grid_compares_what_the_claims_need():
    grid = grid_mod.load_grid(RECIPE / "conf" / "grids" / "paper.yml")
    assert len(grid["seeds"]) >= 3
    runs = grid_mod.grid_runs(grid, RECIPE)
    epochs = {r["entry"]: r["overrides"][0] for r in runs}
    confs = {r["entry"]: load_config(RECIPE / r["conf"], r["overrides"]) for r in runs}
    # Equal steps: every end-to-end and progressive model trains the same epochs; the gated
    # models' two phases add up to them.
    for name, conf in confs.items():
        t = conf["training"]
        total = t["epochs"] + (conf["gated"]["joint_epochs"] if t["mode"] == "gated" else 0)
        assert total * t["limit_train_batches"] == grid["steps"], name
    assert epochs["t1_1x1x1"] == epochs["t1_1x4x1"] == epochs["t2_prog_4x1x1"]
    # Table 1: equal parameters for the iterated models (one U-ConvBlock each).
    for name in ("t1_1x1x1", "t1_1x1x2", "t1_1x1x4"):
        assert confs[name]["model"]["n_sub_blocks"] == 1 and confs[name]["model"]["n_blocks"] == 1
    assert confs["t2_prog_4x1x1"]["training"]["mode"] == "progressive"
    assert confs["gated_1x1x4"]["training"]["mode"] == "gated"


def test_grid_command_lists_tab_separated_runs(tmp_path):
    path = _grid_file(
        tmp_path, {"enh": {"conf": "conf/trends/t1_1x1x4.yml", "args": ["--task", "enh_single"]}}
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "asteroid_lir.experiment.grid",
            "runs",
            str(path),
            "--base_dir",
            str(RECIPE),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert [line.split("\t")[0] for line in out] == ["enh_s0", "enh_s1", "enh_s2"]
    tag, conf, overrides, args = out[0].split("\t")
    assert conf == "conf/trends/t1_1x1x4.yml" and args == "--task enh_single"
    assert "training.seed=0" in overrides.split()


# --------------------------------------------------------------------------- measurements
def _tiny(**kw) -> LIRSuDORMRFNet:
    torch.manual_seed(0)
    return LIRSuDORMRFNet(n_src=3, n_filters=16, bn_chan=8, upsampling_depth=2, **kw).eval()


def test_flops_grow_with_the_refinement_steps():
    model = _tiny(n_blocks=1, n_sub_blocks=1, n_iters=4)
    flops = [flops_per_second(model, 8000, k) for k in (1, 2, 4)]
    # Each step adds one U-ConvBlock pass: equal increments.
    assert flops[0] < flops[1] < flops[2]
    assert flops[2] - flops[1] == pytest.approx(2 * (flops[1] - flops[0]), rel=1e-6)
    assert flops_per_second(model, 8000) == flops[2]


def test_anytime_scores_end_with_the_full_models_evaluation():
    model = _tiny(n_blocks=1, n_sub_blocks=1, n_iters=3)
    gen = torch.Generator().manual_seed(1)
    refs = torch.randn(2, 2, 4000, generator=gen).numpy()
    noise = 0.3 * torch.randn(2, 4000, generator=gen).numpy()
    items = [
        {
            "id": f"m{i}",
            "mixture": refs[i].sum(0) + noise[i],
            "references": refs[i],
            "noise": noise[i],
            "candidates": 2,
        }
        for i in range(2)
    ]
    rows = anytime_scores(model, items, 8000)
    assert [len(r["scores"]) for r in rows] == [3, 3]
    assert all(np.isfinite(r["input_snr"]) for r in rows)
    full, _ = evaluate_items(model, items, 8000, ("si_sdr",), "cpu", None, 0)
    for row, ref in zip(rows, full):
        assert row["scores"][-1] == pytest.approx(float(np.mean(ref["si_sdri"])), abs=1e-4)
    gated = _tiny(n_blocks=1, n_sub_blocks=1, n_iters=3, gate_kernel_size=3)
    rows = anytime_scores(gated, items, 8000)
    assert set(rows[0]["gate_logit"]) == {"1", "2"} and 1 <= rows[0]["steps"] <= 3
    # The stored logits decide the steps the gate takes (what the budgeted gate of the claims
    # report relies on), and the validation rows (lazy items here) hold the same logits.
    for row in rows:
        assert [row["steps"]] == exit_steps(
            [[row["gate_logit"]["1"], row["gate_logit"]["2"]]], 0.0
        ).tolist()
    lazy = [{"id": it["id"], "load": lambda it=it: it} for it in items]
    assert [r["gate_logit"] for r in gate_logit_rows(gated, lazy)] == [
        r["gate_logit"] for r in rows
    ]


# --------------------------------------------------------------------------- claims report
def _write_run(
    root: Path,
    tag: str,
    si: float,
    seed: int,
    *,
    params=400_000,
    steps=None,
    anytime=None,
    memory=None,
    lam=0.3,
    gate_logits=None,
    valid_logits=None,
) -> None:
    exp = root / f"{tag}_s{seed}"
    exp.mkdir(parents=True)
    utts = [{"id": f"u{i}", "input_snr": s} for i, s in enumerate(SNRS)]
    for u, k in zip(utts, steps or []):
        u["steps"] = k
    quart = [{"quartile": q + 1, "si_sdri": si, "steps_mean": None} for q in range(4)]
    results = {
        "model": {"structure": tag, "parameters": params},
        "summary": {"si_sdri": si, "steps_mean": float(np.mean(steps)) if steps else None},
        "quartiles": quart,
        "utterances": utts,
    }
    (exp / "results.json").write_text(json.dumps(results))
    measure = {"flops_per_second": {"1": 1e9, "4": 4e9}}
    if memory is not None:
        measure["train_memory"] = {"peak_bytes": memory * 2**20}
    if anytime is not None:
        measure["anytime"] = [{"input_snr": s, "scores": a} for s, a in zip(SNRS, anytime)]
        for row, logits in zip(measure["anytime"], gate_logits or []):
            row["gate_logit"] = logits
    if valid_logits is not None:
        measure["valid_gate_logit"] = [{"id": f"v{i}", "gate_logit": v}
                                       for i, v in enumerate(valid_logits)]  # fmt: skip
    (exp / "measure.json").write_text(json.dumps(measure))
    (exp / "conf.yml").write_text(yaml.safe_dump({"gated": {"lambda": lam}}))


ADAPTIVE = [4, 4, 4, 3, 3, 3, 2, 2]  # fewer steps at higher SNR (SNRS is increasing)


def _report(grid: Path, root: Path) -> dict:
    """The WHAM! recipe's claims report of the runs under ``root``, run as a command."""
    run = subprocess.run(
        [sys.executable, str(RECIPE / "local" / "claims.py"), "report", "--grid", str(grid),
         "--root", str(root), "--command", "x"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(RECIPE.parents[1])),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads((root / "report.json").read_text())


def _claims(tmp_path: Path, si: dict, gated_steps=ADAPTIVE, gated_si=5.1, flat_seeds=()) -> dict:
    root = tmp_path / "exp"
    entries = [
        "t1_1x1x1",
        "t1_1x1x2",
        "t1_1x1x3",
        "t1_1x1x4",
        "t1_1x4x1",
        "t2_prog_2x2x1",
        "t2_prog_4x1x1",
        "gated_1x1x4",
    ]
    memory = {"t1_1x4x1": 100, "t2_prog_2x2x1": 50, "t2_prog_4x1x1": 30}
    # The ungated 1x1x4 network after 1..4 steps: 3, 4, 5, 6 dB on every mixture.
    curve = [[3.0, 4.0, 5.0, 6.0]] * 8
    for seed, offset in enumerate((-0.05, 0.0, 0.05)):
        for tag in entries[:-1]:
            _write_run(
                root,
                tag,
                si[tag] + offset,
                seed,
                memory=memory.get(tag),
                anytime=curve if tag == "t1_1x1x4" else None,
            )
        if gated_steps is not None:
            steps = [3] * len(gated_steps) if seed in flat_seeds else gated_steps
            _write_run(root, "gated_1x1x4", gated_si + offset, seed, steps=steps)
    grid = tmp_path / "grid.yml"
    listed = {e: {"conf": "x.yml"} for e in entries}
    grid.write_text(yaml.safe_dump({"steps": 2000, "seeds": [0, 1, 2], "entries": listed}))
    report = _report(grid, root)
    report["verdicts"] = {
        c["name"]: c["verdict"]
        for s in (report["table1"], report["table2"], *report["fig5"])
        for c in s["claims"]
    }
    report["md"] = (root / "report.md").read_text()
    return report


SEPARATED = {
    "t1_1x1x1": 3.0,
    "t1_1x1x2": 4.0,
    "t1_1x1x3": 5.0,
    "t1_1x1x4": 6.0,
    "t1_1x4x1": 6.5,
    "t2_prog_2x2x1": 6.0,
    "t2_prog_4x1x1": 5.8,
}


def test_claims_reproduced_beyond_the_spread(tmp_path):
    report = _claims(tmp_path, SEPARATED)
    v = report["verdicts"]
    assert v["more_iterations"] == "reproduced"
    assert v["iterated_vs_conventional"] == "reproduced"  # 0.5 dB gap, criterion 1 dB
    assert v["progressive_2_blocks"] == "reproduced"  # memory 0.50 <= 0.55
    assert v["progressive_4_blocks"] == "reproduced"  # memory 0.30 <= 0.35
    f5 = report["fig5"][0]
    assert np.mean(f5["spearman"]) < -0.9
    # Mean steps 3.125 on the ungated curve 3, 4, 5, 6 dB: 5.125 dB; the gated 5.1 is within.
    assert f5["ungated_at_mean_steps"] == pytest.approx(5.125)
    assert v["gate_adapts_sep_noisy"] == "reproduced"
    assert "gate_adapts_enh_single" not in v  # not an entry of this grid: no section
    # The curve in each input-SNR quartile (two of the eight mixtures each): the same curve.
    by_quartile = f5["anytime_by_quartile"]
    assert [row["4"] for row in by_quartile] == [6.0] * 4 and by_quartile[0]["1"] == 3.0
    assert by_quartile[0]["input_snr"] < by_quartile[3]["input_snr"]
    assert "input-SNR quartile Q4" in report["md"]
    # The oracle of that curve at lambda 0.3: every step is worth 1 dB, so 4 steps everywhere.
    assert f5["oracle"]["seeds"][0]["oracle_steps_mean"] == 4.0
    assert "**reproduced** (more_iterations)" in report["md"]
    assert (tmp_path / "exp" / "table1.png").stat().st_size > 1000
    assert "![Table 1](table1.png)" in report["md"]
    # One Fig. 5 plot per regime that has quartiles, drawn in the report.
    assert (tmp_path / "exp" / "fig5_sep_noisy.png").stat().st_size > 1000
    assert "](fig5_sep_noisy.png)" in report["md"]


def test_claims_within_the_spread_or_with_a_flat_gate_are_not_reproduced(tmp_path):
    # 1x1x2 only 0.05 dB above 1x1x1: the seeds (+-0.05 dB) overlap.
    close = dict(SEPARATED, t1_1x1x2=3.05)
    report = _claims(tmp_path, close, gated_steps=[2] * 8, gated_si=4.0)
    v = report["verdicts"]
    assert v["more_iterations"] == "not reproduced"
    assert v["gate_adapts_sep_noisy"] == "not reproduced"  # no correlation, 1.1 dB too low


def test_a_gate_that_gives_every_mixture_the_same_steps_counts_as_not_adapting(tmp_path):
    # One seed adapts (Spearman -0.58), two give every mixture 3 steps (Spearman undefined):
    # the mean counts those as 0 (-0.19), not as missing (-0.58).
    report = _claims(tmp_path, SEPARATED, gated_steps=[3] * 7 + [2], flat_seeds=(1, 2))
    f5 = report["fig5"][0]
    assert f5["spearman"][1] is None and f5["spearman"][0] == pytest.approx(-0.577, abs=1e-3)
    assert report["verdicts"]["gate_adapts_sep_noisy"] == "not reproduced"
    assert "(mean -0.19, - (the same steps for every mixture) as 0" in report["md"]


def test_claims_report_says_how_the_gate_ranks_the_inputs_and_what_its_network_allows(tmp_path):
    # Seed 0's gate leans to exit sooner the cleaner the input (its logit after step 2 falls
    # with the SNR), seed 1's the other way round; its network gains 2 dB at step 2 on the four
    # noisiest mixtures and nothing on the others, so its oracle goes on only for those.
    root = tmp_path / "exp"
    gains = [[3.0, 5.0, 5.0, 5.0]] * 4 + [[3.0, 3.0, 3.0, 3.0]] * 4
    for seed, sign in enumerate((-1.0, 1.0)):
        logits = [{"1": 1.0, "2": sign * s} for s in SNRS]
        _write_run(root, "enhw_1x1x4", 6.0, seed, anytime=[[3.0, 4.0, 5.0, 6.0]] * 8)
        _write_run(root, "enhw_gated_1x1x4", 5.9, seed, steps=ADAPTIVE, anytime=gains,
                   gate_logits=logits)  # fmt: skip
    grid = tmp_path / "grid.yml"
    listed = {e: {"conf": "x.yml"} for e in ("enhw_1x1x4", "enhw_gated_1x1x4")}
    grid.write_text(yaml.safe_dump({"steps": 2000, "seeds": [0, 1], "entries": listed}))
    gate = _report(grid, root)["fig5"][0]["gate"]
    assert [g["spearman_snr_logit"]["2"] for g in gate] == [pytest.approx(-1.0), pytest.approx(1.0)]
    assert gate[0]["spearman_snr_logit"]["1"] is None  # the same logit for every input
    assert gate[0]["logit_range"]["2"] == [-3.0, 4.0]
    assert gate[0]["oracle_steps_mean"] == 1.5  # 2 steps for the four noisiest, 1 for the rest
    assert gate[0]["spearman_snr_oracle_steps"] < -0.8
    md = (root / "report.md").read_text()
    assert "- gate, seed 1: Spearman(input SNR, logit of going on minus exiting" in md


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_claims_report_the_gate_at_the_margin_calibrated_on_validation_mixtures(tmp_path, sign):
    # Every logit is above 0, so at the paper's margin every mixture takes all 4 steps. On the
    # validation mixtures the decision before step 4 is 1..10: a margin of 4 makes the four
    # lowest exit there, 3.6 steps on average. On the test mixtures that decision falls with the
    # SNR (sign 1: 9..2, the three cleanest exit) or rises with it (sign -1: 1..8, the four
    # noisiest exit).
    root = tmp_path / "exp"
    valid = [{"1": 20.0, "2": 20.0, "3": float(v)} for v in range(1, 11)]
    test = [{"1": 20.0, "2": 20.0, "3": 5.0 - sign * s} for s in SNRS]
    for seed in range(3):
        _write_run(root, "enhw_1x1x4", 6.0, seed, anytime=[[3.0, 4.0, 5.0, 6.0]] * 8)
        _write_run(root, "enhw_gated_1x1x4", 6.0, seed, steps=[4] * 8,
                   anytime=[[3.0, 4.0, 5.0, 6.0]] * 8, gate_logits=test,
                   valid_logits=valid)  # fmt: skip
    grid = tmp_path / "grid.yml"
    listed = {e: {"conf": "x.yml"} for e in ("enhw_1x1x4", "enhw_gated_1x1x4")}
    grid.write_text(yaml.safe_dump({"steps": 2000, "seeds": [0, 1, 2], "entries": listed}))
    f5 = _report(grid, root)["fig5"][0]
    budget = f5["budget"]
    assert budget["margin"] == [4.0] * 3
    exits = 3 if sign > 0 else 4  # mixtures taking 3 steps
    assert budget["steps_mean"] == [pytest.approx(4 - exits / 8)] * 3
    # Each mixture scores what the network gives at its steps: 6 dB at 4 steps, 5 dB at 3.
    assert budget["si_sdri"] == [pytest.approx(6 - exits / 8)] * 3
    assert all(sign * rho < -0.7 for rho in budget["spearman"])
    verdicts = {c["name"]: c["verdict"] for c in f5["claims"]}
    assert verdicts["gate_adapts_enh_single_snr-10to20"] == "not reproduced"  # 4 steps each
    expected = "reproduced" if sign > 0 else "not reproduced"
    assert verdicts["gate_adapts_enh_single_snr-10to20_budget"] == expected
    md = (root / "report.md").read_text()
    assert "budgeted gate (3.6 steps on the validation mixtures), exit margin per seed 4.00" in md


def test_claims_report_refuses_a_budgeted_gate_that_may_exit_before_the_first_step(tmp_path):
    # min_steps 0 (a decision before step 1): the anytime rows have no score at 0 steps.
    root = tmp_path / "exp"
    logits = [{"0": 1.0, "1": 1.0} for _ in SNRS]
    _write_run(root, "enhw_1x1x4", 6.0, 0, anytime=[[3.0, 4.0]] * 8)
    _write_run(root, "enhw_gated_1x1x4", 6.0, 0, steps=[2] * 8, anytime=[[3.0, 4.0]] * 8,
               gate_logits=logits, valid_logits=logits)  # fmt: skip
    grid = tmp_path / "grid.yml"
    listed = {e: {"conf": "x.yml"} for e in ("enhw_1x1x4", "enhw_gated_1x1x4")}
    grid.write_text(yaml.safe_dump({"steps": 2000, "seeds": [0], "entries": listed}))
    run = subprocess.run(
        [sys.executable, str(RECIPE / "local" / "claims.py"), "report", "--grid", str(grid),
         "--root", str(root), "--command", "x"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(RECIPE.parents[1])),
    )  # fmt: skip
    assert run.returncode != 0 and "needs min_steps >= 1, got 0" in run.stderr


def test_claims_of_runs_that_are_missing_say_not_run(tmp_path):
    report = _claims(tmp_path, SEPARATED, gated_steps=None)
    assert report["verdicts"]["gate_adapts_sep_noisy"] == "not run"
    assert "not run" in report["md"]


def test_claims_report_only_the_parts_whose_entries_the_grid_holds(tmp_path):
    # A grid run with --entries (here the wide-SNR gate regime alone) reports that regime, not
    # Table 1 and Table 2 as "not run".
    root = tmp_path / "exp"
    curve = [[3.0, 4.0, 5.0, 6.0]] * 8
    for seed in range(3):
        _write_run(root, "enhw_1x1x4", 6.0, seed, anytime=curve)
        _write_run(root, "enhw_gated_1x1x4", 5.9, seed, steps=ADAPTIVE)
    grid = tmp_path / "grid.yml"
    listed = {e: {"conf": "x.yml"} for e in ("enhw_1x1x4", "enhw_gated_1x1x4")}
    grid.write_text(yaml.safe_dump({"steps": 4000, "seeds": [0, 1, 2], "entries": listed}))
    report = _report(grid, root)
    assert report["table1"] is None and report["table2"] is None
    assert [s["task"] for s in report["fig5"]] == ["enh_single_snr-10to20"]
    assert report["fig5"][0]["claims"][0]["verdict"] == "reproduced"
    md = (root / "report.md").read_text()
    assert "Table 1:" not in md and "Table 2:" not in md and "not run" not in md
    assert "table1.png" not in md and not (root / "table1.png").exists()
    assert "4000 training steps" in md


@pytest.mark.parametrize("recipe", ["wham", "unified"])
def test_run_grid_help_and_bad_options(recipe, tmp_path):
    script = RECIPE.parent / recipe / "utils" / "run_grid.sh"
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--jobs" in out.stdout and "runs at a time" in out.stdout
    out = subprocess.run([str(script), "--grid", str(tmp_path / "none.yml")],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode != 0 and "is not a file" in out.stderr
    grid = tmp_path / "g.yml"
    grid.write_text("steps: 100\nseeds: [0]\nentries: {a: {conf: x.yml}}\n")
    out = subprocess.run([str(script), "--grid", str(grid), "--jobs", "0"],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode != 0 and "--jobs" in out.stderr
    exp_root = tmp_path / "exp"
    out = subprocess.run([str(script), "--grid", str(grid), "--entries", "a,b",
                          "--exp_root", str(exp_root)], capture_output=True, text=True)  # fmt: skip
    assert out.returncode != 0 and "['b'] not in" in out.stderr and "entries: ['a']" in out.stderr
    assert not (exp_root / "grid.yml").exists()  # nothing run, nothing written


@pytest.mark.slow
def test_run_grid_trains_evaluates_measures_and_reports(tmp_path):
    tiny = [
        "training.limit_train_batches=2",
        "data.mini.n_train=8",
        "data.mini.n_valid=2",
        "data.mini.n_test=3",
        "data.mini.utt_seconds=1.0",
        "data.mini.speech=formant",
        "data.segment=0.5",
        "model.n_filters=16",
        "model.bn_chan=8",
        "model.upsampling_depth=2",
        "evaluation.n_examples=0",
    ]
    grid = tmp_path / "tiny.yml"
    grid.write_text(
        yaml.safe_dump(
            {
                "steps": 4,
                "seeds": [0, 1],
                "threads": 1,
                "run_args": ["--held_out", "false", "--data_dir", str(tmp_path / "data")],
                "entries": {
                    "t1_1x1x2": {"conf": "conf/trends/t1_1x1x2.yml", "set": tiny},
                    "gated_1x1x4": {
                        "conf": "conf/trends/gated_1x1x4.yml",
                        "set": tiny,
                        "joint_share": 0.5,
                    },
                },
            }
        )
    )
    env = dict(os.environ, LIR_VENV=str(Path(sys.executable).parents[1]))
    run = subprocess.run(
        [
            str(RECIPE / "utils" / "run_grid.sh"),
            "--grid",
            str(grid),
            "--exp_root",
            str(tmp_path / "exp"),
            "--jobs",
            "2",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for tag in ("t1_1x1x2_s0", "t1_1x1x2_s1", "gated_1x1x4_s0", "gated_1x1x4_s1"):
        done = json.loads((tmp_path / "exp" / tag / "train_done.json").read_text())
        assert (tmp_path / "exp" / tag / "measure.json").is_file()
        if tag.startswith("t1"):
            assert done["global_steps"] == 4 and done["max_time_minutes"] is None
    conf = yaml.safe_load((tmp_path / "exp" / "t1_1x1x2_s1" / "conf.yml").read_text())
    assert conf["training"]["seed"] == 1 and conf["training"]["num_threads"] == 1
    assert "Fig. 5" in (tmp_path / "exp" / "report.md").read_text()
