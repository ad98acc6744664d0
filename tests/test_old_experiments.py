"""Experiment folders trained by the recipes before the experiment toolkit still evaluate.

``tests/data/old_experiments/`` holds two small experiment folders (``conf.yml``,
``best_model.pth``, ``train_done.json``) written by the recipes at commit 734b8c9, before they
were rewritten on :mod:`asteroid_lir.experiment`, with that code's stage-3 figures
(``old_results.json``). Each test rebuilds the same small corpus with stages 0-1 and runs stage 3
of today's recipe on the old folder: the WHAM! figures must be the same (same metric stack,
asteroid's), the unified ones within 0.05 dB (the old recipe computed SI-SDR/SNR with its own
numpy code, today's with ``asteroid.metrics``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "data" / "old_experiments"
ENV = dict(os.environ, LIR_VENV=str(Path(sys.executable).parents[1]))


def _recipe(name: str, *args: str) -> subprocess.CompletedProcess:
    run = subprocess.run(
        [str(ROOT / "egs" / name / "run.sh"), *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def _old_folder(tmp_path: Path, name: str) -> tuple[Path, dict]:
    exp = tmp_path / "exp" / name
    shutil.copytree(FIXTURES / name, exp)
    old = json.loads((exp / "old_results.json").read_text())
    return exp, old


def test_an_old_wham_experiment_evaluates_with_the_same_figures(tmp_path):
    exp, old = _old_folder(tmp_path, "wham_tiny_sep_noisy")
    common = ["--conf", str(exp / "conf.yml"), "--data_dir", str(tmp_path / "data")]
    _recipe("wham", *common, "--stop_stage", "1")
    _recipe("wham", *common, "--stage", "3", "--stop_stage", "3", "--held_out", "false",
            "--tag", exp.name, "--exp_dir", str(exp.parent))  # fmt: skip
    new = json.loads((exp / "results.json").read_text())
    assert [u["id"] for u in new["utterances"]] == [u["id"] for u in old["utterances"]]
    for metric in ("si_sdri", "sdri"):
        np.testing.assert_allclose(
            [u[metric] for u in new["utterances"]],
            [u[metric] for u in old["utterances"]],
            atol=1e-3,
        )
    assert new["summary"]["si_sdri"] == pytest.approx(old["summary"]["si_sdri"], abs=1e-3)


@pytest.mark.slow
def test_an_old_unified_experiment_evaluates_every_task(tmp_path):
    exp, old = _old_folder(tmp_path, "unified_tiny")
    common = ["--conf", str(exp / "conf.yml"), "--data_dir", str(tmp_path / "data")]
    _recipe("unified", *common, "--stop_stage", "1")
    _recipe("unified", *common, "--stage", "3", "--stop_stage", "3", "--tag", exp.name,
            "--exp_dir", str(exp.parent))  # fmt: skip
    new = json.loads((exp / "results.json").read_text())["tasks"]
    assert set(new) == set(old["tasks"])
    for task, figures in old["tasks"].items():
        for key in ("score", "improvement"):
            assert new[task][key] == pytest.approx(figures[key], abs=0.05), (task, key)
