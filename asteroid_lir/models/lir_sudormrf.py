"""Latent iterative refinement Sudo rm -rf as an Asteroid encoder-masker-decoder model."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence

import asteroid_filterbanks
import torch
from asteroid.models.base_models import BaseEncoderMaskerDecoder
from asteroid_filterbanks import make_enc_dec
from torch import nn

from ..filterbanks.padded import PaddedEncoder
from ..masknn.iterative_sudormrf import IterativeSuDORMRF
from ..masknn.refinement import REFINEMENT_ARGS
from .base import LIRModelMixin, reshape_like_input
from .refinement import RefinementModelMixin

__all__ = ["LIRSuDORMRFNet"]

#: Arguments of Asteroid's SuDORMRFImprovedNet that are spelled differently here.
ASTEROID_NAMES = {
    "num_blocks": "n_sub_blocks (Asteroid's num_blocks U-ConvBlocks in one pass are n_blocks=1, "
    "n_sub_blocks=num_blocks, n_iters=1)",
    "in_chan": "n_filters (the masker's input channels are the encoder's bases)",
}
#: Beyond this many U-ConvBlocks (n_blocks * n_sub_blocks) a model warns: likely a mix-up of
#: n_blocks with Asteroid's num_blocks (a conventional Sudo rm -rf has 16).
_MANY_UCONV_BLOCKS = 32


def _check_fb_kwargs(fb_name: str, fb_kwargs: dict) -> None:
    hints = {k: ASTEROID_NAMES[k] for k in fb_kwargs if k in ASTEROID_NAMES}
    if hints:
        raise TypeError(
            "LIRSuDORMRFNet got Asteroid's Sudo rm -rf argument(s): "
            + "; ".join(f"use {hint} instead of {name}" for name, hint in hints.items())
            + "."
        )
    fb_class = asteroid_filterbanks.get(fb_name)
    taken = set(inspect.signature(fb_class.__init__).parameters) - {"self", "kwargs"}
    taken -= {"n_filters", "kernel_size", "stride", "sample_rate"}
    unknown = sorted(set(fb_kwargs) - taken)
    if unknown:
        raise TypeError(
            f"LIRSuDORMRFNet got unexpected keyword argument(s) {unknown}: neither its own nor "
            f"arguments of the {fb_name!r} filterbank ({fb_class.__name__} takes "
            f"{sorted(taken) or 'none'})."
        )


class LIRSuDORMRFNet(LIRModelMixin, RefinementModelMixin, BaseEncoderMaskerDecoder):
    """Sudo rm -rf with latent iterative refinement: blocks x sub-blocks x iterations.

    ``s_hat = D(M(S(E(x))) * E(x))`` (paper Eq. 1) with ``S = B_N^{I_N} o ... o B_1^{I_1}``
    (Eq. 6). Iterating a block never adds parameters. ``(1, 16, 1)`` is the conventional
    16-block Sudo rm -rf and loads Asteroid's ``SuDORMRFImprovedNet`` weights
    (:meth:`from_asteroid`).

    Sources: the model estimates ``n_src`` signals. The paper's parameter counts (Table 1) are
    reproduced with the noise as an extra output: ``n_src=2`` (speech + noise) for enhancement
    and ``n_src=3`` (two speakers + noise) for noisy separation.

    Anytime inference: :meth:`forward_steps` returns the estimate after every refinement step
    (one application of one block), and ``model(wav, n_steps=k)`` runs only the first ``k``.

    Args:
        n_src (int): number of estimated sources.
        n_blocks (int): distinct blocks ``N``.
        n_sub_blocks (int): U-ConvBlocks per block ``S``.
        n_iters (int or list of int): iterations of each block ``I`` (int: the same for all).
        bn_chan (int): bottleneck channels.
        n_filters (int): encoder/decoder bases.
        kernel_size (int): encoder/decoder filter length.
        stride (int): encoder hop size.
        upsampling_depth (int): resolutions in each U-ConvBlock.
        mask_act (str): mask non-linearity.
        head_per_block (bool): give every block its own mask network and decoder (required for
            progressive training; the output of ``forward`` is that of the last block's head).
        sample_rate (float): sample rate of the model.
        fb_name (str): Asteroid filterbank family of the encoder/decoder (default ``"free"``).
        gate_kernel_size (int, optional): an early-exit gate (paper Sec. 2.3) spanning this many
            latent frames (3200 = 4 s at 8 kHz with stride 10; other lengths are resampled to
            it, see :class:`~asteroid_lir.masknn.GatingModule`) decides the steps of each
            sample; ``None``: no gate. A gated model has one head.
        min_steps, gumbel_tau, exit_is_final: gate settings, see
            :class:`~asteroid_lir.masknn.RefinementCore`.
        **fb_kwargs: extra arguments of the filterbank (others raise a ``TypeError``; Asteroid's
            ``num_blocks`` and ``in_chan`` get one naming the argument to use).

    Asteroid's ``SuDORMRFImprovedNet`` defaults differ: ``upsampling_depth=4`` and
    ``mask_act="softmax"`` there, ``5`` and ``"relu"`` here (the paper's model).

    References:
        [1] "Latent Iterative Refinement for Modular Source Separation", Sec. 2; [2] E. Tzinis
        et al., "Compute and memory efficient universal sound source separation", Journal of
        Signal Processing Systems, 2022 (Sudo rm -rf).
    """

    refiner_name = "masker"

    def __init__(
        self,
        n_src: int,
        n_blocks: int = 1,
        n_sub_blocks: int = 16,
        n_iters: int | Sequence[int] = 1,
        bn_chan: int = 128,
        n_filters: int = 512,
        kernel_size: int = 21,
        stride: int = 10,
        upsampling_depth: int = 5,
        mask_act: str = "relu",
        head_per_block: bool = False,
        sample_rate: float = 8000,
        fb_name: str = "free",
        gate_kernel_size: int | None = None,
        min_steps: int = 1,
        gumbel_tau: float = 1.0,
        exit_is_final: bool = True,
        **fb_kwargs,
    ):
        refinement = {k: v for k, v in locals().items() if k in REFINEMENT_ARGS}
        _check_fb_kwargs(fb_name, fb_kwargs)
        if n_blocks * n_sub_blocks > _MANY_UCONV_BLOCKS:
            warnings.warn(
                f"LIRSuDORMRFNet(n_blocks={n_blocks}, n_sub_blocks={n_sub_blocks}) builds "
                f"{n_blocks * n_sub_blocks} U-ConvBlocks: n_blocks counts distinct blocks of "
                "n_sub_blocks U-ConvBlocks each (Asteroid's num_blocks=16 is n_blocks=1, "
                "n_sub_blocks=16).",
                UserWarning,
                stacklevel=2,
            )
        if stride != kernel_size // 2:
            # Asteroid's Sudo rm -rf padder sizes the input for a hop of kernel_size // 2; any
            # other pair gives latents the U-ConvBlocks cannot halve (a shape error deep inside).
            raise ValueError(
                f"stride must be kernel_size // 2 (Sudo rm -rf's encoder), got kernel_size="
                f"{kernel_size} and stride={stride}; e.g. kernel_size={2 * stride + 1}."
            )
        enc, dec = self._make_enc_dec(
            fb_name, n_filters, kernel_size, stride, sample_rate, fb_kwargs
        )
        n_feats = enc.n_feats_out
        enc = PaddedEncoder(enc, upsampling_depth=upsampling_depth, kernel_size=kernel_size)
        masker = IterativeSuDORMRF(
            n_feats, n_src, bn_chan, n_sub_blocks, upsampling_depth, mask_act, **refinement
        )
        super().__init__(enc, masker, dec, encoder_activation=None)
        self.fb_name = fb_name
        self.n_filters = n_filters
        self.kernel_size = kernel_size
        self.stride = stride
        self.fb_kwargs = dict(fb_kwargs)
        # Decoders of the heads of blocks 0..N-2; the last block's head uses `self.decoder`,
        # so a single-head model has exactly the layout of Asteroid's Sudo rm -rf.
        n_extra = n_blocks - 1 if head_per_block else 0
        self.block_decoders = nn.ModuleList(
            self._make_enc_dec(fb_name, n_filters, kernel_size, stride, sample_rate, fb_kwargs)[1]
            for _ in range(n_extra)
        )

    @staticmethod
    def _make_enc_dec(fb_name, n_filters, kernel_size, stride, sample_rate, fb_kwargs):
        return make_enc_dec(
            fb_name,
            kernel_size=kernel_size,
            n_filters=n_filters,
            stride=stride,
            sample_rate=sample_rate,
            padding=kernel_size // 2,
            output_padding=(kernel_size // 2) - 1,
            **fb_kwargs,
        )

    # ------------------------------------------------------------------ structure
    def stem_modules(self) -> list[nn.Module]:
        """Encoder and bottleneck: what runs before the first block."""
        return [self.encoder, self.masker.ln, self.masker.bottleneck]

    def head_modules(self, head_idx: int) -> list[nn.Module]:
        """Mask network ``head_idx`` and its decoder."""
        return [self.masker.mask_nets[head_idx], self.decoder_for(head_idx)]

    def decoder_for(self, head_idx: int) -> nn.Module:
        """Decoder of mask network ``head_idx`` (the last head uses ``self.decoder``)."""
        n_heads = len(self.masker.mask_nets)
        head_idx = head_idx % n_heads
        return self.decoder if head_idx == n_heads - 1 else self.block_decoders[head_idx]

    # ------------------------------------------------------------------ forward passes
    def encode(self, wav: torch.Tensor) -> tuple[tuple, torch.Tensor]:
        """``(ctx, z_0)``: checked input (:meth:`prepare_input`), encoder output and bottleneck
        latent; ``ctx`` is ``(tf_rep, n_samples, shape)``."""
        shape, wav = self.prepare_input(wav)
        tf_rep = self.forward_encoder(wav.unsqueeze(1))
        return (tf_rep, wav.shape[-1], shape), self.masker.embed(tf_rep)

    def decode(self, ctx: tuple, z: torch.Tensor, head_idx: int) -> torch.Tensor:
        """Waveforms from the latent ``z`` through mask network and decoder ``head_idx``.

        Args:
            ctx (tuple): from :meth:`encode`: the encoder output ``(batch, n_filters, frames)``,
                the input length and layout.
            z (torch.Tensor): refined latent ``(batch, bn_chan, frames)``.
            head_idx (int): which head (mask network + decoder) to use.

        Returns:
            torch.Tensor: estimates shaped like ``model(wav)``.
        """
        tf_rep, n_samples, shape = ctx
        masks = self.masker.masks(z, head_idx)
        decoded = self.decoder_for(head_idx)(self.apply_masks(tf_rep, masks))
        # The encoder padded the input to a multiple of its hop x 2**depth, so the decoded signal
        # is never shorter than the input: crop it to the length read before encoding. (Reading
        # it afterwards, as Asteroid's pad_x_to_y does, gives a wrong length in a trace taken on
        # an input that needed no padding: the tracer then confuses input and padded input.)
        return reshape_like_input(decoded[..., :n_samples], shape)

    # ------------------------------------------------------------------ Asteroid API
    def get_model_args(self) -> dict:
        """Arguments needed to re-instantiate the model."""
        masker_args = {k: v for k, v in self.masker.get_config().items() if k != "in_chan"}
        return {
            **masker_args,
            "n_filters": self.n_filters,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "sample_rate": float(self.sample_rate),
            "fb_name": self.fb_name,
            **self.fb_kwargs,
        }

    @classmethod
    def from_asteroid(cls, model) -> LIRSuDORMRFNet:
        """The ``(1, num_blocks, 1)`` model computing exactly what an Asteroid
        ``SuDORMRFImprovedNet`` computes (:func:`asteroid_lir.convert.asteroid.from_asteroid`)."""
        from ..convert.asteroid import from_asteroid

        return from_asteroid(cls, model)
