"""Forward paths of every model built on a :class:`~asteroid_lir.masknn.RefinementCore`.

A model plugs its stem and heads into the core by defining four things; every forward path
(plain, anytime, frozen-prefix block ends, gated), progressive training's parameter split and
:func:`export_prefix` then come from :class:`RefinementModelMixin`:

- ``refiner``: the core (for Sudo rm -rf, the masker);
- ``encode(wav) -> (ctx, z0)``: input checks, encoder and the latent ``z_0``; ``ctx`` is whatever
  ``decode`` needs besides the latent (encoder output, lengths, shapes);
- ``decode(ctx, z, head_idx)``: the estimates of head ``head_idx``, shaped like ``model(wav)``;
- ``stem_modules()`` and ``head_modules(head_idx)``: the modules before the first block and those
  of one head, which with the core's blocks partition the parameters.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RefinementModelMixin", "export_prefix"]


class RefinementModelMixin:
    """Plain, anytime, frozen-prefix and gated forward passes through ``self.refiner``."""

    refiner: nn.Module

    # ------------------------------------------------------------------ structure
    @property
    def n_blocks(self) -> int:
        """Number of distinct blocks."""
        return self.refiner.n_blocks

    @property
    def n_steps(self) -> int:
        """Number of refinement steps of the full model (``sum(n_iters)``)."""
        return self.refiner.n_steps

    def check_heads_per_block(self) -> None:
        """Raise unless every block has its own head (progressive and multi-head training)."""
        if self.refiner.n_blocks > 1 and not self.refiner.head_per_block:
            raise ValueError(
                f"The model has {self.refiner.n_blocks} blocks but one head: build it with "
                "head_per_block=True, so that every block has its own head."
            )

    def step_modules(self, step: int) -> list[nn.Module]:
        """Modules trained in progressive step ``step`` (1-based): block ``step`` and its head,
        and for step 1 also the stem. Every parameter belongs to exactly one step."""
        self.check_heads_per_block()
        idx = self.refiner.check_block(step) - 1
        modules = [self.refiner.blocks[idx], *self.head_modules(idx)]
        return [*self.stem_modules(), *modules] if idx == 0 else modules

    # ------------------------------------------------------------------ forward passes
    def forward(self, wav: torch.Tensor, n_steps: int | None = None) -> torch.Tensor:
        """Separate ``wav``.

        Args:
            wav (torch.Tensor): waveform ``(time,)``, ``(batch, time)`` or ``(batch, 1, time)``.
            n_steps (int, optional): run only the first ``n_steps`` refinement steps (anytime
                inference; a gated model takes exactly that many). Default: all, or the gate's.

        Returns:
            torch.Tensor: ``(batch, n_src, time)``, or ``(n_src, time)`` for a 1-D input.
        """
        if self.refiner.gated:
            return self.forward_with_steps(wav, force_steps=n_steps)[0]
        ctx, z = self.encode(wav)
        block_idx, z = self.refiner.run(z, n_steps)
        return self.decode(ctx, z, self.refiner.head_index(block_idx))

    def forward_steps(self, wav: torch.Tensor, n_steps: int | None = None) -> list[torch.Tensor]:
        """Estimates after each refinement step (ungated), computed in one pass.

        Args:
            wav (torch.Tensor): waveform as for :meth:`forward`.
            n_steps (int, optional): stop after this many steps (default: all).

        Returns:
            list of torch.Tensor: one estimate per step, each shaped like ``model(wav)``; the
            last one equals ``model(wav, n_steps)`` of the ungated model.
        """
        ctx, z = self.encode(wav)
        return [
            self.decode(ctx, z, self.refiner.head_index(b))
            for b, z in self.refiner.iter_steps(z, n_steps)
        ]

    def forward_block_ends(
        self, wav: torch.Tensor, last_block: int | None = None, grad_from: int = 1
    ) -> list[torch.Tensor]:
        """Estimates of the heads of blocks ``grad_from..last_block``, each after its block's
        iterations. The stem and the blocks before ``grad_from`` run without autograd (the
        frozen prefix of progressive training: no graph, no stored activations).

        Args:
            wav (torch.Tensor): waveform as for :meth:`forward`.
            last_block (int, optional): last block to run (1-based, default: all).
            grad_from (int): first block (1-based) computed with autograd and decoded.

        Returns:
            list of torch.Tensor: estimates shaped like ``model(wav)``.
        """
        self.check_heads_per_block()
        with torch.set_grad_enabled(torch.is_grad_enabled() and grad_from == 1):
            ctx, z = self.encode(wav)
        ends = self.refiner.iter_block_ends(z, last_block, grad_from)
        return [self.decode(ctx, z, self.refiner.head_index(b)) for b, z in ends]

    def forward_with_steps(
        self,
        wav: torch.Tensor,
        force_steps: int | torch.Tensor | None = None,
        early_exit: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Separate ``wav`` with the gate and say how many steps each sample used.

        Args:
            wav (torch.Tensor): waveform ``(time,)``, ``(batch, time)`` or ``(batch, 1, time)``.
            force_steps (int or torch.Tensor, optional): take exactly this many steps, for all
                samples (int) or per sample (``(batch,)``), instead of following the gate.
            early_exit (bool): in eval mode, drop finished samples from the batch (``False``:
                compute all steps and select, the path a trace records).

        Returns:
            tuple: the estimates, shaped like ``model(wav)``, and the steps ``(batch,)``: in eval
            mode the steps taken (``torch.long``), in training mode the differentiable ``C_hat``.
        """
        ctx, z = self.encode(wav)
        z, steps = self.refiner.run_gated(z, force_steps, early_exit)
        return self.decode(ctx, z, 0), steps


def export_prefix(model: RefinementModelMixin, n_blocks: int) -> RefinementModelMixin:
    """Standalone model made of the first ``n_blocks`` blocks and head ``n_blocks``.

    The result has the class of ``model``, ``head_per_block=False`` and the first ``n_blocks``
    iteration counts: its output equals ``model(wav, n_steps=sum(n_iters[:n_blocks]))``. Its
    weights are copies (independent of ``model``) and it round-trips through ``serialize()``.

    Args:
        model: a model with one head per block (progressively trained).
        n_blocks (int): number of leading blocks to keep (1..``model.n_blocks``).

    Returns:
        the deployable prefix model, in the training mode of ``model``.
    """
    model.check_heads_per_block()
    n_blocks = model.refiner.check_block(n_blocks)
    args = model.get_model_args()
    n_iters = list(model.refiner.n_iters[:n_blocks])
    args.update(n_blocks=n_blocks, n_iters=n_iters, head_per_block=False)
    prefix = type(model)(**args)
    pairs = [
        *zip(model.stem_modules(), prefix.stem_modules()),
        *zip(model.refiner.blocks[:n_blocks], prefix.refiner.blocks),
        *zip(model.head_modules(n_blocks - 1), prefix.head_modules(0)),
    ]
    for src, dst in pairs:
        dst.load_state_dict(src.state_dict())
    return prefix.train(model.training)
