"""TF-Locoformer as an Asteroid model: STFT -> TF-Locoformer separator -> iSTFT."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..masknn.tflocoformer import TFLocoformer
from .presets import _PRESET_COMMON, TFLOCOFORMER_PRESETS
from .refinement import RefinementModelMixin
from .tf_base import BaseTFModel

__all__ = ["TFLOCOFORMER_PRESETS", "TFLocoformerNet"]


def _front_end_args(front_end: Mapping | None, args: dict) -> dict:
    # Files written before the one front-end convention name the band settings in one dict
    # ``front_end`` (with optional one-sided ``encoder``/``decoder`` sub-dicts, never used
    # with different values): they become band_config / n_bands / encoder_kwargs.
    if not front_end:
        return args
    front_end = dict(front_end)
    kwargs = {**front_end.pop("encoder", {}), **front_end.pop("decoder", {})}
    for key in ("band_config", "n_bands"):
        if key in front_end and args.get(key) is None:
            args[key] = front_end.pop(key)
    front_end.pop("sample_rate", None)
    front_end.pop("n_fft", None)
    kwargs.update(front_end)
    if args.get("encoder") == "band_split":
        kwargs.setdefault("eps", 1e-5)  # the band-split default it was built with
    args["encoder_kwargs"] = {**kwargs, **(args.get("encoder_kwargs") or {})}
    return args


class TFLocoformerNet(RefinementModelMixin, BaseTFModel):
    """TF-Locoformer speech separation / enhancement model (complex spectral mapping).

    ``wav -> STFT -> TFLocoformer -> iSTFT``. The STFT is the one of ESPnet's ``stft`` encoder
    and decoder in the reference recipes: ``torch.stft`` with a periodic Hann window of
    ``win_length`` (default ``n_fft``), ``center=True`` with reflection padding, no
    normalisation, one-sided; the inverse is ``torch.istft`` cropped to the input length. With
    ``normalize_variance=True`` (the recipes' ``model_conf``) the mixture is divided by its
    standard deviation before the STFT and the estimates multiplied by it after, as ESPnet's
    enhancement model does (:class:`~asteroid_lir.models.tf_base.BaseTFModel`).

    Any input length works; the output always has the input's length. ``torch.jit.trace``
    works (Asteroid's convention, with its default trace check) and gives eager-mode outputs
    for inputs of other lengths and batch sizes.

    Args:
        n_src (int): number of estimated sources.
        n_fft (int): FFT size.
        hop_length (int): hop size in samples.
        win_length (int, optional): window length (default ``n_fft``).
        window (str): a ``torch.<window>_window`` name, default ``"hann"``.
        normalize_variance (bool): scale the input to unit standard deviation and the outputs
            back.
        sample_rate (float): sample rate of the model.
        front_end (dict, optional): the band settings of files written before ``encoder_kwargs``
            (converted to it).
        **separator_args: the separator's settings, see :class:`~asteroid_lir.masknn.
            TFLocoformer` (defaults: the reference's): ``n_layers``, ``emb_dim`` and the block
            settings (``norm_type``, ``num_groups``, ``tf_order``, ``n_heads``,
            ``attention_dim``, ``ffn_type``, ``ffn_hidden_dim``, ``conv1d_kernel``,
            ``conv1d_shift``, ``dropout``, ``eps``); latent iterative refinement on
            TF-Locoformer blocks (``n_blocks`` blocks of ``n_layers`` TF-Locoformer blocks, each
            iterated ``n_iters`` times; ``head_per_block`` for progressive training; an
            early-exit gate spanning ``gate_kernel_size`` STFT frames with ``min_steps``,
            ``gumbel_tau``, ``exit_is_final``, see :class:`~asteroid_lir.masknn.
            RefinementCore`); the front end (``encoder``: ``"conv"``, the reference,
            ``"band_split"`` or ``"sfc"``; ``band_config``, ``n_bands``, ``encoder_kwargs``,
            see :class:`~asteroid_lir.filterbanks.FrontEnd`).

    References:
        [1] K. Saijo, G. Wichern, F. G. Germain, Z. Pan and J. Le Roux, "TF-Locoformer:
        Transformer with Local Modeling by Convolution for Speech Separation and Enhancement",
        IWAENC 2024.
    """

    def __init__(
        self,
        n_src: int = 2,
        n_fft: int = 256,
        hop_length: int = 64,
        win_length: int | None = None,
        window: str = "hann",
        normalize_variance: bool = True,
        sample_rate: float = 8000,
        front_end: Mapping | None = None,
        **separator_args,
    ):
        super().__init__(sample_rate, n_fft, hop_length, win_length, window, normalize_variance)
        args = _front_end_args(front_end, {"n_src": n_src, **separator_args})
        if args.get("encoder", "conv") != "conv":
            args.update(sample_rate=float(sample_rate), n_fft=self.stft.n_fft)
        self.separator = TFLocoformer(**args)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_preset(
        cls, name: str, n_src: int = 2, sample_rate: float = 8000, **kwargs
    ) -> TFLocoformerNet:
        """A model of a published size.

        Args:
            name (str): ``"S"``, ``"M"`` or ``"L"``.
            n_src (int): number of sources.
            sample_rate (float): the STFT (256 / hop 64 at 8 kHz) scales with it.
            **kwargs: overrides of any constructor argument.

        Returns:
            TFLocoformerNet: a freshly initialised model.

        Raises:
            ValueError: for an unknown preset name.
        """
        key = str(name).upper()
        if key not in TFLOCOFORMER_PRESETS:
            raise ValueError(
                f"Unknown TF-Locoformer preset {name!r}; choose from {list(TFLOCOFORMER_PRESETS)}."
            )
        scale = float(sample_rate) / 8000.0
        args = dict(
            _PRESET_COMMON,
            **TFLOCOFORMER_PRESETS[key],
            n_fft=max(2, round(256 * scale)),
            hop_length=max(1, round(64 * scale)),
        )
        args.update(kwargs)
        return cls(n_src=n_src, sample_rate=sample_rate, **args)

    @classmethod
    def from_espnet(cls, state_dict, separator_conf, **stft_args) -> TFLocoformerNet:
        """A model computing what an ESPnet ``TFLocoformerSeparator`` computes (see
        :func:`asteroid_lir.convert.espnet.from_espnet`)."""
        from ..convert.espnet import from_espnet

        return from_espnet(cls, state_dict, separator_conf, **stft_args)

    # ------------------------------------------------------------------ forward
    def encode(self, wav: torch.Tensor) -> tuple[tuple, torch.Tensor]:
        """``(ctx, z_0)``: the analysed input (:meth:`analyse`) and the embedded latent."""
        ctx, spec = self.analyse(wav)
        z, context = self.separator.embed(spec)
        return (ctx, spec, context), z

    def decode(self, ctx: tuple, z: torch.Tensor, head_idx: int) -> torch.Tensor:
        """Waveforms ``(batch, n_src, time)`` of head ``head_idx`` for the latent ``z``."""
        wav_ctx, spec, context = ctx
        return self.synthesise(wav_ctx, self.separator.head(z, head_idx, spec, context))
