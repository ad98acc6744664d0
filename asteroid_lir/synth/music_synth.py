"""Multi-track music from scratch: drums, bass, vocals-like and other-instrument stems of a song.

A song has a tempo (70-150 BPM), a key, a major or minor scale and a loop of four chords, one
per bar. Its four stems follow the same grid, so that they start and stop together like the
stems of a MUSDB18 track: ``drums`` (kick, snare and hi-hat on a 16-step pattern with random
variations), ``bass`` (chord roots and fifths in the lowest octaves, a low-passed saw or a
rounded square with a plucked envelope), ``vocals`` (a sung melody with legato, vibrato and
pauses, a glottal-like source through the formants of a vowel that changes with every note) and
``other`` (the chords on a piano-like, organ/pad or plucked instrument in the middle register).

Everything is a function of the ``np.random.Generator`` given.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, lfilter, sosfilt

from ..tasks import STEM_NAMES

__all__ = ["STEMS", "synthesize_song"]

#: The stems of a song, in MUSDB18's order of the TUSS prompts.
STEMS = STEM_NAMES

_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
_MINOR = np.array([0, 2, 3, 5, 7, 8, 10])
# Chord progressions as scale degrees (0-based), one chord per bar.
_PROGRESSIONS = ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 4), (5, 3, 0, 4), (0, 3, 0, 4), (0, 6, 5, 4))
# Vowel formants (F1, F2, F3) in Hz.
_VOWELS = np.array(
    [[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]]
)


def _midi_hz(m) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=float) - 69) / 12)


def _butter(x: np.ndarray, freqs, btype: str, sr: int) -> np.ndarray:
    """``x`` through a 2nd-order Butterworth filter with cut-off(s) ``freqs`` in Hz."""
    return sosfilt(butter(2, np.asarray(freqs) / (sr / 2), btype=btype, output="sos"), x)


class _Song:
    def __init__(self, n: int, sr: int, rng: np.random.Generator):
        self.n, self.sr, self.rng = n, sr, rng
        self.bpm = rng.uniform(70, 150)
        self.beat = 60.0 / self.bpm
        self.step = self.beat / 4  # sixteenth note
        self.key = int(rng.integers(0, 12))
        self.scale = _MAJOR if rng.random() < 0.5 else _MINOR
        self.progression = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
        self.offset = rng.uniform(0, 4 * self.beat)  # where the clip starts in the song

    def bar_chord(self, t: float) -> int:
        bar = int((t + self.offset) // (4 * self.beat))
        return self.progression[bar % len(self.progression)]

    def degree_midi(self, degree: int, octave: int) -> int:
        return 12 * (octave + 1) + self.key + int(self.scale[degree % 7]) + 12 * (degree // 7)

    def grid(self, step: float):
        """Onset times of a grid of period ``step`` that fall inside the clip."""
        return np.arange(-(self.offset % step), self.n / self.sr, step)


def _add(out: np.ndarray, ev: np.ndarray, start: int) -> None:
    if start >= len(out) or start + len(ev) <= 0:
        return
    a, b = max(0, start), min(len(out), start + len(ev))
    out[a:b] += ev[a - start : b - start]


def _drums(song: _Song) -> np.ndarray:
    sr, rng, out = song.sr, song.rng, np.zeros(song.n)
    kick_pat = np.isin(np.arange(16), [0, 8])
    kick_pat[rng.choice([6, 10, 11, 14], size=int(rng.integers(0, 3)), replace=False)] = True
    snare_pat = np.isin(np.arange(16), [4, 12])
    hat_every = int(rng.choice([1, 2, 2, 4]))
    kick_f = rng.uniform(45, 70)
    snare_f = rng.uniform(150, 250)
    hat_decay = rng.uniform(0.02, 0.07)
    hat_cut = min(rng.uniform(2500, 3500), 0.42 * sr)
    t_k = np.arange(int(0.25 * sr)) / sr
    kick = np.sin(2 * np.pi * np.cumsum(kick_f * (1 + 2.5 * np.exp(-t_k / 0.03))) / sr)
    kick *= np.exp(-t_k / rng.uniform(0.08, 0.2))
    t_s = np.arange(int(0.2 * sr)) / sr
    hi = min(3600, 0.95 * (sr / 2))
    snare_noise = _butter(rng.standard_normal(len(t_s)), [min(800, 0.8 * hi), hi], "band", sr)
    snare = 0.6 * np.sin(2 * np.pi * snare_f * t_s) * np.exp(-t_s / 0.04)
    snare_noise /= np.abs(snare_noise).max() + 1e-9
    snare += snare_noise * np.exp(-t_s / rng.uniform(0.05, 0.12))
    t_h = np.arange(int(0.1 * sr)) / sr
    hat_noise = _butter(rng.standard_normal(len(t_h)), min(hat_cut, 0.9 * sr / 2), "high", sr)
    hat = hat_noise / (np.abs(hat_noise).max() + 1e-9) * np.exp(-t_h / hat_decay)
    for onset in song.grid(song.step):
        pos = int(round((onset + song.offset) / song.step)) % 16
        start = int(onset * sr)
        vel = rng.uniform(0.7, 1.0)
        if kick_pat[pos] or (pos % 4 == 0 and rng.random() < 0.05):
            _add(out, kick * vel, start)
        if snare_pat[pos] or rng.random() < 0.03:
            _add(out, 0.7 * snare * vel, start)
        if pos % hat_every == 0:
            _add(out, 0.35 * hat * vel * (1.2 if pos % 4 == 2 else 1.0), start)
    return out


def _bass(song: _Song) -> np.ndarray:
    sr, rng, out = song.sr, song.rng, np.zeros(song.n)
    note_step = song.beat / 2 if rng.random() < 0.6 else song.beat
    octave = int(rng.choice([1, 2]))
    square = rng.random() < 0.4
    cutoff = rng.uniform(300, 900)
    for onset in song.grid(note_step):
        degree = song.bar_chord(max(onset, 0.0))
        if rng.random() < 0.2:
            degree += 4  # the fifth
        if rng.random() < 0.1:
            continue  # a rest
        f = _midi_hz(song.degree_midi(degree, octave))
        length = int(note_step * sr * rng.uniform(0.6, 0.95))
        t = np.arange(length) / sr
        phase = (f * t) % 1.0
        wave = np.sign(phase - 0.5) if square else 2 * phase - 1
        env = np.minimum(1.0, t / 0.005) * np.exp(-t / rng.uniform(0.15, 0.6))
        env[-min(length, 40) :] *= np.linspace(1, 0, min(length, 40))
        _add(out, wave * env, int(onset * sr))
    return _butter(out, min(cutoff, 0.45 * sr), "low", sr)


def _vocals(song: _Song) -> np.ndarray:
    sr, rng, n = song.sr, song.rng, song.n
    f0 = np.zeros(n)
    amp = np.zeros(n)
    formants = np.zeros((n, 3))
    register = int(rng.integers(52, 67))  # lowest MIDI note of the singer's range
    degree = int(rng.integers(0, 7))
    t = 0.0
    total = n / sr
    while t < total:
        phrase = rng.uniform(1.0, 3.0)
        end = min(total, t + phrase)
        while t < end:
            dur = song.beat * float(rng.choice([0.5, 1, 1, 1.5, 2]))
            degree = int(np.clip(degree + rng.integers(-2, 3), 0, 9))
            midi = song.degree_midi(degree, 0) % 12 + register
            a, b = int(t * sr), min(n, int((t + dur) * sr))
            f0[a:b] = _midi_hz(midi)
            amp[a:b] = rng.uniform(0.6, 1.0)
            formants[a:b] = _VOWELS[int(rng.integers(len(_VOWELS)))] * rng.uniform(0.9, 1.15)
            t += dur
        t = end + rng.uniform(0.2, 0.8)  # breath between phrases
    # Legato glides and smooth level/formant changes.
    k = max(1, int(0.03 * sr))
    kernel = np.ones(k) / k
    voiced = f0 > 0
    f0 = np.where(voiced, f0, np.maximum.accumulate(np.where(voiced, f0, 0)) + (~voiced) * 200)
    f0 = np.convolve(f0, kernel, mode="same")
    amp = np.convolve(amp, kernel, mode="same")
    formants = np.stack([np.convolve(formants[:, i], kernel, mode="same") for i in range(3)], 1)
    time = np.arange(n) / sr
    vib = 1 + rng.uniform(0.005, 0.02) * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * time)
    phase = np.cumsum(f0 * vib) / sr
    saw = 2 * (phase % 1.0) - 1
    source = lfilter([1.0], [1, -0.9], saw) + 0.05 * rng.standard_normal(n)
    # Formant filtering by short-time frames (the formants move slowly).
    hop = int(0.01 * sr)
    out = np.zeros(n)
    for start in range(0, n, hop):
        seg = source[start : start + hop]
        f1, f2, f3 = formants[min(n - 1, start)]
        y = np.zeros_like(seg)
        for fc, bw, g in ((f1, 90, 1.0), (f2, 110, 0.6), (f3, 150, 0.3)):
            if fc < 0.45 * sr and fc > 50:
                r = np.exp(-np.pi * bw / sr)
                theta = 2 * np.pi * fc / sr
                y += g * lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], seg)
        out[start : start + hop] = y
    return out * amp


def _other(song: _Song) -> np.ndarray:
    sr, rng, out = song.sr, song.rng, np.zeros(song.n)
    kind = int(rng.integers(3))  # 0 piano-like, 1 pad/organ, 2 pluck
    octave = int(rng.choice([3, 4]))
    step = 4 * song.beat if kind == 1 else song.beat * float(rng.choice([1, 2]))
    for onset in song.grid(step):
        degree = song.bar_chord(max(onset, 0.0))
        notes = [song.degree_midi(degree + d, octave) for d in (0, 2, 4)]
        length = int(step * sr)
        t = np.arange(length) / sr
        chord = np.zeros(length)
        for m in notes:
            f = _midi_hz(m)
            for h in range(1, 8):
                if h * f > 0.45 * sr:
                    break
                if kind == 0:
                    partial = np.exp(-t * (1.5 + h)) / h
                elif kind == 1:
                    partial = (1.0 / h) * np.ones(length)
                else:
                    partial = np.exp(-t * (4 + 3 * h)) / h**0.7
                detune = 1 + (rng.uniform(-0.004, 0.004) if kind == 1 else 0)
                chord += partial * np.sin(2 * np.pi * f * h * detune * t + rng.uniform(0, 6.3))
        attack = 0.08 if kind == 1 else 0.004
        env = np.minimum(1.0, t / attack)
        env[-min(length, 80) :] *= np.linspace(1, 0, min(length, 80))
        _add(out, chord * env, int(onset * sr))
    return out


def synthesize_song(
    n_samples: int, rng: np.random.Generator, sample_rate: int = 8000
) -> dict[str, np.ndarray]:
    """The four stems of one song excerpt.

    Args:
        n_samples (int): length in samples.
        rng (np.random.Generator): random generator.
        sample_rate (int): sample rate in Hz (at least 4 kHz).

    Returns:
        dict: ``{stem: (n_samples,) float64}`` for every stem of :data:`STEMS`, each of unit
        peak (not at relative levels: a mixer chooses them).

    Raises:
        ValueError: non-positive length or a sample rate below 4 kHz.
    """
    if n_samples <= 0:
        raise ValueError(f"n_samples must be positive, got {n_samples}.")
    if sample_rate < 4000:
        raise ValueError(f"sample_rate must be at least 4000 Hz, got {sample_rate}.")
    song = _Song(n_samples, int(sample_rate), rng)
    stems = {name: make(song) for name, make in zip(STEMS, (_drums, _bass, _vocals, _other))}
    peaks = {name: np.abs(wav).max() for name, wav in stems.items()}
    return {name: wav / peaks[name] if peaks[name] > 1e-9 else wav for name, wav in stems.items()}
