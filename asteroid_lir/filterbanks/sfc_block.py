"""The SFC-CA block: cross-attention between band queries and bins with a learnable positional
bias, then a residual SwiGLU MLP (the layer the SFC-CA encoder and decoder each hold one of).

See :mod:`asteroid_lir.filterbanks.sfc` for the equations and the reference.

References:
    K. Saijo and Y. Bando, "Input-adaptive spectral feature compression by sequence modeling for
    source separation", IEEE/ACM TASLP 2026 (arXiv 2602.08671). O. Press et al., "Train short,
    test long" (ALiBi), ICLR 2022.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..layers.attention import MultiHeadCrossAttention
from ..layers.ffn import SwiGLU

__all__ = ["BandCrossAttention", "PositionalBias"]


class PositionalBias(nn.Module):
    """Additive attention bias ``slope_h * B_h`` (optionally ``-inf`` outside the bands).

    Args:
        init: initial bias ``(q_len, kv_len)``, copied for every head.
        n_heads: number of attention heads.
        slopes: per-head slopes (default all 1).
        learnable: whether ``B`` is a parameter (True in the authors' recipes) or fixed.
        learnable_slopes: whether the slopes are parameters (False in the recipes).
        allowed: optional boolean ``(q_len, kv_len)``; where False the bias is ``-inf``
            (the authors' ``mask_outside_bands``).

    Returns (forward):
        torch.Tensor: ``(1, n_heads, q_len, kv_len)``.
    """

    def __init__(
        self,
        init: torch.Tensor,
        n_heads: int,
        slopes: Sequence[float] | None = None,
        learnable: bool = True,
        learnable_slopes: bool = False,
        allowed: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        slopes = [1.0] * n_heads if slopes is None else [float(s) for s in slopes]
        if len(slopes) != n_heads:
            raise ValueError(f"Got {len(slopes)} slopes for {n_heads} heads: {slopes}.")
        bias = init.float()[None, None].repeat(1, n_heads, 1, 1).contiguous()
        slope_t = torch.tensor(slopes)[:, None, None]
        if learnable:
            self.bias = nn.Parameter(bias)
        else:
            self.register_buffer("bias", bias, persistent=False)
        if learnable_slopes:
            self.slopes = nn.Parameter(slope_t)
        else:
            self.register_buffer("slopes", slope_t, persistent=False)
        if allowed is not None:
            outside = torch.zeros(allowed.shape).masked_fill(~allowed.bool(), float("-inf"))
            self.register_buffer("outside", outside[None, None], persistent=False)
        else:
            self.outside = None

    def forward(self) -> torch.Tensor:
        bias = self.bias if self.outside is None else self.bias + self.outside
        return bias * self.slopes.to(bias.dtype)


class BandCrossAttention(MultiHeadCrossAttention):
    """One SFC-CA block: RMSNorm'd queries and keys/values, multi-head cross-attention with a
    positional bias, then a residual SwiGLU MLP (no residual around the attention).

    The attention (and its frame-chunked inference) is
    :class:`~asteroid_lir.layers.attention.MultiHeadCrossAttention`, the MLP
    :class:`~asteroid_lir.layers.ffn.SwiGLU`: the layers of the separators.

    Args:
        dim: feature size of queries and keys/values (the attention size too).
        n_heads: number of heads (``dim`` must be divisible by it).
        position_bias: the additive bias, or None for plain attention.
        mlp_hidden: hidden size of the SwiGLU MLP (``2 * dim`` in the authors' code).
        eps: RMSNorm epsilon.
    """

    def __init__(
        self,
        dim: int,
        n_heads: int,
        position_bias: PositionalBias | None,
        mlp_hidden: int,
        eps: float = 1e-6,
    ) -> None:
        super().__init__(dim, n_heads)
        self.norm_q = nn.RMSNorm(dim, eps=eps)
        self.norm_kv = nn.RMSNorm(dim, eps=eps)
        self.position_bias = position_bias
        self.norm_mlp = nn.RMSNorm(dim, eps=eps)
        self.mlp = SwiGLU(dim, mlp_hidden)

    def _bias(self) -> torch.Tensor | None:
        return None if self.position_bias is None else self.position_bias()

    def attend(
        self, kv: torch.Tensor, query: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The block's output ``(n, q_len, dim)`` (``bias``: the positional bias if None)."""
        bias = self._bias() if bias is None else bias
        out = super().attend(self.norm_kv(kv), self.norm_q(query), bias)
        return out + self.mlp(self.norm_mlp(out))

    def attention_weights(
        self, kv: torch.Tensor, query: torch.Tensor, with_bias: bool = True
    ) -> torch.Tensor:
        """The attention probabilities of :meth:`forward`, computed explicitly.

        Args:
            kv: ``(n, kv_len, dim)``.
            query: ``(n, q_len, dim)`` or ``(1, q_len, dim)``.
            with_bias: add the positional bias (as :meth:`forward` does) or leave it out.

        Returns:
            torch.Tensor: ``(n, n_heads, q_len, kv_len)``; each row sums to 1.
        """
        bias = self._bias() if with_bias else None
        return super().attention_weights(self.norm_kv(kv), self.norm_q(query), bias)
