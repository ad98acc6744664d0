"""SFC-CA vs band-split encoder+decoder: parameters, time per forward and peak memory.

Both front ends use the same band configuration and channel size (default: musical 64 bands,
44.1 kHz, n_fft 2048, hop 512, 96 channels, one source) on the stacked STFT of a 6-s input.
Timings alternate the two (``time_alternating``) in one process: inference (encoder + decoder
under ``no_grad``) and a training pass (forward + backward of a squared error).

``peak_mib`` is the peak of the bytes PyTorch allocates during one call above those allocated
before it (parameters and input excluded; :class:`~asteroid_lir.bench.common.PeakMemory` with
``cpu_allocations=True``). :func:`full_model_rows` measures ``TFLocoformerNet`` with each band
front end (``encoder="sfc"`` / ``"band_split"``) on the same waveform.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from ..filterbanks import BandSplitDecoder, BandSplitEncoder, SFCDecoder, SFCEncoder
from .common import (
    PeakMemory,
    markdown_table,
    n_params,
    ratio_spread,
    spread,
    spread_text,
    time_alternating,
)

NAME = "sfc"
DESCRIPTION = "SFC-CA vs band-split encoder+decoder: parameters, time per forward, peak memory"

FRONT_ENDS = ("sfc", "band_split")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sfc")
    arg = group.add_argument
    arg("--sfc-seconds", type=float, default=6.0, help="input length (s)")
    arg("--sfc-batch", type=int, default=1, help="batch size")
    arg("--sfc-sample-rate", type=int, default=44100, help="sampling rate (Hz)")
    arg("--sfc-n-fft", type=int, default=2048, help="STFT size")
    arg("--sfc-hop", type=int, default=512, help="STFT hop")
    arg("--sfc-bands", default="musical", help="musical or bs_roformer")
    arg("--sfc-channels", type=int, default=96, help="separator channels (D)")
    arg("--sfc-model-layers", type=int, default=1, help="TF-Locoformer blocks of the full models")
    arg("--sfc-d-inner", type=int, default=None, help="SFC-CA inner size D' (default: D)")
    arg("--sfc-n-src", type=int, default=1, help="decoded sources")
    arg("--sfc-no-training", action="store_true", help="skip the training pass")


def build_front_ends(
    sample_rate: int, n_fft: int, bands: str, channels: int, n_src: int, d_inner: int | None = None
) -> dict[str, tuple[torch.nn.Module, torch.nn.Module]]:
    """The encoder/decoder pairs compared, with identical band configuration and channels."""
    common = dict(sample_rate=sample_rate, n_fft=n_fft, band_config=bands)
    return {
        "sfc": (
            SFCEncoder(channels, d_inner=d_inner, **common),
            SFCDecoder(channels, n_src, d_inner=d_inner, **common),
        ),
        "band_split": (
            BandSplitEncoder(channels, **common),
            BandSplitDecoder(channels, n_src, **common),
        ),
    }


def _encode_decode(enc: torch.nn.Module, dec: torch.nn.Module, spec: torch.Tensor):
    feats, context = enc.forward_with_context(spec)
    return dec(feats, spec, context)


def _training_pass(enc, dec, spec, target) -> None:
    for module in (enc, dec):
        module.zero_grad(set_to_none=True)
    (_encode_decode(enc, dec, spec) - target).square().mean().backward()


def full_model_rows(args: argparse.Namespace, spec: torch.Tensor) -> tuple[list[dict], str]:
    """Rows for a full TF-Locoformer model (``TFLocoformerNet``) with each band front end.

    Same separator settings for both (the S preset's block with ``--sfc-model-layers`` blocks
    and ``--sfc-channels`` channels), the same band configuration, the waveform of the
    front-end rows; forward passes only (a CPU training pass of the full models takes minutes).

    Returns:
        tuple: (rows, note).
    """
    from ..models import TFLocoformerNet

    sr, n_fft, hop, device = args.sfc_sample_rate, args.sfc_n_fft, args.sfc_hop, args.device
    channels = 16 if args.quick else args.sfc_channels
    models = {}
    for name in FRONT_ENDS:
        torch.manual_seed(0)
        kwargs = {"d_inner": args.sfc_d_inner} if name == "sfc" and args.sfc_d_inner else {}
        models[name] = TFLocoformerNet.from_preset(
            "S", n_src=args.sfc_n_src, sample_rate=sr, n_fft=n_fft, hop_length=hop,
            n_layers=args.sfc_model_layers, emb_dim=channels, encoder=name,
            band_config=args.sfc_bands, encoder_kwargs=kwargs,
        ).to(device).eval()  # fmt: skip
    wav = torch.randn(spec.shape[0], (spec.shape[2] - 1) * hop, device=device)
    forwards = {k: (lambda m=m: m(wav)) for k, m in models.items()}
    fields, _ = measure_pairs(forwards, None, args.repeats, device)
    rows = [
        {"front_end": name, "params_total": n_params(model), **fields[name]}
        for name, model in models.items()
    ]
    note = (
        f"TFLocoformerNet S block x {args.sfc_model_layers}, D = {channels}, "
        f"{args.sfc_n_src} sources, forward of {wav.shape[-1] / sr:.1f} s"
    )
    return rows, note


def measure_pairs(
    forwards: dict[str, Callable[[], object]],
    trainings: dict[str, Callable[[], object]] | None,
    repeats: int,
    device: str,
) -> tuple[dict, dict]:
    """Time (alternating) and peak memory of several callables; used for every row.

    Returns:
        tuple: per name, its row fields (``{phase}_s`` and ``{phase}_peak_mib`` of ``forward``,
        then of ``training`` when given); per measured phase, the runs of every name.
    """
    fields: dict = {name: {} for name in forwards}
    runs: dict = {}
    for phase, fns in (("forward", forwards), ("training", trainings or {})):
        if not fns:
            continue
        with torch.set_grad_enabled(phase == "training"):
            runs[phase] = time_alternating(fns, repeats=repeats, device=device)
            for name, fn in fns.items():
                with PeakMemory(device, cpu_allocations=True) as mem:
                    fn()
                fields[name][f"{phase}_s"] = spread(runs[phase][name])
                fields[name][f"{phase}_peak_mib"] = mem.allocated_increase / 2**20
    return fields, runs


def run(args: argparse.Namespace) -> dict:
    seconds = 0.25 if args.quick else args.sfc_seconds
    channels = 16 if args.quick else args.sfc_channels
    d_inner = args.sfc_d_inner
    sr, n_fft, hop, device = args.sfc_sample_rate, args.sfc_n_fft, args.sfc_hop, args.device
    torch.manual_seed(0)
    pairs = build_front_ends(sr, n_fft, args.sfc_bands, channels, args.sfc_n_src, d_inner)
    pairs = {k: (e.to(device), d.to(device)) for k, (e, d) in pairs.items()}
    wav = torch.randn(args.sfc_batch, int(seconds * sr), device=device)
    window = torch.hann_window(n_fft, device=device)
    stft = torch.stft(wav, n_fft, hop, window=window, return_complex=True).transpose(1, 2)
    spec = torch.stack((stft.real, stft.imag), dim=1).contiguous()  # (batch, 2, frames, freqs)
    target = torch.randn(args.sfc_batch, args.sfc_n_src, *spec.shape[1:], device=device)

    forwards = {k: (lambda e=e, d=d: _encode_decode(e, d, spec)) for k, (e, d) in pairs.items()}
    trainings = None
    if not args.sfc_no_training:
        trainings = {
            k: (lambda e=e, d=d: _training_pass(e, d, spec, target)) for k, (e, d) in pairs.items()
        }
    fields, runs = measure_pairs(forwards, trainings, args.repeats, device)
    rows = [
        {
            "front_end": name,
            "params_encoder": n_params(enc),
            "params_decoder": n_params(dec),
            "params_total": n_params(enc) + n_params(dec),
            **fields[name],
        }
        for name, (enc, dec) in pairs.items()
    ]
    ratios = {
        f"{phase}_sfc_over_band_split": ratio_spread(r["sfc"], r["band_split"])
        for phase, r in runs.items()
    }
    model_rows, model_note = full_model_rows(args, spec)
    return {
        "rows": rows,
        "ratios": ratios,
        "full_model_rows": model_rows,
        "full_model_note": model_note,
        "config": {
            "seconds": seconds,
            "batch": args.sfc_batch,
            "sample_rate": sr,
            "n_fft": n_fft,
            "hop": hop,
            "frames": spec.shape[2],
            "freqs": spec.shape[3],
            "bands": args.sfc_bands,
            "n_bands": pairs["sfc"][0].n_bands,
            "channels": channels,
            "d_inner": pairs["sfc"][0].d_inner,
            "n_src": args.sfc_n_src,
        },
        "repeats": args.repeats,
    }


def _phase_cells(row: dict, phases: list[str]) -> list[str]:
    # Time spread and peak MiB of each measured phase of a row.
    return [c for p in phases for c in (spread_text(row[f"{p}_s"]), f"{row[f'{p}_peak_mib']:.0f}")]


def to_markdown(result: dict) -> str:
    cfg, ratios = result["config"], result["ratios"]
    training = "training_s" in result["rows"][0]
    phases = ["forward", "training"] if training else ["forward"]
    headers = ["front end", "params enc / dec / total (M)", "forward s (min/med/max)"]
    headers += ["fwd peak MiB"]
    if training:
        headers += ["fwd+bwd s (min/med/max)", "fwd+bwd peak MiB"]
    rows = []
    for r in result["rows"]:
        params = [f"{r[f'params_{k}'] / 1e6:.3f}" for k in ("encoder", "decoder", "total")]
        rows.append([r["front_end"], " / ".join(params), *_phase_cells(r, phases)])
    by_name = {r["front_end"]: r for r in result["rows"]}
    ratio = by_name["band_split"]["params_total"] / by_name["sfc"]["params_total"]
    per_pass = ratios.get("training_sfc_over_band_split")
    per_pass = f"; per training pass: {spread_text(per_pass, '{:.2f}')}" if per_pass else ""
    full = [
        [r["front_end"], f"{r['params_total'] / 1e6:.3f}", *_phase_cells(r, ["forward"])]
        for r in result["full_model_rows"]
    ]
    full_headers = ["front end", "params (M)", "forward s (min/med/max)", "fwd peak MiB"]
    lines = [
        markdown_table(headers, rows),
        "",
        f"{cfg['bands']} {cfg['n_bands']} bands, {cfg['sample_rate']} Hz, n_fft {cfg['n_fft']}, "
        f"hop {cfg['hop']}, {cfg['seconds']:g}-s input ({cfg['frames']} frames x "
        f"{cfg['freqs']} bins, batch {cfg['batch']}), D = {cfg['channels']}, SFC D' = "
        f"{cfg['d_inner']}, {cfg['n_src']} source(s); band-split has {ratio:.1f}x the "
        f"parameters of SFC-CA. SFC / band-split time per forward (pairwise, min/med/max): "
        f"{spread_text(ratios['forward_sfc_over_band_split'], '{:.2f}')}{per_pass}. "
        f"{result['repeats']} alternating runs after one warm-up; peak = bytes allocated "
        "during one call above those before it (parameters and input excluded).",
        "",
        f"Full TF-Locoformer model with each front end ({result['full_model_note']}):",
        "",
        markdown_table(full_headers, full),
    ]
    return "\n".join(lines)
