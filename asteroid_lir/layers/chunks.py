"""Inference fast paths: when they may run, and chunks of independent items (bounded memory)."""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["fast_inference", "map_chunks"]


def fast_inference() -> bool:
    """Whether an owned inference-only variant (in-place ops, chunking) may run: no autograd
    graph is recorded and no trace is taken.

    A trace takes the autograd path in both of its passes (``torch.jit.trace`` checks its graph
    under ``torch.no_grad()``, so a branch on the grad mode alone gives two different graphs).
    """
    return not torch.is_grad_enabled() and not torch.jit.is_tracing()


def map_chunks(
    fn: Callable[..., torch.Tensor], x: torch.Tensor, chunk: int, *others: torch.Tensor | None
) -> torch.Tensor:
    """``fn(x, *others)`` computed on slices of ``chunk`` items along the first axis.

    For functions whose items (first axis) are independent, so that the result equals one call
    on everything; only one chunk's working set is alive at a time and the output is written
    into one preallocated tensor. Entries of ``others`` whose first axis has the length of
    ``x``'s are sliced with it; the others (shared parameters, ``None``) are passed whole.

    Args:
        fn: ``fn(x, *others) -> (n, ...)``.
        x (torch.Tensor): ``(n, ...)`` input.
        chunk (int): items per call (at least 1).
        *others: further arguments of ``fn``.

    Returns:
        torch.Tensor: ``fn(x, *others)``.
    """
    n = x.shape[0]
    chunk = max(1, int(chunk))
    if chunk >= n:
        return fn(x, *others)

    def part(start: int) -> torch.Tensor:
        sliced = [
            o[start : start + chunk] if isinstance(o, torch.Tensor) and o.shape[0] == n else o
            for o in others
        ]
        return fn(x[start : start + chunk], *sliced)

    first = part(0)
    out = first.new_empty((n, *first.shape[1:]))
    out[:chunk] = first
    del first
    for start in range(chunk, n, chunk):
        out[start : start + chunk] = part(start)
    return out
