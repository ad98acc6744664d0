"""Mask networks, separators and their layers (Asteroid ``masknn`` conventions).

Layers (from :mod:`asteroid_lir.layers`): norms, attention, FFNs; blocks: :mod:`.uconv`,
:mod:`.locoformer`; the refinement core and its gate: :mod:`.refinement`, :mod:`.gating`;
separators: :mod:`.iterative_sudormrf`, :mod:`.tflocoformer`, :mod:`.tuss`.
"""

from ..layers import (
    ConvSwiGLUFFN,
    MultiHeadCrossAttention,
    RMSGroupNorm,
    RotaryEmbedding,
    RotaryMultiHeadSelfAttention,
    SwiGLU,
)
from .gating import GatingModule
from .iterative_sudormrf import IterativeSuDORMRF
from .locoformer import LocoformerBlock, TFLocoformerBlock
from .refinement import RefinementCore
from .tflocoformer import TFLocoformer
from .uconv import FastGlobLN, FastUConvBlock

__all__ = [
    "ConvSwiGLUFFN",
    "FastGlobLN",
    "FastUConvBlock",
    "GatingModule",
    "IterativeSuDORMRF",
    "LocoformerBlock",
    "MultiHeadCrossAttention",
    "RMSGroupNorm",
    "RefinementCore",
    "RotaryEmbedding",
    "RotaryMultiHeadSelfAttention",
    "SwiGLU",
    "TFLocoformer",
    "TFLocoformerBlock",
]
