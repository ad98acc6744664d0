"""Band-wise TF-Locoformer stacks with a refined second stack: the shared body of the TUSS
separators (:mod:`asteroid_lir.masknn.tuss`).

    band encoder -> first stack of TF-Locoformer blocks -> second stack (a refinement core)
    -> band decoder

References:
    [1] K. Saijo, J. Ebbers, F. G. Germain, G. Wichern and J. Le Roux, "Task-aware unified
    source separation", ICASSP 2025.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..filterbanks.factory import FrontEnd
from .locoformer import locoformer_factory, stack_of_blocks
from .refinement import REFINEMENT_ARGS, RefinementCore

__all__ = ["ENCODERS", "BandTFStacks"]

#: Band encoder/decoder families.
ENCODERS = ("band_split", "sfc")


class BandTFStacks(RefinementCore):
    """Band encoder, a first stack of TF-Locoformer blocks, a refined second stack and a band
    decoder (the shared plumbing of the TUSS separators).

    The second stack is a :class:`~asteroid_lir.masknn.RefinementCore` whose sub-blocks are
    TF-Locoformer blocks: ``n_blocks`` distinct blocks of ``n_refined`` TF-Locoformer blocks,
    block ``b`` applied ``n_iters[b]`` times with shared weights, anytime steps, one decoder per
    block (``head_per_block``, progressive training) and the early-exit gate
    (``gate_kernel_size`` frames of the frequency-pooled latent). The defaults
    (``n_blocks=1, n_iters=1``, no gate) are the reference's stack, with its parameter names: the
    second stack's layers are ``<blocks_name>.<i>`` and the decoder is ``decoder`` (extra heads
    of earlier blocks: ``block_decoders.<b>``).

    Args:
        n_outputs (int): spectra the decoder outputs per refined sample.
        first (tuple): ``(name, n_blocks, settings)`` of the first stack (its attribute, its
            number of TF-Locoformer blocks and its :func:`block_config`).
        n_refined (int): TF-Locoformer blocks per refinement block (sub-blocks ``S``).
        refined_block (dict): the second stack's settings (:func:`block_config`).
        emb_dim (int): channels of the band features (``D``).
        num_groups (int): RMSGroupNorm groups.
        n_heads (int): attention heads.
        sample_rate (float): sample rate (for the band layout).
        n_fft (int): FFT size; the spectra have ``n_fft // 2 + 1`` bins.
        encoder (str): ``"band_split"`` (the reference) or ``"sfc"`` (SFC-CA).
        band_config: ``"bs_roformer"`` (the reference), ``"musical"`` or a list (see
            :func:`~asteroid_lir.filterbanks.get_band_config`).
        n_bands (int, optional): number of bands for ``"musical"``.
        encoder_kwargs (dict, optional): other encoder/decoder arguments, e.g. ``hidden`` (the
            band-split decoder's MLP size, default ``4 * emb_dim``) or SFC-CA's ``d_inner``,
            ``query_type`` (:class:`~asteroid_lir.filterbanks.FrontEnd`).
        tf_order (str): ``"ft"`` (frequency path first) or ``"tf"``.
        norm_type (str): ``"rmsgroupnorm"`` or ``"layernorm"``.
        dropout (float): dropout of the blocks.
        eps (float): epsilon of the norms.
        **refinement: ``n_blocks``, ``n_iters``, ``head_per_block``, ``gate_kernel_size``,
            ``min_steps``, ``gumbel_tau``, ``exit_is_final``
            (:class:`~asteroid_lir.masknn.RefinementCore`).

    The defaults are the reference's ``medium`` model.

    References:
        [1] "Latent Iterative Refinement for Modular Source Separation", Sec. 2.
    """

    def __init__(
        self,
        n_outputs: int,
        first: tuple[str, int, dict],
        n_refined: int,
        refined_block: dict,
        *,
        emb_dim: int = 64,
        num_groups: int = 8,
        n_heads: int = 4,
        sample_rate: float = 48000,
        n_fft: int = 2048,
        encoder: str = "band_split",
        band_config="bs_roformer",
        n_bands: int | None = None,
        encoder_kwargs: Mapping | None = None,
        tf_order: str = "ft",
        norm_type: str = "rmsgroupnorm",
        dropout: float = 0.0,
        eps: float = 1e-5,
        **refinement,
    ):
        unknown = sorted(set(refinement) - set(REFINEMENT_ARGS))
        if unknown:
            raise TypeError(
                f"{type(self).__name__}() got unexpected keyword argument(s) {unknown}; the "
                f"refinement arguments are {list(REFINEMENT_ARGS)}."
            )
        if emb_dim < 1 or num_groups < 1 or emb_dim % num_groups:
            raise ValueError(
                f"emb_dim={emb_dim} must be a positive multiple of num_groups={num_groups}."
            )
        front_end = FrontEnd.from_args(locals(), emb_dim, eps, allowed=ENCODERS)
        block_args = dict(
            tf_order=tf_order,
            norm_type=norm_type,
            num_groups=int(num_groups),
            dropout=float(dropout),
            eps=float(eps),
        )
        # Built in the reference's order (encoder, decoder, first stack, second stack), so that
        # a seed gives the weights it gave before the second stack became a refinement core.
        encoder, decoder = front_end.make_encoder(), front_end.make_decoder(n_outputs)
        first_name, n_first, first_conf = first
        first_stack = stack_of_blocks(n_first, int(emb_dim), first_conf, int(n_heads), block_args)
        if n_refined < 1:
            raise ValueError(f"A stack needs at least one block, got {n_refined}.")
        super().__init__(
            locoformer_factory(int(emb_dim), refined_block, int(n_heads), **block_args),
            None,
            n_sub_blocks=int(n_refined),
            latent_channels=int(emb_dim),
            **refinement,
        )
        self.emb_dim, self.n_heads = int(emb_dim), int(n_heads)
        self.num_groups, self.tf_order, self.norm_type = int(num_groups), tf_order, norm_type
        self.sample_rate, self.n_fft = float(sample_rate), int(n_fft)
        self.dropout, self.eps = float(dropout), float(eps)
        self.front_end = front_end
        self.encoder, self.decoder = encoder, decoder
        self.add_module(first_name, first_stack)
        n_extra = self.n_blocks - 1 if self.head_per_block else 0
        self.block_decoders = nn.ModuleList(
            front_end.make_decoder(n_outputs) for _ in range(n_extra)
        )
        self.n_bands = self.encoder.n_bands
        self.n_freqs = self.encoder.n_freqs

    def encode(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Band features ``(batch, emb_dim, frames, K)`` and the decoder context (SFC-CA)."""
        return self.encoder.forward_with_context(spec)

    # ------------------------------------------------------------------ heads
    def decoder_for(self, head_idx: int) -> nn.Module:
        """Decoder of head ``head_idx`` (the last head is ``decoder``)."""
        n_heads = len(self.block_decoders) + 1
        head_idx = head_idx % n_heads
        return self.decoder if head_idx == n_heads - 1 else self.block_decoders[head_idx]

    def head_modules(self, head_idx: int) -> list[nn.Module]:
        """The decoder of head ``head_idx``."""
        return [self.decoder_for(head_idx)]

    def head(self, z: torch.Tensor, head_idx: int = -1, ctx: tuple = ()) -> torch.Tensor:
        """Spectra of head ``head_idx`` for the refined latent ``z``.

        Args:
            z (torch.Tensor): ``(n_samples, emb_dim, frames, K)``, one refined sample per output
                group (TUSS: one per (item, prompt)).
            head_idx (int): which head.
            ctx (tuple): what :meth:`embed` returned besides ``z_0``.

        Returns:
            torch.Tensor: ``(batch, n_out, 2, frames, freqs)``.
        """
        mix, context, batch = ctx
        est = self.decoder_for(head_idx)(z, mix, context)  # (n_samples, n_outputs, 2, T, F)
        return est.reshape(batch, -1, *est.shape[2:])

    def forward(self, spec: torch.Tensor, *inputs, n_steps: int | None = None) -> torch.Tensor:
        """Separate: :meth:`embed`, the refinement steps (gated with a gate), :meth:`head`.

        Args:
            spec (torch.Tensor): mixture ``(batch, 2, frames, freqs)``, real/imaginary stacked.
            *inputs: what :meth:`embed` takes besides the spectrum (TUSS: the prompt indices).
            n_steps (int, optional): run only the first ``n_steps`` steps of the second stack.

        Returns:
            torch.Tensor: ``(batch, n_out, 2, frames, freqs)``.
        """
        z, ctx = self.embed(spec, *inputs)
        head_idx, z = self.refine_to_head(z, n_steps)
        return self.head(z, head_idx, ctx)

    def _common_config(self) -> dict:
        return {
            "emb_dim": self.emb_dim,
            "num_groups": self.num_groups,
            "n_heads": self.n_heads,
            "tf_order": self.tf_order,
            "norm_type": self.norm_type,
            "sample_rate": self.sample_rate,
            "n_fft": self.n_fft,
            **self.front_end.get_config(self.encoder),
            "dropout": self.dropout,
            "eps": self.eps,
            **self.refinement_config(),
        }
