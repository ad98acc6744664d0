"""Layers shared by the separators (:mod:`asteroid_lir.masknn`) and the encoders/decoders
(:mod:`asteroid_lir.filterbanks`): norms, attention, feed-forward networks, chunked inference.

They know no block, separator or model (ESPnet's ``enh/layers`` split): the arrows run
``layers <- filterbanks <- masknn <- models``.
"""

from .attention import MultiHeadCrossAttention, RotaryEmbedding, RotaryMultiHeadSelfAttention
from .chunks import map_chunks
from .ffn import FFN_TYPES, ConvSwiGLUFFN, SwiGLU
from .norms import NORM_TYPES, RMSGroupNorm, make_norm

__all__ = [
    "FFN_TYPES",
    "NORM_TYPES",
    "ConvSwiGLUFFN",
    "MultiHeadCrossAttention",
    "RMSGroupNorm",
    "RotaryEmbedding",
    "RotaryMultiHeadSelfAttention",
    "SwiGLU",
    "make_norm",
    "map_chunks",
]
