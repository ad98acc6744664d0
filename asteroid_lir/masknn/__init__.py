"""Mask networks and their building blocks (Asteroid ``masknn`` conventions)."""

from .gating import GatedIterativeSuDORMRF, GatingModule
from .iterative_sudormrf import IterativeSuDORMRF
from .tflocoformer import (
    ConvSwiGLUFFN,
    LocoformerBlock,
    RMSGroupNorm,
    RotaryEmbedding,
    RotaryMultiHeadSelfAttention,
    TFLocoformer,
    TFLocoformerBlock,
)
from .uconv import FastGlobLN, FastUConvBlock

__all__ = [
    "ConvSwiGLUFFN",
    "FastGlobLN",
    "FastUConvBlock",
    "GatedIterativeSuDORMRF",
    "GatingModule",
    "IterativeSuDORMRF",
    "LocoformerBlock",
    "RMSGroupNorm",
    "RotaryEmbedding",
    "RotaryMultiHeadSelfAttention",
    "TFLocoformer",
    "TFLocoformerBlock",
]
