"""Experiment grids: several configurations x several seeds, every model at the same number of
training steps.

A grid file (YAML) names the configurations of a comparison and the common budget::

    steps: 3000              # optimizer updates of every model (both phases of a gated one)
    seeds: [0, 1, 2]
    threads: 1               # torch threads of every run (the same model on any machine)
    entries:
      t1_1x1x1: {conf: conf/trends/t1_1x1x1.yml}
      gated_1x1x4: {conf: conf/trends/gated_1x1x4.yml, joint_share: 0.1}
      sfc: {conf: conf/front_ends/sfc_16k.yml, set: ["optim.lr=5e-4"]}
      enh: {conf: conf/trends/t1_1x1x4.yml, args: [--task, enh_single]}  # run.sh options
    run_args: [--held_out, "false"]   # options of every run.sh call
    set: ["evaluation.metrics=[si_sdr]"]   # overrides of every run

:func:`grid_runs` turns it into one run per (entry, seed): its tag (``<entry>_s<seed>``), its
configuration and the overrides that give it the budget (``training.epochs`` from the steps and
the configuration's steps per epoch; for a gated model ``gated.joint_epochs``, the joint phase's
share of the same total, as the paper's 180 + 20 epochs against 200; a progressive model's
epochs are split evenly between its blocks by the training procedure, each block's schedule
restarting, paper Sec. 4.2), the seed and the thread count. No wall-time bound is set: a busy
machine only takes longer. :func:`collect` reads back every run's results.

Command line (used by the recipes' ``utils/run_grid.sh``)::

    python -m asteroid_lir.experiment.grid runs GRID.yml   # "tag<TAB>conf<TAB>set<TAB>args"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from .config import load_config

__all__ = ["collect", "grid_runs", "load_grid", "steps_per_epoch"]


def load_grid(path: str | Path) -> dict:
    """Read and check a grid file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a missing or bad ``steps``, ``seeds`` or ``entries``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Grid file {path} not found.")
    grid = yaml.safe_load(path.read_text()) or {}
    steps, seeds, entries = grid.get("steps"), grid.get("seeds"), grid.get("entries")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"{path}: 'steps' must be a positive integer, got {steps!r}.")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"{path}: 'seeds' must be a non-empty list of integers, got {seeds!r}.")
    if not isinstance(entries, dict) or not entries:
        raise ValueError(f"{path}: 'entries' must map names to {{conf: ...}}, got {entries!r}.")
    for name, entry in entries.items():
        if not isinstance(entry, dict) or "conf" not in entry:
            raise ValueError(f"{path}: entry {name!r} names no configuration (conf: FILE).")
        unknown = set(entry) - {"conf", "set", "joint_share", "args"}
        if unknown:
            raise ValueError(f"{path}: entry {name!r} has unknown keys {sorted(unknown)}.")
    return {"threads": 1, **grid}


def steps_per_epoch(conf: dict) -> int:
    """Optimizer updates per epoch of a configuration (``training.batches_per_epoch`` or
    ``training.limit_train_batches``).

    Raises:
        ValueError: neither is a fixed number (the steps would depend on the corpus size).
    """
    training = conf.get("training") or {}
    for key in ("batches_per_epoch", "limit_train_batches"):
        if isinstance(training.get(key), int) and training[key] > 0:
            return int(training[key])
    raise ValueError(
        "A grid needs a fixed number of steps per epoch: set training.batches_per_epoch or "
        "training.limit_train_batches in the configuration."
    )


def _budget(conf: dict, steps: int, joint_share: float | None) -> list[str]:
    per_epoch = steps_per_epoch(conf)
    total = steps // per_epoch
    if total * per_epoch != steps:
        raise ValueError(f"{steps} steps is not a whole number of epochs of {per_epoch} steps.")
    mode = (conf.get("training") or {}).get("mode", "end_to_end")
    if mode == "gated":
        share = 0.1 if joint_share is None else float(joint_share)
        joint = max(1, round(total * share))
        if joint >= total:
            raise ValueError(f"joint_share {share} leaves no pre-training epoch of {total}.")
        return [f"training.epochs={total - joint}", f"gated.joint_epochs={joint}"]
    if mode == "progressive":
        n_blocks = int(conf["model"].get("n_blocks", 1))
        if total % n_blocks:
            raise ValueError(
                f"{total} epochs do not split evenly between {n_blocks} progressive blocks."
            )
    return [f"training.epochs={total}"]


def grid_runs(grid: dict, base_dir: str | Path = ".") -> list[dict]:
    """One run per (entry, seed), in entry order then seed order.

    Args:
        grid: :func:`load_grid`'s result.
        base_dir: the folder the entries' configuration paths are relative to (the recipe).

    Returns:
        list of dict: ``entry``, ``seed``, ``tag``, ``conf``, ``overrides`` (strings for the
        recipe's ``--set``) and ``args`` (the entry's own ``run.sh`` options).
    """
    budgets = {}
    for name, entry in grid["entries"].items():
        conf = load_config(
            Path(base_dir) / entry["conf"], [*grid.get("set", []), *entry.get("set", [])]
        )
        budgets[name] = _budget(conf, int(grid["steps"]), entry.get("joint_share"))
    runs = []
    for run in grid_runs_light(grid):
        entry = grid["entries"][run["entry"]]
        overrides = [
            *budgets[run["entry"]],
            f"training.seed={run['seed']}",
            f"training.num_threads={int(grid['threads'])}",
            "training.max_time_minutes=null",
            *grid.get("set", []),
            *entry.get("set", []),
        ]
        args = [str(a) for a in entry.get("args", [])]
        runs.append({**run, "conf": entry["conf"], "overrides": overrides, "args": args})
    return runs


def collect(grid: dict, root: str | Path, files: tuple[str, ...] = ("results.json",)) -> dict:
    """Results of the runs found under ``root``: ``{entry: [{seed, exp_dir, <file stem>: ...}]}``
    (an entry's list holds only the seeds whose first file exists)."""
    out: dict = {name: [] for name in grid["entries"]}
    for run in grid_runs_light(grid):
        exp = Path(root) / run["tag"]
        if not (exp / files[0]).is_file():
            continue
        record = {"seed": run["seed"], "exp_dir": str(exp)}
        for name in files:
            path = exp / name
            record[Path(name).stem] = json.loads(path.read_text()) if path.is_file() else None
        out[run["entry"]].append(record)
    return out


def grid_runs_light(grid: dict) -> list[dict]:
    """``entry``, ``seed`` and ``tag`` of every run, without reading the configurations."""
    return [
        {"entry": name, "seed": seed, "tag": f"{name}_s{seed}"}
        for name in grid["entries"]
        for seed in grid["seeds"]
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="List the runs of an experiment grid.")
    parser.add_argument("command", choices=("runs",))
    parser.add_argument("grid", help="grid file (YAML)")
    parser.add_argument("--base_dir", default=".", help="folder of the configuration paths")
    args = parser.parse_args(argv)
    for run in grid_runs(load_grid(args.grid), args.base_dir):
        fields = [run["tag"], run["conf"], " ".join(run["overrides"]), " ".join(run["args"])]
        print("\t".join(fields))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
