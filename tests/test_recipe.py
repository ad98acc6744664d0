"""The WHAM! recipe (egs/wham): options, configurations, models by name, all stages on a tiny
corpus, resuming an interrupted training, re-evaluation without retraining, DDP with two CPU
processes, and the gated and progressive procedures (per-phase reports, early-stopped
progressive runs)."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from asteroid_lir.engine.procedures import TrainingJob, completed_steps, train
from asteroid_lir.experiment import registry
from asteroid_lir.experiment.cli import StageError, check_experiment
from asteroid_lir.experiment.config import load_config
from asteroid_lir.experiment.trainer import phase_report
from asteroid_lir.models import LIRSuDORMRFNet
from asteroid_lir.synth.tts_testset import espeak_available
from asteroid_lir.tasks import n_speech as task_speakers

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "wham"


def n_sources(task: str, return_noise: bool) -> tuple[int, int]:
    n_speech = task_speakers(task)
    return n_speech, n_speech + int(return_noise)


def build(conf: dict, n_src: int, progressive: bool = False):
    model_conf = registry.resolve_model_conf(
        conf["model"], conf["data"]["sample_rate"], n_src, progressive, "LIRSuDORMRFNet"
    )
    return registry.build_model(model_conf)


# A model of a few thousand parameters on a corpus of a few 1-s mixtures: every stage runs in
# seconds, which is all these tests need (they check the plumbing, not the separation quality).
TINY = {
    "defaults": str(RECIPE / "conf" / "paper.yml"),
    "data": {
        "segment": 0.5,
        # The formant engine needs no synthesis pools: the corpus builds in a second.
        "mini": {
            "n_train": 8,
            "n_valid": 4,
            "n_test": 4,
            "utt_seconds": 1.0,
            "seed": 3,
            "speech": "formant",
        },
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
        (["--extra_metrics", "maybe"], "--extra_metrics must be true or false"),
        (["--held_out", "yes"], "--held_out must be auto, true or false"),
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


def test_held_out_set_needs_espeak_only_when_asked_for(tmp_path):
    # The recipe's data script in a process where eSpeak NG (espeakng-loader) is not installed.
    hide = tmp_path / "hide"
    (hide / "espeakng_loader").mkdir(parents=True)
    (hide / "espeakng_loader" / "__init__.py").write_text("raise ImportError('not installed')\n")
    env = dict(os.environ, PYTHONPATH=f"{hide}:{os.environ.get('PYTHONPATH', '')}")
    conf = write_conf(tmp_path)

    def held_out(mode):
        cmd = [sys.executable, str(RECIPE / "local" / "prepare_data.py"), "held_out",
               "--conf", str(conf), "--data_root", str(tmp_path), "--held_out", mode]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)

    res = held_out("auto")
    assert res.returncode == 0 and res.stdout == ""
    assert "espeakng-loader" in res.stderr and "skipping" in res.stderr
    res = held_out("true")
    assert res.returncode != 0 and "espeakng-loader" in res.stderr
    assert "Traceback" not in res.stderr
    res = held_out("false")
    assert res.returncode == 0 and res.stdout == ""
    assert not list(tmp_path.glob("heldout_*"))


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
    (tmp_path / "loop.yml").write_text("defaults: loop.yml\n")
    with pytest.raises(ValueError, match="loop"):
        load_config(tmp_path / "loop.yml")
    with pytest.raises(FileNotFoundError, match="missing.yml"):
        load_config(tmp_path / "missing.yml")
    # A model section naming another model replaces the inherited one instead of merging.
    (tmp_path / "other.yml").write_text("defaults: child.yml\nmodel: {name: OtherNet, depth: 3}\n")
    assert load_config(tmp_path / "other.yml")["model"] == {"name": "OtherNet", "depth": 3}
    (tmp_path / "named.yml").write_text("defaults: other.yml\nmodel: {name: OtherNet, width: 8}\n")
    assert load_config(tmp_path / "named.yml")["model"] == {
        "name": "OtherNet",
        "depth": 3,
        "width": 8,
    }
    # So does one naming another preset (the sizes tuned for the inherited preset do not apply).
    (tmp_path / "preset.yml").write_text("defaults: named.yml\nmodel: {preset: large}\n")
    assert load_config(tmp_path / "preset.yml")["model"] == {"preset": "large"}
    (tmp_path / "same.yml").write_text("defaults: preset.yml\nmodel: {preset: large, d: 1}\n")
    assert load_config(tmp_path / "same.yml")["model"] == {"preset": "large", "d": 1}
    with pytest.raises(ValueError, match=r"lacks the section\(s\) \['optim2'\]"):
        load_config(tmp_path / "child.yml", required=("optim", "optim2"))
    bad = load_config(tmp_path / "child.yml", ["training.mode=magic"])
    with pytest.raises(ValueError, match="training.mode must be one of"):
        train(TrainingJob(bad, tmp_path, None, (None, None), {}, None))


def test_an_experiment_folder_refuses_another_configuration(tmp_path):
    exp = tmp_path / "exp"
    conf = {"training": {"epochs": 4, "max_time_minutes": None}, "optim": {"lr": 1e-3},
            "evaluation": {"n_examples": 3}}  # fmt: skip
    assert check_experiment(exp, conf) == "new"
    assert yaml.safe_load((exp / "conf.yml").read_text()) == conf
    assert check_experiment(exp, conf) == "resume"  # not trained to the end yet
    (exp / "train_done.json").write_text("{}")
    (exp / "best_model.pth").write_bytes(b"")
    assert check_experiment(exp, conf) == "done"
    # Evaluation settings change nothing trained: recorded, still done.
    later = {**conf, "evaluation": {"n_examples": 0, "metrics": ["si_sdr"]}}
    assert check_experiment(exp, later) == "done"
    assert yaml.safe_load((exp / "conf.yml").read_text())["evaluation"]["n_examples"] == 0
    # A longer budget continues the same training.
    longer = {**later, "training": {"epochs": 8, "max_time_minutes": None}}
    assert check_experiment(exp, longer) == "resume"
    assert yaml.safe_load((exp / "conf.yml").read_text())["training"]["epochs"] == 8
    # Another hyper-parameter is another experiment: refused, naming the difference.
    with pytest.raises(StageError, match=r"optim.lr: 0.001 -> 0.0005"):
        check_experiment(exp, {**longer, "optim": {"lr": 5e-4}})


# Exact counts of the Table 1 configurations (enhancement: 2 outputs, separation: 3). The paper
# rounds to 0.1 M and differs in places; egs/wham/README.md lists both.
TABLE1_PARAMS = {
    "1x1x1": (375_042, 441_090), "1x1x4": (375_042, 441_090), "1x4x1": (839_301, 905_349),
    "1x4x4": (839_301, 905_349), "1x8x1": (1_458_313, 1_524_361),
    "1x16x1": (2_696_337, 2_762_385), "2x4x2": (1_458_313, 1_524_361),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(TABLE1_PARAMS))
def test_table1_configs_give_the_exact_parameter_counts(name):
    conf = load_config(RECIPE / "conf" / "table1" / f"{name}.yml")
    for task, expected in zip(("enh_single", "sep_noisy"), TABLE1_PARAMS[name]):
        _, n_src = n_sources(task, conf["data"]["return_noise"])
        model = build(conf, n_src)
        assert sum(p.numel() for p in model.parameters()) == expected, (name, task)


def test_every_paper_config_has_the_paper_hyper_parameters():
    paper = sorted(
        p for d in ("table1", "table2", "gated") for p in (RECIPE / "conf" / d).glob("*.yml")
    )
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
        assert conf["loss"] == {"extra_weight": 0.0}  # the paper's loss: speech SI-SDR alone
        mode = train.get("mode", "end_to_end")
        if path.parent.name == "table2" and path.stem.startswith("prog_"):
            assert mode == "progressive" and conf["model"]["head_per_block"]
            assert train["epochs"] == 200
        elif path.parent.name == "gated":
            assert mode == "gated" and train["epochs"] == 180
            assert conf["gated"]["joint_epochs"] == 20 and conf["gated"]["step_size"] == 5
            # The paper trains network and gate at one rate (the library default is lr / 10).
            assert conf["gated"]["network_lr"] == conf["gated"]["gate_lr"] == 1e-3
        else:
            assert mode == "end_to_end" and train["epochs"] == 200
        b, s, i = (int(v) for v in path.stem.split("_")[-1].split("x"))
        assert (conf["model"]["n_blocks"], conf["model"]["n_sub_blocks"]) == (b, s)
        assert conf["model"]["n_iters"] == i


def test_tflocoformer_configs_build_the_reference_sizes():
    sizes = {}
    for name in ("S", "S_1x2x2", "mini_cpu"):
        conf = load_config(RECIPE / "conf" / "tflocoformer" / f"{name}.yml")
        model = build(conf, 2)
        assert type(model).__name__ == "TFLocoformerNet"
        sizes[name] = (sum(p.numel() for p in model.parameters()), model.n_steps)
    assert abs(sizes["S"][0] / 5.125e6 - 1) < 0.01 and sizes["S"][1] == 1  # the paper's S
    assert sizes["S_1x2x2"][1] == 2 and sizes["S_1x2x2"][0] < 0.55 * sizes["S"][0]
    assert sizes["mini_cpu"][1] == 2


def test_every_configuration_trains_for_steps_not_minutes():
    # The same command and seed give the same model on any machine: every recipe configuration
    # gives its length in epochs of a fixed number of steps, and none sets a wall-time bound.
    for recipe in (RECIPE, RECIPE.parent / "unified"):
        for path in sorted((recipe / "conf").rglob("*.yml")):
            if path.parent.name == "grids":
                continue
            training = load_config(path, default_model="LIRSuDORMRFNet")["training"]
            assert training.get("max_time_minutes") is None, path
            assert isinstance(training["epochs"], int) and training["epochs"] > 0, path
    conf = load_config(RECIPE / "conf" / "mini_cpu.yml")
    assert conf["training"]["epochs"] * conf["training"]["limit_train_batches"] == 4000
    tuss = load_config(RECIPE.parent / "unified" / "conf" / "tuss_cpu.yml")["training"]
    assert tuss["epochs"] * tuss["batches_per_epoch"] == 2000
    assert conf["data"]["mini"]["n_test"] > 0
    for name in ("mini_cpu", "mini_gated"):  # the mini configurations keep the noise term
        assert load_config(RECIPE / "conf" / f"{name}.yml")["loss"] == {"extra_weight": 1.0}
    # The quick start trains on every speech engine; the configurations whose committed figures
    # were measured on the formant corpus keep it.
    assert conf["data"]["mini"]["speech"] == "auto"
    for name in ("mini_gated", "tflocoformer/mini_cpu", "front_ends/sfc_16k"):
        assert load_config(RECIPE / "conf" / f"{name}.yml")["data"]["mini"]["speech"] == "formant"


# --------------------------------------------------------------------------- models by name


def test_unknown_model_name_lists_the_registered_ones():
    conf = load_config(RECIPE / "conf" / "paper.yml", ["model.name=SudoNet"])
    with pytest.raises(ValueError, match="Unknown model 'SudoNet'") as err:
        build(conf, 3)
    assert "LIRSuDORMRFNet" in str(err.value) and "GatedLIRSuDORMRFNet" in str(err.value)


def test_model_conf_is_resolved_for_the_task_and_the_procedure():
    conf = load_config(
        RECIPE / "conf" / "table2" / "prog_2x4x2.yml", ["model.head_per_block=false"]
    )
    model_conf = registry.resolve_model_conf(conf["model"], 8000, 2, progressive=True)
    assert model_conf["head_per_block"] is True  # progressive mode sets it
    assert model_conf["n_src"] == 2 and model_conf["sample_rate"] == 8000
    assert conf["model"]["head_per_block"] is False  # the input is not modified
    model = registry.build_model(model_conf)
    assert isinstance(model, LIRSuDORMRFNet) and model.refiner.head_per_block
    conf["model"]["sample_rate"] = 16000
    with pytest.raises(ValueError, match="model.sample_rate .16000. differs from data.sample_rate"):
        registry.resolve_model_conf(conf["model"], 8000, 2)


def test_any_registered_model_trains_by_name_with_the_paper_settings(tmp_path):
    # A TF-Locoformer experiment inherits paper.yml's training settings but not its Sudo rm -rf
    # arguments; the preset's sizes are overridden to keep the model tiny.
    (tmp_path / "tfl.yml").write_text(
        f"defaults: {RECIPE / 'conf' / 'paper.yml'}\n"
        "model: {name: TFLocoformerNet, preset: S, n_layers: 1, emb_dim: 8, n_heads: 2, "
        "attention_dim: 8, ffn_hidden_dim: [8, 8], num_groups: 2}\n"
    )
    conf = load_config(tmp_path / "tfl.yml")
    assert "bn_chan" not in conf["model"] and conf["optim"]["lr"] == 1e-3
    model = build(conf, 3)
    assert type(model).__name__ == "TFLocoformerNet" and model.n_src == 3
    # TF-Locoformer runs on the refinement core: one block of n_layers=1 TF-Locoformer blocks.
    assert registry.model_structure(model, "S") == (
        "1x1x1 (blocks x sub-blocks x iterations), preset S"
    )
    with torch.no_grad():
        assert model(torch.randn(1, 1000)).shape == (1, 3, 1000)


class _PresetModel:
    calls: list = []

    def __init__(self, n_src, sample_rate=8000, head_per_block=False):
        pass

    @classmethod
    def from_preset(cls, preset, n_src, sample_rate, **rest):
        cls.calls.append((preset, n_src, sample_rate, rest))
        return "built"


def test_a_preset_goes_to_from_preset(monkeypatch):
    monkeypatch.setattr(
        registry, "registered_models", lambda: {"PresetNet": _PresetModel, "Other": object}
    )
    model_conf = registry.resolve_model_conf(
        {"name": "PresetNet", "preset": "S"}, 8000, 2, progressive=True
    )
    assert registry.build_model(model_conf) == "built"
    assert _PresetModel.calls[-1] == ("S", 2, 8000, {"head_per_block": True})
    with pytest.raises(ValueError, match="Other has no presets"):
        registry.build_model({"name": "Other", "preset": "S", "n_src": 2, "sample_rate": 8000})


def test_load_model_uses_the_registered_class(tmp_path):
    from asteroid_lir.models import GatedLIRSuDORMRFNet

    model = GatedLIRSuDORMRFNet(2, n_filters=16, bn_chan=8, upsampling_depth=2, gate_kernel_size=8)
    torch.save(model.serialize(), tmp_path / "gated.pth")
    loaded, package = registry.load_model(tmp_path / "gated.pth")
    assert type(loaded) is GatedLIRSuDORMRFNet and package["model_name"] == "GatedLIRSuDORMRFNet"
    assert registry.model_structure(loaded).startswith("1x1x4 ")
    package["model_name"] = "NotAModel"
    torch.save(package, tmp_path / "unknown.pth")
    with pytest.raises(ValueError, match="unknown.pth: Unknown model 'NotAModel'"):
        registry.load_model(tmp_path / "unknown.pth")


def test_stopped_by_time_is_judged_per_phase(monkeypatch):
    from pytorch_lightning.callbacks import Timer

    timer = Timer(duration={"minutes": 1})

    def report(epochs_done, planned, remaining, minutes=1.0):
        monkeypatch.setattr(timer, "time_remaining", lambda stage="train": remaining)
        trainer = SimpleNamespace(current_epoch=epochs_done, global_step=0, callbacks=[timer])
        return phase_report(trainer, planned, minutes, None)["stopped_by_time"]

    assert report(1, 3, 10.0) is True  # fewer epochs than planned
    assert report(3, 3, 0.0) is True  # the last epoch was cut short (Lightning counts it)
    assert report(3, 3, 10.0) is False
    assert report(1, 3, 10.0, minutes=None) is False  # no time bound


def test_completed_progressive_steps():
    assert [completed_steps([2, 3], e, 5) for e in range(6)] == [0, 0, 1, 1, 1, 2]
    assert completed_steps([1, 5], 2, 2) == 1  # stopped by max_epochs inside step 2
    # An open-ended last step is complete when the trainer ran its planned epochs.
    assert [completed_steps([2, None], e, 4) for e in (1, 2, 3, 4)] == [0, 1, 1, 2]


# --------------------------------------------------------------------------- whole recipe


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """All stages (0-4) of the recipe on a tiny corpus, once for the tests below."""
    tmp = tmp_path_factory.mktemp("recipe")
    conf = write_conf(tmp)
    # Overrides reach the saved configuration; a list of names (evaluation.metrics) too.
    overrides = "optim.lr=2e-3 evaluation.metrics=[si_sdr,sdr]"
    res = run_recipe(*corpus_args(tmp, conf), "--tag", "tiny", "--set", overrides)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return tmp, conf, res


@pytest.mark.slow
def test_whole_recipe_on_a_tiny_corpus(finished_run):
    tmp, _, res = finished_run
    exp = tmp / "exp" / "tiny"
    for stage in range(5):
        assert f"[stage {stage}]" in res.stdout
    results = json.loads((exp / "results.json").read_text())
    summary = results["summary"]
    assert summary["n_utterances"] == 4 and len(summary["si_sdri_per_source"]) == 2
    assert len(summary["sdri_per_source"]) == 2 and results["model"]["parameters"] > 0
    assert [q["quartile"] for q in results["quartiles"]] == [1, 2, 3, 4]
    assert sum(q["count"] for q in results["quartiles"]) == 4
    assert results["model"]["structure"].startswith("1x1x2 ")
    # conf.yml is the configuration as trained: task, outputs, sample rate and loss filled in.
    trained = yaml.safe_load((exp / "conf.yml").read_text())
    assert trained["data"]["task"] == "sep_noisy" and trained["model"]["n_src"] == 3
    assert trained["model"]["sample_rate"] == 8000 and trained["loss"] == {"extra_weight": 0.0}
    assert trained["optim"]["lr"] == 2e-3  # the command line's --set reaches the saved file
    assert trained["evaluation"]["metrics"] == ["si_sdr", "sdr"]
    report = (exp / "results.md").read_text()
    for png in ("snr_quartiles.png", "training_curves.png"):
        assert (exp / png).stat().st_size > 0 and f"({png})" in report
    (example,) = (exp / "examples").iterdir()
    assert {p.name for p in example.iterdir()} >= {"mixture.wav", "s1_estimate.wav"}
    # Stage 3 also scored the held-out eSpeak NG voices, with examples to listen to, and the
    # report gives that figure.
    if espeak_available():
        (held,) = exp.glob("eval_heldout_espeak_*")
        held_results = json.loads((held / "results.json").read_text())["summary"]
        assert held_results["n_utterances"] == 4  # as many as the mini test split
        (held_example,) = (held / "examples").iterdir()
        assert held_example.name.startswith("tt00000_es")  # eSpeak NG speakers
        assert (held_example / "s2_estimate.wav").stat().st_size > 0
        assert f"{held_results['si_sdri']:.2f} dB" in report and held.name in report
    from asteroid_lir.models import LIRSuDORMRFNet

    model = LIRSuDORMRFNet.from_pretrained(str(exp / "best_model.pth"))
    assert model.get_model_args()["n_src"] == 3 and model.n_steps == 2
    with torch.no_grad():
        assert model(torch.randn(1, 800)).shape == (1, 3, 800)


@pytest.mark.slow
def test_metadata_stage_names_every_bad_file(finished_run, tmp_path):
    tmp, _, _ = finished_run
    wav_dir = meta_dir(tmp).parent / "wav8k" / "min"
    root = tmp_path / "wham"
    shutil.copytree(wav_dir, root / "wav8k" / "min")
    first = sorted((root / "wav8k" / "min" / "tr" / "s1").iterdir())[0]  # sampled by stage 0
    fourth = sorted((root / "wav8k" / "min" / "tr" / "s2").iterdir())[3]  # not sampled
    first.write_bytes(b"")
    fourth.write_bytes(b"RIFF")
    res = subprocess.run(
        [
            sys.executable, str(RECIPE / "local" / "prepare_data.py"), "metadata",
            "--conf", str(RECIPE / "conf" / "paper.yml"), "--data_root", str(tmp_path / "data"),
            "--wham_dir", str(root),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode != 0
    assert str(first) in res.stderr and str(fourth) in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.slow
def test_rerun_skips_training_and_stage3_reevaluates(finished_run):
    tmp, conf, _ = finished_run
    exp = tmp / "exp" / "tiny"
    model_mtime = (exp / "best_model.pth").stat().st_mtime_ns
    ckpts = sorted(p.name for p in (exp / "checkpoints").iterdir())
    again = (*corpus_args(tmp, conf), "--tag", "tiny", "--stage", "0", "--stop_stage", "2")
    res = run_recipe(*again, "--set", "optim.lr=2e-3 evaluation.metrics=[si_sdr,sdr]")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "already built, skipping" in res.stdout and "already trained" in res.stdout
    # Another override under the same tag is another experiment: refused, not skipped.
    res = run_recipe(*again)
    assert res.returncode != 0 and "optim.lr: 0.002 -> 0.001" in res.stderr
    (exp / "results.json").unlink()
    res = run_recipe(
        *corpus_args(tmp, conf), "--tag", "tiny", "--stage", "3", "--stop_stage", "3",
        "--extra_metrics", "true",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((exp / "results.json").read_text())["summary"]
    assert summary["n_utterances"] == 4
    assert summary["metrics"] == ["si_sdr", "sdr", "stoi", "pesq"]
    assert len(summary["stoii_per_source"]) == len(summary["pesqi_per_source"]) == 2
    assert (exp / "best_model.pth").stat().st_mtime_ns == model_mtime
    assert sorted(p.name for p in (exp / "checkpoints").iterdir()) == ckpts
    assert "Training" not in res.stdout


@pytest.mark.slow
def test_killed_training_resumes_from_last_checkpoint(finished_run):
    tmp, conf, _ = finished_run
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
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the training ended by itself ({proc.returncode})"
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
    tmp, conf, _ = finished_run
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
def test_gated_training_reports_each_phase(finished_run):
    tmp, _, _ = finished_run
    # Pre-training 2 epochs, joint training 1 epoch, under a time bound that is never reached:
    # neither phase was stopped by time (the joint phase's epoch is not compared with the
    # pre-training's epochs).
    extra = {
        "training": {"mode": "gated", "epochs": 2, "max_time_minutes": 60},
        "gated": {"joint_epochs": 1, "lambda": 0.1, "gate": {"gate_kernel_size": 16}},
        # A list of names in the configuration is logged by both phases (it broke the joint one).
        "evaluation": {"metrics": ["si_sdr", "sdr"]},
    }
    conf = write_conf(tmp, "tiny_gated.yml", **extra)
    res = run_recipe(*corpus_args(tmp, conf), "--tag", "gated", "--stage", "2")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    exp = tmp / "exp" / "gated"
    info = json.loads((exp / "train_done.json").read_text())
    assert info["stopped_by_time"] is False
    pre, joint = info["phases"]["pretrain"], info["phases"]["joint"]
    assert (pre["epochs_done"], pre["epochs_planned"], pre["stopped_by_time"]) == (2, 2, False)
    assert (joint["epochs_done"], joint["epochs_planned"], joint["stopped_by_time"]) == (
        1,
        1,
        False,
    )
    assert pre["max_time_minutes"] == pytest.approx(40) and joint["max_time_minutes"] == 20
    results = json.loads((exp / "results.json").read_text())
    assert results["model"]["gated"] and results["model"]["name"] == "LIRSuDORMRFNet"  # gated
    assert (exp / "pretrain" / "best_model.pth").is_file()  # phase 1 kept apart
    steps = [row["steps"] for row in results["utterances"]]
    assert all(1 <= s <= 2 for s in steps)
    assert results["summary"]["steps_mean"] == pytest.approx(sum(steps) / len(steps))
    assert (exp / "steps_histogram.png").stat().st_size > 0
    # Stage 3 at a compute budget: the exit margin is set on the validation mixtures. The full
    # budget (2 steps) allows every step: margin -inf, both steps for every test mixture.
    res = run_recipe(*corpus_args(tmp, conf), "--tag", "gated", "--stage", "3",
                     "--stop_stage", "3", "--gate_budget", "2")  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    budgeted = json.loads((exp / "results.json").read_text())
    assert budgeted["gate"] == {"budget": 2.0, "exit_margin": -math.inf}
    assert [row["steps"] for row in budgeted["utterances"]] == [2] * len(steps)
    # The ungated baseline is scored from its own folder; it has no gate to calibrate.
    evaluate = [
        sys.executable, str(RECIPE / "eval.py"), "--exp_dir", str(exp / "pretrain"),
        "--meta_dir", str(meta_dir(tmp)), "--task", "sep_noisy", "--n_examples", "0",
    ]  # fmt: skip
    res = subprocess.run(evaluate, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert not json.loads((exp / "pretrain" / "results.json").read_text())["model"]["gated"]
    res = subprocess.run([*evaluate, "--gate_budget", "1"], capture_output=True, text=True)
    assert res.returncode != 0 and "needs a gated refinement model" in res.stderr


def _progressive(tmp: Path, tag: str, epochs: int, **progressive) -> subprocess.CompletedProcess:
    extra = {
        "training": {"mode": "progressive", "epochs": epochs},
        "model": {"n_blocks": 2, "n_iters": 1},  # no head_per_block: the recipe sets it
    }
    if progressive:
        extra["progressive"] = progressive
    conf = write_conf(tmp, f"{tag}.yml", **extra)
    return run_recipe(*corpus_args(tmp, conf), "--tag", tag, "--stage", "2")


@pytest.mark.slow
def test_progressive_training_exports_the_full_model(finished_run):
    tmp, _, _ = finished_run
    res = _progressive(tmp, "progressive", epochs=2)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    exp = tmp / "exp" / "progressive"
    assert yaml.safe_load((exp / "conf.yml").read_text())["model"]["head_per_block"] is True
    info = json.loads((exp / "train_done.json").read_text())
    assert info["progressive"]["complete"] and info["progressive"]["exported_step"] == 2
    results = json.loads((exp / "results.json").read_text())
    assert not results["model"]["gated"] and results["model"]["structure"].startswith("2x1x1 ")
    assert results["model"]["progressive"]["complete"]


@pytest.mark.slow
def test_progressive_run_stopped_early_exports_the_last_completed_step(finished_run):
    tmp, _, _ = finished_run
    # Step 1 takes 1 epoch, step 2 five, but the training stops after 2 epochs (the same
    # situation as a time bound reached during step 2).
    res = _progressive(tmp, "progressive_stopped", epochs=2, epochs_per_step=[1, 5])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "exporting the model of step 1" in res.stdout
    exp = tmp / "exp" / "progressive_stopped"
    info = json.loads((exp / "train_done.json").read_text())
    assert info["progressive"] == {
        "n_steps": 2, "steps_completed": 1, "exported_step": 1, "exported_blocks": 1,
        "step_epochs": [1, 5], "complete": False,
    }  # fmt: skip
    model = LIRSuDORMRFNet.from_pretrained(str(exp / "best_model.pth"))
    assert model.n_blocks == 1 and not model.refiner.head_per_block
    # It is the model that step 1 wrote when it ended.
    step1 = LIRSuDORMRFNet.from_pretrained(str(exp / "checkpoints" / "step1_model.pth"))
    for key, value in step1.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    results = json.loads((exp / "results.json").read_text())
    assert results["model"]["structure"].startswith("1x1x1 ")
    assert results["model"]["progressive"]["exported_step"] == 1
    assert (
        "stopped during step 2 of 2**: this is the step-1 model" in (exp / "results.md").read_text()
    )


@pytest.mark.slow
def test_progressive_run_stopped_during_step_1_fails_clearly(finished_run):
    tmp, _, _ = finished_run
    res = _progressive(tmp, "progressive_nothing", epochs=1, epochs_per_step=[2, 1])
    assert res.returncode != 0
    assert "during step 1 of 2" in res.stderr and "no step is complete" in res.stderr
    exp = tmp / "exp" / "progressive_nothing"
    assert not (exp / "best_model.pth").exists() and not (exp / "train_done.json").exists()
