"""Training objectives: negative SI-SDR with permutations over the speech sources only."""

from __future__ import annotations

import math

import torch
from asteroid.losses import PITLossWrapper, pairwise_neg_sisdr, singlesrc_neg_sisdr
from torch import nn

__all__ = ["SpeechPITLoss"]


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
