"""An encoder wrapper that zero-pads its input to a whole number of U-ConvBlock downsamplings."""

from __future__ import annotations

import math

import torch
from asteroid.models.sudormrf import pad
from torch import nn

__all__ = ["PaddedEncoder"]


class PaddedEncoder(nn.Module):
    """Zero-pad the input on the right to a multiple of ``hop * 2**upsampling_depth``, then encode.

    Sudo rm -rf's latent is halved ``upsampling_depth - 1`` times inside every U-ConvBlock, so
    its length must divide evenly: the padding makes any input length work. Same attribute
    names as Asteroid's Sudo rm -rf padder (``encoder``, ``filterbank``), so its checkpoints
    keep their keys; the padding is scripted while tracing, so a traced model pads inputs of
    any length correctly.

    Args:
        encoder (nn.Module): an ``asteroid_filterbanks.Encoder``.
        upsampling_depth (int): resolutions of the U-ConvBlocks.
        kernel_size (int): the encoder's filter length (its hop is ``kernel_size // 2``).
    """

    def __init__(self, encoder: nn.Module, upsampling_depth: int, kernel_size: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.filterbank = encoder.filterbank
        self.sample_rate = getattr(encoder.filterbank, "sample_rate", None)
        hop, scale = kernel_size // 2, 2**upsampling_depth
        self.lcm = abs(hop * scale) // math.gcd(hop, scale)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Encoder output of ``wav`` ``(batch, 1, time)`` after padding."""
        return self.encoder(pad(wav, self.lcm))
