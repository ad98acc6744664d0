"""Command line: ``python -m asteroid_lir.bench [NAME ...] [--device cpu|cuda] [--json OUT]``."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import torch

from . import BENCHMARKS
from .common import machine_info


def _load(name: str):
    try:
        return importlib.import_module(BENCHMARKS[name])
    except ModuleNotFoundError as err:
        raise SystemExit(f"Benchmark '{name}' is registered but cannot be imported: {err}") from err


def build_parser(modules: dict) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m asteroid_lir.bench",
        description="Benchmarks of asteroid_lir components against their baselines, side by side.",
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: all of {list(BENCHMARKS)})"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument("--repeats", type=int, default=5, help="counted runs per measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    for module in modules.values():
        if hasattr(module, "add_arguments"):
            module.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Parse the names first, so that only the requested modules (and their options) load.
    names = [a for a in argv if not a.startswith("-") and a in BENCHMARKS]
    modules = {n: _load(n) for n in (names or BENCHMARKS)}
    parser = build_parser(modules)
    args = parser.parse_args(argv)
    if args.list:
        for name in BENCHMARKS:
            print(f"{name:12s} {getattr(_load(name), 'DESCRIPTION', '')}")
        return 0
    bad = [n for n in args.names if n not in BENCHMARKS]
    if bad:
        parser.error(f"unknown benchmark(s) {bad}; choose from {list(BENCHMARKS)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda was asked for but no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {}
    for name, module in modules.items():
        print(f"## {name}: {getattr(module, 'DESCRIPTION', '')}", flush=True)
        result = module.run(args)
        results[name] = result
        print(module.to_markdown(result), flush=True)
        print(flush=True)
    machine = machine_info(args.device)
    print("machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()))
    if args.json is not None:
        if len(results) == 1:
            payload = {**next(iter(results.values())), "machine": machine}
        else:
            payload = {"benchmarks": results, "machine": machine}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
