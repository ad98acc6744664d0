"""Training objectives: negative SI-SDR with permutations over the speech sources only, and the
SNR loss of prompted unified separation (zero references, PIT among equal prompts)."""

from __future__ import annotations

import math

import torch
from asteroid.losses import PITLossWrapper, pairwise_neg_sisdr, singlesrc_neg_sisdr
from torch import nn

from .chunking import assign_in_groups, source_groups

__all__ = ["PromptSNRLoss", "SpeechPITLoss"]


class SpeechPITLoss(nn.Module):
    """Negative SI-SDR, permutation invariant over the speech sources only (paper Sec. 3.3).

    The first ``n_speech`` estimates are matched to the speech targets with PIT; any remaining
    estimates (e.g. the noise) are compared with the remaining targets in order, without
    permutation. With ``n_speech=1`` and no noise this is the plain negative SI-SDR of
    enhancement.

    Args:
        n_speech (int): number of speech sources (2 for noisy separation, 1 for enhancement).
        extra_weight (float): weight of each non-speech term relative to a speech term in the
            weighted mean ``(sum_speech + w * sum_extra) / (n_speech + w * n_extra)``. ``0`` is the
            paper's loss (negative SI-SDR of the speech alone; the extra outputs train freely),
            ``1`` the plain mean over all outputs.

    Returns (forward):
        torch.Tensor: scalar loss (mean over the batch).

    References:
        [1] J. Le Roux et al., "SDR - half-baked or well done?", ICASSP 2019.
        [2] D. Yu et al., "Permutation invariant training of deep models for speaker-independent
        multi-talker speech separation", ICASSP 2017.
    """

    def __init__(self, n_speech: int, extra_weight: float = 1.0):
        super().__init__()
        if n_speech < 1:
            raise ValueError(f"n_speech must be >= 1, got {n_speech}.")
        if not (math.isfinite(extra_weight) and extra_weight >= 0):
            raise ValueError(f"extra_weight must be a finite number >= 0, got {extra_weight}.")
        self.n_speech = n_speech
        self.extra_weight = float(extra_weight)
        self.pit = PITLossWrapper(pairwise_neg_sisdr, pit_from="pw_mtx")

    def forward(
        self, est: torch.Tensor, targets: torch.Tensor, return_est: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Args:
            est (torch.Tensor): estimates ``(batch, n_src, time)``.
            targets (torch.Tensor): targets ``(batch, n_src, time)``, speech first.
            return_est (bool): also return the estimates with the speech reordered.

        Returns:
            torch.Tensor: the loss, and the reordered estimates if ``return_est``.
        """
        if est.shape != targets.shape:
            raise ValueError(
                f"Estimates {tuple(est.shape)} and targets {tuple(targets.shape)} differ in shape."
            )
        if est.shape[1] < self.n_speech:
            raise ValueError(
                f"The model gives {est.shape[1]} sources but n_speech={self.n_speech}."
            )
        n = self.n_speech
        if n == 1:
            speech_loss = singlesrc_neg_sisdr(est[:, 0], targets[:, 0]).mean()
            reordered = est
        else:
            speech_loss, speech = self.pit(est[:, :n], targets[:, :n], return_est=True)
            reordered = torch.cat([speech, est[:, n:]], dim=1)
        n_extra = est.shape[1] - n
        if n_extra == 0 or self.extra_weight == 0:
            loss = speech_loss
        else:
            extra = torch.stack(
                [singlesrc_neg_sisdr(est[:, n + i], targets[:, n + i]) for i in range(n_extra)], 1
            ).mean()
            loss = (n * speech_loss + self.extra_weight * n_extra * extra) / (
                n + self.extra_weight * n_extra
            )
        return (loss, reordered) if return_est else loss


class PromptSNRLoss(nn.Module):
    """SNR loss with zero references and PIT inside groups of equal prompts (TUSS training).

    For an estimate ``y`` of a reference ``s`` (sums over time) the TUSS reference's loss is

    * ``s`` active: ``10 log10(||y - s||^2 + tau ||s||^2) - 10 log10 ||s||^2`` (the negative SNR,
      bounded at ``snr_max`` dB by ``tau = 10^(-snr_max / 10)``);
    * ``s`` all zeros (the prompt's source is absent): ``w * 10 log10(||y||^2 + tau ||x||^2)``
      with ``x`` the mixture: the output's energy, pushed towards silence, weighted by
      ``w = zero_ref_weight``.

    Outputs of the same prompt (two ``speech``, three ``sfx``) are interchangeable: the loss takes
    the best assignment of those outputs to their references (permutation-invariant training inside
    each group of equal prompts); outputs of different prompts are never exchanged. The
    unconditional baseline has no prompts: all its outputs form one group, and references are padded
    with zeros up to its number of outputs.

    Args:
        snr_max (float): the SNR (dB) beyond which an output is not pushed further.
        zero_ref_weight (float): weight of the terms of absent sources.
        eps (float): added inside the logarithms.

    References:
        K. Saijo et al., "Task-aware unified source separation", ICASSP 2025
        (merlresearch/unified-source-separation, ``loss_functions/snr.py``: the formula).
    """

    def __init__(self, snr_max: float = 30.0, zero_ref_weight: float = 0.1, eps: float = 1e-7):
        super().__init__()
        if not zero_ref_weight >= 0:
            raise ValueError(f"zero_ref_weight must be >= 0, got {zero_ref_weight}.")
        self.snr_max, self.zero_ref_weight, self.eps = float(snr_max), float(zero_ref_weight), eps

    def pairwise(self, est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """Loss of every (output i, reference j) pair, ``(batch, n_out, n_ref)``."""
        mix_power = ref.sum(1).pow(2).sum(-1)[:, None, None]  # the mixture of the references
        ref_power = ref.pow(2).sum(-1)[:, None, :]
        err = (est[:, :, None] - ref[:, None, :]).pow(2).sum(-1)
        active = ref_power > 0
        reg = torch.where(active, ref_power, mix_power.expand_as(ref_power))
        tau = 10 ** (-self.snr_max / 10)
        loss = 10 * torch.log10(err + tau * reg + self.eps)
        loss = loss - active * 10 * torch.log10(reg + self.eps)
        return loss * torch.where(active, 1.0, self.zero_ref_weight)

    def forward(
        self, est: torch.Tensor, ref: torch.Tensor, prompts: list[list[str]] | None = None
    ) -> torch.Tensor:
        """Mean loss over the batch and outputs.

        Args:
            est (torch.Tensor): ``(batch, n_out, time)`` estimates.
            ref (torch.Tensor): ``(batch, n_ref, time)`` references, ``n_ref <= n_out``
                (padded with zeros; equal to ``n_out`` with prompts).
            prompts: one list of prompt names per item, or None (one group of all outputs).

        Returns:
            torch.Tensor: scalar loss.
        """
        if est.ndim != 3 or ref.ndim != 3 or est.shape[0] != ref.shape[0]:
            raise ValueError(f"Expected (batch, n, time) tensors, got {est.shape}, {ref.shape}.")
        n_out, n_ref = est.shape[1], ref.shape[1]
        if n_ref > n_out or (prompts is not None and n_ref != n_out):
            raise ValueError(f"{n_ref} references for {n_out} outputs.")
        time = min(est.shape[-1], ref.shape[-1])
        est, ref = est[..., :time], ref[..., :time]
        if n_ref < n_out:
            ref = torch.cat([ref, ref.new_zeros(ref.shape[0], n_out - n_ref, time)], dim=1)
        pair = self.pairwise(est, ref)  # (B, out, ref)
        values = pair.detach().double().cpu().numpy()
        chosen = [
            assign_in_groups(
                values[b],
                source_groups(None if prompts is None else prompts[b], n_out),
                maximize=False,
            )
            for b in range(est.shape[0])
        ]
        idx = torch.tensor(chosen, device=pair.device)  # output matched to each reference
        # pair[b, idx[b, r], r] for every reference r:
        rows = torch.arange(est.shape[0], device=pair.device)[:, None]
        terms = pair[rows, idx, torch.arange(n_out, device=pair.device)[None]]
        return terms.mean()
