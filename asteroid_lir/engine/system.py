"""Lightning systems for training asteroid_lir models: Asteroid's ``System`` with online remixing
(:class:`LIRSystem`), its prompted-batch variant (:class:`PromptedSystem`), and end-to-end
training on several estimates of a refinement model (:class:`MultiHeadSystem`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from asteroid.engine.system import System

from ..inference import takes_prompts

if TYPE_CHECKING:
    from ..models.refinement import RefinementModelMixin

__all__ = ["LIRSystem", "MultiHeadSystem", "PromptedSystem"]


class LIRSystem(System):
    """Asteroid ``System`` that remixes each training batch before the forward pass.

    Online data augmentation (paper Sec. 3.3): the sources of a training batch are shuffled
    across the batch with random gains and summed into new mixtures, so every epoch sees new
    mixtures. Validation uses the dataset's mixtures unchanged.

    Batches are ``(mixture, targets)`` or ``(mixture, targets, ids)`` with targets
    ``(batch, n_targets, time)`` (speech sources first, then the noise if the dataset gives it).
    With ``prompted_batches=True`` they are ``(mixtures, references, prompts)`` (unified
    separation, ``asteroid_lir.data.unified.UnifiedMixtures``): a prompt model gets the prompts
    (``model(mix, prompts)``), and the loss (:class:`~asteroid_lir.losses.PromptSNRLoss`) gets
    them too (``None`` for a model with fixed outputs: PIT over all its outputs). Every subclass
    (gated, progressive, multi-head) reads batches through :meth:`unpack`, so each trains
    prompted models as well.

    A training dataset with ``set_epoch(epoch)`` (one that draws new mixtures every epoch) is
    told the epoch at the start of each.

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
        prompted_batches (bool): batches carry prompts (see above); no online remixing.
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
        prompted_batches: bool = False,
    ):
        if prompted_batches and remix_task is not None:
            raise ValueError(
                "Online remixing (remix_task) is for (mixture, targets) batches; prompted "
                "batches are drawn anew every epoch instead."
            )
        super().__init__(
            model, optimizer, loss_func, train_loader, val_loader, scheduler, config or {}
        )
        self.prompted_batches = bool(prompted_batches)
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

    def unpack(self, batch, train: bool) -> tuple[tuple, torch.Tensor, tuple]:
        """``(inputs, targets, loss_args)`` of a batch: the model's inputs (the mixture, and the
        prompts of a prompt model), the targets and the loss's extra arguments, so that
        ``loss_func(model(*inputs), targets, *loss_args)`` is the training loss."""
        if not self.prompted_batches:
            mix, targets = self.prepare_batch(batch, train)
            return (mix,), targets, ()
        mix, refs, prompts = batch
        if takes_prompts(self.model):
            return (mix, prompts), refs, (prompts,)
        return (mix,), refs, (None,)

    def common_step(self, batch, batch_nb, train: bool = True) -> torch.Tensor:
        inputs, targets, loss_args = self.unpack(batch, train)
        return self.loss_func(self(*inputs), targets, *loss_args)

    def on_train_epoch_start(self) -> None:
        dataset = getattr(self.train_loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)


class PromptedSystem(LIRSystem):
    """Trains a prompt model (``model(mix, prompts)``) or a model with fixed outputs end to end.

    :class:`LIRSystem` with ``prompted_batches=True`` (see there; e.g. on
    ``asteroid_lir.data.unified.UnifiedMixtures``, which draws new mixtures every epoch): the
    loss (:class:`~asteroid_lir.losses.PromptSNRLoss`) gets the prompts of a prompt model (PIT
    inside equal prompts) and ``None`` for a fixed-output model (PIT over all outputs, references
    padded with zeros). No online remixing (the mixtures are drawn anew).

    Args:
        *args, **kwargs: those of :class:`LIRSystem` (``warmup_steps`` for a linear
            learning-rate warm-up; ``remix_task`` is ignored).
    """

    def __init__(self, *args, **kwargs):
        kwargs.pop("remix_task", None)
        kwargs["prompted_batches"] = True
        super().__init__(*args, **kwargs)


class MultiHeadSystem(LIRSystem):
    """End-to-end training on several of a refinement model's estimates: the reference of
    progressive training (every block's head), or a loss on every refinement step.

    Args:
        model: a refinement model; with ``heads="all"``, one with ``head_per_block=True`` (or a
            single block).
        *args, **kwargs: the other arguments of :class:`~asteroid_lir.engine.LIRSystem`
            (optimizer, loss, loaders, scheduler, config, online remixing, ``warmup_steps``,
            ``prompted_batches``).
        heads (str): ``"all"``: the loss is the sum of the losses of every block's head (each
            after its block's iterations); ``"steps"``: the mean of the losses of the estimate
            after every refinement step (decoded by its block's head), so that each step's
            estimate is trained as an output, as an early exit needs; ``"last"``: only the last
            estimate's loss (plain end-to-end training). Validation always scores the last
            estimate, the deployed output.
    """

    HEADS = ("all", "steps", "last")

    def __init__(self, model: RefinementModelMixin, *args, heads: str = "all", **kwargs):
        if heads not in self.HEADS:
            raise ValueError(f"heads must be one of {self.HEADS}, got {heads!r}.")
        if heads == "all":
            model.check_heads_per_block()
        super().__init__(model, *args, **kwargs)
        self.heads = heads

    def common_step(self, batch, batch_nb, train: bool = True) -> torch.Tensor:
        inputs, targets, loss_args = self.unpack(batch, train)
        if self.heads == "last" or not train:
            return self.loss_func(self.model(*inputs), targets, *loss_args)
        if self.heads == "steps":
            estimates = self.model.run_steps(inputs)
            losses = [self.loss_func(est, targets, *loss_args) for est in estimates]
            return sum(losses) / len(losses)
        estimates = self.model.run_block_ends(inputs)
        return sum(self.loss_func(est, targets, *loss_args) for est in estimates)
