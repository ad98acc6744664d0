"""SFC-CA: input-adaptive spectral feature compression with cross-attention (encoder/decoder).

The encoder compresses the F frequency bins of each frame into K band features: a 3x3 Conv2d
lifts the (real, imaginary) spectrogram to ``d_inner`` channels (then RMSNorm over channels); per
frame, K queries attend over the F bins in one cross-attention block; a 3x3 Conv2d over
(frames, bands) projects to the separator's ``channels`` (then RMSNorm). The decoder does the
reverse: a 3x3 ConvTranspose2d maps the separator's output to ``d_inner``; per frame, F queries
attend over the K band features; a 3x3 ConvTranspose2d gives ``2 * n_src`` maps over
(frames, bins).

Cross-attention block (one per encoder/decoder, as the authors' code)::

    q' = RMSNorm(q), kv' = RMSNorm(kv)
    a  = W_o MultiHead(softmax(q' W_q (kv' W_k)^T / sqrt(d_head) + slope_h * B) kv' W_v)
    out = a + SwiGLU(RMSNorm(a))          # no residual around the attention, one around the MLP

with ``B`` the learnable positional bias (K x F in the encoder, F x K in the decoder), initialised
by the band formula of :meth:`~asteroid_lir.filterbanks.bands.BandConfig.position_bias`
(the decoder from its transpose), one copy per head, and per-head slopes (default 1, fixed).
The attention runs in :func:`torch.nn.functional.scaled_dot_product_attention` with
``slope_h * B`` as the additive float mask (:class:`~asteroid_lir.layers.attention.
MultiHeadCrossAttention`; the MLP is :class:`~asteroid_lir.layers.ffn.SwiGLU`).

Queries: ``"learnable"`` (a K x d_inner parameter, ``randn`` init; the decoder's is F x d_inner)
or ``"adaptive"``: the encoder's queries are weighted means of the lifted input over each band
(learnable per-bin weights, initialised uniform within each band), and the decoder's queries are
``SwiGLU(RMSNorm(context))`` of the encoder's lifted input (the "context" returned by
:meth:`SFCEncoder.forward_with_context`), exactly as the authors' code passes it from encoder to
decoder.

Decoder output: the authors' decoder outputs ``2 * n_src`` real maps that their BS-Locoformer
wrapper turns into a complex *mask* and multiplies with the mixture (``masking=True``, its
default, used by every SFC-CA recipe); ``output="mask"`` (default) does that inside the decoder,
``output="mapping"`` returns the maps as the spectra directly (the wrapper's ``masking=False``).

Deviations from the authors' code (all but the interface without effect on the function) and
the mapping of their state-dict names to ours: :mod:`asteroid_lir.convert.sfc`.

References:
    K. Saijo and Y. Bando, "Input-adaptive spectral feature compression by sequence modeling for
    source separation", IEEE/ACM TASLP 2026 (arXiv 2602.08671).
    A. Jaegle et al., "Perceiver IO", ICLR 2022. O. Press et al., "Train short, test long"
    (ALiBi), ICLR 2022.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..layers.ffn import SwiGLU
from .common import BandModule, own_arguments
from .sfc_block import BandCrossAttention, PositionalBias

__all__ = [
    "QUERY_TYPES",
    "BandCrossAttention",
    "PositionalBias",
    "SFCDecoder",
    "SFCEncoder",
]

#: Kinds of queries of :class:`SFCEncoder` / :class:`SFCDecoder`.
QUERY_TYPES = ("learnable", "adaptive")

_KERNEL, _PADDING = (3, 3), (1, 1)


class _SFCModule(BandModule):
    """What the SFC-CA encoder and decoder share: their options and the cross-attention block.

    Args:
        config (dict): the subclass's own arguments.
        d_inner (int, optional): feature size inside the encoder/decoder (``D'``; default
            ``channels``; the authors' recipes use 64 with D = 96 and 96 with D = 128).
        n_heads (int): attention heads (4 in the recipes).
        query_type (str): ``"learnable"`` or ``"adaptive"`` (see the module docstring).
        slopes (list of float, optional): per-head bias slopes (default 1 for every head).
        learnable_slopes (bool): train the slopes (False in the recipes).
        learnable_bias (bool): train the positional bias (True in the recipes).
        position_bias (bool): use the positional bias at all (False: the ablation without it).
        mask_outside_bands (bool): forbid attention outside each query's band (``-inf``; False
            in the recipes).
        mlp_ratio (int): SwiGLU hidden size / ``d_inner`` (2 in the authors' code).
        eps (float): RMSNorm epsilon (1e-6, as the authors' code).
        **bands: ``sample_rate``, ``n_fft``, ``band_config`` (``"musical"`` in the authors'
            recipes), ``n_bands``: the band layout (:class:`~asteroid_lir.filterbanks.common.
            BandModule`).
    """

    def __init__(
        self,
        config: dict,
        d_inner: int | None = None,
        n_heads: int = 4,
        query_type: str = "learnable",
        slopes: Sequence[float] | None = None,
        learnable_slopes: bool = False,
        learnable_bias: bool = True,
        position_bias: bool = True,
        mask_outside_bands: bool = False,
        mlp_ratio: int = 2,
        eps: float = 1e-6,
        **bands,
    ) -> None:
        super().__init__({**config, **own_arguments(locals())}, **bands)
        name = type(self).__name__
        d_inner = self.channels if d_inner is None else d_inner
        if mask_outside_bands and not position_bias:
            raise ValueError(f"{name}: mask_outside_bands=True needs position_bias=True.")
        if query_type not in QUERY_TYPES:
            raise ValueError(
                f"{name}: query_type must be one of {list(QUERY_TYPES)}, got {query_type!r}."
            )
        if d_inner < 1 or n_heads < 1 or d_inner % n_heads:
            raise ValueError(
                f"{name}: d_inner={d_inner} must be a positive multiple of n_heads={n_heads}."
            )
        if mlp_ratio < 1:
            raise ValueError(f"{name}: mlp_ratio must be >= 1, got {mlp_ratio}.")
        self.d_inner = self._config["d_inner"] = d_inner
        self.n_heads, self.query_type, self.eps = n_heads, query_type, eps
        self.slopes = None if slopes is None else [float(v) for v in slopes]
        self._config["slopes"] = self.slopes

    def _make_block(self, transpose: bool) -> BandCrossAttention:
        # The decoder's bias starts from the transpose of the encoder's (F x K instead of K x F).
        a, bias = self._config, None
        if a["position_bias"]:
            init, allowed = self.bands.position_bias(), self.bands.membership()
            if transpose:
                init, allowed = init.T, allowed.T
            bias = PositionalBias(
                init,
                self.n_heads,
                self.slopes,
                learnable=a["learnable_bias"],
                learnable_slopes=a["learnable_slopes"],
                allowed=allowed if a["mask_outside_bands"] else None,
            )
        hidden = a["mlp_ratio"] * self.d_inner
        return BandCrossAttention(self.d_inner, self.n_heads, bias, hidden, eps=self.eps)


class SFCEncoder(_SFCModule):
    """SFC-CA encoder: K queries per frame cross-attend over the F bins.

    Args:
        channels: output channels per band (the separator's embedding size, ``D``).
        **options: ``d_inner``, ``n_heads``, ``query_type`` (``"learnable"``, or
            ``"adaptive"``: weighted band means of the input), ``slopes``,
            ``learnable_slopes``, ``learnable_bias``, ``position_bias``,
            ``mask_outside_bands``, ``mlp_ratio``, ``eps`` and the band layout
            (``sample_rate``, ``n_fft``, ``band_config``, ``n_bands``), see
            :class:`_SFCModule`.

    Shapes:
        input ``(batch, 2, frames, n_fft // 2 + 1)`` (real/imaginary stacked) ->
        ``(batch, channels, frames, n_bands)``.

    References:
        K. Saijo and Y. Bando, IEEE/ACM TASLP 2026 (arXiv 2602.08671).
    """

    def __init__(self, channels: int, **options) -> None:
        super().__init__(own_arguments(locals()), **options)
        d_inner, eps = self.d_inner, self.eps
        self.input_conv = nn.Conv2d(2, d_inner, _KERNEL, padding=_PADDING)
        self.input_norm = nn.RMSNorm(d_inner, eps=eps)
        if self.query_type == "learnable":
            self.query = nn.Parameter(torch.randn(self.n_bands, d_inner))
        else:
            bins, band_ids = self.bands.flat_indices()
            widths = torch.tensor(self.bands.widths, dtype=torch.float32)
            self.query_weights = nn.Parameter(1.0 / widths[band_ids])
            self.register_buffer("query_bins", bins, persistent=False)
            self.register_buffer("query_band_ids", band_ids, persistent=False)
        self.block = self._make_block(transpose=False)
        self.output_conv = nn.Conv2d(d_inner, channels, _KERNEL, padding=_PADDING)
        self.output_norm = nn.RMSNorm(channels, eps=eps)

    def embed(self, spec: torch.Tensor) -> torch.Tensor:
        """The lifted input: Conv2d + RMSNorm, ``(batch, frames, freqs, d_inner)``."""
        self.check_spectrum(spec)
        return self.input_norm(self.input_conv(spec).permute(0, 2, 3, 1))

    def queries(self, emb: torch.Tensor) -> torch.Tensor:
        """The K queries: ``(1, K, d_inner)`` (learnable) or ``(n, K, d_inner)`` (adaptive).

        Args:
            emb: the lifted input per frame, ``(n, freqs, d_inner)``.
        """
        if self.query_type == "learnable":
            return self.query[None]
        weights = self.query_weights.to(emb.dtype)
        dense = emb.new_zeros(self.n_bands, self.n_freqs)
        dense = dense.index_put((self.query_band_ids, self.query_bins), weights)
        dense = dense / dense.sum(dim=1, keepdim=True).clamp_min(1e-8)
        return torch.einsum("kf,nfd->nkd", dense, emb)

    def _flat(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.embed(spec)
        batch, frames = emb.shape[:2]
        return emb, emb.reshape(batch * frames, self.n_freqs, self.d_inner)

    def forward_with_context(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode, and also return the lifted input (the adaptive decoder's query source).

        Args:
            spec: ``(batch, 2, frames, freqs)``.

        Returns:
            tuple: band features ``(batch, channels, frames, n_bands)`` and the context
            ``(batch, frames, freqs, d_inner)``.
        """
        emb, kv = self._flat(spec)
        batch, frames = emb.shape[:2]
        out = self.block(kv, self.queries(kv))  # (batch * frames, K, d_inner)
        out = out.view(batch, frames, self.n_bands, self.d_inner).permute(0, 3, 1, 2)
        out = self.output_norm(self.output_conv(out).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return out, emb

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """Encode a stacked STFT into band features.

        Args:
            spec: ``(batch, 2, frames, freqs)`` real and imaginary parts.

        Returns:
            torch.Tensor: ``(batch, channels, frames, n_bands)``.
        """
        return self.forward_with_context(spec)[0]

    def attention_weights(self, spec: torch.Tensor, with_bias: bool = True) -> torch.Tensor:
        """Attention of the K queries over the F bins, ``(batch * frames, heads, K, F)``.

        Args:
            spec: ``(batch, 2, frames, freqs)``.
            with_bias: include the positional bias (as the forward pass does, if it has one).
        """
        _, kv = self._flat(spec)
        return self.block.attention_weights(kv, self.queries(kv), with_bias=with_bias)


class SFCDecoder(_SFCModule):
    """SFC-CA decoder: F queries per frame cross-attend over the K band features.

    Args:
        channels: input channels per band (the separator's embedding size).
        n_src: number of estimated sources.
        context_dim: feature size of the encoder's lifted input, the source of adaptive queries
            (default ``d_inner``, i.e. the encoder's ``d_inner``).
        output: ``"mask"`` (default; the authors' BS-Locoformer multiplies the output with the
            mixture as a complex mask) or ``"mapping"`` (the output is the spectrum).
        **options: as :class:`SFCEncoder`; ``query_type="learnable"`` is an F x d_inner
            parameter, ``"adaptive"`` is ``SwiGLU(RMSNorm(context))`` of the encoder's lifted
            input, which must then be passed as ``context``; the bias starts from the
            transpose of the encoder's.

    Shapes:
        ``(batch, channels, frames, n_bands)`` and the mixture ``(batch, 2, frames, freqs)`` ->
        ``(batch, n_src, 2, frames, freqs)``.

    References:
        K. Saijo and Y. Bando, IEEE/ACM TASLP 2026 (arXiv 2602.08671).
    """

    def __init__(
        self,
        channels: int,
        n_src: int,
        context_dim: int | None = None,
        output: str = "mask",
        **options,
    ) -> None:
        super().__init__(own_arguments(locals()), **options)
        d_inner, self.n_src = self.d_inner, n_src
        self.context_dim = self._config["context_dim"] = context_dim or d_inner
        self.input_conv = nn.ConvTranspose2d(channels, d_inner, _KERNEL, padding=_PADDING)
        if self.query_type == "learnable":
            self.query = nn.Parameter(torch.randn(self.n_freqs, d_inner))
        else:
            mlp_hidden = self._config["mlp_ratio"] * d_inner
            self.query_mlp = nn.Sequential(
                nn.RMSNorm(self.context_dim, eps=self.eps),
                SwiGLU(d_inner, mlp_hidden, in_dim=self.context_dim),
            )
        self.block = self._make_block(transpose=True)
        self.output_conv = nn.ConvTranspose2d(d_inner, 2 * n_src, _KERNEL, padding=_PADDING)

    def _flat(self, feats: torch.Tensor) -> torch.Tensor:
        self.check_band_features(feats)
        batch, _, frames, _ = feats.shape
        kv = self.input_conv(feats).permute(0, 2, 3, 1)  # (batch, frames, K, d_inner)
        return kv.reshape(batch * frames, self.n_bands, self.d_inner)

    def queries(self, context: torch.Tensor | None, n: int) -> torch.Tensor:
        """The F queries: ``(1, F, d_inner)`` (learnable) or ``(n, F, d_inner)`` (adaptive).

        Args:
            context: the encoder's lifted input ``(batch, frames, freqs, context_dim)``
                (adaptive queries only; ignored otherwise).
            n: batch x frames of the band features, to check the context against.
        """
        if self.query_type == "learnable":
            return self.query[None]
        name = type(self).__name__
        if context is None:
            raise ValueError(
                f"{name} with adaptive queries needs the encoder's context: call "
                "SFCEncoder.forward_with_context(spec) and pass its second output as context=."
            )
        expected = (self.n_freqs, self.context_dim)
        if (
            context.ndim != 4
            or tuple(context.shape[2:]) != expected
            or (context.shape[0] * context.shape[1] != n)
        ):
            raise ValueError(
                f"{name}: the context must be shaped (batch, frames, {self.n_freqs}, "
                f"{self.context_dim}) matching the band features, got {tuple(context.shape)}."
            )
        return self.query_mlp(context.reshape(n, self.n_freqs, self.context_dim))

    def forward(
        self,
        feats: torch.Tensor,
        mixture: torch.Tensor,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decode band features into estimated spectra.

        Args:
            feats: ``(batch, channels, frames, n_bands)``.
            mixture: the mixture's stacked STFT ``(batch, 2, frames, freqs)``.
            context: the encoder's lifted input (required with adaptive queries).

        Returns:
            torch.Tensor: ``(batch, n_src, 2, frames, freqs)``.
        """
        self.check_spectrum(mixture, "mixture")
        kv = self._flat(feats)
        batch, _, frames, _ = feats.shape
        out = self.block(kv, self.queries(context, kv.shape[0]))  # (batch * frames, F, d_inner)
        out = out.view(batch, frames, self.n_freqs, self.d_inner).permute(0, 3, 1, 2)
        est = self.output_conv(out).view(batch, 2, self.n_src, frames, self.n_freqs)
        return self.decoder_output(est.transpose(1, 2), mixture)

    def attention_weights(
        self,
        feats: torch.Tensor,
        context: torch.Tensor | None = None,
        with_bias: bool = True,
    ) -> torch.Tensor:
        """Attention of the F queries over the K bands, ``(batch * frames, heads, F, K)``."""
        kv = self._flat(feats)
        return self.block.attention_weights(kv, self.queries(context, kv.shape[0]), with_bias)
