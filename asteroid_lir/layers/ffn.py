"""SwiGLU feed-forward layers: convolutional (Locoformer blocks) and linear (SFC-CA blocks).

References:
    [1] N. Shazeer, "GLU Variants Improve Transformer", arXiv:2002.05202, 2020.
    [2] K. Saijo et al., "TF-Locoformer", IWAENC 2024.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .chunks import fast_inference

__all__ = ["FFN_TYPES", "ConvSwiGLUFFN", "SwiGLU"]

#: FFN types of the Locoformer blocks.
FFN_TYPES = ("swiglu_conv1d",)


class SwiGLU(nn.Module):
    """``linear2(a * silu(b))`` with ``(a, b) = linear1(x)`` split in two halves.

    Args:
        dim (int): output size (and input size unless ``in_dim`` is given).
        hidden (int): size of each half (the gated hidden layer).
        in_dim (int, optional): input size (default ``dim``).
    """

    def __init__(self, dim: int, hidden: int, in_dim: int | None = None) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim if in_dim is None else in_dim, 2 * hidden)
        self.linear2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the MLP to ``(..., in_dim)``; returns ``(..., dim)``."""
        a, b = self.linear1(x).chunk(2, dim=-1)
        return self.linear2(a * F.silu(b))


class ConvSwiGLUFFN(nn.Module):
    """Convolutional SwiGLU feed-forward network on ``(batch, length, channels)``.

    ``Conv1d(dim -> 2 * hidden, kernel, stride=shift)`` on the input zero-padded by
    ``kernel - shift`` samples on the left (and as many on the right as the strides need), then
    ``a * silu(b)`` of its two halves, then ``ConvTranspose1d(hidden -> dim, kernel, stride=shift)``
    cropped back to the input length (reference ``SwiGLUConvDeconv1d``; parameter names
    ``conv1d``, ``deconv1d``).

    With ``shift == 1`` (every released configuration) the transposed convolution is computed as
    the equivalent convolution with flipped kernels, which gives only the samples kept after the
    crop, and both convolutions run on the channels-last sequence without transposing copies.

    Args:
        dim (int): channels of the sequence.
        hidden_dim (int): channels after the gate.
        kernel_size (int): kernel length of both convolutions.
        shift (int): stride of both convolutions (``1 <= shift <= kernel_size``).
        dropout (float): dropout after the gate and on the output.
    """

    def __init__(
        self,
        dim: int,
        hidden_dim: int,
        kernel_size: int = 4,
        shift: int = 1,
        dropout: float = 0.0,
    ):
        super().__init__()
        if kernel_size < 1 or not 1 <= shift <= kernel_size:
            raise ValueError(
                f"Need kernel_size >= 1 and 1 <= shift <= kernel_size, got kernel_size="
                f"{kernel_size}, shift={shift}."
            )
        self.hidden_dim = hidden_dim
        self.kernel_size = kernel_size
        self.shift = shift
        self.conv1d = nn.Conv1d(dim, 2 * hidden_dim, kernel_size, stride=shift)
        self.deconv1d = nn.ConvTranspose1d(hidden_dim, dim, kernel_size, stride=shift)
        self.dropout = nn.Dropout(dropout)

    def _gate(self, h: torch.Tensor) -> torch.Tensor:
        a, b = h[:, : self.hidden_dim], h[:, self.hidden_dim :]
        if fast_inference():
            return self.dropout(F.silu(b).mul_(a))  # one large allocation less
        return self.dropout(a * F.silu(b))

    def forward(self, x: torch.Tensor, in_scale: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the FFN.

        Args:
            x (torch.Tensor): ``(batch, length, dim)``.
            in_scale (torch.Tensor, optional): per-channel gain applied to ``x`` first (folded
                into the first convolution's weights).

        Returns:
            torch.Tensor: ``(batch, length, dim)``.
        """
        w1 = self.conv1d.weight
        if in_scale is not None:
            w1 = w1 * in_scale[:, None]
        if self.shift == 1:
            return self._forward_unit_shift(x, w1)
        return self._forward_strided(x, w1)

    def _forward_unit_shift(self, x: torch.Tensor, w1: torch.Tensor) -> torch.Tensor:
        # Faster variant owned here: (batch, length, dim) viewed as a channels-last 2-D image
        # (batch, dim, 1, length), so that oneDNN convolves it without transposing copies.
        k = self.kernel_size
        h = F.conv2d(
            x.transpose(1, 2).unsqueeze(2), w1.unsqueeze(2), self.conv1d.bias, padding=(0, k - 1)
        )
        g = self._gate(h)
        # ConvTranspose1d(stride 1) followed by the crop [k-1 : k-1+length] equals a valid
        # Conv1d with the kernels flipped in time and the channel axes swapped.
        w2 = self.deconv1d.weight.flip(-1).transpose(0, 1).unsqueeze(2)
        y = F.conv2d(g, w2, self.deconv1d.bias)
        return self.dropout(y.squeeze(2).transpose(1, 2))

    def _forward_strided(self, x: torch.Tensor, w1: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        k, s = self.kernel_size, self.shift
        diff = k - s
        n_steps = -(-(length + 2 * diff - k) // s)  # ceil division
        padded = n_steps * s + k
        h = F.conv1d(
            F.pad(x.transpose(1, 2), (diff, padded - length - diff)), w1, self.conv1d.bias, stride=s
        )
        y = F.conv_transpose1d(self._gate(h), self.deconv1d.weight, self.deconv1d.bias, stride=s)
        return self.dropout(y[..., diff : diff + length].transpose(1, 2))
