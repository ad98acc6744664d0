"""TF-Locoformer separator on the refinement core: stacked STFT in, the sources' spectra out.

References:
    [1] K. Saijo, G. Wichern, F. G. Germain, Z. Pan and J. Le Roux, "TF-Locoformer: Transformer
    with Local Modeling by Convolution for Speech Separation and Enhancement", IWAENC 2024.
    [2] "Latent Iterative Refinement for Modular Source Separation", Sec. 2.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..filterbanks.factory import FrontEnd
from .locoformer import TFLocoformerBlock
from .refinement import REFINEMENT_ARGS, RefinementCore

__all__ = ["TFLocoformer"]


class TFLocoformer(RefinementCore):
    """TF-Locoformer separator: front-end encoder -> refined TF-Locoformer blocks -> decoder(s).

    ``Conv2d(2 -> emb_dim, 3x3) + GroupNorm(1, emb_dim)`` (the reference's front end, or a band
    encoder, :class:`~asteroid_lir.filterbanks.FrontEnd`) -> the refinement schedule
    ``B_N^{I_N} o ... o B_1^{I_1}`` whose sub-blocks are
    :class:`~asteroid_lir.masknn.locoformer.TFLocoformerBlock` (``n_blocks`` distinct blocks of
    ``n_layers`` TF-Locoformer blocks, block ``b`` applied ``n_iters[b]`` times with shared
    weights) -> ``ConvTranspose2d(emb_dim -> 2 * n_src, 3x3)`` or a band decoder (the heads).
    The output is the sources' complex spectra. The reference model is ``(n_blocks, n_iters) =
    (1, 1)`` with ``encoder="conv"``; its weights load through
    :func:`asteroid_lir.convert.espnet.convert_espnet_state_dict`. Anytime steps, one head per
    block (progressive training) and the frequency-pooled early-exit gate come from
    :class:`~asteroid_lir.masknn.RefinementCore`.

    The constructor arguments are those of the reference's ``separator_conf`` (``num_spk`` is
    ``n_src``; ``input_dim`` and ``flash_attention`` do not apply), plus the refinement and front
    end ones.

    Args:
        n_src (int): number of sources.
        n_layers (int): TF-Locoformer blocks per refinement block (sub-blocks ``S``; the
            reference's number of blocks when ``n_blocks=1``).
        emb_dim (int): channels of the latent.
        encoder (str): ``"conv"`` (the reference), ``"band_split"`` or ``"sfc"`` (SFC-CA): the
            blocks then run on ``n_bands`` band features instead of the bins.
        sample_rate (float, optional), n_fft (int, optional), band_config, n_bands,
            encoder_kwargs: the band front end (:class:`~asteroid_lir.filterbanks.FrontEnd`).
        **options: the refinement arguments (``n_blocks``, ``n_iters``, ``head_per_block`` and
            the gate's ``gate_kernel_size``, ``min_steps``, ``gumbel_tau``, ``exit_is_final``:
            :class:`~asteroid_lir.masknn.RefinementCore`; the gate spans ``gate_kernel_size``
            STFT frames of the frequency-pooled latent) and those of the TF-Locoformer blocks
            (``tf_order``, ``norm_type``, ``num_groups``, ``n_heads``, ``attention_dim``,
            ``ffn_type``, ``ffn_hidden_dim``, ``conv1d_kernel``, ``conv1d_shift``,
            ``dropout``, ``eps``: :class:`~asteroid_lir.masknn.TFLocoformerBlock`, whose
            defaults are the reference's).

    References:
        [1] Saijo et al., IWAENC 2024 (see the module docstring).
        [2] "Latent Iterative Refinement for Modular Source Separation", Sec. 2.
    """

    heads_name = "deconv"

    def __init__(
        self,
        n_src: int = 2,
        n_layers: int = 6,
        emb_dim: int = 128,
        encoder: str = "conv",
        sample_rate: float | None = None,
        n_fft: int | None = None,
        band_config=None,
        n_bands: int | None = None,
        encoder_kwargs: Mapping | None = None,
        **options,
    ):
        if n_src < 1 or n_layers < 1:
            raise ValueError(f"n_src and n_layers must be >= 1, got {n_src} and {n_layers}.")
        refinement = {k: options.pop(k) for k in REFINEMENT_ARGS if k in options}
        front_end = FrontEnd.from_args(locals(), emb_dim, options.get("eps", 1e-5))
        super().__init__(
            lambda: TFLocoformerBlock(emb_dim, **options),
            lambda: front_end.make_decoder(n_src),
            n_sub_blocks=n_layers,
            latent_channels=emb_dim,
            **refinement,
        )
        self.n_src, self.n_layers, self.emb_dim = n_src, n_layers, emb_dim
        self.front_end = front_end
        # The reference's parameter names: ``conv.*`` for its convolutional front end.
        self.add_module("conv" if encoder == "conv" else "band_encoder", front_end.make_encoder())

    @property
    def stem(self) -> torch.nn.Module:
        """The encoder that turns the spectrogram into ``z_0`` (``conv`` or ``band_encoder``)."""
        return self.conv if self.front_end.name == "conv" else self.band_encoder

    def stem_modules(self) -> list[torch.nn.Module]:
        """What runs before the first block: the encoder (:attr:`stem`)."""
        return [self.stem]

    def embed(self, spec: torch.Tensor) -> tuple[torch.Tensor, object]:
        """Latent ``z_0`` of a spectrogram, and the context the band decoders need.

        Args:
            spec (torch.Tensor): ``(batch, 2, frames, freqs)``, real and imaginary parts.

        Returns:
            tuple: ``z_0`` ``(batch, emb_dim, frames, freqs or n_bands)``, channels-last in
            memory, and the decoder context (``None`` but for SFC-CA's adaptive queries).
        """
        z, context = self.stem.forward_with_context(spec)
        return z.contiguous(memory_format=torch.channels_last), context

    def head(
        self,
        z: torch.Tensor,
        head_idx: int = -1,
        spec: torch.Tensor | None = None,
        context: object = None,
    ) -> torch.Tensor:
        """The sources' spectra ``(batch, n_src, 2, frames, freqs)`` from a latent.

        Args:
            z (torch.Tensor): ``(batch, emb_dim, frames, freqs or n_bands)``.
            head_idx (int): which head (one per block with ``head_per_block``).
            spec (torch.Tensor, optional): the mixture ``(batch, 2, frames, freqs)``; needed by
                the band decoders (their masks apply to it).
            context: the decoder context returned by :meth:`embed`.
        """
        return self.deconv[head_idx](z, spec, context)

    def forward(self, spec: torch.Tensor, n_steps: int | None = None) -> torch.Tensor:
        """Separate: :meth:`embed`, the refinement steps (gated if there is a gate), :meth:`head`.

        Args:
            spec (torch.Tensor): ``(batch, 2, frames, freqs)``.
            n_steps (int, optional): run only the first ``n_steps`` steps (a gated separator
                takes exactly that many).

        Returns:
            torch.Tensor: ``(batch, n_src, 2, frames, freqs)``.
        """
        z, context = self.embed(spec)
        head_idx, z = self.refine_to_head(z, n_steps)
        return self.head(z, head_idx, spec, context)

    def get_config(self) -> dict:
        """Arguments to re-instantiate the separator."""
        band = self.front_end.bands
        return {
            "n_src": self.n_src,
            "n_layers": self.n_layers,
            **self.blocks[0][0].get_config(),
            **self.refinement_config(),
            **self.front_end.get_config(self.stem),
            "sample_rate": band.get("sample_rate"),
            "n_fft": band.get("n_fft"),
        }
