"""Joint training of a network and its early-exit gate: ``L = L_sep + lambda * C_hat`` (Eq. 12).

Paper recipe (Sec. 4.3): pre-train the network without the gate (a one-block ``LIRSuDORMRFNet``
there; any refinement model here), then train network and gate jointly for 20 epochs with the
learning rate divided by 3 every 5 epochs. A recipe builds the whole thing with
:meth:`GatedSystem.from_ungated`::

    system = GatedSystem.from_ungated(
        "exp/lir_1x1x4/best_model.pth", SpeechPITLoss(n_speech=2),
        train_loader, val_loader, lr=1e-3, step_penalty=0.1, remix_task="sep_noisy",
    )
    trainer = pl.Trainer(max_epochs=GATED_EPOCHS, gradient_clip_val=5.0)
    trainer.fit(system)
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch
from torch.optim.lr_scheduler import StepLR

from ..masknn.gating import exit_margin_for_budget
from ..models.refinement import RefinementModelMixin
from .system import LIRSystem

__all__ = [
    "GATED_EPOCHS",
    "JOINT_LR_SCALE",
    "GatedSystem",
    "build_gated_model",
    "calibrate_exit_margin",
    "gated_lr_scheduler",
    "joint_param_groups",
]

#: Epochs of the joint network + gate training in the paper (after 180 epochs of pre-training).
GATED_EPOCHS = 20


def gated_lr_scheduler(
    optimizer: torch.optim.Optimizer, epochs_per_decay: int = 5, factor: float = 1 / 3
) -> StepLR:
    """The paper's schedule for the joint training: learning rate times ``factor`` every
    ``epochs_per_decay`` epochs (20 epochs: lr, lr/3, lr/9, lr/27).

    Args:
        optimizer: the optimizer whose learning rate decays.
        epochs_per_decay (int): epochs between two decays (call ``step()`` once per epoch).
        factor (float): multiplicative decay.

    Returns:
        torch.optim.lr_scheduler.StepLR: an epoch-wise scheduler (Asteroid's ``System`` steps
        schedulers once per epoch unless given ``{"interval": "step", ...}``).
    """
    return StepLR(optimizer, step_size=epochs_per_decay, gamma=factor)


def build_gated_model(
    pretrained,
    n_iters: int | None = None,
    **gate_kwargs,
) -> RefinementModelMixin:
    """Gated model whose network is a pre-trained ungated refinement model (gate fresh).

    Any family: the model's own class is rebuilt with a gate
    (:meth:`~asteroid_lir.models.refinement.RefinementModelMixin.with_gate`).

    Args:
        pretrained: the model, its serialized package, or the path of a package file
            (``torch.save(model.serialize(), path)``, e.g. a recipe's ``best_model.pth``).
        n_iters (int, optional): maximum steps (default: the pre-trained model's iterations).
        **gate_kwargs: ``gate_kernel_size`` (default 3200, the paper's 4 s at 8 kHz with
            stride 10), ``min_steps``, ``gumbel_tau``, ``exit_is_final``.

    Returns:
        the gated model, in training mode.

    Raises:
        TypeError: a model that is not built on a refinement core.
    """
    from asteroid.models import BaseModel

    from ..models.base import load_model_conf

    if isinstance(pretrained, (str, os.PathLike)):
        pretrained = load_model_conf(pretrained)
    if isinstance(pretrained, dict):
        pretrained = BaseModel.from_pretrained(pretrained)
    if not isinstance(pretrained, RefinementModelMixin):
        raise TypeError(
            "build_gated_model gates a model built on a refinement core (LIRSuDORMRFNet, "
            f"TFLocoformerNet, ...), got {type(pretrained).__name__}."
        )
    gate_kwargs.setdefault("gate_kernel_size", 3200)
    return pretrained.with_gate(n_iters, **gate_kwargs).train()


def calibrate_exit_margin(
    model: RefinementModelMixin, mixtures: Iterable[torch.Tensor | tuple], budget: float
) -> float:
    """Set a gated model's exit margin so that ``mixtures`` take ``budget`` steps on average.

    The trained gate ranks the inputs (how much its ``process - exit`` logit exceeds 0); the
    paper exits where it falls to 0. Here one margin, shared by every decision, is chosen on
    held-out mixtures (a validation set) so that their mean steps is the largest not above
    ``budget``; the gate then gives the steps to the inputs it ranks highest. The model is put
    in eval mode and its gate's ``exit_margin`` buffer is set (it is saved with the weights).

    Args:
        model: a gated refinement model (``exit_is_final`` only changes training: at inference
            every exit is final).
        mixtures: validation inputs, each a waveform (``(time,)`` or ``(batch, time)``) or the
            tuple of what the model's ``encode`` takes (a prompted model's prompts too).
        budget (float): mean steps, between ``min_steps`` and ``n_steps``.

    Returns:
        float: the margin set (``-inf``: every step within the budget).
    """
    refiner = getattr(model, "refiner", None)
    if refiner is None or not refiner.gated:
        raise ValueError("calibrate_exit_margin needs a gated refinement model.")
    model.eval()
    with torch.inference_mode():
        logits = [model.gate_margin_logits(*(m if isinstance(m, tuple) else (m,)))
                  for m in mixtures]  # fmt: skip
    if not logits:
        raise ValueError("calibrate_exit_margin got no mixtures.")
    margin = exit_margin_for_budget(torch.cat(logits).cpu().numpy(), budget, refiner.min_steps)
    refiner.gate.exit_margin.fill_(margin)
    return margin


#: Default scale of the joint phase's learning rates (network and gate) relative to ``lr``.
#: Measured on the mini corpus (1x1x4, 256 bases, lambda 0.3, issue 15;
#: ``egs/wham/examples/gate_investigation.md``): at the paper's single rate the
#: gate's decision saturated to "exit after the first step" for every mixture within one short
#: epoch (logit(process) - logit(exit) -9.5 +- 1.1 over the test set). Two causes, both
#: measured: the gate's temporal convolution sums ``kernel_size`` (3200) frames, so one Adam
#: step at 1e-3 moves every logit by about 5 (each weight moves by about ``lr``); and the
#: network's latent drifts under it (with the gate at 1e-5 but the network at 1e-3 the logits
#: still fell to -6 within 50 batches). At a tenth of the rate neither happens.
JOINT_LR_SCALE = 0.1


def joint_param_groups(model, network_lr: float, gate_lr: float) -> list[dict]:
    """Adam parameter groups of joint training: the network and the gate, each with its rate.

    Args:
        model: a gated refinement model (its gate is ``model.refiner.gate``).
        network_lr (float): learning rate of every parameter outside the gate (``0``: frozen,
            the parameters get ``requires_grad=False`` and stay out of the optimizer).
        gate_lr (float): learning rate of the gate's parameters.

    Returns:
        list of dict: ``[{"params": gate, "lr": gate_lr}, {"params": network, ...}]``.
    """
    if network_lr < 0 or gate_lr <= 0:
        raise ValueError(
            f"network_lr must be >= 0 and gate_lr > 0, got {network_lr} and {gate_lr}."
        )
    gate = list(model.refiner.gate.parameters())
    gate_ids = {id(p) for p in gate}
    network = [p for p in model.parameters() if id(p) not in gate_ids]
    groups = [{"params": gate, "lr": gate_lr, "name": "gate"}]
    if network_lr == 0:
        for p in network:
            p.requires_grad_(False)
    else:
        groups.append({"params": network, "lr": network_lr, "name": "network"})
    return groups


class GatedSystem(LIRSystem):
    """Lightning system minimising ``L_sep + lambda * C_hat`` (paper Eq. 12).

    ``C_hat`` is averaged over the batch. In training it is the differentiable sum of the hard
    straight-through gates; in validation the model runs its deterministic early exit and
    ``C_hat`` is the mean number of steps taken, so ``val_loss`` is the same objective at the
    operating point that will be deployed. Logged: ``loss_sep``/``c_hat`` (training, per step
    and epoch) and ``val_loss_sep``/``val_c_hat`` (validation, per epoch), besides Asteroid's
    ``loss``/``val_loss``.

    Args:
        model: a refinement model with a gate (any family, see
            :func:`build_gated_model`, or any model whose ``refiner`` is gated).
        *args, **kwargs: the other arguments of :class:`~asteroid_lir.engine.LIRSystem`: the
            optimizer over the network and the gate, the separation loss (e.g.
            ``SpeechPITLoss``), the loaders, the scheduler (e.g. :func:`gated_lr_scheduler`),
            the config, online remixing, ``warmup_steps``; ``prompted_batches=True`` trains a
            prompt model such as a gated ``TUSSNet``, whose gate decides per (mixture,
            prompt): ``C_hat`` is then the mean over every (mixture, prompt).
        step_penalty (float): ``lambda``, the loss added per refinement step, in units of the
            separation loss (negative SI-SDR in dB: a step is worth taking if it gains more
            than ``lambda`` dB). ``0`` trains the gate on the separation loss alone.
    """

    def __init__(self, model: RefinementModelMixin, *args, step_penalty: float = 0.1, **kwargs):
        if not (isinstance(model, RefinementModelMixin) and model.refiner.gated):
            raise TypeError(
                "GatedSystem trains a refinement model with a gate (gate_kernel_size set), "
                f"got {type(model).__name__}."
            )
        if step_penalty < 0:
            raise ValueError(f"step_penalty (lambda) must be >= 0, got {step_penalty}.")
        super().__init__(model, *args, **kwargs)
        self.step_penalty = float(step_penalty)

    @classmethod
    def from_ungated(
        cls,
        pretrained,
        loss_func,
        train_loader,
        val_loader=None,
        lr: float = 1e-3,
        step_penalty: float = 0.1,
        epochs_per_decay: int = 5,
        n_iters: int | None = None,
        gate_kwargs: dict | None = None,
        config: dict | None = None,
        remix_task: str | None = None,
        remix_seed: int = 0,
        network_lr: float | None = None,
        gate_lr: float | None = None,
        **system_kwargs,
    ) -> GatedSystem:
        """The paper's joint training set up in one call.

        Builds the gated model from ``pretrained`` (:func:`build_gated_model`), Adam over the
        network and the gate (one parameter group each, :func:`joint_param_groups`), and the
        lr / 3 every ``epochs_per_decay`` epochs schedule.

        Learning rates: by default the network and the gate are trained at
        ``lr * JOINT_LR_SCALE`` each (see :data:`JOINT_LR_SCALE` for the measurements behind
        it); ``network_lr=lr, gate_lr=lr`` is the paper's single learning rate, which made the
        gate collapse to one constant decision on the mini corpus.

        Args:
            pretrained: an ungated refinement model (any family), its package or a package
                file.
            loss_func: separation loss.
            train_loader, val_loader: data loaders.
            lr (float): initial learning rate (the base of the two groups' defaults).
            step_penalty (float): ``lambda`` of Eq. 12.
            epochs_per_decay (int): epochs between two divisions of the learning rate by 3.
            n_iters (int, optional): maximum steps (default: the pre-trained iterations).
            gate_kwargs (dict, optional): ``gate_kernel_size``, ``min_steps``, ``gumbel_tau``,
                ``exit_is_final``.
            config (dict, optional): experiment configuration saved in checkpoints.
            remix_task (str, optional): online remixing task.
            remix_seed (int): seed of the remixing generator.
            network_lr (float, optional): initial learning rate of the network (encoder, block,
                mask network, decoder); default ``lr * JOINT_LR_SCALE``. ``0`` freezes it.
            gate_lr (float, optional): initial learning rate of the gate; default
                ``lr * JOINT_LR_SCALE``.
            **system_kwargs: other system arguments (``warmup_steps``, ``prompted_batches``).

        Returns:
            GatedSystem: ready for ``pl.Trainer(max_epochs=GATED_EPOCHS).fit(system)``.
        """
        model = build_gated_model(pretrained, n_iters=n_iters, **(gate_kwargs or {}))
        network_lr = lr * JOINT_LR_SCALE if network_lr is None else float(network_lr)
        gate_lr = lr * JOINT_LR_SCALE if gate_lr is None else float(gate_lr)
        optimizer = torch.optim.Adam(joint_param_groups(model, network_lr, gate_lr), lr=lr)
        scheduler = gated_lr_scheduler(optimizer, epochs_per_decay)
        return cls(
            model,
            optimizer,
            loss_func,
            train_loader,
            val_loader,
            scheduler,
            config,
            step_penalty=step_penalty,
            remix_task=remix_task,
            remix_seed=remix_seed,
            **system_kwargs,
        )

    def common_step(self, batch, batch_nb, train: bool = True) -> torch.Tensor:
        inputs, targets, loss_args = self.unpack(batch, train)
        est, steps = self.model.run_with_steps(inputs)
        loss_sep = self.loss_func(est, targets, *loss_args)
        c_hat = steps.to(loss_sep.dtype).mean()
        if self._trainer is not None:
            prefix = "" if train else "val_"
            self.log(f"{prefix}loss_sep", loss_sep, on_step=train, on_epoch=True)
            self.log(f"{prefix}c_hat", c_hat, on_step=train, on_epoch=True, prog_bar=True)
        return loss_sep + self.step_penalty * c_hat
