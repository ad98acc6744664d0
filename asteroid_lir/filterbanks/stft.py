"""Stacked real/imaginary STFT analysis and synthesis shared by the STFT-domain models.

The TF-Locoformer and TUSS models work on ``(batch, 2, frames, freqs)``: the real and imaginary
parts of a one-sided STFT stacked as channels, frames before frequencies. :class:`StackedSTFT`
is the one place that layout is produced and inverted (``torch.stft``/``torch.istft``), with a
model's STFT settings and window. It runs in float32 (or float64) also under ``torch.autocast``:
the spectra of a lower-precision network output are synthesised in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PADDINGS", "StackedSTFT", "make_window"]

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


class StackedSTFT(nn.Module):
    """A model's STFT front end: analysis ``(batch, time) -> (batch, 2, frames, freqs)`` and
    synthesis back, with its window as a (non-persistent) buffer.

    Args:
        n_fft (int): FFT size.
        hop_length (int): hop size in samples.
        win_length (int, optional): window length (default ``n_fft``).
        window (str): :func:`make_window` name.
        padding (str): ``"reflect"`` or ``"zero"`` (see :meth:`forward`).

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

    def _torch_args(self, dtype: torch.dtype) -> dict:
        # What torch.stft and torch.istft share: unnormalised, one-sided, this window.
        return dict(
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window.to(dtype),
            normalized=False,
            onesided=True,
        )

    @property
    def min_length(self) -> int:
        """Fewest samples :meth:`forward` takes (reflection padding needs ``n_fft // 2 + 1``)."""
        return self.n_fft // 2 + 1 if self.padding == "reflect" else 1

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Stacked STFT ``(batch, 2, frames, n_fft // 2 + 1)`` of ``(batch, time)`` waveforms.

        ``"reflect"`` padding: ``torch.stft``'s centred frames, reflect-padded by ``n_fft // 2``
        (ESPnet's STFT); ``"zero"``: ``n_fft // 2`` zeros on the left and on the right enough to
        complete the last hop (MERL's TUSS front end).
        """
        wav = _full_precision(wav)
        if self.padding == "zero":
            half = self.n_fft // 2
            end = (
                -(wav.shape[-1] + 2 * half - self.win_length) % self.hop_length
            ) % self.win_length
            wav = F.pad(wav, (half, half + end))
        center = self.padding == "reflect"
        args = self._torch_args(wav.dtype)
        spec = torch.stft(wav, **args, center=center, pad_mode="reflect", return_complex=True)
        return torch.view_as_real(spec).permute(0, 3, 2, 1)

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Waveforms ``(..., length)`` of stacked spectra ``(..., 2, frames, freqs)`` (any leading
        dimensions; ``length``: samples of the analysed signal)."""
        lead = spec.shape[:-3]
        spec = _full_precision(spec).reshape((-1,) + tuple(spec.shape[-3:]))
        cspec = torch.complex(spec[:, 0], spec[:, 1]).transpose(1, 2)  # (n, freqs, frames)
        wav = torch.istft(cspec, **self._torch_args(spec.dtype), center=True, length=length)
        return wav.reshape(tuple(lead) + (wav.shape[-1],))

    def get_config(self) -> dict:
        """Constructor arguments."""
        return {
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "win_length": self.win_length,
            "window": self.window_name,
        }
