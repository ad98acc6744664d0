"""Stage 2 of the unified recipe: train TUSS (or the unconditional baseline) on prompted mixtures.

Every training batch is drawn on the fly from the ``tr`` split of the source index
(:class:`asteroid_lir.data.unified.UnifiedMixtures`): 2, 3 or 4 prompts per batch, the classes
drawn as in the TUSS reference, sometimes one prompt whose source is absent. The loss is the
reference's SNR with zero references, PIT inside groups of equal prompts
(:class:`asteroid_lir.losses.PromptSNRLoss`); the baseline (``BSLocoformerNet``, fixed outputs) is
trained with PIT over all of its outputs, references padded with zeros. Validation uses fixed
batches of the ``cv`` split. The optimiser, schedule (``scheduler.type: plateau``), warm-up,
budget (``training.epochs`` of ``training.batches_per_epoch`` steps), checkpoints, resumption and
the procedures of ``training.mode`` (``end_to_end``; ``gated``: pre-training without the gate,
then the network and the per-prompt gate jointly with the step penalty, e.g.
``conf/tuss_gated_cpu.yml``; ``progressive``) are the library's
(:mod:`asteroid_lir.engine.procedures`).

Usage::

    python train.py --conf conf/tuss_cpu.yml --meta_dir data/metadata/<corpus> \
        --exp_dir exp/tuss_cpu [--gpus 0] [--set training.epochs=5]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from asteroid_lir.experiment.cli import run_stage
from asteroid_lir.experiment.config import load_config
from asteroid_lir.experiment.registry import resolve_model_conf
from asteroid_lir.experiment.trainer import train_stage

SECTIONS = ("data", "model", "training", "optim", "scheduler", "evaluation")


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


def loaders(conf: dict, index: dict, n_workers: int | None) -> tuple:
    """Training (new mixtures every epoch) and validation (fixed) loaders."""
    from torch.utils.data import DataLoader

    from asteroid_lir.data.unified import MixingOptions, UnifiedMixtures

    data, train_conf = conf["data"], conf["training"]
    seed, n_train = int(train_conf.get("seed", 0)), int(train_conf["batches_per_epoch"])
    options = MixingOptions(**(data.get("mixing") or {}))
    common = dict(
        batch_size=int(train_conf["batch_size"]), segment=float(data["segment"]), options=options
    )
    train_set = UnifiedMixtures(index, "tr", n_train, seed=seed, **common)
    n_valid = int(train_conf.get("valid_batches", 4))
    val_set = UnifiedMixtures(index, "cv", n_valid, seed=seed + 1, fixed=True, **common)
    workers = int(train_conf.get("num_workers", 0) if n_workers is None else n_workers)
    kwargs = dict(batch_size=None, num_workers=workers, persistent_workers=workers > 0)
    return DataLoader(train_set, shuffle=False, **kwargs), DataLoader(val_set, **kwargs)


def main(argv=None) -> int:
    from asteroid_lir.losses import PromptSNRLoss

    args = parse_args(argv)
    conf = load_config(args.conf, args.overrides, SECTIONS)
    data, train_conf = conf["data"], conf["training"]
    progressive = train_conf.get("mode") == "progressive"
    conf["model"] = resolve_model_conf(conf["model"], int(data["sample_rate"]), None, progressive)
    return train_stage(
        conf, Path(args.exp_dir), PromptSNRLoss(**(conf.get("loss") or {})),
        lambda: loaders(conf, load_index(Path(args.meta_dir), int(data["sample_rate"])),
                        args.n_workers),
        f"[stage 2] {conf['model']['name']} at {data['sample_rate']} Hz; batches of "
        f"{train_conf['batch_size']} x {data['segment']} s; {train_conf['epochs']} epochs of "
        f"{train_conf['batches_per_epoch']} steps",
        gpus=args.gpus, warmup_steps=int(train_conf.get("warmup_steps", 0)),
        prompted_batches=True,  # (mixtures, references, prompts)
    )  # fmt: skip


if __name__ == "__main__":
    run_stage(main)
