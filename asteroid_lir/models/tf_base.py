"""The time-frequency base model: STFT analysis -> separator -> STFT synthesis.

What Asteroid's ``BaseEncoderMaskerDecoder`` is for the time-domain models, :class:`BaseTFModel`
is for TF-Locoformer, TUSS and the unconditional band-wise baseline: it owns the input checks,
the variance normalisation and the STFT (:class:`~asteroid_lir.filterbanks.StackedSTFT`), and
hands the separator the stacked spectrum ``(batch, 2, frames, freqs)``; the separator (which
holds its band encoder/decoder, :class:`~asteroid_lir.filterbanks.FrontEnd`) returns the
sources' spectra ``(batch, n_out, 2, frames, freqs)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from asteroid.models.base_models import BaseModel

from ..filterbanks.stft import StackedSTFT
from .base import LIRModelMixin, reshape_like_input

__all__ = ["BaseTFModel"]


class BaseTFModel(LIRModelMixin, BaseModel):
    """STFT analysis, a separator on stacked spectra, STFT synthesis.

    Subclasses set ``self.separator`` (``separator(spec, *args) -> (batch, n_out, 2, frames,
    freqs)``). Variance normalisation divides each mixture by its standard deviation (plus
    :attr:`std_offset`, at least the smallest float) before the STFT and multiplies the estimates
    by it after, as the references do. An input shorter than the STFT's ``min_length`` (reflection
    padding needs ``n_fft // 2 + 1`` samples) is zero-padded first and the output cropped.

    Args:
        sample_rate (float): sample rate of the model.
        n_fft (int): FFT size.
        hop_length (int): hop size.
        win_length (int, optional): window length (default ``n_fft``).
        window (str): ``"sqrt_hann"`` or a ``torch.<name>_window`` name.
        normalize_variance (bool): normalise the input's scale as above.
        padding (str): ``"reflect"`` (ESPnet's centred STFT) or ``"zero"`` (MERL's TUSS).
    """

    #: Added to the standard deviation of variance normalisation (ESPnet: 0, MERL's TUSS: 1e-8).
    std_offset: float = 0.0

    def __init__(
        self,
        sample_rate: float,
        n_fft: int,
        hop_length: int,
        win_length: int | None = None,
        window: str = "hann",
        normalize_variance: bool = True,
        padding: str = "reflect",
    ):
        super().__init__(sample_rate=float(sample_rate), in_channels=1)
        self.stft = StackedSTFT(n_fft, hop_length, win_length, window, padding)
        self.n_fft, self.hop_length = self.stft.n_fft, self.stft.hop_length
        self.normalize_variance = bool(normalize_variance)

    def get_model_args(self) -> dict:
        """Arguments needed to re-instantiate the model: the separator's (but the ``sample_rate``
        and ``n_fft`` it was given), the STFT and the variance normalisation."""
        sep = self.separator.get_config()
        sep.pop("sample_rate")
        sep.pop("n_fft")
        return {
            **sep,
            **self.stft.get_config(),
            "normalize_variance": self.normalize_variance,
            "sample_rate": float(self.sample_rate),
        }

    def analyse(self, wav: torch.Tensor) -> tuple[tuple, torch.Tensor]:
        """Checked, normalised input and its stacked STFT.

        Args:
            wav (torch.Tensor): ``(time,)``, ``(batch, time)`` or ``(batch, 1, time)``.

        Returns:
            tuple: the context :meth:`synthesise` needs, and the spectrum
            ``(batch, 2, frames, freqs)``.
        """
        shape, wav = self.prepare_input(wav)
        n_samples = wav.shape[-1]
        short = self.stft.min_length - n_samples
        if not torch.jit.is_tracing() and short > 0:
            wav = F.pad(wav, (0, short))
        std = None
        if self.normalize_variance:  # one sample has no standard deviation: divided by 1
            std = wav.std(dim=-1, keepdim=True) if wav.shape[-1] > 1 else torch.ones_like(wav)
            std = (std + self.std_offset).clamp_min(torch.finfo(wav.dtype).tiny)
            wav = wav / std
        return (std, wav.shape[-1], n_samples, shape), self.stft(wav)

    def synthesise(self, ctx: tuple, spec: torch.Tensor) -> torch.Tensor:
        """Waveforms ``(batch, n_out, time)`` (or ``(n_out, time)`` for a 1-D input) of
        estimated spectra ``(batch, n_out, 2, frames, freqs)``; float32 also under autocast."""
        std, padded, n_samples, shape = ctx
        est = self.stft.inverse(spec, padded)
        if std is not None:
            est = est * std.unsqueeze(1)
        return reshape_like_input(est[..., :n_samples], shape)

    def forward(self, wav: torch.Tensor, *args) -> torch.Tensor:
        """Separate: :meth:`analyse`, ``separator(spec, *args)``, :meth:`synthesise`."""
        ctx, spec = self.analyse(wav)
        return self.synthesise(ctx, self.separator(spec, *args))
