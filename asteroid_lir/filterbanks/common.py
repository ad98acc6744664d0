"""What every band-wise encoder/decoder shares: band layout, arguments, input checks, the mask.

The encoders of this package take the stacked real/imaginary STFT ``(batch, 2, frames, freqs)``
and return ``(batch, channels, frames, n_bands)``; the decoders take those band features and the
mixture's stacked STFT and return ``(batch, n_src, 2, frames, freqs)`` estimated spectra.
"""

from __future__ import annotations

import torch
from torch import nn

from .bands import BandConfig, BandSpec, get_band_config

__all__ = ["DECODER_OUTPUTS", "BandModule", "own_arguments", "plain_bands"]

#: What a decoder's last layer estimates: a complex mask applied to the mixture, or the spectrum.
DECODER_OUTPUTS = ("mask", "mapping")


def plain_bands(bands) -> str | list:
    """A band configuration in plain types (a name, or a list of edges or pairs)."""
    if isinstance(bands, str):
        return bands
    if isinstance(bands, BandConfig):
        return bands.to_list()
    return [list(b) if not isinstance(b, int) else int(b) for b in bands]


_NOT_ARGUMENTS = ("self", "__class__", "bands", "options", "config")


def own_arguments(frame_locals: dict) -> dict:
    """A constructor's arguments from its ``locals()`` (without ``self`` and pass-through dicts)."""
    return {k: v for k, v in frame_locals.items() if k not in _NOT_ARGUMENTS}


class BandModule(nn.Module):
    """Base of the band encoders/decoders: the band layout and the constructor arguments.

    A subclass calls ``super().__init__(own_arguments(locals()), **bands)`` first in its
    ``__init__``: its arguments are recorded for :meth:`get_config` (with the band layout in
    plain types and ``n_bands`` resolved; a subclass records other resolved defaults in
    ``self._config``), ``channels`` and ``n_src`` are checked, and ``channels``,
    ``sample_rate``, ``n_fft``, ``bands``, ``n_bands`` and ``n_freqs`` are set.

    Args:
        config (dict): the subclass's own arguments (``channels``, ``n_src``, ...).
        sample_rate (float): sampling rate in Hz (for the band configuration).
        n_fft (int): FFT size; the spectra have ``n_fft // 2 + 1`` bins.
        band_config: ``"musical"``, ``"bs_roformer"`` or a user list (see
            :func:`~asteroid_lir.filterbanks.bands.get_band_config`).
        n_bands (int, optional): number of bands for ``"musical"`` (default 64).
    """

    def __init__(
        self,
        config: dict,
        sample_rate: float,
        n_fft: int,
        band_config: BandSpec | BandConfig = "musical",
        n_bands: int | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        sizes = {k: config[k] for k in ("channels", "n_src") if k in config}
        if min(sizes.values()) < 1:
            raise ValueError(f"{name}: {' and '.join(sizes)} must be >= 1, got {sizes}.")
        self.channels, self.sample_rate, self.n_fft = config["channels"], sample_rate, n_fft
        self.bands = get_band_config(band_config, sample_rate, n_fft, n_bands)
        self.n_bands, self.n_freqs = self.bands.n_bands, self.bands.n_freqs
        self._config = {
            **config,
            "sample_rate": sample_rate,
            "n_fft": n_fft,
            "band_config": plain_bands(band_config),
            "n_bands": self.n_bands,
        }
        if "output" in config:  # a decoder: what its last layer estimates
            if config["output"] not in DECODER_OUTPUTS:
                raise ValueError(
                    f"{name}: output must be one of {list(DECODER_OUTPUTS)}, got "
                    f"{config['output']!r}."
                )
            self.output = config["output"]

    def get_config(self) -> dict:
        """Constructor arguments (plain types)."""
        return dict(self._config)

    def check_spectrum(self, spec: torch.Tensor, name: str = "input") -> None:
        """Raise a clear error unless ``spec`` is a stacked real/imaginary STFT with this
        module's ``n_freqs`` bins.

        Args:
            spec: the tensor to check, expected ``(batch, 2, frames, n_freqs)``, real-valued.
            name: how the message calls the tensor.

        Raises:
            TypeError: not a real floating-point tensor.
            ValueError: wrong rank, channel count, number of bins, or no frame.
        """
        owner, n_freqs = type(self).__name__, self.n_freqs
        if not isinstance(spec, torch.Tensor):
            raise TypeError(f"{owner} expects a torch.Tensor as {name}, got {type(spec).__name__}.")
        if spec.is_complex() or not spec.is_floating_point():
            raise TypeError(
                f"{owner} expects the {name} as real and imaginary parts stacked on dim 1 "
                f"(a real floating-point tensor), got dtype {spec.dtype}; use "
                "torch.stack((x.real, x.imag), dim=1) on a complex STFT of shape (batch, frames, "
                "freqs)."
            )
        if spec.ndim != 4 or spec.shape[1] != 2 or spec.shape[3] != n_freqs:
            raise ValueError(
                f"{owner} expects the {name} shaped (batch, 2, frames, {n_freqs}) (real/imaginary "
                f"stacked on dim 1, {n_freqs} frequency bins), got {tuple(spec.shape)}."
            )
        if spec.shape[0] == 0 or spec.shape[2] == 0:
            raise ValueError(f"{owner} got an empty {name} of shape {tuple(spec.shape)}.")

    def check_band_features(self, feats: torch.Tensor) -> None:
        """Raise a clear error unless ``feats`` is shaped ``(batch, channels, frames, n_bands)``
        with this module's channels and bands.

        Args:
            feats: the band features given to a decoder.

        Raises:
            ValueError: wrong rank, channel count or band count, or no frame.
        """
        owner, channels, n_bands = type(self).__name__, self.channels, self.n_bands
        if not isinstance(feats, torch.Tensor):
            raise TypeError(f"{owner} expects a torch.Tensor of band features, got {type(feats)}.")
        if feats.ndim != 4 or feats.shape[1] != channels or feats.shape[3] != n_bands:
            raise ValueError(
                f"{owner} expects band features shaped (batch, {channels}, frames, {n_bands}) "
                f"({channels} channels, {n_bands} bands), got {tuple(feats.shape)}."
            )
        if feats.shape[0] == 0 or feats.shape[2] == 0:
            raise ValueError(f"{owner} got empty band features of shape {tuple(feats.shape)}.")

    def decoder_output(self, est: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
        """Turn a decoder's last layer into estimated spectra (this decoder's ``output`` kind).

        Args:
            est: ``(batch, n_src, 2, frames, freqs)``: real and imaginary parts of a complex mask
                (``output="mask"``) or of the estimated spectra (``output="mapping"``).
            mixture: the mixture's stacked STFT ``(batch, 2, frames, freqs)``.

        Returns:
            torch.Tensor: estimated spectra ``(batch, n_src, 2, frames, freqs)``; with a mask,
            the complex product ``mask * mixture`` per source.
        """
        if est.shape[0] != mixture.shape[0] or est.shape[-2:] != mixture.shape[-2:]:
            raise ValueError(
                f"{type(self).__name__}: the mixture {tuple(mixture.shape)} does not match the "
                f"decoded (batch, frames, freqs) {tuple(est.shape[:1])} + {tuple(est.shape[-2:])}."
            )
        if self.output == "mapping":
            return est
        m_re, m_im = est[:, :, 0], est[:, :, 1]
        x_re, x_im = mixture[:, None, 0], mixture[:, None, 1]
        return torch.stack((m_re * x_re - m_im * x_im, m_re * x_im + m_im * x_re), dim=2)
