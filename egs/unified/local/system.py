"""Lightning system of the unified recipe (Asteroid ``System`` with prompts and warm-up)."""

from __future__ import annotations

from asteroid.engine.system import System

from asteroid_lir.inference import takes_prompts

__all__ = ["UnifiedSystem"]


class UnifiedSystem(System):
    """Trains a prompted model (``model(mix, prompts)``) or one with fixed outputs.

    Batches are ``(mixtures, references, prompts)`` from ``UnifiedMixtures``. The loss gets the
    prompts of a prompted model (PIT inside equal prompts) and None for the baseline (PIT over
    all outputs, references padded with zeros). The learning rate rises linearly over the first
    ``warmup_steps`` optimizer steps; each training epoch draws new mixtures.

    Args:
        model, optimizer, loss_func, train_loader, val_loader, scheduler, config: as
            Asteroid's ``System``.
        warmup_steps (int): length of the linear warm-up.
    """

    def __init__(self, *args, warmup_steps: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.warmup_steps = int(warmup_steps)
        self.prompted = takes_prompts(self.model)

    def common_step(self, batch, batch_nb, train=True):
        mix, refs, prompts = batch
        if self.prompted:
            return self.loss_func(self.model(mix, prompts), refs, prompts)
        return self.loss_func(self.model(mix), refs, None)

    def on_train_epoch_start(self):
        dataset = getattr(self.train_loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)

    def on_train_batch_start(self, batch, batch_idx):
        if self.warmup_steps > 0 and self.global_step <= self.warmup_steps:
            scale = min(1.0, (self.global_step + 1) / self.warmup_steps)
            for group in self.optimizer.param_groups:
                group.setdefault("base_lr", group["lr"])
                group["lr"] = group["base_lr"] * scale
