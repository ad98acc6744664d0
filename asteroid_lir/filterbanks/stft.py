"""Stacked real/imaginary STFT analysis and synthesis shared by the STFT-domain models.

The TF-Locoformer and TUSS models work on ``(batch, 2, frames, freqs)``: the real and imaginary
parts of a one-sided STFT stacked as channels, frames before frequencies. :func:`stacked_stft`
and :func:`stacked_istft` are the one place that layout is produced and inverted
(``torch.stft``/``torch.istft``); :class:`StackedSTFT` holds the settings and the window of a
model's front end. Both run in float32 (or float64) also under ``torch.autocast``: the spectra of
a lower-precision network output are synthesised in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PADDINGS", "StackedSTFT", "make_window", "stacked_istft", "stacked_stft"]

PADDINGS = ("reflect", "zero")


def make_window(name: str, length: int) -> torch.Tensor:
    """A periodic analysis window: ``"sqrt_hann"`` or any ``torch.<name>_window``.

    Raises:
        ValueError: an unknown name.
    """
    if name == "sqrt_hann":
        return torch.hann_window(length, periodic=True).sqrt()
    window_fn = getattr(torch, f"{name}_window", None)
    if window_fn is None:
        raise ValueError(
            f"Unknown window {name!r}: use 'sqrt_hann' or a name of torch.<name>_window."
        )
    return window_fn(length)


def _full_precision(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


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
    wav = _full_precision(wav)
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
    spec = _full_precision(spec).reshape((-1,) + tuple(spec.shape[-3:]))
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


class StackedSTFT(nn.Module):
    """A model's STFT front end: analysis ``(batch, time) -> (batch, 2, frames, freqs)`` and
    synthesis back, with its window as a (non-persistent) buffer.

    Args:
        n_fft (int): FFT size.
        hop_length (int): hop size in samples.
        win_length (int, optional): window length (default ``n_fft``).
        window (str): :func:`make_window` name.
        padding (str): ``"reflect"`` or ``"zero"`` (see :func:`stacked_stft`).

    Raises:
        ValueError: sizes out of range, an unknown window or padding.
    """

    def __init__(
        self,
        n_fft: int,
        hop_length: int,
        win_length: int | None = None,
        window: str = "hann",
        padding: str = "reflect",
    ) -> None:
        super().__init__()
        win_length = n_fft if win_length is None else int(win_length)
        if n_fft < 2 or hop_length < 1 or not 1 <= win_length <= n_fft:
            raise ValueError(
                f"Need n_fft >= 2, hop_length >= 1 and 1 <= win_length <= n_fft, got n_fft="
                f"{n_fft}, hop_length={hop_length}, win_length={win_length}."
            )
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}.")
        self.n_fft, self.hop_length, self.win_length = int(n_fft), int(hop_length), win_length
        self.window_name, self.padding = window, padding
        self.register_buffer("window", make_window(window, win_length), persistent=False)

    @property
    def min_length(self) -> int:
        """Fewest samples :meth:`forward` takes (reflection padding needs ``n_fft // 2 + 1``)."""
        return self.n_fft // 2 + 1 if self.padding == "reflect" else 1

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Stacked STFT ``(batch, 2, frames, n_fft // 2 + 1)`` of ``(batch, time)``."""
        args = (self.n_fft, self.hop_length, self.win_length, self.window)
        return stacked_stft(wav, *args, padding=self.padding)

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Waveforms ``(..., length)`` of stacked spectra ``(..., 2, frames, freqs)``."""
        return stacked_istft(
            spec, self.n_fft, self.hop_length, self.win_length, self.window, length
        )

    def get_config(self) -> dict:
        """Constructor arguments."""
        return {
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "win_length": self.win_length,
            "window": self.window_name,
        }
