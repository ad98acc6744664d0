"""The trainer of every recipe: checkpoints, logs, resumption, devices, precision, the budget.

The training length of an experiment is its budget in epochs (``training.epochs``) of a fixed
number of steps (``training.limit_train_batches``, or the whole training set), so that the same
command and seed give the same model on any machine; a busy machine only takes longer.
``training.max_time_minutes`` is a safety net only: a run it stops says so
(:func:`phase_report`: steps done of planned, ``stopped_by_time``) and the reports print it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

__all__ = [
    "CHECKPOINT_DIR",
    "DONE_FILE",
    "eval_device",
    "fit",
    "hardware",
    "load_weights",
    "phase_report",
    "save_model",
    "train_stage",
    "write_json",
]

CHECKPOINT_DIR = "checkpoints"
DONE_FILE = "train_done.json"


def hardware(gpus: str = "", num_cpu_procs: int = 0) -> dict:
    """Lightning ``accelerator`` / ``devices`` / ``strategy``: GPU ids (``"0,1"``; several run
    DDP), or ``num_cpu_procs >= 2`` CPU processes with DDP, or one CPU process.

    Raises:
        ValueError: GPU ids without CUDA.
    """
    if gpus:
        ids = [int(g) for g in gpus.split(",") if g.strip() != ""]
        if not torch.cuda.is_available():
            raise ValueError(f"GPU ids {gpus!r} were given (--id) but CUDA is not available.")
        return dict(accelerator="gpu", devices=ids, strategy="ddp" if len(ids) > 1 else "auto")
    if num_cpu_procs > 1:
        return dict(accelerator="cpu", devices=num_cpu_procs, strategy="ddp")
    return dict(accelerator="cpu", devices=1, strategy="auto")


def eval_device(gpus: str = "") -> torch.device:
    """The device of an evaluation: the first of the GPU ids ``gpus`` (``"0,1"``), or the CPU."""
    return torch.device(f"cuda:{gpus.split(',')[0]}" if gpus else "cpu")


def _loggers(exp_dir: Path) -> list:
    from pytorch_lightning.loggers import CSVLogger

    # Each (re)start logs into a new version_<n> folder: the curves of an interrupted run stay.
    log_dir = str(exp_dir / "logs")
    loggers = [CSVLogger(log_dir, name="csv")]
    try:
        import tensorboard  # noqa: F401
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(log_dir, name="tb"))
    except ImportError:
        pass
    return loggers


def fit(system, exp_dir: Path, epochs: int, training: dict, hw: dict, minutes=None):
    """Fit ``system`` with checkpoints, logs and automatic resumption.

    Args:
        system: a Lightning module (an Asteroid ``System``).
        exp_dir: the experiment (or phase) folder: ``checkpoints/``, ``logs/``.
        epochs: epochs to train (the budget).
        training: the configuration's ``training`` section (``gradient_clip_val``,
            ``limit_train_batches``, ``limit_val_batches``, ``log_every_n_steps``,
            ``precision``, ``progress_bar``, ``num_sanity_val_steps``).
        hw: :func:`hardware`'s settings.
        minutes: the wall-time safety net (``None``: none).

    Returns:
        tuple: the trainer and the :func:`phase_report` of this fit.
    """
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint

    ckpt_dir = exp_dir / CHECKPOINT_DIR
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir, filename="{epoch}-{val_loss:.3f}", monitor="val_loss", mode="min",
        save_top_k=1, save_last=True,
    )  # fmt: skip
    trainer = pl.Trainer(
        max_epochs=int(epochs),
        max_time={"minutes": float(minutes)} if minutes else None,
        gradient_clip_val=training.get("gradient_clip_val"),
        callbacks=[checkpoint, LearningRateMonitor(logging_interval="epoch")],
        logger=_loggers(exp_dir),
        default_root_dir=str(exp_dir),
        limit_train_batches=training.get("limit_train_batches") or 1.0,
        limit_val_batches=training.get("limit_val_batches") or 1.0,
        log_every_n_steps=max(1, int(training.get("log_every_n_steps", 10))),
        enable_progress_bar=bool(training.get("progress_bar", True)),
        precision=training.get("precision") or "32-true",
        num_sanity_val_steps=int(training.get("num_sanity_val_steps", 2)),
        **hw,
    )
    last = ckpt_dir / "last.ckpt"
    if last.is_file():
        print(f"[stage 2] Resuming from {last}", flush=True)
    else:
        print(f"[stage 2] Training {epochs} epochs; checkpoints in {ckpt_dir}", flush=True)
    trainer.fit(system, ckpt_path=str(last) if last.is_file() else None)
    best = checkpoint.best_model_path or None
    return trainer, phase_report(trainer, epochs, minutes, best)


def phase_report(trainer, planned_epochs: int, minutes: float | None, best: str | None) -> dict:
    """What one ``fit`` did: epochs and steps done and planned, and whether the time bound
    stopped it.

    Lightning counts an epoch cut short by the time bound as done; the bound stopped the phase
    if it ran fewer epochs than planned or its ``Timer`` has no time left.
    """
    from pytorch_lightning.callbacks import Timer

    epochs = int(trainer.current_epoch)
    timers = [cb for cb in trainer.callbacks if isinstance(cb, Timer)]
    out_of_time = any((timer.time_remaining("train") or 0.0) <= 0 for timer in timers)
    per_epoch = getattr(trainer, "num_training_batches", None)
    steps_planned = None
    if isinstance(per_epoch, int) and per_epoch > 0:
        steps_planned = int(planned_epochs) * -(-per_epoch // trainer.accumulate_grad_batches)
    return {
        "best_checkpoint": best,
        "epochs_done": epochs,
        "epochs_planned": int(planned_epochs),
        "global_steps": int(trainer.global_step),
        "steps_planned": steps_planned,
        "max_time_minutes": minutes,
        "stopped_by_time": bool(minutes) and (epochs < int(planned_epochs) or out_of_time),
    }


def load_weights(system, ckpt_path: str | None) -> None:
    """Load a Lightning checkpoint's weights into ``system`` (no-op without a checkpoint)."""
    if ckpt_path:
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)["state_dict"]
        system.load_state_dict(state)


def save_model(model, path: Path, conf: dict, extra: dict) -> None:
    """Write ``model.serialize()`` with the recipe's information to ``path``, atomically."""
    package = model.serialize()
    package["infos"]["recipe"] = {"config": conf, **extra}
    tmp = path.with_suffix(".tmp")
    torch.save(package, tmp)
    tmp.replace(path)


def train_stage(
    conf: dict, exp_dir: Path, loss, loaders: Callable[[], tuple], message: str, gpus: str = "",
    num_cpu_procs: int = 0, **system_kwargs,
) -> int:  # fmt: skip
    """A recipe's stage 2: unless the folder holds this experiment trained already
    (:func:`~asteroid_lir.experiment.cli.check_experiment`), seed, train ``conf`` in ``exp_dir``
    (:func:`asteroid_lir.engine.procedures.train`; an unfinished training resumes) and, on the
    main process, save ``best_model.pth`` (the model with its configuration and training report)
    and ``train_done.json`` (the report).

    Args:
        conf, exp_dir, loss: the configuration as trained, the experiment folder, the loss.
        loaders: ``() -> (train_loader, val_loader)``, called after seeding.
        message: what is printed before the training starts.
        gpus, num_cpu_procs: the devices (:func:`hardware`).
        **system_kwargs: further arguments of the Lightning system (online remixing, warm-up).

    Returns:
        int: 0 (the stage's exit code).
    """
    import pytorch_lightning as pl

    from ..engine.procedures import TrainingJob, train
    from .cli import check_experiment
    from .registry import build_model

    if check_experiment(exp_dir, conf) == "done":
        print(f"[stage 2] {exp_dir} is already trained with this configuration; skipping.")
        return 0
    # With the same training.seed (data loader workers too) and training.num_threads, the same
    # command trains the same model (a training entry point's choice, never a library import's).
    training = conf["training"]
    pl.seed_everything(int(training.get("seed", 0)), workers=True)
    if training.get("num_threads"):
        torch.set_num_threads(int(training["num_threads"]))
    data, hw = loaders(), hardware(gpus, num_cpu_procs)
    job = TrainingJob(conf, exp_dir, loss, data, hw, build_model, system_kwargs=system_kwargs)
    print(message, flush=True)
    start = time.time()
    trainer, model, info = train(job)
    if trainer.is_global_zero:
        info["wall_seconds_this_run"] = round(time.time() - start, 1)
        save_model(model, exp_dir / "best_model.pth", conf, info)
        write_json(exp_dir / DONE_FILE, info)
        print(f"[stage 2] Saved {exp_dir / 'best_model.pth'}: {info['global_steps']} steps")
    return 0


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as indented JSON, atomically."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
