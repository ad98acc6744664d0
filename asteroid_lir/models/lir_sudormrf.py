"""Latent iterative refinement Sudo rm -rf as an Asteroid encoder-masker-decoder model."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from asteroid.models.base_models import (
    BaseEncoderMaskerDecoder,
    _shape_reconstructed,
    _unsqueeze_to_3d,
)
from asteroid.models.sudormrf import SuDORMRFImprovedNet, _Padder
from asteroid.utils.torch_utils import jitable_shape
from asteroid_filterbanks import make_enc_dec
from torch import nn

from ..masknn.iterative_sudormrf import IterativeSuDORMRF
from .base import LIRModelMixin
from .refinement import RefinementModelMixin

__all__ = ["LIRSuDORMRFNet"]


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
        **fb_kwargs: extra filterbank arguments.

    References:
        [1] "Latent Iterative Refinement for Modular Source Separation", Sec. 2.
        [2] E. Tzinis et al., "Compute and memory efficient universal sound source separation",
        Journal of Signal Processing Systems, 2022.
    """

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
        **fb_kwargs,
    ):
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
        enc = _Padder(enc, upsampling_depth=upsampling_depth, kernel_size=kernel_size)
        masker = IterativeSuDORMRF(
            n_feats,
            n_src,
            bn_chan=bn_chan,
            n_blocks=n_blocks,
            n_sub_blocks=n_sub_blocks,
            n_iters=n_iters,
            upsampling_depth=upsampling_depth,
            mask_act=mask_act,
            head_per_block=head_per_block,
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
    @property
    def n_src(self) -> int:
        return self.masker.n_src

    @property
    def refiner(self) -> IterativeSuDORMRF:
        """The refinement core (the masker)."""
        return self.masker

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
    def prepare_input(self, wav: torch.Tensor) -> tuple:
        """Check ``wav`` and reshape it to ``(batch, 1, time)``; building block of the forwards.

        Args:
            wav (torch.Tensor): waveform ``(time,)``, ``(batch, time)`` or ``(batch, 1, time)``.

        Returns:
            tuple: ``(shape, wav_3d, n_samples)``, to hand back to :meth:`decode_head`.
        """
        if wav.ndim not in (1, 2, 3) or (wav.ndim == 3 and wav.shape[1] != 1):
            raise ValueError(
                f"Expected a mono waveform of shape (time,), (batch, time) or (batch, 1, time); "
                f"got shape {tuple(wav.shape)} (mix multi-channel audio down or separate each "
                "channel)."
            )
        if not torch.jit.is_tracing() and wav.shape[-1] == 0:
            raise ValueError("The input waveform is empty (0 samples).")
        shape = jitable_shape(wav)
        wav = _unsqueeze_to_3d(wav)
        return shape, wav, wav.shape[-1]

    def decode_head(self, tf_rep, z, head_idx: int, n_samples, shape) -> torch.Tensor:
        """Waveforms from the latent ``z`` through mask network and decoder ``head_idx``.

        Args:
            tf_rep (torch.Tensor): encoder output ``(batch, n_filters, frames)``.
            z (torch.Tensor): refined latent ``(batch, bn_chan, frames)``.
            head_idx (int): which head (mask network + decoder) to use.
            n_samples, shape: as returned by :meth:`prepare_input`.

        Returns:
            torch.Tensor: estimates shaped like ``model(wav)``.
        """
        masks = self.masker.masks(z, head_idx)
        decoded = self.decoder_for(head_idx)(self.apply_masks(tf_rep, masks))
        # The encoder padded the input to a multiple of its hop x 2**depth, so the decoded signal
        # is never shorter than the input: crop it to the length read before encoding. (Reading
        # it afterwards, as Asteroid's pad_x_to_y does, gives a wrong length in a trace taken on
        # an input that needed no padding: the tracer then confuses input and padded input.)
        return _shape_reconstructed(decoded[..., :n_samples], shape)

    def encode(self, wav: torch.Tensor) -> tuple[tuple, torch.Tensor]:
        """``(ctx, z_0)``: checked input, encoder output and bottleneck latent."""
        shape, wav, n_samples = self.prepare_input(wav)
        tf_rep = self.forward_encoder(wav)
        return (tf_rep, n_samples, shape), self.masker.embed(tf_rep)

    def decode(self, ctx: tuple, z: torch.Tensor, head_idx: int) -> torch.Tensor:
        """Estimates of head ``head_idx`` (see :meth:`decode_head`)."""
        tf_rep, n_samples, shape = ctx
        return self.decode_head(tf_rep, z, head_idx, n_samples, shape)

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
    def from_asteroid(cls, model: SuDORMRFImprovedNet) -> LIRSuDORMRFNet:
        """Build the ``(1, num_blocks, 1)`` model computing exactly what ``model`` computes.

        Args:
            model: an Asteroid ``SuDORMRFImprovedNet`` (any trained or fresh instance), or its
                serialized package (dict).

        Returns:
            LIRSuDORMRFNet: same encoder, blocks, mask network and decoder weights.

        Raises:
            TypeError: if ``model`` is not a ``SuDORMRFImprovedNet`` (or its package).
        """
        if isinstance(model, dict):
            if model.get("model_name") != "SuDORMRFImprovedNet":
                raise TypeError(
                    f"Expected a SuDORMRFImprovedNet package, got {model.get('model_name')!r}."
                )
            model = SuDORMRFImprovedNet.from_pretrained(model)
        if not isinstance(model, SuDORMRFImprovedNet):
            raise TypeError(
                f"from_asteroid converts asteroid.models.SuDORMRFImprovedNet, got {type(model)}."
            )
        masker = model.masker
        fb = model.encoder.filterbank
        fb_cfg = fb.get_config()
        fb_name = {"FreeFB": "free"}.get(fb_cfg.get("fb_name"), None)
        if fb_name is None:
            raise TypeError(
                f"Only the free filterbank can be converted, got {fb_cfg.get('fb_name')}."
            )
        new = cls(
            n_src=masker.n_src,
            n_blocks=1,
            n_sub_blocks=masker.num_blocks,
            n_iters=1,
            bn_chan=masker.bn_chan,
            n_filters=fb_cfg["n_filters"],
            kernel_size=fb_cfg["kernel_size"],
            stride=fb_cfg["stride"],
            upsampling_depth=masker.upsampling_depth,
            mask_act=masker.mask_act,
            sample_rate=model.sample_rate,
        )
        state = {}
        for key, value in model.state_dict().items():
            if key.startswith("masker.sm."):
                key = "masker.blocks.0." + key[len("masker.sm.") :]
            elif key.startswith("masker.mask_net."):
                key = "masker.mask_nets.0." + key[len("masker.mask_net.") :]
            state[key] = value
        new.load_state_dict(state)
        return new
