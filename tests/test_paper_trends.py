"""The paper-trends report builder (egs/wham/local/paper_trends.py) on small synthetic results:
verdicts of the three claims, the rank correlation, the interpolated same-steps baseline, the
progressive epoch plan, the Markdown and the plots, and the grid's configurations."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "wham"
sys.path.insert(0, str(RECIPE))
from local import paper_trends as pt  # noqa: E402
from local.config import load_config  # noqa: E402

SNRS = [-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]


def quartiles(si_sdri: list[float], steps: list[float] | None = None) -> list[dict]:
    return [
        {
            "quartile": q + 1,
            "snr_low": SNRS[2 * q],
            "snr_high": SNRS[2 * q + 1],
            "count": 2,
            "si_sdri": si_sdri[q],
            "steps_mean": None if steps is None else steps[q],
        }
        for q in range(4)
    ]


def results(si: float, params: int, n_steps: int, steps: list[float] | None = None, prog=None):
    utts = [{"id": f"u{i}", "input_snr": s} for i, s in enumerate(SNRS)]
    if steps is not None:
        for u, k in zip(utts, steps):
            u["steps"] = k
    per_q = None if steps is None else [float(np.mean(steps[2 * q : 2 * q + 2])) for q in range(4)]
    return {
        "model": {
            "structure": f"{n_steps} steps",
            "parameters": params,
            "n_steps": n_steps,
            "gated": steps is not None,
            "progressive": prog,
        },
        "summary": {
            "si_sdri": si,
            "sdri": si + 0.5,
            "steps_mean": None if steps is None else float(np.mean(steps)),
        },
        "quartiles": quartiles([si + 1, si, si, si - 1], per_q),
        "utterances": utts,
    }


def entry(res: dict, flops=1e9, memory=None) -> dict:
    return {
        "results": res,
        "measure": {
            "flops_per_second": flops,
            "train_memory": None if memory is None else {"peak_bytes": memory * 2**20},
            "train_done": {"global_steps": 100, "wall_seconds_this_run": 60.0},
        },
    }


def grid(si=None, gated_steps=None, gated_si=6.0, mem=None) -> dict:
    """Synthetic results of the whole grid; ``si`` overrides SI-SDRi by tag."""
    base = {
        "t1_1x1x1": 3.0,
        "t1_1x1x2": 4.0,
        "t1_1x1x3": 5.0,
        "t1_1x1x4": 6.0,
        "t1_1x4x1": 6.5,
        "t2_prog_2x2x1": 6.0,
        "t2_prog_4x1x1": 5.8,
    }
    base.update(si or {})
    mem = {"t1_1x4x1": 100.0, "t2_prog_2x2x1": 50.0, "t2_prog_4x1x1": 30.0, **(mem or {})}
    steps = {"t1_1x1x1": 1, "t1_1x1x2": 2, "t1_1x1x3": 3, "t1_1x1x4": 4, "t1_1x4x1": 1}
    out = {}
    for tag, value in base.items():
        params = 400_000 if tag.startswith("t1_1x1") else 1_600_000
        prog = None
        if tag.startswith("t2_"):
            n = int(tag.split("_")[-1][0])
            prog = {"complete": True, "exported_step": n, "n_steps": n}
        out[tag] = entry(results(value, params, steps.get(tag, 4), prog=prog), memory=mem.get(tag))
    if gated_steps is not None:
        out["gated_1x1x4"] = entry(
            results(gated_si, 413_000, 4, steps=gated_steps),
            flops={str(k): k * 1e9 for k in range(1, 5)},
        )
    return out


def verdicts(report: dict, section: str) -> dict:
    return {c["name"]: c["verdict"] for c in report[section]["claims"]}


ADAPTIVE = [4, 4, 4, 3, 3, 3, 2, 2]  # fewer steps at higher SNR (SNRS is increasing)


def test_table1_verdicts():
    report = pt.build_report(grid())
    assert verdicts(report, "table1") == {
        "more_iterations": "reproduced",
        "iterated_vs_conventional": "reproduced",
    }
    # Two iterations worse than one: the trend breaks. With as many training batches for
    # every model, no reason is given; with fewer batches for more iterations, that is the one.
    report = pt.build_report(grid(si={"t1_1x1x2": 2.5}))
    assert verdicts(report, "table1")["more_iterations"] == "not reproduced"
    assert "Likely reason" not in report["table1"]["claims"][0]["text"]
    entries = grid(si={"t1_1x1x4": 3.5})
    entries["t1_1x1x4"]["measure"]["train_done"]["global_steps"] = 50
    claim = pt.build_report(entries)["table1"]["claims"][0]
    assert claim["verdict"] == "not reproduced"
    assert "ran 50 batches against 100" in claim["text"]
    # The conventional model 1.5 dB better: beyond the 1-dB criterion.
    report = pt.build_report(grid(si={"t1_1x4x1": 7.5}))
    claim = report["table1"]["claims"][1]
    assert claim["verdict"] == "not reproduced"
    assert claim["numbers"]["gap_db"] == pytest.approx(1.5)
    assert claim["numbers"]["param_ratio"] == pytest.approx(4.0)


def test_table2_verdicts_need_quality_and_memory():
    report = pt.build_report(grid())
    assert verdicts(report, "table2") == {
        "progressive_2_blocks": "reproduced",
        "progressive_4_blocks": "reproduced",
    }
    rows = {r["tag"]: r for r in report["table2"]["rows"]}
    assert rows["t2_prog_2x2x1"]["train_memory_mib"] == pytest.approx(50.0)
    # Memory ratio 0.7 > 0.55 for two blocks.
    report = pt.build_report(grid(mem={"t2_prog_2x2x1": 70.0}))
    assert verdicts(report, "table2")["progressive_2_blocks"] == "not reproduced"
    assert report["table2"]["claims"][0]["numbers"]["memory_ratio"] == pytest.approx(0.7)
    assert "Likely reason for the memory" in report["table2"]["claims"][0]["text"]
    # Quality 2 dB below end to end.
    report = pt.build_report(grid(si={"t2_prog_4x1x1": 4.5}))
    assert verdicts(report, "table2")["progressive_4_blocks"] == "not reproduced"


def test_table2_incomplete_progressive_run_is_not_reproduced():
    entries = grid()
    entries["t2_prog_4x1x1"]["results"]["model"]["progressive"]["complete"] = False
    report = pt.build_report(entries)
    assert verdicts(report, "table2")["progressive_4_blocks"] == "not reproduced"


def test_fig5_adaptive_gate_is_reproduced():
    report = pt.build_report(grid(gated_steps=ADAPTIVE, gated_si=5.1))
    f5 = report["fig5"]
    assert f5["spearman_snr_steps"] < -0.9
    assert f5["steps_mean"] == pytest.approx(3.125)
    # Ungated curve 1..4 steps = 3, 4, 5, 6 dB: at 3.125 steps, 5.125 dB.
    assert f5["ungated_si_sdri_at_mean_steps"] == pytest.approx(5.125)
    assert f5["steps_histogram"] == {"2": 2, "3": 3, "4": 3}
    # Measured 1..4 GFLOPs at 1..4 steps: 3.125 GFLOPs at the mean.
    assert f5["gflops_per_second_at_mean_steps"] == pytest.approx(3.125)
    assert verdicts(report, "fig5") == {
        "gate_adapts": "reproduced",
        "gated_beats_3_steps": "reproduced",
    }


def test_fig5_constant_or_wrong_way_gate_is_not_reproduced():
    constant = pt.build_report(grid(gated_steps=[2] * 8, gated_si=4.0))
    assert constant["fig5"]["spearman_snr_steps"] is None
    assert verdicts(constant, "fig5")["gate_adapts"] == "not reproduced"
    # More steps at high SNR: a positive correlation.
    reverse = pt.build_report(grid(gated_steps=ADAPTIVE[::-1], gated_si=5.0))
    assert reverse["fig5"]["spearman_snr_steps"] > 0.9
    assert verdicts(reverse, "fig5")["gate_adapts"] == "not reproduced"


def test_fig5_adaptive_but_too_weak_is_not_reproduced():
    # Adapts, but 0.8 dB below the ungated models at the same mean steps (5.125 dB).
    report = pt.build_report(grid(gated_steps=ADAPTIVE, gated_si=4.325))
    assert verdicts(report, "fig5")["gate_adapts"] == "not reproduced"
    assert verdicts(report, "fig5")["gated_beats_3_steps"] == "not reproduced"


def test_missing_entries_are_reported_not_run():
    report = pt.build_report({})
    for section in ("table1", "table2", "fig5"):
        assert {c["verdict"] for c in report[section]["claims"]} == {"not run"}
    md = pt.report_markdown(report)
    assert "not run" in md


def test_spearman_oracle_and_ties():
    assert pt.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert pt.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Ties take average ranks: ranks (1, 2, 3, 4) vs (1.5, 1.5, 3.5, 3.5) -> 2 / sqrt(5).
    assert pt.spearman([1, 2, 3, 4], [0, 0, 1, 1]) == pytest.approx(2 / np.sqrt(5))
    assert pt.spearman([1, 2, 3], [5, 5, 5]) is None
    with pytest.raises(ValueError, match="same length"):
        pt.spearman([1, 2, 3], [1, 2])


def test_interpolate_curve():
    curve = {1.0: 3.0, 2.0: 4.0, 4.0: 8.0}
    assert pt.interpolate_curve(curve, 3.0) == pytest.approx(6.0)
    assert pt.interpolate_curve(curve, 1.0) == pytest.approx(3.0)
    assert pt.interpolate_curve(curve, 4.5) is None
    assert pt.interpolate_curve({}, 2.0) is None


def test_progressive_step_epochs_share_the_budget():
    # 600 s, 2 steps, margin 0.85: 255 s each; epochs of (50 + 10/3) batches.
    epochs = pt.progressive_step_epochs([0.5, 0.25], 600, 50, 10)
    assert epochs == [int(255 // (0.5 * (50 + 10 / 3))), int(255 // (0.25 * (50 + 10 / 3)))]
    assert epochs[1] > epochs[0]  # a cheaper step runs more epochs in the same time
    assert pt.progressive_step_epochs([100.0], 60, 50, 10) == [1]
    with pytest.raises(ValueError, match="positive"):
        pt.progressive_step_epochs([0.0], 60, 50, 10)


def test_markdown_and_plots(tmp_path):
    report = pt.build_report(grid(gated_steps=ADAPTIVE), {"command": "`x`", "wall_time": "1 min"})
    plots = pt.write_plots(report, tmp_path)
    assert set(plots.values()) == {"table1.png", "table2.png", "fig5.png"}
    for name in plots.values():
        assert (tmp_path / name).stat().st_size > 1000
    md = pt.report_markdown(report, plots)
    for text in ("## 1. Table 1", "## 2. Table 2", "## 3. Fig. 5", "![Fig. 5 trend](fig5.png)"):
        assert text in md
    assert md.count("**reproduced**") == 6
    assert md.count("| reproduced |") == 6  # the summary table
    assert "- command: `x`" in md


def test_grid_configurations_load():
    for tag, conf in pt.GRID.items():
        c = load_config(str(RECIPE / conf), [])
        assert c["training"]["max_time_minutes"], tag
    prog = load_config(str(RECIPE / pt.GRID["t2_prog_4x1x1"]), [])
    assert prog["training"]["mode"] == "progressive" and prog["model"]["n_blocks"] == 4
    gated = load_config(str(RECIPE / pt.GRID[pt.GATED]), [])
    assert gated["training"]["mode"] == "gated"
    # Every ungated model of the Fig. 5 curve has one U-ConvBlock (equal parameters).
    for tag in pt.ITERATED:
        assert load_config(str(RECIPE / pt.GRID[tag]), [])["model"]["n_sub_blocks"] == 1


def test_fig5_oracle_section_and_reason():
    entries = grid(gated_steps=[2] * 8, gated_si=4.0)
    # Per-step SI-SDRi of the 4-step baseline: every mixture gains 1 dB at step 2 and 0.1 dB
    # after, whatever its SNR, so the oracle (lambda 0.3) takes 2 steps everywhere.
    per_step = [{"input_snr": s, "si_sdri": [1.0, 2.0, 2.1, 2.2]} for s in SNRS]
    entries["t1_1x1x4"]["measure"]["per_step"] = per_step
    entries["gated_1x1x4"]["measure"]["lambda"] = 0.3
    f5 = pt.build_report(entries)["fig5"]
    assert f5["oracle"]["oracle_steps_mean"] == 2.0
    assert f5["oracle"]["oracle_spearman_snr"] is None  # constant: undefined
    assert f5["oracle"]["marginal_gain"]["2"]["mean"] == pytest.approx(1.0)
    assert f5["oracle"]["marginal_gain"]["3"]["share_above_lambda"] == 0.0
    # The oracle's steps grow with SNR here (1 step below 0 dB, 4 above): positive correlation.
    per_step = [
        {"input_snr": s, "si_sdri": [1.0, 1.1, 1.2, 1.3] if s < 0 else [1.0, 2.0, 3.0, 4.0]}
        for s in SNRS
    ]
    entries["t1_1x1x4"]["measure"]["per_step"] = per_step
    f5 = pt.build_report(entries)["fig5"]
    assert f5["oracle"]["oracle_spearman_snr"] > 0.8
    assert "even an oracle gate would not do it" in f5["claims"][0]["text"]
    assert pt.oracle_steps(per_step[:1], 0.0) == [4] and pt.oracle_steps(per_step[:1], 0.3) == [1]
