"""New speakers from one recorded-voice model: WORLD analysis, voice transform, resynthesis.

The WORLD vocoder splits speech into an F0 contour, a spectral envelope and an aperiodicity,
which can be changed independently before resynthesis. A :class:`WorldVoice` is a target
speaker: median pitch and pitch range, vocal-tract length (a frequency warp of the envelope and
aperiodicity), spectral tilt, breathiness and speaking rate (a time stretch of the tracks).
Applied to utterances of a single neural voice they give many distinct speakers that keep the
natural phonetics and prosody of speech learnt from real recordings.

F0 comes from DIO (4 channels per octave, a lenient voicing range, so that low or rough vowels
stay voiced), refined by StoneMask and smoothed; frames with little energy below 1 kHz are
unvoiced. The envelope comes from CheapTrick. The aperiodicity is a fixed profile of the voiced
frames (none below 1.5 kHz, rising to 0.8 at 4 kHz, close to what D4C measures on the neural
voice) and 1 in unvoiced frames: D4C is not reproducible from call to call (it adds noise from a
global generator that it never reseeds), and the corpus must be.

References:
    Morise, Yokomori and Ozawa, "WORLD: a vocoder-based high-quality speech synthesis system for
    real-time applications", IEICE Trans. Inf. & Syst., 2016.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import gaussian_filter1d, median_filter

from .extra import missing_packages, require
from .speech_synth import draw_voice_class

__all__ = [
    "WorldFeatures",
    "WorldVoice",
    "analyze_speech",
    "draw_world_voice",
    "render_voice",
    "transform_voice",
    "world_available",
]

_FRAME_MS = 5.0
_F0_FLOOR, _F0_CEIL = 60.0, 400.0
# Stored features keep every 2nd envelope bin and every 8th aperiodicity bin (both are smooth
# in frequency: at 8 kHz the envelope is then sampled every 31 Hz), as float16.
_SP_STEP, _AP_STEP = 2, 8
# Voiced frames need at least this share of their envelope energy below 1 kHz.
_MIN_LOW_SHARE = 0.1


def world_available() -> tuple[bool, str]:
    """Whether the WORLD vocoder (``pyworld``) is importable, and what is missing if not."""
    return missing_packages("pyworld")


@dataclass(frozen=True)
class WorldVoice:
    """A target speaker for :func:`transform_voice`.

    Args:
        speaker_id (str): identifier (used in file names).
        f0_hz (float): median fundamental frequency of the speaker.
        f0_range (float): scaling of the log-F0 excursions around the median (intonation range).
        vtl_factor (float): formant scaling; > 1 is a shorter vocal tract (formants go up).
        tilt_db_per_octave (float): spectral tilt added to the envelope (around 500 Hz).
        breathiness (float): in [0, 1), share of the periodic energy turned into noise.
        tempo (float): speaking-rate factor (> 1 is faster).
    """

    speaker_id: str
    f0_hz: float
    f0_range: float
    vtl_factor: float
    tilt_db_per_octave: float
    breathiness: float
    tempo: float


def draw_world_voice(rng: np.random.Generator, speaker_id: str) -> WorldVoice:
    """Draw a speaker: male-like or female-like (equally likely), wide spread in each class.

    Pitch and vocal-tract length are correlated through the class, as in real speakers.

    Args:
        rng (np.random.Generator): random generator.
        speaker_id (str): identifier.

    Returns:
        WorldVoice: the speaker.
    """
    f0, vtl = draw_voice_class(rng, (205.0, 0.14, 1.08, 1.24), (118.0, 0.16, 0.88, 1.06))
    return WorldVoice(
        speaker_id=speaker_id,
        f0_hz=float(np.clip(f0, 75.0, 320.0)),
        f0_range=float(rng.uniform(0.6, 1.5)),
        vtl_factor=vtl,
        tilt_db_per_octave=float(rng.uniform(-3.0, 2.0)),
        breathiness=float(rng.uniform(0.0, 0.1)),
        tempo=float(rng.uniform(0.88, 1.15)),
    )


def _lerp(tracks: np.ndarray, pos: np.ndarray, axis: int) -> np.ndarray:
    """``tracks`` linearly interpolated at the fractional indices ``pos`` along ``axis``."""
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, tracks.shape[axis] - 1)
    frac = (pos - lo).reshape((-1,) + (1,) * (tracks.ndim - 1 - axis))
    return np.take(tracks, lo, axis) * (1.0 - frac) + np.take(tracks, hi, axis) * frac


def _warp_frequency(tracks: np.ndarray, factor: float, step: int, n_bins: int) -> np.ndarray:
    """Warp and upsample coarse frequency tracks: ``out[:, k] = full[:, k / factor]``, where
    ``tracks[:, j]`` holds bin ``j * step`` of the ``n_bins`` bins (edge value kept beyond)."""
    src = np.clip(np.arange(n_bins) / factor / step, 0.0, tracks.shape[1] - 1.0)
    return _lerp(tracks, src, 1)


@dataclass(frozen=True)
class WorldFeatures:
    """Compact WORLD features of one utterance (see :func:`analyze_speech`).

    Args:
        f0 (np.ndarray): ``(frames,)`` F0 in Hz, 0 where unvoiced (5 ms frames).
        log_sp (np.ndarray): ``(frames, bins/2+1)`` float16 log spectral envelope, every 2nd bin.
        ap (np.ndarray): ``(frames, bins/8+1)`` float16 aperiodicity, every 8th bin.
        n_bins (int): number of envelope bins of the full resolution (``fft_size // 2 + 1``).
        sample_rate (int): sample rate in Hz.
    """

    f0: np.ndarray
    log_sp: np.ndarray
    ap: np.ndarray
    n_bins: int
    sample_rate: int

    def __len__(self) -> int:
        return len(self.f0)

    def crop(self, start: int, stop: int) -> WorldFeatures:
        """Frames ``start:stop``."""
        crop = slice(start, stop)
        return replace(self, f0=self.f0[crop], log_sp=self.log_sp[crop], ap=self.ap[crop])

    @property
    def median_f0(self) -> float:
        """Median F0 of the voiced frames (150 Hz when fewer than 5 are voiced)."""
        voiced = self.f0[self.f0 > 0]
        return float(np.median(voiced)) if voiced.size >= 5 else 150.0


def _smooth_f0(f0: np.ndarray) -> np.ndarray:
    """Median-filter and smooth log-F0 over the voiced frames (DIO's frame-to-frame jumps blur
    the resynthesised harmonics); unvoiced frames stay at 0."""
    voiced = f0 > 0
    if voiced.sum() < 2:
        return f0
    frames = np.arange(len(f0))
    log_f0 = np.interp(frames, frames[voiced], np.log(f0[voiced]))
    log_f0 = gaussian_filter1d(median_filter(log_f0, size=7, mode="nearest"), 1.5)
    return np.where(voiced, np.exp(log_f0), 0.0)


def analyze_speech(wav: np.ndarray, sample_rate: int = 8000) -> WorldFeatures:
    """WORLD analysis of one talker's speech (DIO + StoneMask, CheapTrick, fixed aperiodicity).

    Args:
        wav (np.ndarray): ``(time,)`` waveform, at least 50 ms.
        sample_rate (int): its sample rate.

    Returns:
        WorldFeatures: F0, envelope and aperiodicity every 5 ms.

    Raises:
        RuntimeError: pyworld is missing. ValueError: ``wav`` is too short, silent or not finite.
    """
    pw = require("The WORLD vocoder is not available", "pyworld")
    x = np.ascontiguousarray(wav, dtype=np.float64)
    if x.ndim != 1 or x.size < sample_rate // 20:
        raise ValueError(f"Expected a (time,) waveform of at least 50 ms, got shape {x.shape}.")
    if not np.all(np.isfinite(x)) or not np.any(x):
        raise ValueError("The waveform is silent or not finite.")
    dio = dict(f0_floor=_F0_FLOOR, f0_ceil=_F0_CEIL, frame_period=_FRAME_MS, allowed_range=0.15)
    f0, times = pw.dio(x, sample_rate, channels_in_octave=4, **dio)
    f0 = _smooth_f0(pw.stonemask(x, f0, times, sample_rate))
    sp = pw.cheaptrick(x, f0, times, sample_rate, f0_floor=_F0_FLOOR)
    # Frames with little energy below 1 kHz are fricatives or silence, not voiced speech.
    freqs = np.arange(sp.shape[1]) * sample_rate / (2.0 * (sp.shape[1] - 1))
    low_share = sp[:, freqs < 1000.0].sum(axis=1) / np.maximum(sp.sum(axis=1), 1e-30)
    f0[low_share < _MIN_LOW_SHARE] = 0.0
    profile = 0.8 * np.clip((freqs - 1500.0) / 2500.0, 0.0, 1.0) ** 2
    ap = np.where((f0 > 0)[:, None], profile[None, :], 1.0)
    log_sp = np.log(np.maximum(sp[:, ::_SP_STEP], 1e-16)).astype(np.float16)
    ap = ap[:, ::_AP_STEP].astype(np.float16)
    return WorldFeatures(f0.astype(np.float32), log_sp, ap, sp.shape[1], sample_rate)


def render_voice(
    features: WorldFeatures,
    voice: WorldVoice,
    rng: np.random.Generator,
    source_f0_hz: float | None = None,
) -> np.ndarray:
    """Resynthesise analysed speech in the voice of ``voice``.

    Besides the speaker's settings each call adds a little per-utterance variation (pitch
    offset of up to a semitone, slow intonation drift, tempo within 5 %).

    Args:
        features (WorldFeatures): the analysed speech (:func:`analyze_speech`).
        voice (WorldVoice): the target speaker.
        rng (np.random.Generator): random generator of the per-utterance variation.
        source_f0_hz (float, optional): median F0 of the source talker (default: the median of
            ``features``); the speaker's ``f0_hz`` replaces it.

    Returns:
        np.ndarray: ``(time,)`` float64 waveform at ``features.sample_rate``, about
        ``len(features) * 5 ms / tempo`` long.
    """
    pw = require("The WORLD vocoder is not available", "pyworld")
    if len(features) < 2:
        raise ValueError("Need at least two analysis frames.")
    sample_rate = features.sample_rate
    f0 = features.f0.astype(np.float64)
    voiced = f0 > 0
    if source_f0_hz is None:
        source_f0_hz = features.median_f0

    # Pitch: new median, scaled excursions, a random offset and a slow drift (semitones). The
    # log-F0 track is interpolated through unvoiced frames so that it can be stretched in time.
    n = len(f0)
    offset = rng.uniform(-1.0, 1.0)
    drift = gaussian_filter1d(rng.standard_normal(n), 40.0) * 8.0
    log_f0 = np.log(np.maximum(f0, 1.0) / source_f0_hz) * voice.f0_range
    log_f0 += (offset + drift) * np.log(2.0) / 12.0 + np.log(voice.f0_hz)
    if voiced.any():
        frames = np.arange(n)
        log_f0 = np.interp(frames, frames[voiced], log_f0[voiced])

    # Speaking rate: stretch every track in time (voicing decisions from the nearest frame).
    tempo = voice.tempo * rng.uniform(0.95, 1.05)
    n_out = max(2, int(round(n / tempo)))
    pos = np.linspace(0.0, n - 1.0, n_out)
    voiced = voiced[np.round(pos).astype(np.int64)]
    log_f0 = _lerp(log_f0, pos, 0)
    log_sp, ap = (_lerp(x.astype(np.float64), pos, 0) for x in (features.log_sp, features.ap))

    # Envelope: vocal-tract length warp (log domain) and tilt; aperiodicity: same warp, breath.
    n_bins = features.n_bins
    freqs = np.arange(n_bins) * sample_rate / (2.0 * (n_bins - 1))
    tilt = voice.tilt_db_per_octave / 10.0 * np.log(10.0)
    log_sp = _warp_frequency(log_sp, voice.vtl_factor, _SP_STEP, n_bins)
    log_sp += tilt * np.log2(np.maximum(freqs, 100.0) / 500.0)
    ap = np.clip(_warp_frequency(ap, voice.vtl_factor, _AP_STEP, n_bins), 0.0, 1.0)
    ap = ap + voice.breathiness * (1.0 - ap)
    new_f0 = np.where(voiced, np.clip(np.exp(log_f0), _F0_FLOOR * 0.8, 0.45 * sample_rate), 0.0)
    tracks = map(np.ascontiguousarray, (new_f0, np.exp(log_sp), ap))
    out = pw.synthesize(*tracks, sample_rate, _FRAME_MS)
    if not np.all(np.isfinite(out)) or not np.any(out):
        raise RuntimeError("WORLD resynthesis produced silence or non-finite samples.")
    return out


def transform_voice(
    wav: np.ndarray,
    voice: WorldVoice,
    rng: np.random.Generator,
    sample_rate: int = 8000,
    source_f0_hz: float | None = None,
) -> np.ndarray:
    """Make ``wav`` sound as if spoken by ``voice``: :func:`analyze_speech`, then
    :func:`render_voice`.

    Args:
        wav (np.ndarray): ``(time,)`` speech of a single talker.
        voice (WorldVoice): the target speaker.
        rng (np.random.Generator): random generator of the per-utterance variation.
        sample_rate (int): sample rate of ``wav`` (and of the output).
        source_f0_hz (float, optional): median F0 of the source talker (default: from ``wav``).

    Returns:
        np.ndarray: ``(time',)`` float64 waveform, ``time' ~ time / tempo``.
    """
    return render_voice(analyze_speech(wav, sample_rate), voice, rng, source_f0_hz)


def frame_period_samples(sample_rate: int) -> float:
    """Samples per analysis frame (5 ms)."""
    return _FRAME_MS * sample_rate / 1000.0
