"""Stages 0 and 1 of the unified recipe: the source tree and its index.

Sub-commands::

    python local/prepare_data.py paths    --conf C --data_dir D [--source_dir S]
    python local/prepare_data.py corpus   --conf C --data_dir D [--source_dir S]
    python local/prepare_data.py metadata --conf C --data_dir D [--source_dir S]

``paths`` prints the source tree and the metadata folder (one per line). ``corpus`` (stage 0)
builds the embedded corpus (``asteroid_lir.synth.unified_corpus``) under ``<data_dir>`` unless
``--source_dir`` names a real one (then it only checks that the folder exists) or a complete
corpus with the same settings is already there. ``metadata`` (stage 1) checks every file of the
tree and writes ``<meta_dir>/sources.json``
(``asteroid_lir.data.unified_sources.write_unified_metadata``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from asteroid_lir.experiment.cli import run_stage
from asteroid_lir.experiment.config import load_config

CORPUS_DEFAULTS = dict(
    n_train=200, n_valid=24, n_test=40, clip_seconds=3.0, seed=0, speech_engine="formant"
)


def corpus_settings(conf: dict) -> dict:
    """The embedded corpus settings of a configuration (``data.corpus``) with defaults."""
    settings = dict(CORPUS_DEFAULTS)
    given = dict(conf["data"].get("corpus") or {})
    workers = given.pop("workers", 1)
    unknown = sorted(set(given) - set(settings))
    if unknown:
        raise ValueError(f"Unknown data.corpus key(s) {unknown}; known: {sorted(settings)}.")
    settings.update(given)
    settings["sample_rate"] = int(conf["data"]["sample_rate"])
    settings["workers"] = int(workers)
    return settings


def resolve_paths(conf: dict, data_dir: str, source_dir: str) -> tuple[Path, Path]:
    """(source tree, metadata folder) for a configuration."""
    data = Path(data_dir)
    if source_dir:
        src = Path(source_dir).resolve()
        return src, data / "metadata" / f"{src.name}_{int(conf['data']['sample_rate'])}"
    s = corpus_settings(conf)
    name = (
        f"unified{s['sample_rate'] // 1000}k_{s['n_train']}-{s['n_valid']}-{s['n_test']}"
        f"_{s['clip_seconds']:g}s_{s['speech_engine']}_seed{s['seed']}"
    )
    return data / name, data / "metadata" / name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Unified recipe data stages.")
    parser.add_argument("command", choices=("paths", "corpus", "metadata"))
    parser.add_argument("--conf", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--source_dir", default="")
    args = parser.parse_args(argv)
    conf = load_config(args.conf, args.overrides)
    src, meta = resolve_paths(conf, args.data_dir, args.source_dir)
    if args.command == "paths":
        print(f"{src}\n{meta}")
    elif args.command == "corpus" and args.source_dir:
        if not src.is_dir():
            raise FileNotFoundError(f"--source_dir {src} is not a directory.")
        print(f"[stage 0] Using the source tree {src} (checked in stage 1).")
    elif args.command == "corpus" and (src / "corpus_info.json").is_file():
        print(f"[stage 0] The corpus is already there: {src}")
    elif args.command == "corpus":
        from asteroid_lir.synth import build_unified_corpus

        settings = corpus_settings(conf)
        print(f"[stage 0] Generating the embedded corpus in {src} ({settings})", flush=True)
        build_unified_corpus(src, **settings)
    else:
        from asteroid_lir.data.unified_sources import write_unified_metadata

        index = write_unified_metadata(src, meta, int(conf["data"]["sample_rate"]))
        print(f"[stage 1] {meta / 'sources.json'}: files per class {json.dumps(index['counts'])}")
        missing = {s: m for s, m in index["missing"].items() if m}
        if missing:
            skipped = "(tasks needing them are skipped)"
            print(f"[stage 1] WARNING: classes without files: {missing} {skipped}")
    return 0


if __name__ == "__main__":
    run_stage(main)
