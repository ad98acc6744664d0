"""Iterative latent refinement masker built from Sudo rm -rf U-ConvBlocks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from asteroid.masknn import activations
from asteroid.utils.generic_utils import has_arg
from torch import nn

from .uconv import FastGlobLN, FastUConvBlock

__all__ = ["IterativeSuDORMRF", "normalize_n_iters"]


def normalize_n_iters(n_iters: int | Sequence[int], n_blocks: int) -> list[int]:
    """Return one iteration count per block from an int or a per-block sequence.

    Args:
        n_iters: iterations of every block (int) or of each block (sequence of ``n_blocks`` ints).
        n_blocks: number of distinct blocks.

    Returns:
        list[int]: ``n_blocks`` positive iteration counts.

    Raises:
        ValueError: if the length does not match ``n_blocks`` or a count is not positive.
    """
    if isinstance(n_iters, int):
        iters = [n_iters] * n_blocks
    else:
        iters = [int(i) for i in n_iters]
        if len(iters) != n_blocks:
            raise ValueError(
                f"n_iters has {len(iters)} entries but the model has n_blocks={n_blocks}; "
                "give one int for all blocks or one value per block."
            )
    if any(i < 1 for i in iters):
        raise ValueError(f"Every block needs at least one iteration, got n_iters={iters}.")
    return iters


class IterativeSuDORMRF(nn.Module):
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
        n_blocks (int): number of distinct blocks ``N``.
        n_sub_blocks (int): U-ConvBlocks per block ``S``.
        n_iters (int or list of int): iterations per block ``I`` (one value or one per block).
        upsampling_depth (int): resolutions in each U-ConvBlock.
        mask_act (str): mask non-linearity, a name known to ``asteroid.masknn.activations``.
        head_per_block (bool): one mask network per distinct block instead of one at the end.

    References:
        [1] "Latent Iterative Refinement for Modular Source Separation", Sec. 2.1.
        [2] E. Tzinis et al., "Compute and memory efficient universal sound source separation",
        Journal of Signal Processing Systems, 2022.
    """

    def __init__(
        self,
        in_chan: int,
        n_src: int,
        bn_chan: int = 128,
        n_blocks: int = 1,
        n_sub_blocks: int = 16,
        n_iters: int | Sequence[int] = 1,
        upsampling_depth: int = 5,
        mask_act: str = "relu",
        head_per_block: bool = False,
    ):
        super().__init__()
        if n_blocks < 1 or n_sub_blocks < 1:
            raise ValueError(
                f"n_blocks and n_sub_blocks must be >= 1, got {n_blocks} and {n_sub_blocks}."
            )
        if n_src < 1:
            raise ValueError(f"n_src must be >= 1, got {n_src}.")
        self.in_chan = in_chan
        self.n_src = n_src
        self.bn_chan = bn_chan
        self.n_blocks = n_blocks
        self.n_sub_blocks = n_sub_blocks
        self.n_iters = normalize_n_iters(n_iters, n_blocks)
        self.upsampling_depth = upsampling_depth
        self.mask_act = mask_act
        self.head_per_block = head_per_block

        # Same layout and names as asteroid.masknn.SuDORMRFImproved (ln, bottleneck), so a
        # converted checkpoint maps one to one.
        self.ln = FastGlobLN(in_chan)
        self.bottleneck = nn.Conv1d(in_chan, bn_chan, kernel_size=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                *[
                    FastUConvBlock(
                        out_chan=bn_chan, in_chan=in_chan, upsampling_depth=upsampling_depth
                    )
                    for _ in range(n_sub_blocks)
                ]
            )
            for _ in range(n_blocks)
        )
        n_heads = n_blocks if head_per_block else 1
        self.mask_nets = nn.ModuleList(
            nn.Sequential(nn.PReLU(), nn.Conv1d(bn_chan, n_src * in_chan, 1))
            for _ in range(n_heads)
        )
        mask_nl_class = activations.get(mask_act)
        self.output_act = mask_nl_class(dim=1) if has_arg(mask_nl_class, "dim") else mask_nl_class()

    # ------------------------------------------------------------------ step schedule
    @property
    def n_steps(self) -> int:
        """Number of refinement steps of the full model (``sum(n_iters)``)."""
        return sum(self.n_iters)

    def step_schedule(self) -> list[int]:
        """Block index applied at each refinement step, in order (length ``n_steps``)."""
        return [b for b, n in enumerate(self.n_iters) for _ in range(n)]

    def head_index(self, block_idx: int) -> int:
        """Index of the mask network that reads the output of block ``block_idx``."""
        return block_idx if self.head_per_block else 0

    def resolve_n_steps(self, n_steps: int | None) -> int:
        """``n_steps`` checked against the model (``None`` means all steps)."""
        if n_steps is None:
            return self.n_steps
        if not 1 <= n_steps <= self.n_steps:
            raise ValueError(f"n_steps must be in [1, {self.n_steps}], got {n_steps}.")
        return int(n_steps)

    # ------------------------------------------------------------------ building pieces
    def embed(self, tf_rep: torch.Tensor) -> torch.Tensor:
        """Bottleneck latent ``z_0`` from the encoder output ``(batch, in_chan, frames)``."""
        return self.bottleneck(self.ln(tf_rep))

    def refine(self, z: torch.Tensor, block_idx: int) -> torch.Tensor:
        """Apply block ``block_idx`` once to the latent ``z`` (one refinement step)."""
        return self.blocks[block_idx](z)

    def masks(self, z: torch.Tensor, head_idx: int = -1) -> torch.Tensor:
        """Masks ``(batch, n_src, in_chan, frames)`` of the latent ``z`` from head ``head_idx``."""
        m = self.mask_nets[head_idx](z)
        m = m.view(m.shape[0], self.n_src, self.in_chan, -1)
        return self.output_act(m)

    def iter_latents(
        self, tf_rep: torch.Tensor, n_steps: int | None = None
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(block_idx, z)`` after each of the first ``n_steps`` refinement steps."""
        n_steps = self.resolve_n_steps(n_steps)
        z = self.embed(tf_rep)
        for block_idx in self.step_schedule()[:n_steps]:
            z = self.refine(z, block_idx)
            yield block_idx, z

    # ------------------------------------------------------------------ forward
    def forward(self, tf_rep: torch.Tensor, n_steps: int | None = None) -> torch.Tensor:
        """Masks after ``n_steps`` refinement steps (all steps by default).

        Args:
            tf_rep (torch.Tensor): encoder output ``(batch, in_chan, frames)``.
            n_steps (int, optional): run only the first ``n_steps`` steps (anytime inference);
                the head of the block that ran last turns the latent into masks.

        Returns:
            torch.Tensor: masks ``(batch, n_src, in_chan, frames)``.
        """
        n_steps = self.resolve_n_steps(n_steps)
        z = self.embed(tf_rep)
        schedule = self.step_schedule()[:n_steps]
        for block_idx in schedule:
            z = self.refine(z, block_idx)
        return self.masks(z, self.head_index(schedule[-1]))

    def get_config(self) -> dict:
        """Arguments to re-instantiate the masker."""
        return {
            "in_chan": self.in_chan,
            "n_src": self.n_src,
            "bn_chan": self.bn_chan,
            "n_blocks": self.n_blocks,
            "n_sub_blocks": self.n_sub_blocks,
            "n_iters": list(self.n_iters),
            "upsampling_depth": self.upsampling_depth,
            "mask_act": self.mask_act,
            "head_per_block": self.head_per_block,
        }
