"""TUSS separators: prompt-conditioned (TUSS) and unconditional band-wise TF-Locoformer stacks.

Both work on the stacked real/imaginary STFT ``(batch, 2, frames, freqs)`` and share one layout:

    band encoder -> first stack of TF-Locoformer blocks -> second stack -> band decoder (mask)

The band encoder/decoder pair is the band-split one of :mod:`asteroid_lir.filterbanks` (the
TUSS reference's) or SFC-CA (``encoder="sfc"``); either compresses the F bins of each frame
into K band features ``(batch, emb_dim, frames, K)``.

:class:`TUSSSeparator` (task-aware unified source separation [1]): every prompt name has a
learnable vector ``(emb_dim,)``, broadcast over the K bands. For prompts ``p_1 ... p_N`` the
time axis of the encoded mixture becomes ``[p_1, ..., p_N, SOS, frame_1, ..., frame_T]`` and the
*cross-prompt module* (first stack) models it, so that prompts and mixture condition each
other; the time path's rotary position embedding gives identical prompts different positions,
which is what lets two ``sfx`` prompts extract two different sounds. Each prompt's output
vector (one per band) then multiplies the mixture features element-wise, and the *conditional
TSE module* (second stack, shared by every prompt) and the decoder turn each product into one
source: ``(batch, N, 2, frames, freqs)``. Any number of prompts works.

:class:`UnconditionalSeparator` (the "unconditional model" of the TUSS slides, the reference's
``BSLocoformerStack``): the same stacks without prompts, and a decoder with a fixed number of
outputs.

Adaptive TUSS: the second stack (the conditional TSE module, "the same block for every prompt")
is a :class:`~asteroid_lir.masknn.RefinementCore` (paper Eq. 2-10; the options:
:class:`~asteroid_lir.masknn.band_stacks.BandTFStacks`) whose refined samples are the prompts'
conditioned latents, so the early-exit gate decides per (mixture, prompt). The defaults (one
block, one iteration, no gate) are the reference's module, weights and names.

Stack settings (``cross_prompt_block``, ``tse_block``, or ``first_block``/``second_block``) are
dicts with the keys of :data:`BLOCK_DEFAULTS`: the frequency path and the time path of a block
may have different FFN sizes and kernels (the reference's cross-prompt module uses kernel 4
along frequency and 1 along time), both FFNs of one path share them.

The TF-Locoformer blocks are :class:`~asteroid_lir.masknn.locoformer.TFLocoformerBlock` (one
RoPE per path shared by the blocks of a stack, as the reference). State-dict names follow the
reference (``cross_prompt_module.{i}.{freq_path|frame_path}.…``, ``cond_tse_module.{i}.…``
with ``i = block * n_tse_blocks + layer``, ``prompts.<name>``, ``sos_token``; a gate is
``gate.…``, the decoders of earlier blocks ``block_decoders.{b}.…``); the band-split weights
are ``encoder.band_modules.…`` / ``decoder.band_modules.…`` (see
:func:`~asteroid_lir.convert.merl.tuss_band_split_key_map`).

References:
    [1] K. Saijo, J. Ebbers, F. G. Germain, G. Wichern and J. Le Roux, "Task-aware unified
    source separation", ICASSP 2025.
    [2] K. Saijo et al., "TF-Locoformer", IWAENC 2024.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..layers.norms import make_norm
from ..tasks import PROMPT_NAMES  # the default prompts of TUSSSeparator
from .band_stacks import ENCODERS, BandTFStacks
from .locoformer import (  # the stack settings, re-exported (their home before)
    BLOCK_DEFAULTS,
    TSE_BLOCK_DEFAULTS,
    block_config,
    locoformer_factory,
)

__all__ = [
    "BLOCK_DEFAULTS",
    "ENCODERS",
    "PROMPT_NAMES",
    "TSE_BLOCK_DEFAULTS",
    "TUSSSeparator",
    "UnconditionalSeparator",
    "block_config",
    "locoformer_factory",
]


class TUSSSeparator(BandTFStacks):
    """Prompt-conditioned separator of TUSS: one output spectrum per prompt.

    The conditional TSE module is the refinement core of :class:`BandTFStacks`: every
    (item, prompt) pair is one refined sample, so anytime steps, iterations with shared weights
    and the early-exit gate act per prompt (a prompt whose gate says stop leaves the batch).

    Args:
        prompt_names (sequence of str): names of the learnable prompts.
        n_cross_prompt_blocks (int): TF-Locoformer blocks of the cross-prompt module.
        cross_prompt_block (dict): its settings (keys of :data:`BLOCK_DEFAULTS`).
        n_tse_blocks (int): TF-Locoformer blocks of the conditional TSE module (of each of its
            ``n_blocks`` refinement blocks: the sub-blocks).
        tse_block (dict): its settings (default: the reference's medium TSE module,
            :data:`TSE_BLOCK_DEFAULTS`).
        use_sos_token (bool): put a learnable start token between prompts and frames.
        cond_norm (bool): normalise the conditioned latents (an RMSGroupNorm or LayerNorm as
            ``norm_type``) before the TSE module. Not in the reference (default ``False``):
            the product of the two residual streams can be so large (an RMS of about 2,000 in
            the CPU mini models) that the TSE blocks' residual branches hardly move it, and
            the module, iterated or not, is bypassed.
        **stack_args: ``emb_dim``, ``num_groups``, ``n_heads``, ``sample_rate``, ``n_fft``,
            ``encoder``, ``band_config``, ``n_bands``, ``encoder_kwargs``, ``tf_order``,
            ``norm_type``, ``dropout``, ``eps`` (the encoder, decoder and blocks; defaults: the
            reference's ``medium`` model) and the refinement arguments of the TSE module
            (``n_blocks``, ``n_iters``, ``head_per_block``, ``gate_kernel_size``, ``min_steps``,
            ``gumbel_tau``, ``exit_is_final``; defaults: the reference's fixed stack).

    References:
        [1] K. Saijo et al., "Task-aware unified source separation", ICASSP 2025.
        [2] "Latent Iterative Refinement for Modular Source Separation", Sec. 2.
    """

    blocks_name = "cond_tse_module"

    def __init__(
        self,
        prompt_names: Sequence[str] = PROMPT_NAMES,
        n_cross_prompt_blocks: int = 4,
        cross_prompt_block: Mapping | None = None,
        n_tse_blocks: int = 2,
        tse_block: Mapping | None = None,
        use_sos_token: bool = True,
        cond_norm: bool = False,
        **stack_args,
    ):
        names = [str(p) for p in prompt_names]
        if not names:
            raise ValueError("TUSSSeparator needs at least one prompt name.")
        if len(set(names)) != len(names):
            raise ValueError(f"Prompt names must be unique, got {names}.")
        bad = [p for p in names if not p or "." in p]
        if bad:
            raise ValueError(f"Prompt names must be non-empty and contain no '.', got {bad}.")
        cross = block_config(cross_prompt_block, "cross_prompt_block")
        tse = block_config(tse_block or TSE_BLOCK_DEFAULTS, "tse_block")
        first = ("cross_prompt_module", int(n_cross_prompt_blocks), cross)
        super().__init__(1, first, int(n_tse_blocks), tse, **stack_args)
        self.prompt_names = tuple(names)
        self.cross_prompt_block, self.tse_block = cross, tse
        self.n_cross_prompt_blocks = int(n_cross_prompt_blocks)
        self.n_tse_blocks = int(n_tse_blocks)
        self.use_sos_token = bool(use_sos_token)
        self.prompts = nn.ParameterDict(
            {name: nn.Parameter(torch.randn(self.emb_dim, 1, 1)) for name in names}
        )
        if self.use_sos_token:
            self.sos_token = nn.Parameter(torch.randn(self.emb_dim, 1, 1))
        self.cond_norm = None
        if cond_norm:
            self.cond_norm = make_norm(self.norm_type, self.emb_dim, self.num_groups, self.eps)

    def prompt_table(self) -> torch.Tensor:
        """All prompt vectors, ``(n_prompt_names, emb_dim)``, in :attr:`prompt_names` order."""
        return torch.stack([self.prompts[name].view(-1) for name in self.prompt_names])

    def stem_modules(self) -> list[nn.Module]:
        """What runs before the TSE module: encoder, cross-prompt module, prompts, SOS token
        and the conditioned latents' norm."""
        sos = [nn.ParameterList([self.sos_token])] if self.use_sos_token else []
        norm = [self.cond_norm] if self.cond_norm is not None else []
        return [self.encoder, self.cross_prompt_module, self.prompts, *sos, *norm]

    def embed(self, spec: torch.Tensor, prompt_ids: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        """The conditioned latents ``z_0`` of the TSE module, one per (item, prompt).

        Args:
            spec (torch.Tensor): mixture ``(batch, 2, frames, freqs)``, real/imaginary stacked.
            prompt_ids (torch.Tensor): ``(batch, n_prompts)`` indices into
                :attr:`prompt_names` (long).

        Returns:
            tuple: ``z_0`` ``(batch * n_prompts, emb_dim, frames, K)`` (item-major) and the
            context :meth:`head` needs.
        """
        if prompt_ids.ndim != 2 or prompt_ids.shape[0] != spec.shape[0]:
            raise ValueError(
                f"prompt_ids must be (batch={spec.shape[0]}, n_prompts), got "
                f"{tuple(prompt_ids.shape)}."
            )
        batch, n_prompts = prompt_ids.shape
        feats, context = self.encode(spec)  # (B, C, T, K)
        n_frames, n_bands = feats.shape[2], feats.shape[3]
        # Prompt tokens (and SOS) in front of the frames, each broadcast over the bands.
        tokens = self.prompt_table()[prompt_ids].to(feats.dtype)  # (B, N, C)
        parts = [tokens.transpose(1, 2)[..., None].expand(-1, -1, -1, n_bands)]
        if self.use_sos_token:
            parts.append(self.sos_token.to(feats.dtype)[None].expand(batch, -1, 1, n_bands))
        parts.append(feats)
        z = torch.cat(parts, dim=2)  # (B, C, N [+1] + T, K)
        for block in self.cross_prompt_module:
            z = block(z)
        prompt_vectors = z[:, :, :n_prompts].transpose(1, 2)  # (B, N, C, K)
        mixture_feats = z[:, :, z.shape[2] - n_frames :]  # (B, C, T, K)
        # Conditioning: element-wise product; the TSE module then refines every (item, prompt).
        cond = mixture_feats[:, None] * prompt_vectors[..., None, :]  # (B, N, C, T, K)
        z = cond.reshape(batch * n_prompts, self.emb_dim, n_frames, n_bands)
        if self.cond_norm is not None:
            z = self.cond_norm(z.movedim(1, -1)).movedim(-1, 1)
        mix = spec[:, None].expand(-1, n_prompts, -1, -1, -1).reshape(-1, *spec.shape[1:])
        if context is not None:
            context = context.repeat_interleave(n_prompts, dim=0)
        return z, (mix, context, batch)

    def get_config(self) -> dict:
        """Constructor arguments (plain types)."""
        return {
            "prompt_names": list(self.prompt_names),
            **self._common_config(),
            "n_cross_prompt_blocks": self.n_cross_prompt_blocks,
            "cross_prompt_block": dict(self.cross_prompt_block),
            "n_tse_blocks": self.n_tse_blocks,
            "tse_block": dict(self.tse_block),
            "use_sos_token": self.use_sos_token,
            "cond_norm": self.cond_norm is not None,
        }


class UnconditionalSeparator(BandTFStacks):
    """The unconditional counterpart of :class:`TUSSSeparator`: fixed outputs, no prompts.

    Band encoder -> ``n_first_blocks`` + ``n_second_blocks`` TF-Locoformer blocks -> band
    decoder with ``n_src`` outputs (the reference's ``BSLocoformerStack``, the "unconditional
    model" of the TUSS slides, trained with permutation-invariant training). The second stack is
    the refinement core (one refined sample per mixture), as TUSS's TSE module.

    Args:
        n_src (int): number of outputs.
        n_first_blocks, first_block: first stack (as TUSS's cross-prompt module).
        n_second_blocks, second_block: second stack (as TUSS's TSE module; the sub-blocks of
            each refinement block).
        **stack_args: as :class:`TUSSSeparator` (refinement arguments included).

    References:
        [1] K. Saijo et al., "Task-aware unified source separation", ICASSP 2025.
    """

    blocks_name = "second_module"

    def __init__(
        self,
        n_src: int = 4,
        n_first_blocks: int = 4,
        first_block: Mapping | None = None,
        n_second_blocks: int = 2,
        second_block: Mapping | None = None,
        **stack_args,
    ):
        if n_src < 1:
            raise ValueError(f"n_src must be >= 1, got {n_src}.")
        first_conf = block_config(first_block, "first_block")
        second = block_config(second_block or TSE_BLOCK_DEFAULTS, "second_block")
        first = ("first_module", int(n_first_blocks), first_conf)
        super().__init__(n_src, first, int(n_second_blocks), second, **stack_args)
        self.n_src = int(n_src)
        self.first_block, self.second_block = first_conf, second
        self.n_first_blocks, self.n_second_blocks = int(n_first_blocks), int(n_second_blocks)

    def stem_modules(self) -> list[nn.Module]:
        """What runs before the second stack: the encoder and the first stack."""
        return [self.encoder, self.first_module]

    def embed(self, spec: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        """``z_0`` of the second stack ``(batch, emb_dim, frames, K)`` and the head context.

        Args:
            spec (torch.Tensor): mixture ``(batch, 2, frames, freqs)``.
        """
        z, context = self.encode(spec)
        for block in self.first_module:
            z = block(z)
        return z, (spec, context, spec.shape[0])

    def get_config(self) -> dict:
        """Constructor arguments (plain types)."""
        return {
            "n_src": self.n_src,
            **self._common_config(),
            "n_first_blocks": self.n_first_blocks,
            "first_block": dict(self.first_block),
            "n_second_blocks": self.n_second_blocks,
            "second_block": dict(self.second_block),
        }
