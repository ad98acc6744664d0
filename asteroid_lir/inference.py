"""Chunked inference: separate signals of any length with bounded memory.

A long input is cut into chunks of ``chunk_size`` samples that overlap by ``overlap`` samples
(chunk ``i`` starts at ``i * (chunk_size - overlap)``; the last one ends at the input's end and
may be shorter). Each chunk goes through the model on its own; the chunk estimates are added
into one output array with weights that cross-fade between neighbouring chunks, and before that
the sources of every chunk are reordered to match the previous chunk on their overlap. Inputs no
longer than one chunk go through the model in one piece.

Cross-fade: in the overlap of chunks ``i`` and ``i + 1`` the first ``margin = (overlap - fade)
// 2`` samples come from chunk ``i`` alone, the next ``fade`` samples fade from chunk ``i`` to
chunk ``i + 1`` with complementary raised-cosine weights (``sin^2`` rising, ``cos^2`` falling),
and the rest come from chunk ``i + 1`` alone. The weights of all chunks sum to one at every
sample (:func:`chunk_weights`), so no normalisation pass is needed, and every sample is taken
from chunk positions at least ``margin`` samples away from the chunk's cut edges. Hence for a
model whose output at a sample depends only on the input within ``margin`` samples of it, the
chunked result equals the one-piece result up to float rounding (models with a global
normalisation, such as Sudo rm -rf's global layer norm, only approximately).

Source order: a separation model may output the sources of two chunks in different orders. Each
chunk's estimates are permuted to maximise their inner product with the previous chunk's
(already aligned) estimates on the ``overlap`` samples both cover, which is the permutation of
least squared error. It is found exactly as a linear assignment (Hungarian algorithm,
``scipy.optimize.linear_sum_assignment``) for any number of sources. Models steered by prompts
(``model(wav, prompts)``, e.g. TUSS) output their sources in prompt order; only outputs of the
same prompt name may be swapped between chunks.

Memory: the input, one float32 output array of the input's length and one chunk's (or one
batch of chunks') activations; the previous chunk's overlap is the only estimate kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from .models.base import validate_waveform

__all__ = [
    "ChunkedResult",
    "align_sources",
    "chunk_bounds",
    "check_chunk_sizes",
    "check_prompts",
    "chunk_weights",
    "is_gated",
    "separate_chunked",
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
            steps each chunk took, ``(batch, n_chunks)``; ``None`` for other models.
    """

    estimates: torch.Tensor
    n_chunks: int
    steps: torch.Tensor | None = None


def check_chunk_sizes(chunk_size: int, overlap: int, fade: int | None = None) -> int:
    """Check chunk, overlap and cross-fade lengths (samples) and resolve the default fade.

    Args:
        chunk_size (int): samples per chunk, at least 1.
        overlap (int): samples shared by consecutive chunks, in ``[0, chunk_size)``.
        fade (int, optional): cross-fade length, in ``[0, min(overlap, chunk_size - overlap)]``;
            default ``overlap // 2``.

    Returns:
        int: the cross-fade length.

    Raises:
        ValueError: a length out of its range.
    """
    fade = overlap // 2 if fade is None else int(fade)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1 sample, got {chunk_size}.")
    if not 0 <= overlap < chunk_size:
        raise ValueError(
            f"overlap must be in [0, chunk_size): got overlap={overlap}, chunk_size={chunk_size}."
        )
    if not 0 <= fade <= overlap:
        raise ValueError(f"fade must be in [0, overlap={overlap}], got {fade}.")
    if fade > chunk_size - overlap:
        raise ValueError(
            f"fade ({fade}) must not exceed the hop chunk_size - overlap "
            f"({chunk_size - overlap}): the fade-in and fade-out of a chunk would overlap."
        )
    return fade


def chunk_bounds(n_samples: int, chunk_size: int, overlap: int) -> list[tuple[int, int]]:
    """Start and end sample of every chunk of a signal.

    Args:
        n_samples (int): length of the signal.
        chunk_size (int): samples per chunk.
        overlap (int): samples shared by consecutive chunks, in ``[0, chunk_size)``.

    Returns:
        list of (int, int): ``(start, end)`` pairs; chunk ``i`` starts at
        ``i * (chunk_size - overlap)``, every chunk but the last has ``chunk_size`` samples, the
        last ends at ``n_samples`` and has more than ``overlap`` samples. One chunk
        ``(0, n_samples)`` when ``n_samples <= chunk_size``.
    """
    check_chunk_sizes(chunk_size, overlap, 0)
    if n_samples < 1:
        raise ValueError(f"Cannot cut a signal of {n_samples} samples into chunks.")
    hop = chunk_size - overlap
    n_chunks = 1 if n_samples <= chunk_size else 1 + math.ceil((n_samples - chunk_size) / hop)
    starts = [i * hop for i in range(n_chunks)]
    return [(s, min(s + chunk_size, n_samples)) for s in starts]


def _rise(fade: int) -> torch.Tensor:
    t = (torch.arange(fade, dtype=torch.float64) + 0.5) / fade
    return torch.sin(0.5 * math.pi * t) ** 2


def chunk_weights(
    length: int, has_prev: bool, has_next: bool, overlap: int, fade: int
) -> torch.Tensor:
    """Overlap-add weights of one chunk (see the module docstring for the layout).

    Args:
        length (int): samples in the chunk.
        has_prev (bool): a chunk overlaps this one's first ``overlap`` samples.
        has_next (bool): a chunk overlaps this one's last ``overlap`` samples.
        overlap (int): samples shared with each neighbour.
        fade (int): length of the cross-fade, centred in the overlap.

    Returns:
        torch.Tensor: ``(length,)`` float32 weights in ``[0, 1]``; the weights of all the chunks
        of :func:`chunk_bounds` add up to one at every sample of the signal.
    """
    margin = (overlap - fade) // 2
    weights = torch.ones(length, dtype=torch.float64)
    rise = _rise(fade)
    if has_prev:
        weights[:margin] = 0.0
        weights[margin : margin + fade] = rise
    if has_next:
        start = length - overlap + margin
        weights[start : start + fade] *= 1.0 - rise
        weights[start + fade :] = 0.0
    return weights.float()


def source_groups(prompts: Sequence[str] | None, n_src: int) -> list[list[int]]:
    """Which outputs may be permuted among themselves between chunks.

    Args:
        prompts: the prompt of each output (prompt-conditioned models), or ``None``.
        n_src (int): number of outputs.

    Returns:
        list of list of int: all outputs in one group without prompts; otherwise one group per
        prompt name (outputs of different prompts keep their place).
    """
    if prompts is None:
        return [list(range(n_src))]
    groups: dict[str, list[int]] = {}
    for idx, name in enumerate(prompts):
        groups.setdefault(name, []).append(idx)
    return list(groups.values())


def align_sources(
    previous: torch.Tensor, current: torch.Tensor, groups: list[list[int]] | None = None
) -> torch.Tensor:
    """Order of ``current``'s sources that best matches ``previous`` on the same samples.

    Maximises ``sum_j <previous_j, current_perm[j]>``, which is the same as minimising the
    summed squared error, with the Hungarian algorithm (exact for any number of sources).

    Args:
        previous (torch.Tensor): ``(batch, n_src, n)`` already aligned estimates.
        current (torch.Tensor): ``(batch, n_src, n)`` estimates of the same ``n`` samples.
        groups: sources that may be exchanged (:func:`source_groups`); default: all.

    Returns:
        torch.Tensor: ``(batch, n_src)`` long indices ``perm`` such that
        ``current[b, perm[b]]`` is aligned with ``previous[b]``.
    """
    if previous.shape != current.shape or previous.ndim != 3:
        raise ValueError(
            f"align_sources needs two (batch, n_src, n) tensors of one shape, got "
            f"{tuple(previous.shape)} and {tuple(current.shape)}."
        )
    batch, n_src, _ = current.shape
    groups = groups if groups is not None else [list(range(n_src))]
    # scores[b, j, k] = <previous_j, current_k> on the shared samples.
    scores = torch.einsum("bjn,bkn->bjk", previous.double(), current.double()).cpu().numpy()
    perm = np.tile(np.arange(n_src), (batch, 1))
    for b in range(batch):
        for group in groups:
            if len(group) < 2:
                continue
            sub = scores[b][np.ix_(group, group)]
            rows, cols = linear_sum_assignment(sub, maximize=True)
            perm[b, [group[r] for r in rows]] = [group[c] for c in cols]
    return torch.from_numpy(perm)


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
    if not prompts:
        raise ValueError(
            f"{name} is steered by prompts: name the sources to extract, one prompt per output, "
            f"from {known} (Python: prompts=['{known[0]}', ...]; command line: --prompts "
            f"{known[0]},...)."
        )
    unknown = [p for p in prompts if p not in known]
    if unknown:
        raise ValueError(f"Unknown prompt name(s) {unknown} for {name}; known: {known}.")
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


def _run_model(
    model: nn.Module, wav: torch.Tensor, prompts: list[str] | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    if prompts is not None:
        return model(wav, [list(prompts) for _ in range(wav.shape[0])]), None
    if is_gated(model):
        est, steps = model.forward_with_steps(wav)
        return est, steps.reshape(-1)
    return model(wav), None


def _model_device(model: nn.Module) -> torch.device:
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
    wav = torch.as_tensor(wav)
    validate_waveform(wav)
    if wav.ndim == 1:
        wav = wav[None]
    if wav.ndim != 2:
        raise ValueError(f"Expected a (time,) or (batch, time) waveform, got {tuple(wav.shape)}.")
    wav = wav.detach().to("cpu", torch.float32)
    batch, n_samples = wav.shape
    bounds = chunk_bounds(n_samples, chunk_size, overlap)
    device = _model_device(model)

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
    out = None
    groups = None
    prev_tail = None
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
        est, chunk_steps = _run_model(model, pieces.to(device), prompts)
        if est.ndim != 3 or est.shape[0] != pieces.shape[0] or est.shape[-1] != length:
            raise ValueError(
                f"{type(model).__name__} returned estimates of shape {tuple(est.shape)} for an "
                f"input of shape {tuple(pieces.shape)}; expected (batch, n_src, {length})."
            )
        est = est.float().cpu()
        if chunk_steps is not None:
            steps.extend(chunk_steps.cpu().reshape(len(group), batch).unbind(0))
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
