"""Stage 2 of the WHAM! recipe: train a model described by an experiment configuration.

``model.name`` may be any model registered in ``asteroid_lir.models`` (``local/models.py``).
``training.mode`` picks the procedure; the recipe only wires the library's training systems:

- ``end_to_end``: :class:`asteroid_lir.engine.LIRSystem` (Asteroid ``System`` + online remixing).
- ``progressive``: :class:`asteroid_lir.engine.progressive.ProgressiveSystem` (block-wise
  training, the epochs split evenly between the blocks, ``head_per_block`` set on the model).
  The exported model is that of the last *completed* step: a run stopped (time or epochs bound)
  during step k + 1 exports the step-k model (blocks 1..k and head k), and says so in
  ``train_done.json``; a run stopped during step 1 fails with a message.
- ``gated``: pre-training of the network without the gate (``training.epochs``, end to end, in
  ``<exp_dir>/pretrain``), then joint training of network and gate set up by
  :meth:`asteroid_lir.engine.gated.GatedSystem.from_ungated` (``gated.joint_epochs``).

The loss is :class:`asteroid_lir.losses.SpeechPITLoss` with the weight of the noise output's
term from ``loss.extra_weight`` (0: the paper's negative SI-SDR of the speech alone).

Training resumes from ``<exp_dir>/checkpoints/last.ckpt`` when it exists, so killing the run and
starting it again continues where it stopped. ``<exp_dir>/conf.yml`` is the configuration as
trained (task, outputs, sample rate, progressive heads filled in). At the end
``<exp_dir>/best_model.pth`` holds the model as ``model.serialize()`` (loadable with
``from_pretrained``) and ``train_done.json`` what the training did, per phase.

Usage::

    python train.py --conf conf/mini_cpu.yml --task sep_noisy --meta_dir data/<corpus>/metadata \
        --exp_dir exp/mini_cpu_sep_noisy [--gpus 0,1] [--num_cpu_procs 2] [--set training.epochs=2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local.cli import RecipeError, run_cli  # noqa: E402
from local.config import load_config, n_sources  # noqa: E402
from local.models import build_model, resolve_model_conf  # noqa: E402

CHECKPOINT_DIR = "checkpoints"
DONE_FILE = "train_done.json"
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a WHAM! experiment (recipe stage 2).")
    parser.add_argument("--conf", required=True, help="experiment configuration (YAML)")
    parser.add_argument("--task", required=True, choices=("sep_noisy", "enh_single"))
    parser.add_argument("--meta_dir", required=True, help="folder with tr.json and cv.json")
    parser.add_argument("--exp_dir", required=True, help="experiment folder (outputs)")
    parser.add_argument("--gpus", default="", help="GPU ids, e.g. '0,1' (empty: CPU)")
    parser.add_argument(
        "--num_cpu_procs", type=int, default=0, help="run DDP with this many CPU processes (>= 2)"
    )
    parser.add_argument("--n_workers", type=int, default=None, help="data loader workers")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a configuration value (repeatable)",
    )
    return parser.parse_args(argv)


def make_loss(conf: dict, n_speech: int):
    """``SpeechPITLoss`` of the ``loss`` section: PIT over the speech sources, the extra (noise)
    outputs' terms weighted by ``loss.extra_weight`` (default 1; 0 is the paper's loss)."""
    from asteroid_lir.losses import SpeechPITLoss

    section = dict(conf.get("loss") or {})
    weight = section.pop("extra_weight", 1.0)
    if section:
        raise ValueError(f"Unknown loss key(s) {sorted(section)}; known: ['extra_weight'].")
    return SpeechPITLoss(n_speech, extra_weight=float(weight))


@dataclass
class Run:
    """What every training procedure shares: task, data, loss and hardware."""

    task: str
    loaders: tuple
    loss: torch.nn.Module
    hw: dict


def make_loaders(conf: dict, task: str, meta_dir: Path, n_workers: int | None):
    """Training and validation loaders of 4-s (``data.segment``) chunks."""
    from torch.utils.data import DataLoader

    from asteroid_lir.data import WhamDataset

    data, train = conf["data"], conf["training"]
    for split in ("tr.json", "cv.json"):
        if not (meta_dir / split).is_file():
            raise FileNotFoundError(
                f"Metadata file {meta_dir / split} is missing: run stage 1 (./run.sh --stage 1)."
            )
    kwargs = dict(
        task=task,
        segment=data["segment"],
        sample_rate=data["sample_rate"],
        return_noise=data.get("return_noise", True),
    )
    train_set = WhamDataset(str(meta_dir / "tr.json"), **kwargs)
    val_set = WhamDataset(str(meta_dir / "cv.json"), **kwargs)
    if len(train_set) < train["batch_size"]:
        raise ValueError(
            f"The training set has {len(train_set)} mixtures, fewer than one batch "
            f"(training.batch_size={train['batch_size']})."
        )
    workers = train.get("num_workers", 0) if n_workers is None else n_workers
    common = dict(
        batch_size=train["batch_size"], num_workers=workers, persistent_workers=workers > 0
    )
    train_loader = DataLoader(train_set, shuffle=True, drop_last=True, **common)
    val_loader = DataLoader(val_set, shuffle=False, drop_last=False, **common)
    return train_loader, val_loader, train_set.n_speech


def make_optimizer_and_scheduler(params, optim_conf: dict, sched_conf: dict):
    """Adam (Asteroid's optimizer registry) and the paper's step schedule (lr / 3 every 40)."""
    from asteroid.engine.optimizers import make_optimizer

    optim_conf = dict(optim_conf)
    optimizer = make_optimizer(params, optimizer=optim_conf.pop("optimizer", "adam"), **optim_conf)
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=int(sched_conf["step_size"]), gamma=float(sched_conf["gamma"])
    )
    return optimizer, scheduler


def trainer_hardware(gpus: str, num_cpu_procs: int) -> dict:
    """Lightning ``accelerator`` / ``devices`` / ``strategy`` for ``--gpus`` or CPU DDP."""
    if gpus:
        ids = [int(g) for g in gpus.split(",") if g.strip() != ""]
        if not torch.cuda.is_available():
            raise ValueError(f"GPU ids {gpus!r} were given (--id) but CUDA is not available.")
        return dict(accelerator="gpu", devices=ids, strategy="ddp" if len(ids) > 1 else "auto")
    if num_cpu_procs > 1:
        return dict(accelerator="cpu", devices=num_cpu_procs, strategy="ddp")
    return dict(accelerator="cpu", devices=1, strategy="auto")


def fit(system, exp_dir: Path, max_epochs: int, max_minutes: float | None, conf: dict, hw: dict):
    """Fit ``system`` with checkpoints, logs and automatic resumption; return the best ckpt path."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    ckpt_dir = exp_dir / CHECKPOINT_DIR
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="{epoch}-{val_loss:.3f}",
        monitor="val_loss",
        mode="min",
        save_top_k=1,
        save_last=True,
    )
    # Each (re)start of training logs into a new version_<n> folder: Lightning's loggers would
    # otherwise overwrite the curves of the interrupted run. report.py joins the versions.
    log_dir = str(exp_dir / "logs")
    loggers = [CSVLogger(log_dir, name="csv")]
    try:
        import tensorboard  # noqa: F401
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(log_dir, name="tb"))
    except ImportError:
        pass
    train = conf["training"]
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        max_time={"minutes": max_minutes} if max_minutes else None,
        gradient_clip_val=train.get("gradient_clip_val"),
        callbacks=[checkpoint, LearningRateMonitor(logging_interval="epoch")],
        logger=loggers,
        default_root_dir=str(exp_dir),
        limit_train_batches=train.get("limit_train_batches") or 1.0,
        limit_val_batches=train.get("limit_val_batches") or 1.0,
        log_every_n_steps=max(1, int(train.get("log_every_n_steps", 10))),
        enable_progress_bar=True,
        **hw,
    )
    last = ckpt_dir / "last.ckpt"
    if last.is_file():
        print(f"[stage 2] Resuming from {last}")
    else:
        print(f"[stage 2] Starting training ({max_epochs} epochs); checkpoints in {ckpt_dir}")
    trainer.fit(system, ckpt_path=str(last) if last.is_file() else None)
    return trainer, checkpoint.best_model_path or None


def load_weights(system, ckpt_path: str | None) -> None:
    """Load a Lightning checkpoint's weights into ``system`` (no-op without a checkpoint)."""
    if ckpt_path:
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)["state_dict"]
        system.load_state_dict(state)


def save_model(model, path: Path, conf: dict, extra: dict) -> None:
    """Write ``model.serialize()`` (with the recipe's information) to ``path`` atomically."""
    package = model.serialize()
    package["infos"]["recipe"] = {"config": conf, **extra}
    tmp = path.with_suffix(".tmp")
    torch.save(package, tmp)
    tmp.replace(path)


def remix_options(conf: dict, task: str) -> dict:
    """Online-remixing arguments of every training system (off with training.online_remix)."""
    train = conf["training"]
    return {
        "remix_task": task if train.get("online_remix", True) else None,
        "remix_seed": int(train.get("seed", 0)),
    }


def phase_report(trainer, planned_epochs: int, minutes: float | None, best: str | None) -> dict:
    """What one ``fit`` did: epochs and steps run, and whether the time bound stopped it.

    Lightning counts an epoch cut short by the time bound as done; the bound stopped the phase
    if it ran fewer epochs than planned or its ``Timer`` has no time left.
    """
    from pytorch_lightning.callbacks import Timer

    epochs = int(trainer.current_epoch)
    timers = [cb for cb in trainer.callbacks if isinstance(cb, Timer)]
    out_of_time = any((timer.time_remaining("train") or 0.0) <= 0 for timer in timers)
    return {
        "best_checkpoint": best,
        "epochs_done": epochs,
        "epochs_planned": int(planned_epochs),
        "global_steps": int(trainer.global_step),
        "max_time_minutes": minutes,
        "stopped_by_time": bool(minutes) and (epochs < int(planned_epochs) or out_of_time),
    }


def completed_steps(step_epochs: list, epochs_done: int, planned_epochs: int) -> int:
    """Progressive steps that ran all their epochs.

    Args:
        step_epochs: epochs of each step (``ProgressiveSystem.step_epochs``; ``None`` for an
            open-ended last step, complete when the training ran its planned epochs).
        epochs_done: epochs the trainer finished.
        planned_epochs: the trainer's ``max_epochs``.

    Returns:
        int: the number of leading steps completed (0 to ``len(step_epochs)``).
    """
    end = 0
    for done, n_epochs in enumerate(step_epochs):
        if n_epochs is None:
            ran_to_the_end = epochs_done >= planned_epochs and epochs_done > end
            return done + int(ran_to_the_end)
        end += n_epochs
        if epochs_done < end:
            return done
    return len(step_epochs)


def train_end_to_end(conf: dict, run: Run, exp_dir: Path, max_epochs: int, minutes):
    """Train every block at once with ``LIRSystem``.

    Returns:
        tuple: the trainer, the model with the best checkpoint's weights and the phase report.
    """
    from asteroid_lir.engine import LIRSystem

    model = build_model(conf["model"])
    optimizer, scheduler = make_optimizer_and_scheduler(
        model.parameters(), conf["optim"], conf["scheduler"]
    )
    system = LIRSystem(
        model,
        optimizer,
        run.loss,
        *run.loaders,
        scheduler=scheduler,
        config=conf,
        **remix_options(conf, run.task),
    )
    trainer, best = fit(system, exp_dir, max_epochs, minutes, conf, run.hw)
    if trainer.is_global_zero:
        load_weights(system, best)
    return trainer, system.model, phase_report(trainer, max_epochs, minutes, best)


def train_progressive(conf: dict, run: Run, exp_dir: Path, max_epochs: int, minutes):
    """Train block after block with ``ProgressiveSystem``.

    Returns:
        tuple: the trainer, the model of the last completed step (the full multi-head model when
        every step completed, else :func:`export_prefix` of the completed blocks) and the report.

    Raises:
        RecipeError: if the training stopped before the end of step 1.
    """
    from asteroid_lir.engine.progressive import ProgressiveSystem, export_prefix

    model = build_model(conf["model"])
    optimizer, scheduler = make_optimizer_and_scheduler(
        model.parameters(), conf["optim"], conf["scheduler"]
    )
    # The epochs are split evenly between the blocks (paper: 200 epochs, 100 or 50 per block)
    # unless `progressive.epochs_per_step` says otherwise.
    extra = dict(conf.get("progressive") or {})
    if "epochs_per_step" not in extra:
        extra["total_epochs"] = max_epochs
    system = ProgressiveSystem(
        model,
        optimizer,
        run.loss,
        *run.loaders,
        scheduler=scheduler,
        config=conf,
        **remix_options(conf, run.task),
        **extra,
    )
    trainer, _ = fit(system, exp_dir, max_epochs, minutes, conf, run.hw)
    # The deliverable is the model after the last completed step (the later steps' heads have
    # validation losses that are not comparable with the earlier ones': no "best" checkpoint).
    report = phase_report(trainer, max_epochs, minutes, None)
    n_steps = system.n_prog_steps
    done = completed_steps(system.step_epochs, report["epochs_done"], max_epochs)
    if done == 0:
        why = "the time bound" if report["stopped_by_time"] else "the epoch bound"
        raise RecipeError(
            f"Progressive training stopped by {why} after {report['epochs_done']} epoch(s), "
            f"during step 1 of {n_steps} (epochs per step {system.step_epochs}): no step is "
            "complete, so there is no trained model to export. Raise training.max_time_minutes "
            "or training.epochs, or lower the epochs per step, and run stage 2 again (it resumes)."
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


def train_gated(conf: dict, run: Run, exp_dir: Path, max_epochs: int, minutes):
    """Pre-train without the gate, then train network and gate jointly (``GatedSystem``).

    Returns:
        tuple: the joint phase's trainer, the gated model with its best checkpoint's weights
        and the report of both phases (``phases.pretrain``, ``phases.joint``).
    """
    from asteroid_lir.engine.gated import GATED_EPOCHS, GatedSystem

    gated = dict(conf.get("gated") or {})
    unknown = set(gated) - set(GATED_KEYS)
    if unknown:
        raise ValueError(f"Unknown gated key(s) {sorted(unknown)}; known: {list(GATED_KEYS)}.")
    joint_epochs = int(gated.get("joint_epochs", GATED_EPOCHS))
    # A wall-time bound is shared between the phases in proportion to their epochs.
    total = max_epochs + joint_epochs
    pre_minutes = minutes * max_epochs / total if minutes else None
    joint_minutes = minutes * joint_epochs / total if minutes else None
    pre_dir = exp_dir / "pretrain"
    pre_model_path = pre_dir / "best_model.pth"
    if pre_model_path.is_file():
        print(f"[stage 2] Pre-trained network found, skipping pre-training: {pre_model_path}")
        done_file = pre_dir / DONE_FILE
        pre_report = json.loads(done_file.read_text()) if done_file.is_file() else {}
    else:
        print(f"[stage 2] Gated model, phase 1: pre-training without the gate in {pre_dir}")
        trainer, model, pre_report = train_end_to_end(conf, run, pre_dir, max_epochs, pre_minutes)
        if trainer.is_global_zero:
            # So that eval.py can score the ungated network (the baseline of the gated model).
            pre_conf = {**conf, "training": {**conf["training"], "mode": "end_to_end"}}
            (pre_dir / "conf.yml").write_text(_dump_yaml(pre_conf))
            (pre_dir / DONE_FILE).write_text(json.dumps(pre_report, indent=2) + "\n")
            save_model(model, pre_model_path, pre_conf, {"phase": "pretrain", **pre_report})
        trainer.strategy.barrier()
    print(
        f"[stage 2] Gated model, phase 2: joint training of network and gate "
        f"({joint_epochs} epochs, lambda={gated.get('lambda', 0.1)})"
    )
    system = GatedSystem.from_ungated(
        str(pre_model_path),
        run.loss,
        *run.loaders,
        lr=float(gated.get("lr", 1e-3)),
        step_penalty=float(gated.get("lambda", 0.1)),
        epochs_per_decay=int(gated.get("step_size", 5)),
        n_iters=gated.get("n_iters"),
        gate_kwargs=gated.get("gate") or {},
        config=conf,
        **remix_options(conf, run.task),
        network_lr=gated.get("network_lr"),
        gate_lr=gated.get("gate_lr"),
    )
    trainer, best = fit(system, exp_dir, joint_epochs, joint_minutes, conf, run.hw)
    if trainer.is_global_zero:
        load_weights(system, best)
    joint = phase_report(trainer, joint_epochs, joint_minutes, best)
    report = {
        **joint,
        "stopped_by_time": bool(pre_report.get("stopped_by_time")) or joint["stopped_by_time"],
        "phases": {"pretrain": pre_report, "joint": joint},
    }
    return trainer, system.model, report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    conf = load_config(args.conf, args.overrides)
    exp_dir, meta_dir = Path(args.exp_dir), Path(args.meta_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    train = conf["training"]
    mode = train["mode"]
    n_speech, n_src = n_sources(args.task, conf["data"].get("return_noise", True))
    # The configuration as trained, written to conf.yml before training starts.
    conf["data"]["task"] = args.task
    conf["model"] = resolve_model_conf(conf, n_src, progressive=mode == "progressive")
    if mode == "gated" and conf["model"]["name"] != "LIRSuDORMRFNet":
        raise ValueError(
            "training.mode gated pre-trains a LIRSuDORMRFNet and adds the gate to it "
            f"(GatedSystem.from_ungated); model.name is {conf['model']['name']!r}."
        )
    loss = make_loss(conf, n_speech)
    conf["loss"] = {"extra_weight": loss.extra_weight}
    if train.get("online_remix", True) and not conf["data"].get("return_noise", True):
        raise ValueError(
            "training.online_remix needs data.return_noise: true (remixing sums the speech "
            "and noise targets into new mixtures)."
        )

    import pytorch_lightning as pl

    pl.seed_everything(int(train.get("seed", 0)), workers=True)
    hw = trainer_hardware(args.gpus, args.num_cpu_procs)
    train_loader, val_loader, _ = make_loaders(conf, args.task, meta_dir, args.n_workers)
    run = Run(task=args.task, loaders=(train_loader, val_loader), loss=loss, hw=hw)
    (exp_dir / "conf.yml").write_text(_dump_yaml(conf))
    minutes = train.get("max_time_minutes")
    print(
        f"[stage 2] {mode} training of {conf['model']} for task {args.task} "
        f"({n_speech} speech source(s), {n_src} outputs, noise weight {loss.extra_weight:g}) on "
        f"{hw['accelerator']} x {hw['devices']}; at most {train['epochs']} epochs"
        + (f" and {minutes} min" if minutes else "")
    )
    procedure = {
        "end_to_end": train_end_to_end,
        "progressive": train_progressive,
        "gated": train_gated,
    }[mode]
    start = time.time()
    trainer, model, info = procedure(conf, run, exp_dir, int(train["epochs"]), minutes)
    if not trainer.is_global_zero:
        return 0
    info["wall_seconds_this_run"] = round(time.time() - start, 1)
    model_path = exp_dir / "best_model.pth"
    save_model(model, model_path, conf, info)
    (exp_dir / DONE_FILE).write_text(json.dumps(info, indent=2) + "\n")
    print(f"[stage 2] Saved {model_path} (from {info['best_checkpoint'] or 'the final weights'})")
    return 0


def _dump_yaml(conf: dict) -> str:
    import yaml

    return yaml.safe_dump(conf, sort_keys=False)


if __name__ == "__main__":
    run_cli(main)
