"""Stage 2 of the WHAM! recipe: train a model described by an experiment configuration.

``training.mode`` picks the procedure:

- ``end_to_end``: :class:`asteroid_lir.engine.LIRSystem` (Asteroid ``System`` + online remixing).
- ``progressive``: ``asteroid_lir.engine.progressive.ProgressiveSystem`` (block-wise training,
  the epochs split evenly between the blocks).
- ``gated``: pre-training of the network without the gate (``training.epochs``, end to end, in
  ``<exp_dir>/pretrain``), then joint training of network and gate with
  ``asteroid_lir.engine.gated.GatedSystem`` (``gated.joint_epochs``).

Training resumes from ``<exp_dir>/checkpoints/last.ckpt`` when it exists, so killing the run and
starting it again continues where it stopped. At the end ``<exp_dir>/best_model.pth`` holds the
best checkpoint's model as ``model.serialize()`` (loadable with ``from_pretrained``).

Usage::

    python train.py --conf conf/mini_cpu.yml --task sep_noisy --meta_dir data/<corpus>/metadata \
        --exp_dir exp/mini_cpu_sep_noisy [--gpus 0,1] [--num_cpu_procs 2] [--set training.epochs=2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local.cli import run_cli  # noqa: E402
from local.config import load_config, n_sources  # noqa: E402

CHECKPOINT_DIR = "checkpoints"
DONE_FILE = "train_done.json"


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


def build_model(conf: dict, n_src: int):
    """The ``LIRSuDORMRFNet`` of ``conf['model']`` with ``n_src`` outputs."""
    from asteroid_lir.models import LIRSuDORMRFNet

    model_args = {k: v for k, v in conf["model"].items() if k not in ("name", "n_src")}
    name = conf["model"].get("name", "LIRSuDORMRFNet")
    if name != "LIRSuDORMRFNet":
        raise ValueError(f"model.name {name!r} is not supported by this recipe (LIRSuDORMRFNet).")
    model_args.setdefault("sample_rate", conf["data"]["sample_rate"])
    return LIRSuDORMRFNet(n_src=n_src, **model_args)


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


def train_end_to_end(conf, args, exp_dir, loaders, n_speech, n_src, hw, max_epochs, minutes):
    """Train every block at once with ``LIRSystem``; returns ``(trainer, system, best_ckpt)``."""
    from asteroid_lir.engine import LIRSystem
    from asteroid_lir.losses import SpeechPITLoss

    model = build_model(conf, n_src)
    optimizer, scheduler = make_optimizer_and_scheduler(
        model.parameters(), conf["optim"], conf["scheduler"]
    )
    system = LIRSystem(
        model,
        optimizer,
        SpeechPITLoss(n_speech),
        *loaders,
        scheduler=scheduler,
        config=conf,
        **remix_options(conf, args.task),
    )
    trainer, best = fit(system, exp_dir, max_epochs, minutes, conf, hw)
    return trainer, system, best


def train_progressive(conf, args, exp_dir, loaders, n_speech, n_src, hw, max_epochs, minutes):
    """Train block after block with ``ProgressiveSystem``; returns ``(trainer, system, None)``."""
    from asteroid_lir.engine.progressive import ProgressiveSystem
    from asteroid_lir.losses import SpeechPITLoss

    conf["model"]["head_per_block"] = True  # every block trains with its own head
    model = build_model(conf, n_src)
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
        SpeechPITLoss(n_speech),
        *loaders,
        scheduler=scheduler,
        config=conf,
        **remix_options(conf, args.task),
        **extra,
    )
    trainer, _ = fit(system, exp_dir, max_epochs, minutes, conf, hw)
    # The deliverable of progressive training is the full model after the last step, whose
    # validation loss is not comparable with the earlier steps' heads: keep the final weights.
    return trainer, system, None


def train_gated(conf, args, exp_dir, loaders, n_speech, n_src, hw, max_epochs, minutes):
    """Pre-train without the gate, then train network and gate jointly (``GatedSystem``).

    Returns ``(trainer, system, best_ckpt)`` of the joint phase.
    """
    from asteroid_lir.engine.gated import GatedSystem, build_gated_model, gated_lr_scheduler
    from asteroid_lir.losses import SpeechPITLoss

    gated = conf.get("gated") or {}
    joint_epochs = int(gated.get("joint_epochs", 20))
    # A wall-time bound is shared between the phases in proportion to their epochs.
    total = max_epochs + joint_epochs
    pre_minutes = minutes * max_epochs / total if minutes else None
    joint_minutes = minutes * joint_epochs / total if minutes else None
    pre_dir = exp_dir / "pretrain"
    pre_model_path = pre_dir / "best_model.pth"
    if pre_model_path.is_file():
        print(f"[stage 2] Pre-trained network found, skipping pre-training: {pre_model_path}")
    else:
        print(f"[stage 2] Gated model, phase 1: pre-training without the gate in {pre_dir}")
        trainer, system, best = train_end_to_end(
            conf, args, pre_dir, loaders, n_speech, n_src, hw, max_epochs, pre_minutes
        )
        if trainer.is_global_zero:
            load_weights(system, best)
            save_model(system.model, pre_model_path, conf, {"phase": "pretrain"})
            # So that eval.py can score the ungated network (the baseline of the gated model).
            pre_conf = {**conf, "training": {**conf["training"], "mode": "end_to_end"}}
            (pre_dir / "conf.yml").write_text(_dump_yaml(pre_conf))
        trainer.strategy.barrier()
    print(
        f"[stage 2] Gated model, phase 2: joint training of network and gate "
        f"({joint_epochs} epochs, lambda={gated.get('lambda', 0.1)})"
    )
    model = build_gated_model(str(pre_model_path), **(gated.get("gate") or {}))
    optimizer, _ = make_optimizer_and_scheduler(
        model.parameters(), {**conf["optim"], "lr": float(gated.get("lr", 1e-3))}, conf["scheduler"]
    )
    scheduler = gated_lr_scheduler(
        optimizer, int(gated.get("step_size", 5)), float(gated.get("gamma", 1 / 3))
    )
    system = GatedSystem(
        model,
        optimizer,
        SpeechPITLoss(n_speech),
        *loaders,
        scheduler=scheduler,
        config=conf,
        step_penalty=float(gated.get("lambda", 0.1)),
        **remix_options(conf, args.task),
    )
    trainer, best = fit(system, exp_dir, joint_epochs, joint_minutes, conf, hw)
    return trainer, system, best


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    conf = load_config(args.conf, args.overrides)
    exp_dir, meta_dir = Path(args.exp_dir), Path(args.meta_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    n_speech, n_src = n_sources(args.task, conf["data"].get("return_noise", True))
    conf["data"]["task"] = args.task
    conf["model"]["n_src"] = n_src
    train = conf["training"]
    if train.get("online_remix", True) and not conf["data"].get("return_noise", True):
        raise ValueError(
            "training.online_remix needs data.return_noise: true (remixing sums the speech "
            "and noise targets into new mixtures)."
        )

    import pytorch_lightning as pl

    pl.seed_everything(int(train.get("seed", 0)), workers=True)
    hw = trainer_hardware(args.gpus, args.num_cpu_procs)
    train_loader, val_loader, _ = make_loaders(conf, args.task, meta_dir, args.n_workers)
    loaders = (train_loader, val_loader)
    (exp_dir / "conf.yml").write_text(_dump_yaml(conf))
    minutes = train.get("max_time_minutes")
    print(
        f"[stage 2] {train['mode']} training of {conf['model']} for task {args.task} "
        f"({n_speech} speech source(s), {n_src} outputs) on {hw['accelerator']} x {hw['devices']}; "
        f"at most {train['epochs']} epochs" + (f" and {minutes} min" if minutes else "")
    )
    procedure = {
        "end_to_end": train_end_to_end,
        "progressive": train_progressive,
        "gated": train_gated,
    }[train["mode"]]
    start = time.time()
    trainer, system, best = procedure(
        conf, args, exp_dir, loaders, n_speech, n_src, hw, int(train["epochs"]), minutes
    )
    if not trainer.is_global_zero:
        return 0
    load_weights(system, best)
    info = {
        "best_checkpoint": best,
        "epochs_done": int(trainer.current_epoch),
        "global_steps": int(trainer.global_step),
        "stopped_by_time": bool(minutes) and int(trainer.current_epoch) < int(train["epochs"]),
        "wall_seconds_this_run": round(time.time() - start, 1),
    }
    model_path = exp_dir / "best_model.pth"
    save_model(system.model, model_path, conf, info)
    (exp_dir / DONE_FILE).write_text(json.dumps(info, indent=2) + "\n")
    print(f"[stage 2] Saved {model_path} (from {best or 'the final weights'})")
    return 0


def _dump_yaml(conf: dict) -> str:
    import yaml

    return yaml.safe_dump(conf, sort_keys=False)


if __name__ == "__main__":
    run_cli(main)
