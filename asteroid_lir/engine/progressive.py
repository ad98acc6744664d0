"""Progressive block-wise training of an N-block ``LIRSuDORMRFNet`` (paper Sec. 2.2).

Training is split into N steps, one per distinct block, run as a single Lightning ``fit``:

- step 1 trains the encoder, the bottleneck (``masker.ln``, ``masker.bottleneck``), block 1 and
  its head (mask network 1 and decoder 1);
- step k > 1 trains block k and head k only. The encoder and blocks 1..k-1 are frozen
  (``requires_grad_(False)``, eval mode, gradients dropped) and run under ``torch.no_grad()``,
  so they build no autograd graph and keep no activations: the memory of a training step is
  that of block k's iterations and head k, whatever k. That is where the saving comes from.

The optimizer and schedule restart at each step boundary, over the step's parameters only; a
resumed run continues in the epoch's step (:class:`ProgressiveSystem` says how, and what each
step writes).

A recipe builds it like an Asteroid ``System``::

    model = LIRSuDORMRFNet(n_src=3, n_blocks=2, n_sub_blocks=4, n_iters=2, head_per_block=True)
    system = ProgressiveSystem(
        model,
        lambda params: torch.optim.Adam(params, lr=1e-3),           # or an optimizer instance
        SpeechPITLoss(n_speech=2),
        train_loader,
        val_loader,
        scheduler=lambda opt: StepLR(opt, step_size=40, gamma=1 / 3),  # or an instance
        total_epochs=200,
        remix_task="sep_noisy",
    )
    pl.Trainer(max_epochs=200, callbacks=[ModelCheckpoint(save_last=True)]).fit(system)

For comparison, :class:`~asteroid_lir.engine.system.MultiHeadSystem` (re-exported here) trains
the same model end to end (the loss of every head summed, or only the last head's).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_info
from torch import nn

from ..models.refinement import RefinementModelMixin, export_prefix
from .optim import OptimizerFactory, optimizer_factory, scheduler_factory
from .step_schedule import last_epoch_of_step, resolve_step_epochs, split_epochs, step_for_epoch
from .system import LIRSystem, MultiHeadSystem

__all__ = [
    "MultiHeadSystem",
    "ProgressiveSystem",
    "block_end_estimates",
    "export_prefix",
    "progressive_step_modules",
    "split_epochs",
]


# ---------------------------------------------------------------------------- model helpers
def _check_multi_head(model: RefinementModelMixin) -> None:
    if not isinstance(model, RefinementModelMixin):
        raise TypeError(f"Expected a model built on a RefinementCore, got {type(model).__name__}.")
    model.check_heads_per_block()


def progressive_step_modules(model: RefinementModelMixin, step: int) -> list[nn.Module]:
    """Modules trained in progressive step ``step`` (1-based): ``model.step_modules(step)``."""
    _check_multi_head(model)
    return model.step_modules(step)


def block_end_estimates(
    model: RefinementModelMixin,
    wav: torch.Tensor,
    last_block: int | None = None,
    grad_from: int = 1,
) -> list[torch.Tensor]:
    """Head estimates at the block ends, frozen prefix without autograd:
    ``model.forward_block_ends(wav, last_block, grad_from)``."""
    _check_multi_head(model)
    return model.forward_block_ends(wav, last_block, grad_from)


# ---------------------------------------------------------------------------- systems
class ProgressiveSystem(LIRSystem):
    """Lightning system training an N-block ``LIRSuDORMRFNet`` block by block (paper Sec. 2.2).

    One ``Trainer.fit`` runs all N steps; set the trainer's ``max_epochs`` to ``total_epochs``
    (the sum of the steps' epochs). Epoch ``e`` (0-based) belongs to the step whose epoch range
    contains it (:func:`split_epochs`; with ``epochs_per_step`` instead, every epoch after step
    N-1 belongs to step N). At the first epoch of a step (or first batch after a resume) the
    system freezes what earlier steps trained, rebuilds the optimizer over the new step's
    parameters with ``trainer.strategy.setup_optimizers`` and restarts the LR schedule.
    Checkpoints record the step the optimizer state belongs to, so Lightning restores it into an
    optimizer of the same step before the system moves on.

    Training and validation losses of step k are computed on head k's estimate. Logged besides
    Asteroid's ``loss``/``val_loss``: ``progressive_step`` (per epoch).

    Per step outputs, written into the ``ModelCheckpoint`` folder (or
    ``<default_root_dir>/checkpoints``) at the end of the step's last epoch:
    ``step{k}-last.ckpt`` (a Lightning checkpoint) and ``step{k}_model.pth`` (the serialized
    :func:`export_prefix` model of the first k blocks, loadable with ``from_pretrained``).

    Multi-process (DDP) training: parameters are frozen after DDP has wrapped the model, so DDP
    must tolerate parameters without gradients; the system sets ``find_unused_parameters=True``
    on a ``DDPStrategy`` that did not set it.

    Args:
        model: a refinement model (``LIRSuDORMRFNet``, ...) with ``head_per_block=True`` (or
            a single block).
        optimizer: a callable ``params -> optimizer`` (called at every step), or an optimizer
            instance used as a template (same class and ``defaults``; its parameters and state
            are ignored).
        loss_func: ``loss(est, targets) -> scalar`` (e.g. ``SpeechPITLoss``).
        train_loader, val_loader: data loaders of ``(mixture, targets[, ids])`` batches.
        scheduler (optional): a callable ``optimizer -> scheduler`` (or Lightning scheduler
            dict), or a scheduler instance used as a template: it is rebuilt with the same class
            and the constructor arguments stored on it (``StepLR``'s ``step_size`` and
            ``gamma``, ...). A dict ``{"scheduler": <either>, "interval": ...}`` is accepted.
        config (dict): experiment configuration, saved in checkpoints.
        total_epochs (int, optional): epochs of the whole training, split between the steps
            with :func:`split_epochs`.
        epochs_per_step (int or list of int, optional): epochs of each step instead of
            ``total_epochs`` (an int: every step but the last; the last runs until the trainer
            stops). Exactly one of ``total_epochs`` / ``epochs_per_step`` must be given.
        remix_task (str, optional): online remixing task (see ``LIRSystem``).
        remix_seed (int): seed of the remixing generator.
        save_step_outputs (bool): write ``step{k}-last.ckpt`` and ``step{k}_model.pth``.
        **system_kwargs: other :class:`~asteroid_lir.engine.system.LIRSystem` arguments
            (``warmup_steps``, ``prompted_batches`` for a prompt model such as ``TUSSNet``).

    References:
        [1] "Latent Iterative Refinement for Modular Source Separation", Sec. 2.2.
    """

    def __init__(
        self,
        model: RefinementModelMixin,
        optimizer: torch.optim.Optimizer | OptimizerFactory,
        loss_func,
        train_loader,
        val_loader=None,
        scheduler=None,
        config: dict | None = None,
        total_epochs: int | None = None,
        epochs_per_step: int | Sequence[int] | None = None,
        remix_task: str | None = None,
        remix_seed: int = 0,
        save_step_outputs: bool = True,
        **system_kwargs,
    ):
        _check_multi_head(model)
        self.n_prog_steps = model.n_blocks
        #: Epochs of each step (``None`` for a last step that runs until the trainer stops).
        self.step_epochs = resolve_step_epochs(self.n_prog_steps, total_epochs, epochs_per_step)
        self._make_optimizer = optimizer_factory(optimizer)
        self._make_scheduler = scheduler_factory(scheduler)
        self.save_step_outputs = save_step_outputs
        # The optimizer is built for the active step when Lightning asks for it.
        super().__init__(
            model,
            None,
            loss_func,
            train_loader,
            val_loader,
            None,
            config,
            remix_task=remix_task,
            remix_seed=remix_seed,
            **system_kwargs,
        )
        #: Step whose parameters the current optimizer holds (1-based).
        self.active_step = 1

    # ------------------------------------------------------------------ schedule of steps
    def step_for_epoch(self, epoch: int) -> int:
        """The progressive step (1-based) that trains during epoch ``epoch`` (0-based)."""
        return step_for_epoch(self.step_epochs, epoch)

    def last_epoch_of_step(self, step: int) -> int | None:
        """0-based index of the last epoch of ``step`` (``None``: open-ended last step)."""
        return last_epoch_of_step(self.step_epochs, step)

    def step_parameters(self, step: int | None = None) -> list[nn.Parameter]:
        """Parameters trained in ``step`` (default: the active step)."""
        modules = self.model.step_modules(step or self.active_step)
        return [p for m in modules for p in m.parameters()]

    # ------------------------------------------------------------------ entering a step
    def freeze_for_step(self, step: int) -> None:
        """Make only ``step``'s parameters trainable.

        Everything trained by earlier steps is frozen (``requires_grad_(False)``, gradients
        dropped, eval mode) and later blocks wait untouched. Idempotent.
        """
        model = self.model
        trainable = {id(p) for p in self.step_parameters(step)}
        for p in model.parameters():
            p.requires_grad_(id(p) in trainable)
            if id(p) not in trainable:
                p.grad = None  # the last step's gradients would otherwise stay allocated
        self._apply_frozen_modes(step)

    def _apply_frozen_modes(self, step: int) -> None:
        # No normalisation statistics or dropout in Sudo rm -rf today, but a frozen module must
        # stay deterministic whatever the module later contains.
        for earlier in range(1, step):
            for module in self.model.step_modules(earlier):
                module.eval()

    def train(self, mode: bool = True):
        # Lightning switches the whole module to train mode at every epoch: keep frozen parts in
        # eval mode.
        super().train(mode)
        if mode and hasattr(self, "active_step"):
            self._apply_frozen_modes(self.active_step)
        return self

    def enter_step(self, step: int) -> None:
        """Freeze for ``step`` and, inside a ``Trainer``, build its optimizer and schedule.

        Outside a trainer (benchmarks, tests), :meth:`configure_optimizers` then builds the
        step's optimizer.
        """
        self.freeze_for_step(step)
        if self._activate(step):
            rank_zero_info(
                f"Progressive training: step {step}/{self.n_prog_steps} (block {step}, head "
                f"{step}) from epoch {self._trainer.current_epoch}; optimizer over "
                f"{sum(p.numel() for p in self.step_parameters())} parameters."
            )

    def _activate(self, step: int) -> bool:
        # Make `step` the active one; a trainer that has built its optimizers rebuilds them for
        # it (configure_optimizers reads `active_step`). True when they were rebuilt.
        changed = step != self.active_step
        self.active_step = step
        trainer = self._trainer
        if changed and trainer is not None and trainer.strategy.optimizers:
            trainer.strategy.setup_optimizers(trainer)
            return True
        return False

    def _sync_step(self) -> None:
        # Idempotent: enters the epoch's step if needed and (re)applies its freezing, which a
        # resumed run has not applied yet.
        self.enter_step(self.step_for_epoch(self.current_epoch))

    # ------------------------------------------------------------------ Lightning hooks
    def configure_optimizers(self):
        """Optimizer over the active step's parameters and a fresh LR schedule."""
        self.optimizer = self._make_optimizer(self.step_parameters())
        self.scheduler = self._make_scheduler(self.optimizer)
        return super().configure_optimizers()

    def setup(self, stage: str) -> None:
        from pytorch_lightning.strategies import DDPStrategy

        # Enter a new step before any other callback's on_train_epoch_start, so that e.g.
        # LearningRateMonitor already logs the restarted schedule of the new step.
        if not any(isinstance(cb, _StepBoundary) for cb in self.trainer.callbacks):
            self.trainer.callbacks.insert(0, _StepBoundary())
        strategy = self.trainer.strategy
        if isinstance(strategy, DDPStrategy):
            # Frozen and not-yet-trained blocks receive no gradient, which DDP only accepts
            # when told so. The model is wrapped after this hook, so it is not too late.
            ddp_kwargs = getattr(strategy, "_ddp_kwargs", None)
            if not isinstance(ddp_kwargs, dict):
                raise RuntimeError(
                    "Progressive training with DDP needs find_unused_parameters=True: use "
                    "strategy='ddp_find_unused_parameters_true' or DDPStrategy(find_unused_"
                    "parameters=True)."
                )
            ddp_kwargs.setdefault("find_unused_parameters", True)

    def on_fit_start(self) -> None:
        last = self.last_epoch_of_step(self.n_prog_steps - 1) if self.n_prog_steps > 1 else -1
        max_epochs = self.trainer.max_epochs
        total = None if self.step_epochs[-1] is None else sum(self.step_epochs)
        if max_epochs is not None and max_epochs >= 0 and max_epochs <= last + 1:
            rank_zero_info(
                f"Progressive training: max_epochs={max_epochs} stops before the last step "
                f"(steps' epochs {self.step_epochs})."
            )
        elif total is not None and max_epochs not in (None, -1, total):
            rank_zero_info(
                f"Progressive training: the steps total {total} epochs but the trainer's "
                f"max_epochs is {max_epochs}; the last step gets the difference."
            )

    def on_train_start(self) -> None:
        self._sync_step()

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        self._sync_step()
        self.log("progressive_step", float(self.active_step), on_step=False, on_epoch=True)

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # A run resumed from a mid-epoch checkpoint skips on_train_epoch_start.
        if self.step_for_epoch(self.current_epoch) != self.active_step:
            self._sync_step()

    def on_train_epoch_end(self) -> None:
        if self.save_step_outputs and self.current_epoch == self.last_epoch_of_step(
            self.active_step
        ):
            self._save_step_outputs(self.active_step)

    def _save_step_outputs(self, step: int) -> None:
        dirpath = getattr(self.trainer.checkpoint_callback, "dirpath", None)
        out_dir = Path(dirpath or os.path.join(self.trainer.default_root_dir, "checkpoints"))
        self.trainer.save_checkpoint(out_dir / f"step{step}-last.ckpt")  # on every rank
        if self.trainer.is_global_zero:
            package = export_prefix(self.model, step).serialize()
            package["infos"]["progressive"] = {"step": step, "epoch": int(self.current_epoch)}
            tmp = out_dir / f".step{step}_model.pth.tmp"
            torch.save(package, tmp)
            tmp.replace(out_dir / f"step{step}_model.pth")

    def on_save_checkpoint(self, checkpoint: dict) -> dict:
        checkpoint = super().on_save_checkpoint(checkpoint)
        checkpoint["progressive"] = {
            "active_step": self.active_step,
            "step_epochs": list(self.step_epochs),
        }
        return checkpoint

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("progressive")
        if saved is None:
            raise ValueError(
                "This checkpoint was not written by ProgressiveSystem (no 'progressive' entry): "
                "its optimizer state cannot be matched to a step."
            )
        if list(saved["step_epochs"]) != list(self.step_epochs):
            raise ValueError(
                f"The checkpoint was trained with epochs per step {saved['step_epochs']}, this "
                f"system has {self.step_epochs}: resuming would put epochs in other steps."
            )
        # The optimizer state in the checkpoint belongs to this step: the optimizer must be
        # built for it before Lightning loads that state. Lightning restores modules before it
        # sets up optimizers (configure_optimizers then reads `active_step`), except for
        # strategies that restore after setup, whose optimizers are rebuilt here. Freezing waits
        # for on_train_start: DDP must first wrap the model with every block trainable.
        self._activate(int(saved["active_step"]))

    # ------------------------------------------------------------------ forward and loss
    def forward_step(self, *inputs: torch.Tensor, step: int | None = None) -> torch.Tensor:
        """Head ``step``'s estimate of the model inputs (the mixture, and a prompt model's
        prompts), with autograd through block ``step`` and its head only."""
        step = step or self.active_step
        return self.model.run_block_ends(inputs, last_block=step, grad_from=step)[0]

    def common_step(self, batch, batch_nb, train: bool = True) -> torch.Tensor:
        inputs, targets, loss_args = self.unpack(batch, train)
        return self.loss_func(self.forward_step(*inputs), targets, *loss_args)


class _StepBoundary(Callback):
    """Runs :class:`ProgressiveSystem`'s step change first at every epoch start."""

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if isinstance(pl_module, ProgressiveSystem):
            pl_module._sync_step()
