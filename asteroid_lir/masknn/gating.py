"""Adaptive early exit: a gate that decides, before each refinement step, whether to take it.

The gated masker refines the bottleneck latent with one shared block (paper Sec. 2.3, Fig. 4):

    z_{i+1} = g_i * B(z_i) + (1 - g_i) * z_i,    g_i in {0, 1}                      (Eq. 7)

``g_i`` is the "process" entry of a hard Gumbel-softmax over the two logits of a small gating
network ``f`` (Eq. 8-9) and ``C_hat = sum_i g_i`` counts the steps taken (Eq. 10).

Step semantics used throughout this module:

- Steps are numbered from 0 to ``max_steps - 1``. The first ``min_steps`` steps are always taken
  (no gate is evaluated before them); a gate is evaluated before every later step. The default
  ``min_steps=1`` always applies the block once: the mask network of a pre-trained model only
  ever saw refined latents. ``min_steps=0`` gates every application, as drawn in the paper's
  Fig. 4, so a sample may leave with the un-refined bottleneck latent.
- An exit is final: once a sample's gate says 0, no later step is taken. At inference this is
  what Eq. 7 gives anyway (the gate is shared and deterministic, and ``g_i = 0`` leaves the
  latent unchanged, so every later gate sees the same input and says 0 again), which is why
  removing the sample from the batch is exact. In training, with Gumbel noise, a later draw
  could say 1 again; ``exit_is_final=True`` multiplies the decisions (``g_i = h_i * g_{i-1}``)
  so that training only follows paths inference can take. ``exit_is_final=False`` applies Eq. 7
  literally with independent draws.
- ``C_hat`` therefore equals the number of steps taken, ``min_steps`` included.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .iterative_sudormrf import IterativeSuDORMRF

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
            z (torch.Tensor): latent ``(batch, in_chan, frames)``, any number of frames.

        Returns:
            torch.Tensor: logits ``(batch, 2)``: ``[:, 0]`` exit, ``[:, 1]`` process.
        """
        if z.ndim != 3 or z.shape[1] != self.in_chan:
            raise ValueError(
                f"The gate expects a latent (batch, {self.in_chan}, frames), got {tuple(z.shape)}."
            )
        feats = F.adaptive_avg_pool1d(self.act(self.proj(z)), self.kernel_size)
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
    the first ``min_steps`` whether to apply it. The module layout is that of
    :class:`IterativeSuDORMRF` with ``n_blocks=1`` plus ``gate``, so a pre-trained masker's state
    dict loads unchanged (only ``gate.*`` is new).

    Three ways to run the steps (:meth:`refine_gated`):

    - training mode: every sample goes through every step and Eq. 7 mixes ``B(z_i)`` and
      ``z_i`` with hard straight-through Gumbel gates; returns the differentiable ``C_hat``.
    - eval mode, ``early_exit=True``: a sample whose gate says 0 leaves the batch
      (``index_select`` of the samples still running), so later steps cost less; returns the
      integer step counts.
    - eval mode, ``early_exit=False``: every sample is computed at every step and the gate
      selects with ``torch.where``; same outputs and counts as the early exit (it is exact, see
      the module docstring), no data-dependent control flow, hence traceable.

    Every norm of the U-ConvBlock is a global layer norm over each sample alone, so computing a
    sub-batch gives the same values for its samples as the full batch.

    Args:
        in_chan (int): number of encoder bases (input and mask channels).
        n_src (int): number of estimated sources.
        bn_chan (int): bottleneck channels (the gate's input channels).
        n_sub_blocks (int): U-ConvBlocks in the block.
        n_iters (int): maximum number of refinement steps.
        upsampling_depth (int): resolutions in each U-ConvBlock.
        mask_act (str): mask non-linearity.
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
            n_blocks=1,
            n_sub_blocks=n_sub_blocks,
            n_iters=n_iters,
            upsampling_depth=upsampling_depth,
            mask_act=mask_act,
            head_per_block=False,
        )
        if not 0 <= min_steps <= n_iters:
            raise ValueError(f"min_steps must be in [0, n_iters={n_iters}], got {min_steps}.")
        if gumbel_tau <= 0:
            raise ValueError(f"gumbel_tau must be > 0, got {gumbel_tau}.")
        self.max_steps = n_iters
        self.min_steps = min_steps
        self.gumbel_tau = gumbel_tau
        self.exit_is_final = exit_is_final
        self.gate = GatingModule(bn_chan, gate_kernel_size)

    # ------------------------------------------------------------------ helpers
    def _forced_steps(self, force_steps, batch: int, device: torch.device) -> torch.Tensor | None:
        if force_steps is None:
            return None
        forced = torch.as_tensor(force_steps, dtype=torch.long, device=device)
        if forced.ndim == 0:
            forced = forced.expand(batch)
        if forced.shape != (batch,):
            raise ValueError(
                f"force_steps must be an int or one int per sample ({batch}), "
                f"got shape {tuple(forced.shape)}."
            )
        if bool(((forced < 0) | (forced > self.max_steps)).any()):
            raise ValueError(
                f"force_steps must lie in [0, {self.max_steps}], got {forced.tolist()}."
            )
        return forced

    def _gate_values(self, z: torch.Tensor, step: int, forced: torch.Tensor | None) -> torch.Tensor:
        # Gate values (batch,) before `step`. A forced run still evaluates the gate so that it
        # costs what a natural exit after the same number of steps costs (benchmarks).
        gate = None
        if step >= self.min_steps:
            gate = self.gate.decide(z, self.gumbel_tau)
        if forced is not None:
            return (forced > step).to(z.dtype)
        if gate is None:
            return z.new_ones(z.shape[0])
        return gate

    # ------------------------------------------------------------------ refinement
    def refine_gated(
        self,
        z: torch.Tensor,
        force_steps: int | torch.Tensor | None = None,
        early_exit: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gated refinement of the bottleneck latent ``z_0`` (Eq. 7).

        Args:
            z (torch.Tensor): ``z_0`` of shape ``(batch, bn_chan, frames)`` (see :meth:`embed`).
            force_steps (int or torch.Tensor, optional): take exactly this many steps (one int
                for all samples or one per sample, in ``[0, n_iters]``) instead of following the
                gate. The gate is still evaluated (its cost is part of the run).
            early_exit (bool): in eval mode, drop the samples that exited from the batch (True)
                or compute every sample at every step and select (False, traceable).

        Returns:
            tuple: the final latents ``(batch, bn_chan, frames)`` and, in training mode, the
            differentiable ``C_hat`` (float ``(batch,)``, integer-valued, Eq. 10), in eval mode
            the steps taken per sample (``torch.long`` ``(batch,)``).
        """
        forced = self._forced_steps(force_steps, z.shape[0], z.device)
        if self.training:
            return self._refine_training(z, forced)
        if early_exit:
            return self._refine_early_exit(z, forced)
        return self._refine_selected(z, forced)

    def _refine_training(self, z, forced):
        c_hat = z.new_zeros(z.shape[0])
        running = z.new_ones(z.shape[0])
        for step in range(self.max_steps):
            gate = self._gate_values(z, step, forced)
            if self.exit_is_final:
                gate = gate * running
                running = gate
            # Every sample is refined: the straight-through gradient of g_i is
            # <dL/dz_{i+1}, B(z_i) - z_i>, which needs B(z_i) even where g_i = 0.
            g = gate[:, None, None]
            z = g * self.refine(z, 0) + (1 - g) * z
            c_hat = c_hat + gate
        return z, c_hat

    def _refine_early_exit(self, z, forced):
        batch = z.shape[0]
        final = torch.empty_like(z)
        steps = torch.zeros(batch, dtype=torch.long, device=z.device)
        active = torch.arange(batch, device=z.device)
        for step in range(self.max_steps):
            sub_forced = None if forced is None else forced.index_select(0, active)
            go = self._gate_values(z, step, sub_forced) > 0.5
            if not bool(go.all()):
                leaving = (~go).nonzero().squeeze(1)
                final.index_copy_(0, active.index_select(0, leaving), z.index_select(0, leaving))
                staying = go.nonzero().squeeze(1)
                active = active.index_select(0, staying)
                z = z.index_select(0, staying)
                if active.numel() == 0:
                    return final, steps
            z = self.refine(z, 0)
            steps.index_add_(0, active, torch.ones_like(active))
        final.index_copy_(0, active, z)
        return final, steps

    def _refine_selected(self, z, forced):
        steps = torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
        running = torch.ones(z.shape[0], dtype=torch.bool, device=z.device)
        for step in range(self.max_steps):
            running = running & (self._gate_values(z, step, forced) > 0.5)
            z = torch.where(running[:, None, None], self.refine(z, 0), z)
            steps = steps + running.long()
        return z, steps

    # ------------------------------------------------------------------ forward
    def forward_with_steps(
        self, tf_rep: torch.Tensor, force_steps: int | torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks and steps from the encoder output (eval mode: with per-sample early exit).

        Args:
            tf_rep (torch.Tensor): encoder output ``(batch, in_chan, frames)``.
            force_steps (int or torch.Tensor, optional): see :meth:`refine_gated`.

        Returns:
            tuple: masks ``(batch, n_src, in_chan, frames)`` and the steps as returned by
            :meth:`refine_gated`.
        """
        z, steps = self.refine_gated(self.embed(tf_rep), force_steps)
        return self.masks(z, 0), steps

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
            n_iters=self.max_steps,
            gate_kernel_size=self.gate.kernel_size,
            min_steps=self.min_steps,
            gumbel_tau=self.gumbel_tau,
            exit_is_final=self.exit_is_final,
        )
        return config
