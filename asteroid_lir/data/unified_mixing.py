"""How the unified (TUSS) recipe draws a training mixture from a source index.

Mixtures are drawn the way the TUSS reference trains: 2, 3 or 4 prompts with equal probability,
the classes drawn one after the other from a table of likely successors (:data:`FIRST`,
:data:`NEXT`), ``speech`` and ``sfx`` possibly several times, the other classes once, never
``sfx`` with ``sfxbg`` nor a stem with ``musicbg`` (ambiguous). Each source is cropped where it
is active and set to a level drawn per class (:data:`GAIN_DB`); the mixture is their sum. A
background is sometimes mixed on the fly from 1-4 event clips / stems, stems drawn together come
from one song half of the time, and with probability ``p_absent`` a prompt whose source is
absent (a zero reference) is added, which teaches the model to output silence for it.
:mod:`asteroid_lir.data.unified` batches these draws (:class:`~asteroid_lir.data.unified.
UnifiedMixtures`) and draws the fixed evaluation mixtures with the same rendering.

References:
    K. Saijo et al., "Task-aware unified source separation", ICASSP 2025 (the training data
    scheme; configs/unified/tuss.medium.2-4src.yaml of merlresearch/unified-source-separation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..tasks import PROMPT_NAMES, SPLITS, STEM_NAMES

__all__ = [
    "CLASSES",
    "EXCLUSIVE",
    "FIRST",
    "GAIN_DB",
    "MAX_COUNT",
    "NEXT",
    "MixingOptions",
    "SourceBank",
    "draw_classes",
    "draw_training_example",
    "mixture_from",
    "render_sources",
]

CLASSES = PROMPT_NAMES
BACKGROUNDS = ("sfxbg", "musicbg")
_TARGET_RMS = 0.05

#: Level range (dB) of each class around an RMS of 0.05 (the reference's gain ranges).
GAIN_DB = {c: (-10.0, 0.0) if c in ("speech", *STEM_NAMES) else (-20.0, 0.0) for c in CLASSES}
#: How often a class may appear in one mixture.
MAX_COUNT = {c: (4 if c in ("speech", "sfx") else 1) for c in CLASSES}
#: Probability of the first class of a mixture.
FIRST = dict.fromkeys(("speech", "sfx", *BACKGROUNDS), 0.2) | dict.fromkeys(STEM_NAMES, 0.05)
_STEMS_SMALL = {s: 0.025 for s in STEM_NAMES}
_OTHERS_SMALL = dict.fromkeys(("speech", "sfx", "sfxbg"), 0.033)
#: Weights of the class that follows a class (renormalised over the allowed classes).
NEXT = {
    "speech": {"speech": 0.35, "sfx": 0.15, "sfxbg": 0.2, "musicbg": 0.2, **_STEMS_SMALL},
    "sfx": {"speech": 0.2, "sfx": 0.5, "musicbg": 0.2, **_STEMS_SMALL},
    "sfxbg": {"speech": 0.5, "musicbg": 0.4, **_STEMS_SMALL},
    "musicbg": {"speech": 0.34, "sfx": 0.33, "sfxbg": 0.33},
    **{
        stem: {**{s: (0.3 if s != stem else 0.0) for s in STEM_NAMES}, **_OTHERS_SMALL}
        for stem in STEM_NAMES
    },
}
#: Pairs of classes never mixed together (the prompts would be ambiguous).
EXCLUSIVE = {frozenset(("sfx", "sfxbg"))} | {frozenset((s, "musicbg")) for s in STEM_NAMES}


# ---------------------------------------------------------------------- sources and mixing
class SourceBank:
    """Clips of an index, loaded on first use and kept in memory (float32).

    Args:
        index (dict): the output of :func:`index_sources` (or the metadata file's content).
        split (str): ``"tr"``, ``"cv"`` or ``"tt"``.
    """

    def __init__(self, index: dict, split: str):
        if split not in SPLITS:
            raise ValueError(f"Unknown split {split!r}; choose from {list(SPLITS)}.")
        self.root = Path(index["root"])
        self.sample_rate = int(index["sample_rate"])
        self.split = split
        self.entries = {c: list(index["splits"][split].get(c, [])) for c in CLASSES}
        self.songs = dict(index.get("songs", {}).get(split, {}))
        self.available = [c for c in CLASSES if self.entries[c]]
        self._cache: dict[str, np.ndarray] = {}

    def load(self, rel_path: str) -> np.ndarray:
        """A clip as float32 (cached)."""
        if rel_path not in self._cache:
            self._cache[rel_path] = sf.read(str(self.root / rel_path), dtype="float32")[0]
        return self._cache[rel_path]

    def crop(self, entry: dict, length: int, rng: np.random.Generator) -> np.ndarray:
        """``length`` samples of the clip of an index entry, where it is active (float32)."""
        wav = self.load(entry["path"])
        return _fit(wav, _crop_offset(wav, length, rng), length, rng)


@dataclass
class MixingOptions:
    """How mixtures are drawn (see the module docstring).

    Attributes:
        n_prompts (sequence of int): possible numbers of prompts (equal probability).
        p_absent (float): probability of one extra prompt whose source is absent.
        p_dynamic_bg (float): probability that a background is mixed from 1-4 events / stems.
        p_same_song (float): probability that stems drawn together come from one song.
        first_weights (dict, optional): changes to the weights of the first class
            (:data:`FIRST`), e.g. ``{"sfx": 0.4}``.
        next_weights (dict, optional): changes to the successor weights (:data:`NEXT`), e.g.
            ``{"sfx": {"sfx": 1.0}}``.
    """

    n_prompts: Sequence[int] = (2, 3, 4)
    p_absent: float = 0.1
    p_dynamic_bg: float = 0.25
    p_same_song: float = 0.5
    first_weights: dict | None = None
    next_weights: dict | None = None

    def __post_init__(self):
        unknown = sorted(set(self.first_weights or {}) | set(self.next_weights or {}))
        unknown = [c for c in unknown if c not in CLASSES]
        for row in (self.next_weights or {}).values():
            unknown += [c for c in row if c not in CLASSES]
        if unknown:
            raise ValueError(f"Unknown class(es) {unknown} in the weights; known: {list(CLASSES)}.")
        self.first = {**FIRST, **(self.first_weights or {})}
        self.successors = {c: {**NEXT[c], **(self.next_weights or {}).get(c, {})} for c in CLASSES}
        self.n_prompts = tuple(int(n) for n in self.n_prompts)
        if not self.n_prompts or min(self.n_prompts) < 1:
            raise ValueError(f"n_prompts must list positive counts, got {self.n_prompts}.")
        for name in ("p_absent", "p_dynamic_bg", "p_same_song"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability, got {getattr(self, name)}.")


def _pick(rng: np.random.Generator, items: Sequence):
    return items[int(rng.integers(len(items)))]


def _allowed(cls: str, chosen: list[str], available: Sequence[str]) -> bool:
    if cls not in available or chosen.count(cls) >= MAX_COUNT[cls]:
        return False
    return all(frozenset((cls, c)) not in EXCLUSIVE for c in chosen if c != cls)


def draw_classes(
    n: int,
    rng: np.random.Generator,
    available: Sequence[str],
    first: dict | None = None,
    successors: dict | None = None,
) -> list[str]:
    """``n`` classes drawn by the successor table (see the module docstring), shuffled.

    Args:
        n: number of classes.
        rng: random generator.
        available: classes that have sources.
        first: weights of the first class (default :data:`FIRST`).
        successors: weights of the class after each class (default :data:`NEXT`).

    Raises:
        ValueError: if the available classes cannot make ``n`` compatible prompts.
    """
    first = FIRST if first is None else first
    successors = NEXT if successors is None else successors
    for _ in range(100):
        chosen: list[str] = []
        weights = first
        while len(chosen) < n:
            allowed = [c for c in CLASSES if _allowed(c, chosen, available)]
            if not allowed:
                break
            options = [c for c in allowed if weights.get(c, 0) > 0]
            # Where the table leads nowhere, any compatible class.
            probs = np.array([weights[c] for c in options]) if options else np.ones(len(allowed))
            options = options or allowed
            chosen.append(options[int(rng.choice(len(options), p=probs / probs.sum()))])
            weights = successors[chosen[-1]]
        if len(chosen) == n:
            rng.shuffle(chosen)
            return chosen
    raise ValueError(f"Cannot draw {n} compatible prompts from the classes {list(available)}.")


def _active_rms(wav: np.ndarray, frame: int = 256) -> float:
    n = len(wav) // frame * frame
    if n == 0:
        return float(np.sqrt(np.mean(wav**2))) if len(wav) else 0.0
    energy = (wav[:n].astype(np.float64).reshape(-1, frame) ** 2).mean(1)
    if not energy.max() > 0:
        return 0.0
    return float(np.sqrt(energy[energy > energy.max() * 1e-4].mean()))


def _crop_offset(wav: np.ndarray, length: int, rng: np.random.Generator, tries: int = 4) -> int:
    """A crop start, preferring crops that hold a fair share of the clip's energy."""
    if len(wav) <= length:
        return 0
    total = float(np.mean(wav.astype(np.float64) ** 2)) + 1e-12
    best, best_energy = 0, -1.0
    for _ in range(tries):
        start = int(rng.integers(0, len(wav) - length + 1))
        energy = float(np.mean(wav[start : start + length].astype(np.float64) ** 2))
        if energy >= 0.3 * total:
            return start
        if energy > best_energy:
            best, best_energy = start, energy
    return best


def _fit(wav: np.ndarray, start: int, length: int, rng: np.random.Generator) -> np.ndarray:
    piece = wav[start : start + length]
    if len(piece) < length:  # a short clip is placed at a random position
        out = np.zeros(length, dtype=np.float32)
        pos = int(rng.integers(0, length - len(piece) + 1))
        out[pos : pos + len(piece)] = piece
        return out
    return piece.astype(np.float32, copy=True)


def _level(wav: np.ndarray, cls: str, rng: np.random.Generator) -> np.ndarray:
    rms = _active_rms(wav)
    if not rms > 1e-6:
        return np.zeros_like(wav)  # nothing active in this crop: a zero reference
    gain = 10 ** (rng.uniform(*GAIN_DB[cls]) / 20)
    return (wav * (_TARGET_RMS * gain / rms)).astype(np.float32)


def render_sources(
    classes: Sequence[str],
    bank: SourceBank,
    length: int,
    rng: np.random.Generator,
    options: MixingOptions | None = None,
    absent: Sequence[bool] | None = None,
) -> np.ndarray:
    """One reference signal per class, ``(len(classes), length)`` float32.

    Args:
        classes: the class of each reference (repeats allowed for speech and sfx).
        bank: where the clips come from.
        length: samples.
        rng: random generator.
        options: mixing options (dynamic backgrounds, same-song stems); None: no dynamic
            backgrounds, stems from one song when possible.
        absent: references to leave at zero (prompts whose source is absent).
    """
    dynamic_bg = options.p_dynamic_bg if options is not None else 0.0
    same_song = options.p_same_song if options is not None else 1.0
    absent = absent or [False] * len(classes)
    refs = np.zeros((len(classes), length), dtype=np.float32)
    used: dict[str, set] = {c: set() for c in CLASSES}
    stems = [i for i, c in enumerate(classes) if c in STEM_NAMES and not absent[i]]
    song = None
    if len(stems) > 1 and bank.songs and rng.random() < same_song:
        candidates = [
            s for s, parts in bank.songs.items() if all(classes[i] in parts for i in stems)
        ]
        if candidates:
            song = bank.songs[_pick(rng, candidates)]
    song_start = None
    for i, cls in enumerate(classes):
        if absent[i]:
            continue
        if song is not None and i in stems:
            wav = bank.load(song[cls])
            if song_start is None:
                song_start = _crop_offset(wav, length, rng)
            piece = _fit(wav, song_start, length, rng)
        elif cls in BACKGROUNDS and rng.random() < dynamic_bg:
            parts = [p for p in (("sfx",) if cls == "sfxbg" else STEM_NAMES) if bank.entries[p]]
            piece = np.zeros(length, dtype=np.float32)
            for _ in range(int(rng.integers(1, 5)) if parts else 0):
                part = _pick(rng, parts)
                piece += _level(bank.crop(_pick(rng, bank.entries[part]), length, rng), part, rng)
            if not _active_rms(piece) > 0:
                piece = bank.crop(_pick(rng, bank.entries[cls]), length, rng)
        else:
            n_entries = len(bank.entries[cls])
            choices = [k for k in range(n_entries) if k not in used[cls]] or list(range(n_entries))
            k = _pick(rng, choices)
            used[cls].add(k)
            piece = bank.crop(bank.entries[cls][k], length, rng)
        refs[i] = _level(piece, cls, rng)
    return refs


def mixture_from(refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mixture of ``refs`` ``(n_src, time)``: their sum, both scaled down together to a peak
    of 0.99 where the sum would exceed it.

    Returns:
        tuple: float32 ``(time,)`` mixture and ``(n_src, time)`` references.
    """
    mix = refs.sum(0)
    peak = float(np.abs(mix).max())
    if peak > 0.99:
        refs = refs * (0.99 / peak)
        mix = mix * (0.99 / peak)
    return mix.astype(np.float32), refs.astype(np.float32)


def draw_training_example(
    bank: SourceBank,
    length: int,
    rng: np.random.Generator,
    n: int,
    options: MixingOptions,
    add_absent: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A training mixture with ``n`` prompts, plus one whose source is absent if asked.

    Returns:
        tuple: mixture ``(length,)``, references ``(n_prompts, length)`` (zeros for the absent
        source), prompt names.
    """
    classes = draw_classes(n, rng, bank.available, options.first, options.successors)
    absent = [False] * len(classes)
    if add_absent:
        extra = [c for c in bank.available if c not in classes and _allowed(c, classes, CLASSES)]
        if not extra:  # nothing compatible is left: repeat a class that may repeat
            extra = [c for c in ("speech", "sfx") if _allowed(c, classes, bank.available)]
        if not extra:
            raise ValueError(f"No class can be added as absent to {classes}.")
        pos = int(rng.integers(0, len(classes) + 1))
        classes.insert(pos, _pick(rng, extra))
        absent.insert(pos, True)
    mix, refs = mixture_from(render_sources(classes, bank, length, rng, options, absent))
    return mix, refs, classes
