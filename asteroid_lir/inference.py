"""Separation of waveforms and files, chunk-wise with bounded memory: the one separation path.

``model.separate()`` / ``model.file_separate()`` of every asteroid_lir model and the
``asteroid-lir-separate`` command call :func:`separate_waveform` and :func:`separate_file`, which
run :func:`separate_chunked`. What they keep of Asteroid's ``separate`` and what they change:

- kept: the return types (tensor in, tensor out on the input's device; numpy in, numpy out; a
  file in, files ``<name>_est<k>.wav`` out), ``resample=False`` refusing a file at another
  sample rate (the error is a ``RuntimeError`` as Asteroid's, and a ``ValueError``), no
  overwriting unless ``force_overwrite``;
- changed: the estimates are **not rescaled** (Asteroid multiplies them so that their summed
  magnitude equals the mixture's; that changes with the number of outputs, breaks the scale of
  models trained with SNR losses such as TUSS, and lifts an absent prompt's silence), files are
  written as 32-bit float WAV (no clipping, no 16-bit rounding) at the input's sample rate and
  length, several channels are mixed down (``channels="each"`` separates every channel; Asteroid
  keeps the first one), resampling uses torchaudio, outputs of prompt-conditioned models are
  named by prompt (``<name>_speech.wav``, ``<name>_sfx1.wav``, ``<name>_sfx2.wav``), and inputs
  longer than ``chunk_seconds`` are cut into chunks (below).

A long input is cut into overlapping chunks that go through the model one by one (or a few at a
time) and are cross-faded back together after their sources were aligned: chunk geometry,
weights and alignment are :mod:`asteroid_lir.chunking`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .chunking import align_sources, check_chunk_sizes, chunk_bounds, chunk_weights, source_groups
from .models.base import check_waveform, to_float_waveform

__all__ = [
    "ChunkedResult",
    "align_sources",
    "check_chunk_sizes",
    "check_prompts",
    "chunk_bounds",
    "chunk_samples",
    "chunk_weights",
    "is_gated",
    "model_device",
    "run_model",
    "separate_chunked",
    "separate_waveform",
    "source_groups",
    "takes_prompts",
]


@dataclass
class ChunkedResult:
    """What :func:`separate_chunked` returns.

    Attributes:
        estimates (torch.Tensor): ``(batch, n_src, time)`` float32 on the CPU.
        n_chunks (int): chunks the input was cut into (1: one piece).
        steps (torch.Tensor or None): for gated models (``forward_with_steps``), the refinement
            steps each chunk took, ``(batch, n_chunks)`` (gated prompt models: ``(batch,
            n_chunks, n_prompts)``); ``None`` for other models.
    """

    estimates: torch.Tensor
    n_chunks: int
    steps: torch.Tensor | None = None


def takes_prompts(model: nn.Module) -> bool:
    """Whether ``model`` is steered by prompts (it lists its ``prompt_names``)."""
    return getattr(model, "prompt_names", None) is not None


def check_prompts(model: nn.Module, prompts: Sequence[str] | None) -> list[str] | None:
    """Check the prompts given for ``model``.

    Args:
        model (nn.Module): the separation model.
        prompts (sequence of str, optional): one prompt name per source to extract.

    Returns:
        list of str or None: the prompts for a prompt-conditioned model, ``None`` otherwise.

    Raises:
        ValueError: prompts for a model that takes none, no prompts for a model that needs
            them, or names the model does not know.
    """
    name = type(model).__name__
    if not takes_prompts(model):
        if prompts:
            raise ValueError(
                f"{name} takes no prompts, but prompts {list(prompts)} were given; "
                "prompts are for prompt-conditioned models such as TUSS."
            )
        return None
    known = list(model.prompt_names)
    if prompts is None:
        raise ValueError(
            f"{name} is steered by prompts: name the sources to extract, one prompt per output, "
            f"from {known} (Python: prompts=['{known[0]}', ...]; command line: --prompts "
            f"{known[0]},...)."
        )
    if len(prompts) == 0:
        raise ValueError(
            f"The prompt list is empty: give at least one prompt (known prompts: {known})."
        )
    unknown = [p for p in prompts if p not in known]
    if unknown:
        raise ValueError(f"Unknown prompt name(s) {unknown} for {name}; known prompts: {known}.")
    return list(prompts)


def is_gated(model: nn.Module) -> bool:
    """Whether ``model`` is a gated early-exit model that reports the steps it takes.

    True for models with ``forward_with_steps`` whose refinement core (``model.refiner``, when
    there is one) is gated: every ``RefinementModelMixin`` model has the method, only gated
    ones can run it.
    """
    if not callable(getattr(model, "forward_with_steps", None)):
        return False
    return bool(getattr(getattr(model, "refiner", None), "gated", True))


def run_model(
    model: nn.Module, wav: torch.Tensor, prompts: list[str] | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(estimates, steps)`` of a batch ``(batch, time)``: the same prompts for every item of a
    prompt model; the steps a gated model took (``None`` otherwise): one per item ``(batch,)``,
    or one per (item, prompt) ``(batch, n_prompts)`` for a prompt model (its gate decides per
    prompt)."""
    inputs = (wav,) if prompts is None else (wav, [list(prompts) for _ in range(wav.shape[0])])
    if is_gated(model):
        est, steps = model.forward_with_steps(*inputs)
        return est, steps if takes_prompts(model) else steps.reshape(-1)
    return model(*inputs), None


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's parameters (the CPU for a model without any)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def separate_chunked(
    model: nn.Module,
    wav: torch.Tensor,
    chunk_size: int,
    overlap: int,
    fade: int | None = None,
    batch_chunks: int = 1,
    prompts: Sequence[str] | None = None,
    align: bool = True,
    on_chunk: Callable[[int, int], None] | None = None,
) -> ChunkedResult:
    """Separate ``wav`` chunk by chunk with cross-faded overlap-add and source alignment.

    The model runs in eval mode under ``torch.inference_mode`` on the device of its
    parameters; chunks are moved there and their estimates back to the CPU, where the output
    is accumulated. Gated models (:func:`is_gated`) report the steps each chunk took.
    Prompt-conditioned models (:func:`takes_prompts`: they list their ``prompt_names``) are
    called as ``model(wav, [prompts] * batch)``.

    Args:
        model (nn.Module): any model mapping ``(batch, time)`` to ``(batch, n_src, time)``
            (an Asteroid ``BaseModel``), at the sample rate of ``wav``.
        wav (torch.Tensor): ``(time,)`` or ``(batch, time)`` waveform(s).
        chunk_size (int): samples per chunk; inputs of at most this length run in one piece.
        overlap (int): samples shared by consecutive chunks, ``0 <= overlap < chunk_size``.
        fade (int, optional): cross-fade length inside the overlap (default ``overlap // 2``);
            ``(overlap - fade) // 2`` samples at each cut edge of a chunk are discarded.
        batch_chunks (int): chunks of equal length passed through the model together (more
            speed on a GPU, proportionally more activation memory).
        prompts (sequence of str, optional): one prompt name per source to extract, for
            prompt-conditioned models; an error for other models.
        align (bool): reorder each chunk's sources to match the previous chunk's.
        on_chunk (callable, optional): called as ``on_chunk(done, total)`` after every chunk.

    Returns:
        ChunkedResult: the estimates ``(batch, n_src, time)`` (float32, CPU), the number of
        chunks and, for gated models, the steps per chunk.

    Raises:
        ValueError: bad sizes, a bad waveform (empty, NaN/Inf, silent), prompts given to a model
            without prompts or missing for a prompt model, unknown prompt names, or model
            outputs of an unexpected shape.
    """
    prompts = check_prompts(model, prompts)
    fade = check_chunk_sizes(chunk_size, overlap, fade)
    if batch_chunks < 1:
        raise ValueError(f"batch_chunks must be at least 1, got {batch_chunks}.")
    wav = to_float_waveform(wav)[0]
    check_waveform(wav, allow_silence=False)
    if wav.ndim == 1:
        wav = wav[None]
    if wav.ndim != 2:
        raise ValueError(f"Expected a (time,) or (batch, time) waveform, got {tuple(wav.shape)}.")
    wav = wav.detach().to("cpu", torch.float32)
    batch, n_samples = wav.shape
    bounds = chunk_bounds(n_samples, chunk_size, overlap)
    device = model_device(model)

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            return _overlap_add(
                model, wav, bounds, overlap, fade, batch_chunks, prompts, align, on_chunk, device
            )
    finally:
        model.train(was_training)


def _overlap_add(model, wav, bounds, overlap, fade, batch_chunks, prompts, align, on_chunk, device):
    # The streaming loop of separate_chunked: only one group of chunk estimates and the
    # previous chunk's overlap are alive at a time; the output accumulates in place.
    batch, n_samples = wav.shape
    n_chunks = len(bounds)
    out = groups = prev_tail = None
    steps = []
    idx = 0
    while idx < n_chunks:
        # Consecutive chunks of the same length go through the model together.
        length = bounds[idx][1] - bounds[idx][0]
        group = [idx]
        while (
            len(group) < batch_chunks
            and group[-1] + 1 < n_chunks
            and bounds[group[-1] + 1][1] - bounds[group[-1] + 1][0] == length
        ):
            group.append(group[-1] + 1)
        pieces = torch.cat([wav[:, s:e] for s, e in (bounds[i] for i in group)], dim=0)
        est, chunk_steps = run_model(model, pieces.to(device), prompts)
        if est.ndim != 3 or est.shape[0] != pieces.shape[0] or est.shape[-1] != length:
            raise ValueError(
                f"{type(model).__name__} returned estimates of shape {tuple(est.shape)} for an "
                f"input of shape {tuple(pieces.shape)}; expected (batch, n_src, {length})."
            )
        est = est.float().cpu()
        if chunk_steps is not None:
            per_chunk = chunk_steps.cpu().reshape(len(group), batch, *chunk_steps.shape[1:])
            steps.extend(per_chunk.unbind(0))
        if out is None:
            n_src = est.shape[1]
            # A normal tensor (not an inference tensor), so callers may modify it in place.
            with torch.inference_mode(False):
                out = torch.zeros(batch, n_src, n_samples)
            groups = source_groups(prompts, n_src)
        for pos, chunk_idx in enumerate(group):
            start, end = bounds[chunk_idx]
            chunk = est[pos * batch : (pos + 1) * batch]
            if align and prev_tail is not None:
                perm = align_sources(prev_tail, chunk[..., :overlap], groups)
                chunk = torch.gather(chunk, 1, perm[..., None].expand_as(chunk))
            weights = chunk_weights(
                end - start, chunk_idx > 0, chunk_idx < n_chunks - 1, overlap, fade
            )
            out[..., start:end].addcmul_(chunk, weights)
            prev_tail = chunk[..., chunk.shape[-1] - overlap :].clone() if overlap else None
            if on_chunk is not None:
                on_chunk(chunk_idx + 1, n_chunks)
        del est, pieces
        idx = group[-1] + 1
    with torch.inference_mode(False):
        step_tensor = torch.stack(steps, dim=1).clone() if steps else None
    return ChunkedResult(estimates=out, n_chunks=n_chunks, steps=step_tensor)


# ---------------------------------------------------------------------- waveforms and files
def chunk_samples(
    model: nn.Module,
    n_samples: int,
    chunk_seconds: float | None,
    overlap_seconds: float | None,
    fade_seconds: float | None,
) -> tuple[int, int, int | None]:
    """Chunk, overlap and fade in samples of a model's rate (one piece when ``chunk_seconds`` is
    None; the overlap defaults to a quarter of a chunk, the fade to half the overlap)."""
    rate = float(model.sample_rate)
    if chunk_seconds is None:
        return max(1, n_samples), 0, None
    chunk = int(round(chunk_seconds * rate))
    overlap_seconds = chunk_seconds / 4 if overlap_seconds is None else overlap_seconds
    overlap = int(round(overlap_seconds * rate))
    fade = None if fade_seconds is None else int(round(fade_seconds * rate))
    return chunk, overlap, check_chunk_sizes(chunk, overlap, fade)


def separate_waveform(
    model: nn.Module,
    wav,
    prompts: Sequence[str] | None = None,
    chunk_seconds: float | None = None,
    overlap_seconds: float | None = None,
    fade_seconds: float | None = None,
    batch_chunks: int = 1,
):
    """Separate a tensor or array: ``model.separate(wav)``.

    Args:
        model (nn.Module): a separation model with a ``sample_rate``.
        wav: ``(time,)``, ``(batch, time)`` or ``(batch, 1, time)`` tensor or array (integer PCM
            is scaled to ``[-1, 1)``).
        prompts (sequence of str, optional): one prompt name per output (prompt models).
        chunk_seconds (float, optional): separate chunks of this length (default: in one piece).
        overlap_seconds, fade_seconds (float, optional): chunk overlap (default a quarter of a
            chunk) and cross-fade (default half the overlap).
        batch_chunks (int): chunks per model call.

    Returns:
        ``(batch, n_src, time)`` estimates (``(n_src, time)`` for a 1-D input) of the input's
        kind: a tensor on the input's device (float64 for a float64 input, else float32) or a
        numpy array.
    """
    tensor, kind = to_float_waveform(wav)
    check_waveform(tensor, type(model).__name__, allow_silence=False)
    flat = tensor.reshape(-1, tensor.shape[-1])
    sizes = chunk_samples(model, flat.shape[-1], chunk_seconds, overlap_seconds, fade_seconds)
    est = separate_chunked(model, flat, *sizes, batch_chunks=batch_chunks, prompts=prompts)
    est = est.estimates[0] if tensor.ndim == 1 else est.estimates
    out_dtype = torch.float64 if tensor.dtype == torch.float64 else torch.float32
    est = est.to(tensor.device, out_dtype)
    return est.numpy() if kind == "numpy" else est
