"""Band configurations: which STFT bins each band of a band-wise encoder/decoder covers.

A band is a half-open range of bins ``[start, end)`` of a one-sided spectrum with
``n_freqs = n_fft // 2 + 1`` bins. A configuration must cover every bin at least once and have no
empty band; bands may overlap (the ``musical`` configuration does), in which case a decoder that
adds the bands' outputs back together weights each bin by ``1 / (number of bands covering it)``
(:meth:`BandConfig.overlap_weights`).

Three ways to get a configuration (:func:`get_band_config`):

- ``"bs_roformer"``: non-overlapping bands of BS-RoFormer [1] as the TUSS reference [2] builds them
  for 48 kHz (61 bands at 48 kHz / n_fft 2048; 62 at 44.1 kHz, which are BS-RoFormer's own band
  widths), computed for any sample rate and n_fft by :func:`bs_roformer_bands`.
- ``"musical"``: BandIt's mel-like, overlapping "musical" bands [3] (64 in the SFC-CA recipes [4]),
  computed by :func:`musical_bands` exactly as the SFC-CA authors' code builds them.
- a user-given list: either band edges ``[0, e_1, ..., n_freqs]`` (consecutive, non-overlapping
  bands) or explicit ``[(start, end), ...]`` pairs (overlap allowed).

References:
    [1] W.-T. Lu et al., "Music source separation with band-split RoPE transformer", ICASSP 2024.
    [2] K. Saijo et al., "Task-aware unified source separation", ICASSP 2025 (reference code:
        merlresearch/unified-source-separation, ``nets/tuss.py``).
    [3] K. N. Watcharasupat et al., "A generalized bandsplit neural network for cinematic audio
        source separation", IEEE OJSP 2024.
    [4] K. Saijo and Y. Bando, "Input-adaptive spectral feature compression by sequence modeling
        for source separation", IEEE/ACM TASLP 2026 (arXiv 2602.08671).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np
import torch

__all__ = [
    "BAND_CONFIGS",
    "BandConfig",
    "BandSpec",
    "bs_roformer_bands",
    "get_band_config",
    "musical_bands",
]

#: What :func:`get_band_config` accepts: a configuration name, band edges, or (start, end) pairs.
BandSpec = Union[str, Sequence[int], Sequence[Sequence[int]]]

#: Named configurations understood by :func:`get_band_config`.
BAND_CONFIGS = ("bs_roformer", "musical")

#: BS-RoFormer's band layout: (low Hz, high Hz, band width in bins at n_fft = 2048). The bins
#: above the last range are split into a few equal bands (see :func:`bs_roformer_bands`).
BS_ROFORMER_REGIONS = (
    (0.0, 1000.0, 2),
    (1000.0, 2000.0, 4),
    (2000.0, 4000.0, 12),
    (4000.0, 8000.0, 24),
    (8000.0, 16000.0, 48),
)
_BS_ROFORMER_NFFT = 2048


@dataclass(frozen=True)
class BandConfig:
    """A validated list of bands ``[start, end)`` over ``n_freqs`` STFT bins.

    Args:
        bands: the bands, in order, as ``(start, end)`` bin indices (end exclusive).
        n_freqs: number of bins of the spectrum (``n_fft // 2 + 1``).
        name: a label for messages (``"musical"``, ``"bs_roformer"``, ``"custom"``).

    Raises:
        ValueError: a band is empty or reversed, reaches outside ``[0, n_freqs)``, or some bins are
            covered by no band; the message names the band (index and bins).
    """

    bands: tuple[tuple[int, int], ...]
    n_freqs: int
    name: str = "custom"

    def __post_init__(self) -> None:
        bands = tuple((int(s), int(e)) for s, e in self.bands)
        object.__setattr__(self, "bands", bands)
        label = f"band configuration '{self.name}'"
        if self.n_freqs < 1:
            raise ValueError(f"The {label} needs n_freqs >= 1, got {self.n_freqs}.")
        if not bands:
            raise ValueError(f"The {label} has no band.")
        for k, (start, end) in enumerate(bands):
            if end <= start:
                raise ValueError(
                    f"Band {k} [{start}, {end}) of the {label} is empty (end <= start)."
                )
            if start < 0 or end > self.n_freqs:
                raise ValueError(
                    f"Band {k} [{start}, {end}) of the {label} reaches outside the "
                    f"{self.n_freqs} bins [0, {self.n_freqs})."
                )
        covered = self.membership().any(0).numpy()
        if not covered.all():
            first = int(np.argmin(covered))
            last = first
            while last + 1 < self.n_freqs and not covered[last + 1]:
                last += 1
            below = [k for k, (_, e) in enumerate(bands) if e <= first]
            above = [k for k, (s, _) in enumerate(bands) if s > last]
            where = []
            if below:
                k = max(below, key=lambda i: bands[i][1])
                where.append(f"after band {k} {list(bands[k])}")
            if above:
                k = min(above, key=lambda i: bands[i][0])
                where.append(f"before band {k} {list(bands[k])}")
            raise ValueError(
                f"The {label} leaves bins [{first}, {last + 1}) uncovered "
                f"({' and '.join(where) or 'no band'}); every bin of the {self.n_freqs} must "
                "belong to a band."
            )

    @property
    def n_bands(self) -> int:
        """Number of bands K."""
        return len(self.bands)

    @property
    def widths(self) -> list[int]:
        """Number of bins of each band."""
        return [e - s for s, e in self.bands]

    @property
    def overlapping(self) -> bool:
        """Whether some bin belongs to more than one band."""
        return sum(self.widths) > self.n_freqs

    def band_counts(self) -> torch.Tensor:
        """Number of bands covering each bin, shape ``(n_freqs,)`` (all >= 1)."""
        return self.membership().sum(0).float()

    def membership(self) -> torch.Tensor:
        """Boolean ``(n_bands, n_freqs)``: entry ``[k, f]`` is True when bin f is in band k."""
        member = torch.zeros(self.n_bands, self.n_freqs, dtype=torch.bool)
        for k, (start, end) in enumerate(self.bands):
            member[k, start:end] = True
        return member

    def overlap_weights(self) -> torch.Tensor:
        """Overlap-add weights ``(n_bands, n_freqs)``: ``1 / (bands covering f)`` inside band k.

        Every column sums to 1, so adding the weighted outputs of all bands gives each bin the
        average of the bands that cover it (all ones inside the bands for a non-overlapping
        configuration). The SFC-CA authors' band-split decoder weights its masks this way.
        """
        return self.membership().float() / self.band_counts()

    def flat_indices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The bins of all bands concatenated, and the band each entry belongs to.

        Returns:
            tuple: ``(bins, band_ids)``, both ``long`` tensors of length ``sum(widths)``.
        """
        bins = torch.cat([torch.arange(s, e) for s, e in self.bands])
        band_ids = torch.cat(
            [torch.full((e - s,), k, dtype=torch.long) for k, (s, e) in enumerate(self.bands)]
        )
        return bins, band_ids

    def position_bias(self) -> torch.Tensor:
        """The SFC-CA positional bias ``B`` of the encoder, shape ``(n_bands, n_freqs)``.

        For band k = bins ``[s_k, e_k)``: ``B[k, f] = f - s_k`` below the band,
        ``(e_k - 1) - f`` above it, and ``-|floor((s_k + e_k) / 2) - f| / (floor((e_k - s_k) / 2)
        + 1)`` inside it (a gentle slope peaking at the band centre). The decoder uses the
        transpose. See docs/design.md, section 5, and the SFC-CA paper.
        """
        f = torch.arange(self.n_freqs, dtype=torch.float64)
        start = torch.tensor([s for s, _ in self.bands], dtype=torch.float64)[:, None]
        end = torch.tensor([e for _, e in self.bands], dtype=torch.float64)[:, None]
        centre = torch.div(start + end, 2, rounding_mode="floor")
        half = torch.div(end - start, 2, rounding_mode="floor")
        inside = -(centre - f).abs() / (half + 1)
        bias = torch.where(f < start, f - start, torch.where(f > end - 1, end - 1 - f, inside))
        return bias.float()

    def to_list(self) -> list[list[int]]:
        """The bands as plain ``[[start, end], ...]`` (for configs and JSON)."""
        return [[s, e] for s, e in self.bands]


def _n_freqs(n_fft: int) -> int:
    if not isinstance(n_fft, (int, np.integer)) or isinstance(n_fft, bool) or n_fft < 2:
        raise ValueError(f"n_fft must be an integer >= 2, got {n_fft!r}.")
    return int(n_fft) // 2 + 1


def _check_rate(sample_rate: float) -> float:
    if not isinstance(sample_rate, (int, float, np.number)) or not sample_rate > 0:
        raise ValueError(f"sample_rate must be a positive number (Hz), got {sample_rate!r}.")
    return float(sample_rate)


def bs_roformer_bands(sample_rate: float, n_fft: int, n_top_bands: int | None = None) -> BandConfig:
    """BS-RoFormer's non-overlapping bands, for any sample rate and FFT size.

    Rule (the TUSS reference's construction, made general): for each range of
    :data:`BS_ROFORMER_REGIONS` (0-1, 1-2, 2-4, 4-8, 8-16 kHz with widths of 2, 4, 12, 24 and
    48 bins at n_fft 2048), the band width in bins is scaled by ``n_fft / 2048`` (rounded, at
    least 1) and the range gets ``ceil(range Hz / band Hz)`` bands of that width, laid one after
    the other from bin 0 (a range below the Nyquist frequency only counts up to it; the last band
    is cut at the last bin). The bins left above are split into ``n_top_bands`` nearly equal bands
    (the last one takes the remainder): by default 4 at 48 kHz and above (as the TUSS reference)
    and 2 below (as BS-RoFormer at 44.1 kHz: 128 + 129 bins).

    This gives 61 bands at 48 kHz and 62 at 44.1 kHz (BS-RoFormer's own widths) for n_fft 2048,
    and the same layout in Hz for other FFT sizes.

    Args:
        sample_rate: sampling rate in Hz.
        n_fft: FFT size; the spectrum has ``n_fft // 2 + 1`` bins.
        n_top_bands: number of bands above the last range (default: 4 at >= 48 kHz, else 2).

    Returns:
        BandConfig: the bands.

    References:
        W.-T. Lu et al., ICASSP 2024; K. Saijo et al., ICASSP 2025 (``nets/tuss.py``).
    """
    sample_rate = _check_rate(sample_rate)
    n_freqs = _n_freqs(n_fft)
    if n_top_bands is not None and (not isinstance(n_top_bands, int) or n_top_bands < 1):
        raise ValueError(f"n_top_bands must be a positive integer or None, got {n_top_bands!r}.")
    nyquist = sample_rate / 2
    bin_hz = sample_rate / n_fft
    scale = n_fft / _BS_ROFORMER_NFFT
    edges = [0]
    for low, high, width in BS_ROFORMER_REGIONS:
        if low >= nyquist or edges[-1] >= n_freqs:
            break
        width = max(1, int(math.floor(width * scale + 0.5)))
        count = math.ceil((min(high, nyquist) - low) / (width * bin_hz))
        for _ in range(count):
            if edges[-1] >= n_freqs:
                break
            edges.append(min(edges[-1] + width, n_freqs))
        if edges[-1] == n_freqs and len(edges) > 2 and edges[-1] - edges[-2] < width / 2:
            del edges[-2]  # a sliver cut at the last bin joins the band below
    rest = n_freqs - edges[-1]
    if rest > 0:
        n_top = n_top_bands or (4 if sample_rate >= 48000 else 2)
        n_top = min(n_top, rest)
        sizes = [rest // n_top] * (n_top - 1) + [rest // n_top + rest % n_top]
        for size in sizes:
            edges.append(edges[-1] + size)
    bands = tuple(zip(edges[:-1], edges[1:]))
    return BandConfig(bands, n_freqs, name="bs_roformer")


def _hz_to_midi(hz: np.ndarray) -> np.ndarray:
    return 12.0 * (np.log2(hz) - np.log2(440.0)) + 69.0


def _midi_to_hz(midi: np.ndarray) -> np.ndarray:
    return 440.0 * (2.0 ** ((midi - 69.0) / 12.0))


def musical_bands(sample_rate: float, n_fft: int, n_bands: int = 64) -> BandConfig:
    """BandIt's "musical" bands: overlapping, equally spaced on a log-frequency (MIDI) scale.

    Rule (BandIt's musical filterbank as used by the SFC-CA authors): centres at ``n_bands``
    MIDI-spaced frequencies from one bin (``sample_rate / n_fft``) to the Nyquist frequency; band k
    spans ``[floor(c_k / m / df), ceil(c_k * m / df)]`` (inclusive, cut at the last bin), with
    ``df`` the bin spacing and ``m = 2 ** (octaves / n_bands)`` for the ``log2(n_fft / 2)``
    octaves covered; the first band is extended down to bin 0 and the last one up to the last
    bin. Neighbouring bands overlap by about half their width.

    Args:
        sample_rate: sampling rate in Hz.
        n_fft: FFT size; the spectrum has ``n_fft // 2 + 1`` bins.
        n_bands: number of bands (64 in the SFC-CA recipes).

    Returns:
        BandConfig: the bands (``overlap_weights()`` gives the decoder's normalisation).

    References:
        K. N. Watcharasupat et al., IEEE OJSP 2024; K. Saijo and Y. Bando, TASLP 2026.
    """
    sample_rate = _check_rate(sample_rate)
    n_freqs = _n_freqs(n_fft)
    if not isinstance(n_bands, (int, np.integer)) or n_bands < 2:
        raise ValueError(f"The musical configuration needs n_bands >= 2, got {n_bands!r}.")
    df = sample_rate / n_fft
    f_min, f_max = df, sample_rate / 2
    mult = 2.0 ** (np.log2(f_max / f_min) / n_bands)
    low_midi = max(0.0, float(_hz_to_midi(np.asarray(f_min))))
    centres = _midi_to_hz(np.linspace(low_midi, float(_hz_to_midi(np.asarray(f_max))), n_bands))
    low_bins = np.floor(centres / mult / df).astype(int)
    high_bins = np.ceil(centres * mult / df).astype(int)
    bands = []
    for k in range(n_bands):
        start = 0 if k == 0 else int(low_bins[k])
        end = n_freqs if k == n_bands - 1 else min(int(high_bins[k]) + 1, n_freqs)
        bands.append((start, end))
    return BandConfig(tuple(bands), n_freqs, name="musical")


def get_band_config(
    bands: BandSpec | BandConfig,
    sample_rate: float,
    n_fft: int,
    n_bands: int | None = None,
) -> BandConfig:
    """Build a band configuration from a name or a user-given list.

    Args:
        bands: ``"bs_roformer"``, ``"musical"``, a list of band edges ``[0, e_1, ..., n_freqs]``
            (consecutive bands ``[e_i, e_{i+1})``), a list of ``(start, end)`` pairs, or a
            :class:`BandConfig` (checked against ``n_fft``).
        sample_rate: sampling rate in Hz.
        n_fft: FFT size.
        n_bands: number of bands for ``"musical"`` (default 64); for the other kinds it must be
            None or equal to the number of bands obtained.

    Returns:
        BandConfig: the validated configuration.

    Raises:
        ValueError: unknown name, malformed list, gaps or empty bands (naming the band), or an
            ``n_bands`` that does not match.
    """
    n_freqs = _n_freqs(n_fft)
    if isinstance(bands, BandConfig):
        config = bands
    elif isinstance(bands, str):
        if bands == "musical":
            config = musical_bands(sample_rate, n_fft, 64 if n_bands is None else n_bands)
        elif bands == "bs_roformer":
            config = bs_roformer_bands(sample_rate, n_fft)
        else:
            raise ValueError(
                f"Unknown band configuration '{bands}'; choose from {list(BAND_CONFIGS)} or give "
                "a list of band edges or (start, end) pairs."
            )
    else:
        items = list(bands)
        if not items:
            raise ValueError("The band configuration list is empty.")
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
            if len(items) < 2:
                raise ValueError(f"Band edges need at least two values, got {items}.")
            pairs = tuple(zip(items[:-1], items[1:]))
        elif all(isinstance(v, Sequence) and len(v) == 2 for v in items):
            pairs = tuple((int(s), int(e)) for s, e in items)
        else:
            raise ValueError(
                "A user-given band configuration must be a list of integer band edges or a list "
                f"of (start, end) pairs; got {items[:4]}{'...' if len(items) > 4 else ''}."
            )
        config = BandConfig(pairs, n_freqs, name="custom")
    if config.n_freqs != n_freqs:
        raise ValueError(
            f"The band configuration '{config.name}' covers {config.n_freqs} bins, but n_fft="
            f"{n_fft} gives {n_freqs}."
        )
    if n_bands is not None and n_bands != config.n_bands:
        raise ValueError(
            f"n_bands={n_bands} does not match the {config.n_bands} bands of the "
            f"'{config.name}' configuration."
        )
    return config
