"""Training procedures of the recipes: end to end, progressive (paper Sec. 2.2), gated (Sec. 2.3).

A recipe builds a :class:`TrainingJob` (its data, loss, training system and configuration) and
calls :func:`train` with the configuration's ``training.mode``; every procedure fits through
:func:`asteroid_lir.experiment.trainer.fit` (checkpoints, logs, resumption) and returns the
trainer, the model to save and a report of what it did:

- ``end_to_end``: every block at once (:class:`LIRSystem`; with ``training.step_loss: every``,
  the mean loss of every refinement step's estimate, :class:`~asteroid_lir.engine.system.
  MultiHeadSystem`, so that each step's estimate is an output an early exit can take);
- ``progressive``: :class:`~asteroid_lir.engine.progressive.ProgressiveSystem`, the epochs split
  evenly between the blocks (or ``progressive.epochs_per_step``); the exported model is that of
  the last *completed* step (a run stopped during step k + 1 exports the step-k prefix, and
  says so; a run stopped during step 1 has nothing to export and fails);
- ``gated``: pre-training without the gate as ``end_to_end`` (``training.epochs``, in
  ``<exp_dir>/pretrain``),
  then network and gate jointly (``gated.joint_epochs``) with
  :meth:`~asteroid_lir.engine.gated.GatedSystem.from_ungated`, for any refinement model.

Optimisers come from Asteroid's registry (``optim.optimizer``: ``adam``, ``adamw``, ...); the
schedule is ``scheduler.type: step`` (``step_size`` epochs, ``gamma``: the paper's lr / 3 every
40 epochs) or ``plateau`` (``factor``, ``patience``: on the validation loss).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from ..experiment.config import dump_config
from ..experiment.trainer import DONE_FILE, fit, load_weights, save_model, write_json
from .optim import make_optimizer, make_scheduler
from .step_schedule import completed_steps
from .system import LIRSystem

__all__ = [
    "TRAINING_MODES",
    "TrainingJob",
    "completed_steps",
    "train",
]

TRAINING_MODES = ("end_to_end", "progressive", "gated")
#: ``training.step_loss``: the loss of the last refinement step's estimate (the papers'), or the
#: mean of every step's.
STEP_LOSSES = ("last", "every")
GATED_KEYS = (
    "joint_epochs",
    "lr",
    "network_lr",
    "gate_lr",
    "step_size",
    "lambda",
    "gate",
    "n_iters",
)


class TrainingError(RuntimeError):
    """A training that ended without a model to export (the message says why and what to do)."""


@dataclasses.dataclass
class TrainingJob:
    """What every procedure needs.

    Attributes:
        conf: the experiment configuration (``model`` resolved, ``training``, ``optim``,
            ``scheduler``, optional ``progressive`` / ``gated`` sections).
        exp_dir: the experiment folder.
        loss: the training loss.
        loaders: ``(train_loader, val_loader)``.
        hw: Lightning's device settings (:func:`asteroid_lir.experiment.trainer.hardware`).
        build_model: ``conf["model"] -> model``.
        system_kwargs: extra arguments of the Lightning systems (online remixing, warm-up).
    """

    conf: dict
    exp_dir: Path
    loss: torch.nn.Module
    loaders: tuple
    hw: dict
    build_model: object
    system_kwargs: dict = dataclasses.field(default_factory=dict)

    @property
    def training(self) -> dict:
        return self.conf["training"]


def _hparams(value):
    # Asteroid's System logs its config as hyper-parameters, turning every list into a tensor:
    # a list that is not all numbers is logged as its text instead.
    if isinstance(value, dict):
        return {k: _hparams(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        return str(list(value))
    return value


def _system(job: TrainingJob, system_class: type, model, **extra):
    optimizer = make_optimizer(model.parameters(), job.conf["optim"])
    scheduler = make_scheduler(optimizer, job.conf.get("scheduler"))
    return system_class(
        model,
        optimizer,
        job.loss,
        *job.loaders,
        scheduler=scheduler,
        config=_hparams(job.conf),
        **job.system_kwargs,
        **extra,
    )


def train_end_to_end(job: TrainingJob, exp_dir: Path, epochs: int, minutes):
    """Train every block at once; returns the trainer, the best model and the report."""
    from .system import MultiHeadSystem

    model = job.build_model(job.conf["model"])
    if job.training.get("step_loss", "last") == "every":
        system = _system(job, MultiHeadSystem, model, heads="steps")
    else:
        system = _system(job, LIRSystem, model)
    trainer, report = fit(system, exp_dir, epochs, job.training, job.hw, minutes)
    if trainer.is_global_zero:
        load_weights(system, report["best_checkpoint"])
    return trainer, system.model, report


def train_progressive(job: TrainingJob, exp_dir: Path, epochs: int, minutes):
    """Train block after block (epochs split evenly unless ``progressive.epochs_per_step``).

    Raises:
        TrainingError: the training stopped before the end of step 1.
    """
    from .progressive import ProgressiveSystem, export_prefix

    extra = dict(job.conf.get("progressive") or {})
    if "epochs_per_step" not in extra:
        extra["total_epochs"] = epochs
    system = _system(job, ProgressiveSystem, job.build_model(job.conf["model"]), **extra)
    trainer, report = fit(system, exp_dir, epochs, job.training, job.hw, minutes)
    # The deliverable is the model after the last completed step (the later steps' heads have
    # validation losses that are not comparable with the earlier ones': no "best" checkpoint).
    report["best_checkpoint"] = None
    n_steps = system.n_prog_steps
    done = completed_steps(system.step_epochs, report["epochs_done"], epochs)
    if done == 0:
        why = "the time bound" if report["stopped_by_time"] else "the epoch bound"
        raise TrainingError(
            f"Progressive training stopped by {why} after {report['epochs_done']} epoch(s), "
            f"during step 1 of {n_steps} (epochs per step {system.step_epochs}): no step is "
            "complete, so there is no trained model to export. Raise training.epochs (or the "
            "time bound), or lower the epochs per step, and run stage 2 again (it resumes)."
        )
    report["progressive"] = {
        "n_steps": n_steps,
        "steps_completed": done,
        "exported_step": done,
        "exported_blocks": done,
        "step_epochs": list(system.step_epochs),
        "complete": done == n_steps,
    }
    if done == n_steps:
        return trainer, system.model, report
    print(
        f"[stage 2] WARNING: training stopped during step {done + 1} of {n_steps}: exporting the "
        f"model of step {done} (blocks 1..{done}, head {done}); blocks {done + 1}..{n_steps} "
        "are not in it."
    )
    return trainer, export_prefix(system.model, done), report


def train_gated(job: TrainingJob, exp_dir: Path, epochs: int, minutes):
    """Pre-train without the gate, then train network and gate jointly; the report has both
    phases (``phases.pretrain``, ``phases.joint``); a time bound is shared between them in
    proportion to their epochs."""
    from .gated import GATED_EPOCHS, GatedSystem

    gated = dict(job.conf.get("gated") or {})
    unknown = set(gated) - set(GATED_KEYS)
    if unknown:
        raise ValueError(f"Unknown gated key(s) {sorted(unknown)}; known: {list(GATED_KEYS)}.")
    joint_epochs = int(gated.get("joint_epochs", GATED_EPOCHS))
    total = epochs + joint_epochs
    pre_minutes = minutes * epochs / total if minutes else None
    joint_minutes = minutes * joint_epochs / total if minutes else None
    pre_dir = exp_dir / "pretrain"
    pre_model = pre_dir / "best_model.pth"
    if pre_model.is_file():
        print(f"[stage 2] Pre-trained network found, skipping pre-training: {pre_model}")
        done_file = pre_dir / DONE_FILE
        pre_report = json.loads(done_file.read_text()) if done_file.is_file() else {}
    else:
        print(f"[stage 2] Gated model, phase 1: pre-training without the gate in {pre_dir}")
        trainer, model, pre_report = train_end_to_end(job, pre_dir, epochs, pre_minutes)
        if trainer.is_global_zero:
            # The ungated network is an experiment of its own (the baseline of the gated one).
            pre_conf = {**job.conf, "training": {**job.training, "mode": "end_to_end"}}
            (pre_dir / "conf.yml").write_text(dump_config(pre_conf))
            write_json(pre_dir / DONE_FILE, pre_report)
            save_model(model, pre_model, pre_conf, {"phase": "pretrain", **pre_report})
        trainer.strategy.barrier()
    print(
        f"[stage 2] Gated model, phase 2: joint training of network and gate "
        f"({joint_epochs} epochs, lambda={gated.get('lambda', 0.1)})"
    )
    system = GatedSystem.from_ungated(
        str(pre_model),
        job.loss,
        *job.loaders,
        lr=float(gated.get("lr", 1e-3)),
        step_penalty=float(gated.get("lambda", 0.1)),
        epochs_per_decay=int(gated.get("step_size", 5)),
        n_iters=gated.get("n_iters"),
        gate_kwargs=gated.get("gate") or {},
        config=_hparams(job.conf),
        network_lr=gated.get("network_lr"),
        gate_lr=gated.get("gate_lr"),
        **job.system_kwargs,
    )
    trainer, joint = fit(system, exp_dir, joint_epochs, job.training, job.hw, joint_minutes)
    if trainer.is_global_zero:
        load_weights(system, joint["best_checkpoint"])
    report = {
        **joint,
        "stopped_by_time": bool(pre_report.get("stopped_by_time")) or joint["stopped_by_time"],
        "phases": {"pretrain": pre_report, "joint": joint},
    }
    return trainer, system.model, report


def train(job: TrainingJob):
    """Run ``job.conf["training"]["mode"]``'s procedure for ``training.epochs`` epochs (and the
    optional ``training.max_time_minutes`` safety net).

    Returns:
        tuple: the trainer, the model to save and the report (:func:`~asteroid_lir.
        experiment.trainer.phase_report`, plus ``progressive`` / ``phases`` where they apply).

    Raises:
        ValueError: an unknown training mode or step loss, or `step_loss: every` with
            progressive training.
    """
    mode = job.training.get("mode", "end_to_end")
    procedures = dict(zip(TRAINING_MODES, (train_end_to_end, train_progressive, train_gated)))
    if mode not in procedures:
        raise ValueError(f"training.mode must be one of {TRAINING_MODES}, got {mode!r}.")
    step_loss = job.training.get("step_loss", "last")
    if step_loss not in STEP_LOSSES:
        raise ValueError(f"training.step_loss must be one of {STEP_LOSSES}, got {step_loss!r}.")
    if step_loss == "every" and mode == "progressive":
        raise ValueError(
            "training.step_loss: every is for end_to_end and gated training; progressive "
            "training scores each block's head after its block's iterations."
        )
    minutes = job.training.get("max_time_minutes")
    return procedures[mode](job, job.exp_dir, int(job.training["epochs"]), minutes)
