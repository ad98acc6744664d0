"""TF-Locoformer as an Asteroid model: STFT -> TF-Locoformer separator -> iSTFT."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from asteroid.models.base_models import BaseModel, _shape_reconstructed
from torch import nn

from ..filterbanks.stft import stacked_istft, stacked_stft
from ..masknn.tflocoformer import TFLocoformer
from .base import LIRModelMixin, mono_batch
from .refinement import RefinementModelMixin

__all__ = ["TFLOCOFORMER_PRESETS", "TFLocoformerNet"]

#: Separator settings of the published sizes (2 sources: S 5.125 M, M 14.976 M, L 22.460 M
#: parameters). S is the WHAMR! "small" configuration, M and L the WSJ0-2mix ones.
TFLOCOFORMER_PRESETS: dict[str, dict] = {
    "S": dict(n_layers=4, emb_dim=96, ffn_hidden_dim=[128, 128], conv1d_kernel=8),
    "M": dict(n_layers=6, emb_dim=128, ffn_hidden_dim=[384, 384], conv1d_kernel=4),
    "L": dict(n_layers=9, emb_dim=128, ffn_hidden_dim=[384, 384], conv1d_kernel=4),
}
_PRESET_COMMON = dict(
    n_heads=4,
    num_groups=4,
    attention_dim=128,
    ffn_type=["swiglu_conv1d", "swiglu_conv1d"],
    conv1d_shift=1,
    norm_type="rmsgroupnorm",
    tf_order="ft",
    eps=1e-5,
)

# separator_conf keys of the ESPnet TFLocoformerSeparator that have no meaning here.
_ESPNET_IGNORED = ("input_dim", "flash_attention")


class TFLocoformerNet(LIRModelMixin, RefinementModelMixin, BaseModel):
    """TF-Locoformer speech separation / enhancement model (complex spectral mapping).

    ``wav -> STFT -> TFLocoformer -> iSTFT``. The STFT is the one of ESPnet's ``stft`` encoder
    and decoder in the reference recipes: ``torch.stft`` with a periodic Hann window of
    ``win_length`` (default ``n_fft``), ``center=True`` with reflection padding, no
    normalisation, one-sided; the inverse is ``torch.istft`` cropped to the input length. With
    ``normalize_variance=True`` (the recipes' ``model_conf``) the mixture is divided by its
    standard deviation before the STFT and the estimates multiplied by it after, as ESPnet's
    enhancement model does.

    Any input length works, odd ones included; the output always has the input's length. Inputs
    of at most ``n_fft // 2`` samples (too short for the reflection padding) are zero-padded to
    ``n_fft // 2 + 1`` samples first and the output cropped.

    ``torch.jit.trace`` works and gives eager-mode outputs for inputs of other lengths and
    batch sizes; the input checks are skipped while tracing, and a trace taken on an input longer
    than ``n_fft // 2`` samples keeps that branch (the short-input padding is not traced).

    Args:
        n_src (int): number of estimated sources.
        n_layers, emb_dim, norm_type, num_groups, tf_order, n_heads, attention_dim, ffn_type,
            ffn_hidden_dim, conv1d_kernel, conv1d_shift, dropout, eps: separator settings, see
            :class:`~asteroid_lir.masknn.TFLocoformer`.
        n_blocks, n_iters, head_per_block, gate_kernel_size, min_steps, gumbel_tau,
            exit_is_final: latent iterative refinement on TF-Locoformer blocks (``n_blocks``
            blocks of ``n_layers`` TF-Locoformer blocks, each iterated ``n_iters`` times; one
            head per block for progressive training; an early-exit gate spanning
            ``gate_kernel_size`` STFT frames), see :class:`~asteroid_lir.masknn.RefinementCore`.
            ``model(wav, n_steps=k)``, ``forward_steps``, ``forward_with_steps`` (gated),
            ``ProgressiveSystem`` and ``GatedSystem`` work as for ``LIRSuDORMRFNet``.
        encoder (str): front end by name: ``"conv"`` (the reference), ``"band_split"`` or
            ``"sfc"`` (SFC-CA, :mod:`asteroid_lir.filterbanks`); the blocks then run on band
            features.
        front_end (dict, optional): band encoder/decoder arguments (``band_config``,
            ``n_bands``, ...; the sample rate and FFT size are the model's).
        n_fft (int): FFT size.
        hop_length (int): hop size in samples.
        win_length (int, optional): window length (default ``n_fft``).
        window (str): a ``torch.<window>_window`` name, default ``"hann"``.
        normalize_variance (bool): scale the input to unit standard deviation and the outputs
            back.
        sample_rate (float): sample rate of the model.

    References:
        [1] K. Saijo, G. Wichern, F. G. Germain, Z. Pan and J. Le Roux, "TF-Locoformer:
        Transformer with Local Modeling by Convolution for Speech Separation and Enhancement",
        IWAENC 2024.
    """

    def __init__(
        self,
        n_src: int = 2,
        n_layers: int = 6,
        emb_dim: int = 128,
        norm_type: str = "rmsgroupnorm",
        num_groups: int = 4,
        tf_order: str = "ft",
        n_heads: int = 4,
        attention_dim: int = 128,
        ffn_type: str | Sequence[str] = ("swiglu_conv1d", "swiglu_conv1d"),
        ffn_hidden_dim: int | Sequence[int] = (384, 384),
        conv1d_kernel: int = 4,
        conv1d_shift: int = 1,
        dropout: float = 0.0,
        eps: float = 1e-5,
        n_blocks: int = 1,
        n_iters: int | Sequence[int] = 1,
        head_per_block: bool = False,
        gate_kernel_size: int | None = None,
        min_steps: int = 1,
        gumbel_tau: float = 1.0,
        exit_is_final: bool = True,
        encoder: str = "conv",
        front_end: dict | None = None,
        n_fft: int = 256,
        hop_length: int = 64,
        win_length: int | None = None,
        window: str = "hann",
        normalize_variance: bool = True,
        sample_rate: float = 8000,
    ):
        super().__init__(sample_rate=sample_rate, in_channels=1)
        win_length = n_fft if win_length is None else int(win_length)
        if n_fft < 2 or hop_length < 1 or not 1 <= win_length <= n_fft:
            raise ValueError(
                f"Need n_fft >= 2, hop_length >= 1 and 1 <= win_length <= n_fft, got n_fft={n_fft}"
                f", hop_length={hop_length}, win_length={win_length}."
            )
        window_fn = getattr(torch, f"{window}_window", None)
        if window_fn is None:
            raise ValueError(f"Unknown window {window!r}: torch has no {window}_window.")
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.win_length = win_length
        self.window = window
        self.normalize_variance = bool(normalize_variance)
        self.register_buffer("stft_window", window_fn(win_length), persistent=False)
        self.separator = TFLocoformer(
            n_src=n_src,
            n_layers=n_layers,
            emb_dim=emb_dim,
            norm_type=norm_type,
            num_groups=num_groups,
            tf_order=tf_order,
            n_heads=n_heads,
            attention_dim=attention_dim,
            ffn_type=ffn_type,
            ffn_hidden_dim=ffn_hidden_dim,
            conv1d_kernel=conv1d_kernel,
            conv1d_shift=conv1d_shift,
            dropout=dropout,
            eps=eps,
            n_blocks=n_blocks,
            n_iters=n_iters,
            head_per_block=head_per_block,
            gate_kernel_size=gate_kernel_size,
            min_steps=min_steps,
            gumbel_tau=gumbel_tau,
            exit_is_final=exit_is_final,
            encoder=encoder,
            front_end=None
            if encoder == "conv"
            else {"sample_rate": float(sample_rate), "n_fft": self.n_fft, **(front_end or {})},
        )

    @property
    def n_src(self) -> int:
        return self.separator.n_src

    @property
    def refiner(self) -> TFLocoformer:
        """The refinement core (the separator)."""
        return self.separator

    def stem_modules(self) -> list[nn.Module]:
        """The front end (input convolution and norm, or band encoder): before the first block."""
        return [self.separator.stem]

    def head_modules(self, head_idx: int) -> list[nn.Module]:
        """The output (transposed) convolution of head ``head_idx``."""
        return [self.separator.deconv[head_idx]]

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
    def from_espnet(
        cls,
        state_dict: Mapping[str, torch.Tensor],
        separator_conf: Mapping,
        n_fft: int = 256,
        hop_length: int = 64,
        win_length: int | None = None,
        window: str = "hann",
        normalize_variance: bool = True,
        sample_rate: float = 8000,
    ) -> TFLocoformerNet:
        """Load the weights of an ESPnet ``TFLocoformerSeparator`` (merlresearch/tf-locoformer).

        Args:
            state_dict (Mapping): the separator's weights as ESPnet names them, with or without
                the ``separator.`` prefix (a whole ESPnet enhancement model's state dict works:
                only the ``separator.`` entries are read).
            separator_conf (Mapping): the ``separator_conf`` of the ESPnet config.
            n_fft, hop_length, win_length, window: the config's ``encoder_conf``.
            normalize_variance (bool): the config's ``model_conf.normalize_variance``.
            sample_rate (float): sample rate of the recipe.

        Returns:
            TFLocoformerNet: a model computing what the ESPnet model computes.

        Raises:
            ValueError: for unknown ``separator_conf`` keys or weights that do not fit.
        """
        conf = dict(separator_conf)
        for key in _ESPNET_IGNORED:
            conf.pop(key, None)
        if "num_spk" in conf:
            conf["n_src"] = conf.pop("num_spk")
        known = _separator_arg_names()
        unknown = sorted(set(conf) - known)
        if unknown:
            raise ValueError(
                f"Unknown TF-Locoformer separator_conf keys {unknown}; expected a subset of "
                f"{sorted(known | {'num_spk', *_ESPNET_IGNORED})}."
            )
        model = cls(
            **conf,
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window=window,
            normalize_variance=normalize_variance,
            sample_rate=sample_rate,
        )
        state = dict(state_dict)
        if any(k.startswith("separator.") for k in state):
            state = {
                k[len("separator.") :]: v for k, v in state.items() if k.startswith("separator.")
            }
        state = TFLocoformer.convert_espnet_state_dict(state)
        missing, unexpected = model.separator.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                "The state dict does not fit the separator_conf: "
                f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}."
            )
        return model

    # ------------------------------------------------------------------ forward
    def prepare_input(self, wav: torch.Tensor) -> tuple:
        """``(shape, wav_2d)``: ``wav`` checked and shaped ``(batch, time)`` (``mono_batch``)."""
        return mono_batch(wav, type(self).__name__)

    def stft(self, wav: torch.Tensor) -> torch.Tensor:
        """Stacked real/imaginary STFT ``(batch, 2, frames, freqs)`` of ``(batch, time)``."""
        return stacked_stft(wav, self.n_fft, self.hop_length, self.win_length, self.stft_window)

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Waveforms ``(..., time)`` of spectra ``(..., 2, frames, freqs)``."""
        args = (self.n_fft, self.hop_length, self.win_length, self.stft_window)
        return stacked_istft(spec, *args, length)

    def encode(self, wav: torch.Tensor) -> tuple[tuple, torch.Tensor]:
        """``(ctx, z_0)``: checked and normalised input, its STFT and the embedded latent."""
        shape, wav = self.prepare_input(wav)
        n_samples = wav.shape[-1]
        min_len = self.n_fft // 2 + 1
        if not torch.jit.is_tracing() and n_samples < min_len:
            wav = torch.nn.functional.pad(wav, (0, min_len - n_samples))
        std = None
        if self.normalize_variance:
            std = wav.std(dim=-1, keepdim=True).clamp_min(torch.finfo(wav.dtype).tiny)
            wav = wav / std
        spec = self.stft(wav)
        z, context = self.separator.embed(spec)
        return (std, wav.shape[-1], n_samples, shape, spec, context), z

    def decode(self, ctx: tuple, z: torch.Tensor, head_idx: int) -> torch.Tensor:
        """Waveforms ``(batch, n_src, time)`` of head ``head_idx`` for the latent ``z``."""
        std, padded, n_samples, shape, spec, context = ctx
        est = self.istft(self.separator.head(z, head_idx, spec, context), padded)
        if std is not None:
            est = est * std.unsqueeze(1)
        return _shape_reconstructed(est[..., :n_samples], shape)

    # ------------------------------------------------------------------ Asteroid API
    def get_model_args(self) -> dict:
        """Arguments needed to re-instantiate the model."""
        return {
            **self.separator.get_config(),
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "win_length": self.win_length,
            "window": self.window,
            "normalize_variance": self.normalize_variance,
            "sample_rate": float(self.sample_rate),
        }


def _separator_arg_names() -> set[str]:
    import inspect

    return {name for name in inspect.signature(TFLocoformer.__init__).parameters if name != "self"}
