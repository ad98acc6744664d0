"""Convolutional encoder/decoder of TF-Locoformer: every STFT bin stays a position of the latent.

Encoder: ``Conv2d(2 -> channels, 3x3) + GroupNorm(1, channels)`` on the stacked real/imaginary
STFT; decoder: ``ConvTranspose2d(channels -> 2 * n_src, 3x3)`` to the sources' spectra (complex
spectral mapping, no mask). Same interface as the band encoders/decoders of this package, with
one "band" per frequency bin; the parameter names are those of MERL's reference separator
(``conv.{0,1}.*`` and ``deconv.*`` there).

References:
    K. Saijo et al., "TF-Locoformer: Transformer with Local Modeling by Convolution for Speech
    Separation and Enhancement", IWAENC 2024.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ConvDecoder", "ConvEncoder"]


class ConvEncoder(nn.Sequential):
    """``Conv2d(2 -> channels, 3x3)`` and ``GroupNorm(1, channels)`` (children ``0`` and ``1``).

    Args:
        channels (int): output channels.
        eps (float): GroupNorm epsilon.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__(
            nn.Conv2d(2, channels, (3, 3), padding=(1, 1)), nn.GroupNorm(1, channels, eps=eps)
        )
        self.channels, self.eps = channels, eps

    def forward_with_context(self, spec: torch.Tensor) -> tuple[torch.Tensor, None]:
        """Features ``(batch, channels, frames, freqs)`` of ``(batch, 2, frames, freqs)``, and
        ``None`` (no decoder context)."""
        if spec.ndim != 4 or (not torch.jit.is_tracing() and spec.shape[1] != 2):
            raise ValueError(
                "The convolutional encoder expects a stacked real/imaginary spectrogram (batch, "
                f"2, frames, freqs), got shape {tuple(spec.shape)}."
            )
        return super().forward(spec.contiguous(memory_format=torch.channels_last)), None

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """Features ``(batch, channels, frames, freqs)``."""
        return self.forward_with_context(spec)[0]

    def get_config(self) -> dict:
        """Constructor arguments."""
        return {"channels": self.channels, "eps": self.eps}


class ConvDecoder(nn.ConvTranspose2d):
    """``ConvTranspose2d(channels -> 2 * n_src, 3x3)``: the sources' spectra from features.

    Args:
        channels (int): input channels.
        n_src (int): number of sources.
    """

    def __init__(self, channels: int, n_src: int) -> None:
        super().__init__(channels, 2 * n_src, (3, 3), padding=(1, 1))
        self.channels, self.n_src = channels, n_src

    def forward(
        self, feats: torch.Tensor, mixture: torch.Tensor | None = None, context: object = None
    ) -> torch.Tensor:
        """Spectra ``(batch, n_src, 2, frames, freqs)`` of features ``(batch, channels, frames,
        freqs)``; ``mixture`` and ``context`` are accepted for the common decoder signature."""
        return super().forward(feats).unflatten(1, (self.n_src, 2))

    def get_config(self) -> dict:
        """Constructor arguments."""
        return {"channels": self.channels, "n_src": self.n_src}
