"""Lightning system for training asteroid_lir models (Asteroid's ``System`` + online remixing)."""

from __future__ import annotations

import torch
from asteroid.engine.system import System

__all__ = ["LIRSystem"]


class LIRSystem(System):
    """Asteroid ``System`` that remixes each training batch before the forward pass.

    Online data augmentation (paper Sec. 3.3): the sources of a training batch are shuffled
    across the batch with random gains and summed into new mixtures, so every epoch sees new
    mixtures. Validation uses the dataset's mixtures unchanged.

    Batches are ``(mixture, targets)`` or ``(mixture, targets, ids)`` with targets
    ``(batch, n_targets, time)`` (speech sources first, then the noise if the dataset gives it).

    Args:
        model: the separation model (``model(mix) -> (batch, n_src, time)``).
        optimizer: torch optimizer.
        loss_func: callable ``loss(est, targets) -> scalar``, e.g. ``SpeechPITLoss``.
        train_loader, val_loader: data loaders.
        scheduler: learning-rate scheduler (or Lightning scheduler dict), optional.
        config (dict): the experiment configuration, saved in checkpoints.
        remix_task (str, optional): task name given to ``asteroid_lir.data.remix_batch``;
            ``None`` disables online remixing.
        remix_seed (int): seed of the remixing generator (reproducible augmentation).
        warmup_steps (int): the learning rate rises linearly over the first ``warmup_steps``
            optimizer steps (0: no warm-up).
    """

    def __init__(
        self,
        model,
        optimizer,
        loss_func,
        train_loader,
        val_loader=None,
        scheduler=None,
        config=None,
        remix_task: str | None = None,
        remix_seed: int = 0,
        warmup_steps: int = 0,
    ):
        super().__init__(
            model, optimizer, loss_func, train_loader, val_loader, scheduler, config or {}
        )
        self.remix_task = remix_task
        self._remix_gen = torch.Generator().manual_seed(remix_seed)
        self.warmup_steps = int(warmup_steps)

    def on_train_batch_start(self, batch, batch_idx) -> None:
        if self.warmup_steps > 0 and self.global_step <= self.warmup_steps:
            scale = min(1.0, (self.global_step + 1) / self.warmup_steps)
            for group in self.trainer.optimizers[0].param_groups:
                group.setdefault("base_lr", group["lr"])
                group["lr"] = group["base_lr"] * scale

    def prepare_batch(self, batch, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixture and targets of a batch, remixed when training with augmentation."""
        mix, targets = batch[0], batch[1]
        if train and self.remix_task is not None:
            from ..data import remix_batch

            mix, targets = remix_batch(targets, self.remix_task, generator=self._remix_gen)
        return mix, targets

    def common_step(self, batch, batch_nb, train: bool = True) -> torch.Tensor:
        mix, targets = self.prepare_batch(batch, train)
        est = self(mix)
        return self.loss_func(est, targets)
