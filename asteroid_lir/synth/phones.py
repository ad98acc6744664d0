"""What the formant synthesiser (:mod:`~asteroid_lir.synth.speech_synth`) says: its phone
inventory, random syllables, and :func:`fill_tracks`, which lays a speaker's words, phrases and
pauses out as frame-rate control tracks (formant targets with coarticulation, voicing,
aspiration, frication, nasality, pitch accents and declination).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .speech_synth import SpeakerProfile

__all__ = ["Tracks", "fill_tracks"]

# Vowel targets (F1, F2, F3 in Hz) of an adult male vocal tract, in the spirit of the
# Hillenbrand et al. (1995) American English measurements; other speakers scale them.
_VOWELS = {
    "i": (300, 2300, 3000), "I": (420, 2000, 2650), "e": (470, 2100, 2700), "E": (580, 1800, 2600),
    "ae": (650, 1750, 2500), "a": (750, 1300, 2500), "O": (620, 950, 2550), "o": (500, 900, 2450),
    "U": (460, 1150, 2400), "u": (330, 950, 2300), "V": (620, 1200, 2550), "3": (480, 1350, 1700),
    "@": (500, 1500, 2500),
}  # fmt: skip
_DIPHTHONGS = (("a", "I"), ("e", "I"), ("O", "I"), ("a", "U"), ("o", "U"), ("I", "@"))
_F4 = 3400.0

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
    # fricatives (unvoiced; the voiced ones below)
    "s": dict(kind="fric", loci=(300, 1700, 2700), fric=(3500, 600), voiced=False),
    "S": dict(kind="fric", loci=(300, 1900, 2500), fric=(2600, 700), voiced=False),
    "f": dict(kind="fric", loci=(300, 900, 2300), fric=(2500, 2500), voiced=False, weak=True),
    "T": dict(kind="fric", loci=(300, 1400, 2600), fric=(3000, 2000), voiced=False, weak=True),
    "h": dict(kind="asp", loci=None),
    # plosives: closure, burst (place-dependent spectrum), aspiration when unvoiced
    "p": dict(kind="stop", loci=(250, 800, 2200), fric=(900, 1500), voiced=False),
    "t": dict(kind="stop", loci=(250, 1750, 2700), fric=(3300, 1200), voiced=False),
    "k": dict(kind="stop", loci=(250, 1900, 2300), fric=(1900, 700), voiced=False),
}
# The voiced fricatives and plosives: the loci and spectra of their unvoiced counterparts.
_CONSONANTS |= {v: {**_CONSONANTS[u], "voiced": True} for u, v in zip("sfSptk", "zvZbdg")}
_ONSETS = "p t k b d g m n s S f T h z v l r w j".split()
_CLUSTERS = "pl pr tr kr kl br bl dr gr fr fl sp st sk sl sm sn kw Tr Sr".split()
_CODAS = "p t k b d g m n N s z f v l r S T".split()


class Tracks:
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

    def write(self, pos: int, length: int, **values) -> int:
        """Set the named tracks over the frames ``pos:pos + length``; returns ``pos + length``."""
        for name, value in values.items():
            getattr(self, name)[pos : pos + length] = value
        return pos + length


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


def fill_tracks(
    speaker: SpeakerProfile, n_frames: int, rng: np.random.Generator, frame_s: float
) -> Tracks:
    """Lay out words, phrases and pauses on the frame grid and write the phone targets."""
    tracks = Tracks(n_frames)
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
                vowel_len = frames(rng.uniform(*((0.11, 0.22) if is_stressed else (0.05, 0.11))))
                start = pos
                for k, target in enumerate(vowel_targets):
                    stop = start + vowel_len * (k + 1) // len(vowel_targets)
                    pos = tracks.write(pos, stop - pos, formants=target, voicing=gain)
                if is_stressed and rng.random() < 0.6:
                    centre = (start + pos) // 2
                    width = max(2, (pos - start))
                    idx = np.arange(max(0, centre - 3 * width), min(n_frames, centre + 3 * width))
                    bump = np.exp(-0.5 * ((idx - centre) / width) ** 2)
                    tracks.accent[idx] += rng.uniform(0.4, 1.0) * bump
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
    kind = spec["kind"]
    if kind == "asp":  # /h/: aspiration shaped by the next vowel's formants
        length = frames(rng.uniform(0.05, 0.1))
        return tracks.write(pos, length, formants=next_vowel, aspiration=0.5 * gain)
    loci = np.array(spec["loci"] + (_F4,), dtype=float)
    # Coarticulation: a consonant's formants sit between its locus and the next vowel.
    target = 0.85 * loci + 0.15 * next_vowel
    if kind in ("approx", "nasal"):
        length = frames(rng.uniform(0.04, 0.08) if kind == "approx" else rng.uniform(0.05, 0.09))
        nasal = {"nasal": 1.0} if kind == "nasal" else {}
        voicing = gain * (0.5 if kind == "approx" else 0.3)
        return tracks.write(pos, length, formants=target, voicing=voicing, **nasal)
    centre, width = spec["fric"]
    weak = 0.35 if spec.get("weak") else 1.0
    if kind == "fric":
        length = frames(rng.uniform(0.07, 0.14))
        voicing = {"voicing": 0.3 * gain} if spec["voiced"] else {}
        fric = dict(frication=0.5 * gain * weak, fric_centre=centre * rng.uniform(0.9, 1.1))
        return tracks.write(pos, length, formants=target, **fric, fric_width=width, **voicing)
    # Plosive: closure (silence or voice bar), short burst, aspiration if unvoiced.
    voice_bar = {"voicing": 0.08 * gain, "nasal": 1.0} if spec["voiced"] else {}
    pos = tracks.write(pos, frames(rng.uniform(0.04, 0.08)), formants=target, **voice_bar)
    burst_centre = centre if ph not in "kg" else 1.1 * next_vowel[1]
    burst = dict(frication=0.9 * gain, fric_centre=burst_centre)
    pos = tracks.write(pos, max(1, frames(0.012)), formants=target, **burst, fric_width=width)
    if not spec["voiced"]:
        asp = frames(rng.uniform(0.025, 0.06))
        pos = tracks.write(pos, asp, formants=next_vowel, aspiration=0.45 * gain)
    return pos
