"""Chunk geometry of chunked inference: chunk bounds, cross-fade weights, source alignment.

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

:func:`asteroid_lir.inference.separate_chunked` runs a model over the chunks with these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

__all__ = [
    "align_sources",
    "assign_in_groups",
    "check_chunk_sizes",
    "chunk_bounds",
    "chunk_weights",
    "source_groups",
]


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
    t = (torch.arange(fade, dtype=torch.float64) + 0.5) / fade
    rise = torch.sin(0.5 * math.pi * t) ** 2
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


def assign_in_groups(
    scores: np.ndarray, groups: list[list[int]] | None = None, maximize: bool = True
) -> list[int]:
    """The output matched to each reference, best total score, outputs exchanged only within a
    group (the Hungarian algorithm: exact for any number of sources).

    Args:
        scores: ``(n_out, n_ref)`` score (or cost) of every (output, reference) pair.
        groups: with as many outputs as references, the sets of positions that may be
            exchanged (:func:`source_groups`; a position outside every group keeps its
            output); ``None``: each reference gets a distinct output among all of them
            (``n_out >= n_ref``).
        maximize: maximise the total (scores) or minimise it (costs).

    Returns:
        list of int: ``out[j]``, the output matched to reference ``j``.

    Raises:
        ValueError: fewer outputs than references, or groups with a different number of each.
    """
    n_out, n_ref = scores.shape
    if groups is None:
        if n_out < n_ref:
            raise ValueError(f"{n_out} outputs cannot cover {n_ref} references.")
        rows, cols = linear_sum_assignment(scores, maximize=maximize)
        out = [0] * n_ref
        for r, c in zip(rows, cols):
            out[c] = int(r)
        return out
    if n_out != n_ref:
        raise ValueError(f"Grouped outputs need one output per reference, got {n_out} and {n_ref}.")
    out = list(range(n_ref))
    for group in groups:
        if len(group) < 2:
            continue
        rows, cols = linear_sum_assignment(scores[np.ix_(group, group)], maximize=maximize)
        for r, c in zip(rows, cols):
            out[group[c]] = group[r]
    return out


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
    # scores[b, k, j] = <current_k, previous_j> on the shared samples.
    scores = torch.einsum("bkn,bjn->bkj", current.double(), previous.double()).cpu().numpy()
    perm = [assign_in_groups(scores[b], groups) for b in range(batch)]
    return torch.tensor(perm, dtype=torch.long)
