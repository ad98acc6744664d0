"""Stage 2 of the unified recipe: train TUSS (or the unconditional baseline) on prompted mixtures.

Every training batch is drawn on the fly from the ``tr`` split of the source index
(:class:`asteroid_lir.data.unified.UnifiedMixtures`): 2, 3 or 4 prompts per batch, the classes
drawn as in the TUSS reference, sometimes one prompt whose source is absent. The loss is the
reference's SNR with zero references, permutation-invariant inside groups of equal prompts
(``local/losses.py``); the baseline (``BSLocoformerNet``, fixed outputs) is trained with PIT over
all of its outputs, references padded with zeros. Validation uses fixed batches of the ``cv``
split. Optimiser: AdamW with a linear warm-up, the learning rate halved when the validation
loss stalls (``training.patience`` epochs), gradient clipping.

Training resumes from ``<exp_dir>/checkpoints/last.ckpt`` when it exists. ``training.
max_time_minutes`` bounds the wall time (Lightning's timer, kept across resumes).
``<exp_dir>/conf.yml`` is the configuration as trained; at the end ``best_model.pth`` holds the
model with the best validation loss (``model.serialize()``, loadable with Asteroid's
``BaseModel.from_pretrained``) and ``train_done.json`` what the training did.

Usage::

    python train.py --conf conf/tuss_cpu.yml --meta_dir data/unified8k/metadata \
        --exp_dir exp/tuss_cpu [--gpus 0] [--set training.max_time_minutes=5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local.cli import run_cli  # noqa: E402
from local.config import load_config  # noqa: E402
from local.losses import PromptSNRLoss  # noqa: E402
from local.models import build_model, count_parameters  # noqa: E402

CHECKPOINT_DIR = "checkpoints"
DONE_FILE = "train_done.json"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a unified-separation model (stage 2).")
    parser.add_argument("--conf", required=True, help="experiment configuration (YAML)")
    parser.add_argument("--meta_dir", required=True, help="folder with sources.json (stage 1)")
    parser.add_argument("--exp_dir", required=True, help="experiment folder")
    parser.add_argument("--gpus", default="", help="GPU ids, e.g. '0' or '0,1' (empty: CPU)")
    parser.add_argument("--n_workers", type=int, default=None, help="data loader workers")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    return parser.parse_args(argv)


def load_index(meta_dir: Path, sample_rate: int) -> dict:
    """The source index of stage 1, checked against the configuration's sample rate."""
    path = meta_dir / "sources.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run stage 1 (./run.sh --stage 1).")
    index = json.loads(path.read_text())
    if int(index["sample_rate"]) != int(sample_rate):
        raise ValueError(
            f"The sources in {path} are at {index['sample_rate']} Hz but the configuration "
            f"asks for {sample_rate} Hz (data.sample_rate): run stage 1 again."
        )
    return index


def make_loaders(conf: dict, index: dict, n_workers: int | None):
    """Training (new mixtures every epoch) and validation (fixed) loaders."""
    from torch.utils.data import DataLoader

    from asteroid_lir.data.unified import MixingOptions, UnifiedMixtures

    data, train = conf["data"], conf["training"]
    options = MixingOptions(**(data.get("mixing") or {}))
    seed = int(train.get("seed", 0))
    train_set = UnifiedMixtures(
        index,
        "tr",
        int(train["batches_per_epoch"]),
        int(train["batch_size"]),
        float(data["segment"]),
        options,
        seed=seed,
    )
    val_set = UnifiedMixtures(
        index,
        "cv",
        int(train.get("valid_batches", 4)),
        int(train["batch_size"]),
        float(data["segment"]),
        options,
        seed=seed + 1,
        fixed=True,
    )
    workers = int(train.get("num_workers", 0) if n_workers is None else n_workers)
    common = dict(batch_size=None, num_workers=workers, persistent_workers=workers > 0)
    return DataLoader(train_set, shuffle=False, **common), DataLoader(val_set, **common)


def hardware(gpus: str) -> dict:
    """Lightning accelerator settings for ``--gpus``."""
    if not gpus:
        return dict(accelerator="cpu", devices=1)
    ids = [int(g) for g in gpus.split(",") if g.strip()]
    if not torch.cuda.is_available():
        raise ValueError(f"GPU ids {gpus!r} were given (--id) but CUDA is not available.")
    return dict(accelerator="gpu", devices=ids, strategy="ddp" if len(ids) > 1 else "auto")


def main(argv=None) -> int:
    args = parse_args(argv)
    conf = load_config(args.conf, args.overrides)
    exp_dir, meta_dir = Path(args.exp_dir), Path(args.meta_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    data, train = conf["data"], conf["training"]
    threads = train.get("num_threads")
    if threads:
        torch.set_num_threads(int(threads))

    import pytorch_lightning as pl
    from local.system import UnifiedSystem
    from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    pl.seed_everything(int(train.get("seed", 0)), workers=True)
    index = load_index(meta_dir, int(data["sample_rate"]))
    train_loader, val_loader = make_loaders(conf, index, args.n_workers)
    model = build_model(conf["model"], int(data["sample_rate"]))
    loss = PromptSNRLoss(**(conf.get("loss") or {}))
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=float(train.get("lr", 1e-3)),
        weight_decay=float(train.get("weight_decay", 1e-2)),
    )
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=0.5, patience=int(train.get("patience", 5))
    )
    system = UnifiedSystem(
        model,
        optimizer,
        loss,
        train_loader,
        val_loader,
        scheduler=scheduler,
        config=conf,
        warmup_steps=int(train.get("warmup_steps", 0)),
    )
    (exp_dir / "conf.yml").write_text(yaml.safe_dump(conf, sort_keys=False))
    ckpt_dir = exp_dir / CHECKPOINT_DIR
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="{epoch}-{val_loss:.3f}",
        monitor="val_loss",
        mode="min",
        save_top_k=1,
        save_last=True,
    )
    minutes = train.get("max_time_minutes")
    trainer = pl.Trainer(
        max_epochs=int(train["epochs"]),
        max_time={"minutes": float(minutes)} if minutes else None,
        gradient_clip_val=train.get("gradient_clip_val"),
        callbacks=[checkpoint, LearningRateMonitor(logging_interval="epoch")],
        logger=CSVLogger(str(exp_dir / "logs"), name="csv"),
        default_root_dir=str(exp_dir),
        log_every_n_steps=max(1, int(train.get("log_every_n_steps", 10))),
        enable_progress_bar=bool(train.get("progress_bar", True)),
        num_sanity_val_steps=0,
        **hardware(args.gpus),
    )
    last = ckpt_dir / "last.ckpt"
    n_params = count_parameters(model)
    print(
        f"[stage 2] {conf['model']['name']} ({conf['model'].get('preset')}, {n_params:,} "
        f"parameters) at {data['sample_rate']} Hz; batches of {train['batch_size']} x "
        f"{data['segment']} s; at most {train['epochs']} epochs"
        + (f" and {minutes} min" if minutes else "")
        + (f"; resuming from {last}" if last.is_file() else ""),
        flush=True,
    )
    start = time.time()
    trainer.fit(system, ckpt_path=str(last) if last.is_file() else None)
    if not trainer.is_global_zero:
        return 0
    best = checkpoint.best_model_path or None
    if best:
        state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
        system.load_state_dict(state)
    epochs = int(trainer.current_epoch)
    info = {
        "model": conf["model"]["name"],
        "parameters": n_params,
        "best_checkpoint": best,
        "best_val_loss": float(checkpoint.best_model_score)
        if checkpoint.best_model_score is not None
        else None,
        "epochs_done": epochs,
        "global_steps": int(trainer.global_step),
        "max_time_minutes": minutes,
        "stopped_by_time": bool(minutes) and epochs < int(train["epochs"]),
        "wall_seconds_this_run": round(time.time() - start, 1),
        "threads": torch.get_num_threads(),
    }
    package = system.model.serialize()
    package["infos"]["recipe"] = {"config": conf, **info}
    tmp = exp_dir / "best_model.tmp"
    torch.save(package, tmp)
    tmp.replace(exp_dir / "best_model.pth")
    (exp_dir / DONE_FILE).write_text(json.dumps(info, indent=2) + "\n")
    print(
        f"[stage 2] Saved {exp_dir / 'best_model.pth'}: {info['global_steps']} steps, "
        f"{epochs} epochs, best val loss {info['best_val_loss']}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
