"""Speech-like sources from a small formant synthesiser (no recordings, no TTS engine).

A "speaker" is a set of voice parameters (:class:`SpeakerProfile`); an utterance is a random
sequence of syllables grouped into words and phrases with pauses (laid out as frame-rate control
tracks by :mod:`~asteroid_lir.synth.phones`), rendered by the classic source-filter model:

* source: Rosenberg glottal-flow pulses on a continuous F0 contour (declination, pitch accents,
  slow wander, jitter and shimmer), differentiated for lip radiation, plus aspiration noise
  gated by the glottal cycle (breathiness);
* filter: a cascade of four formant resonators gliding between phone targets (coarticulation),
  a nasal low-pass and the speaker's spectral tilt; frication and bursts go through a separate
  place-dependent band-pass branch.

Every parameter is drawn from a wide range, so that a separator trained on these sources must
rely on what all voices share (harmonicity, formant continuity, onsets) rather than on one
synthesiser's details, which lets it transfer to speech from another engine (``tts_testset``).
The time-varying filters multiply short-time spectra (32-ms frames, 8-ms hop): the resonators'
impulse responses are a few milliseconds long, so this is equivalent to sample-by-sample
filtering for our purpose and keeps the synthesis vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .phones import fill_tracks

__all__ = ["SpeakerProfile", "draw_speaker", "synthesize_utterance"]

_BANDWIDTHS = np.array([70.0, 90.0, 150.0, 250.0])
_FRAME_SECONDS = 0.008
_WINDOW_SECONDS = 0.032


@dataclass(frozen=True)
class SpeakerProfile:
    """Voice parameters of one synthetic speaker.

    Args:
        speaker_id (str): identifier (used in file names).
        f0_hz (float): median fundamental frequency.
        f0_range_st (float): size of the pitch accents and declination, in semitones.
        formant_scale (float): vocal-tract length scaling of all formants (> 1: shorter tract).
        vowel_bias (tuple of float): per-formant multiplicative bias of the vowel targets.
        syllable_rate (float): mean syllables per second.
        tilt_db_per_octave (float): extra spectral tilt added to the glottal source.
        breathiness (float): level of aspiration noise mixed into voiced sounds.
        jitter (float): relative standard deviation of the period from cycle to cycle.
        shimmer (float): relative standard deviation of the cycle amplitude.
        open_quotient (float): open fraction of the glottal cycle.
        speed_quotient (float): opening/closing duration ratio of the glottal pulse.
        bandwidth_scale (float): scaling of the formant bandwidths.
    """

    speaker_id: str
    f0_hz: float
    f0_range_st: float
    formant_scale: float
    vowel_bias: tuple[float, float, float]
    syllable_rate: float
    tilt_db_per_octave: float
    breathiness: float
    jitter: float
    shimmer: float
    open_quotient: float
    speed_quotient: float
    bandwidth_scale: float


def draw_voice_class(rng: np.random.Generator, female: tuple, male: tuple) -> tuple[float, float]:
    """``(f0, scaling)`` of a female-like or male-like voice (equally likely): a log-normal F0
    and a uniform vocal-tract scaling, per class ``(median F0 Hz, log-F0 std, lowest, highest)``."""
    f0, log_std, low, high = female if rng.random() < 0.5 else male
    return float(np.exp(rng.normal(np.log(f0), log_std))), float(rng.uniform(low, high))


def draw_speaker(rng: np.random.Generator, speaker_id: str) -> SpeakerProfile:
    """Draw the voice parameters of a new speaker.

    Male-like and female-like voices are equally likely; F0 and formant scale are correlated
    through the voice class, like in real speakers, with a wide spread inside each class.

    Args:
        rng (np.random.Generator): random generator.
        speaker_id (str): identifier of the speaker.

    Returns:
        SpeakerProfile: the speaker.
    """
    f0, scale = draw_voice_class(rng, (210.0, 0.15, 1.05, 1.28), (120.0, 0.18, 0.86, 1.08))
    return SpeakerProfile(
        speaker_id=speaker_id,
        f0_hz=float(np.clip(f0, 65.0, 350.0)),
        f0_range_st=float(rng.uniform(1.5, 8.0)),
        formant_scale=scale,
        vowel_bias=tuple(float(b) for b in rng.uniform(0.9, 1.1, size=3)),
        syllable_rate=float(rng.uniform(2.8, 6.5)),
        tilt_db_per_octave=float(rng.uniform(-7.0, 3.0)),
        breathiness=float(rng.uniform(0.0, 0.06)),
        jitter=float(rng.uniform(0.0, 0.02)),
        shimmer=float(rng.uniform(0.0, 0.1)),
        open_quotient=float(rng.uniform(0.35, 0.85)),
        speed_quotient=float(rng.uniform(1.2, 4.0)),
        bandwidth_scale=float(rng.uniform(0.5, 1.6)),
    )


def _glottal_source(
    speaker: SpeakerProfile, f0: np.ndarray, rng: np.random.Generator, sample_rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """Differentiated Rosenberg pulses on the per-sample F0 contour, and the flow itself."""
    # Jitter: perturb F0 once per glottal period, estimated from the unperturbed phase.
    phase = np.cumsum(f0) / sample_rate
    period = phase.astype(np.int64)
    n_periods = int(period[-1]) + 2
    f0 = f0 * (1.0 + speaker.jitter * rng.standard_normal(n_periods))[period]
    phase = np.cumsum(f0) / sample_rate
    period = phase.astype(np.int64)
    frac = phase - period
    oq = speaker.open_quotient
    t_open = oq * speaker.speed_quotient / (1.0 + speaker.speed_quotient)
    t_close = oq - t_open
    flow = np.where(
        frac < t_open,
        0.5 * (1.0 - np.cos(np.pi * frac / t_open)),
        np.where(frac < oq, np.cos(0.5 * np.pi * (frac - t_open) / t_close), 0.0),
    )
    flow = flow * np.exp(speaker.shimmer * rng.standard_normal(int(period[-1]) + 2))[period]
    derivative = np.diff(flow, prepend=0.0) * (sample_rate / np.maximum(f0, 1.0)) / 8.0
    return derivative, flow


def _resonator_response(freqs: np.ndarray, bws: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """Complex response of a cascade of unity-DC-gain 2nd-order resonators.

    Args:
        freqs, bws: ``(frames, n_formants)`` normalised angular frequencies and bandwidths.
        omega: ``(bins,)`` normalised angular frequencies of the STFT bins.
    """
    r = np.exp(-0.5 * bws)[:, :, None]
    a1 = -2.0 * r * np.cos(freqs)[:, :, None]
    a2 = r**2
    z1 = np.exp(-1j * omega)[None, None, :]
    resp = (1.0 + a1 + a2) / (1.0 + a1 * z1 + a2 * z1**2)
    return np.prod(resp, axis=1)


def _stft_filter(signals: np.ndarray, envelopes: np.ndarray, hop: int, n_fft: int) -> np.ndarray:
    """Filter each row of ``signals`` with its time-varying frequency response.

    Args:
        signals: ``(n, time)`` signals.
        envelopes: ``(n, frames, bins)`` responses; frame ``i`` is centred on sample ``i*hop``.

    Returns:
        np.ndarray: ``(time,)`` sum of the filtered signals.
    """
    n_time = signals.shape[-1]
    n_frames = envelopes.shape[1]
    window = np.sqrt(np.hanning(n_fft + 1)[:n_fft])
    pad = n_fft // 2
    total = (n_frames - 1) * hop + n_fft
    padded = np.zeros((signals.shape[0], total))
    padded[:, pad : pad + n_time] = signals
    starts = np.arange(n_frames) * hop
    idx = starts[:, None] + np.arange(n_fft)[None, :]
    spec = np.fft.rfft(padded[:, idx] * window, axis=-1)
    frames = np.fft.irfft((spec * envelopes).sum(axis=0), n=n_fft, axis=-1) * window
    # Overlap-add in hop-sized blocks (n_fft is a multiple of hop): frame i, block r lands on
    # output block i + r.
    n_per_frame = n_fft // hop
    out = np.zeros((n_frames + n_per_frame - 1, hop))
    norm = np.zeros_like(out)
    for r in range(n_per_frame):
        out[r : r + n_frames] += frames[:, r * hop : (r + 1) * hop]
        norm[r : r + n_frames] += window[r * hop : (r + 1) * hop] ** 2
    out = out.reshape(-1) / np.maximum(norm.reshape(-1), 1e-3)
    return out[pad : pad + n_time]


def synthesize_utterance(
    speaker: SpeakerProfile, duration_s: float, rng: np.random.Generator, sample_rate: int = 8000
) -> np.ndarray:
    """Synthesise one speech-like utterance of ``speaker``.

    Args:
        speaker (SpeakerProfile): the voice.
        duration_s (float): duration in seconds (leading and trailing silences included).
        rng (np.random.Generator): random generator (the utterance is a function of its state).
        sample_rate (int): sample rate in Hz.

    Returns:
        np.ndarray: ``(time,)`` float64 waveform with an RMS of about 0.05.
    """
    if duration_s <= 0:
        raise ValueError(f"duration_s must be positive, got {duration_s}.")
    n_time = int(round(duration_s * sample_rate))
    hop = int(round(_FRAME_SECONDS * sample_rate))
    n_fft = hop * int(round(_WINDOW_SECONDS / _FRAME_SECONDS))
    n_frames = n_time // hop + 1
    frame_s = hop / sample_rate
    tracks = fill_tracks(speaker, n_frames, rng, frame_s)

    # Smooth targets into trajectories: formants glide (coarticulation over 12-28 ms, crisp to
    # slurred speaking styles), amplitudes ramp quickly (~8 ms) so that bursts stay sharp but
    # nothing clicks.
    glide = rng.uniform(1.5, 3.5)
    formants = gaussian_filter1d(tracks.formants, glide, axis=0, mode="nearest")
    formants = formants * speaker.formant_scale
    voicing = gaussian_filter1d(tracks.voicing, 1.2, mode="nearest")
    aspiration = gaussian_filter1d(tracks.aspiration, 1.0, mode="nearest")
    frication = gaussian_filter1d(tracks.frication, 0.7, mode="nearest")
    nasal = gaussian_filter1d(tracks.nasal, 1.5, mode="nearest")

    # F0 contour (semitones around the speaker's median): declination, accents, slow wander.
    wander = gaussian_filter1d(rng.standard_normal(n_frames), 25.0) * 6.0
    semitones = speaker.f0_range_st * (tracks.phrase + tracks.accent) + wander
    f0_frames = speaker.f0_hz * 2.0 ** (semitones / 12.0)
    t_frames = np.arange(n_frames) * hop
    t = np.arange(n_time)
    f0 = np.interp(t, t_frames, f0_frames)
    pulses, flow = _glottal_source(speaker, f0, rng, sample_rate)

    amp_voice, amp_asp, amp_fric = (
        np.interp(t, t_frames, x) for x in (voicing, aspiration, frication)
    )
    noise = rng.standard_normal((2, n_time))
    # Breathiness: aspiration noise pulsed by the glottal flow during voicing.
    breath = speaker.breathiness * amp_voice * (0.3 + flow)
    voiced_branch = pulses * amp_voice + noise[0] * (0.25 * amp_asp + breath)
    fric_branch = noise[1] * amp_fric * 0.3

    nyquist = sample_rate / 2
    freqs_hz = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    omega = 2 * np.pi * freqs_hz / sample_rate
    formants = np.minimum(formants, 0.95 * nyquist)
    bws = _BANDWIDTHS * speaker.bandwidth_scale * rng.uniform(0.8, 1.25) * (1.0 + nasal[:, None])
    env_voice = _resonator_response(
        2 * np.pi * formants / sample_rate, 2 * np.pi * bws / sample_rate, omega
    )
    tilt = (np.maximum(freqs_hz, 100.0) / 500.0) ** (speaker.tilt_db_per_octave / 6.02)
    nasal_lowpass = (1.0 + (freqs_hz / 700.0) ** 2)[None, :] ** (-0.5 * nasal[:, None])
    env_voice = env_voice * tilt[None, :] * nasal_lowpass
    if rng.random() < 0.5:
        # Random all-pass phase (smooth in frequency, fixed per utterance): pulse shapes vary
        # as across real voices and synthesis methods, so the separator cannot rely on one
        # glottal waveform.
        lags = np.arange(1, 4)
        phase = (rng.uniform(-np.pi, np.pi, 3)[:, None] * np.cos(np.outer(lags, omega))).sum(0)
        env_voice = env_voice * np.exp(1j * phase)[None, :]
    centre, width = tracks.fric_centre, tracks.fric_width
    env_fric = np.exp(-0.5 * ((freqs_hz[None, :] - centre[:, None]) / width[:, None]) ** 2)
    env_fric = env_fric * speaker.formant_scale**0.5 + 0.02
    branches = np.stack([voiced_branch, fric_branch])
    wav = _stft_filter(branches, np.stack([env_voice, env_fric.astype(complex)]), hop, n_fft)
    rms = np.sqrt(np.mean(wav**2))
    if rms < 1e-8:  # cannot happen with the layout above, but never return a silent source
        raise RuntimeError("The synthesised utterance is silent.")
    return wav * (0.05 / rms)
