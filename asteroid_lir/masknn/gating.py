"""Adaptive early exit: a gate that decides, before each refinement step, whether to take it.

A gated refinement core (any block type) refines its latent with shared blocks (paper Sec. 2.3,
Fig. 4):

    z_{i+1} = g_i * B(z_i) + (1 - g_i) * z_i,    g_i in {0, 1}                      (Eq. 7)

``g_i`` is the "process" entry of a hard Gumbel-softmax over the two logits of a small gating
network ``f`` (Eq. 8-9) and ``C_hat = sum_i g_i`` counts the steps taken (Eq. 10).

Step semantics (min_steps, final exits, ``C_hat``): :mod:`asteroid_lir.masknn.refinement`, whose
:class:`~asteroid_lir.masknn.refinement.RefinementCore` runs every gated path.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import nn

__all__ = ["GatingModule", "exit_margin_for_budget", "exit_steps"]

_EXIT, _PROCESS = 0, 1  # order of the gate's two logits


class GatingModule(nn.Module):
    """Gating network ``f`` of the adaptive early exit (paper Sec. 2.3 and 4.3).

    ``Conv1d(in_chan -> 2, kernel 1) -> PReLU -> Conv1d(2 -> 2, kernel kernel_size)``: the second
    convolution spans the whole (resampled) time axis and gives two logits per sample, ``exit``
    (index 0) and ``process`` (index 1). With the paper's sizes it has
    ``258 + 1 + 12 802 = 13 061`` parameters.

    Latent lengths: the second convolution weights each of ``kernel_size`` frames (3200 frames =
    4 s at 8 kHz with stride 10). A latent of any other length ``T`` is resampled to
    ``kernel_size`` frames with adaptive average pooling, applied to the 2-channel features
    after the point-wise layers (cheap, and every frame's features are exactly those the gate
    computes at the training length). Longer latents are averaged over windows of about
    ``T / kernel_size`` frames and shorter ones are stretched by repeating frames, so the
    temporal weighting becomes a profile over the relative position in the signal and the logit
    scale does not depend on the length. Zero-padding short inputs would instead shrink the
    logits by ``T / kernel_size`` and cropping long ones would ignore part of the signal.

    Exit margin: at inference a sample goes on while ``process - exit > exit_margin``. The
    margin is a buffer, 0 by default (the paper's argmax rule); set it with
    :func:`~asteroid_lir.engine.gated.calibrate_exit_margin` to spend a chosen mean number of
    steps on validation data (this library's addition: the learned gate ranks the inputs, the
    margin sets how many steps it gives them on average). It is saved with the weights; a file
    saved before the margin existed loads with margin 0.

    Args:
        in_chan (int): channels of the latent (the bottleneck size).
        kernel_size (int): frames spanned by the second convolution.

    References:
        [1] "Latent Iterative Refinement for Modular Source Separation", Sec. 2.3 and 4.3.
        [2] E. Jang, S. Gu and B. Poole, "Categorical reparameterization with Gumbel-softmax",
        ICLR 2017.
        [3] Y. Bengio, "Estimating or propagating gradients through stochastic neurons",
        arXiv:1305.2982, 2013.
    """

    def __init__(self, in_chan: int = 128, kernel_size: int = 3200):
        super().__init__()
        if in_chan < 1 or kernel_size < 1:
            raise ValueError(
                f"in_chan and kernel_size must be >= 1, got {in_chan} and {kernel_size}."
            )
        self.in_chan = in_chan
        self.kernel_size = kernel_size
        self.proj = nn.Conv1d(in_chan, 2, kernel_size=1)
        self.act = nn.PReLU()
        self.temporal = nn.Conv1d(2, 2, kernel_size=kernel_size)
        self.register_buffer("exit_margin", torch.zeros(()))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Files saved before the exit margin existed: the paper's rule, margin 0.
        state_dict.setdefault(prefix + "exit_margin", torch.zeros(()))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Gate logits ``f(z)``.

        Args:
            z (torch.Tensor): latent ``(batch, in_chan, frames)`` or ``(batch, in_chan, frames,
                freqs)``, any number of frames.

        Returns:
            torch.Tensor: logits ``(batch, 2)``: ``[:, 0]`` exit, ``[:, 1]`` process.
        """
        if z.ndim not in (3, 4) or z.shape[1] != self.in_chan:
            raise ValueError(
                f"The gate expects a latent (batch, {self.in_chan}, frames[, freqs]), got "
                f"{tuple(z.shape)}."
            )
        feats = self.act(self.proj(z.flatten(2)))
        if z.ndim == 4:
            feats = feats.view(*feats.shape[:2], *z.shape[2:]).mean(-1)
        feats = F.adaptive_avg_pool1d(feats, self.kernel_size)
        return self.temporal(feats).squeeze(-1)

    def decide(self, z: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
        """Gate values ``g`` for the latent ``z`` (Eq. 9).

        In training mode: hard Gumbel-softmax samples with a straight-through gradient (the
        forward value is exactly 0 or 1, the gradient is that of the soft sample). In eval mode:
        the deterministic decision ``process - exit > exit_margin``, without noise (ties exit;
        margin 0 is the paper's ``argmax f(z)``).

        Args:
            z (torch.Tensor): latent ``(batch, in_chan, frames)``.
            tau (float): Gumbel-softmax temperature (training only).

        Returns:
            torch.Tensor: ``(batch,)`` float tensor of 0/1 values, 1 = apply the block.
        """
        if self.training:
            return F.gumbel_softmax(self(z), tau=tau, hard=True)[:, _PROCESS]
        diff = self.margin_logits(z)
        return (diff > self.exit_margin).to(diff.dtype)

    def margin_logits(self, z: torch.Tensor) -> torch.Tensor:
        """``process - exit`` logit difference ``(batch,)``: the sample goes on (at inference)
        where it exceeds ``exit_margin``."""
        logits = self(z)
        return logits[:, _PROCESS] - logits[:, _EXIT]

    def get_config(self) -> dict:
        """Arguments to re-instantiate the gate."""
        return {"in_chan": self.in_chan, "kernel_size": self.kernel_size}


def exit_steps(margin_logits: ArrayLike, margin: float, min_steps: int = 1) -> np.ndarray:
    """Steps each sample takes at inference with exit margin ``margin`` (exits are final).

    Args:
        margin_logits: ``(n_samples, n_decisions)`` ``process - exit`` logit differences before
            each gated step, every step taken (:meth:`RefinementCore.margin_logits
            <asteroid_lir.masknn.refinement.RefinementCore.margin_logits>`).
        margin (float): the exit margin.
        min_steps (int): steps taken before the first decision.

    Returns:
        np.ndarray: ``(n_samples,)`` int steps: ``min_steps`` plus the decisions, from the
        first, whose logit exceeds the margin before the first that does not.
    """
    go = np.asarray(margin_logits, dtype=float) > margin
    return min_steps + np.cumprod(go, axis=1).sum(axis=1).astype(int)


def exit_margin_for_budget(margin_logits: ArrayLike, budget: float, min_steps: int = 1) -> float:
    """The smallest exit margin whose mean steps (:func:`exit_steps`) is at most ``budget``.

    The mean steps only change where the margin crosses one of the logits, so the candidates are
    the logits themselves (a sample whose logit equals the margin exits).

    Args:
        margin_logits: ``(n_samples, n_decisions)`` logit differences, as for :func:`exit_steps`.
        budget (float): mean steps to spend, in ``[min_steps, min_steps + n_decisions]``.
        min_steps (int): steps taken before the first decision.

    Returns:
        float: the margin (``-inf`` when the budget allows every step).
    """
    logits = np.asarray(margin_logits, dtype=float)
    if logits.ndim != 2 or logits.size == 0 or not np.isfinite(logits).all():
        raise ValueError(
            "margin_logits must be a non-empty (samples, decisions) array of finite values, "
            f"got shape {logits.shape}."
        )
    if not min_steps <= budget <= min_steps + logits.shape[1]:
        raise ValueError(
            f"The budget must lie in [{min_steps}, {min_steps + logits.shape[1]}] steps "
            f"(min_steps and every decision taken), got {budget}."
        )
    # Bisection: the mean steps fall as the margin rises, and at the largest logit every sample
    # exits at the first decision.
    candidates = np.concatenate(([-np.inf], np.unique(logits)))
    lo, hi = 0, len(candidates) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if exit_steps(logits, candidates[mid], min_steps).mean() <= budget:
            hi = mid
        else:
            lo = mid + 1
    return float(candidates[lo])
