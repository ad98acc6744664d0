"""One factory for the encoder/decoder pairs of the time-frequency models, one keyword convention.

Every time-frequency model of the package (TF-Locoformer, TUSS, its unconditional baseline) names
its front end the same way:

- ``encoder``: ``"conv"`` (TF-Locoformer's convolutions, one position per STFT bin),
  ``"band_split"`` (one linear layer per band) or ``"sfc"`` (SFC-CA cross-attention);
- ``band_config`` and ``n_bands``: the bands of the two band front ends (see
  :func:`~asteroid_lir.filterbanks.bands.get_band_config`);
- ``encoder_kwargs``: any other argument of the encoder or decoder class, given once: each goes
  to the side(s) whose constructor takes it (``d_inner``, ``n_heads``, ``query_type`` to both
  SFC-CA sides, ``hidden`` to the band-split decoder, ...). A key that neither side takes is a
  ``TypeError`` naming it.

The separator's norm epsilon (``norm_eps``) goes to the GroupNorms of ``conv`` and
``band_split`` (as in the references); SFC-CA keeps its authors' RMSNorm epsilon (1e-6) unless
``encoder_kwargs`` sets ``eps``. Encoder and decoder get the same shared arguments, so the
SFC-CA decoder's ``context_dim`` (default: its ``d_inner``) is the encoder's ``d_inner``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from torch import nn

from .band_split import BandSplitDecoder, BandSplitEncoder
from .conv import ConvDecoder, ConvEncoder
from .sfc import SFCDecoder, SFCEncoder

__all__ = ["FRONT_ENDS", "FrontEnd"]

#: Encoder and decoder class of each front end.
FRONT_ENDS: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "conv": (ConvEncoder, ConvDecoder),
    "band_split": (BandSplitEncoder, BandSplitDecoder),
    "sfc": (SFCEncoder, SFCDecoder),
}
_SET_BY_THE_FACTORY = {
    "self",
    "channels",
    "n_src",
    "sample_rate",
    "n_fft",
    "band_config",
    "n_bands",
}


def _accepted(cls: type) -> set[str]:
    # Every named argument along the class's own hierarchy (its options pass through **kwargs).
    names = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("asteroid_lir.") and "__init__" in vars(klass):
            params = inspect.signature(klass.__init__).parameters.values()
            names |= {p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD}
    return names - _SET_BY_THE_FACTORY - {"config"}


class FrontEnd:
    """Settings of one encoder/decoder pair, and the modules built from them.

    Args:
        name (str): a key of :data:`FRONT_ENDS`.
        channels (int): feature channels the separator works on.
        sample_rate (float, optional): sample rate (band front ends).
        n_fft (int, optional): FFT size (band front ends).
        band_config: bands (band front ends; default ``"musical"``).
        n_bands (int, optional): number of ``"musical"`` bands.
        encoder_kwargs (dict, optional): other encoder/decoder arguments (module docstring).
        norm_eps (float, optional): the separator's norm epsilon (module docstring).
        allowed (tuple of str, optional): the front ends the calling model supports.

    Raises:
        ValueError: unknown or unsupported name, or band settings missing/misplaced.
        TypeError: ``encoder_kwargs`` keys that neither side takes.
    """

    def __init__(
        self,
        name: str,
        channels: int,
        sample_rate: float | None = None,
        n_fft: int | None = None,
        band_config=None,
        n_bands: int | None = None,
        encoder_kwargs: Mapping | None = None,
        norm_eps: float | None = None,
        allowed: tuple[str, ...] | None = None,
    ) -> None:
        allowed = tuple(FRONT_ENDS) if allowed is None else allowed
        if name not in allowed:
            raise ValueError(f"Unknown encoder {name!r}; choose from {list(allowed)}.")
        self.name, self.channels = name, int(channels)
        self.kwargs = dict(encoder_kwargs or {})
        enc_cls, dec_cls = FRONT_ENDS[name]
        enc_ok, dec_ok = _accepted(enc_cls), _accepted(dec_cls)
        unknown = sorted(set(self.kwargs) - enc_ok - dec_ok)
        if unknown:
            raise TypeError(
                f"encoder_kwargs {unknown} are not arguments of the {name!r} encoder or decoder; "
                f"they take {sorted(enc_ok | dec_ok)}."
            )
        if name == "conv":
            if band_config is not None or n_bands is not None:
                raise ValueError("band_config and n_bands apply to the band encoders only.")
            self.bands: dict = {}
        else:
            if sample_rate is None or n_fft is None:
                raise ValueError(f"encoder={name!r} needs the sample_rate and n_fft.")
            self.bands = dict(
                sample_rate=sample_rate,
                n_fft=n_fft,
                band_config="musical" if band_config is None else band_config,
                n_bands=n_bands,
            )
        self.norm_eps = norm_eps if name != "sfc" else None
        self._enc_kwargs = self._side(enc_ok)
        self._dec_kwargs = self._side(dec_ok)

    @classmethod
    def from_args(
        cls,
        args: dict,
        channels: int,
        norm_eps: float | None,
        allowed: tuple[str, ...] | None = None,
    ) -> FrontEnd:
        """The front end named by a model's arguments (``encoder``, ``sample_rate``, ``n_fft``,
        ``band_config``, ``n_bands``, ``encoder_kwargs``; missing ones take their defaults)."""
        keys = ("sample_rate", "n_fft", "band_config", "n_bands", "encoder_kwargs")
        bands = {key: args.get(key) for key in keys}
        return cls(
            args.get("encoder", "conv"), channels, **bands, norm_eps=norm_eps, allowed=allowed
        )

    def _side(self, accepted: set[str]) -> dict:
        kwargs = {k: v for k, v in self.kwargs.items() if k in accepted}
        if self.norm_eps is not None and "eps" in accepted:
            kwargs.setdefault("eps", self.norm_eps)
        return kwargs

    def make_encoder(self) -> nn.Module:
        """A new encoder: ``forward_with_context(spec) -> (features, context)``."""
        return FRONT_ENDS[self.name][0](self.channels, **self.bands, **self._enc_kwargs)

    def make_decoder(self, n_src: int) -> nn.Module:
        """A new decoder with ``n_src`` outputs: ``decoder(features, mixture_spec, context)``."""
        return FRONT_ENDS[self.name][1](self.channels, n_src, **self.bands, **self._dec_kwargs)

    def get_config(self, encoder: nn.Module | None = None) -> dict:
        """``encoder``, ``band_config``, ``n_bands`` and ``encoder_kwargs`` of a model config.

        Args:
            encoder (nn.Module, optional): the built encoder, whose resolved band settings are
                recorded (so that the default ``n_bands`` is written out).
        """
        conf = {"encoder": self.name, "encoder_kwargs": dict(self.kwargs)}
        if self.name == "conv":
            return {**conf, "band_config": None, "n_bands": None}
        band_config, n_bands = self.bands["band_config"], self.bands["n_bands"]
        if encoder is not None:
            enc_conf = encoder.get_config()
            band_config, n_bands = enc_conf["band_config"], enc_conf["n_bands"]
        return {**conf, "band_config": band_config, "n_bands": n_bands}
