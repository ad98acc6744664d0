"""Stacked real/imaginary STFT analysis and synthesis shared by the STFT-domain models.

The TF-Locoformer and TUSS models work on ``(batch, 2, frames, freqs)``: the real and imaginary
parts of a one-sided STFT stacked as channels, frames before frequencies. These two functions
are the one place that layout is produced and inverted (``torch.stft``/``torch.istft``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["stacked_istft", "stacked_stft"]

PADDINGS = ("reflect", "zero")


def stacked_stft(
    wav: torch.Tensor,
    n_fft: int,
    hop_length: int,
    win_length: int,
    window: torch.Tensor,
    padding: str = "reflect",
) -> torch.Tensor:
    """Stacked STFT ``(batch, 2, frames, n_fft // 2 + 1)`` of ``(batch, time)`` waveforms.

    Args:
        wav: waveforms ``(batch, time)``.
        n_fft: FFT size.
        hop_length: hop size in samples.
        win_length: window length.
        window: the analysis window ``(win_length,)``.
        padding: ``"reflect"``: ``torch.stft``'s centred frames, reflect-padded by
            ``n_fft // 2`` (ESPnet's STFT); ``"zero"``: ``n_fft // 2`` zeros on the left and on
            the right enough to complete the last hop (MERL's TUSS front end).

    Returns:
        torch.Tensor: ``(batch, 2, frames, freqs)``.
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}.")
    if padding == "zero":
        half = n_fft // 2
        end = (-(wav.shape[-1] + 2 * half - win_length) % hop_length) % win_length
        wav = F.pad(wav, (half, half + end))
    spec = torch.stft(
        wav,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window.to(wav.dtype),
        center=padding == "reflect",
        pad_mode="reflect",
        normalized=False,
        onesided=True,
        return_complex=True,
    )  # (batch, freqs, frames)
    return torch.view_as_real(spec).permute(0, 3, 2, 1)


def stacked_istft(
    spec: torch.Tensor,
    n_fft: int,
    hop_length: int,
    win_length: int,
    window: torch.Tensor,
    length: int,
) -> torch.Tensor:
    """Waveforms ``(..., length)`` of stacked spectra ``(..., 2, frames, freqs)``.

    Args:
        spec: stacked spectra with any leading dimensions.
        n_fft, hop_length, win_length, window: as for :func:`stacked_stft`.
        length: samples of the output (the analysed signal's length).

    Returns:
        torch.Tensor: ``(..., length)``.
    """
    lead = spec.shape[:-3]
    spec = spec.reshape((-1,) + tuple(spec.shape[-3:]))
    cspec = torch.complex(spec[:, 0], spec[:, 1]).transpose(1, 2)  # (n, freqs, frames)
    wav = torch.istft(
        cspec,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window.to(spec.dtype),
        center=True,
        normalized=False,
        onesided=True,
        length=length,
    )
    return wav.reshape(tuple(lead) + (wav.shape[-1],))
