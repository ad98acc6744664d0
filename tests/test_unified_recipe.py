"""The unified (TUSS) recipe and its data: synthesisers, class-folder index, prompted mixtures,
the loss, the metrics, the configurations, and every stage on a tiny source tree (the real-data
path: one folder per class, no split folders)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from asteroid_lir.chunking import assign_in_groups, source_groups
from asteroid_lir.data.unified import (
    CLASSES,
    FIVE_PROMPTS,
    TASKS,
    MixingOptions,
    UnifiedMixtures,
    draw_classes,
    make_task_mixtures,
)
from asteroid_lir.data.unified_sources import index_sources
from asteroid_lir.experiment import registry
from asteroid_lir.experiment.config import load_config
from asteroid_lir.experiment.evaluation import pairwise_scores, score_sources
from asteroid_lir.losses import PromptSNRLoss
from asteroid_lir.synth.music_synth import STEMS, synthesize_song
from asteroid_lir.synth.sfx_synth import (
    AMBIENCE_KINDS,
    SFX_KINDS,
    synthesize_ambience,
    synthesize_sfx,
)

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "unified"
SR = 8000


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models


# ---------------------------------------------------------------------- synthesisers
@pytest.mark.parametrize("kind", SFX_KINDS)
def test_every_sfx_kind_is_a_finite_event_with_silence_around(kind):
    wav = synthesize_sfx(3 * SR, np.random.default_rng(1), SR, kind)
    assert wav.shape == (3 * SR,) and np.isfinite(wav).all()
    assert np.isclose(np.abs(wav).max(), 1.0)
    frames = (wav[: len(wav) // 400 * 400].reshape(-1, 400) ** 2).mean(1)
    assert (frames > 1e-6).any()


def test_sfx_is_deterministic_and_rejects_unknown_kinds():
    a = synthesize_sfx(SR, np.random.default_rng(7), SR)
    b = synthesize_sfx(SR, np.random.default_rng(7), SR)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="Unknown sound-effect kind"):
        synthesize_sfx(SR, np.random.default_rng(0), SR, "explosion")


@pytest.mark.parametrize("kind", AMBIENCE_KINDS)
def test_ambiences_are_active_everywhere(kind):
    wav = synthesize_ambience(2 * SR, np.random.default_rng(3), SR, kind)
    assert np.isfinite(wav).all() and np.sqrt(np.mean(wav**2)) == pytest.approx(1.0)
    frames = (wav[: len(wav) // 400 * 400].reshape(-1, 400) ** 2).mean(1)
    assert frames.min() > 1e-3  # a background: no silent stretch
    with pytest.raises(ValueError, match="Unknown ambience"):
        synthesize_ambience(SR, np.random.default_rng(0), SR, "jungle")


def test_song_stems_have_their_own_spectra():
    stems = synthesize_song(3 * SR, np.random.default_rng(2), SR)
    assert set(stems) == set(STEMS)

    def centroid(x):
        spec = np.abs(np.fft.rfft(x)) ** 2
        return float((np.fft.rfftfreq(len(x), 1 / SR) * spec).sum() / spec.sum())

    def high_share(x):  # energy share above 2 kHz
        spec = np.abs(np.fft.rfft(x)) ** 2
        return float(spec[np.fft.rfftfreq(len(x), 1 / SR) > 2000].sum() / spec.sum())

    # Bass sits lowest; hi-hats and snares give the drums more treble than the bass.
    assert centroid(stems["bass"]) < min(centroid(stems[s]) for s in ("vocals", "other", "drums"))
    assert high_share(stems["drums"]) > 10 * high_share(stems["bass"])
    with pytest.raises(ValueError, match="at least 4000"):
        synthesize_song(100, np.random.default_rng(0), 2000)


# ---------------------------------------------------------------------- source trees
def _write_tree(root: Path, n: int = 10, split_folders: bool = False, seconds: float = 1.0):
    """A small folder-per-class tree of synthetic clips (songs: same name in stem folders)."""
    rng = np.random.default_rng(0)
    length = int(seconds * SR)
    for i in range(n):
        split = ("tr", "tr", "tr", "cv", "tt")[i % 5] if split_folders else None
        base = root / split if split else root
        song = synthesize_song(length, rng, SR)
        clips = {
            "speech": synthesize_sfx(length, rng, SR, "bark"),  # any voiced-like signal
            "sfx": synthesize_sfx(length, rng, SR),
            "sfxbg": 0.3 * rng.standard_normal(length),
            "musicbg": song["drums"] + song["other"],
            **{s: song[s] for s in STEMS},
        }
        for cls, wav in clips.items():
            name = f"song{i:03d}.wav" if cls in STEMS else f"{cls}{i:03d}.wav"
            (base / cls).mkdir(parents=True, exist_ok=True)
            sf.write(base / cls / name, 0.3 * wav / (np.abs(wav).max() + 1e-9), SR)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sources")
    _write_tree(root, n=10, split_folders=True)
    return root


@pytest.fixture(scope="module")
def index(tree) -> dict:
    return index_sources(tree, SR)


def test_index_of_a_split_tree_groups_song_stems(index):
    assert index["splits"]["tr"]["drums"] and index["missing"]["tr"] == []
    song = next(iter(index["songs"]["tr"].values()))
    assert set(song) == set(STEMS)
    assert all(Path(p).stem == Path(song["drums"]).stem for p in song.values())


def test_unsplit_tree_is_split_by_name_keeping_songs_together(tmp_path):
    _write_tree(tmp_path, n=30)
    idx = index_sources(tmp_path, SR)
    counts = {s: sum(len(v) for v in idx["splits"][s].values()) for s in ("tr", "cv", "tt")}
    assert counts["tr"] > counts["cv"] > 0 and counts["tt"] > 0
    for split in ("tr", "cv", "tt"):
        names = {Path(e["path"]).name for e in idx["splits"][split]["drums"]}
        assert names == {Path(e["path"]).name for e in idx["splits"][split]["bass"]}


def test_index_names_every_bad_file(tmp_path):
    _write_tree(tmp_path, n=3)
    sf.write(tmp_path / "speech" / "rate.wav", np.ones(100) * 0.1, 16000)
    sf.write(tmp_path / "sfx" / "stereo.wav", np.ones((100, 2)) * 0.1, SR)
    sf.write(tmp_path / "sfx" / "silent.wav", np.zeros(100), SR)
    (tmp_path / "bass" / "broken.wav").write_bytes(b"not audio")
    with pytest.raises(ValueError) as err:
        index_sources(tmp_path, SR)
    text = str(err.value)
    for expected in ("rate.wav (16000 Hz)", "stereo.wav (2 channels)", "silent.wav", "broken.wav"):
        assert expected in text
    with pytest.raises(FileNotFoundError, match="No audio files"):
        index_sources(tmp_path / "speech", SR)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        index_sources(tmp_path / "nowhere", SR)


# ---------------------------------------------------------------------- mixtures
def test_training_batches_share_their_prompt_count_and_sum_to_the_mixture(index):
    ds = UnifiedMixtures(index, "tr", n_batches=12, batch_size=3, segment=0.5, seed=4)
    counts = set()
    for b in range(len(ds)):
        mix, refs, prompts = ds[b]
        assert mix.shape == (3, SR // 2) and refs.shape[:2] == (3, len(prompts[0]))
        assert all(len(p) == len(prompts[0]) for p in prompts)
        assert all(set(p) <= set(CLASSES) for p in prompts)
        torch.testing.assert_close(refs.sum(1), mix, atol=1e-5, rtol=1e-5)
        counts.add(len(prompts[0]))
    assert counts <= {2, 3, 4} and len(counts) > 1


def test_mixtures_are_reproducible_and_change_with_the_epoch(index):
    ds = UnifiedMixtures(index, "tr", 2, 2, 0.5, seed=1)
    a = ds[0]
    torch.testing.assert_close(ds[0][0], a[0])
    ds.set_epoch(1)
    assert not torch.equal(ds[0][0], a[0])
    fixed = UnifiedMixtures(index, "cv", 2, 2, 0.5, seed=1, fixed=True)
    first = fixed[1][0]
    fixed.set_epoch(5)
    torch.testing.assert_close(fixed[1][0], first)


def test_absent_prompts_have_zero_references(index):
    from asteroid_lir.data.unified import SourceBank, draw_training_example

    bank = SourceBank(index, "tr")
    for seed in range(5):
        rng = np.random.default_rng(seed)
        mix, refs, prompts = draw_training_example(bank, SR, rng, 2, MixingOptions(), True)
        assert len(prompts) == 3
        silent = [p for p, r in zip(prompts, refs) if not np.any(r)]
        assert len(silent) >= 1
        np.testing.assert_allclose(refs.sum(0), mix, atol=1e-6)
    # With at most three prompts and p_absent = 1, two-prompt batches get a third, absent one:
    # no batch has more than three prompts.
    ds = UnifiedMixtures(index, "tr", 6, 2, 0.5, MixingOptions((2, 3), p_absent=1.0), seed=2)
    assert {len(ds[b][2][0]) for b in range(6)} == {3}


def test_drawn_classes_respect_the_rules():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(2, 5))
        classes = draw_classes(n, rng, CLASSES)
        assert len(classes) == n
        for cls in set(classes) - {"speech", "sfx"}:
            assert classes.count(cls) == 1
        assert not ({"sfx", "sfxbg"} <= set(classes))
        assert not ("musicbg" in classes and set(classes) & set(STEMS))
    with pytest.raises(ValueError, match="Cannot draw"):
        draw_classes(3, rng, ["bass", "drums"])


@pytest.mark.parametrize("task", list(TASKS) + ["FIVE"])
def test_task_mixtures_have_the_task_prompts(index, task):
    mixtures = make_task_mixtures(index, task, 3, 1.0, seed=0, split="tt")
    for mix in mixtures:
        if task == "USS":
            assert set(mix["prompts"]) == {"sfx"} and 2 <= len(mix["prompts"]) <= 4
        elif task == "FIVE":
            assert sorted(mix["prompts"]) == sorted(FIVE_PROMPTS)
        else:
            assert mix["prompts"] == list(TASKS[task].prompts)
        assert mix["sources"].shape == (len(mix["prompts"]), SR)
        np.testing.assert_allclose(mix["sources"].sum(0), mix["mixture"], atol=1e-5)
    again = make_task_mixtures(index, task, 3, 1.0, seed=0, split="tt")
    np.testing.assert_array_equal(again[0]["mixture"], mixtures[0]["mixture"])


# ---------------------------------------------------------------------- loss
def test_loss_values_on_known_signals():
    loss = PromptSNRLoss(snr_max=30.0, zero_ref_weight=0.1, eps=0.0)
    ref = torch.randn(1, 2, 4000)
    # A perfect estimate reaches the bound: -snr_max... up to the soft threshold.
    assert loss(ref.clone(), ref, [["speech", "sfx"]]).item() == pytest.approx(-30.0, abs=1e-3)
    # An estimate with an error of exactly 10 dB below the reference energy: -10 dB.
    noise = torch.randn(1, 2, 4000)
    noise = noise / noise.norm(dim=-1, keepdim=True) * ref.norm(dim=-1, keepdim=True) / 10**0.5
    value = loss(ref + noise, ref, [["speech", "sfx"]]).item()
    assert value == pytest.approx(10 * np.log10(0.1 + 1e-3), abs=1e-3)
    # An absent source: 0.1 * 10 log10(||y||^2 + tau ||mix||^2).
    zero_ref = torch.cat([ref[:, :1], torch.zeros(1, 1, 4000)], dim=1)
    est = torch.cat([ref[:, :1], torch.zeros(1, 1, 4000)], dim=1)
    mix_power = ref[:, 0].pow(2).sum().item()
    expected = (-30.0 + 0.1 * 10 * np.log10(1e-3 * mix_power)) / 2
    assert loss(est, zero_ref, [["speech", "bass"]]).item() == pytest.approx(expected, abs=1e-3)


def test_loss_permutes_equal_prompts_only():
    loss = PromptSNRLoss()
    ref = torch.randn(2, 3, 2000)
    swapped = ref[:, [1, 0, 2]]
    same = [["speech", "speech", "sfxbg"]] * 2
    assert loss(swapped, ref, same).item() == pytest.approx(loss(ref, ref, same).item(), abs=1e-4)
    different = [["speech", "bass", "sfxbg"]] * 2
    assert loss(swapped, ref, different).item() > loss(ref, ref, different).item() + 10
    # Without prompts (the baseline) every output may go to any reference; missing references
    # are zeros.
    est = torch.cat([ref[:, [2, 0, 1]], torch.zeros(2, 1, 2000)], dim=1)
    assert loss(est, ref, None).item() < -20
    with pytest.raises(ValueError, match="references for"):
        loss(ref[:, :2], ref, None)


# ---------------------------------------------------------------------- metrics
def test_metrics_on_known_signals():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((1, 8000))
    ref -= ref.mean()
    noise = rng.standard_normal(8000)
    noise -= noise.mean()
    noise -= (noise @ ref[0]) / (ref[0] @ ref[0]) * ref[0]  # orthogonal to the reference
    noise *= np.linalg.norm(ref) / np.linalg.norm(noise) / 10 ** (5 / 20)  # 5 dB below
    est = 3.0 * (ref[0] + noise)
    assert pairwise_scores(est[None], ref, "si_sdr")[0, 0] == pytest.approx(5.0, abs=1e-6)
    assert pairwise_scores((ref[0] + noise)[None], ref, "snr")[0, 0] == pytest.approx(5.0, abs=1e-6)
    assert pairwise_scores(est[None], ref, "snr")[0, 0] < 0  # SNR is not scale-invariant


def test_assignment_for_prompted_and_fixed_outputs():
    scores = np.array([[1.0, 9.0, 0.0], [8.0, 2.0, 0.0], [0.0, 0.0, 5.0]])
    groups = source_groups(["speech", "speech", "sfx"], 3)
    assert assign_in_groups(scores, groups) == [1, 0, 2]
    assert assign_in_groups(scores, source_groups(["speech", "bass", "sfx"], 3)) == [0, 1, 2]
    four = np.array([[0.0, 1.0], [5.0, 0.0], [0.0, 0.0], [1.0, 7.0]])
    assert assign_in_groups(four, None) == [1, 3]


def test_score_mixture_improvement_is_estimate_minus_mixture():
    rng = np.random.default_rng(1)
    refs = rng.standard_normal((2, 4000))
    mix = refs.sum(0)
    scores, _ = score_sources(mix, refs, refs[::-1].copy(), SR, ("si_sdr",), ["sfx", "sfx"])
    for out, inp, imp in zip(scores["si_sdr"], scores["input_si_sdr"], scores["si_sdri"]):
        assert imp == pytest.approx(out - inp)
        assert out > 60
    assert scores["output"] == [1, 0]


# ---------------------------------------------------------------------- configurations
def test_configs_load_and_build_models_of_the_expected_kinds(tmp_path):
    tuss = load_config(RECIPE / "conf" / "tuss_cpu.yml")
    base = load_config(RECIPE / "conf" / "baseline_cpu.yml")
    assert tuss["data"] == base["data"] and tuss["training"] == base["training"]

    def build(conf):
        return registry.build_model(registry.resolve_model_conf(conf["model"], SR))

    a, b = build(tuss), build(base)
    assert type(a).__name__ == "TUSSNet" and type(b).__name__ == "BSLocoformerNet"
    assert b.n_src == 4 and a.n_fft == b.n_fft and a.separator.n_bands == b.separator.n_bands
    # Same blocks: the parameter counts differ only by the prompts/SOS and the decoder's outputs.
    extra_decoder = sum(p.numel() for p in b.separator.decoder.parameters()) - sum(
        p.numel() for p in a.separator.decoder.parameters()
    )

    def count(model):
        return sum(p.numel() for p in model.parameters())

    assert count(b) - count(a) == extra_decoder - 9 * 24
    over = load_config(RECIPE / "conf" / "tuss_cpu.yml", ["optim.lr=1e-4"])
    assert over["optim"]["lr"] == 1e-4
    with pytest.raises(ValueError, match="section.key=value"):
        load_config(RECIPE / "conf" / "tuss_cpu.yml", ["nonsense"])
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({**tuss, "model": {"name": "Nope"}}))
    with pytest.raises(ValueError, match="Unknown model 'Nope'"):
        build(load_config(bad))


def test_run_sh_help_and_bad_options():
    out = subprocess.run([str(RECIPE / "run.sh"), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--source_dir" in out.stdout
    out = subprocess.run([str(RECIPE / "run.sh"), "--bogus", "1"], capture_output=True, text=True)
    assert out.returncode != 0 and "bogus" in out.stderr
    out = subprocess.run(
        [str(RECIPE / "run.sh"), "--source_dir", "/nonexistent/x"], capture_output=True, text=True
    )
    assert out.returncode != 0 and "not a directory" in out.stderr


# ---------------------------------------------------------------------- whole recipe
_BLOCK = {"attention_dim": 8, "freq_ffn_hidden_dim": 8, "time_ffn_hidden_dim": 8}
TINY_CONF = {
    "defaults": str(RECIPE / "conf" / "tuss_cpu.yml"),
    "data": {"segment": 0.5},
    "model": {
        "name": "TUSSNet",
        "preset": "tiny",
        "emb_dim": 8,
        "num_groups": 2,
        "n_heads": 2,
        "n_bands": 4,
        "encoder_kwargs": {},
        "n_fft": 64,
        "hop_length": 32,
        "n_cross_prompt_blocks": 1,
        "n_tse_blocks": 1,
        "cross_prompt_block": _BLOCK,
        "tse_block": _BLOCK,
    },
    "training": {
        "batches_per_epoch": 3,
        "valid_batches": 1,
        "epochs": 2,
        "batch_size": 2,
        "max_time_minutes": None,
        "warmup_steps": 2,
    },
    "evaluation": {"n_per_task": 2, "seconds": 1.0, "n_examples": 1},
}


@pytest.mark.slow
def test_whole_recipe_on_a_tiny_source_tree(tmp_path):
    """The real-data path: a folder per class (no split folders), all five stages, then the
    baseline configuration on the same data and a report comparing the two."""
    src = tmp_path / "classes"
    _write_tree(src, n=25)
    conf = tmp_path / "tiny.yml"
    conf.write_text(yaml.safe_dump(TINY_CONF))
    stacks = {"first_block": _BLOCK, "second_block": _BLOCK, "n_first_blocks": 1,
              "n_second_blocks": 1}  # fmt: skip
    model = {k: v for k, v in TINY_CONF["model"].items() if "tse" not in k and "cross" not in k}
    base = dict(TINY_CONF, model=dict(model, name="BSLocoformerNet", n_src=4, **stacks))
    base_conf = tmp_path / "tiny_base.yml"
    base_conf.write_text(yaml.safe_dump(base))
    common = [
        "--source_dir",
        str(src),
        "--exp_dir",
        str(tmp_path / "exp"),
        "--data_dir",
        str(tmp_path / "data"),
    ]
    env = dict(os.environ, LIR_VENV=str(Path(sys.executable).parents[1]))
    run = subprocess.run(
        [str(RECIPE / "run.sh"), "--conf", str(conf), *common],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    exp = tmp_path / "exp" / "tiny"
    results = json.loads((exp / "results.json").read_text())
    assert set(results["tasks"]) == set(TASKS) | {"FIVE"}
    assert (exp / "tasks.png").is_file() and (exp / "five_prompts.png").is_file()
    assert "Five prompts" in (exp / "results.md").read_text()
    run = subprocess.run(
        [
            str(RECIPE / "run.sh"),
            "--conf",
            str(base_conf),
            "--stage",
            "1",
            "--compare",
            str(exp),
            *common,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    base_results = json.loads((tmp_path / "exp" / "tiny_base" / "results.json").read_text())
    assert base_results["model"]["name"] == "BSLocoformerNet"
    assert "FIVE" not in base_results["tasks"]
    assert "Comparison" in (tmp_path / "exp" / "tiny_base" / "results.md").read_text()
    # Re-running stage 2 skips the finished training; stage 3 re-evaluates.
    run = subprocess.run(
        [str(RECIPE / "run.sh"), "--conf", str(conf), "--stage", "2", "--stop_stage", "3", *common],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert run.returncode == 0 and "already trained" in run.stdout


# --------------------------------------------------------------------------- slides' claims
def _slides_run(root: Path, entry: str, seed: int, imp: dict, fifth: float | None) -> None:
    exp = root / f"{entry}_s{seed}"
    exp.mkdir(parents=True)
    tasks = {t: {"improvement": v} for t, v in imp.items()}
    if fifth is not None:
        last = {"mean_improvement": fifth, "mean_output_db": -3.0 if fifth > 0 else -60.0,
                "passes": fifth > 0}  # fmt: skip
        tasks["FIVE"] = {"improvement": fifth, "five": {"last": last}}
    results = {"model": {"parameters": 1000}, "tasks": tasks}
    (exp / "results.json").write_text(json.dumps(results))


def _claims_report(tmp_path: Path, root: Path, entries: tuple, seeds: list) -> dict:
    """``local/claims.py report`` on the runs under ``root`` (a grid of ``entries``)."""
    grid = tmp_path / "grid.yml"
    grid.write_text(yaml.safe_dump(
        {"steps": 100, "seeds": seeds, "entries": {e: {"conf": "x.yml"} for e in entries}}
    ))  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(RECIPE.parents[1]))
    run = subprocess.run(
        [sys.executable, str(RECIPE / "local" / "claims.py"), "report", "--grid", str(grid),
         "--root", str(root)], capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads((root / "report.json").read_text())


def test_slides_claims_hold_only_beyond_the_seed_spread(tmp_path):
    root = tmp_path / "exp"
    base = {"SE": 2.0, "SS": 3.0, "USS": 1.0, "MSS": 5.0, "CASS": 3.0}
    # TUSS 1 dB ahead on every task but USS, where it is ahead by less than the seeds' spread.
    tuss = {t: v + (0.1 if t == "USS" else 1.0) for t, v in base.items()}
    for seed, offset in enumerate((-0.2, 0.0, 0.2)):
        _slides_run(root, "baseline", seed, {t: v + offset for t, v in base.items()}, None)
        _slides_run(root, "tuss", seed, {t: v + offset for t, v in tuss.items()}, 2.0 + offset)
    report = _claims_report(tmp_path, root, ("tuss", "baseline", "tuss_sfc"), seeds=[0, 1, 2])
    verdicts = {c["name"]: c["verdict"] for sec in (*report["comparisons"], report["five"])
                for c in sec["claims"]}  # fmt: skip
    for task in ("SE", "SS", "MSS", "CASS"):
        assert verdicts[f"tuss_vs_unconditional_{task}"] == "reproduced", task
    assert verdicts["tuss_vs_unconditional_USS"] == "not reproduced"
    assert verdicts["sfc_vs_band_split_SE"] == "not run"  # no SFC-CA runs
    assert verdicts["fifth_prompt"] == "reproduced"
    md = (root / "report.md").read_text()
    assert "| USS | SI-SDRi |" in md and "within the seeds' spread" in md
    assert (root / "tasks.png").stat().st_size > 1000


# ---------------------------------------------------------------------- adaptive TUSS
def test_adaptive_configs_train_equal_steps_and_build_the_iterated_network():
    def build(conf):
        return registry.build_model(
            registry.resolve_model_conf(conf["model"], conf["data"]["sample_rate"])
        )

    base, iterated, gated = (
        load_config(RECIPE / "conf" / f"{name}.yml")
        for name in ("tuss_cpu", "tuss_iter_cpu", "tuss_gated_cpu")
    )
    assert gated["training"]["mode"] == "gated" and "mode" not in iterated["training"]
    # Equal training steps: pre-training + joint phase = the ungated network's epochs.
    total = gated["training"]["epochs"] + gated["gated"]["joint_epochs"]
    assert total == iterated["training"]["epochs"] == base["training"]["epochs"]
    assert gated["training"]["batches_per_epoch"] == iterated["training"]["batches_per_epoch"]
    net, one = build(iterated), build(base)
    assert net.n_steps == 4 and not net.refiner.gated
    assert set(net.state_dict()) == set(one.state_dict())  # shared weights: tuss_cpu's names
    pre = build(gated)
    assert pre.get_model_args() == {**net.get_model_args(), "min_steps": 1}
    model = pre.with_gate(**gated["gated"]["gate"])
    assert model.refiner.gated and model.n_steps == 4
    medium, adaptive = (
        build(load_config(RECIPE / "conf" / f"{n}.yml"))
        for n in ("tuss_medium", "tuss_gated_medium")
    )
    count = sum(p.numel() for p in medium.parameters())
    assert count == 11_132_296 == sum(p.numel() for p in adaptive.parameters())
    assert medium.n_steps == 1 and adaptive.n_steps == 3


def _measured_results(gated: bool, gmacs: float, improvement: float, steps: dict) -> dict:
    tasks = {}
    for task, task_steps in steps.items():
        tasks[task] = {
            "improvement": improvement,
            "gmacs_per_mixture": gmacs,
            "steps_mean": float(np.mean(list(task_steps.values()))),
            "per_prompt": {p: {"mean_steps": s, "n": 4} for p, s in task_steps.items()},
            "anytime": [
                {"steps": k, "improvement": improvement - 1 / k, "gmacs_per_mixture": k}
                for k in (1, 2)
            ],
        }
    return {
        "model": {"gated": gated},
        "training": {"total_steps": 100},
        "tasks": {**tasks, "FIVE": tasks[next(iter(tasks))]},
    }


def test_adaptive_comparison_of_seeds(tmp_path):
    from asteroid_lir.experiment.compute_report import adaptive_comparison, adaptive_markdown

    ungated = _measured_results(
        False, 2.0, 5.0, {"SE": {"speech": 2, "sfxbg": 2}, "MSS": {"bass": 2}}
    )
    gated = _measured_results(
        True, 1.2, 4.8, {"SE": {"speech": 1, "sfxbg": 1.5}, "MSS": {"bass": 2}}
    )
    comparison = adaptive_comparison({"0": (ungated, gated), "1": (ungated, gated)})
    assert comparison["mean"]["saving"] == pytest.approx(0.4)
    assert comparison["mean"]["drop_db"] == pytest.approx(0.2)
    assert comparison["saving_ok"] and comparison["drop_ok"] and comparison["equal_steps"]
    assert comparison["steps_differ"]  # SE 1.25 vs MSS 2 steps
    assert comparison["seeds"]["0"]["steps_by_prompt"] == {"speech": 1, "sfxbg": 1.5, "bass": 2}
    text = adaptive_markdown(comparison)
    assert "40.0 ± 0.0 %" in text and "**NO**" not in text
    worse = _measured_results(True, 1.6, 4.5, {"SE": {"speech": 2, "sfxbg": 2}, "MSS": {"bass": 2}})
    worse["training"]["total_steps"] = 90
    verdict = adaptive_comparison({"0": (ungated, worse)})
    assert not (verdict["saving_ok"] or verdict["drop_ok"] or verdict["steps_differ"])
    assert not verdict["equal_steps"] and text.count("yes") == 4
    with pytest.raises(ValueError, match="evaluate both models again"):
        adaptive_comparison({"0": ({**ungated, "tasks": {"SE": {"gmacs_per_mixture": None}}},
                                   gated)})  # fmt: skip


@pytest.mark.parametrize("flat", [False, True])
def test_adaptive_report_compares_the_gate_with_fixed_steps(tmp_path, flat):
    # The gated model (4.8 dB at 1.6 steps) against its ungated network's anytime curve (4.0 dB
    # after one step, 4.5 after two): ahead at equal compute. With a flat curve (5.0 dB after
    # any number of steps), the same saving is free and the gate is behind.
    steps = {"SE": {"speech": 1, "sfxbg": 1.5}, "MSS": {"bass": 2}}
    ungated = _measured_results(
        False, 2.0, 5.0, {"SE": {"speech": 2, "sfxbg": 2}, "MSS": {"bass": 2}}
    )
    if flat:
        for task in ungated["tasks"].values():
            for point in task["anytime"]:
                point["improvement"] = 5.0
    root = tmp_path / "exp"
    for entry, res in (("ungated", ungated), ("gated", _measured_results(True, 1.2, 4.8, steps))):
        (root / f"{entry}_s0").mkdir(parents=True)
        (root / f"{entry}_s0" / "results.json").write_text(json.dumps(res))
    # The ungated network with its TSE steps skipped (local/claims.py measure): 4.6 dB on SE.
    skipped = {"tse_skipped": {"SE": 4.6, "MSS": 5.0}}
    (root / "ungated_s0" / "measure.json").write_text(json.dumps(skipped))
    report = _claims_report(tmp_path, root, ("ungated", "gated"), seeds=[0])
    assert report["adaptive"]["tse_added"] == pytest.approx({"SE": 0.4, "MSS": 0.0})
    claims = {c["name"]: c for c in report["adaptive"]["claims"]}
    assert claims["adaptive_tuss"]["verdict"] == "reproduced"  # 40 % saved for 0.2 dB
    fixed = claims["adaptive_beats_fixed_steps"]
    assert fixed["verdict"] == ("not reproduced" if flat else "reproduced")
    assert ("5.00 dB after one step" in fixed["text"]) == flat


def test_task_evaluation_measures_a_gated_tuss(index, tmp_path):
    from asteroid_lir.experiment.compute_report import compute_markdown
    from asteroid_lir.experiment.unified_eval import FIVE, evaluate_tasks, is_measured
    from asteroid_lir.models import TUSSNet

    model_conf = {k: v for k, v in TINY_CONF["model"].items() if k not in ("name", "preset")}
    torch.manual_seed(0)
    model = TUSSNet.from_preset("tiny", **model_conf, n_iters=2, gate_kernel_size=4)
    ev = {"seconds": 1.0, "n_examples": 0}
    tasks, timing, notes = evaluate_tasks(model.eval(), index, ev, tmp_path, torch.device("cpu"), 1)
    assert is_measured(model) and set(tasks) == set(TASKS) | {FIVE}
    for res in tasks.values():
        assert 1 <= res["steps_mean"] <= 2 and res["gmacs_per_mixture"] > 0
        assert [a["steps"] for a in res["anytime"]] == [1, 2]
        assert all("mean_steps" in v for v in res["per_prompt"].values())
    assert "## Compute of the refinement" in compute_markdown({"model": {}, "tasks": tasks})
    plain = TUSSNet.from_preset("tiny", **model_conf)
    assert not is_measured(plain)
