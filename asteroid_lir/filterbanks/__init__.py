"""Encoders/decoders that know no model: band configurations, band-split and SFC-CA.

Every encoder takes the stacked real/imaginary STFT ``(batch, 2, frames, n_fft // 2 + 1)`` and
returns band features ``(batch, channels, frames, n_bands)``; every decoder takes band features
and the mixture's stacked STFT and returns estimated spectra ``(batch, n_src, 2, frames, freqs)``,
so that a separator can swap the two families. A separator that wants to support SFC-CA's
adaptive decoder queries calls ``feats, context = encoder.forward_with_context(spec)`` and
``decoder(feats, spec, context)`` (band-split returns and ignores ``None``).
"""

from .band_split import BandSplitDecoder, BandSplitEncoder, tuss_band_split_key_map
from .bands import (
    BAND_CONFIGS,
    BandConfig,
    bs_roformer_bands,
    get_band_config,
    musical_bands,
)
from .sfc import (
    SFCDecoder,
    SFCEncoder,
    convert_sfc_reference_state_dict,
    sfc_reference_key_map,
)

__all__ = [
    "BAND_CONFIGS",
    "BandConfig",
    "BandSplitDecoder",
    "BandSplitEncoder",
    "SFCDecoder",
    "SFCEncoder",
    "bs_roformer_bands",
    "convert_sfc_reference_state_dict",
    "get_band_config",
    "musical_bands",
    "sfc_reference_key_map",
    "tuss_band_split_key_map",
]
