"""Sound-effect-like events from scratch (the ``sfx`` class of the unified corpus).

A clip holds one kind of sound event (:data:`SFX_KINDS`), repeated or sustained over part of the
clip with silence around it, like a FSD50K clip: knocks (damped modes excited by a click),
chimes (inharmonic partials, long decays), alarms (beeps or a siren), bird-like chirps, an
engine (harmonics of a low wobbling fundamental with rough noise), barks (noisy harmonic bursts
with a formant), steps (trains of filtered-noise clicks), water (band-passed noise with rising
bubble chirps), a door creak (an irregular pulse train gliding in pitch) and a whoosh (a noise
band sweeping across the spectrum). :func:`synthesize_ambience` makes DEMAND-like backgrounds
without talkers (:data:`AMBIENCE_KINDS`): coloured noise whose level and tilt drift, plus the
typical sounds of the place at a lower level.

Every parameter is drawn from a wide range, so that two clips of one kind differ. Everything is
a function of the ``np.random.Generator`` given.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, lfilter, sosfilt

__all__ = ["AMBIENCE_KINDS", "SFX_KINDS", "synthesize_ambience", "synthesize_sfx"]

SFX_KINDS = tuple("impact chime alarm chirp engine bark steps water creak whoosh".split())


def _time(n: int, sr: int) -> np.ndarray:
    return np.arange(n) / sr


def _bandpass(x: np.ndarray, low: float, high: float, sr: int, order: int = 2) -> np.ndarray:
    nyq = sr / 2
    low, high = max(20.0, low), min(high, 0.95 * nyq)
    if high <= low * 1.05:
        high = min(0.95 * nyq, low * 1.5)
    sos = butter(order, [low / nyq, high / nyq], btype="band", output="sos")
    return sosfilt(sos, x)


def _modal(n: int, freqs, decays, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _time(n, sr)
    out = np.zeros(n)
    for f, d in zip(freqs, decays):
        if f < 0.45 * sr:
            amp = rng.uniform(0.3, 1.0)
            out += amp * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)) * np.exp(-t / d)
    return out


def _impact(n, sr, rng):
    length = int(rng.uniform(0.08, 0.4) * sr)
    modes = rng.uniform(150, min(3000, 0.4 * sr), int(rng.integers(2, 6)))
    ev = _modal(length, modes, rng.uniform(0.01, 0.12, len(modes)), sr, rng)
    click = min(length, int(0.004 * sr) + 1)
    ev[:click] += rng.standard_normal(click) * rng.uniform(0.3, 1.5)
    return _repeat(ev, n, rng, (1, 5), (0.15, 0.6), sr)


def _chime(n, sr, rng):
    length = int(rng.uniform(0.6, 1.6) * sr)
    f0 = rng.uniform(400, min(1800, 0.2 * sr))
    ratios = np.array([1.0, 2.76, 5.40, 8.93]) * rng.uniform(0.97, 1.03, 4)
    ev = _modal(length, f0 * ratios, rng.uniform(0.15, 0.8) / np.arange(1, 5), sr, rng)
    return _repeat(ev, n, rng, (1, 3), (0.3, 0.9), sr)


def _alarm(n, sr, rng):
    active = int(rng.uniform(0.8, 2.2) * sr)
    t = _time(active, sr)
    if rng.random() < 0.5:  # beeps
        f = rng.uniform(700, min(2500, 0.35 * sr))
        period = rng.uniform(0.15, 0.5)
        gate = ((t % period) < period * rng.uniform(0.3, 0.7)).astype(float)
        ev = np.sign(np.sin(2 * np.pi * f * t)) * 0.3 + np.sin(2 * np.pi * f * t)
        ev = _bandpass(ev, f * 0.8, f * 3.5, sr) * gate
    else:  # siren
        lo, hi = rng.uniform(400, 800), rng.uniform(900, min(1800, 0.3 * sr))
        rate = rng.uniform(0.3, 2.0)
        inst = lo + (hi - lo) * 0.5 * (1 - np.cos(2 * np.pi * rate * t))
        phase = 2 * np.pi * np.cumsum(inst) / sr
        ev = np.sin(phase) + 0.3 * np.sin(2 * phase)
    return _place(ev, n, rng)


def _chirp(n, sr, rng):
    length = int(rng.uniform(0.04, 0.15) * sr)
    t = _time(length, sr)
    top = min(3600.0, 0.45 * sr)
    f_start = rng.uniform(1500, top)
    f_end = np.clip(f_start * rng.uniform(0.6, 1.5), 1000, top)
    inst = f_start + (f_end - f_start) * (t / t[-1]) ** rng.uniform(0.5, 2.0)
    ev = np.sin(2 * np.pi * np.cumsum(inst) / sr) * np.sin(np.pi * t / t[-1]) ** 2
    return _repeat(ev, n, rng, (3, 10), (0.06, 0.25), sr)


def _engine(n, sr, rng):
    active = int(rng.uniform(1.2, 2.8) * sr)
    t = _time(active, sr)
    f0 = rng.uniform(25, 80) * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    ev = sum(
        np.sin(h * phase) / h ** rng.uniform(0.5, 1.2) for h in range(1, 25) if h * 80 < sr / 2
    )
    rough = _bandpass(rng.standard_normal(active), 100, 1500, sr) * rng.uniform(0.1, 0.5)
    ev = ev * (1 + 0.4 * np.sin(phase / 2)) + rough * np.std(ev)
    env = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.25)
    return _place(ev * env, n, rng)


def _bark(n, sr, rng):
    length = int(rng.uniform(0.1, 0.3) * sr)
    t = _time(length, sr)
    f0 = rng.uniform(250, 700) * (1 - 0.3 * t / t[-1])
    src = np.sign(np.sin(2 * np.pi * np.cumsum(f0) / sr)) + 0.8 * rng.standard_normal(length)
    formant = rng.uniform(600, min(2000, 0.3 * sr))
    ev = _bandpass(src, formant * 0.6, formant * 1.6, sr) * np.exp(-t / rng.uniform(0.05, 0.15))
    return _repeat(ev, n, rng, (1, 4), (0.2, 0.5), sr)


def _steps(n, sr, rng):
    length = int(rng.uniform(0.02, 0.06) * sr)
    centre = rng.uniform(300, min(3000, 0.35 * sr))
    ev = _bandpass(rng.standard_normal(length), centre * 0.5, centre * 2.0, sr)
    ev *= np.exp(-_time(length, sr) / rng.uniform(0.005, 0.02))
    return _repeat(ev, n, rng, (4, 12), (0.08, 0.5), sr, jitter=0.3)


def _water(n, sr, rng):
    active = int(rng.uniform(1.0, 2.5) * sr)
    bed = _bandpass(rng.standard_normal(active), rng.uniform(300, 800), rng.uniform(1500, 3500), sr)
    bed *= rng.uniform(0.1, 0.4)
    for _ in range(int(rng.integers(5, 25))):
        length = int(rng.uniform(0.01, 0.04) * sr)
        t = _time(length, sr)
        f = rng.uniform(400, 1500) * (1 + 3 * t / t[-1])
        bubble = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.01)
        start = int(rng.integers(0, max(1, active - length)))
        bed[start : start + length] += bubble[: active - start]
    return _place(bed, n, rng)


def _creak(n, sr, rng):
    active = int(rng.uniform(0.5, 1.5) * sr)
    t = _time(active, sr)
    f0 = np.abs(rng.uniform(20, 60) + rng.uniform(10, 80) * np.sin(np.pi * t / t[-1]))
    f0 *= 1 + 0.2 * rng.standard_normal(active).cumsum() / np.sqrt(active)
    pulses = np.diff(np.floor(np.cumsum(np.abs(f0)) / sr), prepend=0.0)
    ev = _bandpass(pulses, rng.uniform(400, 900), rng.uniform(1500, min(3500, 0.4 * sr)), sr)
    return _place(ev * np.sin(np.pi * t / t[-1]), n, rng)


def _whoosh(n, sr, rng):
    active = int(rng.uniform(0.4, 1.2) * sr)
    noise = rng.standard_normal(active)
    out = np.zeros(active)
    block = max(16, active // 24)
    lo, hi = rng.uniform(200, 800), rng.uniform(1500, min(3500, 0.45 * sr))
    if rng.random() < 0.5:
        lo, hi = hi, lo
    for i, start in enumerate(range(0, active, block)):
        centre = lo + (hi - lo) * i * block / active
        seg = slice(start, min(active, start + block + block // 2))
        window = np.hanning(seg.stop - seg.start)
        out[seg] += _bandpass(noise[seg], centre * 0.7, centre * 1.4, sr) * window
    return _place(out * np.sin(np.pi * _time(active, sr) / (active / sr)) ** 2, n, rng)


def _place(ev: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    ev = ev[:n]
    start = int(rng.integers(0, max(1, n - len(ev) + 1)))
    out[start : start + len(ev)] = ev
    return out


def _repeat(ev, n, rng, count, gap_s, sr, jitter: float = 0.0) -> np.ndarray:
    out = np.zeros(n)
    period = rng.uniform(*gap_s) * sr + len(ev)
    k = int(rng.integers(count[0], count[1] + 1))
    span = int(period * (k - 1)) + len(ev)
    pos = float(rng.integers(0, max(1, n - span + 1)))
    for _ in range(k):
        start = int(pos)
        if start >= n:
            break
        gain = rng.uniform(0.6, 1.0)
        out[start : start + len(ev)] += gain * ev[: n - start]
        pos += period * (1 + jitter * rng.uniform(-1, 1))
    return out


# Per kind: (spectral tilt range of the bed, sfx kinds of its foreground, events per second).
_AMBIENCE = {
    "street": ((-1.5, -0.5), ("engine", "alarm", "steps", "whoosh"), 1.0),
    "kitchen": ((-1.0, 0.0), ("impact", "water", "chime", "steps"), 1.5),
    "car": ((-2.5, -1.5), ("engine",), 0.5),
    "rain": ((-0.5, 0.3), ("water", "impact"), 2.0),
    "park": ((-1.2, -0.2), ("chirp", "bark", "steps"), 1.2),
    "hall": ((-1.5, -0.5), ("steps", "impact", "creak"), 0.8),
}
AMBIENCE_KINDS = tuple(_AMBIENCE)


def _coloured_noise(n: int, tilt: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with a power spectrum ~ f^tilt (tilt -1: pink, -2: brown)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=float)
    f[0] = 1.0
    out = np.fft.irfft(spec * f ** (tilt / 2), n=n)
    return out / (np.std(out) + 1e-12)


def _checked_kind(
    n_samples: int, kind: str | None, kinds: tuple[str, ...], rng: np.random.Generator, what: str
) -> str:
    """``kind``, or one of ``kinds`` drawn with ``rng`` when None, after checking the length."""
    if n_samples <= 0:
        raise ValueError(f"n_samples must be positive, got {n_samples}.")
    if kind is None:
        kind = kinds[int(rng.integers(len(kinds)))]
    if kind not in kinds:
        raise ValueError(f"Unknown {what} {kind!r}; choose from {list(kinds)}.")
    return kind


def synthesize_ambience(
    n_samples: int, rng: np.random.Generator, sample_rate: int = 8000, kind: str | None = None
) -> np.ndarray:
    """A background ambience without talkers (DEMAND-like).

    Args:
        n_samples, rng, sample_rate: as for :func:`synthesize_sfx`.
        kind (str, optional): one of :data:`AMBIENCE_KINDS` (default: drawn at random).

    Returns:
        np.ndarray: ``(n_samples,)`` float64 of unit RMS, active everywhere.

    Raises:
        ValueError: unknown kind or non-positive length.
    """
    kind = _checked_kind(n_samples, kind, AMBIENCE_KINDS, rng, "ambience")
    tilts, events, rate = _AMBIENCE[kind]
    bed = _coloured_noise(n_samples, rng.uniform(*tilts), rng)
    t = _time(n_samples, sample_rate)
    swell = 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.05, 0.4) * t + rng.uniform(0, 6.3))
    out = bed * swell
    for _ in range(rng.poisson(rate * n_samples / sample_rate)):
        ev = synthesize_sfx(n_samples, rng, sample_rate, events[int(rng.integers(len(events)))])
        out += ev * 10 ** (rng.uniform(-12, 0) / 20)
    return out / (np.sqrt(np.mean(out**2)) + 1e-12)


_MAKERS = {kind: globals()[f"_{kind}"] for kind in SFX_KINDS}  # kind -> the function _<kind>


def synthesize_sfx(
    n_samples: int, rng: np.random.Generator, sample_rate: int = 8000, kind: str | None = None
) -> np.ndarray:
    """One sound-effect clip.

    Args:
        n_samples (int): length in samples.
        rng (np.random.Generator): random generator.
        sample_rate (int): sample rate in Hz.
        kind (str, optional): one of :data:`SFX_KINDS` (default: drawn at random).

    Returns:
        np.ndarray: ``(n_samples,)`` float64 clip whose active part has unit peak, with a
        smooth onset and offset and silence elsewhere.

    Raises:
        ValueError: unknown kind or non-positive length.
    """
    kind = _checked_kind(n_samples, kind, SFX_KINDS, rng, "sound-effect kind")
    out = _MAKERS[kind](n_samples, sample_rate, rng)
    if rng.random() < 0.3:  # a little room: a short decaying echo tail
        tail = int(rng.uniform(0.05, 0.25) * sample_rate)
        rir = rng.standard_normal(tail) * np.exp(-np.arange(tail) / (tail / 5)) * 0.3
        rir[0] = 1.0
        out = lfilter(rir, [1.0], out)
    peak = np.abs(out).max()
    if not np.isfinite(peak) or peak < 1e-9:
        return synthesize_sfx(n_samples, rng, sample_rate, "impact")
    return out / peak
