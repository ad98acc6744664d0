"""Speech sources of the mini corpus: a neural voice with WORLD speakers, or formant speech.

Two engines produce the speakers of :func:`asteroid_lir.data.build_mini_corpus`:

* ``"neural"`` (the default when its packages are installed): a pool of utterances of varied
  procedural sentences (:mod:`~asteroid_lir.data.sentences`) spoken by a Piper neural voice
  trained on real recordings (:mod:`~asteroid_lir.data.neural_speech`), each with its own
  prosody scales, synthesised once per corpus; every speaker is a WORLD voice transform
  (:mod:`~asteroid_lir.data.voice_transform`: pitch, intonation range, vocal-tract length,
  tilt, breathiness, rate) applied to random excerpts of the pool. The training/validation
  speakers and the test speakers are disjoint, and so are the sentences of their pools.
* ``"formant"``: the project's own formant synthesiser (:mod:`~asteroid_lir.data.speech_synth`),
  which needs nothing beyond numpy and scipy.

``"auto"`` picks ``"neural"`` when onnxruntime, the voice, espeakng-loader and pyworld can be
imported, and otherwise says which package is missing (a :class:`RuntimeWarning`) and falls back
to ``"formant"``. Asking for ``"neural"`` explicitly fails with that message instead.

No engine here uses eSpeak NG's *audio* (only its phonemizer feeds the Piper voice): eSpeak NG
voices are kept for the held-out test set of :mod:`~asteroid_lir.data.tts_testset`.

Determinism: the pool is synthesised by a fixed number of streams (independent of the number
of worker processes), each with its own seeded Piper session and a fixed list of sentences, so
the same seed always gives the same pool; everything else draws from per-mixture generators.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import queue as queue_mod
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly
from tqdm import tqdm

from .neural_speech import PiperVoice, ProsodyScales, neural_speech_available
from .sentences import make_sentence
from .speech_synth import draw_speaker, synthesize_utterance
from .voice_transform import (
    WorldFeatures,
    analyze_speech,
    draw_world_voice,
    frame_period_samples,
    render_voice,
    world_available,
)

__all__ = [
    "FORMANT_ENGINE",
    "HELD_OUT_ENGINES",
    "NEURAL_ENGINE",
    "FormantSpeech",
    "NeuralSpeech",
    "SpeechPool",
    "build_speech_pools",
    "make_speech_source",
    "resolve_speech_engine",
]

NEURAL_ENGINE = "neural"
FORMANT_ENGINE = "formant"
ENGINES = ("auto", NEURAL_ENGINE, FORMANT_ENGINE)
# Audio engines that the training corpus never uses (the held-out test set's).
HELD_OUT_ENGINES = ("espeak-ng",)
# Fixed number of Piper streams: the pool does not depend on the number of worker processes.
_POOL_STREAMS = 2
_POOL_VERSION = 4
_TARGET_RMS = 0.05
_FADE_SECONDS = 0.01


def resolve_speech_engine(engine: str = "auto") -> str:
    """The engine to use for ``engine`` (``"auto"``, ``"neural"`` or ``"formant"``).

    Args:
        engine (str): requested engine.

    Returns:
        str: ``"neural"`` or ``"formant"``.

    Raises:
        ValueError: unknown engine. RuntimeError: ``"neural"`` asked for but not installed.

    Warns:
        RuntimeWarning: ``"auto"`` falls back to the formant synthesiser (says what is missing).
    """
    if engine not in ENGINES:
        raise ValueError(f"Unknown speech engine {engine!r}; choose one of {ENGINES}.")
    if engine == FORMANT_ENGINE:
        return FORMANT_ENGINE
    reasons = [r for ok, r in (neural_speech_available(), world_available()) if not ok]
    if not reasons:
        return NEURAL_ENGINE
    message = f"the neural speech engine (Piper voice + WORLD) cannot run: {'; '.join(reasons)}"
    if engine == NEURAL_ENGINE:
        raise RuntimeError(message + ".")
    warnings.warn(
        message + ". Falling back to the formant synthesiser: models trained on it generalise "
        "much less to real speech.",
        RuntimeWarning,
        stacklevel=2,
    )
    return FORMANT_ENGINE


# ----------------------------------------------------------------------------- speech pool
@dataclass
class SpeechPool:
    """Utterances of the neural voice at the corpus sample rate, with their WORLD analysis.

    Args:
        wavs (list of np.ndarray): float32 waveforms.
        texts (list of str): what each utterance says.
        features (list of WorldFeatures): the WORLD analysis of each waveform.
        sample_rate (int): sample rate in Hz.
    """

    wavs: list[np.ndarray]
    texts: list[str]
    features: list[WorldFeatures]
    sample_rate: int

    def __len__(self) -> int:
        return len(self.wavs)

    def save(self, path: Path) -> None:
        """Write the pool to ``path`` (``.npz``) and its texts to ``path`` + ``.json``."""
        feats = self.features
        np.savez(
            path,
            audio=np.concatenate(self.wavs).astype(np.float32),
            lengths=np.array([len(w) for w in self.wavs], dtype=np.int64),
            frames=np.array([len(f) for f in feats], dtype=np.int64),
            f0=np.concatenate([f.f0 for f in feats]),
            log_sp=np.concatenate([f.log_sp for f in feats]),
            ap=np.concatenate([f.ap for f in feats]),
            n_bins=feats[0].n_bins,
            sample_rate=self.sample_rate,
        )
        Path(str(path) + ".json").write_text(json.dumps(self.texts, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> SpeechPool:
        """Read a pool written by :meth:`save`."""

        def split(array, lengths):
            bounds = np.concatenate([[0], np.cumsum(lengths)])
            return [array[a:b].copy() for a, b in zip(bounds[:-1], bounds[1:])]

        with np.load(path) as data:
            sr, n_bins = int(data["sample_rate"]), int(data["n_bins"])
            wavs = split(data["audio"], data["lengths"])
            parts = [split(data[k], data["frames"]) for k in ("f0", "log_sp", "ap")]
        feats = [WorldFeatures(f0, sp, ap, n_bins, sr) for f0, sp, ap in zip(*parts)]
        texts = json.loads(Path(str(path) + ".json").read_text())
        return cls(wavs=wavs, texts=texts, features=feats, sample_rate=sr)


def _pool_jobs(seed: int, sizes: dict[str, int]) -> list[tuple[str, int, str, ProsodyScales]]:
    """``(group, index, text, scales)`` of every pool utterance (a function of the seed only)."""
    jobs = []
    for code, (group, n) in enumerate(sizes.items()):
        for index in range(n):
            rng = np.random.default_rng([seed, 4000 + code, index])
            text = make_sentence(rng, min_words=9, max_words=20)
            scales = ProsodyScales(
                length_scale=float(rng.uniform(0.85, 1.25)),
                noise_scale=float(rng.uniform(0.45, 0.9)),
                noise_w=float(rng.uniform(0.5, 1.1)),
            )
            jobs.append((group, index, text, scales))
    return jobs


def _run_stream(stream: int, seed: int, jobs: list, sample_rate: int, emit) -> None:
    """Synthesise the jobs of one stream in order with its own seeded Piper session."""
    stream_seed = int(np.random.SeedSequence([seed, 4100, stream]).generate_state(1)[0] >> 1)
    voice = PiperVoice(seed=stream_seed, threads=1)
    gcd = np.gcd(voice.sample_rate, sample_rate)
    for group, index, text, scales in jobs:
        wav = voice.synthesize(text, scales).astype(np.float64)
        wav = resample_poly(wav, sample_rate // gcd, voice.sample_rate // gcd)
        emit((group, index, wav.astype(np.float32), analyze_speech(wav, sample_rate)))


def _stream_process(stream, seed, jobs, sample_rate, out_queue) -> None:
    try:
        _run_stream(stream, seed, jobs, sample_rate, out_queue.put)
    except BaseException:  # report to the parent, which raises
        out_queue.put(("error", stream, traceback.format_exc(), None))


def build_speech_pools(
    sizes: dict[str, int],
    seed: int = 0,
    sample_rate: int = 8000,
    workers: int = 2,
    progress: bool = True,
    cache_dir: str | Path | None = None,
) -> dict[str, SpeechPool]:
    """Synthesise the utterance pools of the neural engine (or load them from ``cache_dir``).

    Args:
        sizes (dict): number of utterances of each pool, e.g. ``{"train": 160, "test": 30}``
            (each pool has its own sentences).
        seed (int): seed of the sentences, prosody scales and the voice's noise.
        sample_rate (int): sample rate of the pools.
        workers (int): processes (at most the fixed number of streams; no effect on the result).
        progress (bool): show a progress bar.
        cache_dir (str or Path, optional): where pools are saved and looked up.

    Returns:
        dict: a :class:`SpeechPool` per key of ``sizes``.
    """
    if any(int(n) < 2 for n in sizes.values()):
        raise ValueError(f"Every pool needs at least two utterances, got {sizes}.")
    key = hashlib.sha1(
        json.dumps([_POOL_VERSION, seed, sample_rate, sorted(sizes.items())]).encode()
    ).hexdigest()[:10]
    paths = {g: Path(cache_dir) / f"pool_{g}_{key}.npz" for g in sizes} if cache_dir else {}
    if paths and all(p.is_file() and Path(str(p) + ".json").is_file() for p in paths.values()):
        return {g: SpeechPool.load(p) for g, p in paths.items()}
    jobs = _pool_jobs(seed, sizes)
    per_stream = [jobs[s::_POOL_STREAMS] for s in range(_POOL_STREAMS)]
    results: dict[tuple[str, int], tuple[np.ndarray, WorldFeatures]] = {}
    bar = tqdm(total=len(jobs), desc="speech pool (Piper)", unit="utt", disable=not progress)

    def collect(item) -> None:
        results[(item[0], item[1])] = (item[2], item[3])
        bar.update()

    if workers > 1:
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        out_queue = ctx.Queue()
        procs = [
            ctx.Process(
                target=_stream_process, args=(s, seed, per_stream[s], sample_rate, out_queue)
            )
            for s in range(_POOL_STREAMS)
        ]
        for p in procs:
            p.start()
        try:
            while len(results) < len(jobs):
                try:
                    item = out_queue.get(timeout=5.0)
                except queue_mod.Empty:
                    if not any(p.is_alive() for p in procs):
                        raise RuntimeError(
                            "The speech pool workers stopped unexpectedly."
                        ) from None
                    continue
                if item[0] == "error":
                    raise RuntimeError(f"Speech pool stream {item[1]} failed:\n{item[2]}")
                collect(item)
        finally:
            for p in procs:
                if p.is_alive():
                    p.terminate()
                p.join()
    else:
        for s in range(_POOL_STREAMS):
            _run_stream(s, seed, per_stream[s], sample_rate, collect)
    bar.close()
    pools = {}
    for group, n in sizes.items():
        items = [results[(group, i)] for i in range(n)]
        texts = [text for g, _, text, _ in jobs if g == group]
        pools[group] = SpeechPool(
            wavs=[w for w, _ in items],
            texts=texts,
            features=[f for _, f in items],
            sample_rate=sample_rate,
        )
    for group, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        pools[group].save(path)
    return pools


# ----------------------------------------------------------------------------- sources
def _fade(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    n = min(len(wav) // 4, int(_FADE_SECONDS * sample_rate))
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n)
        wav[:n] *= ramp
        wav[-n:] *= ramp[::-1]
    return wav


def _normalise(wav: np.ndarray) -> np.ndarray:
    rms = np.sqrt(np.mean(wav**2))
    if not np.isfinite(rms) or rms < 1e-8:
        raise RuntimeError("A synthesised utterance is silent.")
    return wav * (_TARGET_RMS / rms)


class FormantSpeech:
    """The formant synthesiser as a speech source (no optional package needed)."""

    engine = FORMANT_ENGINE
    description = "formant synthesiser (asteroid_lir.data.speech_synth)"

    def __init__(self, sample_rate: int = 8000):
        self.sample_rate = sample_rate

    def draw_speaker(self, rng: np.random.Generator, speaker_id: str):
        """A new speaker (:class:`~asteroid_lir.data.speech_synth.SpeakerProfile`)."""
        return draw_speaker(rng, speaker_id)

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

    def draw_speaker(self, rng: np.random.Generator, speaker_id: str):
        """A new speaker (:class:`~asteroid_lir.data.voice_transform.WorldVoice`)."""
        return draw_world_voice(rng, speaker_id)

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
            out.append(_normalise(_fade(wav[:n_out].copy(), sr)))
        return out


def make_speech_source(
    engine: str = "auto",
    seed: int = 0,
    pool_sizes: dict[str, int] | None = None,
    sample_rate: int = 8000,
    workers: int = 2,
    progress: bool = True,
    cache_dir: str | Path | None = None,
) -> FormantSpeech | NeuralSpeech:
    """The speech source for ``engine`` (see :func:`resolve_speech_engine`).

    Args:
        engine (str): ``"auto"``, ``"neural"`` or ``"formant"``.
        seed (int): seed of the neural engine's pools.
        pool_sizes (dict, optional): pool sizes of the neural engine (default 128 / 20).
        sample_rate (int): sample rate in Hz.
        workers (int): processes for the pool synthesis.
        progress (bool): progress bar for the pool synthesis.
        cache_dir (str or Path, optional): where the pools are cached.

    Returns:
        FormantSpeech or NeuralSpeech: the source (its ``description`` says what it is).
    """
    if resolve_speech_engine(engine) == FORMANT_ENGINE:
        return FormantSpeech(sample_rate)
    sizes = pool_sizes or {"train": 128, "test": 20}
    pools = build_speech_pools(sizes, seed, sample_rate, workers, progress, cache_dir)
    return NeuralSpeech(pools)
