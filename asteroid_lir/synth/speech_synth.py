"""Speech-like sources from a small formant synthesiser (no recordings, no TTS engine).

Each "speaker" is a set of voice parameters (median F0 and intonation range, vocal-tract length
scaling of the formants, a personal vowel-space bias, speaking rate, breathiness, jitter,
shimmer, glottal open/speed quotients, spectral tilt). An utterance is a random sequence of
syllables built from a small phone inventory (vowels and diphthongs, approximants, nasals,
voiced/unvoiced fricatives, voiced/unvoiced plosives with closure, burst and aspiration),
grouped into words and phrases with pauses. Synthesis follows the classic source-filter model:

* source: Rosenberg glottal-flow pulses on a continuous F0 contour (phrase declination, pitch
  accents, slow wander, per-period jitter and shimmer), differentiated for lip radiation, plus
  aspiration noise gated by the glottal cycle (breathiness);
* filter: a cascade of four second-order formant resonators with speaker-scaled bandwidths whose
  frequencies glide between phone targets (coarticulation), a nasal low-pass and the speaker's
  spectral tilt; frication and bursts go through a separate place-dependent band-pass branch.

Every voice and utterance parameter is drawn from a wide range (F0 65-350 Hz, vocal-tract
scaling, bandwidths, tilt, glottal shape and phase, vowel qualities anywhere in the vowel space,
glide speed, rate): a separator trained on these sources must rely on what all voices share
(harmonicity, formant continuity, onsets) rather than on the details of one synthesiser, which
is what lets it transfer to speech from another engine (see ``tts_testset``).

The time-varying filters are applied by multiplying short-time spectra (frames of 32 ms, hop
8 ms): the resonators' impulse responses are a few milliseconds long, so this is equivalent to
sample-by-sample filtering for our purpose and keeps the whole synthesis vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

__all__ = ["SpeakerProfile", "draw_speaker", "synthesize_utterance"]

# Vowel targets (F1, F2, F3 in Hz) of an adult male vocal tract, in the spirit of the
# Hillenbrand et al. (1995) American English measurements; other speakers scale them.
_VOWELS = {
    "i": (300, 2300, 3000),
    "I": (420, 2000, 2650),
    "e": (470, 2100, 2700),
    "E": (580, 1800, 2600),
    "ae": (650, 1750, 2500),
    "a": (750, 1300, 2500),
    "O": (620, 950, 2550),
    "o": (500, 900, 2450),
    "U": (460, 1150, 2400),
    "u": (330, 950, 2300),
    "V": (620, 1200, 2550),
    "3": (480, 1350, 1700),
    "@": (500, 1500, 2500),
}
_DIPHTHONGS = (("a", "I"), ("e", "I"), ("O", "I"), ("a", "U"), ("o", "U"), ("I", "@"))
_F4 = 3400.0
_BANDWIDTHS = np.array([70.0, 90.0, 150.0, 250.0])

# Consonants: formant loci (F1..F3), voicing, manner and the centre/width (Hz) of the
# frication or burst spectrum. Loci are where the formants head for at the constriction.
_CONSONANTS = {
    # approximants: voiced, weaker than vowels, formant glides
    "l": dict(kind="approx", loci=(360, 1100, 2700)),
    "r": dict(kind="approx", loci=(350, 1100, 1500)),
    "w": dict(kind="approx", loci=(300, 650, 2200)),
    "j": dict(kind="approx", loci=(280, 2200, 2950)),
    # nasals: voiced murmur with a low-pass character
    "m": dict(kind="nasal", loci=(260, 1000, 2200)),
    "n": dict(kind="nasal", loci=(260, 1600, 2600)),
    "N": dict(kind="nasal", loci=(260, 2000, 2500)),
    # fricatives (unvoiced / voiced)
    "s": dict(kind="fric", loci=(300, 1700, 2700), fric=(3500, 600), voiced=False),
    "S": dict(kind="fric", loci=(300, 1900, 2500), fric=(2600, 700), voiced=False),
    "f": dict(kind="fric", loci=(300, 900, 2300), fric=(2500, 2500), voiced=False, weak=True),
    "T": dict(kind="fric", loci=(300, 1400, 2600), fric=(3000, 2000), voiced=False, weak=True),
    "h": dict(kind="asp", loci=None),
    "z": dict(kind="fric", loci=(300, 1700, 2700), fric=(3500, 600), voiced=True),
    "v": dict(kind="fric", loci=(300, 900, 2300), fric=(2500, 2500), voiced=True, weak=True),
    "Z": dict(kind="fric", loci=(300, 1900, 2500), fric=(2600, 700), voiced=True),
    # plosives: closure, burst (place-dependent spectrum), aspiration when unvoiced
    "p": dict(kind="stop", loci=(250, 800, 2200), fric=(900, 1500), voiced=False),
    "t": dict(kind="stop", loci=(250, 1750, 2700), fric=(3300, 1200), voiced=False),
    "k": dict(kind="stop", loci=(250, 1900, 2300), fric=(1900, 700), voiced=False),
    "b": dict(kind="stop", loci=(250, 800, 2200), fric=(900, 1500), voiced=True),
    "d": dict(kind="stop", loci=(250, 1750, 2700), fric=(3300, 1200), voiced=True),
    "g": dict(kind="stop", loci=(250, 1900, 2300), fric=(1900, 700), voiced=True),
}
_ONSETS = "p t k b d g m n s S f T h z v l r w j".split()
_CLUSTERS = "pl pr tr kr kl br bl dr gr fr fl sp st sk sl sm sn kw Tr Sr".split()
_CODAS = "p t k b d g m n N s z f v l r S T".split()
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
    female = rng.random() < 0.5
    if female:
        f0 = float(np.exp(rng.normal(np.log(210.0), 0.15)))
        scale = float(rng.uniform(1.05, 1.28))
    else:
        f0 = float(np.exp(rng.normal(np.log(120.0), 0.18)))
        scale = float(rng.uniform(0.86, 1.08))
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


class _Tracks:
    """Frame-rate control tracks filled phone by phone."""

    def __init__(self, n_frames: int):
        self.formants = np.tile(np.array(_VOWELS["@"] + (_F4,), dtype=float), (n_frames, 1))
        self.voicing = np.zeros(n_frames)  # amplitude of the glottal source
        self.aspiration = np.zeros(n_frames)  # noise through the formant filter
        self.frication = np.zeros(n_frames)  # noise through the frication band-pass
        self.fric_centre = np.full(n_frames, 3000.0)
        self.fric_width = np.full(n_frames, 1000.0)
        self.nasal = np.zeros(n_frames)  # strength of the nasal low-pass
        self.accent = np.zeros(n_frames)  # pitch accents, semitones
        self.phrase = np.zeros(n_frames)  # declination, semitones


def _vowel_target(vowel: str, bias: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """F1-F4 target of one vowel token: the table value, the speaker's bias, token variation.

    A share of the tokens is drawn anywhere in the vowel space so that the sources are not
    limited to a fixed set of 13 vowel qualities (real speakers and accents vary a lot more).
    """
    if rng.random() < 0.3:
        f1 = rng.uniform(250, 850)
        f2 = rng.uniform(max(700, f1 + 300), 2500)
        f3 = rng.uniform(max(1700, f2 + 250), 3300)
        target = np.array([f1, f2, f3, _F4])
    else:
        target = np.array(_VOWELS[vowel] + (_F4,), dtype=float)
    return target * bias * rng.uniform(0.92, 1.08, size=4)


def _syllable(rng: np.random.Generator) -> tuple[list[str], list[str], list[str]]:
    """A random (onset, nucleus, coda) phone sequence."""
    draw = rng.random()
    if draw < 0.2:
        onset = []
    elif draw < 0.82:
        onset = [str(rng.choice(_ONSETS))]
    else:
        onset = list(str(rng.choice(_CLUSTERS)))
    if rng.random() < 0.2:
        nucleus = list(_DIPHTHONGS[rng.integers(len(_DIPHTHONGS))])
    else:
        nucleus = [str(rng.choice(list(_VOWELS)))]
    coda = [str(rng.choice(_CODAS))] if rng.random() < 0.45 else []
    return onset, nucleus, coda


def _fill_tracks(
    speaker: SpeakerProfile, n_frames: int, rng: np.random.Generator, frame_s: float
) -> _Tracks:
    """Lay out words, phrases and pauses on the frame grid and write the phone targets."""
    tracks = _Tracks(n_frames)
    bias = np.array(speaker.vowel_bias + (1.0,))
    tempo = speaker.syllable_rate / 4.5 * rng.uniform(0.9, 1.1)

    def frames(seconds: float) -> int:
        return max(1, int(round(seconds / tempo / frame_s)))

    pos = frames(rng.uniform(0.05, 0.25) * tempo)  # leading silence (absolute seconds)
    end = n_frames - frames(rng.uniform(0.05, 0.2) * tempo)
    next_vowel = np.array(_VOWELS["@"] + (_F4,), dtype=float)
    while pos < end:
        # One phrase: 2-7 words under one declination line, then a pause.
        phrase_start = pos
        n_words = int(rng.integers(2, 8))
        for word in range(n_words):
            n_syll = int(rng.choice([1, 1, 2, 2, 2, 3, 3, 4]))
            stressed = int(rng.integers(n_syll))
            for syll in range(n_syll):
                onset, nucleus, coda = _syllable(rng)
                is_stressed = syll == stressed
                gain = 10 ** (rng.normal(0.0, 2.0) / 20) * (1.0 if is_stressed else 0.6)
                vowel_targets = [_vowel_target(v, bias, rng) for v in nucleus]
                if len(vowel_targets) == 1:  # monophthongs drift too (onset != offset)
                    vowel_targets.append(vowel_targets[0] * rng.uniform(0.9, 1.1, size=4))
                next_vowel = vowel_targets[0]
                for ph in onset:
                    pos = _write_consonant(tracks, ph, pos, next_vowel, gain, rng, frames)
                vowel_len = frames(
                    rng.uniform(0.11, 0.22) if is_stressed else rng.uniform(0.05, 0.11)
                )
                start = pos
                for k, target in enumerate(vowel_targets):
                    stop = start + vowel_len * (k + 1) // len(vowel_targets)
                    sl = slice(pos, min(stop, n_frames))
                    tracks.formants[sl] = target
                    tracks.voicing[sl] = gain
                    pos = stop
                if is_stressed and rng.random() < 0.6:
                    centre = (start + pos) // 2
                    width = max(2, (pos - start))
                    idx = np.arange(max(0, centre - 3 * width), min(n_frames, centre + 3 * width))
                    tracks.accent[idx] += rng.uniform(0.4, 1.0) * np.exp(
                        -0.5 * ((idx - centre) / width) ** 2
                    )
                for ph in coda:
                    pos = _write_consonant(tracks, ph, pos, next_vowel, gain, rng, frames)
                if pos >= end:
                    break
            if pos >= end:
                break
            if word < n_words - 1 and rng.random() < 0.15:
                pos += frames(rng.uniform(0.06, 0.2))  # short pause between words
        # Declination over the phrase: starts high, falls; sometimes a final rise.
        sl = slice(phrase_start, min(pos, n_frames))
        length = max(1, sl.stop - sl.start)
        decl = np.linspace(rng.uniform(0.2, 0.6), -rng.uniform(0.3, 0.8), length)
        if rng.random() < 0.15:
            decl += np.linspace(0.0, 1.0, length) ** 4 * rng.uniform(0.5, 1.2)
        tracks.phrase[sl] = decl
        pos += frames(rng.uniform(0.15, 0.45))  # pause between phrases
    return tracks


def _write_consonant(tracks, ph, pos, next_vowel, gain, rng, frames) -> int:
    """Write the targets of consonant ``ph`` from frame ``pos``; returns the next frame."""
    spec = _CONSONANTS[ph]
    n = len(tracks.voicing)
    kind = spec["kind"]
    if kind == "asp":  # /h/: aspiration shaped by the next vowel's formants
        length = frames(rng.uniform(0.05, 0.1))
        sl = slice(pos, min(pos + length, n))
        tracks.formants[sl] = next_vowel
        tracks.aspiration[sl] = 0.5 * gain
        return pos + length
    loci = np.array(spec["loci"] + (_F4,), dtype=float)
    # Coarticulation: a consonant's formants sit between its locus and the next vowel.
    target = 0.85 * loci + 0.15 * next_vowel
    if kind in ("approx", "nasal"):
        length = frames(rng.uniform(0.04, 0.08) if kind == "approx" else rng.uniform(0.05, 0.09))
        sl = slice(pos, min(pos + length, n))
        tracks.formants[sl] = target
        tracks.voicing[sl] = gain * (0.5 if kind == "approx" else 0.3)
        if kind == "nasal":
            tracks.nasal[sl] = 1.0
        return pos + length
    centre, width = spec["fric"]
    weak = 0.35 if spec.get("weak") else 1.0
    if kind == "fric":
        length = frames(rng.uniform(0.07, 0.14))
        sl = slice(pos, min(pos + length, n))
        tracks.formants[sl] = target
        tracks.frication[sl] = 0.5 * gain * weak
        tracks.fric_centre[sl] = centre * rng.uniform(0.9, 1.1)
        tracks.fric_width[sl] = width
        if spec["voiced"]:
            tracks.voicing[sl] = 0.3 * gain
        return pos + length
    # Plosive: closure (silence or voice bar), short burst, aspiration if unvoiced.
    closure = frames(rng.uniform(0.04, 0.08))
    sl = slice(pos, min(pos + closure, n))
    tracks.formants[sl] = target
    if spec["voiced"]:
        tracks.voicing[sl] = 0.08 * gain
        tracks.nasal[sl] = 1.0
    pos += closure
    burst = max(1, frames(0.012))
    sl = slice(pos, min(pos + burst, n))
    tracks.formants[sl] = target
    tracks.frication[sl] = 0.9 * gain
    tracks.fric_centre[sl] = centre if ph not in "kg" else 1.1 * next_vowel[1]
    tracks.fric_width[sl] = width
    pos += burst
    if not spec["voiced"]:
        asp = frames(rng.uniform(0.025, 0.06))
        sl = slice(pos, min(pos + asp, n))
        tracks.formants[sl] = next_vowel
        tracks.aspiration[sl] = 0.45 * gain
        pos += asp
    return pos


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
    shimmer = np.exp(speaker.shimmer * rng.standard_normal(int(period[-1]) + 2))[period]
    flow = flow * shimmer
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
    speaker: SpeakerProfile,
    duration_s: float,
    rng: np.random.Generator,
    sample_rate: int = 8000,
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
    tracks = _fill_tracks(speaker, n_frames, rng, frame_s)

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

    amp_voice = np.interp(t, t_frames, voicing)
    amp_asp = np.interp(t, t_frames, aspiration)
    amp_fric = np.interp(t, t_frames, frication)
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
    env_voice = (
        env_voice
        * tilt[None, :]
        * (1.0 + (freqs_hz / 700.0) ** 2)[None, :] ** (-0.5 * nasal[:, None])
    )
    if rng.random() < 0.5:
        # Random all-pass phase (smooth in frequency, fixed per utterance): pulse shapes vary
        # as across real voices and synthesis methods, so the separator cannot rely on one
        # glottal waveform.
        lags = np.arange(1, 4)
        phase = (rng.uniform(-np.pi, np.pi, 3)[:, None] * np.cos(np.outer(lags, omega))).sum(0)
        env_voice = env_voice * np.exp(1j * phase)[None, :]
    centre = tracks.fric_centre
    width = tracks.fric_width
    env_fric = np.exp(-0.5 * ((freqs_hz[None, :] - centre[:, None]) / width[:, None]) ** 2)
    env_fric = env_fric * speaker.formant_scale**0.5 + 0.02
    wav = _stft_filter(
        np.stack([voiced_branch, fric_branch]),
        np.stack([env_voice, env_fric.astype(complex)]),
        hop,
        n_fft,
    )
    rms = np.sqrt(np.mean(wav**2))
    if rms < 1e-8:  # cannot happen with the layout above, but never return a silent source
        raise RuntimeError("The synthesised utterance is silent.")
    return wav * (0.05 / rms)
