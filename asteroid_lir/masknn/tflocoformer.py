"""TF-Locoformer: Locoformer blocks on the frequency and time axes of a TF latent.

Modules, from the smallest up:

- :class:`RMSGroupNorm`: RMS normalisation of each of ``G`` channel groups of every TF bin.
- :class:`RotaryEmbedding`: rotary position embedding (RoPE) of interleaved channel pairs.
- :class:`RotaryMultiHeadSelfAttention`: multi-head self-attention with RoPE on queries and keys,
  computed by ``torch.nn.functional.scaled_dot_product_attention``.
- :class:`ConvSwiGLUFFN`: convolutional SwiGLU feed-forward network (Conv1d up, SwiGLU,
  ConvTranspose1d down).
- :class:`LocoformerBlock`: Macaron block ``x + FFN(norm x)``, ``x + MHSA(norm x)``,
  ``x + FFN(norm x)`` on any sequence ``(batch, length, channels)`` (TUSS runs it on sequences that
  carry prompt tokens).
- :class:`TFLocoformerBlock`: a Locoformer block along frequency, then one along time, on a latent
  ``(batch, channels, frames, freqs)``.
- :class:`TFLocoformer`: the separator, stacked real/imaginary STFT ``(batch, 2, frames, freqs)``
  -> Conv2d + GroupNorm -> TF-Locoformer blocks -> ConvTranspose2d ->
  ``(batch, n_src, 2, frames, freqs)``.

The computations and the parameter names follow MERL's reference implementation (ESPnet
separator ``tflocoformer_separator.py`` of merlresearch/tf-locoformer 1.0.1, with RoPE from
``rotary-embedding-torch`` 0.6.1), so that its state dicts load and the outputs agree (tests compare
the two). Deliberate differences, all for speed and memory and none changing the function:

- attention runs through ``scaled_dot_product_attention`` with its default backend choice (the
  reference forces the "math" backend, which materialises every ``L x L`` attention matrix and
  runs a masked safe-softmax over it; the fused CPU kernel keeps memory linear in ``L``);
- the RMSGroupNorm gains are folded into the weights of the layer that follows the norm;
- the FFN keeps the channels-last layout of the sequence and computes the ConvTranspose1d (for
  a shift of 1) as the equivalent Conv1d with flipped kernels, which produces exactly the samples
  that the reference keeps after cropping;
- the latent stays channels-last (``torch.channels_last``) between blocks, so that the frequency
  path needs no copy and the time path one transpose each way;
- RoPE rotates queries and keys together as one complex multiplication.

References:
    [1] K. Saijo, G. Wichern, F. G. Germain, Z. Pan and J. Le Roux, "TF-Locoformer: Transformer
    with Local Modeling by Convolution for Speech Separation and Enhancement", IWAENC 2024.
    [2] J. Su et al., "RoFormer: Enhanced Transformer with Rotary Position Embedding",
    Neurocomputing, 2024.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..filterbanks import BandSplitDecoder, BandSplitEncoder, SFCDecoder, SFCEncoder
from .gating import GatingModule
from .refinement import RefinementCore

__all__ = [
    "ConvSwiGLUFFN",
    "LocoformerBlock",
    "RMSGroupNorm",
    "RotaryEmbedding",
    "RotaryMultiHeadSelfAttention",
    "TFLocoformer",
    "TFLocoformerBlock",
]

FFN_TYPES = ("swiglu_conv1d",)
NORM_TYPES = ("rmsgroupnorm", "layernorm")


class RMSGroupNorm(nn.Module):
    """Root-mean-square normalisation of channel groups, applied to every position separately.

    The ``dim`` channels (last axis) are split into ``num_groups`` groups of ``dim // num_groups``;
    each group is divided by ``rms + eps`` (eps added to the RMS, not inside the square root, as
    in the reference) and the result is scaled by a learnt gain ``gamma`` per channel.

    Args:
        num_groups (int): number of groups ``G``.
        dim (int): number of channels, a multiple of ``num_groups``.
        eps (float): added to the RMS of each group.

    References:
        [1] Saijo et al., IWAENC 2024 (see module docstring).
    """

    def __init__(self, num_groups: int, dim: int, eps: float = 1e-5):
        super().__init__()
        if num_groups < 1 or dim % num_groups != 0:
            raise ValueError(
                f"dim={dim} must be a positive multiple of num_groups={num_groups} in RMSGroupNorm."
            )
        self.num_groups = num_groups
        self.dim = dim
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(dim))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised input before the gain ``gamma`` (same shape as ``x``)."""
        groups = x.unflatten(-1, (self.num_groups, self.dim // self.num_groups))
        rms = torch.linalg.vector_norm(groups, dim=-1, keepdim=True) * (
            (self.dim // self.num_groups) ** -0.5
        )
        return (groups / (rms + self.eps)).flatten(-2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` of shape ``(..., dim)``.

        Args:
            x (torch.Tensor): input, channels last.

        Returns:
            torch.Tensor: same shape.
        """
        return self.normalize(x) * self.gamma

    def extra_repr(self) -> str:
        return f"num_groups={self.num_groups}, dim={self.dim}, eps={self.eps}"


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
        cdtype = torch.complex64 if x.dtype == torch.float32 else torch.complex128
        rot = self.rotations(x.shape[seq_dim], x.device).to(cdtype)
        rot = rot.view((rot.shape[0],) + (1,) * (-seq_dim - 2) + (rot.shape[1],))
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
        cdtype = torch.complex64 if x.dtype == torch.float32 else torch.complex128
        rot = self.rotations(x.shape[seq_dim], x.device).to(cdtype)
        rot = rot.view((rot.shape[0],) + (1,) * (-seq_dim - 2) + (rot.shape[1],))
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

    The attention itself is ``torch.nn.functional.scaled_dot_product_attention`` with PyTorch's
    default backend choice: on CPU and GPU this is a fused kernel that never stores the
    ``length x length`` matrix, so memory grows linearly with the sequence length.

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
        if torch.is_grad_enabled():
            qk = self.rope.rotate(qkv[:, :, :2], seq_dim=-4)
        else:
            qk = self.rope.rotate_(qkv[:, :, :2], seq_dim=-4)
        out = F.scaled_dot_product_attention(
            qk[:, :, 0].transpose(1, 2),
            qk[:, :, 1].transpose(1, 2),
            qkv[:, :, 2].transpose(1, 2),
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.aggregate_heads(out.transpose(1, 2).flatten(2))


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
        if torch.is_grad_enabled():
            return self.dropout(a * F.silu(b))
        return self.dropout(F.silu(b).mul_(a))  # one large allocation less

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


def _as_list(value, name: str) -> list:
    if isinstance(value, (str, int)):
        return [value]
    value = list(value)
    if len(value) not in (1, 2):
        raise ValueError(f"{name} must have 1 or 2 entries (2: Macaron style), got {value}.")
    return value


class LocoformerBlock(nn.Module):
    """Locoformer block on a sequence ``(batch, length, channels)``.

    With two FFNs (Macaron style, the released configurations)::

        x = x + FFN_1(norm(x))      # ffn.1 / ffn_norm.1
        x = x + MHSA(norm(x))       # attn / attn_norm (rotary multi-head self-attention)
        x = x + FFN_0(norm(x))      # ffn.0 / ffn_norm.0

    without the 1/2 factor of the Macaron paper (the reference leaves it out too, and its
    pre-trained models depend on that). With one FFN only the last line follows the attention.
    ``ffn_type`` and ``ffn_hidden_dim`` list the FFNs in the order they are applied; the module
    lists (``ffn``, ``ffn_norm``) hold them in reverse, as the reference does. Nothing here
    depends on what the positions of the sequence are (frames, frequencies, prompt tokens).

    Args:
        emb_dim (int): channels.
        norm_type (str): ``"rmsgroupnorm"`` or ``"layernorm"``.
        num_groups (int): groups of the RMSGroupNorm.
        n_heads (int): attention heads.
        attention_dim (int): total query/key/value size.
        ffn_type (str or list of str): ``"swiglu_conv1d"`` for each FFN.
        ffn_hidden_dim (int or list of int): hidden channels of each FFN.
        conv1d_kernel (int): kernel length of the FFN convolutions.
        conv1d_shift (int): stride of the FFN convolutions.
        dropout (float): dropout probability.
        eps (float): epsilon of the norms.
        rope (RotaryEmbedding, optional): position embedding to use (default: its own).

    References:
        [1] Saijo et al., IWAENC 2024 (see module docstring).
    """

    #: In inference, the largest intermediate tensor of one chunk of sequences (bytes).
    chunk_bytes: int = 128 * 2**20

    def __init__(
        self,
        emb_dim: int = 128,
        norm_type: str = "rmsgroupnorm",
        num_groups: int = 4,
        n_heads: int = 4,
        attention_dim: int = 128,
        ffn_type: str | Sequence[str] = ("swiglu_conv1d", "swiglu_conv1d"),
        ffn_hidden_dim: int | Sequence[int] = (384, 384),
        conv1d_kernel: int = 4,
        conv1d_shift: int = 1,
        dropout: float = 0.0,
        eps: float = 1e-5,
        rope: RotaryEmbedding | None = None,
    ):
        super().__init__()
        ffn_types = _as_list(ffn_type, "ffn_type")
        ffn_dims = _as_list(ffn_hidden_dim, "ffn_hidden_dim")
        if len(ffn_types) != len(ffn_dims):
            raise ValueError(
                f"ffn_type {ffn_types} and ffn_hidden_dim {ffn_dims} must have the same length."
            )
        bad = [t for t in ffn_types if t not in FFN_TYPES]
        if bad:
            raise ValueError(f"Unsupported ffn_type {bad}; supported: {list(FFN_TYPES)}.")
        if norm_type not in NORM_TYPES:
            raise ValueError(f"Unknown norm_type {norm_type!r}; choose from {list(NORM_TYPES)}.")
        self.macaron_style = len(ffn_types) == 2

        def make_norm() -> nn.Module:
            if norm_type == "rmsgroupnorm":
                return RMSGroupNorm(num_groups, emb_dim, eps=eps)
            return nn.LayerNorm(emb_dim, eps=eps)

        self.ffn_norm = nn.ModuleList()
        self.ffn = nn.ModuleList()
        for dim in ffn_dims[::-1]:
            self.ffn_norm.append(make_norm())
            self.ffn.append(
                ConvSwiGLUFFN(emb_dim, dim, conv1d_kernel, conv1d_shift, dropout=dropout)
            )
        self.attn_norm = make_norm()
        self.attn = RotaryMultiHeadSelfAttention(
            emb_dim, attention_dim=attention_dim, n_heads=n_heads, dropout=dropout, rope=rope
        )
        # Widest intermediate per position (elements): q|k|v or the FFN's 2 * hidden channels.
        self._widest = max(3 * attention_dim, 2 * max(ffn_dims), emb_dim)

    @staticmethod
    def _normed(norm: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        # RMSGroupNorm's gain is handed to the next layer, which folds it into its weights.
        if isinstance(norm, RMSGroupNorm):
            return norm.normalize(x), norm.gamma
        return norm(x), None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Without an autograd graph (inference) the batch is processed in chunks of sequences
        whose largest intermediate tensor (queries/keys/values or the FFN's hidden channels)
        stays below :attr:`chunk_bytes`: the sequences are independent, so the result is the
        same, and the memory of one pass is then the input and output plus one chunk's working
        set, whatever the input length. The default (128 MiB) leaves a 4-s 8-kHz input of the S
        preset unchunked: measured here, chunks small enough to stay below glibc's 32-MiB mmap
        threshold saved the ~2 s of page-fault system time of such a pass with one thread, but
        cost more than that with two threads on a shared machine (more, smaller parallel
        regions), so chunking is a memory bound, not a speed-up.

        Args:
            x (torch.Tensor): ``(batch, length, emb_dim)``.

        Returns:
            torch.Tensor: ``(batch, length, emb_dim)``.
        """
        n_seq = x.shape[0]
        if torch.is_grad_enabled() or torch.jit.is_tracing() or n_seq < 2:
            return self._forward(x)
        per_seq = x.shape[1] * self._widest * x.element_size()
        chunk = max(1, self.chunk_bytes // max(1, per_seq))
        if chunk >= n_seq:
            return self._forward(x)
        out = torch.empty_like(x)
        for start in range(0, n_seq, chunk):
            out[start : start + chunk] = self._forward(x[start : start + chunk])
        return out

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        # Residuals are added in place to the sublayer outputs (fresh tensors whose backward
        # does not need them), which saves one large allocation per sublayer.
        if self.macaron_style:
            x = self.ffn[1](*self._normed(self.ffn_norm[1], x)).add_(x)
        x = self.attn(*self._normed(self.attn_norm, x)).add_(x)
        return self.ffn[0](*self._normed(self.ffn_norm[0], x)).add_(x)


class TFLocoformerBlock(nn.Module):
    """A Locoformer block along frequency and one along time, on ``(batch, chan, frames, freqs)``.

    ``tf_order="ft"`` (default) models the frequency axis first (``freq_path``: every frame is a
    sequence of frequency bins), then the time axis (``frame_path``: every bin is a sequence of
    frames); ``"tf"`` the other way round. Output and input have the same shape; the output is
    channels-last in memory (``torch.channels_last``), which the next block reads without a copy.

    Args:
        emb_dim (int): channels of the latent.
        tf_order (str): ``"ft"`` or ``"tf"``.
        rope_freq (RotaryEmbedding, optional): position embedding of the frequency path.
        rope_time (RotaryEmbedding, optional): position embedding of the time path.
        **kwargs: the other :class:`LocoformerBlock` arguments (shared by both paths).

    References:
        [1] Saijo et al., IWAENC 2024 (see module docstring).
    """

    def __init__(
        self,
        emb_dim: int = 128,
        tf_order: str = "ft",
        rope_freq: RotaryEmbedding | None = None,
        rope_time: RotaryEmbedding | None = None,
        **kwargs,
    ):
        super().__init__()
        if tf_order not in ("ft", "tf"):
            raise ValueError(f"tf_order must be 'ft' or 'tf', got {tf_order!r}.")
        self.tf_order = tf_order
        self.freq_path = LocoformerBlock(emb_dim, rope=rope_freq, **kwargs)
        self.frame_path = LocoformerBlock(emb_dim, rope=rope_time, **kwargs)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            z (torch.Tensor): latent ``(batch, emb_dim, frames, freqs)``, any memory layout.

        Returns:
            torch.Tensor: ``(batch, emb_dim, frames, freqs)``, channels-last in memory.
        """
        if z.ndim != 4:
            raise ValueError(
                f"TFLocoformerBlock expects (batch, channels, frames, freqs), got {tuple(z.shape)}."
            )
        x = z.permute(0, 2, 3, 1).contiguous()  # (B, T, F, C): free for a channels-last latent
        b, t, f, c = x.shape
        if self.tf_order == "ft":
            x = self.freq_path(x.view(b * t, f, c)).view(b, t, f, c)
            x = x.transpose(1, 2).contiguous()  # (B, F, T, C)
            x = self.frame_path(x.view(b * f, t, c)).view(b, f, t, c)
            x = x.transpose(1, 2).contiguous()
        else:
            x = x.transpose(1, 2).contiguous()
            x = self.frame_path(x.view(b * f, t, c)).view(b, f, t, c)
            x = x.transpose(1, 2).contiguous()
            x = self.freq_path(x.view(b * t, f, c)).view(b, t, f, c)
        return x.permute(0, 3, 1, 2)


#: Arguments of :class:`TFLocoformer` that the reference separator does not have.
_REFINEMENT_ARGS = (
    "n_blocks",
    "n_iters",
    "head_per_block",
    "gate_kernel_size",
    "min_steps",
    "gumbel_tau",
    "exit_is_final",
    "encoder",
    "front_end",
)

#: Front ends by name: ``conv`` (the reference's Conv2d + GroupNorm / ConvTranspose2d) or a pair
#: of band encoder/decoder classes from :mod:`asteroid_lir.filterbanks`.
FRONT_ENDS = {
    "conv": None,
    "band_split": (BandSplitEncoder, BandSplitDecoder),
    "sfc": (SFCEncoder, SFCDecoder),
}


class TFLocoformer(RefinementCore):
    """TF-Locoformer separator on the refinement core: stacked real/imaginary STFT in, spectra out.

    ``Conv2d(2 -> emb_dim, 3x3) + GroupNorm(1, emb_dim)`` (:meth:`embed`) -> the refinement
    schedule ``B_N^{I_N} o ... o B_1^{I_1}`` whose sub-blocks are :class:`TFLocoformerBlock`
    (``n_blocks`` distinct blocks of ``n_layers`` TF-Locoformer blocks, block ``b`` applied
    ``n_iters[b]`` times with shared weights) -> ``ConvTranspose2d(emb_dim -> 2 * n_src, 3x3)``
    (:meth:`head`). The output is the sources' complex spectra (no mask). The reference model is
    ``(n_blocks, n_iters) = (1, 1)``; its state-dict names load after
    :meth:`convert_espnet_state_dict` (``blocks.{j}`` -> ``blocks.0.{j}``, ``deconv`` ->
    ``deconv.0``). Anytime steps, one head per block (progressive training) and the
    frequency-pooled early-exit gate come from :class:`~asteroid_lir.masknn.RefinementCore`.

    The constructor arguments are those of the reference's ``separator_conf`` (``num_spk`` is
    ``n_src``; ``input_dim`` and ``flash_attention`` do not apply), plus the refinement ones.

    Args:
        n_src (int): number of sources.
        n_layers (int): TF-Locoformer blocks per refinement block (sub-blocks ``S``; the
            reference's number of blocks when ``n_blocks=1``).
        emb_dim (int): channels of the latent.
        norm_type (str): ``"rmsgroupnorm"`` or ``"layernorm"``.
        num_groups (int): groups of the RMSGroupNorm.
        tf_order (str): ``"ft"`` (frequency path first) or ``"tf"``.
        n_heads (int): attention heads.
        attention_dim (int): total query/key/value size.
        ffn_type (str or list of str): FFN types, in the order they are applied.
        ffn_hidden_dim (int or list of int): FFN hidden sizes, same order.
        conv1d_kernel (int): kernel length of the FFN convolutions.
        conv1d_shift (int): stride of the FFN convolutions.
        dropout (float): dropout probability.
        eps (float): epsilon of the norms.
        n_blocks (int): distinct refinement blocks ``N``.
        n_iters (int or list of int): iterations of each block ``I``.
        head_per_block (bool): one output head per block (progressive training).
        gate_kernel_size (int, optional): frames spanned by an early-exit gate
            (:class:`GatingModule` on the frequency-pooled latent); ``None``: no gate.
        min_steps, gumbel_tau, exit_is_final: gate settings, see :class:`RefinementCore`.
        encoder (str): front end: ``"conv"`` (the reference), ``"band_split"`` or ``"sfc"``
            (SFC-CA): the blocks then run on ``n_bands`` band features instead of the bins.
        front_end (dict): arguments of the band encoder and decoder (``sample_rate``, ``n_fft``,
            ``band_config``, ``n_bands``, ...; keys ``encoder``/``decoder`` hold arguments for
            one side only).

    References:
        [1] Saijo et al., IWAENC 2024 (see module docstring).
        [2] "Latent Iterative Refinement for Modular Source Separation", Sec. 2.
    """

    heads_name = "deconv"

    def __init__(
        self,
        n_src: int = 2,
        n_layers: int = 6,
        emb_dim: int = 128,
        norm_type: str = "rmsgroupnorm",
        num_groups: int = 4,
        tf_order: str = "ft",
        n_heads: int = 4,
        attention_dim: int = 128,
        ffn_type: str | Sequence[str] = ("swiglu_conv1d", "swiglu_conv1d"),
        ffn_hidden_dim: int | Sequence[int] = (384, 384),
        conv1d_kernel: int = 4,
        conv1d_shift: int = 1,
        dropout: float = 0.0,
        eps: float = 1e-5,
        n_blocks: int = 1,
        n_iters: int | Sequence[int] = 1,
        head_per_block: bool = False,
        gate_kernel_size: int | None = None,
        min_steps: int = 1,
        gumbel_tau: float = 1.0,
        exit_is_final: bool = True,
        encoder: str = "conv",
        front_end: dict | None = None,
    ):
        if encoder not in FRONT_ENDS:
            raise ValueError(f"encoder must be one of {sorted(FRONT_ENDS)}, got {encoder!r}.")
        front_end = dict(front_end or {})
        if encoder != "conv" and not {"sample_rate", "n_fft"} <= set(front_end):
            raise ValueError(
                f"encoder={encoder!r} needs front_end={{'sample_rate': ..., 'n_fft': ..., ...}} "
                "(TFLocoformerNet fills them in)."
            )
        if n_src < 1 or n_layers < 1:
            raise ValueError(f"n_src and n_layers must be >= 1, got {n_src} and {n_layers}.")
        block_kwargs = dict(
            tf_order=tf_order,
            norm_type=norm_type,
            num_groups=num_groups,
            n_heads=n_heads,
            attention_dim=attention_dim,
            ffn_type=[str(t) for t in _as_list(ffn_type, "ffn_type")],
            ffn_hidden_dim=[int(d) for d in _as_list(ffn_hidden_dim, "ffn_hidden_dim")],
            conv1d_kernel=conv1d_kernel,
            conv1d_shift=conv1d_shift,
            dropout=dropout,
            eps=eps,
        )
        gate = None if gate_kernel_size is None else GatingModule(emb_dim, gate_kernel_size)
        if encoder == "conv":
            make_head = partial(nn.ConvTranspose2d, emb_dim, 2 * n_src, (3, 3), padding=(1, 1))
        else:
            shared = {k: v for k, v in front_end.items() if k not in ("encoder", "decoder")}
            decoder_args = {**shared, **front_end.get("decoder", {})}
            make_head = partial(FRONT_ENDS[encoder][1], emb_dim, n_src, **decoder_args)
        super().__init__(
            lambda: TFLocoformerBlock(emb_dim, **block_kwargs),
            make_head,
            n_blocks=n_blocks,
            n_sub_blocks=n_layers,
            n_iters=n_iters,
            head_per_block=head_per_block,
            gate=gate,
            min_steps=min_steps,
            gumbel_tau=gumbel_tau,
            exit_is_final=exit_is_final,
        )
        self.n_src = n_src
        self.n_layers = n_layers
        self.emb_dim = emb_dim
        self.block_kwargs = block_kwargs
        self.encoder = encoder
        self.front_end = front_end
        if encoder == "conv":
            self.conv = nn.Sequential(
                nn.Conv2d(2, emb_dim, (3, 3), padding=(1, 1)),
                nn.GroupNorm(1, emb_dim, eps=eps),
            )
        else:  # band features (batch, emb_dim, frames, n_bands) replace the frequency axis
            shared = {k: v for k, v in front_end.items() if k not in ("encoder", "decoder")}
            encoder_args = {**shared, **front_end.get("encoder", {})}
            self.band_encoder = FRONT_ENDS[encoder][0](emb_dim, **encoder_args)

    @property
    def stem(self) -> nn.Module:
        """The module that turns the spectrogram into ``z_0`` (``conv`` or ``band_encoder``)."""
        return self.conv if self.encoder == "conv" else self.band_encoder

    def make_block(self) -> TFLocoformerBlock:
        """A new TF-Locoformer block with this separator's settings."""
        return TFLocoformerBlock(self.emb_dim, **self.block_kwargs)

    def embed(self, spec: torch.Tensor) -> tuple[torch.Tensor, object]:
        """Latent ``z_0`` of a spectrogram, and the context the band decoders need.

        Args:
            spec (torch.Tensor): ``(batch, 2, frames, freqs)``, real and imaginary parts.

        Returns:
            tuple: ``z_0`` ``(batch, emb_dim, frames, freqs or n_bands)``, channels-last in
            memory, and the decoder context (``None`` but for SFC-CA's adaptive queries).
        """
        if spec.ndim != 4 or (not torch.jit.is_tracing() and spec.shape[1] != 2):
            raise ValueError(
                "TFLocoformer expects a stacked real/imaginary spectrogram (batch, 2, frames, "
                f"freqs), got shape {tuple(spec.shape)}."
            )
        if self.encoder == "conv":
            z, context = self.conv(spec.contiguous(memory_format=torch.channels_last)), None
        else:
            z, context = self.band_encoder.forward_with_context(spec)
        return z.contiguous(memory_format=torch.channels_last), context

    def head(
        self,
        z: torch.Tensor,
        head_idx: int = -1,
        spec: torch.Tensor | None = None,
        context: object = None,
    ) -> torch.Tensor:
        """The sources' spectra from a latent.

        Args:
            z (torch.Tensor): ``(batch, emb_dim, frames, freqs or n_bands)``.
            head_idx (int): which head (one per block with ``head_per_block``).
            spec (torch.Tensor, optional): the mixture ``(batch, 2, frames, freqs)``; needed by
                the band decoders (their masks apply to it).
            context: the decoder context returned by :meth:`embed`.

        Returns:
            torch.Tensor: ``(batch, n_src, 2, frames, freqs)`` (real, imaginary).
        """
        if self.encoder == "conv":
            return self.deconv[head_idx](z).unflatten(1, (self.n_src, 2))
        return self.deconv[head_idx](z, spec, context)

    def forward(self, spec: torch.Tensor, n_steps: int | None = None) -> torch.Tensor:
        """Separate: :meth:`embed`, the refinement steps (gated if there is a gate), :meth:`head`.

        Args:
            spec (torch.Tensor): ``(batch, 2, frames, freqs)``.
            n_steps (int, optional): run only the first ``n_steps`` steps (a gated separator
                takes exactly that many).

        Returns:
            torch.Tensor: ``(batch, n_src, 2, frames, freqs)``.
        """
        z, context = self.embed(spec)
        if self.gated:
            return self.head(self.run_gated(z, n_steps)[0], 0, spec, context)
        block_idx, z = self.run(z, n_steps)
        return self.head(z, self.head_index(block_idx), spec, context)

    def get_config(self) -> dict:
        """Arguments to re-instantiate the separator."""
        kw = self.block_kwargs
        return {
            "n_src": self.n_src,
            "n_layers": self.n_layers,
            "emb_dim": self.emb_dim,
            **{k: list(v) if isinstance(v, list) else v for k, v in kw.items()},
            "n_blocks": self.n_blocks,
            "n_iters": list(self.n_iters),
            "head_per_block": self.head_per_block,
            "gate_kernel_size": self.gate.kernel_size if self.gated else None,
            "min_steps": self.min_steps,
            "gumbel_tau": self.gumbel_tau,
            "exit_is_final": self.exit_is_final,
            "encoder": self.encoder,
            "front_end": dict(self.front_end),
        }

    def reference_config(self) -> dict:
        """The reference's ``separator_conf`` of a one-block, one-pass separator (``num_spk``)."""
        if self.n_blocks != 1 or self.n_steps != 1 or self.gated or self.encoder != "conv":
            raise ValueError("Only a (1, n_layers, 1) separator without a gate has a reference.")
        conf = {k: v for k, v in self.get_config().items() if k not in _REFINEMENT_ARGS}
        conf["num_spk"] = conf.pop("n_src")
        return conf

    @staticmethod
    def convert_espnet_state_dict(state_dict: dict) -> dict:
        """Rename the reference's separator keys to ours (``blocks.{j}.…`` -> ``blocks.0.{j}.…``,
        ``deconv.…`` -> ``deconv.0.…``).

        Args:
            state_dict (dict): the ESPnet separator's state dict, without the ``separator.``
                prefix.

        Returns:
            dict: a state dict for :class:`TFLocoformer`.
        """
        out = {}
        for key, value in state_dict.items():
            if key.startswith("blocks."):
                key = "blocks.0." + key[len("blocks.") :]
            elif key.startswith("deconv."):
                key = "deconv.0." + key[len("deconv.") :]
            out[key] = value
        return out
