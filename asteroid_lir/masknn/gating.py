"""Adaptive early exit: a gate that decides, before each refinement step, whether to take it.

The gated masker refines the bottleneck latent with one shared block (paper Sec. 2.3, Fig. 4):

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

from .iterative_sudormrf import IterativeSuDORMRF
from .refinement import RefinementCore

__all__ = ["GatedIterativeSuDORMRF", "GatingModule"]

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


class GatedIterativeSuDORMRF(IterativeSuDORMRF):
    """Iterated Sudo rm -rf block with a gate before each application (adaptive early exit).

    One block of ``n_sub_blocks`` U-ConvBlocks is applied up to ``n_iters`` times with shared
    weights; a :class:`GatingModule` (also shared across steps) decides before each step after
    the first ``min_steps`` whether to apply it. The layout is that of :class:`IterativeSuDORMRF`
    with ``n_blocks=1`` plus ``gate``, so a pre-trained masker's state dict loads unchanged.
    The gated paths (training with straight-through Gumbel gates, per-sample early exit,
    traceable selection) are :meth:`RefinementCore.run_gated`. Every norm of the U-ConvBlock is
    a global layer norm over each sample alone, so a sub-batch gives the same values for its
    samples as the full batch.

    Args:
        in_chan, n_src, bn_chan, n_sub_blocks, upsampling_depth, mask_act: as for
            :class:`IterativeSuDORMRF` (``bn_chan`` is also the gate's input size).
        n_iters (int): maximum number of refinement steps.
        gate_kernel_size (int): frames spanned by the gate (3200 = 4 s at 8 kHz, stride 10).
        min_steps (int): steps always taken before the first gate (0 gates every step).
        gumbel_tau (float): Gumbel-softmax temperature in training.
        exit_is_final (bool): in training, a 0 gate stops all later steps of that sample.

    References:
        [1] "Latent Iterative Refinement for Modular Source Separation", Sec. 2.3, Eq. 7-10.
    """

    def __init__(
        self,
        in_chan: int,
        n_src: int,
        bn_chan: int = 128,
        n_sub_blocks: int = 1,
        n_iters: int = 4,
        upsampling_depth: int = 5,
        mask_act: str = "relu",
        gate_kernel_size: int = 3200,
        min_steps: int = 1,
        gumbel_tau: float = 1.0,
        exit_is_final: bool = True,
    ):
        if not isinstance(n_iters, int) or isinstance(n_iters, bool):
            raise TypeError(
                f"A gated masker has one block: n_iters must be an int, got {n_iters!r}."
            )
        super().__init__(
            in_chan,
            n_src,
            bn_chan=bn_chan,
            n_sub_blocks=n_sub_blocks,
            n_iters=n_iters,
            upsampling_depth=upsampling_depth,
            mask_act=mask_act,
            gate=GatingModule(bn_chan, gate_kernel_size),
            min_steps=min_steps,
            gumbel_tau=gumbel_tau,
            exit_is_final=exit_is_final,
        )

    @property
    def max_steps(self) -> int:
        """Maximum number of refinement steps."""
        return self.n_steps

    refine_gated = RefinementCore.run_gated

    def forward_with_steps(
        self, tf_rep: torch.Tensor, force_steps: int | torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks and steps from the encoder output (eval mode: with per-sample early exit).

        Args:
            tf_rep (torch.Tensor): encoder output ``(batch, in_chan, frames)``.
            force_steps (int or torch.Tensor, optional): see :meth:`RefinementCore.run_gated`.

        Returns:
            tuple: masks ``(batch, n_src, in_chan, frames)`` and the steps as returned by
            :meth:`RefinementCore.run_gated`.
        """
        z, steps = self.run_gated(self.embed(tf_rep), force_steps)
        return self.head(z, 0), steps

    def forward(
        self, tf_rep: torch.Tensor, force_steps: int | torch.Tensor | None = None
    ) -> torch.Tensor:
        """Masks ``(batch, n_src, in_chan, frames)`` after the gated refinement."""
        return self.forward_with_steps(tf_rep, force_steps)[0]

    def get_config(self) -> dict:
        """Arguments to re-instantiate the masker."""
        config = super().get_config()
        for key in ("n_blocks", "head_per_block"):
            config.pop(key)
        config.update(
            n_iters=self.n_steps,
            gate_kernel_size=self.gate.kernel_size,
            min_steps=self.min_steps,
            gumbel_tau=self.gumbel_tau,
            exit_is_final=self.exit_is_final,
        )
        return config
