"""Scores of the unified recipe: SI-SDR / SNR, their improvements, and output assignment.

``si_sdr`` is the scale-invariant SDR of zero-mean signals (Le Roux et al., 2019); ``snr`` the
plain signal-to-noise ratio (MSS is scored with it, as in the TUSS paper). An improvement is the
score of the estimate minus the score of the mixture taken as the estimate.

Assignment: a prompted model's outputs are matched to the references of the same prompt name
(best total score inside each group, the other outputs keep their place); a model with fixed
outputs (the unconditional baseline) has each reference matched to a distinct output among all
of them (best total score: an oracle choice that can only favour the baseline).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["METRICS", "assign", "pairwise_scores", "score_mixture"]

_EPS = 1e-8


def _si_sdr(est: np.ndarray, ref: np.ndarray) -> np.ndarray:
    est = est - est.mean(-1, keepdims=True)
    ref = ref - ref.mean(-1, keepdims=True)
    dot = (est[:, None] * ref[None]).sum(-1)  # (n_est, n_ref)
    ref_energy = (ref**2).sum(-1)[None] + _EPS
    target = (dot / ref_energy)[..., None] * ref[None]  # (n_est, n_ref, time)
    noise = est[:, None] - target
    return 10 * np.log10(((target**2).sum(-1) + _EPS) / ((noise**2).sum(-1) + _EPS))


def _snr(est: np.ndarray, ref: np.ndarray) -> np.ndarray:
    noise = est[:, None] - ref[None]
    return 10 * np.log10(((ref**2).sum(-1)[None] + _EPS) / ((noise**2).sum(-1) + _EPS))


METRICS = {"si_sdr": _si_sdr, "snr": _snr}


def pairwise_scores(est: np.ndarray, ref: np.ndarray, metric: str) -> np.ndarray:
    """Score of every (estimate, reference) pair, ``(n_est, n_ref)`` in dB."""
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; choose from {list(METRICS)}.")
    est = np.asarray(est, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if est.ndim != 2 or ref.ndim != 2 or est.shape[-1] != ref.shape[-1]:
        raise ValueError(f"Expected (n, time) arrays of one length, got {est.shape}, {ref.shape}.")
    return METRICS[metric](est, ref)


def assign(scores: np.ndarray, prompts: list[str] | None) -> list[int]:
    """The output matched to each reference (maximising the total score).

    Args:
        scores: ``(n_out, n_ref)`` pairwise scores.
        prompts: the prompt of each output, equal to that of each reference (prompted model),
            or None: references go to any distinct outputs (``n_out >= n_ref``).

    Returns:
        list of int: ``out[j]`` is the output matched to reference ``j``.
    """
    n_out, n_ref = scores.shape
    if prompts is None:
        if n_out < n_ref:
            raise ValueError(f"{n_out} outputs cannot cover {n_ref} references.")
        rows, cols = linear_sum_assignment(scores, maximize=True)
        out = [0] * n_ref
        for r, c in zip(rows, cols):
            out[c] = int(r)
        return out
    if n_out != n_ref or len(prompts) != n_ref:
        raise ValueError("A prompted model has one output per reference and prompt.")
    out = list(range(n_ref))
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(p, []).append(i)
    for group in groups.values():
        if len(group) < 2:
            continue
        sub = scores[np.ix_(group, group)]
        rows, cols = linear_sum_assignment(sub, maximize=True)
        for r, c in zip(rows, cols):
            out[group[c]] = group[r]
    return out


def score_mixture(
    est: np.ndarray, refs: np.ndarray, mixture: np.ndarray, prompts: list[str] | None, metric: str
) -> dict:
    """Scores of one separated mixture.

    Args:
        est: ``(n_out, time)`` outputs.
        refs: ``(n_ref, time)`` references, in prompt order.
        mixture: ``(time,)``.
        prompts: the reference prompts (for a prompted model), or None (fixed outputs).
        metric: ``"si_sdr"`` or ``"snr"``.

    Returns:
        dict: per reference ``score``, ``input`` (the mixture's score), ``improvement``, the
        matched ``output`` index and the output level relative to the mixture
        (``output_db``, dB of energy ratio).
    """
    scores = pairwise_scores(est, refs, metric)
    matched = assign(scores, prompts)
    inputs = pairwise_scores(np.asarray(mixture)[None], refs, metric)[0]
    mix_energy = float(np.sum(np.asarray(mixture, dtype=np.float64) ** 2)) + _EPS
    rows = []
    for j, out in enumerate(matched):
        energy = float(np.sum(np.asarray(est[out], dtype=np.float64) ** 2)) + _EPS
        rows.append(
            {
                "score": float(scores[out, j]),
                "input": float(inputs[j]),
                "improvement": float(scores[out, j] - inputs[j]),
                "output": int(out),
                "output_db": float(10 * np.log10(energy / mix_energy)),
            }
        )
    return {"metric": metric, "refs": rows}
