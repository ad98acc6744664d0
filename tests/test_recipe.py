"""The WHAM! recipe (egs/wham): options, configurations, all stages on a tiny corpus, resuming
an interrupted training, re-evaluation without retraining, and DDP with two CPU processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "wham"
sys.path.insert(0, str(RECIPE))
from local.config import load_config, n_sources  # noqa: E402

# A model of a few thousand parameters on a corpus of a few 1-s mixtures: every stage runs in
# seconds, which is all these tests need (they check the plumbing, not the separation quality).
TINY = {
    "defaults": str(RECIPE / "conf" / "paper.yml"),
    "data": {
        "segment": 0.5,
        "mini": {"n_train": 8, "n_valid": 4, "n_test": 4, "utt_seconds": 1.0, "seed": 3},
    },
    "model": {
        "n_blocks": 1,
        "n_sub_blocks": 1,
        "n_iters": 2,
        "bn_chan": 16,
        "n_filters": 32,
        "upsampling_depth": 2,
    },
    "training": {"epochs": 2, "batch_size": 2, "num_workers": 0, "log_every_n_steps": 1},
    "evaluation": {"n_examples": 1},
}


def write_conf(folder: Path, name: str = "tiny.yml", **sections) -> Path:
    conf = {key: dict(value) if isinstance(value, dict) else value for key, value in TINY.items()}
    for key, value in sections.items():
        conf[key] = {**conf.get(key, {}), **value}
    path = folder / name
    path.write_text(yaml.safe_dump(conf))
    return path


def run_recipe(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(RECIPE / "run.sh"), *args], capture_output=True, text=True, timeout=timeout
    )


def corpus_args(tmp: Path, conf: Path) -> list[str]:
    return ["--conf", str(conf), "--exp_dir", str(tmp / "exp"), "--data_dir", str(tmp / "data")]


def meta_dir(tmp: Path) -> Path:
    (folder,) = [p for p in (tmp / "data").iterdir() if p.is_dir() and p.name.startswith("mini_")]
    return folder / "metadata"


# --------------------------------------------------------------------------- options


def test_unknown_option_is_a_clear_error():
    res = run_recipe("--stagee", "2")
    assert res.returncode != 0
    assert "unknown option '--stagee'" in res.stderr
    assert "--stop_stage" in res.stderr  # the known options are listed


def test_help_lists_options_and_exits_zero():
    res = run_recipe("--help")
    assert res.returncode == 0
    for option in ("--stage", "--stop_stage", "--tag", "--conf", "--task", "--wham_dir", "--id"):
        assert option in res.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "sep_clean"], "--task must be sep_noisy or enh_single"),
        (["--stage"], "needs a value"),
        (["--id", "gpu0"], "--id takes GPU ids"),
        (["--conf", "conf/nope.yml"], "configuration file 'conf/nope.yml' not found"),
        (["--wham_dir", "/nonexistent/wham"], "is not a directory"),
        (["extra"], "unexpected argument"),
    ],
)
def test_bad_options_are_reported(args, message):
    res = run_recipe(*args)
    assert res.returncode != 0
    assert message in res.stderr


def test_missing_inputs_stop_with_the_missing_path(tmp_path):
    conf = write_conf(tmp_path)
    res = run_recipe(*corpus_args(tmp_path, conf), "--stage", "2")
    assert res.returncode != 0
    assert "tr.json is missing" in res.stderr and "--stage 1" in res.stderr
    res = run_recipe(*corpus_args(tmp_path, conf), "--stage", "3")
    assert res.returncode != 0
    assert "best_model.pth" in res.stderr and "run stage 2" in res.stderr


# --------------------------------------------------------------------------- configurations


def test_config_inheritance_and_overrides(tmp_path):
    (tmp_path / "base.yml").write_text(
        "data: {sample_rate: 8000}\nmodel: {n_blocks: 1, bn_chan: 128}\n"
        "training: {epochs: 200}\noptim: {lr: 0.001}\nscheduler: {step_size: 40, gamma: 0.5}\n"
    )
    (tmp_path / "child.yml").write_text("defaults: base.yml\nmodel: {n_blocks: 2}\n")
    conf = load_config(tmp_path / "child.yml", ["training.epochs=3", "optim.lr=1e-4"])
    assert conf["model"] == {"n_blocks": 2, "bn_chan": 128}
    assert conf["training"]["epochs"] == 3 and conf["optim"]["lr"] == 1e-4
    assert conf["training"]["mode"] == "end_to_end"
    (tmp_path / "loop.yml").write_text("defaults: loop.yml\n")
    with pytest.raises(ValueError, match="loop"):
        load_config(tmp_path / "loop.yml")
    with pytest.raises(FileNotFoundError, match="missing.yml"):
        load_config(tmp_path / "missing.yml")
    (tmp_path / "bad_mode.yml").write_text("defaults: base.yml\ntraining: {mode: magic}\n")
    with pytest.raises(ValueError, match="training.mode"):
        load_config(tmp_path / "bad_mode.yml")


PAPER_PARAMS_M = {  # paper Table 1 (millions): enhancement, separation; README lists ours
    "1x1x1": (0.4, 0.5), "1x1x4": (0.4, 0.5), "1x4x1": (0.8, 1.0), "1x4x4": (0.8, 1.0),
    "1x8x1": (1.4, 1.5), "1x16x1": (2.6, 2.7), "2x4x2": (1.4, 1.5),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS_M))
def test_table1_configs_give_the_paper_parameter_counts(name):
    from asteroid_lir.models import LIRSuDORMRFNet

    conf = load_config(RECIPE / "conf" / "table1" / f"{name}.yml")
    args = {k: v for k, v in conf["model"].items() if k != "name"}
    for task, expected in zip(("enh_single", "sep_noisy"), PAPER_PARAMS_M[name]):
        _, n_src = n_sources(task, conf["data"]["return_noise"])
        model = LIRSuDORMRFNet(n_src=n_src, **args)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        assert abs(params - expected) < 0.1, (name, task, params)  # paper rounds to 0.1 M


def test_every_paper_config_has_the_paper_hyper_parameters():
    paper = sorted((RECIPE / "conf").glob("*/*.yml"))
    names = {f"{p.parent.name}/{p.stem}" for p in paper}
    for row in ("1x1x1", "1x1x2", "1x1x3", "1x1x4", "1x4x1", "1x4x4", "1x8x1", "1x16x1", "2x4x2"):
        assert f"table1/{row}" in names
    for row in ("2x8x1", "2x4x2", "2x2x4", "4x4x1", "4x2x2", "4x1x4"):
        assert f"table2/prog_{row}" in names
    assert "gated/1x1x4" in names
    for path in paper:
        conf = load_config(path)
        train = conf["training"]
        assert conf["data"]["sample_rate"] == 8000 and conf["data"]["segment"] == 4.0
        assert conf["optim"]["lr"] == 1e-3 and train["gradient_clip_val"] == 5.0
        assert conf["scheduler"]["step_size"] == 40
        assert conf["scheduler"]["gamma"] == pytest.approx(1 / 3)
        if path.parent.name == "table2" and path.stem.startswith("prog_"):
            assert train["mode"] == "progressive" and conf["model"]["head_per_block"]
            assert train["epochs"] == 200
        elif path.parent.name == "gated":
            assert train["mode"] == "gated" and train["epochs"] == 180
            assert conf["gated"]["joint_epochs"] == 20 and conf["gated"]["step_size"] == 5
        else:
            assert train["mode"] == "end_to_end" and train["epochs"] == 200
        b, s, i = (int(v) for v in path.stem.split("_")[-1].split("x"))
        assert (conf["model"]["n_blocks"], conf["model"]["n_sub_blocks"]) == (b, s)
        assert conf["model"]["n_iters"] == i


def test_default_cpu_config_is_bounded_in_time():
    conf = load_config(RECIPE / "conf" / "mini_cpu.yml")
    assert conf["training"]["max_time_minutes"] and conf["training"]["max_time_minutes"] <= 11
    assert conf["data"]["mini"]["n_test"] > 0


# --------------------------------------------------------------------------- whole recipe


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """All stages (0-4) of the recipe on a tiny corpus, once for the tests below."""
    tmp = tmp_path_factory.mktemp("recipe")
    conf = write_conf(tmp)
    start = time.time()
    res = run_recipe(*corpus_args(tmp, conf), "--tag", "tiny")
    elapsed = time.time() - start
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return tmp, conf, res, elapsed


@pytest.mark.slow
def test_whole_recipe_on_a_tiny_corpus(finished_run):
    tmp, _, res, elapsed = finished_run
    assert elapsed < 60, f"the tiny recipe took {elapsed:.0f} s"
    exp = tmp / "exp" / "tiny"
    for stage in range(5):
        assert f"[stage {stage}]" in res.stdout
    results = json.loads((exp / "results.json").read_text())
    summary = results["summary"]
    assert summary["n_utterances"] == 4 and len(summary["si_sdri_per_source"]) == 2
    assert summary["si_sdri"] == pytest.approx(sum(summary["si_sdri_per_source"]) / 2)
    assert summary["rtf"] > 0 and results["model"]["parameters"] > 0
    assert [q["quartile"] for q in results["quartiles"]] == [1, 2, 3, 4]
    assert sum(q["count"] for q in results["quartiles"]) == 4
    for row in results["utterances"]:  # SI-SDRi = SI-SDR of the estimate - that of the mixture
        for out, base, imp in zip(row["si_sdr"], row["input_si_sdr"], row["si_sdri"]):
            assert imp == pytest.approx(out - base)
    report = (exp / "results.md").read_text()
    for png in ("snr_quartiles.png", "training_curves.png"):
        assert (exp / png).stat().st_size > 0 and f"({png})" in report
    (example,) = (exp / "examples").iterdir()
    assert {p.name for p in example.iterdir()} >= {"mixture.wav", "s1_estimate.wav"}
    from asteroid_lir.models import LIRSuDORMRFNet

    model = LIRSuDORMRFNet.from_pretrained(str(exp / "best_model.pth"))
    assert model.get_model_args()["n_src"] == 3 and model.n_steps == 2
    with torch.no_grad():
        assert model(torch.randn(1, 800)).shape == (1, 3, 800)


@pytest.mark.slow
def test_rerun_skips_training_and_stage3_reevaluates(finished_run):
    tmp, conf, _, _ = finished_run
    exp = tmp / "exp" / "tiny"
    model_mtime = (exp / "best_model.pth").stat().st_mtime_ns
    ckpts = sorted(p.name for p in (exp / "checkpoints").iterdir())
    res = run_recipe(*corpus_args(tmp, conf), "--tag", "tiny", "--stage", "0", "--stop_stage", "2")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "already built, skipping" in res.stdout and "already trained" in res.stdout
    (exp / "results.json").unlink()
    res = run_recipe(*corpus_args(tmp, conf), "--tag", "tiny", "--stage", "3", "--stop_stage", "3")
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((exp / "results.json").read_text())["summary"]["n_utterances"] == 4
    assert (exp / "best_model.pth").stat().st_mtime_ns == model_mtime
    assert sorted(p.name for p in (exp / "checkpoints").iterdir()) == ckpts
    assert "Training" not in res.stdout


@pytest.mark.slow
def test_killed_training_resumes_from_last_checkpoint(finished_run):
    tmp, conf, _, _ = finished_run
    exp = tmp / "exp" / "resume"
    cmd = [
        sys.executable, str(RECIPE / "train.py"), "--conf", str(conf), "--task", "sep_noisy",
        "--meta_dir", str(meta_dir(tmp)), "--exp_dir", str(exp),
    ]  # fmt: skip
    last = exp / "checkpoints" / "last.ckpt"
    # A long training, killed without warning once it has written a checkpoint.
    proc = subprocess.Popen(
        [*cmd, "--set", "training.epochs=1000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 120
        while not last.is_file() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        time.sleep(0.5)  # let the checkpoint file be complete
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert last.is_file(), "the training never wrote last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=False)
    done_epochs, done_steps = saved["epoch"], saved["global_step"]
    assert not (exp / "train_done.json").exists()
    # Re-running continues from that checkpoint, it does not start a new training.
    res = subprocess.run(
        [*cmd, "--set", f"training.epochs={done_epochs + 3}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Resuming from" in res.stdout
    info = json.loads((exp / "train_done.json").read_text())
    assert info["epochs_done"] == done_epochs + 3
    # "epoch" of a checkpoint is the index of the epoch it ended: two epochs remain to run.
    steps_per_epoch = 8 // 2
    assert info["global_steps"] == done_steps + 2 * steps_per_epoch
    # The logs of the killed run are kept next to those of the resumed one.
    assert len(list((exp / "logs" / "csv").glob("version_*/metrics.csv"))) == 2


@pytest.mark.slow
def test_ddp_with_two_cpu_processes(finished_run):
    tmp, conf, _, _ = finished_run
    exp = tmp / "exp" / "ddp"
    res = subprocess.run(
        [
            sys.executable, str(RECIPE / "train.py"), "--conf", str(conf), "--task", "sep_noisy",
            "--meta_dir", str(meta_dir(tmp)), "--exp_dir", str(exp), "--num_cpu_procs", "2",
            "--set", "training.epochs=1",
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    info = json.loads((exp / "train_done.json").read_text())
    # 8 training mixtures, batch 2 per process, 2 processes: 2 optimizer steps per epoch.
    assert info["epochs_done"] == 1 and info["global_steps"] == 2
    assert (exp / "best_model.pth").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["gated", "progressive"])
def test_gated_and_progressive_training_modes(finished_run, mode):
    pytest.importorskip(f"asteroid_lir.engine.{mode}")
    tmp, _, _, _ = finished_run
    if mode == "gated":
        extra = {
            "training": {"mode": "gated", "epochs": 1},
            "gated": {"joint_epochs": 1, "lambda": 0.1, "gate": {"gate_kernel_size": 16}},
        }
    else:
        extra = {
            "training": {"mode": "progressive", "epochs": 2},
            "model": {"n_blocks": 2, "n_iters": 1, "head_per_block": True},
        }
    conf = write_conf(tmp, f"tiny_{mode}.yml", **extra)
    res = run_recipe(*corpus_args(tmp, conf), "--tag", mode, "--stage", "2")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    exp = tmp / "exp" / mode
    results = json.loads((exp / "results.json").read_text())
    assert results["model"]["gated"] == (mode == "gated")
    if mode == "gated":
        assert (exp / "pretrain" / "best_model.pth").is_file()  # phase 1 kept apart
        steps = [row["steps"] for row in results["utterances"]]
        assert all(1 <= s <= 2 for s in steps)
        assert results["summary"]["steps_mean"] == pytest.approx(sum(steps) / len(steps))
        assert (exp / "steps_histogram.png").stat().st_size > 0
    else:
        assert results["model"]["model_args"]["n_blocks"] == 2
