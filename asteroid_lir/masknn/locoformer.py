"""Locoformer blocks: on a sequence, and along the frequency and time axes of a TF latent.

- :class:`LocoformerBlock`: Macaron block ``x + FFN(norm x)``, ``x + MHSA(norm x)``,
  ``x + FFN(norm x)`` on any sequence ``(batch, length, channels)`` (TUSS runs it on sequences
  that carry prompt tokens).
- :class:`TFLocoformerBlock`: a Locoformer block along frequency, then one along time, on a
  latent ``(batch, channels, frames, freqs)``.

The computations and the parameter names follow MERL's reference implementation (ESPnet
separator ``tflocoformer_separator.py`` of merlresearch/tf-locoformer 1.0.1), so that its state
dicts load and the outputs agree (tests compare the two). Deliberate differences, all for speed
and memory and none changing the function: the attention is ``scaled_dot_product_attention``
(:mod:`~asteroid_lir.layers.attention`), the RMSGroupNorm gains are folded into the weights of
the layer that follows the norm, the FFN keeps the channels-last layout
(:class:`~asteroid_lir.layers.ffn.ConvSwiGLUFFN`), and the latent stays channels-last in memory
between blocks, so that the frequency path needs no copy and the time path one transpose each
way.

References:
    [1] K. Saijo, G. Wichern, F. G. Germain, Z. Pan and J. Le Roux, "TF-Locoformer: Transformer
    with Local Modeling by Convolution for Speech Separation and Enhancement", IWAENC 2024.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from ..layers.attention import RotaryEmbedding, RotaryMultiHeadSelfAttention
from ..layers.chunks import fast_inference, map_chunks
from ..layers.ffn import FFN_TYPES, ConvSwiGLUFFN
from ..layers.norms import RMSGroupNorm, make_norm

__all__ = [
    "BLOCK_DEFAULTS",
    "TSE_BLOCK_DEFAULTS",
    "LocoformerBlock",
    "TFLocoformerBlock",
    "as_ffn_list",
    "block_config",
    "locoformer_factory",
    "stack_of_blocks",
]


def as_ffn_list(value, name: str) -> list:
    """One FFN setting (str or int) or a list of one or two, as a list (two: Macaron style)."""
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
        [1] Saijo et al., IWAENC 2024 (see the module docstring).
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
        ffn_types = as_ffn_list(ffn_type, "ffn_type")
        ffn_dims = as_ffn_list(ffn_hidden_dim, "ffn_hidden_dim")
        if len(ffn_types) != len(ffn_dims):
            raise ValueError(
                f"ffn_type {ffn_types} and ffn_hidden_dim {ffn_dims} must have the same length."
            )
        bad = [t for t in ffn_types if t not in FFN_TYPES]
        if bad:
            raise ValueError(f"Unsupported ffn_type {bad}; supported: {list(FFN_TYPES)}.")
        self.macaron_style = len(ffn_types) == 2
        self.emb_dim = emb_dim
        self.config = dict(
            norm_type=norm_type,
            num_groups=num_groups,
            n_heads=n_heads,
            attention_dim=attention_dim,
            ffn_type=[str(t) for t in ffn_types],
            ffn_hidden_dim=[int(d) for d in ffn_dims],
            conv1d_kernel=conv1d_kernel,
            conv1d_shift=conv1d_shift,
            dropout=dropout,
            eps=eps,
        )

        def norm() -> nn.Module:
            return make_norm(norm_type, emb_dim, num_groups, eps)

        self.ffn_norm = nn.ModuleList()
        self.ffn = nn.ModuleList()
        for dim in ffn_dims[::-1]:
            self.ffn_norm.append(norm())
            self.ffn.append(
                ConvSwiGLUFFN(emb_dim, dim, conv1d_kernel, conv1d_shift, dropout=dropout)
            )
        self.attn_norm = norm()
        self.attn = RotaryMultiHeadSelfAttention(
            emb_dim, attention_dim=attention_dim, n_heads=n_heads, dropout=dropout, rope=rope
        )
        # Widest intermediate per position (elements): q|k|v or the FFN's 2 * hidden channels.
        self._widest = max(3 * attention_dim, 2 * max(ffn_dims), emb_dim)

    def get_config(self) -> dict:
        """Constructor arguments (without the shared ``rope``)."""
        return {"emb_dim": self.emb_dim, **self.config}

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
        if not fast_inference():
            return self._forward(x)
        per_seq = x.shape[1] * self._widest * x.element_size()
        return map_chunks(self._forward, x, self.chunk_bytes // max(1, per_seq))

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
        time_ffn_hidden_dim (int or list of int, optional): FFN sizes of the time path
            (default: those of the frequency path, ``ffn_hidden_dim``).
        time_conv1d_kernel (int, optional): FFN kernel of the time path (default
            ``conv1d_kernel``; the TUSS reference's cross-prompt module uses 4 along frequency
            and 1 along time).
        **kwargs: the other :class:`LocoformerBlock` arguments (shared by both paths).

    References:
        [1] Saijo et al., IWAENC 2024 (see the module docstring).
    """

    def __init__(
        self,
        emb_dim: int = 128,
        tf_order: str = "ft",
        rope_freq: RotaryEmbedding | None = None,
        rope_time: RotaryEmbedding | None = None,
        time_ffn_hidden_dim: int | Sequence[int] | None = None,
        time_conv1d_kernel: int | None = None,
        **kwargs,
    ):
        super().__init__()
        if tf_order not in ("ft", "tf"):
            raise ValueError(f"tf_order must be 'ft' or 'tf', got {tf_order!r}.")
        self.tf_order = tf_order
        time_kwargs = dict(kwargs)
        if time_ffn_hidden_dim is not None:
            time_kwargs["ffn_hidden_dim"] = time_ffn_hidden_dim
        if time_conv1d_kernel is not None:
            time_kwargs["conv1d_kernel"] = time_conv1d_kernel
        self.freq_path = LocoformerBlock(emb_dim, rope=rope_freq, **kwargs)
        self.frame_path = LocoformerBlock(emb_dim, rope=rope_time, **time_kwargs)

    def get_config(self) -> dict:
        """Constructor arguments of a block whose paths share their settings."""
        return {"tf_order": self.tf_order, **self.freq_path.get_config()}

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


#: Keys of a stack configuration and their defaults (the reference's cross-prompt module).
BLOCK_DEFAULTS: dict = {
    "attention_dim": 128,
    "freq_ffn_hidden_dim": 384,
    "freq_conv1d_kernel": 4,
    "time_ffn_hidden_dim": 384,
    "time_conv1d_kernel": 1,
    "conv1d_shift": 1,
}
#: The settings of the reference's medium conditional TSE module (the second stack's default).
TSE_BLOCK_DEFAULTS: dict = {
    "attention_dim": 96,
    "freq_ffn_hidden_dim": 256,
    "freq_conv1d_kernel": 4,
    "time_ffn_hidden_dim": 256,
    "time_conv1d_kernel": 4,
}


def block_config(conf: Mapping | None, what: str = "block") -> dict:
    """Complete and check a stack configuration (plain ints, every key of BLOCK_DEFAULTS).

    Args:
        conf: a partial configuration (missing keys take :data:`BLOCK_DEFAULTS`), or None.
        what: how error messages call it.

    Returns:
        dict: the full configuration.

    Raises:
        ValueError: unknown keys or non-positive values.
    """
    conf = dict(conf or {})
    unknown = sorted(set(conf) - set(BLOCK_DEFAULTS))
    if unknown:
        raise ValueError(
            f"Unknown key(s) {unknown} in the {what} configuration; known: {list(BLOCK_DEFAULTS)}."
        )
    out = {key: int(conf.get(key, default)) for key, default in BLOCK_DEFAULTS.items()}
    bad = {k: v for k, v in out.items() if v < 1}
    if bad:
        raise ValueError(f"The {what} configuration needs positive values, got {bad}.")
    return out


def locoformer_factory(
    emb_dim: int, conf: dict, n_heads: int, **block_args
) -> Callable[[], TFLocoformerBlock]:
    """A factory of TF-Locoformer blocks of one stack, sharing one RoPE per path (as the
    reference).

    Args:
        emb_dim (int): channels of the latent.
        conf (dict): the stack configuration (:func:`block_config`).
        n_heads (int): attention heads.
        **block_args: ``tf_order``, ``norm_type``, ``num_groups``, ``dropout``, ``eps``.

    Returns:
        callable: ``() -> TFLocoformerBlock``, a new block at every call.

    Raises:
        ValueError: an attention size that is not a multiple of ``n_heads``.
    """
    if conf["attention_dim"] % n_heads:
        raise ValueError(
            f"attention_dim={conf['attention_dim']} must be a multiple of n_heads={n_heads}."
        )
    head_dim = conf["attention_dim"] // n_heads
    rope_freq, rope_time = RotaryEmbedding(head_dim), RotaryEmbedding(head_dim)

    def make_block() -> TFLocoformerBlock:
        return TFLocoformerBlock(
            emb_dim,
            rope_freq=rope_freq,
            rope_time=rope_time,
            ffn_hidden_dim=[conf["freq_ffn_hidden_dim"]] * 2,
            conv1d_kernel=conf["freq_conv1d_kernel"],
            time_ffn_hidden_dim=[conf["time_ffn_hidden_dim"]] * 2,
            time_conv1d_kernel=conf["time_conv1d_kernel"],
            n_heads=n_heads,
            attention_dim=conf["attention_dim"],
            conv1d_shift=conf["conv1d_shift"],
            **block_args,
        )

    return make_block


def stack_of_blocks(
    n_blocks: int, emb_dim: int, conf: dict, n_heads: int, block_args: dict
) -> nn.ModuleList:
    """``n_blocks`` TF-Locoformer blocks sharing one RoPE per path (as the reference)."""
    if n_blocks < 1:
        raise ValueError(f"A stack needs at least one block, got {n_blocks}.")
    make_block = locoformer_factory(emb_dim, conf, n_heads, **block_args)
    return nn.ModuleList(make_block() for _ in range(n_blocks))
