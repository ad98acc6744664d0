"""Separating audio files: reading, resampling, naming and writing the estimates.

:func:`separate_file` is ``model.file_separate()`` of every asteroid_lir model and the work of
the ``asteroid-lir-separate`` command for each input; it runs
:func:`asteroid_lir.inference.separate_chunked` (see :mod:`asteroid_lir.inference` for what it
keeps of Asteroid's ``separate``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn

from .inference import check_prompts, chunk_samples, separate_chunked
from .models.base import check_waveform

__all__ = [
    "SampleRateError",
    "SeparatedFile",
    "output_paths",
    "output_tags",
    "read_audio",
    "separate_file",
]


class SampleRateError(ValueError, RuntimeError):
    """A file at another sample rate than the model's, with ``resample=False`` (a
    ``RuntimeError`` as Asteroid raises, and a ``ValueError``)."""


def output_tags(prompts: Sequence[str] | None, n_src: int) -> list[str]:
    """File tags of the outputs: ``est1 .. estN``, or the prompt names, numbered from 1 when a
    name repeats (``speech``, ``sfx1``, ``sfx2``)."""
    if prompts is None:
        return [f"est{k}" for k in range(1, n_src + 1)]
    counts = {p: list(prompts).count(p) for p in prompts}
    seen: dict[str, int] = {}
    tags = []
    for p in prompts:
        seen[p] = seen.get(p, 0) + 1
        tags.append(p if counts[p] == 1 else f"{p}{seen[p]}")
    return tags


def output_paths(
    path: Path,
    out_dir: Path,
    n_src: int,
    channel: int | None = None,
    prompts: Sequence[str] | None = None,
) -> list[Path]:
    """Where the estimates of ``path`` are written: ``out_dir/<stem>[_ch<c>]_<tag>.wav`` with the
    tags of :func:`output_tags` (``c`` from 1, for ``channels="each"``)."""
    stem = Path(path).stem + ("" if channel is None else f"_ch{channel}")
    return [Path(out_dir) / f"{stem}_{tag}.wav" for tag in output_tags(prompts, n_src)]


@dataclass
class SeparatedFile:
    """What :func:`separate_file` did: the files written (per channel, in output order), the
    chunks and, for gated models, the steps per chunk ``(channels, n_chunks)``."""

    paths: list[list[Path]]
    n_chunks: int
    steps: torch.Tensor | None
    sample_rate: int


def read_audio(path: str | os.PathLike) -> tuple[torch.Tensor, int]:
    """``(channels, time)`` float32 audio and its sample rate.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a file soundfile cannot read (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No audio file at '{path}'.")
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several types; the message names the cause.
        raise ValueError(f"'{path}': cannot read it as audio: {err}") from None
    return torch.from_numpy(np.ascontiguousarray(audio.T)), int(rate)


def _resample(x: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    if orig == new:
        return x
    import torchaudio.functional as AF

    return AF.resample(x, orig, new)


def separate_file(
    model: nn.Module,
    filename: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    *,
    force_overwrite: bool = False,
    prompts: Sequence[str] | None = None,
    resample: bool = False,
    channels: str = "mix",
    chunk_seconds: float | None = None,
    overlap_seconds: float | None = None,
    fade_seconds: float | None = None,
    batch_chunks: int = 1,
    on_chunk: Callable[[int, int], None] | None = None,
    details: bool = False,
):
    """Separate an audio file and write one 32-bit float WAV per estimate.

    Args:
        model (nn.Module): a separation model with a ``sample_rate``.
        filename: the mixture (any format soundfile reads).
        output_dir: where to write (default: the input's folder).
        force_overwrite (bool): overwrite existing outputs (else ``FileExistsError`` before
            anything runs).
        prompts (sequence of str, optional): one prompt name per output (prompt models).
        resample (bool): resample a file at another rate to the model's and the estimates back
            (else :class:`SampleRateError`).
        channels (str): ``"mix"``: mix down to mono (default); ``"each"``: separate every
            channel (outputs ``<name>_ch<c>_<tag>.wav``).
        chunk_seconds, overlap_seconds, fade_seconds, batch_chunks: chunk-wise separation (see
            :func:`separate_waveform`); default in one piece.
        on_chunk (callable, optional): ``on_chunk(done, total)`` after every chunk.
        details (bool): return a :class:`SeparatedFile` instead of the list of paths.

    Returns:
        list of str: the files written (or a :class:`SeparatedFile` with ``details=True``).
    """
    if channels not in ("mix", "each"):
        raise ValueError(f"channels must be 'mix' or 'each', got {channels!r}.")
    prompts = check_prompts(model, prompts)
    path = Path(filename)
    audio, rate = read_audio(path)
    n_in = audio.shape[-1]
    if channels == "mix":
        wav, chans = audio.mean(0, keepdim=True), [None]
        checks = [(wav, f"audio of '{path.name}' (mixed down to mono)")]
    else:
        wav, chans = audio, list(range(1, audio.shape[0] + 1))
        checks = [(audio[c - 1], f"audio of channel {c} of '{path.name}'") for c in chans]
    for signal, name in checks:
        check_waveform(signal, name=name, allow_silence=False)
    model_rate = int(round(float(model.sample_rate)))
    if rate != model_rate and not resample:
        raise SampleRateError(
            f"'{path}' has a sampling rate of {rate}Hz, the model works at {model_rate}Hz: pass "
            "resample=True to resample it (and the estimates back)."
        )
    out_dir = Path(output_dir) if output_dir is not None else path.parent
    n_out = len(prompts) if prompts is not None else getattr(model, "n_src", None)
    if n_out is not None and not force_overwrite:
        existing = [p for c in chans for p in output_paths(path, out_dir, n_out, c, prompts)]
        existing = [str(p) for p in existing if p.exists()]
        if existing:
            raise FileExistsError(
                f"Output file(s) {existing} exist; pass force_overwrite=True to overwrite them."
            )
    sizes = chunk_samples(model, n_in, chunk_seconds, overlap_seconds, fade_seconds)
    result = separate_chunked(
        model,
        _resample(wav, rate, model_rate),
        *sizes,
        batch_chunks=batch_chunks,
        prompts=prompts,
        on_chunk=on_chunk,
    )
    est = _resample(result.estimates, model_rate, rate)[..., :n_in]
    est = torch.nn.functional.pad(est, (0, n_in - est.shape[-1]))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for b, channel in enumerate(chans):
        targets = output_paths(path, out_dir, est.shape[1], channel, prompts)
        for k, target in enumerate(targets):
            sf.write(str(target), est[b, k].numpy(), rate, subtype="FLOAT")
        written.append(targets)
    if details:
        return SeparatedFile(written, result.n_chunks, result.steps, rate)
    return [str(p) for paths in written for p in paths]
