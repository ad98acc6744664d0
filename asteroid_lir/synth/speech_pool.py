"""The neural engine's utterance pool: Piper utterances with their WORLD analysis, cached.

A group's pool (``"train"``, ``"test"``) holds procedural sentences (:mod:`.sentences`), each
spoken by the Piper voice (:mod:`.neural_speech`) with its own prosody scales, resampled to the
corpus rate and analysed by WORLD (:mod:`.voice_transform`) once, so that every corpus speaker
only resynthesises excerpts in its own voice. The jobs are split into a fixed number of streams
(:mod:`.streams`), each with its own seeded Piper session, so a pool is a function of the seed.
It is cached as ``pool_<group>_<key>.npz`` (+ ``.json`` with the texts), the key hashing the
seed, the rate, the sizes and :func:`~asteroid_lir.synth.fingerprint.corpus_fingerprint`, so a
pool made by another version of the synthesis code is never reused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from .fingerprint import corpus_fingerprint
from .neural_speech import PiperVoice, ProsodyScales
from .sentences import make_sentence
from .streams import run_streams
from .voice_transform import WorldFeatures, analyze_speech

__all__ = ["SpeechPool", "build_speech_pools"]

# Fixed number of Piper streams: the pool does not depend on the number of worker processes.
_POOL_STREAMS = 2


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
            **{k: np.concatenate([getattr(f, k) for f in feats]) for k in ("f0", "log_sp", "ap")},
            n_bins=feats[0].n_bins,
            sample_rate=self.sample_rate,
        )
        Path(str(path) + ".json").write_text(json.dumps(self.texts, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> SpeechPool:
        """Read a pool written by :meth:`save`."""

        def split(array, lengths):
            return [part.copy() for part in np.split(array, np.cumsum(lengths)[:-1])]

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


def _piper_stream(stream: int, seed: int, jobs: list, sample_rate: int, emit) -> None:
    """Synthesise the jobs of one stream in order with its own seeded Piper session."""
    stream_seed = int(np.random.SeedSequence([seed, 4100, stream]).generate_state(1)[0] >> 1)
    voice = PiperVoice(seed=stream_seed, threads=1)
    gcd = np.gcd(voice.sample_rate, sample_rate)
    for group, index, text, scales in jobs:
        wav = voice.synthesize(text, scales).astype(np.float64)
        wav = resample_poly(wav, sample_rate // gcd, voice.sample_rate // gcd)
        emit((group, index), (wav.astype(np.float32), analyze_speech(wav, sample_rate)))


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
        json.dumps([corpus_fingerprint(), seed, sample_rate, sorted(sizes.items())]).encode()
    ).hexdigest()[:10]
    paths = {g: Path(cache_dir) / f"pool_{g}_{key}.npz" for g in sizes} if cache_dir else {}
    if paths and all(p.is_file() and Path(str(p) + ".json").is_file() for p in paths.values()):
        return {g: SpeechPool.load(p) for g, p in paths.items()}
    jobs = _pool_jobs(seed, sizes)
    streams = [(s, seed, jobs[s::_POOL_STREAMS], sample_rate) for s in range(_POOL_STREAMS)]
    results = run_streams(
        _piper_stream, streams, len(jobs), workers, desc="speech pool (Piper)", progress=progress
    )
    pools = {}
    for group, n in sizes.items():
        items = [results[(group, i)] for i in range(n)]
        texts = [text for g, _, text, _ in jobs if g == group]
        pools[group] = SpeechPool([w for w, _ in items], texts, [f for _, f in items], sample_rate)
    for group, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        pools[group].save(path)
    return pools
