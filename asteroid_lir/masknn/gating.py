"""Adaptive early exit: a gate that decides, before each refinement step, whether to take it.

A gated refinement core (any block type) refines its latent with shared blocks (paper Sec. 2.3,
Fig. 4):

    z_{i+1} = g_i * B(z_i) + (1 - g_i) * z_i,    g_i in {0, 1}                      (Eq. 7)

``g_i`` is the "process" entry of a hard Gumbel-softmax over the two logits of a small gating
network ``f`` (Eq. 8-9) and ``C_hat = sum_i g_i`` counts the steps taken (Eq. 10).

Step semantics of every gated path (:class:`GatedStepsMixin`, the step loop of
:class:`~asteroid_lir.masknn.refinement.RefinementCore`):

- Steps are numbered ``0 .. n_steps - 1``. The first ``min_steps`` are always taken (no gate is
  evaluated before them); a gate is evaluated before every later step. ``min_steps=1`` (default)
  always applies the block once: a pre-trained head only ever saw refined latents.
  ``min_steps=0`` gates every application, as drawn in the paper's Fig. 4.
- An exit is final. At inference this is what Eq. 7 gives anyway (the gate is shared and
  deterministic and ``g_i = 0`` leaves the latent unchanged, so every later gate says 0 again),
  which is why removing a finished sample from the batch is exact. In training, with Gumbel
  noise, ``exit_is_final=True`` multiplies the decisions (``g_i = h_i * g_{i-1}``) so that
  training follows only paths inference can take; ``False`` applies Eq. 7 with independent draws.
- ``C_hat`` (Eq. 10) equals the number of steps taken, ``min_steps`` included.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import nn

__all__ = ["GatedStepsMixin", "GatingModule", "exit_margin_for_budget", "exit_steps"]

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


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    # (batch,) -> (batch, 1, ...) broadcastable against a latent of any rank.
    return values.view(-1, *([1] * (like.ndim - 1)))


class GatedStepsMixin:
    """The gated step loop of :class:`~asteroid_lir.masknn.refinement.RefinementCore`.

    Needs the core's ``gate``, ``gated``, ``step_schedule()``, ``refine(z, block_idx)``,
    ``n_steps``, ``min_steps``, ``gumbel_tau`` and ``exit_is_final`` (step semantics in the
    module docstring).
    """

    def run_gated(
        self,
        z: torch.Tensor,
        force_steps: int | torch.Tensor | None = None,
        early_exit: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gated refinement of ``z_0`` (Eq. 7); step semantics in the module docstring.

        Three ways to run the steps:

        - training mode: every sample goes through every step and Eq. 7 mixes ``B(z_i)`` and
          ``z_i`` with hard straight-through Gumbel gates; returns the differentiable ``C_hat``.
        - eval mode, ``early_exit=True``: a sample whose gate says 0 leaves the batch, so later
          steps cost less; returns the integer steps taken.
        - eval mode, ``early_exit=False``: every sample is computed at every step and the gate
          selects with ``torch.where``; same outputs and counts, no data-dependent control flow
          (traceable). Used automatically while tracing.

        Args:
            z (torch.Tensor): ``z_0`` of shape ``(batch, ...)``.
            force_steps (int or torch.Tensor, optional): take exactly this many steps (one int or
                one per sample, in ``[0, n_steps]``) instead of following the gate. The gate is
                still evaluated, so that a forced run costs what a natural exit costs.
            early_exit (bool): in eval mode, drop finished samples from the batch.

        Returns:
            tuple: the final latents and, in training mode, ``C_hat`` (float ``(batch,)``), in
            eval mode the steps taken per sample (``torch.long`` ``(batch,)``).
        """
        if not self.gated:
            raise RuntimeError("This refinement core has no gate.")
        forced = self._forced_steps(force_steps, z.shape[0], z.device)
        if self.training:
            return self._gated_training(z, forced)
        if early_exit and not torch.jit.is_tracing():
            return self._gated_early_exit(z, forced)
        return self._gated_selected(z, forced)

    def margin_logits(self, z: torch.Tensor) -> torch.Tensor:
        """The gate's ``process - exit`` logits before each decision, every step taken: what
        decides the steps at any exit margin (:func:`~asteroid_lir.masknn.gating.exit_steps`).

        Args:
            z (torch.Tensor): ``z_0`` of shape ``(batch, ...)``.

        Returns:
            torch.Tensor: ``(batch, n_steps - min_steps)``, column ``k`` before step
            ``min_steps + k + 1``.
        """
        if not self.gated:
            raise RuntimeError("This refinement core has no gate.")
        out = []
        for step, block_idx in enumerate(self.step_schedule()):
            if step >= self.min_steps:
                out.append(self.gate.margin_logits(z))
            z = self.refine(z, block_idx)
        return torch.stack(out, dim=1)

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
        if bool(((forced < 0) | (forced > self.n_steps)).any()):
            raise ValueError(f"force_steps must lie in [0, {self.n_steps}], got {forced.tolist()}.")
        return forced

    def _gate_values(self, z: torch.Tensor, step: int, forced: torch.Tensor | None) -> torch.Tensor:
        # Gate values (batch,) before `step`.
        gate = self.gate.decide(z, self.gumbel_tau) if step >= self.min_steps else None
        if forced is not None:
            return (forced > step).to(z.dtype)
        return z.new_ones(z.shape[0]) if gate is None else gate

    def _gated_training(self, z, forced):
        c_hat = z.new_zeros(z.shape[0])
        running = z.new_ones(z.shape[0])
        for step, block_idx in enumerate(self.step_schedule()):
            gate = self._gate_values(z, step, forced)
            if self.exit_is_final:
                gate = gate * running
                running = gate
            # Every sample is refined: the straight-through gradient of g_i is
            # <dL/dz_{i+1}, B(z_i) - z_i>, which needs B(z_i) even where g_i = 0.
            g = _per_sample(gate, z)
            z = g * self.refine(z, block_idx) + (1 - g) * z
            c_hat = c_hat + gate
        return z, c_hat

    def _gated_early_exit(self, z, forced):
        final = torch.empty_like(z)
        steps = torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
        active = torch.arange(z.shape[0], device=z.device)
        for step, block_idx in enumerate(self.step_schedule()):
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
            z = self.refine(z, block_idx)
            steps.index_add_(0, active, torch.ones_like(active))
        final.index_copy_(0, active, z)
        return final, steps

    def _gated_selected(self, z, forced):
        steps = torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
        running = torch.ones(z.shape[0], dtype=torch.bool, device=z.device)
        for step, block_idx in enumerate(self.step_schedule()):
            running = running & (self._gate_values(z, step, forced) > 0.5)
            z = torch.where(_per_sample(running, z), self.refine(z, block_idx), z)
            steps = steps + running.long()
        return z, steps
