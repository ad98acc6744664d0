"""eSpeak NG voices: which ones train, which ones are held out, and seeded utterance pools.

An eSpeak NG voice is an accent (English pronunciation rules: ``en-us``, ``en-gb-scotland``,
...) and a *variant* (``m3``, ``klatt2``, ``Annie``, ...). :data:`HELD_OUT_VARIANTS` speak only in
the held-out test set (:mod:`~asteroid_lir.synth.tts_testset`); the training corpus uses
:func:`training_variants`, the others less the breathy ones (:func:`irreproducible_variants`),
whose breath noise changes from one process to another even with the same seed and requests
(measured: ``sandro`` and ``Alicia`` gave other audio in two fresh processes once PyTorch was
imported, every other variant tried the same). A training speaker (:class:`EspeakVoice`) has an
accent, variant, pitch, range, rate and, two in five, a seeded breathy voice (:func:`add_breath`).

Determinism: eSpeak NG keeps state between utterances in static memory (echo buffers, pitch
flutter) and draws noise from the C library's ``rand()``, and nothing in the API resets it, so
:func:`build_espeak_pools` synthesises by a fixed number of streams
(:mod:`~asteroid_lir.synth.streams`), each in a freshly spawned process that seeds ``rand()`` and
speaks a fixed list of jobs in order: the same seed gives bit-identical pools.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import istft, resample_poly, stft

from .espeak_lib import espeak_library
from .extra import require
from .sentences import make_sentence
from .streams import run_streams

__all__ = [
    "ACCENTS",
    "HELD_OUT_VARIANTS",
    "EspeakVoice",
    "add_breath",
    "build_espeak_pools",
    "draw_espeak_voice",
    "irreproducible_variants",
    "to_rate_and_trim",
    "training_variants",
]

# English accents of eSpeak NG (pronunciation rules, not voices): both sets use them.
ACCENTS = tuple(
    "en-us en-gb en-gb-scotland en-gb-x-rp en-029 en-us-nyc en-gb-x-gbclan en-gb-x-gbcwmd".split()
)
# Voices of the held-out test set only.
HELD_OUT_VARIANTS = tuple(f"m{i}" for i in range(1, 8)) + tuple(f"f{i}" for i in range(1, 6))
_STREAMS = 2


def _variant_folder() -> str:
    loader = require("eSpeak NG is not available", "espeakng_loader")
    return os.path.join(loader.get_data_path(), "voices", "!v")


def irreproducible_variants() -> tuple[str, ...]:
    """Installed variants with breath noise, which does not follow the seed (module docstring).

    Returns:
        tuple of str: variant names, sorted.

    Raises:
        RuntimeError: ``espeakng-loader`` is not installed.
    """
    folder = _variant_folder()
    breathy = []
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as fh:
            if any(line.split()[:1] == ["breath"] for line in fh):
                breathy.append(name)
    return tuple(sorted(breathy))


def training_variants() -> tuple[str, ...]:
    """eSpeak NG variants the training corpus may use (installed, not held out, not breathy).

    Returns:
        tuple of str: variant names, sorted.

    Raises:
        RuntimeError: ``espeakng-loader`` is not installed.
    """
    excluded = set(HELD_OUT_VARIANTS) | set(irreproducible_variants())
    return tuple(sorted(v for v in os.listdir(_variant_folder()) if v not in excluded))


@dataclass(frozen=True)
class EspeakVoice:
    """An eSpeak NG speaker.

    Args:
        speaker_id (str): identifier (used in file names).
        accent (str): English accent (one of :data:`ACCENTS`).
        variant (str): eSpeak NG variant.
        pitch (int): base pitch, 0-100.
        pitch_range (int): pitch range, 0-100.
        rate (int): words per minute.
        breath (float): level of the added breath noise relative to the speech (0: none).
    """

    speaker_id: str
    accent: str
    variant: str
    pitch: int
    pitch_range: int
    rate: int
    breath: float = 0.0

    @property
    def name(self) -> str:
        """The voice name eSpeak NG takes (``"en-gb+klatt2"``)."""
        return f"{self.accent}+{self.variant}"


def draw_espeak_voice(
    rng: np.random.Generator, speaker_id: str, variants: tuple[str, ...]
) -> EspeakVoice:
    """Draw a speaker: accent, variant, pitch, pitch range and rate, uniformly.

    Args:
        rng (np.random.Generator): random generator.
        speaker_id (str): identifier.
        variants (tuple of str): the variants to draw from.

    Returns:
        EspeakVoice: the speaker.
    """
    return EspeakVoice(
        speaker_id=speaker_id,
        accent=str(rng.choice(ACCENTS)),
        variant=str(rng.choice(variants)),
        pitch=int(rng.integers(15, 86)),
        pitch_range=int(rng.integers(20, 91)),
        rate=int(rng.integers(125, 196)),
        breath=float(rng.uniform(0.1, 0.4)) if rng.random() < 0.4 else 0.0,
    )


def add_breath(
    wav: np.ndarray, level: float, rng: np.random.Generator, sample_rate: int
) -> np.ndarray:
    """Make a voice breathy: add noise whose short-time spectrum follows the speech's envelope.

    The noise has the magnitude of the speech's STFT smoothed across frequency (the formants
    without the harmonics) and random phases, so it is loud where the voice is and shaped by
    the same vocal tract, like aspiration.

    Args:
        wav (np.ndarray): the speech.
        level (float): RMS of the noise relative to the speech's (0 returns ``wav`` unchanged).
        rng (np.random.Generator): random generator of the phases.
        sample_rate (int): sample rate in Hz.

    Returns:
        np.ndarray: the breathy speech, same length.
    """
    if level <= 0 or wav.size == 0:
        return wav
    n_fft = int(2 ** np.ceil(np.log2(0.032 * sample_rate)))
    _, _, spec = stft(wav, nperseg=n_fft, noverlap=3 * n_fft // 4)
    envelope = gaussian_filter1d(np.abs(spec), sigma=2.0, axis=0)
    phases = np.exp(2j * np.pi * rng.random(spec.shape))
    _, noise = istft(envelope * phases, nperseg=n_fft, noverlap=3 * n_fft // 4)
    noise = np.pad(noise, (0, max(0, len(wav) - len(noise))))[: len(wav)]
    gain = level * np.sqrt(np.mean(wav**2) / max(np.mean(noise**2), 1e-20))
    return wav + gain * noise


def to_rate_and_trim(wav: np.ndarray, sr: int, sample_rate: int, what: str) -> np.ndarray:
    """Resample eSpeak NG's output to ``sample_rate`` and cut the silence around it.

    Args:
        wav (np.ndarray): waveform at ``sr``.
        sr (int): its sample rate.
        sample_rate (int): the wanted sample rate.
        what (str): the text, for the error message.

    Returns:
        np.ndarray: the trimmed float64 waveform.

    Raises:
        RuntimeError: the waveform is silent.
    """
    gcd = np.gcd(int(sr), int(sample_rate))
    wav = resample_poly(np.asarray(wav, dtype=np.float64), sample_rate // gcd, int(sr) // gcd)
    peak = np.abs(wav).max() if wav.size else 0.0
    active = np.flatnonzero(np.abs(wav) > 1e-3 * peak) if peak > 0 else np.array([], dtype=int)
    if active.size == 0:
        raise RuntimeError(f"eSpeak NG produced silence for {what!r}.")
    return wav[active[0] : active[-1] + 1]


def _espeak_stream(stream: int, seed: int, jobs: list, sample_rate: int, emit) -> None:
    """Speak the jobs of one stream in order, after seeding the C library's ``rand()``."""
    lib = espeak_library()
    lib.seed_random(int(np.random.SeedSequence([seed, 5200, stream]).generate_state(1)[0] >> 1))
    for k, (key, voice, text) in enumerate(jobs):
        wav = lib.synthesize(text, voice.name, voice.rate, voice.pitch, voice.pitch_range)
        wav = to_rate_and_trim(wav, lib.sample_rate, sample_rate, text)
        breath_rng = np.random.default_rng([seed, 5300, stream, k])
        wav = add_breath(wav, voice.breath, breath_rng, sample_rate)
        emit(key, wav.astype(np.float32))


def build_espeak_pools(
    sizes: dict[str, tuple[int, int]],
    seed: int = 0,
    sample_rate: int = 8000,
    workers: int = 2,
    progress: bool = True,
) -> dict[str, list[tuple[EspeakVoice, list[np.ndarray]]]]:
    """Draw eSpeak NG training voices and speak a few sentences with each.

    Args:
        sizes (dict): ``group -> (n_voices, utterances_per_voice)``; each group has its own
            voices and sentences (e.g. ``{"train": (64, 6), "test": (12, 6)}``).
        seed (int): seed of the voices, the sentences and eSpeak NG's noise.
        sample_rate (int): sample rate of the utterances.
        workers (int): processes at once (no effect on the result).
        progress (bool): show a progress bar.

    Returns:
        dict: per group, a list of ``(voice, utterances)``.
    """
    if any(int(v) < 1 or int(u) < 2 for v, u in sizes.values()):
        raise ValueError(f"Every group needs a voice and two utterances per voice, got {sizes}.")
    variants = training_variants()
    voices: dict[str, list[tuple[EspeakVoice, list]]] = {}  # group -> [(voice, job keys)]
    jobs = []
    for code, (group, (n_voices, n_utts)) in enumerate(sizes.items()):
        voices[group] = []
        for v in range(int(n_voices)):
            rng = np.random.default_rng([seed, 5000 + code, v])
            voice = draw_espeak_voice(rng, f"es{group[:2]}{v:03d}", variants)
            voices[group].append((voice, [(group, v, u) for u in range(int(n_utts))]))
            for u in range(int(n_utts)):
                text = make_sentence(np.random.default_rng([seed, 5100 + code, v, u]), 9, 20)
                jobs.append(((group, v, u), voice, text))
    streams = [(s, seed, jobs[s::_STREAMS], sample_rate) for s in range(_STREAMS)]
    kwargs = dict(fresh_process=True, desc="speech pool (eSpeak NG)", progress=progress)
    wavs = run_streams(_espeak_stream, streams, len(jobs), workers, **kwargs)
    return {g: [(voice, [wavs[k] for k in keys]) for voice, keys in vs] for g, vs in voices.items()}
