"""Long inputs: peak memory and real-time factor of chunked inference as the input grows.

The model is built here from library code, :data:`MODEL_ARGS` (the WHAM! recipe's mini LIR model
when the committed results were measured: 1 x 4 x 1, 256 bases, depth 4, two speakers and the
noise), randomly initialised; another one, e.g. a recipe's ``best_model.pth``, is measured with
``--long-input-model PATH`` (any ``torch.save(model.serialize(), path)`` file); the benchmark
never reads recipe files. For every input length (default 10 s, 1 min and 10 min of 8-kHz
audio), three ways of separating it:

- ``chunked``: :func:`asteroid_lir.inference.separate_chunked` (4-s chunks, 1-s overlap);
- ``lambda_ola``: Asteroid's ``asteroid.dsp.overlap_add.LambdaOverlapAdd`` on the same model with
  the same window and hop (4-s Hann window, 3-s hop, ``reorder_chunks=True``);
- ``one_piece``: the whole input at once (up to ``--long-input-whole-max`` seconds; longer inputs
  would need several GB).

Each case runs in a fresh Python process (no allocator state inherited from another case) with
the requested number of torch threads, and reports its peak resident set size before and after
the separation (:class:`~asteroid_lir.bench.common.PeakMemory`) and the separation's wall time.
A separate check in this process compares, on the shortest input, each chunked output with the
one-piece output.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from functools import partial
from pathlib import Path

import torch

from .common import (
    PeakMemory,
    in_fresh_process,
    markdown_table,
    ratio_spread,
    spread,
    spread_text,
    time_alternating,
)

NAME = "long-input"
DESCRIPTION = (
    "chunked inference vs Asteroid LambdaOverlapAdd vs one piece: peak memory and RTF "
    "for 10 s / 1 min / 10 min"
)
METHODS = ("chunked", "lambda_ola", "one_piece")
#: The measured model by default (``LIRSuDORMRFNet``): the WHAM! recipe's mini model
#: (``egs/wham/conf/mini_base.yml`` resolved) when the committed results were measured.
MODEL_NAME = "LIRSuDORMRFNet"
MODEL_ARGS = dict(n_src=3, n_blocks=1, n_sub_blocks=4, n_iters=1, bn_chan=128, n_filters=256)
MODEL_ARGS.update(kernel_size=21, stride=10, upsampling_depth=4, mask_act="relu")
MODEL_ARGS["sample_rate"] = 8000.0
MEASUREMENT = (
    "Each case (method x length) runs in a fresh Python subprocess with torch.set_num_threads("
    "threads) and OMP_NUM_THREADS=threads. The child imports torch and asteroid_lir, builds the "
    "model, creates the input and runs one 0.5-s warm-up forward pass; 'baseline' is its peak "
    "resident set size (VmHWM, as resource.getrusage(RUSAGE_SELF).ru_maxrss) at that point, "
    "'peak' the same after the separation, 'increase' their difference (it includes the float32 "
    "output array of n_src x length samples, listed as output_mib). Wall time of the separation "
    "only (torch.inference_mode, batch 1); RTF = wall time / audio duration."
)
_QUICK_NOTE = " QUICK RUN: all cases ran in the benchmark's own process, memory not isolated."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(NAME)
    arg = group.add_argument
    lengths, default = "input lengths in seconds (default 10 60 600)", [10.0, 60.0, 600.0]
    arg("--long-input-seconds", type=float, nargs="+", default=default, help=lengths)
    model = "a serialize()d model file to measure (default: MODEL_ARGS, built here)"
    arg("--long-input-model", type=Path, default=None, help=model)
    arg("--long-input-chunk", type=float, default=4.0, help="chunk (s)")
    arg("--long-input-overlap", type=float, default=1.0, help="overlap (s)")
    whole = "longest input also run in one piece (s, default 60)"
    arg("--long-input-whole-max", type=float, default=60.0, help=whole)
    ola = "longest input also run with LambdaOverlapAdd (s, default 600)"
    arg("--long-input-lambda-ola-max", type=float, default=600.0, help=ola)


def model_spec(path: Path | None = None) -> dict:
    """What the child processes build: :data:`MODEL_ARGS`, or the model saved at ``path``.

    Args:
        path: a file written by ``torch.save(model.serialize(), path)``, or None.

    Returns:
        dict: ``model_name``, ``model_args`` (with ``sample_rate`` and ``n_src``) and
        ``model_path`` (None for the built-in model).
    """
    if path is None:
        return {"model_name": MODEL_NAME, "model_args": dict(MODEL_ARGS), "model_path": None}
    from ..models.base import load_model_conf

    conf = load_model_conf(path)
    args = dict(conf["model_args"])
    args.setdefault("sample_rate", float(conf.get("infos", {}).get("sample_rate", 8000)))
    if "n_src" not in args:
        raise SystemExit(f"{path}: the model's arguments do not say its number of outputs.")
    return {"model_name": conf["model_name"], "model_args": args, "model_path": str(path)}


# ---------------------------------------------------------------------- child process
def _build(spec: dict) -> torch.nn.Module:
    from asteroid import models as asteroid_models

    import asteroid_lir.models  # noqa: F401  (registers the models with Asteroid)

    if spec.get("model_path"):
        from ..separate import load_model

        return load_model(spec["model_path"]).to(spec["device"])
    torch.manual_seed(0)
    model = asteroid_models.get(spec["model_name"])(**spec["model_args"])
    return model.eval().to(spec["device"])


def _separate(spec: dict, model: torch.nn.Module, wav: torch.Tensor) -> tuple[torch.Tensor, int]:
    from asteroid_lir.inference import separate_chunked

    chunk, overlap = spec["chunk"], spec["overlap"]
    if spec["method"] == "chunked":
        result = separate_chunked(model, wav, chunk, overlap)
        return result.estimates, result.n_chunks
    with torch.inference_mode():
        if spec["method"] == "one_piece":
            return model(wav.to(spec["device"])).cpu(), 1
        if spec["method"] == "lambda_ola":
            from asteroid.dsp.overlap_add import LambdaOverlapAdd

            hop = spec.get("hop", chunk - overlap)
            n_src = spec["model_args"]["n_src"]
            ola = LambdaOverlapAdd(model, n_src, chunk, hop, window="hann", reorder_chunks=True)
            ola = ola.to(spec["device"])
            # It pads a whole window of zeros at both ends before cutting windows.
            n_chunks = (wav.shape[-1] + chunk) // hop + 1
            return ola(wav[:, None].to(spec["device"])).cpu(), n_chunks
    raise ValueError(f"unknown method {spec['method']!r}")


def _make_input(seconds: float, sample_rate: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return 0.1 * torch.randn(1, int(round(seconds * sample_rate)), generator=gen)


def run_case(spec: dict) -> dict:
    """Measure one case in the current process (call it in a fresh one)."""
    torch.set_num_threads(spec["threads"])
    model = _build(spec)
    wav = _make_input(spec["seconds"], spec["model_args"]["sample_rate"])
    with torch.inference_mode():
        model(_make_input(0.5, spec["model_args"]["sample_rate"]).to(spec["device"]))
    with PeakMemory(spec["device"]) as mem:
        start = time.perf_counter()
        est, n_chunks = _separate(spec, model, wav)
        wall = time.perf_counter() - start
    baseline, peak = mem.rss_before / 2**20, mem.rss_peak / 2**20
    row = {
        "method": spec["method"],
        "seconds": spec["seconds"],
        "n_chunks": n_chunks,
        "wall_s": wall,
        "rtf": wall / spec["seconds"],
        "baseline_rss_mib": baseline,
        "peak_rss_mib": peak,
        "increase_mib": peak - baseline,
        "output_mib": est.numel() * 4 / 2**20,
    }
    if mem.cuda:
        row["cuda_peak_mib"] = mem.allocated_peak / 2**20
    return row


def _run_child(spec: dict) -> dict:
    try:
        return in_fresh_process(run_case, {"spec": spec}, spec["threads"])
    except subprocess.CalledProcessError as err:
        case = f"{spec['method']} {spec['seconds']} s"
        raise RuntimeError(f"long-input case {case} failed:\n{err.stderr[-3000:]}") from err


# ---------------------------------------------------------------------- agreement check
def _snr_db(est: torch.Tensor, ref: torch.Tensor) -> float:
    err = (est - ref).pow(2).sum()
    return float(10 * torch.log10(ref.pow(2).sum() / err.clamp_min(1e-20)))


def _agreement(spec: dict) -> dict:
    """SNR (dB) of the chunked outputs against the one-piece output of the same input."""
    model = _build(spec)
    wav = _make_input(spec["seconds"], spec["model_args"]["sample_rate"])
    chunk = spec["chunk"]
    whole, _ = _separate({**spec, "method": "one_piece"}, model, wav)
    out = {"seconds": spec["seconds"]}
    cases = {
        "chunked": {"method": "chunked"},
        "lambda_ola": {"method": "lambda_ola"},
        "lambda_ola_half_hop": {"method": "lambda_ola", "hop": chunk // 2},
    }
    for name, change in cases.items():
        est, _ = _separate({**spec, **change}, model, wav)
        out[f"{name}_snr_db"] = _snr_db(est, whole)
    out["lambda_ola_half_hop"] = {"window": chunk, "hop": chunk // 2}
    return out


def _speed_ratio(spec: dict, repeats: int) -> dict:
    """Chunked vs LambdaOverlapAdd timed alternately in this process (robust to drifts)."""
    model = _build(spec)
    wav = _make_input(spec["seconds"], spec["model_args"]["sample_rate"])
    fns = {
        m: partial(_separate, {**spec, "method": m}, model, wav) for m in ("chunked", "lambda_ola")
    }
    runs = time_alternating(fns, repeats=repeats, device=spec["device"])
    return {
        "seconds": spec["seconds"],
        "repeats": repeats,
        "chunked_s": spread(runs["chunked"]),
        "lambda_ola_s": spread(runs["lambda_ola"]),
        "chunked_over_lambda_ola": ratio_spread(runs["chunked"], runs["lambda_ola"]),
    }


# ---------------------------------------------------------------------- benchmark API
def run(args: argparse.Namespace) -> dict:
    threads = args.threads or 2
    if args.quick:
        seconds, chunk_s, overlap_s, whole_max, ola_max = [1.0, 3.0], 0.5, 0.125, 1.0, 3.0
    else:
        seconds = args.long_input_seconds
        chunk_s, overlap_s = args.long_input_chunk, args.long_input_overlap
        whole_max, ola_max = args.long_input_whole_max, args.long_input_lambda_ola_max
    model = model_spec(args.long_input_model)
    model_args = model["model_args"]
    if args.quick and model["model_path"] is None:
        # A smaller model of the same family, so that the smoke test takes seconds.
        model_args.update(n_filters=64, bn_chan=32, n_sub_blocks=1, upsampling_depth=2)
    rate = model_args["sample_rate"]
    chunk, overlap = int(round(chunk_s * rate)), int(round(overlap_s * rate))
    chunk += chunk % 2  # LambdaOverlapAdd needs an even window
    base = {**model, "chunk": chunk, "overlap": overlap, "threads": threads, "device": args.device}
    rows, skipped = [], []
    for sec in seconds:
        for method in METHODS:
            limit = {"one_piece": whole_max, "lambda_ola": ola_max}.get(method)
            if limit is not None and sec > limit:
                why = f"longer than the {limit:g}-s limit of {method} in this run"
                if method == "one_piece":
                    why += "; one piece needs memory growing with the length"
                skipped.append({"method": method, "seconds": sec, "why": why})
                continue
            print(f"  {method} {sec:g} s ...", flush=True)
            # --quick is a smoke test: its cases share this process (memory not isolated).
            measure = run_case if args.quick else _run_child
            rows.append(measure({**base, "method": method, "seconds": sec}))
    torch.set_num_threads(threads)
    agreement = _agreement({**base, "seconds": min(seconds)})
    speed = _speed_ratio({**base, "seconds": min(seconds)}, repeats=1 if args.quick else 3)
    return {
        "rows": rows,
        "skipped": skipped,
        "agreement": agreement,
        "speed_ratio": speed,
        "model": {
            "name": model["model_name"],
            "args": model_args,
            "file": model["model_path"] or "built from MODEL_ARGS",
        },
        "chunk_samples": chunk,
        "overlap_samples": overlap,
        "fade_samples": overlap // 2,
        "threads": threads,
        "measurement": MEASUREMENT + (_QUICK_NOTE if args.quick else ""),
        "isolated_processes": not args.quick,
        "quick": bool(args.quick),
    }


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def to_markdown(result: dict) -> str:
    by_case = {(r["method"], r["seconds"]): r for r in result["rows"]}
    lengths = sorted({r["seconds"] for r in result["rows"]})
    headers = ["input"]
    for method in METHODS:
        headers += [f"{method} peak MiB (increase, increase - output)", f"{method} RTF"]
    table_rows = []
    for sec in lengths:
        row = [_duration(sec)]
        for method in METHODS:
            r = by_case.get((method, sec))
            if r is None:
                row += ["not run", "-"]
            else:
                rest = r["increase_mib"] - r["output_mib"]
                mem = f"{r['peak_rss_mib']:.0f} ({r['increase_mib']:+.0f}, {rest:+.0f})"
                row += [mem, f"{r['rtf']:.3f}"]
        table_rows.append(row)
    speed = result["speed_ratio"]
    ratio = speed["chunked_over_lambda_ola"]
    agree = result["agreement"]
    rate = result["model"]["args"]["sample_rate"]
    lines = [
        markdown_table(headers, table_rows),
        "",
        f"Model: {result['model']['name']} {result['model']['args']} (random weights); chunks "
        f"{result['chunk_samples'] / rate:g} s, overlap {result['overlap_samples'] / rate:g} s, "
        f"{result['threads']} CPU threads. Output array (n_src x length, float32) at the "
        f"longest input: {max(r['output_mib'] for r in result['rows']):.0f} MiB.",
        f"Agreement with the one-piece output on the {_duration(agree['seconds'])} input "
        f"(SNR): chunked {agree['chunked_snr_db']:.1f} dB, LambdaOverlapAdd with the same "
        f"window/hop {agree['lambda_ola_snr_db']:.1f} dB, LambdaOverlapAdd with half-window hop "
        f"{agree['lambda_ola_half_hop_snr_db']:.1f} dB.",
        f"Speed, timed alternately in one process on the {_duration(speed['seconds'])} input "
        f"({speed['repeats']} rounds): chunked / LambdaOverlapAdd time ratio "
        f"{spread_text(ratio, '{:.2f}')} (min/median/max); "
        "the RTF columns come from separate processes run one after the other.",
    ]
    for s in result["skipped"]:
        lines.append(f"Not run: {s['method']} at {_duration(s['seconds'])} ({s['why']}).")
    lines.append(f"Measurement: {result['measurement']}")
    return "\n".join(lines)
