"""Normalisation layers of the TF-Locoformer family.

References:
    [1] K. Saijo, G. Wichern, F. G. Germain, Z. Pan and J. Le Roux, "TF-Locoformer: Transformer
    with Local Modeling by Convolution for Speech Separation and Enhancement", IWAENC 2024.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["NORM_TYPES", "RMSGroupNorm", "make_norm"]

NORM_TYPES = ("rmsgroupnorm", "layernorm")


class RMSGroupNorm(nn.Module):
    """Root-mean-square normalisation of channel groups, applied to every position separately.

    The ``dim`` channels (last axis) are split into ``num_groups`` groups of ``dim // num_groups``;
    each group is divided by ``rms + eps`` (eps added to the RMS, not inside the square root, as
    in the reference) and the result is scaled by a learnt gain ``gamma`` per channel.

    Args:
        num_groups (int): number of groups ``G``.
        dim (int): number of channels, a multiple of ``num_groups``.
        eps (float): added to the RMS of each group.

    References:
        [1] Saijo et al., IWAENC 2024 (see the module docstring).
    """

    def __init__(self, num_groups: int, dim: int, eps: float = 1e-5):
        super().__init__()
        if num_groups < 1 or dim % num_groups != 0:
            raise ValueError(
                f"dim={dim} must be a positive multiple of num_groups={num_groups} in RMSGroupNorm."
            )
        self.num_groups = num_groups
        self.dim = dim
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(dim))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised input before the gain ``gamma`` (same shape as ``x``)."""
        groups = x.unflatten(-1, (self.num_groups, self.dim // self.num_groups))
        rms = torch.linalg.vector_norm(groups, dim=-1, keepdim=True) * (
            (self.dim // self.num_groups) ** -0.5
        )
        return (groups / (rms + self.eps)).flatten(-2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` of shape ``(..., dim)``.

        Args:
            x (torch.Tensor): input, channels last.

        Returns:
            torch.Tensor: same shape.
        """
        return self.normalize(x) * self.gamma

    def extra_repr(self) -> str:
        return f"num_groups={self.num_groups}, dim={self.dim}, eps={self.eps}"


def make_norm(norm_type: str, dim: int, num_groups: int, eps: float) -> nn.Module:
    """The norm of a Locoformer sublayer: :class:`RMSGroupNorm` or ``nn.LayerNorm``.

    Args:
        norm_type (str): one of :data:`NORM_TYPES`.
        dim (int): channels.
        num_groups (int): groups of the RMSGroupNorm.
        eps (float): epsilon of the norm.

    Returns:
        nn.Module: the norm.
    """
    if norm_type == "rmsgroupnorm":
        return RMSGroupNorm(num_groups, dim, eps=eps)
    if norm_type == "layernorm":
        return nn.LayerNorm(dim, eps=eps)
    raise ValueError(f"Unknown norm_type {norm_type!r}; choose from {list(NORM_TYPES)}.")
