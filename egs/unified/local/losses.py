"""Training loss of the unified recipe: SNR with zero references, PIT among equal prompts.

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

References:
    K. Saijo et al., "Task-aware unified source separation", ICASSP 2025
    (merlresearch/unified-source-separation, ``loss_functions/snr.py``: the formula).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

__all__ = ["PromptSNRLoss", "prompt_groups"]


def prompt_groups(prompts: list[str] | None, n: int) -> list[list[int]]:
    """Indices of interchangeable outputs: one group per prompt name (all: no prompts)."""
    if prompts is None:
        return [list(range(n))]
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(prompts):
        groups.setdefault(name, []).append(i)
    return list(groups.values())


class PromptSNRLoss(nn.Module):
    """SNR loss with zero references and PIT inside groups of equal prompts.

    Args:
        snr_max (float): the SNR (dB) beyond which an output is not pushed further.
        zero_ref_weight (float): weight of the terms of absent sources.
        eps (float): added inside the logarithms.
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
        chosen = []
        with torch.no_grad():
            values = pair.detach().cpu()
        for b in range(est.shape[0]):
            perm = list(range(n_out))
            for group in prompt_groups(None if prompts is None else prompts[b], n_out):
                if len(group) < 2:
                    continue
                best = min(
                    itertools.permutations(group),
                    key=lambda p: sum(values[b, o, r].item() for o, r in zip(p, group)),
                )
                for out_idx, ref_idx in zip(best, group):
                    perm[ref_idx] = out_idx
            chosen.append(perm)
        idx = torch.tensor(chosen, device=pair.device)  # output matched to each reference
        # pair[b, idx[b, r], r] for every reference r:
        rows = torch.arange(est.shape[0], device=pair.device)[:, None]
        terms = pair[rows, idx, torch.arange(n_out, device=pair.device)[None]]
        return terms.mean()
