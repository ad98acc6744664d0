"""Tests of the data layer: WHAM! layout, metadata, dataset, remixing and the mini corpus."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from asteroid_lir.data import WhamDataset, remix_batch, validate_wham_dir, write_wham_metadata
from asteroid_lir.synth import build_mini_corpus
from asteroid_lir.synth.mixing import NOISE_SNR_DB, SPEAKER_SNR_DB, mix_wham_like
from asteroid_lir.synth.noise_synth import synthesize_noise
from asteroid_lir.synth.speech_synth import draw_speaker, synthesize_utterance
from asteroid_lir.synth.tts_testset import build_tts_testset, espeak_available
from asteroid_lir.tasks import SPLITS, WHAM_FOLDERS, WHAM_TASKS

SR = 8000
SIZES = {"tr": 4, "cv": 2, "tt": 3}


def _build(root, seed=0):
    return build_mini_corpus(
        root,
        n_train=SIZES["tr"],
        n_valid=SIZES["cv"],
        n_test=SIZES["tt"],
        seed=seed,
        utt_seconds=1.0,
        progress=False,
        workers=1,
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A tiny mini corpus and its metadata, built once for the module."""
    root = tmp_path_factory.mktemp("mini")
    wav_dir = _build(root)
    meta = root / "metadata"
    write_wham_metadata(wav_dir, meta)
    return root, wav_dir, meta


def _read(path):
    wav, sr = sf.read(str(path), dtype="int16")
    assert sr == SR
    return wav.astype(np.int64)


# ----------------------------------------------------------------------------- mini corpus
def test_mini_corpus_layout(corpus):
    root, wav_dir, _ = corpus
    assert wav_dir == root / "wav8k" / "min"
    assert sorted(p.name for p in wav_dir.iterdir()) == sorted(SPLITS)
    for split, n in SIZES.items():
        folders = sorted(p.name for p in (wav_dir / split).iterdir())
        assert folders == sorted(WHAM_FOLDERS)
        names = [sorted(p.name for p in (wav_dir / split / f).iterdir()) for f in WHAM_FOLDERS]
        assert len(names[0]) == n and all(x == names[0] for x in names)
        for name in names[0][:2]:
            info = sf.info(str(wav_dir / split / "mix_both" / name))
            assert info.samplerate == SR and info.channels == 1
    assert validate_wham_dir(root) == wav_dir
    assert validate_wham_dir(wav_dir) == wav_dir


def test_mini_corpus_mixtures_are_sums_of_parts(corpus):
    _, wav_dir, _ = corpus
    for split in SPLITS:
        for path in sorted((wav_dir / split / "mix_both").iterdir()):
            s1, s2, noise = (_read(wav_dir / split / f / path.name) for f in ("s1", "s2", "noise"))
            assert len(s1) == len(s2) == len(noise) > 0
            np.testing.assert_array_equal(_read(path), s1 + s2 + noise)
            np.testing.assert_array_equal(
                _read(wav_dir / split / "mix_single" / path.name), s1 + noise
            )
            np.testing.assert_array_equal(_read(wav_dir / split / "mix_clean" / path.name), s1 + s2)


def test_mini_corpus_levels_in_wham_ranges(corpus):
    root, wav_dir, _ = corpus
    for split in SPLITS:
        with open(root / "mixture_info" / f"{split}.csv") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == SIZES[split]
        for row in rows:
            # Recompute from the files: the CSV must describe what was written.
            s1, s2, noise = (
                _read(wav_dir / split / f / f"{row['utt_id']}.wav").astype(float)
                for f in ("s1", "s2", "noise")
            )
            p1, p2, pn = (np.mean(x**2) for x in (s1, s2, noise))
            rel = abs(10 * np.log10(p1 / p2))
            snr = 10 * np.log10(max(p1, p2) / pn)
            assert SPEAKER_SNR_DB[0] - 0.01 <= rel <= SPEAKER_SNR_DB[1] + 0.01
            assert NOISE_SNR_DB[0] - 0.01 <= snr <= NOISE_SNR_DB[1] + 0.01
            assert float(row["noise_snr_db"]) == pytest.approx(snr, abs=1e-3)


def test_mini_corpus_speakers_differ_between_train_and_test(corpus):
    root, _, _ = corpus
    speakers = {}
    for split in SPLITS:
        with open(root / "mixture_info" / f"{split}.csv") as fh:
            rows = list(csv.DictReader(fh))
        speakers[split] = {r["speaker1"] for r in rows} | {r["speaker2"] for r in rows}
        assert all(r["speaker1"] != r["speaker2"] for r in rows)
    assert not speakers["tt"] & (speakers["tr"] | speakers["cv"])


def test_sources_are_deterministic_by_seed():
    pool = np.random.default_rng(0).standard_normal((2, 8000))

    def draw(seed):
        rng = np.random.default_rng(seed)
        speaker = draw_speaker(rng, "x")
        return synthesize_utterance(speaker, 0.5, rng), synthesize_noise(4000, rng, pool)

    (a1, a2), (b1, b2), (c1, c2) = draw(5), draw(5), draw(6)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, c1) and not np.array_equal(a2, c2)
    assert np.sqrt(np.mean(a2**2)) == pytest.approx(1.0)  # unit RMS


@pytest.mark.slow
def test_mini_corpus_is_deterministic_by_seed(corpus, tmp_path):
    _, wav_dir, _ = corpus
    again = _build(tmp_path / "again", seed=0)
    other = _build(tmp_path / "other", seed=1)
    for path in sorted((wav_dir / "tt" / "mix_both").iterdir()):
        np.testing.assert_array_equal(_read(path), _read(again / "tt" / "mix_both" / path.name))
    first = sorted((wav_dir / "tr" / "s1").iterdir())[0]
    other_first = sorted((other / "tr" / "s1").iterdir())[0]
    a, b = _read(first), _read(other_first)
    assert len(a) != len(b) or not np.array_equal(a, b)


@pytest.mark.slow
def test_mini_corpus_does_not_depend_on_worker_count(corpus, tmp_path):
    _, wav_dir, _ = corpus
    parallel = build_mini_corpus(
        tmp_path, n_train=4, n_valid=2, n_test=3, utt_seconds=1.0, progress=False, workers=2
    )
    for path in sorted((wav_dir / "tr" / "mix_both").iterdir()):
        np.testing.assert_array_equal(_read(path), _read(parallel / "tr" / "mix_both" / path.name))


def test_noise_snr_range_is_chosen_and_stretches_the_same_draws():
    """A wider SNR range gives SNRs inside it (measured on the written signals); the same
    generator gives the same relative position in the range, so WHAM!'s range is unchanged."""
    speech = np.random.default_rng(1).standard_normal((2, 4000))
    noise = lambda n: np.random.default_rng(2).standard_normal(n)  # noqa: E731
    wham, wide = [], []
    for seed in range(20):
        for out, snr_range in ((wham, NOISE_SNR_DB), (wide, (-10.0, 20.0))):
            rng = np.random.default_rng(seed)
            out.append(mix_wham_like(*speech, noise, rng, snr_range)[1]["noise_snr_db"])
    assert min(wide) >= -10.01 and max(wide) <= 20.01 and max(wide) > NOISE_SNR_DB[1] + 5
    assert min(wham) >= NOISE_SNR_DB[0] - 0.01 and max(wham) <= NOISE_SNR_DB[1] + 0.01
    position = lambda x, lo, hi: (np.array(x) - lo) / (hi - lo)  # noqa: E731
    np.testing.assert_allclose(position(wide, -10, 20), position(wham, *NOISE_SNR_DB), atol=2e-3)
    default = mix_wham_like(*speech, noise, np.random.default_rng(0))[0]
    explicit = mix_wham_like(*speech, noise, np.random.default_rng(0), NOISE_SNR_DB)[0]
    assert all(np.array_equal(default[k], explicit[k]) for k in default)


@pytest.mark.parametrize("bad", [(3.0, -6.0), (0.0,), (0.0, float("nan")), "wide"])
def test_bad_noise_snr_range_is_refused_before_writing(tmp_path, bad):
    with pytest.raises(ValueError, match="SNR range"):
        build_mini_corpus(tmp_path / "c", n_train=1, n_valid=1, n_test=1, noise_snr_db=bad)
    assert not (tmp_path / "c").exists()


def test_mini_corpus_rejects_empty_split(tmp_path):
    with pytest.raises(ValueError, match="at least one mixture"):
        build_mini_corpus(tmp_path, n_train=2, n_valid=0, n_test=2, progress=False)


def test_speakers_have_distinct_pitch():
    rng = np.random.default_rng(0)
    speakers = [draw_speaker(rng, f"s{i}") for i in range(40)]
    f0 = np.array([s.f0_hz for s in speakers])
    scale = np.array([s.formant_scale for s in speakers])
    assert f0.max() / f0.min() > 1.6 and scale.max() / scale.min() > 1.15
    wav = synthesize_utterance(speakers[0], 1.5, rng)
    assert wav.shape == (12000,) and np.all(np.isfinite(wav)) and np.std(wav) > 0


# ----------------------------------------------------------------------------- validation
def _copy(wav_dir, tmp_path):
    dst = tmp_path / "wham" / "wav8k" / "min"
    shutil.copytree(wav_dir, dst)
    return dst


def test_validate_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        validate_wham_dir(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="neither a WHAM! root"):
        validate_wham_dir(tmp_path)


def test_validate_missing_split_and_folder(corpus, tmp_path):
    wav_dir = _copy(corpus[1], tmp_path)
    shutil.rmtree(wav_dir / "cv")
    shutil.rmtree(wav_dir / "tt" / "noise")
    with pytest.raises(ValueError) as err:
        validate_wham_dir(wav_dir)
    assert "missing split folder" in str(err.value) and str(wav_dir / "cv") in str(err.value)
    assert f"missing folder {wav_dir / 'tt' / 'noise'}" in str(err.value)
    # A test-only layout is fine when only tt is asked for.
    shutil.rmtree(wav_dir / "tr")
    (wav_dir / "tt" / "noise").mkdir()
    for name in (wav_dir / "tt" / "s1").iterdir():
        shutil.copy(name, wav_dir / "tt" / "noise" / name.name)
    assert validate_wham_dir(wav_dir, splits=("tt",)) == wav_dir


def test_validate_mismatched_and_empty_folders(corpus, tmp_path):
    wav_dir = _copy(corpus[1], tmp_path)
    victim = sorted((wav_dir / "tr" / "s2").iterdir())[0]
    victim.unlink()
    for f in (wav_dir / "cv" / "mix_clean").iterdir():
        f.unlink()
    with pytest.raises(ValueError) as err:
        validate_wham_dir(wav_dir)
    msg = str(err.value)
    assert "missing from" in msg and victim.name in msg
    assert f"empty folder {wav_dir / 'cv' / 'mix_clean'}" in msg


def test_validate_wrong_sample_rate(corpus, tmp_path):
    wav_dir = _copy(corpus[1], tmp_path)
    path = sorted((wav_dir / "tt" / "s1").iterdir())[0]
    sf.write(str(path), np.zeros(1600, dtype=np.int16), 16000)
    with pytest.raises(ValueError, match="16000 Hz, expected 8000 Hz"):
        validate_wham_dir(wav_dir)


# ----------------------------------------------------------------------------- metadata
def test_metadata_written_and_idempotent(corpus, tmp_path):
    _, wav_dir, meta = corpus
    for split, n in SIZES.items():
        entries = json.loads((meta / f"{split}.json").read_text())
        assert len(entries) == n
        for e in entries:
            assert e["length"] == sf.info(e["mix_both"]).frames
            assert all(e[f].endswith(f"/{split}/{f}/{e['id']}.wav") for f in WHAM_FOLDERS)
    before = {s: (meta / f"{s}.json").read_text() for s in SIZES}
    write_wham_metadata(wav_dir, meta)
    assert before == {s: (meta / f"{s}.json").read_text() for s in SIZES}


def test_metadata_reports_every_unreadable_empty_or_inconsistent_file(corpus, tmp_path):
    wav_dir = _copy(corpus[1], tmp_path)

    def nth(split, folder, i):
        return sorted((wav_dir / split / folder).iterdir())[i]

    # Problems beyond the first few files of a folder, which a sampled header check misses.
    zero_bytes = nth("tr", "s2", 3)
    zero_bytes.write_bytes(b"")
    no_samples = nth("tr", "noise", 3)
    sf.write(str(no_samples), np.zeros(0, dtype=np.int16), SR)
    garbage = nth("cv", "mix_single", 1)
    garbage.write_bytes(b"this is not a wav file" * 10)
    wrong_rate = nth("tt", "s1", 2)
    sf.write(str(wrong_rate), np.zeros(sf.info(str(wrong_rate)).frames, np.int16), 16000)
    short = nth("tr", "s1", 2)
    wav, _ = sf.read(str(short), dtype="int16")
    sf.write(str(short), wav[: len(wav) // 2], SR)
    missing = nth("tt", "mix_clean", 1)
    missing.unlink()
    out = tmp_path / "meta"
    with pytest.raises(ValueError) as err:
        write_wham_metadata(wav_dir, out, sample_rate=SR)
    msg = str(err.value)
    for path in (zero_bytes, no_samples, garbage, wrong_rate):
        assert str(path) in msg, path
    assert "unreadable" in msg and "empty file" in msg and "16000 Hz" in msg
    assert f"utterance {short.stem} of tr" in msg  # lengths differ between folders
    assert missing.name in msg and "missing from" in msg
    assert not out.exists() or not list(out.glob("*.json"))  # nothing half-written
    # The WHAM! root is accepted as well as its wav8k/min folder.
    assert [p.name for p in write_wham_metadata(corpus[0], tmp_path / "ok")] == [
        "tr.json",
        "cv.json",
        "tt.json",
    ]


# ----------------------------------------------------------------------------- dataset
@pytest.mark.parametrize(
    "task,return_noise,n_targets",
    [
        ("sep_noisy", True, 3),
        ("sep_noisy", False, 2),
        ("enh_single", True, 2),
        ("enh_single", False, 1),
    ],
)
def test_dataset_whole_utterances(corpus, task, return_noise, n_targets):
    _, wav_dir, meta = corpus
    ds = WhamDataset(
        meta / "tt.json", task=task, segment=None, return_noise=return_noise, return_id=True
    )
    assert len(ds) == SIZES["tt"] and ds.n_targets == n_targets
    assert ds.n_speech == len(WHAM_TASKS[task]["speech"])
    mix, targets, utt_id = ds[0]
    assert mix.dtype == targets.dtype == torch.float32
    assert mix.ndim == 1 and targets.shape == (n_targets, mix.shape[0])
    if return_noise:  # the mixture is the sum of the targets
        torch.testing.assert_close(targets.sum(0), mix, atol=1e-6, rtol=0)
    ref, _ = sf.read(
        str(wav_dir / "tt" / WHAM_TASKS[task]["mixture"] / f"{utt_id}.wav"), dtype="float32"
    )
    np.testing.assert_array_equal(mix.numpy(), ref)


def test_dataset_pads_and_crops(corpus):
    _, _, meta = corpus
    long_ds = WhamDataset(meta / "tr.json", segment=10.0)  # utterances are < 2 s: padded
    mix, targets = long_ds[0]
    n = long_ds.entries[0]["length"]
    assert mix.shape == (80000,) and targets.shape == (3, 80000)
    assert torch.all(mix[n:] == 0) and torch.all(targets[:, n:] == 0) and mix[:n].abs().sum() > 0
    short_ds = WhamDataset(meta / "tr.json", segment=0.25, task="enh_single")
    torch.manual_seed(0)
    crops = [short_ds[0] for _ in range(4)]
    assert all(m.shape == (2000,) and t.shape == (2, 2000) for m, t in crops)
    torch.testing.assert_close(crops[0][1].sum(0), crops[0][0], atol=1e-6, rtol=0)
    assert any(not torch.equal(crops[0][0], m) for m, _ in crops[1:])  # random offsets


def test_dataset_errors(corpus, tmp_path):
    _, _, meta = corpus
    with pytest.raises(FileNotFoundError, match="does not exist"):
        WhamDataset(tmp_path / "missing.json")
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(ValueError, match="lists no utterance"):
        WhamDataset(tmp_path / "empty.json")
    with pytest.raises(ValueError, match="Unknown task"):
        WhamDataset(meta / "tt.json", task="sep_clean_typo")
    entries = json.loads((meta / "tt.json").read_text())
    entries[0]["s2"] = str(tmp_path / "gone.wav")
    (tmp_path / "broken.json").write_text(json.dumps(entries))
    ds = WhamDataset(tmp_path / "broken.json")
    with pytest.raises(FileNotFoundError, match="gone.wav"):
        ds[0]
    with pytest.raises(ValueError, match="expects 16000 Hz"):
        WhamDataset(meta / "tt.json", sample_rate=16000)[0]


# ----------------------------------------------------------------------------- remixing
@pytest.mark.parametrize("task,n_targets", [("sep_noisy", 3), ("enh_single", 2)])
def test_remix_batch_sums_and_shapes(task, n_targets):
    targets = torch.randn(5, n_targets, 100)
    mix, new = remix_batch(targets, task, generator=torch.Generator().manual_seed(0))
    assert mix.shape == (5, 100) and new.shape == targets.shape
    torch.testing.assert_close(mix, new.sum(1))
    # Every new source is an old source of the same index, rescaled within the gain range.
    for j in range(n_targets):
        for b in range(5):
            ratios = [
                (new[b, j] @ targets[k, j]) / (targets[k, j] @ targets[k, j]) for k in range(5)
            ]
            errors = [torch.norm(new[b, j] - r * targets[k, j]) for k, r in enumerate(ratios)]
            k = int(torch.argmin(torch.stack(errors)))
            assert errors[k] < 1e-4 and 10 ** (-2.6 / 20) < ratios[k] < 10 ** (2.6 / 20)


def test_remix_batch_deterministic_and_random():
    targets = torch.randn(8, 3, 50)
    a = remix_batch(targets, "sep_noisy", generator=torch.Generator().manual_seed(3))
    b = remix_batch(targets, "sep_noisy", generator=torch.Generator().manual_seed(3))
    c = remix_batch(targets, "sep_noisy", generator=torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_remix_batch_requires_noise():
    with pytest.raises(ValueError, match="return_noise=True"):
        remix_batch(torch.randn(4, 2, 50), "sep_noisy")
    with pytest.raises(ValueError, match="batch, n_sources, time"):
        remix_batch(torch.randn(2, 50), "enh_single")


# ----------------------------------------------------------------------------- espeak-ng set
def test_tts_testset_fails_clearly_without_espeak(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # import -> ImportError
    assert not espeak_available()
    with pytest.raises(RuntimeError, match=r"espeakng-loader.*pip install asteroid-lir\[synth\]"):
        build_tts_testset(tmp_path, n_test=1, progress=False)
    assert not any(tmp_path.iterdir())  # refused before writing anything


@pytest.mark.slow
@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
def test_tts_testset_layout(tmp_path):
    wav_dir = build_tts_testset(tmp_path, n_test=2, progress=False)
    assert validate_wham_dir(wav_dir, splits=("tt",)) == wav_dir
    assert [p.name for p in write_wham_metadata(wav_dir, tmp_path / "meta")] == ["tt.json"]
    mix, targets = WhamDataset(tmp_path / "meta" / "tt.json", segment=None)[1]
    torch.testing.assert_close(targets.sum(0), mix, atol=1e-6, rtol=0)
