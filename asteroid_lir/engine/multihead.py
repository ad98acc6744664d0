"""End-to-end training of a multi-head refinement model (the baseline of progressive training)."""

from __future__ import annotations

import torch

from ..models.refinement import RefinementModelMixin
from .system import LIRSystem

__all__ = ["MultiHeadSystem"]


class MultiHeadSystem(LIRSystem):
    """End-to-end training of a multi-head refinement model: the reference of progressive
    training.

    Args:
        model: a refinement model with ``head_per_block=True`` (or a single block).
        *args, **kwargs: the other arguments of :class:`~asteroid_lir.engine.LIRSystem`
            (optimizer, loss, loaders, scheduler, config, online remixing, ``warmup_steps``,
            ``prompted_batches``).
        heads (str): ``"all"``: the loss is the sum of the losses of every block's head (each
            after its block's iterations); ``"last"``: only the last head's loss (plain
            end-to-end training). Validation always scores the last head, the deployed output.
    """

    def __init__(self, model: RefinementModelMixin, *args, heads: str = "all", **kwargs):
        model.check_heads_per_block()
        if heads not in ("all", "last"):
            raise ValueError(f"heads must be 'all' or 'last', got {heads!r}.")
        super().__init__(model, *args, **kwargs)
        self.heads = heads

    def common_step(self, batch, batch_nb, train: bool = True) -> torch.Tensor:
        inputs, targets, loss_args = self.unpack(batch, train)
        if self.heads == "last" or not train:
            return self.loss_func(self.model(*inputs), targets, *loss_args)
        estimates = self.model.run_block_ends(inputs)
        return sum(self.loss_func(est, targets, *loss_args) for est in estimates)
