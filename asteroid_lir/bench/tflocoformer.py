"""TF-Locoformer: our forward pass against MERL's reference, same weights, side by side.

- **speed**: one forward pass of ``TFLocoformerNet`` (S preset by default) on a random 4-s 8-kHz
  mixture and, when the reference is found in a scratch folder (see below), the reference ESPnet
  pipeline (``STFTEncoder`` -> ``TFLocoformerSeparator`` -> ``STFTDecoder``, with ESPnet's
  variance normalisation) on the same weights, timed alternately in one process; the relative L2
  and maximum differences of the two outputs are recorded.
- **memory**: peak resident memory of one forward pass (``torch.inference_mode``) on 8, 30 and
  60 s of audio, each in a fresh subprocess: the peak RSS (``VmHWM``, reset through
  ``/proc/self/clear_refs`` just before the pass) minus the resident size just before it (after
  building the model, making the input and a 0.25-s warm-up pass). The reference is measured only
  where its time-path attention matrices fit (``freqs * heads * frames**2`` floats each); the
  figure it would need is printed otherwise.

The reference is never part of this repository. Put in a scratch folder the
``espnet2/enh/separator/tflocoformer_separator.py`` file of merlresearch/tf-locoformer, and
``espnet2/enh/{encoder/stft_encoder,decoder/stft_decoder,layers/complex_utils}.py``,
``espnet2/layers/{stft,inversible_interface}.py``,
``espnet2/enh/{encoder,decoder,separator}/abs_*.py`` and
``espnet/nets/pytorch_backend/nets_utils.py`` of the ``espnet==202402`` wheel, with package
``__init__.py`` files (``espnet/__init__.py`` defining ``__version__``); its dependencies
(``rotary-embedding-torch==0.6.1``, ``beartype``, ``torch_complex``, ``typeguard==2.13.3`` and an
empty ``librosa`` stub) in a second folder installed with ``pip install --no-deps --target``.
``LIR_TFLOCOFORMER_REF`` (default ``/tmp/scratch/tflocoformer``) and ``LIR_TFLOCOFORMER_SITE``
(default ``/tmp/scratch/site``) name them; run the benchmark with both on ``PYTHONPATH`` (it does
not edit ``sys.path``). The tests use the same loader.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import warnings
from types import SimpleNamespace

import torch
from torch import nn

from ..models.tflocoformer import TFLocoformerNet
from .common import (
    PeakMemory,
    in_fresh_process,
    markdown_table,
    n_params,
    ratio_spread,
    spread,
    spread_text,
    time_alternating,
)

NAME = "tflocoformer"
DESCRIPTION = (
    "TF-Locoformer forward pass vs MERL's reference (same weights) and peak memory vs length"
)

REF_ENV, SITE_ENV = "LIR_TFLOCOFORMER_REF", "LIR_TFLOCOFORMER_SITE"
REF_DEFAULT, SITE_DEFAULT = "/tmp/scratch/tflocoformer", "/tmp/scratch/site"


# ---------------------------------------------------------------------- the reference
def reference_paths() -> tuple[str, str]:
    """Folders of the scratch reference and of its dependencies (environment or defaults)."""
    return os.environ.get(REF_ENV, REF_DEFAULT), os.environ.get(SITE_ENV, SITE_DEFAULT)


def load_reference() -> tuple[SimpleNamespace | None, str]:
    """Import the reference separator and ESPnet's STFT encoder/decoder from the scratch folder.

    The benchmark does not edit ``sys.path``: put both folders on ``PYTHONPATH``
    (``PYTHONPATH=$LIR_TFLOCOFORMER_REF:$LIR_TFLOCOFORMER_SITE python -m asteroid_lir.bench
    tflocoformer``); the memory subprocesses inherit it.

    Returns:
        tuple: ``(modules, "")`` with ``modules.separator``, ``modules.encoder``,
        ``modules.decoder`` (the ESPnet modules) and ``modules.rope`` (rotary_embedding_torch),
        or ``(None, reason)`` when something is missing.
    """
    ref, site = reference_paths()
    target = os.path.join(ref, "espnet2", "enh", "separator", "tflocoformer_separator.py")
    if not os.path.isfile(target):
        return None, (
            f"the TF-Locoformer reference is not at {ref} (set {REF_ENV}; see "
            "asteroid_lir/bench/tflocoformer.py for how to prepare it)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mods = SimpleNamespace(
                separator=importlib.import_module("espnet2.enh.separator.tflocoformer_separator"),
                encoder=importlib.import_module("espnet2.enh.encoder.stft_encoder"),
                decoder=importlib.import_module("espnet2.enh.decoder.stft_decoder"),
                rope=importlib.import_module("rotary_embedding_torch"),
            )
    except ImportError as err:
        return None, (
            f"the TF-Locoformer reference at {ref} does not import ({err}); put it and its "
            f"dependencies on PYTHONPATH: PYTHONPATH={ref}:{site}"
        )
    return mods, ""


class ReferencePipeline(nn.Module):
    """The reference ESPnet inference path, built from the scratch modules.

    ``std``-normalise the mixture (ESPnet ``normalize_variance``), ``STFTEncoder``,
    ``TFLocoformerSeparator``, ``STFTDecoder`` per source, multiply back by the ``std``: what
    ``espnet2.bin.enh_inference.SeparateSpeech`` runs for the released configurations.

    Args:
        mods: as returned by :func:`load_reference`.
        separator_conf (dict): ESPnet ``separator_conf``.
        n_fft, hop_length: ESPnet ``encoder_conf``.
        normalize_variance (bool): ESPnet ``model_conf.normalize_variance``.
    """

    def __init__(
        self,
        mods: SimpleNamespace,
        separator_conf: dict,
        n_fft: int = 256,
        hop_length: int = 64,
        normalize_variance: bool = True,
    ):
        super().__init__()
        self.encoder = mods.encoder.STFTEncoder(n_fft=n_fft, hop_length=hop_length)
        self.decoder = mods.decoder.STFTDecoder(n_fft=n_fft, hop_length=hop_length)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.separator = mods.separator.TFLocoformerSeparator(None, **separator_conf)
        self.normalize_variance = normalize_variance

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """``(batch, time)`` -> ``(batch, n_src, time)``."""
        lengths = torch.full((wav.shape[0],), wav.shape[-1], dtype=torch.long)
        if self.normalize_variance:
            std = torch.std(wav, dim=1, keepdim=True)
            wav = wav / std
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            feats, flens = self.encoder(wav, lengths)
            specs, _, _ = self.separator(feats, flens)
            waves = [self.decoder(s, lengths)[0] for s in specs]
        if self.normalize_variance:
            waves = [w * std for w in waves]
        return torch.stack(waves, dim=1)


def espnet_conf(model: TFLocoformerNet) -> dict:
    """The ESPnet ``separator_conf`` of ``model``'s separator."""
    from ..convert.espnet import reference_config

    cfg = reference_config(model.separator)
    cfg["flash_attention"] = False
    return cfg


def randomize_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every gain, bias and norm parameter random values (defaults would hide errors)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith(("gamma", "conv.1.weight")):
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    return module


def build_pair(
    preset: str = "S", seed: int = 0, mods: SimpleNamespace | None = None, **overrides
) -> tuple[TFLocoformerNet, ReferencePipeline | None]:
    """Our model (preset + overrides, random weights) and the reference on the same weights.

    The reference is built first (its own initialisation, made less trivial by
    :func:`randomize_`) and ours loads its weights through :meth:`TFLocoformerNet.from_espnet`.
    Without ``mods`` only our model is returned (seeded the same way).
    """
    torch.manual_seed(seed)
    proto = TFLocoformerNet.from_preset(preset, **overrides)
    conf = espnet_conf(proto)
    if mods is None:
        return randomize_(proto, seed).eval(), None
    torch.manual_seed(seed)
    stft = dict(n_fft=proto.n_fft, hop_length=proto.hop_length)
    stft["normalize_variance"] = proto.normalize_variance
    ref = ReferencePipeline(mods, conf, **stft)
    randomize_(ref.separator, seed)
    ours = TFLocoformerNet.from_espnet(
        ref.separator.state_dict(), conf, sample_rate=proto.sample_rate, **stft
    )
    return ours.eval(), ref.eval()


# ---------------------------------------------------------------------- peak memory
def measure_peak(impl: str, preset: str, seconds: float, threads: int) -> dict:
    """Peak resident memory of one forward pass of ``impl`` (run in a fresh process)."""
    torch.set_num_threads(threads)
    mods = None
    if impl == "reference":
        mods, reason = load_reference()
        if mods is None:
            return {"error": reason}
    ours, ref = build_pair(preset, mods=mods)
    model = ours if impl == "ours" else ref
    sample_rate = int(ours.sample_rate)
    with torch.inference_mode():
        model(torch.randn(1, sample_rate // 4))
        wav = torch.randn(1, int(seconds * sample_rate))
        # ru_maxrss of a forked-and-exec'd child starts at its parent's RSS: reset the peak.
        with PeakMemory("cpu", reset_rss=True) as mem:
            model(wav)
    return {
        "before_mb": mem.rss_before / 2**20,
        "peak_mb": mem.rss_peak / 2**20,
        "forward_mb": (mem.rss_peak - mem.rss_before) / 2**20,
        "peak_reset": mem.rss_reset,
    }


def _peak_in_subprocess(impl: str, preset: str, seconds: float, threads: int) -> dict:
    kwargs = dict(impl=impl, preset=preset, seconds=seconds, threads=threads)
    try:
        return in_fresh_process(measure_peak, kwargs)
    except subprocess.CalledProcessError as err:
        tail = (err.stderr or err.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {err.returncode}: {' | '.join(tail)}"}


def reference_attention_gb(model: TFLocoformerNet, seconds: float) -> float:
    """GB of one time-path attention matrix of the reference ((batch*freqs) x heads x T x T)."""
    frames = int(seconds * model.sample_rate) // model.hop_length + 1
    freqs = model.n_fft // 2 + 1
    return freqs * model.separator.get_config()["n_heads"] * frames**2 * 4 / 1e9


# ---------------------------------------------------------------------- benchmark API
def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tflocoformer")
    group.add_argument("--tflocoformer-preset", default="S", help="S, M or L (default S)")
    group.add_argument("--tflocoformer-seconds", type=float, default=4.0, help="input (s)")
    lengths = "comma-separated input lengths (s) for the peak-memory runs ('' to skip)"
    group.add_argument("--tflocoformer-memory-seconds", default="8,30,60", help=lengths)
    ref_max = "measure the reference's memory only where one attention matrix is below this"
    group.add_argument("--tflocoformer-ref-max-gb", type=float, default=4.0, help=ref_max)


def run(args: argparse.Namespace) -> dict:
    preset = args.tflocoformer_preset
    seconds = 0.25 if args.quick else args.tflocoformer_seconds
    repeats = 1 if args.quick else args.repeats
    mem_seconds = [float(s) for s in str(args.tflocoformer_memory_seconds).split(",") if s.strip()]
    mem_seconds = [0.5, 1.0] if args.quick else mem_seconds
    threads = torch.get_num_threads()
    mods, reason = load_reference()
    ours, ref = build_pair(preset, mods=mods)
    gen = torch.Generator().manual_seed(1)
    wav = torch.randn(1, int(seconds * ours.sample_rate), generator=gen)
    result: dict = {
        "preset": preset,
        "input_seconds": seconds,
        "threads": threads,
        "params": n_params(ours),
        "repeats": repeats,
        "reference": None if ref is None else reference_paths()[0],
        "reference_missing": reason or None,
    }
    with torch.inference_mode():
        fns = {"ours": lambda: ours(wav)}
        if ref is not None:
            est, target = ours(wav), ref(wav)
            result["relative_l2_error"] = ((est - target).norm() / target.norm()).item()
            result["max_abs_diff"] = (est - target).abs().max().item()
            result["reference_params"] = n_params(ref)
            fns["reference"] = lambda: ref(wav)
        runs = time_alternating(fns, repeats=repeats)
    result["ours_s"] = spread(runs["ours"])
    if ref is not None:
        result["reference_s"] = spread(runs["reference"])
        result["ratio_ours_over_reference"] = ratio_spread(runs["ours"], runs["reference"])

    memory = []
    for sec in mem_seconds:
        row = {"seconds": sec, "ours": _peak_in_subprocess("ours", preset, sec, threads)}
        need = reference_attention_gb(ours, sec)
        row["reference_attention_matrix_gb"] = need
        if ref is None:
            row["reference"] = {"error": reason}
        elif need > args.tflocoformer_ref_max_gb:
            why = f"not run: one time-path attention matrix alone needs {need:.1f} GB"
            row["reference"] = {"error": why}
        else:
            row["reference"] = _peak_in_subprocess("reference", preset, sec, threads)
        memory.append(row)
    result["memory"] = memory
    return result


def _mem(entry: dict) -> str:
    return entry["error"] if "error" in entry else f"{entry['forward_mb']:.0f}"


def to_markdown(result: dict) -> str:
    rows = [["ours", spread_text(result["ours_s"]), f"{result['params'] / 1e6:.3f} M"]]
    if result.get("reference_s"):
        params = f"{result['reference_params'] / 1e6:.3f} M"
        rows.append(["reference", spread_text(result["reference_s"]), params])
        r = result["ratio_ours_over_reference"]
        comparison = (
            f"ours / reference: {r['median']:.3f} (min {r['min']:.3f}, max {r['max']:.3f}); "
            f"relative L2 difference of the outputs {result['relative_l2_error']:.2e}, max "
            f"{result['max_abs_diff']:.2e}."
        )
    else:
        comparison = f"Reference not run: {result['reference_missing']}."
    lines = [
        f"Preset {result['preset']}, {result['input_seconds']:g}-s 8-kHz input, batch 1, "
        f"{result['threads']} threads, {result['repeats']} alternating runs after one warm-up.",
        "",
        markdown_table(["implementation", "forward s (min/med/max)", "parameters"], rows),
        "",
        comparison,
    ]
    if result["memory"]:
        headers = ["input s", "ours: forward peak MB", "ours MB per s"]
        headers += ["reference: forward peak MB"]
        table = []
        for m in result["memory"]:
            ours = m["ours"]
            per_s = "" if "error" in ours else f"{ours['forward_mb'] / m['seconds']:.1f}"
            table.append([f"{m['seconds']:g}", _mem(ours), per_s, _mem(m["reference"])])
        lines += [
            "",
            "Peak memory of one forward pass (peak RSS, reset just before the pass, minus the "
            "resident size then; fresh process per length):",
            "",
            markdown_table(headers, table),
        ]
    return "\n".join(lines)
