"""Encoders/decoders that know no model: STFT, band configurations, conv, band-split and SFC-CA.

Every encoder takes the stacked real/imaginary STFT ``(batch, 2, frames, n_fft // 2 + 1)``
(:class:`StackedSTFT`) and returns features ``(batch, channels, frames, n_bands)`` (one "band" per
bin for the convolutional one); every decoder takes those features and the mixture's stacked STFT
and returns estimated spectra ``(batch, n_src, 2, frames, freqs)``, so that a separator can swap
the families. :class:`FrontEnd` builds any pair with one keyword convention. A separator that
supports SFC-CA's adaptive decoder queries calls ``feats, context =
encoder.forward_with_context(spec)`` and ``decoder(feats, spec, context)`` (the others return
and ignore ``None``).
"""

from .band_split import BandSplitDecoder, BandSplitEncoder
from .bands import (
    BAND_CONFIGS,
    BandConfig,
    bs_roformer_bands,
    get_band_config,
    musical_bands,
)
from .conv import ConvDecoder, ConvEncoder
from .factory import FRONT_ENDS, FrontEnd
from .padded import PaddedEncoder
from .sfc import SFCDecoder, SFCEncoder
from .stft import StackedSTFT

__all__ = [
    "BAND_CONFIGS",
    "FRONT_ENDS",
    "BandConfig",
    "BandSplitDecoder",
    "BandSplitEncoder",
    "ConvDecoder",
    "ConvEncoder",
    "FrontEnd",
    "PaddedEncoder",
    "SFCDecoder",
    "SFCEncoder",
    "StackedSTFT",
    "bs_roformer_bands",
    "get_band_config",
    "musical_bands",
]
