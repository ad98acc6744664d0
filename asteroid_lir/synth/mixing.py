"""WHAM!-like mixing of two speakers and a noise, writing one mixture in the WHAM! layout, and
the corpus builders' CSV tables."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from ..tasks import MIXTURE_FOLDERS, SOURCE_FOLDERS, WHAM_FOLDERS

__all__ = [
    "NOISE_SNR_DB",
    "SPEAKER_SNR_DB",
    "SPEECH_LEVEL_DBFS",
    "mix_wham_like",
    "snr_range",
    "write_csv",
    "write_wham_mixture",
]

# WHAM! level ranges: speakers at a relative SNR in [0, 5] dB (wsj0-2mix), the louder speaker
# against the noise at an SNR in [-6, 3] dB.
SPEAKER_SNR_DB = (0.0, 5.0)
NOISE_SNR_DB = (-6.0, 3.0)
# Level of the louder speaker (dBFS RMS), varied so that absolute level carries no information.
SPEECH_LEVEL_DBFS = (-30.0, -20.0)
_PEAK = 0.9
_INT16_SCALE = 32768.0


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.asarray(x, dtype=np.float64) ** 2))


def snr_range(value: object) -> tuple[float, float]:
    """``value`` as a finite ``(low, high)`` range in dB with ``low <= high``, or a ValueError."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        msg = f"An SNR range must be two numbers (low, high) in dB, got {value!r}."
        raise ValueError(msg) from None
    if not (np.isfinite(low) and np.isfinite(high) and low <= high):
        raise ValueError(f"An SNR range must be finite with low <= high, got {value!r}.")
    return low, high


def mix_wham_like(
    s1: np.ndarray,
    s2: np.ndarray,
    make_noise: Callable[[int], np.ndarray],
    rng: np.random.Generator,
    noise_snr_db: tuple[float, float] = NOISE_SNR_DB,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Scale two utterances and a noise to WHAM! levels, in "min" mode, on the 16-bit grid.

    The mixture is as long as the shorter utterance. Which speaker is louder is random, so the
    folder (s1/s2) says nothing about the level. Every source is rounded to the 16-bit grid
    *before* the mixtures are summed, so that the 16-bit files satisfy
    ``mix_both == s1 + s2 + noise`` (and the two other mixtures) exactly.

    Args:
        s1, s2 (np.ndarray): ``(time,)`` utterances.
        make_noise (callable): ``make_noise(n_samples) -> (n_samples,)`` noise.
        rng (np.random.Generator): random generator of the levels.
        noise_snr_db (tuple): range ``(low, high)`` in dB of the louder speaker over the noise
            (WHAM!'s ``[-6, 3]`` by default; one uniform draw, so a wider range with the same
            generator stretches the same mixtures' SNRs).

    Returns:
        tuple: ``(parts, info)``: ``parts`` maps the six WHAM! folders to int16 arrays;
        ``info`` gives ``speaker_snr_db`` (s1 over s2) and ``noise_snr_db`` (louder speaker
        over noise), measured on the written signals.
    """
    n = min(len(s1), len(s2))
    if n == 0:
        raise ValueError("Cannot mix an empty utterance.")
    s1, s2 = (np.asarray(s[:n], dtype=np.float64) for s in (s1, s2))
    noise = np.asarray(make_noise(n), dtype=np.float64)
    if noise.shape != (n,):
        raise ValueError(f"make_noise({n}) returned shape {noise.shape}.")
    low, high = snr_range(noise_snr_db)
    for name, sig in (("s1", s1), ("s2", s2), ("noise", noise)):
        if not np.all(np.isfinite(sig)) or _power(sig) == 0:
            raise ValueError(f"The {name} signal is silent or not finite.")
    level = 10 ** (rng.uniform(*SPEECH_LEVEL_DBFS) / 20)
    rel_db = rng.uniform(*SPEAKER_SNR_DB)
    louder_is_s1 = rng.random() < 0.5
    loud, quiet = (s1, s2) if louder_is_s1 else (s2, s1)
    loud = loud * level / np.sqrt(_power(loud))
    quiet = quiet * level * 10 ** (-rel_db / 20) / np.sqrt(_power(quiet))
    noise = noise * level * 10 ** (-rng.uniform(low, high) / 20) / np.sqrt(_power(noise))
    s1, s2 = (loud, quiet) if louder_is_s1 else (quiet, loud)
    # Keep every file (sources and mixtures) inside full scale; scaling all parts together
    # keeps the SNRs.
    peak = max(np.abs(x).max() for x in (s1, s2, noise, s1 + s2 + noise, s1 + noise, s1 + s2))
    if peak > _PEAK:
        s1, s2, noise = (x * (_PEAK / peak) for x in (s1, s2, noise))
    q1, q2, qn = (np.round(x * _INT16_SCALE).astype(np.int32) for x in (s1, s2, noise))
    signals = (q1, q2, qn, q1 + q2 + qn, q1 + qn, q1 + q2)  # s1 s2 noise, mix_both/single/clean
    parts = dict(zip(SOURCE_FOLDERS + MIXTURE_FOLDERS, (x.astype(np.int16) for x in signals)))
    louder = q1 if _power(q1) >= _power(q2) else q2
    info = {
        "speaker_snr_db": 10 * np.log10(_power(q1) / max(_power(q2), 1e-12)),
        "noise_snr_db": 10 * np.log10(_power(louder) / max(_power(qn), 1e-12)),
    }
    return parts, info


def write_wham_mixture(
    split_dir: str | Path, utt_id: str, parts: dict[str, np.ndarray], sample_rate: int
) -> None:
    """Write the six signals of one mixture as ``<split_dir>/<folder>/<utt_id>.wav`` (16-bit).

    Args:
        split_dir (str or Path): split folder (e.g. ``.../wav8k/min/tr``).
        utt_id (str): file name without extension, the same in every folder.
        parts (dict): the six WHAM! folders mapped to int16 arrays.
        sample_rate (int): sample rate in Hz.
    """
    missing = set(WHAM_FOLDERS) - set(parts)
    if missing:
        raise ValueError(f"Missing parts {sorted(missing)} for mixture {utt_id}.")
    for folder in WHAM_FOLDERS:
        path = Path(split_dir) / folder / f"{utt_id}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), parts[folder], sample_rate, subtype="PCM_16")


def write_csv(path: Path, rows: list[dict]) -> None:
    """Write ``rows`` (dicts with the same keys, in the same order) as a CSV table at ``path``."""
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
