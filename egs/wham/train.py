"""Stage 2 of the WHAM! recipe: train the model of an experiment configuration.

``model.name``: any model of ``asteroid_lir.models`` (default ``LIRSuDORMRFNet``);
``training.mode``: ``end_to_end``, ``progressive`` or ``gated`` (:mod:`asteroid_lir.engine.
procedures`). Loss: ``SpeechPITLoss`` (the noise term weighted by ``loss.extra_weight``, 0 in the
paper); batches remixed online. Budget: ``training.epochs`` of ``training.limit_train_batches``
steps (``training.max_time_minutes`` is only a safety net; the results say when it stopped).

``<exp_dir>/conf.yml`` is the configuration as trained (task, outputs, sample rate filled in). A
killed run resumes from ``checkpoints/last.ckpt``; a finished one is not trained again; another
configuration under the same folder is refused. At the end ``best_model.pth`` holds the model
(``model.serialize()``) and ``train_done.json`` what the training did.

Usage: ``python train.py --conf C --task sep_noisy --meta_dir M --exp_dir E [--gpus 0,1]
[--num_cpu_procs 2] [--set training.epochs=2]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asteroid_lir.experiment.cli import run_stage
from asteroid_lir.experiment.config import load_config
from asteroid_lir.experiment.registry import resolve_model_conf
from asteroid_lir.experiment.trainer import train_stage

SECTIONS = ("data", "model", "training", "optim", "scheduler")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a WHAM! experiment (recipe stage 2).")
    parser.add_argument("--conf", required=True, help="experiment configuration (YAML)")
    parser.add_argument("--task", required=True, choices=("sep_noisy", "enh_single"))
    parser.add_argument("--meta_dir", required=True, help="folder with tr.json and cv.json")
    parser.add_argument("--exp_dir", required=True, help="experiment folder (outputs)")
    parser.add_argument("--gpus", default="", help="GPU ids, e.g. '0,1' (empty: CPU)")
    parser.add_argument("--num_cpu_procs", type=int, default=0, help="CPU DDP processes (>= 2)")
    parser.add_argument("--n_workers", type=int, default=None, help="data loader workers")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    return parser.parse_args(argv)


def resolved_config(args) -> dict:
    """The configuration as it will be trained."""
    from asteroid_lir.tasks import n_speech

    conf = load_config(args.conf, args.overrides, SECTIONS, default_model="LIRSuDORMRFNet")
    data, mode = conf["data"], conf["training"].setdefault("mode", "end_to_end")
    data["task"] = args.task
    data.setdefault("return_noise", True)
    n_src = n_speech(args.task) + int(data["return_noise"])
    conf["model"] = resolve_model_conf(conf["model"], data["sample_rate"], n_src,
                                       mode == "progressive", "LIRSuDORMRFNet")  # fmt: skip
    conf["loss"] = {"extra_weight": float((conf.get("loss") or {}).get("extra_weight", 1.0))}
    if conf["training"].get("online_remix", True) and not data["return_noise"]:
        raise ValueError(
            "training.online_remix needs data.return_noise: true (remixing sums "
            "the speech and noise targets into new mixtures)."
        )
    return conf


def loaders(conf: dict, task: str, meta_dir: Path, n_workers: int | None) -> tuple:
    """Training and validation loaders of ``data.segment``-second chunks."""
    from torch.utils.data import DataLoader

    from asteroid_lir.data import WhamDataset

    data, train_conf = conf["data"], conf["training"]
    for split in ("tr.json", "cv.json"):
        if not (meta_dir / split).is_file():
            raise FileNotFoundError(
                f"Metadata file {meta_dir / split} is missing: run stage 1 (./run.sh --stage 1)."
            )
    kwargs = {k: data[k] for k in ("segment", "sample_rate", "return_noise")}
    sets = [WhamDataset(str(meta_dir / f"{s}.json"), task=task, **kwargs) for s in ("tr", "cv")]
    if len(sets[0]) < train_conf["batch_size"]:
        raise ValueError(
            f"The training set has {len(sets[0])} mixtures, fewer than one batch "
            f"(training.batch_size={train_conf['batch_size']})."
        )
    workers = train_conf.get("num_workers", 0) if n_workers is None else n_workers
    common = dict(batch_size=train_conf["batch_size"], num_workers=workers,
                  persistent_workers=workers > 0)  # fmt: skip
    return (
        DataLoader(sets[0], shuffle=True, drop_last=True, **common),
        DataLoader(sets[1], shuffle=False, **common),
    )


def main(argv=None) -> int:
    from asteroid_lir.losses import SpeechPITLoss

    args = parse_args(argv)
    conf = resolved_config(args)
    train_conf = conf["training"]
    n_speech = conf["model"]["n_src"] - int(conf["data"]["return_noise"])
    remix = args.task if train_conf.get("online_remix", True) else None
    return train_stage(
        conf, Path(args.exp_dir), SpeechPITLoss(n_speech, conf["loss"]["extra_weight"]),
        lambda: loaders(conf, args.task, Path(args.meta_dir), args.n_workers),
        f"[stage 2] {train_conf['mode']} training of {conf['model']} for task {args.task}, "
        f"{train_conf['epochs']} epochs",
        gpus=args.gpus, num_cpu_procs=args.num_cpu_procs,
        remix_task=remix, remix_seed=int(train_conf.get("seed", 0)),
    )  # fmt: skip


if __name__ == "__main__":
    run_stage(main)
