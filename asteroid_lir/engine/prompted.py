"""Training system of prompted unified separation (TUSS) and of its unconditional baseline."""

from __future__ import annotations

import torch

from ..inference import takes_prompts
from .system import LIRSystem

__all__ = ["PromptedSystem"]


class PromptedSystem(LIRSystem):
    """Trains a prompt model (``model(mix, prompts)``) or a model with fixed outputs.

    Batches are ``(mixtures, references, prompts)`` (e.g. ``asteroid_lir.data.unified.
    UnifiedMixtures``, which draws new mixtures every epoch: :meth:`on_train_epoch_start` tells
    it the epoch). The loss (:class:`~asteroid_lir.losses.PromptSNRLoss`) gets the prompts of a
    prompt model (PIT inside equal prompts) and ``None`` for a fixed-output model (PIT over all
    outputs, references padded with zeros). No online remixing (the mixtures are drawn anew).

    Args:
        *args, **kwargs: those of :class:`~asteroid_lir.engine.system.LIRSystem` (``warmup_steps``
            for a linear learning-rate warm-up).
    """

    def __init__(self, *args, **kwargs):
        kwargs.pop("remix_task", None)
        super().__init__(*args, **kwargs)
        self.prompted = takes_prompts(self.model)

    def common_step(self, batch, batch_nb, train: bool = True) -> torch.Tensor:
        mix, refs, prompts = batch
        if self.prompted:
            return self.loss_func(self.model(mix, prompts), refs, prompts)
        return self.loss_func(self.model(mix), refs, None)

    def on_train_epoch_start(self) -> None:
        dataset = getattr(self.train_loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)
