"""Iterative latent refinement masker built from Sudo rm -rf U-ConvBlocks."""

from __future__ import annotations

import torch
from asteroid.masknn import activations
from asteroid.utils.generic_utils import has_arg
from torch import nn

from .refinement import RefinementCore, normalize_n_iters
from .uconv import FastGlobLN, FastUConvBlock

__all__ = ["IterativeSuDORMRF", "normalize_n_iters"]


class IterativeSuDORMRF(RefinementCore):
    """Sudo rm -rf masker whose separation module is a latent iterative refinement process.

    The separation module is ``B_N^{I_N} o ... o B_1^{I_1}`` (paper Eq. 6): ``n_blocks`` distinct
    blocks, each a chain of ``n_sub_blocks`` U-ConvBlocks (Eq. 4) applied ``n_iters`` times to
    its own output with shared weights (Eq. 3). A conventional Sudo rm -rf with 16 U-ConvBlocks is
    ``(n_blocks, n_sub_blocks, n_iters) = (1, 16, 1)``, and its parameters load unchanged.

    One *refinement step* is one application of one block; the steps run block by block, so the
    full model has ``sum(n_iters)`` steps. With ``head_per_block=True`` every block owns a mask
    network (needed by progressive training, where block ``k`` is trained with its own head);
    otherwise a single mask network follows the last block.

    Args:
        in_chan (int): number of encoder bases (input and mask channels).
        n_src (int): number of estimated sources (masks).
        bn_chan (int): bottleneck channels, the size of the refined latent.
        n_sub_blocks (int): U-ConvBlocks per block ``S``.
        upsampling_depth (int): resolutions in each U-ConvBlock.
        mask_act (str): mask non-linearity, a name known to ``asteroid.masknn.activations``.
        **refinement: ``n_blocks`` (distinct blocks ``N``), ``n_iters`` (iterations per block
            ``I``, one value or one per block), ``head_per_block`` (one mask network per
            distinct block instead of one at the end) and the gate's ``gate_kernel_size``
            (an early-exit gate spanning this many latent frames, 3200 = 4 s at 8 kHz with
            stride 10), ``min_steps``, ``gumbel_tau``, ``exit_is_final``: see
            :class:`RefinementCore`.

    References:
        [1] "Latent Iterative Refinement for Modular Source Separation", Sec. 2.1.
        [2] E. Tzinis et al., "Compute and memory efficient universal sound source separation",
        Journal of Signal Processing Systems, 2022.
    """

    heads_name = "mask_nets"

    def __init__(
        self,
        in_chan: int,
        n_src: int,
        bn_chan: int = 128,
        n_sub_blocks: int = 16,
        upsampling_depth: int = 5,
        mask_act: str = "relu",
        **refinement,
    ):
        if n_src < 1:
            raise ValueError(f"n_src must be >= 1, got {n_src}.")
        super().__init__(
            lambda: FastUConvBlock(bn_chan, in_chan, upsampling_depth=upsampling_depth),
            lambda: nn.Sequential(nn.PReLU(), nn.Conv1d(bn_chan, n_src * in_chan, 1)),
            n_sub_blocks=n_sub_blocks,
            latent_channels=bn_chan,
            **refinement,
        )
        self.in_chan = in_chan
        self.n_src = n_src
        self.bn_chan = bn_chan
        self.upsampling_depth = upsampling_depth
        self.mask_act = mask_act
        # Same names as asteroid.masknn.SuDORMRFImproved (ln, bottleneck; the heads are
        # `mask_nets`), so a converted checkpoint maps one to one.
        self.ln = FastGlobLN(in_chan)
        self.bottleneck = nn.Conv1d(in_chan, bn_chan, kernel_size=1)
        mask_nl_class = activations.get(mask_act)
        self.output_act = mask_nl_class(dim=1) if has_arg(mask_nl_class, "dim") else mask_nl_class()

    # ------------------------------------------------------------------ building pieces
    def embed(self, tf_rep: torch.Tensor) -> torch.Tensor:
        """Bottleneck latent ``z_0`` from the encoder output ``(batch, in_chan, frames)``."""
        return self.bottleneck(self.ln(tf_rep))

    def head(self, z: torch.Tensor, head_idx: int = -1) -> torch.Tensor:
        """Masks ``(batch, n_src, in_chan, frames)`` of the latent ``z`` from head ``head_idx``."""
        m = self.mask_nets[head_idx](z)
        m = m.view(m.shape[0], self.n_src, self.in_chan, -1)
        return self.output_act(m)

    masks = head

    # ------------------------------------------------------------------ forward
    def forward(self, tf_rep: torch.Tensor, n_steps: int | None = None) -> torch.Tensor:
        """Masks after ``n_steps`` refinement steps (all steps, or the gate's, by default).

        Args:
            tf_rep (torch.Tensor): encoder output ``(batch, in_chan, frames)``.
            n_steps (int, optional): run only the first ``n_steps`` steps (anytime inference);
                the head of the block that ran last turns the latent into masks.

        Returns:
            torch.Tensor: masks ``(batch, n_src, in_chan, frames)``.
        """
        head_idx, z = self.refine_to_head(self.embed(tf_rep), n_steps)
        return self.head(z, head_idx)

    def get_config(self) -> dict:
        """Arguments to re-instantiate the masker."""
        return {
            "in_chan": self.in_chan,
            "n_src": self.n_src,
            "bn_chan": self.bn_chan,
            "n_sub_blocks": self.n_sub_blocks,
            "upsampling_depth": self.upsampling_depth,
            "mask_act": self.mask_act,
            **self.refinement_config(),
        }
