"""The embedded unified-separation corpus: a folder of clips per source class, generated here.

Without TUSS's licensed corpora the unified recipe builds this corpus from generated signals,
in the layout the recipe also reads for real data (one folder per source class)::

    <out>/{tr,cv,tt}/speech/*.wav    speech-like utterances (speech_sources)
    <out>/{tr,cv,tt}/sfx/*.wav       one sound event kind per clip (sfx_synth)
    <out>/{tr,cv,tt}/sfxbg/*.wav     ambience: half WHAM!-like with babble (noise_synth), half
                                     DEMAND-like places without talkers (sfx_synth)
    <out>/{tr,cv,tt}/drums|bass|vocals|other/songNNNNN.wav
                                     the four stems of a song (music_synth), one name per song
    <out>/{tr,cv,tt}/musicbg/*.wav   mixes of 2-4 stems of other songs
    <out>/corpus_info.json           sizes, seed, sample rate, speech engine

Every clip is mono, ``clip_seconds`` long, 16-bit, at an RMS of about -26 dBFS over its active
part (the recipe's mixer sets the levels). Test and training use different speakers, background
talkers, songs and events. Clip ``i`` of class ``c`` in split ``s`` draws from its own generator,
so the corpus is a function of ``seed``, whatever the number of worker processes.

Command line::

    python -m asteroid_lir.synth.unified_corpus --out DIR [--n_train N] [--n_valid N]
        [--n_test N] [--clip_seconds S] [--sample_rate SR] [--seed S] [--workers W]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from ..tasks import PROMPT_NAMES, SPLITS
from .music_synth import STEMS, synthesize_song
from .noise_synth import make_babble_pool, synthesize_noise
from .sfx_synth import SFX_KINDS, synthesize_ambience, synthesize_sfx
from .speech_sources import ENGINES, make_speech_source
from .streams import WORKER_STATE, map_jobs

__all__ = ["CLASSES", "build_unified_corpus"]

#: Source classes of the corpus: the TUSS prompts.
CLASSES = PROMPT_NAMES
_KIND_CODES = {"speech": 0, "sfx": 1, "sfxbg": 2, "song": 3, "musicbg": 4}
_RMS = 0.05
_PEAK = 0.99


def _normalise(wav: np.ndarray) -> np.ndarray:
    """Scale the active part (frames above -40 dB of the loudest) to RMS 0.05, peak <= 0.99."""
    frame = 256
    n = len(wav) // frame * frame
    if n == 0:
        return wav
    energy = (wav[:n].reshape(-1, frame) ** 2).mean(1)
    active = energy > energy.max() * 1e-4
    rms = np.sqrt(energy[active].mean()) if active.any() else 0.0
    if not rms > 0:
        raise RuntimeError("A generated clip is silent.")
    wav = wav * (_RMS / rms)
    peak = np.abs(wav).max()
    return wav * (_PEAK / peak) if peak > _PEAK else wav


def _write(path: Path, wav: np.ndarray, sr: int) -> None:
    sf.write(str(path), _normalise(np.asarray(wav, dtype=np.float64)), sr, subtype="PCM_16")


def _job(job: tuple[str, str, int]) -> None:
    split, kind, index = job
    st = WORKER_STATE
    sr, n = st["sample_rate"], st["n_samples"]
    rng = np.random.default_rng([st["seed"], SPLITS.index(split), _KIND_CODES[kind], index])
    root = Path(st["out"]) / split
    name = f"{split}{index:05d}.wav"
    group = "test" if split == "tt" else "train"
    if kind == "speech":
        speaker = st["speech"].draw_speaker(rng, f"{group}{index}", group)
        (wav,) = st["speech"].utterances([speaker], [st["clip_seconds"]], rng, group)
        _write(root / "speech" / name, np.pad(wav, (0, max(0, n - len(wav))))[:n], sr)
    elif kind == "sfx":
        sfx = SFX_KINDS[index % len(SFX_KINDS)]
        _write(root / "sfx" / f"{split}{index:05d}_{sfx}.wav", synthesize_sfx(n, rng, sr, sfx), sr)
    elif kind == "sfxbg":
        if rng.random() < 0.5:  # WHAM!-like: cafe / restaurant ambience with babble
            wav = synthesize_noise(n, rng, st["babble"][group], sr)
        else:  # DEMAND-like: places without talkers
            wav = synthesize_ambience(n, rng, sr)
        _write(root / "sfxbg" / name, wav, sr)
    elif kind == "song":
        stems = synthesize_song(n, rng, sr)
        for stem in STEMS:
            _write(root / stem / f"song{split}{index:05d}.wav", stems[stem], sr)
    else:  # musicbg: 2-4 stems of a song at random levels
        song = synthesize_song(n, rng, sr)
        wav = 0
        for k in rng.choice(len(STEMS), size=int(rng.integers(2, 5)), replace=False):
            stem = song[STEMS[k]]
            wav = wav + stem / (np.sqrt(np.mean(stem**2)) + 1e-9) * 10 ** (rng.uniform(-8, 0) / 20)
        _write(root / "musicbg" / name, wav, sr)


def build_unified_corpus(
    out: str | Path,
    n_train: int = 200,
    n_valid: int = 24,
    n_test: int = 40,
    clip_seconds: float = 3.0,
    sample_rate: int = 8000,
    seed: int = 0,
    workers: int = 1,
    speech_engine: str = "formant",
    progress: bool = True,
) -> Path:
    """Generate the embedded unified corpus (see the module docstring for the layout).

    Args:
        out: corpus root (created if needed).
        n_train, n_valid, n_test: clips per class (songs for the stems) in tr / cv / tt.
        clip_seconds: length of every clip.
        sample_rate: sample rate in Hz (at least 8000).
        seed: seed of the whole corpus.
        workers: processes (the result does not depend on it).
        speech_engine: ``"formant"`` (fast, no optional package), ``"neural"``, ``"espeak"``,
            ``"mixed"`` or ``"auto"`` (see
            :func:`asteroid_lir.synth.speech_sources.make_speech_source`).
        progress: print one line per split.

    Returns:
        Path: ``out``.

    Raises:
        ValueError: bad sizes, rate or engine.
    """
    sizes = {"tr": int(n_train), "cv": int(n_valid), "tt": int(n_test)}
    if min(sizes.values()) < 1:
        raise ValueError(f"Every split needs at least one clip per class, got {sizes}.")
    if sample_rate < 8000:
        raise ValueError(f"sample_rate must be at least 8000 Hz, got {sample_rate}.")
    if not clip_seconds > 0.5:
        raise ValueError(f"clip_seconds must be more than 0.5 s, got {clip_seconds}.")
    out = Path(out)
    pool_rng = np.random.default_rng([seed, 99])
    pool_sizes = {
        "neural": {"train": max(4, sizes["tr"] // 4), "test": max(4, sizes["tt"] // 4)},
        "espeak": {"train": (max(2, sizes["tr"] // 8), 4), "test": (2, 4)},
    }
    cache = out / "speech_pool"
    # An unknown engine is refused here, before anything is written.
    speech = make_speech_source(
        speech_engine, seed, pool_sizes, sample_rate, max(1, workers), progress, cache
    )
    for split in SPLITS:
        for cls in CLASSES:
            (out / split / cls).mkdir(parents=True, exist_ok=True)
    babble = {
        group: make_babble_pool(pool_rng, n_streams=6, seconds=8.0, sample_rate=sample_rate)
        for group in ("train", "test")
    }
    n_samples = int(round(clip_seconds * sample_rate))
    state = dict(out=str(out), seed=int(seed), sample_rate=int(sample_rate), n_samples=n_samples)
    state |= dict(clip_seconds=float(clip_seconds), speech=speech, babble=babble)
    start = time.time()
    for split in SPLITS:
        jobs = [(split, kind, i) for kind in _KIND_CODES for i in range(sizes[split])]
        list(map_jobs(_job, jobs, state, workers))
        if progress:
            print(
                f"[unified corpus] {split}: {sizes[split]} clips per class "
                f"({time.time() - start:.0f} s)",
                flush=True,
            )
    info = dict(layout="one folder per source class: <split>/<class>/*.wav", classes=list(CLASSES))
    info |= dict(sizes=sizes, clip_seconds=float(clip_seconds), sample_rate=int(sample_rate))
    info |= dict(seed=int(seed), speech_engine=speech.description, sfx_kinds=list(SFX_KINDS))
    info["stems"] = list(STEMS)
    (out / "corpus_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the embedded unified corpus.")
    parser.add_argument("--out", required=True)
    parser.add_argument("--n_train", type=int, default=200)
    parser.add_argument("--n_valid", type=int, default=24)
    parser.add_argument("--n_test", type=int, default=40)
    parser.add_argument("--clip_seconds", type=float, default=3.0)
    parser.add_argument("--sample_rate", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--speech", dest="speech_engine", default="formant", choices=ENGINES)
    build_unified_corpus(**vars(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
