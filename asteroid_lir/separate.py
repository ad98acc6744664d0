"""Separate audio files of any length with a trained model, from the command line.

Usage::

    asteroid-lir-separate MODEL INPUT [INPUT ...] --out_dir DIR [--chunk_seconds S]
        [--overlap_seconds S] [--prompts a,b] [--channels mix|each] [--device cpu|cuda]
    python -m asteroid_lir.separate ...   # the same

``MODEL`` is a file written with ``torch.save(model.serialize(), path)`` (any asteroid_lir or
Asteroid model, e.g. a recipe's ``best_model.pth``) or an experiment folder holding
``best_model.pth``. Each ``INPUT`` is an audio file or a folder, whose audio files (directly
inside, not in sub-folders) are taken in sorted order. Every input goes through
:func:`asteroid_lir.audio_files.separate_file`, the path of ``model.file_separate()``: for
``x.wav`` the estimates are written as ``DIR/x_est1.wav``, ``DIR/x_est2.wav``, ... (prompt models:
``DIR/x_<prompt>.wav``; with ``--channels each``: ``DIR/x_ch<c>_<tag>.wav``), 32-bit float WAV at
the input's sample rate and of the input's length, existing outputs overwritten: an input at
another rate than the model's is resampled to the model's rate, separated and the estimates
resampled back. Two inputs with the same name in different folders would write the same
outputs: that is refused before anything runs.

Long inputs are separated in overlapping chunks with bounded memory
(:func:`asteroid_lir.inference.separate_chunked`). A file that cannot be separated (unreadable,
empty, NaN, silent) is reported with its name and the others are still processed; the exit
status is 1 if any file failed, 2 for a usage error (bad options, model that does not load).

Asteroid's ``asteroid-infer`` cannot load asteroid_lir models (Asteroid looks model names up in
its own registry, which asteroid_lir fills only once imported): this command is its
counterpart.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from .audio_files import output_tags, separate_file
from .inference import check_prompts, chunk_samples
from .models.base import load_model_conf

__all__ = ["AUDIO_EXTENSIONS", "collect_inputs", "load_model", "main"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aif", ".aiff", ".au", ".caf")
_OUTPUT_STEM = re.compile(r"_est\d+$")


def load_model(path: str | Path) -> torch.nn.Module:
    """Load a separation model from a ``serialize()`` file or an experiment folder.

    Args:
        path: a model file, or a folder holding ``best_model.pth``.

    Returns:
        torch.nn.Module: the model (an Asteroid ``BaseModel``), in eval mode, on the CPU.

    Raises:
        FileNotFoundError: no such file, or a folder without ``best_model.pth``.
        ValueError: a file that is not a model package, or names a model class that neither
            Asteroid nor asteroid_lir registers.
    """
    from asteroid import models as asteroid_models

    path = Path(path)
    if path.is_dir():
        if not (path / "best_model.pth").is_file():
            raise FileNotFoundError(f"The experiment folder '{path}' has no best_model.pth.")
        path = path / "best_model.pth"
    conf = load_model_conf(path)  # refuses a file that is not a serialize()d model package
    try:
        model_cls = asteroid_models.get(conf["model_name"])
    except ValueError:
        raise ValueError(
            f"'{path}' holds a {conf['model_name']!r}, a model neither Asteroid nor asteroid_lir "
            "knows (a custom model must be registered with asteroid.models.register_model)."
        ) from None
    return model_cls.from_pretrained(conf).eval()


def collect_inputs(
    inputs: Sequence[str | Path],
    out_dir: Path,
    report: Callable[[str], None] | None = None,
    prompts: Sequence[str] | None = None,
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Audio files named on the command line, folders expanded (sorted, not recursive).

    Args:
        inputs: files and folders.
        out_dir: the output folder (our own outputs found there are not taken as inputs).
        prompts: the prompts of a prompt model (whose outputs are named by them).
        report: called with a line saying which files each folder gave.

    Returns:
        tuple: the files (each once, in order) and ``(input, reason)`` for inputs that gave
        nothing (missing path, folder without audio files).
    """
    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            in_out_dir = out_dir.exists() and path.resolve() == out_dir.resolve()
            found = sorted(
                p
                for p in path.iterdir()
                if p.is_file()
                and p.suffix.lower() in AUDIO_EXTENSIONS
                and not (in_out_dir and _is_output(p.stem, prompts))
            )
            if not found:
                problems.append((str(path), f"no audio files ({', '.join(AUDIO_EXTENSIONS)})"))
            if report is not None:
                names = ", ".join(p.name for p in found)
                report(f"found {len(found)} audio file(s) in {path}: {names}")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append((str(path), "no such file or folder"))
    unique: dict[Path, Path] = {}
    for f in files:
        unique.setdefault(f.resolve(), f)
    return list(unique.values()), problems


def _is_output(stem: str, prompts: Sequence[str] | None) -> bool:
    tags = [] if prompts is None else output_tags(prompts, len(prompts))
    return bool(_OUTPUT_STEM.search(stem)) or any(stem.endswith(f"_{t}") for t in tags)


def _name_clashes(files: list[Path]) -> list[str]:
    by_stem: dict[str, list[Path]] = {}
    for f in files:
        by_stem.setdefault(f.stem, []).append(f)
    return [" and ".join(map(str, fs)) for fs in by_stem.values() if len(fs) > 1]


def _separate_file(path: Path, model, args, report: Callable[[str], None]) -> None:
    bar = None

    def on_chunk(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=f"{path.name} chunks", leave=False, disable=args.quiet)
        bar.update(1)

    model_rate = int(round(float(model.sample_rate)))
    try:
        done = separate_file(
            model,
            path,
            args.out_dir,
            force_overwrite=True,
            prompts=args.prompts,
            resample=True,
            channels=args.channels,
            chunk_seconds=args.chunk_seconds,
            overlap_seconds=args.overlap_seconds,
            fade_seconds=args.fade_seconds,
            batch_chunks=args.batch_chunks,
            on_chunk=on_chunk,
            details=True,
        )
    finally:
        if bar is not None:
            bar.close()
    if done.sample_rate != model_rate:
        report(
            f"{path.name}: resampled from {done.sample_rate} Hz to the model's {model_rate} Hz "
            f"(estimates written back at {done.sample_rate} Hz)"
        )
    n_out = len(done.paths[0])
    what = "" if args.prompts is None else f" ({', '.join(args.prompts)})"
    report(f"{path.name}: {done.n_chunks} chunk(s), {n_out} estimates{what} written")
    if done.steps is not None:
        several = len(done.paths) > 1
        for b, steps in enumerate(done.steps.float()):
            where = f" channel {b + 1}" if several else ""
            report(
                f"{path.name}{where}: gated steps per chunk mean {steps.mean():.2f} "
                f"(min {int(steps.min())}, max {int(steps.max())}) over {steps.shape[0]} chunk(s)"
            )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asteroid-lir-separate",
        description="Separate audio files of any length with a trained asteroid_lir/Asteroid "
        "model, in overlapping chunks with bounded memory.",
    )
    add = parser.add_argument
    add("model", help="serialize()d model file, or experiment folder")
    add("inputs", nargs="+", metavar="INPUT", help="audio files or folders")
    add("--out_dir", required=True, type=Path, help="output folder")
    add("--chunk_seconds", type=float, default=4.0, help="chunk length (default 4 s)")
    add("--overlap_seconds", type=float, default=1.0, help="overlap of chunks (default 1 s)")
    add(
        "--fade_seconds",
        type=float,
        default=None,
        help="cross-fade inside the overlap (default: half the overlap, centred)",
    )
    add("--batch_chunks", type=int, default=1, help="chunks per model call (default 1)")
    add("--prompts", default=None, help="comma-separated prompt names (prompt-conditioned models)")
    add(
        "--channels",
        choices=("mix", "each"),
        default="mix",
        help="mix: mix down to mono (default); each: separate every channel",
    )
    add("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    add("--quiet", action="store_true", help="no progress bars or messages")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        int: exit status, 0 when every input was separated, 1 when some failed (the others are
        still written), 2 for a usage error (reported by argparse).
    """
    parser = build_parser()
    args = parser.parse_args(argv)

    def report(message: str) -> None:
        if not args.quiet:
            tqdm.write(message, file=sys.stderr)

    if not args.device.startswith(("cpu", "cuda")):
        parser.error(f"--device must be cpu or cuda[:N], got {args.device!r}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda was asked for but no CUDA device is available")
    args.prompts = [p.strip() for p in args.prompts.split(",")] if args.prompts else None
    if args.prompts is not None and not all(args.prompts):
        parser.error("--prompts has an empty name; give names separated by commas")
    try:
        model = load_model(args.model)
        check_prompts(model, args.prompts)
        if not getattr(model, "sample_rate", None):
            raise ValueError(f"the model in '{args.model}' does not say its sample rate")
        chunk_samples(model, 1, args.chunk_seconds, args.overlap_seconds, args.fade_seconds)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    model.to(args.device)

    files, failures = collect_inputs(args.inputs, args.out_dir, report, args.prompts)
    clashes = _name_clashes(files)
    if clashes:
        parser.error(
            "inputs with the same name would write the same outputs: "
            + "; ".join(clashes)
            + ". Separate them in separate runs (different --out_dir) or rename them."
        )
    for item, reason in failures:
        tqdm.write(f"ERROR {item}: {reason}", file=sys.stderr)
    n_inputs = len(files) + len(failures)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for path in tqdm(files, desc="files", unit="file", disable=args.quiet):
        try:
            _separate_file(path, model, args, report)
        except Exception as err:  # one bad file must not stop the others
            failures.append((str(path), str(err)))
            tqdm.write(f"ERROR {path}: {err}", file=sys.stderr)
    n_done = n_inputs - len(failures)
    print(f"separated {n_done} of {n_inputs} input(s) into {args.out_dir}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} failed:", file=sys.stderr)
        for item, reason in failures:
            print(f"  {item}: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
