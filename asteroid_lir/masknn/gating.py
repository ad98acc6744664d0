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

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GatingModule"]

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
        the deterministic decision ``argmax f(z)``, without noise (ties exit).

        Args:
            z (torch.Tensor): latent ``(batch, in_chan, frames)``.
            tau (float): Gumbel-softmax temperature (training only).

        Returns:
            torch.Tensor: ``(batch,)`` float tensor of 0/1 values, 1 = apply the block.
        """
        logits = self(z)
        if self.training:
            return F.gumbel_softmax(logits, tau=tau, hard=True)[:, _PROCESS]
        return (logits[:, _PROCESS] > logits[:, _EXIT]).to(logits.dtype)

    def get_config(self) -> dict:
        """Arguments to re-instantiate the gate."""
        return {"in_chan": self.in_chan, "kernel_size": self.kernel_size}
