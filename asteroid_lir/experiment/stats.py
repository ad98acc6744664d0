"""Statistics of experiment grids: seeds, comparisons beyond the seed spread, rank correlation,
the oracle gate.

A claim such as "A is better than B" counts as reproduced by :func:`compare` only when it holds
beyond the spread of the seeds: every seed of A scores above every seed of B (the ranges do not
overlap). With three seeds each, two configurations of equal quality give non-overlapping ranges
in one ordering with probability 1/20, so the test is strict without needing a noise model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "compare",
    "interpolate_curve",
    "marginal_gains",
    "oracle_steps",
    "seed_summary",
    "spearman",
]


def seed_summary(values: Sequence[float]) -> dict:
    """Mean, standard deviation (``ddof=1``; 0 for one value), range and count of per-seed
    values.

    Args:
        values: one figure per seed (at least one, all finite).

    Returns:
        dict: ``mean``, ``std``, ``min``, ``max``, ``n`` and the ``values``.

    Raises:
        ValueError: no values or a non-finite one.
    """
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0 or not np.isfinite(arr).all():
        raise ValueError(f"seed_summary needs finite values, got {list(values)}.")
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
        "min": float(arr.min()),
        "max": float(arr.max()),
        "n": int(arr.size),
        "values": [float(v) for v in arr],
    }


def compare(better: Sequence[float], worse: Sequence[float]) -> dict:
    """Whether ``better`` beats ``worse`` beyond the seed spread (see the module docstring).

    Args:
        better: per-seed figures of the configuration claimed better.
        worse: per-seed figures of the other one.

    Returns:
        dict: ``diff`` (difference of the means), ``beyond_spread`` (every value of ``better``
        above every value of ``worse``), ``ahead`` (the means are in the claimed order) and
        both :func:`seed_summary`'s.
    """
    a, b = seed_summary(better), seed_summary(worse)
    return {
        "diff": a["mean"] - b["mean"],
        "ahead": a["mean"] > b["mean"],
        "beyond_spread": a["min"] > b["max"],
        "better": a,
        "worse": b,
    }


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman rank correlation (average ranks for ties); ``None`` if either is constant.

    Raises:
        ValueError: sequences of different lengths or fewer than 3 values.
    """
    from scipy.stats import spearmanr

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.size < 3:
        raise ValueError(
            f"spearman needs two sequences of the same length >= 3, got {x.shape}, {y.shape}."
        )
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(spearmanr(x, y).statistic)


def interpolate_curve(points: Mapping[float, float], x: float) -> float | None:
    """Piecewise-linear interpolation of ``{x: y}`` at ``x`` (``None`` outside the range)."""
    xs = sorted(points)
    if not xs or not xs[0] <= x <= xs[-1]:
        return None
    return float(np.interp(x, xs, [points[k] for k in xs]))


def oracle_steps(per_step: np.ndarray, lam: float, min_steps: int = 1) -> np.ndarray:
    """Per mixture, the number of steps ``k >= min_steps`` that maximises ``score_k - lam * k``:
    what a perfect gate would choose for the loss ``L_sep + lam * C_hat`` (paper Eq. 9-10).

    Args:
        per_step: ``(n_mixtures, n_steps)`` score (dB) after each step ``1..n_steps``.
        lam: dB traded per step.
        min_steps: steps always taken.

    Returns:
        np.ndarray: ``(n_mixtures,)`` step counts.
    """
    scores = np.asarray(per_step, dtype=float)
    if scores.ndim != 2 or not 1 <= min_steps <= scores.shape[1]:
        raise ValueError(
            f"Expected (n_mixtures, n_steps) scores and 1 <= min_steps <= n_steps, got "
            f"{scores.shape} and {min_steps}."
        )
    ks = np.arange(1, scores.shape[1] + 1)
    value = np.where(ks >= min_steps, scores - lam * ks, -np.inf)
    return ks[np.argmax(value, axis=1)]


def marginal_gains(per_step: np.ndarray, covariate: Sequence[float], lam: float) -> dict:
    """What each further step brings, and whether that depends on the input.

    Args:
        per_step: ``(n_mixtures, n_steps)`` scores after each step.
        covariate: one value per mixture (e.g. the input SNR).
        lam: the step price of the gate's loss.

    Returns:
        dict: per step ``k >= 2``: mean and std of ``score_k - score_{k-1}``, the share of
        mixtures for which it exceeds ``lam`` and its Spearman correlation with the covariate.
    """
    scores = np.asarray(per_step, dtype=float)
    out = {}
    for k in range(1, scores.shape[1]):
        gain = scores[:, k] - scores[:, k - 1]
        out[str(k + 1)] = {
            "mean": float(gain.mean()),
            "std": float(gain.std()),
            "share_above_lambda": float((gain > lam).mean()),
            "spearman": spearman(covariate, gain),
        }
    return out
