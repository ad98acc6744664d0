"""Non-stationary, WHAM!-like ambient noise (cafe / restaurant / street ambience) from scratch.

A noise signal is a random blend of up to five components, each at its own level: babble of
far-away synthetic talkers (crops of reverberant speech streams, :func:`make_babble_pool`: the
speech-like energy of WHAM!'s cafe recordings, which the separator must learn to leave out);
coloured noise whose spectral shape drifts and whose level swells and fades (crowd, traffic,
ventilation); transients (dish clinks, knocks, chair and door bursts); hum and background music;
a low-frequency rumble.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import fftconvolve, lfilter

from .speech_synth import draw_speaker, synthesize_utterance

__all__ = ["make_babble_pool", "synthesize_noise"]


def _reverberate(wav: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Convolve with an exponentially decaying noise tail (a far talker in a room)."""
    rt60 = rng.uniform(0.3, 0.9)
    n = int(rt60 * sample_rate)
    t = np.arange(n) / sample_rate
    rir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    rir[0] += rng.uniform(0.5, 2.0)  # some direct path
    return fftconvolve(wav, rir)[: len(wav)]


def make_babble_pool(
    rng: np.random.Generator,
    n_streams: int = 16,
    seconds: float = 12.0,
    n_talkers: int = 24,
    sample_rate: int = 8000,
) -> np.ndarray:
    """Long reverberant single-talker streams to build babble from.

    Args:
        rng (np.random.Generator): random generator.
        n_streams (int): number of streams.
        seconds (float): duration of each stream.
        n_talkers (int): number of distinct background talkers (never the target speakers).
        sample_rate (int): sample rate in Hz.

    Returns:
        np.ndarray: ``(n_streams, time)`` streams of unit RMS.
    """
    talkers = [draw_speaker(rng, f"bg{i:03d}") for i in range(n_talkers)]
    n_time = int(seconds * sample_rate)
    pool = np.zeros((n_streams, n_time))
    for i in range(n_streams):
        talker = talkers[int(rng.integers(n_talkers))]
        pos = 0
        while pos < n_time:
            utt = synthesize_utterance(talker, float(rng.uniform(2.0, 5.0)), rng, sample_rate)
            stop = min(n_time, pos + len(utt))
            pool[i, pos:stop] = utt[: stop - pos]
            pos = stop
        pool[i] = _reverberate(pool[i], rng, sample_rate)
        pool[i] /= np.sqrt(np.mean(pool[i] ** 2)) + 1e-12
    return pool


def _babble(n: int, pool: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n_talkers = int(rng.integers(3, 9))
    out = np.zeros(n)
    for _ in range(n_talkers):
        stream = pool[int(rng.integers(len(pool)))]
        idx = (int(rng.integers(len(stream))) + np.arange(n)) % len(stream)
        out += stream[idx] * 10 ** (rng.uniform(-6, 3) / 20)
    # Far-field talkers lose high frequencies: gentle one-pole low-pass.
    a = rng.uniform(0.0, 0.6)
    return lfilter([1 - a], [1, -a], out)


def _drifting_coloured_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    hop, n_fft = 64, 256
    n_frames = n // hop + 2
    spec = np.fft.rfft(rng.standard_normal((n_frames, n_fft)), axis=-1)
    bins = np.arange(n_fft // 2 + 1) / (n_fft // 2)
    # Log-spectral shape = sum of slowly varying cosines (time constant ~0.3-2 s).
    n_ceps = 5
    smooth = rng.uniform(40, 250)
    ceps = gaussian_filter1d(rng.standard_normal((n_frames, n_ceps)), smooth, axis=0)
    # Unit variance using the theoretical std of Gaussian-smoothed white noise (the empirical
    # one of a signal shorter than the smoothing is close to 0).
    ceps = ceps * np.sqrt(2 * np.sqrt(np.pi) * smooth) * rng.uniform(0.3, 1.2, n_ceps)
    ceps[:, 0] += rng.uniform(-2.5, 0.5)  # overall slope: mostly low-frequency heavy
    log_env = ceps @ np.cos(np.pi * np.outer(np.arange(1, n_ceps + 1), bins))
    frames = np.fft.irfft(spec * np.exp(log_env), n=n_fft, axis=-1)
    window = np.hanning(n_fft + 1)[:n_fft]
    frames = frames * window
    out = np.zeros((n_frames + n_fft // hop - 1, hop))
    for r in range(n_fft // hop):  # overlap-add, one hop-sized block of each frame at a time
        out[r : r + n_frames] += frames[:, r * hop : (r + 1) * hop]
    out = out.reshape(-1)[:n]
    # Swells and fades of the overall level.
    swell = gaussian_filter1d(rng.standard_normal(n // 400 + 2), rng.uniform(2, 10))
    swell = np.interp(np.arange(n), np.arange(len(swell)) * 400, swell)
    return out * 10 ** (rng.uniform(1, 6) * swell / (np.abs(swell).max() + 1e-9) / 20)


def _transients(n: int, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    out = np.zeros(n)
    for _ in range(rng.poisson(rng.uniform(0.3, 3.0) * n / sample_rate)):
        start = int(rng.integers(n))
        kind = rng.integers(3)
        length = int(rng.uniform(*((0.05, 0.3), (0.03, 0.15), (0.05, 0.4))[kind]) * sample_rate)
        t = np.arange(length) / sample_rate
        if kind == 0:  # clink: a few damped high partials
            ev = sum(
                np.sin(2 * np.pi * rng.uniform(1200, 3800) * t + rng.uniform(0, 6.3))
                * np.exp(-t / rng.uniform(0.01, 0.08))
                for _ in range(int(rng.integers(1, 4)))
            )
        elif kind == 1:  # knock: low damped resonance with a click
            ev = np.sin(2 * np.pi * rng.uniform(80, 500) * t) * np.exp(-t / rng.uniform(0.01, 0.04))
            ev[: min(length, 20)] += rng.standard_normal(min(length, 20)) * 0.5
        else:  # clatter / chair / door: decaying coloured noise burst
            a = rng.uniform(-0.5, 0.9)
            burst = lfilter([1.0], [1, -a], rng.standard_normal(length))
            ev = burst * np.exp(-t / rng.uniform(0.02, 0.15))
        ev = np.asarray(ev) * 10 ** (rng.uniform(-12, 6) / 20) / (np.abs(ev).max() + 1e-9)
        stop = min(n, start + len(ev))
        out[start:stop] += ev[: stop - start]
    return out


def _music_hum(n: int, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    t = np.arange(n) / sample_rate
    out = np.zeros(n)
    note_len = int(rng.uniform(0.25, 1.0) * sample_rate)
    for start in range(0, n, note_len):
        f0 = 110 * 2 ** (rng.integers(0, 24) / 12)
        seg = slice(start, min(n, start + note_len))
        tt = t[seg] - t[start]
        env = np.minimum(1.0, tt / 0.02) * np.exp(-tt / rng.uniform(0.2, 1.5))
        for h in range(1, 6):
            if h * f0 < sample_rate / 2:
                out[seg] += env * np.sin(2 * np.pi * h * f0 * tt) / h**1.5
    if rng.random() < 0.5:  # mains hum
        out += 0.3 * np.sin(2 * np.pi * rng.choice([50.0, 60.0]) * t) * np.max(np.abs(out))
    return out


def synthesize_noise(
    n_samples: int, rng: np.random.Generator, babble_pool: np.ndarray, sample_rate: int = 8000
) -> np.ndarray:
    """One ambient-noise signal.

    Args:
        n_samples (int): length in samples.
        rng (np.random.Generator): random generator.
        babble_pool (np.ndarray): ``(n_streams, time)`` talker streams from
            :func:`make_babble_pool`.
        sample_rate (int): sample rate in Hz.

    Returns:
        np.ndarray: ``(n_samples,)`` float64 noise of unit RMS.
    """
    if n_samples <= 0:
        raise ValueError(f"n_samples must be positive, got {n_samples}.")
    components = []
    # (component, probability of being present, level range in dB)
    if rng.random() < 0.8:
        components.append((_babble(n_samples, babble_pool, rng), rng.uniform(-6, 0)))
    if rng.random() < 0.8 or not components:
        components.append((_drifting_coloured_noise(n_samples, rng), rng.uniform(-8, 0)))
    if rng.random() < 0.6:
        components.append((_transients(n_samples, rng, sample_rate), rng.uniform(-10, -2)))
    if rng.random() < 0.25:
        components.append((_music_hum(n_samples, rng, sample_rate), rng.uniform(-18, -6)))
    if rng.random() < 0.3:
        rumble = lfilter([0.02], [1, -0.98], rng.standard_normal(n_samples))
        components.append((rumble, rng.uniform(-12, -3)))
    noise = np.zeros(n_samples)
    for comp, level_db in components:
        rms = np.sqrt(np.mean(comp**2))
        if np.isfinite(rms) and rms > 1e-9:
            noise += comp / rms * 10 ** (level_db / 20)
    rms = np.sqrt(np.mean(noise**2))
    if rms < 1e-9:
        noise = rng.standard_normal(n_samples)
        rms = np.sqrt(np.mean(noise**2))
    return noise / rms
