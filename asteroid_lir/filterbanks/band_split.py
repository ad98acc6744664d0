"""Band-split encoder/decoder: one fixed linear layer per band (the baseline of SFC-CA).

Encoder: for each band k of width ``w_k`` bins, the ``2 * w_k`` real/imaginary values of a frame
are normalised (``GroupNorm(1, 2 w_k)`` over those values and the frames) and mapped to
``channels`` by a 1x1 convolution. Decoder: for each band, a per-band MLP
(``GroupNorm(1, C)`` -> 1x1 conv to ``hidden`` -> tanh -> 1x1 conv -> tanh -> 1x1 conv -> GLU)
outputs the real and imaginary parts of a complex mask over the band's bins for every source;
overlapping bands are added with the weights ``1 / (bands covering the bin)``; the mask is applied
to the mixture (or, with ``output="mapping"``, taken as the spectrum).

This is the band-split module of the TUSS reference (``nets/tuss.py``, ``BandSplitModule``), with
any band configuration of :mod:`asteroid_lir.filterbanks.bands`. The per-band modules keep the
reference's layer order and channel layout, so its weights load by renaming the prefixes:

====================================================  =======================================
TUSS reference (``separator.`` / ``model.`` prefixed)  here
====================================================  =======================================
``band_split_module.band_split_module.{k}.{0,1}.*``   ``BandSplitEncoder.band_modules.{k}.{0,1}.*``
``band_split_module.bandwise_decoding_module.{k}.*``  ``BandSplitDecoder.band_modules.{k}.*``
====================================================  =======================================

(:func:`asteroid_lir.convert.merl.tuss_band_split_key_map` gives the prefixes.)

References:
    K. Saijo et al., "Task-aware unified source separation", ICASSP 2025.
    W.-T. Lu et al., "Music source separation with band-split RoPE transformer", ICASSP 2024.
"""

from __future__ import annotations

import torch
from torch import nn

from .common import BandModule, own_arguments

__all__ = ["BandSplitDecoder", "BandSplitEncoder"]


class BandSplitEncoder(BandModule):
    """Per-band normalisation + 1x1 convolution from the STFT to ``channels`` per band.

    Args:
        channels: output channels per band (the separator's embedding size).
        eps: GroupNorm epsilon (1e-5, as the reference).
        **bands: ``sample_rate``, ``n_fft``, ``band_config``, ``n_bands``: the band layout
            (:class:`~asteroid_lir.filterbanks.common.BandModule`).

    Shapes:
        input ``(batch, 2, frames, n_fft // 2 + 1)`` (real/imaginary stacked) ->
        ``(batch, channels, frames, n_bands)``.

    References:
        K. Saijo et al., ICASSP 2025 (band-split module of TUSS).
    """

    def __init__(self, channels: int, eps: float = 1e-5, **bands) -> None:
        super().__init__(own_arguments(locals()), **bands)
        self.band_modules = nn.ModuleList(
            nn.Sequential(nn.GroupNorm(1, 2 * w, eps=eps), nn.Conv1d(2 * w, channels, 1))
            for w in self.bands.widths
        )

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """Encode a stacked STFT into band features.

        Args:
            spec: ``(batch, 2, frames, freqs)`` real and imaginary parts.

        Returns:
            torch.Tensor: ``(batch, channels, frames, n_bands)``.
        """
        self.check_spectrum(spec)
        batch, _, frames, _ = spec.shape
        # (batch, freqs, 2, frames): a band's values are (bin, re/im) interleaved, as the reference.
        x = spec.permute(0, 3, 1, 2).contiguous()
        out = [
            module(x[:, s:e].reshape(batch, 2 * (e - s), frames))
            for module, (s, e) in zip(self.band_modules, self.bands.bands)
        ]
        return torch.stack(out, dim=-1)

    def forward_with_context(self, spec: torch.Tensor) -> tuple[torch.Tensor, None]:
        """Same as :meth:`forward`, plus the decoder context (None: band split needs none)."""
        return self.forward(spec), None


class BandSplitDecoder(BandModule):
    """Per-band MLP with a GLU output: complex masks (or spectra) for ``n_src`` sources.

    Args:
        channels: input channels per band.
        n_src: number of estimated sources.
        hidden: hidden size of the per-band MLP (default ``4 * channels``, as the reference).
        output: ``"mask"`` (the reference: a complex mask multiplied with the mixture) or
            ``"mapping"`` (the MLP output is the estimated spectrum).
        eps: GroupNorm epsilon.
        **bands: the band layout, as :class:`BandSplitEncoder`.

    Shapes:
        ``(batch, channels, frames, n_bands)`` and the mixture ``(batch, 2, frames, freqs)`` ->
        ``(batch, n_src, 2, frames, freqs)``.

    References:
        K. Saijo et al., ICASSP 2025 (band-split module of TUSS); K. N. Watcharasupat et al.,
        IEEE OJSP 2024 (overlap-add weights of overlapping bands).
    """

    def __init__(
        self,
        channels: int,
        n_src: int,
        hidden: int | None = None,
        output: str = "mask",
        eps: float = 1e-5,
        **bands,
    ) -> None:
        super().__init__(own_arguments(locals()), **bands)
        self.n_src = n_src
        self.hidden = self._config["hidden"] = 4 * channels if hidden is None else hidden
        self.band_modules = nn.ModuleList(
            nn.Sequential(
                nn.GroupNorm(1, channels, eps=eps),
                nn.Conv1d(channels, self.hidden, 1),
                nn.Tanh(),
                nn.Conv1d(self.hidden, self.hidden, 1),
                nn.Tanh(),
                nn.Conv1d(self.hidden, 2 * 2 * n_src * w, 1),
                nn.GLU(dim=1),
            )
            for w in self.bands.widths
        )
        bins, band_ids = self.bands.flat_indices()
        weights = self.bands.overlap_weights()[band_ids, bins]
        # Bands laid out 0..F-1 in order, without overlap: concatenation is the overlap-add.
        self._concat = bool(
            bins.numel() == self.n_freqs and (bins == torch.arange(bins.numel())).all()
        )
        self.register_buffer("bins", bins, persistent=False)
        self.register_buffer("bin_weights", weights, persistent=False)

    def forward(
        self, feats: torch.Tensor, mixture: torch.Tensor, context: object = None
    ) -> torch.Tensor:
        """Decode band features into estimated spectra.

        Args:
            feats: ``(batch, channels, frames, n_bands)``.
            mixture: the mixture's stacked STFT ``(batch, 2, frames, freqs)``.
            context: ignored (accepted so that every decoder of the package has one signature).

        Returns:
            torch.Tensor: ``(batch, n_src, 2, frames, freqs)``.
        """
        self.check_band_features(feats)
        self.check_spectrum(mixture, "mixture")
        batch, _, frames, _ = feats.shape
        per_band = feats.permute(3, 0, 1, 2).contiguous()  # (n_bands, batch, channels, frames)
        out = torch.cat(
            [
                module(per_band[k]).view(batch, 2, self.n_src, w, frames)
                for k, (module, w) in enumerate(zip(self.band_modules, self.bands.widths))
            ],
            dim=3,
        )  # (batch, 2, n_src, sum of widths, frames)
        if not self._concat:
            out = out * self.bin_weights[:, None]
            out = out.new_zeros(batch, 2, self.n_src, self.n_freqs, frames).index_add_(
                3, self.bins, out
            )
        est = out.permute(0, 2, 1, 4, 3)  # (batch, n_src, 2, frames, freqs)
        return self.decoder_output(est, mixture)
