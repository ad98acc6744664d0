"""Attention layers: rotary multi-head self-attention and multi-head cross-attention.

- :class:`RotaryEmbedding`: rotary position embedding (RoPE) of interleaved channel pairs.
- :class:`RotaryMultiHeadSelfAttention`: multi-head self-attention with RoPE on queries and keys
  (the attention of the Locoformer blocks).
- :class:`MultiHeadCrossAttention`: queries of one sequence attend over another, with an
  optional additive bias (the attention of the SFC-CA encoder/decoder).

Both compute the attention with ``torch.nn.functional.scaled_dot_product_attention`` and
PyTorch's default backend choice: a fused kernel that never stores the ``L x L`` matrix on CPU
and GPU when no bias is given.

References:
    [1] J. Su et al., "RoFormer: Enhanced Transformer with Rotary Position Embedding",
    Neurocomputing, 2024.
    [2] A. Jaegle et al., "Perceiver IO", ICLR 2022.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .chunks import fast_inference, map_chunks

__all__ = ["MultiHeadCrossAttention", "RotaryEmbedding", "RotaryMultiHeadSelfAttention"]


def _complex_viewable(pairs: torch.Tensor) -> bool:
    # torch.view_as_complex needs unit stride on the (re, im) axis and even offsets elsewhere.
    return (
        pairs.stride(-1) == 1
        and pairs.storage_offset() % 2 == 0
        and all(s % 2 == 0 for s in pairs.stride()[:-1])
    )


class RotaryEmbedding(nn.Module):
    """Rotary position embedding of interleaved channel pairs ``(2i, 2i+1)``.

    Position ``p`` rotates pair ``i`` by the angle ``p * freqs[i]`` with
    ``freqs[i] = theta ** (-2i / dim)``, positions counted from 0 along ``seq_dim``. This is what
    ``rotary_embedding_torch.RotaryEmbedding(dim).rotate_queries_or_keys`` (0.6.1, defaults)
    computes; ``freqs`` is a buffer under the same name, so ESPnet state dicts load into it.
    Unlike in that package it is not a parameter: it is never learnt.

    Args:
        dim (int): channels to rotate (the attention head size), even.
        theta (float): base of the frequencies.

    References:
        [1] J. Su et al., "RoFormer: Enhanced Transformer with Rotary Position Embedding", 2024.
    """

    def __init__(self, dim: int, theta: float = 10000.0):
        super().__init__()
        if dim < 2 or dim % 2 != 0:
            raise ValueError(f"RoPE needs an even number of channels, got dim={dim}.")
        self.dim = dim
        self.theta = theta
        freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        self.register_buffer("freqs", freqs)

    def rotations(self, seq_len: int, device: torch.device | None = None) -> torch.Tensor:
        """Unit complex numbers ``exp(1j * p * freqs)``, shape ``(seq_len, dim // 2)``."""
        pos = torch.arange(seq_len, device=device, dtype=self.freqs.dtype)
        angles = pos[:, None] * self.freqs[None, :]
        return torch.complex(angles.cos(), angles.sin())

    def _broadcast_rotations(self, x: torch.Tensor, seq_dim: int) -> torch.Tensor:
        # Rotations of x's positions in x's complex dtype, broadcastable over its pairs.
        cdtype = torch.complex64 if x.dtype == torch.float32 else torch.complex128
        rot = self.rotations(x.shape[seq_dim], x.device).to(cdtype)
        return rot.view((rot.shape[0],) + (1,) * (-seq_dim - 2) + (rot.shape[1],))

    def rotate(self, x: torch.Tensor, seq_dim: int = -2) -> torch.Tensor:
        """Rotate ``x`` whose last axis holds the ``dim`` channels.

        Args:
            x (torch.Tensor): ``(..., length, ..., dim)``, float32 or float64.
            seq_dim (int): the axis of the positions (negative, counted from the end, < -1).

        Returns:
            torch.Tensor: rotated tensor, same shape and dtype (contiguous).
        """
        if seq_dim >= 0:
            seq_dim -= x.ndim
        if not -x.ndim <= seq_dim < -1:
            raise ValueError(f"seq_dim={seq_dim} must point at an axis before the channels.")
        if not torch.jit.is_tracing() and x.shape[-1] != self.dim:
            raise ValueError(f"RoPE was built for {self.dim} channels, got {x.shape[-1]}.")
        dtype = x.dtype
        if dtype not in (torch.float32, torch.float64):
            x = x.float()
        pairs = x.unflatten(-1, (self.dim // 2, 2))
        if not _complex_viewable(pairs):
            pairs = pairs.contiguous()
        rot = self._broadcast_rotations(x, seq_dim)
        # (a + ib)(cos + i sin) = (a cos - b sin) + i(a sin + b cos): the pair rotation.
        out = torch.view_as_real(torch.view_as_complex(pairs) * rot).flatten(-2)
        return out.to(dtype)

    def rotate_(self, x: torch.Tensor, seq_dim: int = -2) -> torch.Tensor:
        """In-place :meth:`rotate` where the layout allows it (else out of place).

        For inference (no autograd graph): the rotation then allocates nothing.

        Args:
            x (torch.Tensor): as for :meth:`rotate`.
            seq_dim (int): as for :meth:`rotate`.

        Returns:
            torch.Tensor: ``x`` rotated (``x`` itself when done in place).
        """
        pairs = x.unflatten(-1, (self.dim // 2, 2))
        if (
            x.requires_grad
            or x.dtype not in (torch.float32, torch.float64)
            or x.shape[-1] != self.dim
            or not _complex_viewable(pairs)
            or seq_dim >= 0
            or not -x.ndim <= seq_dim < -1
        ):
            return self.rotate(x, seq_dim)
        rot = self._broadcast_rotations(x, seq_dim)
        torch.view_as_complex(pairs).mul_(rot)
        return x

    def extra_repr(self) -> str:
        return f"dim={self.dim}, theta={self.theta}"


class RotaryMultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention with rotary position embedding, on ``(batch, length, channels)``.

    ``qkv`` projects to ``3 * attention_dim`` features laid out as ``(q | k | v)``, each
    ``(head, head_dim)``; queries and keys are rotated with :class:`RotaryEmbedding`; the heads are
    merged by ``aggregate_heads`` (a bias-free linear layer followed by dropout). Parameter names
    are those of the reference (``qkv.weight``, ``aggregate_heads.0.weight``, ``rope.freqs``).

    Args:
        emb_dim (int): channels of the sequence.
        attention_dim (int): total size of the queries (and keys, values) over all heads.
        n_heads (int): number of heads; ``attention_dim // n_heads`` (even) is the head size.
        dropout (float): dropout on the attention weights and on the output.
        rope (RotaryEmbedding, optional): position embedding to use; by default a new one of
            ``attention_dim // n_heads`` channels.
    """

    def __init__(
        self,
        emb_dim: int,
        attention_dim: int = 128,
        n_heads: int = 4,
        dropout: float = 0.0,
        rope: RotaryEmbedding | None = None,
    ):
        super().__init__()
        if n_heads < 1 or attention_dim % n_heads != 0:
            raise ValueError(
                f"attention_dim={attention_dim} must be a multiple of n_heads={n_heads}."
            )
        self.n_heads = n_heads
        self.head_dim = attention_dim // n_heads
        self.dropout = dropout
        self.qkv = nn.Linear(emb_dim, 3 * attention_dim, bias=False)
        self.aggregate_heads = nn.Sequential(
            nn.Linear(attention_dim, emb_dim, bias=False), nn.Dropout(dropout)
        )
        self.rope = rope if rope is not None else RotaryEmbedding(self.head_dim)
        if self.rope.dim != self.head_dim:
            raise ValueError(f"RoPE has {self.rope.dim} channels, the heads {self.head_dim}.")

    def forward(self, x: torch.Tensor, in_scale: torch.Tensor | None = None) -> torch.Tensor:
        """Attend over the sequence.

        Args:
            x (torch.Tensor): ``(batch, length, emb_dim)``.
            in_scale (torch.Tensor, optional): per-channel gain applied to ``x`` first (a
                preceding norm's ``gamma``, folded into the projection weights here).

        Returns:
            torch.Tensor: ``(batch, length, emb_dim)``.
        """
        weight = self.qkv.weight if in_scale is None else self.qkv.weight * in_scale
        qkv = F.linear(x, weight).unflatten(-1, (3, self.n_heads, self.head_dim))
        # (batch, length, {q,k}, head, head_dim): queries and keys rotated in one pass, in place
        # when no autograd graph is recorded.
        rotate = self.rope.rotate_ if fast_inference() else self.rope.rotate
        qk = rotate(qkv[:, :, :2], seq_dim=-4)
        out = F.scaled_dot_product_attention(
            qk[:, :, 0].transpose(1, 2),
            qk[:, :, 1].transpose(1, 2),
            qkv[:, :, 2].transpose(1, 2),
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.aggregate_heads(out.transpose(1, 2).flatten(2))


class MultiHeadCrossAttention(nn.Module):
    """Multi-head cross-attention: ``(n, q_len, dim)`` queries over ``(n, kv_len, dim)`` keys.

    ``softmax(Q K^T / sqrt(d_head) + bias) V`` per head, then ``out_proj``; ``kv_proj`` gives
    every head's key and value side by side (``(head, {k, v}, d_head)``), as the SFC-CA authors'
    layer does. No position embedding: a caller that needs positions passes an additive
    ``bias`` ``(1, n_heads, q_len, kv_len)``.

    Without an autograd graph (inference), items are attended in chunks whose attention scores
    hold at most :attr:`max_inference_scores` values (:func:`~asteroid_lir.layers.chunks.
    map_chunks`): the same outputs, and the peak memory no longer grows with
    ``n * q_len * kv_len``.

    Args:
        dim (int): feature size of queries and keys/values, and the attention size.
        n_heads (int): number of heads (``dim`` must be divisible by it).
    """

    max_inference_scores: int = 1 << 22

    def __init__(self, dim: int, n_heads: int) -> None:
        super().__init__()
        if n_heads < 1 or dim % n_heads:
            raise ValueError(f"The attention size {dim} is not divisible by n_heads={n_heads}.")
        self.n_heads, self.head_dim = n_heads, dim // n_heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.kv_proj = nn.Linear(dim, 2 * dim, bias=False)
        self.out_proj = nn.Linear(dim, dim, bias=False)

    def project(
        self, kv: torch.Tensor, query: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-head queries, keys and values ``(n, n_heads, length, d_head)``.

        A query batch of one (shared learnable queries) is projected once and broadcast.
        """
        n, kv_len, _ = kv.shape
        q_batch, q_len, _ = query.shape
        q = self.q_proj(query).view(q_batch, q_len, self.n_heads, self.head_dim).transpose(1, 2)
        k, v = (
            self.kv_proj(kv)
            .view(n, kv_len, self.n_heads, 2, self.head_dim)
            .transpose(1, 2)
            .unbind(dim=3)
        )
        return q.expand(n, -1, -1, -1), k, v

    def attend(
        self, kv: torch.Tensor, query: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The attention output ``(n, q_len, dim)`` of all items at once."""
        q, k, v = self.project(kv, query)
        mask = None if bias is None else bias.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(kv.shape[0], q.shape[2], -1))

    def inference_chunk(self, q_len: int, kv_len: int) -> int:
        """Items per chunk of an inference pass (see the class docstring)."""
        return self.max_inference_scores // (self.n_heads * q_len * kv_len)

    def forward(
        self, kv: torch.Tensor, query: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Cross-attend ``query`` over ``kv``.

        Args:
            kv (torch.Tensor): ``(n, kv_len, dim)``.
            query (torch.Tensor): ``(n, q_len, dim)`` or ``(1, q_len, dim)`` (shared queries).
            bias (torch.Tensor, optional): additive bias ``(1, n_heads, q_len, kv_len)``.

        Returns:
            torch.Tensor: ``(n, q_len, dim)``.
        """
        if not fast_inference():
            return self.attend(kv, query, bias)
        chunk = self.inference_chunk(query.shape[1], kv.shape[1])
        return map_chunks(self.attend, kv, chunk, query, bias)

    def attention_weights(
        self, kv: torch.Tensor, query: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The attention probabilities ``(n, n_heads, q_len, kv_len)``, computed explicitly."""
        q, k, _ = self.project(kv, query)
        logits = q @ k.transpose(-1, -2) * self.head_dim**-0.5
        if bias is not None:
            logits = logits + bias.to(logits.dtype)
        return logits.softmax(dim=-1)
