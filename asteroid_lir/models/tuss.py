"""TUSS (task-aware unified source separation) and its unconditional baseline as Asteroid models.

``TUSSNet``: ``model(wav, prompts)`` separates one source per prompt name, e.g.
``model(wav, [["speech", "sfxbg"], ["speech", "sfxbg"]])`` -> ``(2, 2, time)``. Any number of
prompts, repeated prompts allowed (``["sfx", "sfx", "sfx"]`` extracts three sound events); every
item of a batch must have the same number of prompts. ``BSLocoformerNet``: the unconditional
model of the TUSS slides (same stacks, fixed number of outputs, no prompts).

Both share the STFT front end of the TUSS reference (merlresearch/unified-source-separation,
``utils/audio_utils.py`` and ``nets/model_wrapper.py``): the mixture is divided by its standard
deviation (+1e-8), analysed with a square-root periodic Hann window without normalisation, zero
padded by ``n_fft // 2`` on both sides and on the right up to a whole number of hops; the
estimates are synthesised with ``torch.istft`` (``center=True``), cut to the input length and
multiplied back by the standard deviation. At 48 kHz the reference uses n_fft 2048 / hop 512;
by default both scale with the sample rate (``2 * round(1024 * sr / 48000)`` and
``round(512 * sr / 48000)``: 342 / 85 at 8 kHz, 682 / 171 at 16 kHz).

Long inputs: :meth:`TUSSNet.separate_long` (and ``file_separate(..., chunk_seconds=...)``) cut
the input into overlapping chunks and cross-fade them (:func:`asteroid_lir.inference.
separate_chunked`) with the same prompts for every chunk; outputs of the same prompt name are
re-aligned between chunks, outputs of different names keep their place.

References:
    [1] K. Saijo, J. Ebbers, F. G. Germain, G. Wichern and J. Le Roux, "Task-aware unified
    source separation", ICASSP 2025.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from asteroid.models.base_models import BaseModel, _shape_reconstructed

from ..filterbanks.stft import stacked_istft, stacked_stft
from ..masknn.tuss import PROMPT_NAMES, TUSSSeparator, UnconditionalSeparator
from .base import LIRModelMixin, mono_batch, validate_waveform

__all__ = ["BSLocoformerNet", "PROMPT_NAMES", "TUSS_PRESETS", "TUSSNet"]

_REF_RATE = 48000.0
WINDOWS = ("sqrt_hann", "hann")

_MEDIUM = dict(
    emb_dim=64,
    num_groups=8,
    n_heads=4,
    n_cross_prompt_blocks=4,
    cross_prompt_block=dict(
        attention_dim=128,
        freq_ffn_hidden_dim=384,
        freq_conv1d_kernel=4,
        time_ffn_hidden_dim=384,
        time_conv1d_kernel=1,
    ),
    n_tse_blocks=2,
    tse_block=dict(
        attention_dim=96,
        freq_ffn_hidden_dim=256,
        freq_conv1d_kernel=4,
        time_ffn_hidden_dim=256,
        time_conv1d_kernel=4,
    ),
)

#: Model settings by name. ``medium`` and ``large`` are the reference's released models
#: (48 kHz, STFT 2048 / 512, 61 BS-RoFormer bands: 11.132 M and 38.210 M parameters, counting
#: its 56 RoPE frequencies, which are buffers here). ``small`` (16 kHz) and ``tiny`` (8 kHz) are
#: CPU-sized: fewer, wider bands (24 / 16 "musical" bands), narrower and fewer blocks.
TUSS_PRESETS: dict[str, dict] = {
    "medium": dict(_MEDIUM, sample_rate=48000, band_config="bs_roformer"),
    "large": dict(
        _MEDIUM,
        emb_dim=128,
        n_heads=8,
        n_cross_prompt_blocks=6,
        cross_prompt_block=dict(_MEDIUM["cross_prompt_block"], attention_dim=256),
        n_tse_blocks=3,
        tse_block=dict(_MEDIUM["tse_block"], attention_dim=192),
        sample_rate=48000,
        band_config="bs_roformer",
    ),
    "small": dict(
        emb_dim=48,
        num_groups=4,
        n_heads=4,
        n_cross_prompt_blocks=2,
        cross_prompt_block=dict(
            attention_dim=64,
            freq_ffn_hidden_dim=128,
            freq_conv1d_kernel=4,
            time_ffn_hidden_dim=128,
            time_conv1d_kernel=1,
        ),
        n_tse_blocks=1,
        tse_block=dict(
            attention_dim=64,
            freq_ffn_hidden_dim=128,
            freq_conv1d_kernel=4,
            time_ffn_hidden_dim=128,
            time_conv1d_kernel=4,
        ),
        sample_rate=16000,
        band_config="musical",
        n_bands=24,
    ),
    "tiny": dict(
        emb_dim=32,
        num_groups=4,
        n_heads=4,
        n_cross_prompt_blocks=2,
        cross_prompt_block=dict(
            attention_dim=32,
            freq_ffn_hidden_dim=64,
            freq_conv1d_kernel=4,
            time_ffn_hidden_dim=64,
            time_conv1d_kernel=1,
        ),
        n_tse_blocks=1,
        tse_block=dict(
            attention_dim=32,
            freq_ffn_hidden_dim=64,
            freq_conv1d_kernel=4,
            time_ffn_hidden_dim=64,
            time_conv1d_kernel=4,
        ),
        sample_rate=8000,
        band_config="musical",
        n_bands=16,
    ),
}


def default_stft(sample_rate: float) -> tuple[int, int]:
    """The reference's STFT (2048 / hop 512 at 48 kHz) scaled to ``sample_rate``.

    Returns:
        tuple: ``(n_fft, hop_length)``; ``n_fft`` is even.
    """
    scale = float(sample_rate) / _REF_RATE
    return max(2, 2 * round(1024 * scale)), max(1, round(512 * scale))


class _TUSSFrontEnd(LIRModelMixin, BaseModel):
    """STFT analysis / synthesis and variance normalisation of the TUSS reference."""

    def __init__(
        self,
        sample_rate: float,
        n_fft: int | None,
        hop_length: int | None,
        win_length: int | None,
        window: str,
        normalize_variance: bool,
    ):
        super().__init__(sample_rate=float(sample_rate), in_channels=1)
        d_fft, d_hop = default_stft(sample_rate)
        n_fft = d_fft if n_fft is None else int(n_fft)
        hop_length = d_hop if hop_length is None else int(hop_length)
        win_length = n_fft if win_length is None else int(win_length)
        if n_fft < 2 or hop_length < 1 or not 1 <= win_length <= n_fft:
            raise ValueError(
                f"Need n_fft >= 2, hop_length >= 1 and 1 <= win_length <= n_fft, got n_fft="
                f"{n_fft}, hop_length={hop_length}, win_length={win_length}."
            )
        if window not in WINDOWS:
            raise ValueError(f"Unknown window {window!r}; choose from {list(WINDOWS)}.")
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length
        self.window = window
        self.normalize_variance = bool(normalize_variance)
        win = torch.hann_window(win_length, periodic=True)
        self.register_buffer("stft_window", win.sqrt() if window == "sqrt_hann" else win, False)

    def _stft_args(self) -> dict:
        return {
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "win_length": self.win_length,
            "window": self.window,
            "normalize_variance": self.normalize_variance,
            "sample_rate": float(self.sample_rate),
        }

    def prepare_input(self, wav: torch.Tensor) -> tuple:
        """``(shape, wav_2d)``: ``wav`` checked and shaped ``(batch, time)`` (``mono_batch``)."""
        return mono_batch(wav, type(self).__name__)

    def stft(self, wav: torch.Tensor) -> torch.Tensor:
        """Stacked real/imaginary STFT ``(batch, 2, frames, freqs)`` of ``(batch, time)``."""
        args = (self.n_fft, self.hop_length, self.win_length, self.stft_window)
        return stacked_stft(wav, *args, padding="zero")

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Waveforms ``(..., length)`` of spectra ``(..., 2, frames, freqs)``."""
        args = (self.n_fft, self.hop_length, self.win_length, self.stft_window)
        return stacked_istft(spec, *args, length)

    def _analyse(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        std = None
        if self.normalize_variance:
            # The reference's unbiased std + 1e-8 (a one-sample input has no std: use 1).
            std = wav.std(dim=-1, keepdim=True) if wav.shape[-1] > 1 else torch.ones_like(wav)
            std = std + 1e-8
            wav = wav / std
        return self.stft(wav), std

    def _synthesise(self, spec: torch.Tensor, length: int, std) -> torch.Tensor:
        est = self.istft(spec, length)
        if std is not None:
            est = est * std.unsqueeze(1)
        return est


class TUSSNet(_TUSSFrontEnd):
    """Task-aware unified source separation: one output per prompt.

    ``wav -> STFT -> band encoder -> cross-prompt module over [prompts, SOS, frames] ->
    (prompt vector * mixture feature) -> conditional TSE module -> band decoder (complex mask)
    -> iSTFT``, see :class:`~asteroid_lir.masknn.tuss.TUSSSeparator`.

    Prompts: :attr:`prompt_names` (default ``speech, sfx, sfxbg, drums, bass, vocals, other,
    musicbg``). ``model(wav, prompts)`` takes one list of names per batch item (all of one
    length), or a single list used for every item.

    Args:
        prompt_names (sequence of str): the learnable prompts.
        emb_dim, num_groups, n_heads, n_cross_prompt_blocks, cross_prompt_block, n_tse_blocks,
            tse_block, encoder, band_config, n_bands, encoder_kwargs, decoder_hidden,
            use_sos_token, tf_order, norm_type, dropout, eps: separator settings, see
            :class:`~asteroid_lir.masknn.tuss.TUSSSeparator` (the defaults are the reference's
            ``medium`` model).
        n_fft (int, optional): FFT size (default: 2048 scaled by ``sample_rate / 48000``).
        hop_length (int, optional): hop size (default: 512 scaled likewise).
        win_length (int, optional): window length (default ``n_fft``).
        window (str): ``"sqrt_hann"`` (the reference) or ``"hann"``.
        normalize_variance (bool): divide the input by its standard deviation and multiply the
            outputs by it (the reference does).
        sample_rate (float): sample rate of the model.

    References:
        [1] K. Saijo et al., "Task-aware unified source separation", ICASSP 2025.
    """

    def __init__(
        self,
        prompt_names: Sequence[str] = PROMPT_NAMES,
        emb_dim: int = 64,
        num_groups: int = 8,
        n_heads: int = 4,
        n_cross_prompt_blocks: int = 4,
        cross_prompt_block: Mapping | None = None,
        n_tse_blocks: int = 2,
        tse_block: Mapping | None = None,
        encoder: str = "band_split",
        band_config="bs_roformer",
        n_bands: int | None = None,
        encoder_kwargs: Mapping | None = None,
        decoder_hidden: int | None = None,
        use_sos_token: bool = True,
        tf_order: str = "ft",
        norm_type: str = "rmsgroupnorm",
        dropout: float = 0.0,
        eps: float = 1e-5,
        n_fft: int | None = None,
        hop_length: int | None = None,
        win_length: int | None = None,
        window: str = "sqrt_hann",
        normalize_variance: bool = True,
        sample_rate: float = 48000,
    ):
        super().__init__(sample_rate, n_fft, hop_length, win_length, window, normalize_variance)
        if cross_prompt_block is None:
            cross_prompt_block = _MEDIUM["cross_prompt_block"]
        if tse_block is None:
            tse_block = _MEDIUM["tse_block"]
        self.separator = TUSSSeparator(
            prompt_names=prompt_names,
            emb_dim=emb_dim,
            num_groups=num_groups,
            n_heads=n_heads,
            n_cross_prompt_blocks=n_cross_prompt_blocks,
            cross_prompt_block=cross_prompt_block,
            n_tse_blocks=n_tse_blocks,
            tse_block=tse_block,
            sample_rate=sample_rate,
            n_fft=self.n_fft,
            encoder=encoder,
            band_config=band_config,
            n_bands=n_bands,
            encoder_kwargs=encoder_kwargs,
            decoder_hidden=decoder_hidden,
            use_sos_token=use_sos_token,
            tf_order=tf_order,
            norm_type=norm_type,
            dropout=dropout,
            eps=eps,
        )
        self._prompt_index = {name: i for i, name in enumerate(self.separator.prompt_names)}

    @property
    def prompt_names(self) -> list[str]:
        """The prompt names the model knows (the order of ``separator.prompt_table()``)."""
        return list(self.separator.prompt_names)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_preset(cls, name: str, **kwargs) -> TUSSNet:
        """A model of a named size (:data:`TUSS_PRESETS`).

        Args:
            name (str): ``"medium"``, ``"large"`` (the reference's, 48 kHz), ``"small"``
                (16 kHz) or ``"tiny"`` (8 kHz).
            **kwargs: overrides of any constructor argument (e.g. ``sample_rate=8000``; the STFT
                then scales with it unless ``n_fft`` / ``hop_length`` are given).

        Returns:
            TUSSNet: a freshly initialised model.

        Raises:
            ValueError: for an unknown preset name.
        """
        return cls(**preset_args(name, **kwargs))

    @classmethod
    def from_merl(cls, state_dict_or_path, hparams, strict: bool = True, **kwargs) -> TUSSNet:
        """Load a model of the TUSS reference (merlresearch/unified-source-separation).

        Args:
            state_dict_or_path: the reference's weights: a state dict (of ``TussModel``, of its
                ``SeparationModel`` wrapper with ``separator.`` names, or of the Lightning module
                with ``model.separator.`` names; a Lightning checkpoint dict with a
                ``state_dict`` entry works too), or the path of a ``.pth`` / ``.ckpt`` file.
            hparams: the run's ``hparams.yaml`` (path or dict) or its ``model_conf`` dict.
            strict (bool): fail on weights that do not fit.
            **kwargs: overrides of constructor arguments.

        Returns:
            TUSSNet: a model computing what the reference computes.

        Raises:
            ValueError: unsupported settings (``prompt_size != 1``, two FFNs of one path with
                different settings, a non-STFT encoder) or weights that do not fit.
            FileNotFoundError: a path that does not exist.
        """
        args = merl_model_args(hparams)
        args.update(kwargs)
        model = cls(**args)
        state = merl_state_dict(_load_state(state_dict_or_path))
        missing, unexpected = model.separator.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("rope.freqs")]
        if strict and (missing or unexpected):
            raise ValueError(
                "The reference weights do not fit the hparams: "
                f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}."
            )
        return model

    # ------------------------------------------------------------------ prompts
    def prompt_ids(self, prompts, batch: int) -> torch.Tensor:
        """Check prompts and turn them into ``(batch, n_prompts)`` indices.

        Args:
            prompts: one list of names per batch item (all of one length), or one list of
                names (or one name) for every item.
            batch (int): the batch size of the input.

        Returns:
            torch.Tensor: long indices into :attr:`prompt_names`.

        Raises:
            ValueError: no prompts, an empty list, lists of different lengths, a number of
                lists that is not the batch size, or unknown names (all listing the known
                prompts).
            TypeError: prompts that are not names or lists of names.
        """
        known = self.prompt_names
        hint = f"known prompts: {known}"
        if prompts is None:
            raise ValueError(
                f"{type(self).__name__} needs prompts: one list of prompt names per batch item, "
                f"e.g. [['speech', 'sfxbg']] ({hint})."
            )
        if isinstance(prompts, str):
            prompts = [prompts]
        if not isinstance(prompts, Sequence) or isinstance(prompts, bytes):
            raise TypeError(
                f"prompts must be a list of prompt names or one such list per batch item, got "
                f"{type(prompts).__name__} ({hint})."
            )
        if len(prompts) == 0:
            raise ValueError(f"The prompt list is empty: give at least one prompt ({hint}).")
        if all(isinstance(p, str) for p in prompts):
            per_item = [list(prompts)] * batch
        elif all(isinstance(p, Sequence) and not isinstance(p, str) for p in prompts):
            per_item = [list(p) for p in prompts]
            if len(per_item) != batch:
                raise ValueError(
                    f"Got {len(per_item)} prompt lists for a batch of {batch} signals: give one "
                    f"list per batch item ({hint})."
                )
        else:
            raise TypeError(
                "prompts must be a list of names (used for every batch item) or one list of "
                f"names per batch item, not a mixture of both: got {prompts!r} ({hint})."
            )
        empty = [i for i, p in enumerate(per_item) if len(p) == 0]
        if empty:
            raise ValueError(
                f"The prompt list of batch item(s) {empty} is empty: give at least one prompt "
                f"per item ({hint})."
            )
        lengths = sorted({len(p) for p in per_item})
        if len(lengths) > 1:
            counts = [len(p) for p in per_item]
            raise ValueError(
                f"Every batch item must have the same number of prompts, got {counts} prompts "
                f"per item; separate items with different counts in different calls ({hint})."
            )
        unknown = sorted({str(p) for item in per_item for p in item if p not in self._prompt_index})
        if unknown:
            raise ValueError(f"Unknown prompt name(s) {unknown}; {hint}.")
        ids = [[self._prompt_index[p] for p in item] for item in per_item]
        return torch.tensor(ids, dtype=torch.long)

    # ------------------------------------------------------------------ forward
    def forward(self, wav: torch.Tensor, prompts=None) -> torch.Tensor:
        """Separate one source per prompt.

        Args:
            wav (torch.Tensor): ``(batch, time)``, ``(time,)`` or ``(batch, 1, time)``.
            prompts: one list of prompt names per batch item (e.g. ``[["speech", "sfxbg"]]``),
                all of one length, or one list used for every item.

        Returns:
            torch.Tensor: ``(batch, n_prompts, time)`` (``(n_prompts, time)`` for a 1-D
            input), in prompt order, the input's length.

        Raises:
            ValueError: bad waveform (rank, channels, empty, NaN) or bad prompts (see
                :meth:`prompt_ids`).
        """
        shape, wav = self.prepare_input(wav)
        ids = self.prompt_ids(prompts, wav.shape[0]).to(wav.device)
        spec, std = self._analyse(wav)
        est = self._synthesise(self.separator(spec, ids), wav.shape[-1], std)
        return _shape_reconstructed(est, shape)

    def forward_wav(self, wav: torch.Tensor, prompts=None) -> torch.Tensor:
        """Asteroid's separation entry point: checks ``wav`` (also for silence), then forward."""
        validate_waveform(wav)
        return self(wav, prompts)

    # ------------------------------------------------------------------ separation API
    def separate(
        self,
        wav,
        prompts=None,
        output_dir: str | None = None,
        force_overwrite: bool = False,
        resample: bool = False,
        **kwargs,
    ):
        """Separate a tensor, an array or a file (Asteroid's ``separate`` with prompts).

        Unlike Asteroid's generic ``separate``, the estimates are not rescaled: TUSS outputs
        are in the mixture's scale, and a prompt whose source is absent should stay silent.

        Args:
            wav: ``torch.Tensor`` / ``np.ndarray`` (``(time,)``, ``(batch, time)`` or
                ``(batch, 1, time)``) or the path of an audio file.
            prompts: the prompt names (see :meth:`forward`).
            output_dir, force_overwrite, resample: for files, see :meth:`file_separate`.
            **kwargs: for files, :meth:`file_separate`'s ``chunk_seconds`` /
                ``overlap_seconds``.

        Returns:
            the estimates (same type as ``wav``, ``(batch, n_prompts, time)``), or for a file
            the list of paths written.
        """
        if isinstance(wav, (str, os.PathLike)):
            return self.file_separate(
                wav,
                prompts=prompts,
                output_dir=output_dir,
                force_overwrite=force_overwrite,
                resample=resample,
                **kwargs,
            )
        if kwargs:
            raise TypeError(f"Unexpected argument(s) {sorted(kwargs)} for separating arrays.")
        is_numpy = isinstance(wav, np.ndarray)
        tensor = torch.from_numpy(wav) if is_numpy else wav
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"Cannot separate a {type(wav).__name__}; give a tensor or a path.")
        device = tensor.device
        with torch.no_grad():
            est = self.forward_wav(tensor.to(_model_device(self)), prompts)
        est = est.to(device)
        return est.numpy() if is_numpy else est

    def separate_long(
        self,
        wav,
        prompts,
        chunk_seconds: float = 6.0,
        overlap_seconds: float | None = None,
        batch_chunks: int = 1,
    ) -> torch.Tensor:
        """Separate a long signal chunk by chunk with overlap-add (bounded memory).

        Every chunk gets the same prompts; outputs of one prompt name are re-aligned between
        chunks, outputs of different names keep their place (see
        :func:`asteroid_lir.inference.separate_chunked`). The reference trains on 6-s chunks.

        Args:
            wav: ``(time,)`` or ``(batch, time)`` waveform (tensor or array).
            prompts (list of str): the prompt names, the same for every chunk and batch item.
            chunk_seconds (float): chunk length.
            overlap_seconds (float, optional): overlap of consecutive chunks, cross-faded over
                its middle half (default: a sixth of a chunk, 1 s for 6-s chunks).
            batch_chunks (int): chunks run through the model together.

        Returns:
            torch.Tensor: ``(batch, n_prompts, time)`` float32 on the CPU.
        """
        from ..inference import separate_chunked

        names = [prompts] if isinstance(prompts, str) else list(prompts or [])
        self.prompt_ids(names, 1)  # the model's own checks and messages
        if overlap_seconds is None:
            overlap_seconds = chunk_seconds / 6
        chunk = int(round(chunk_seconds * self.sample_rate))
        overlap = int(round(overlap_seconds * self.sample_rate))
        result = separate_chunked(
            self, torch.as_tensor(wav), chunk, overlap, batch_chunks=batch_chunks, prompts=names
        )
        return result.estimates

    def file_separate(
        self,
        filename: str | os.PathLike,
        prompts=None,
        output_dir: str | os.PathLike | None = None,
        force_overwrite: bool = False,
        resample: bool = False,
        chunk_seconds: float | None = None,
        overlap_seconds: float | None = None,
    ) -> list[str]:
        """Separate an audio file and write one file per prompt.

        Outputs are ``<name>_<prompt>.wav`` next to the input (or in ``output_dir``); a prompt
        given several times gets a number (``<name>_sfx1.wav``, ``<name>_sfx2.wav``).

        Args:
            filename: the mixture (mono, or the first channel is used with a warning).
            prompts (list of str): the prompt names.
            output_dir: where to write (default: the input's folder).
            force_overwrite (bool): overwrite existing outputs (else a ``FileExistsError``).
            resample (bool): resample a file of another sample rate to the model's and the
                outputs back (else a ``ValueError`` naming both rates).
            chunk_seconds (float, optional): separate chunk-wise (:meth:`separate_long`).
            overlap_seconds (float, optional): chunk overlap (see :meth:`separate_long`).

        Returns:
            list of str: the files written, in prompt order.
        """
        import soundfile as sf

        names = [prompts] if isinstance(prompts, str) else list(prompts or [])
        self.prompt_ids(names, 1)
        path = Path(filename)
        if not path.is_file():
            raise FileNotFoundError(f"No audio file at '{path}'.")
        out_dir = Path(output_dir) if output_dir is not None else path.parent
        out_paths = [str(out_dir / f"{path.stem}_{tag}.wav") for tag in output_tags(names)]
        existing = [p for p in out_paths if os.path.exists(p)]
        if existing and not force_overwrite:
            raise FileExistsError(
                f"Output file(s) {existing} exist; pass force_overwrite=True to overwrite them."
            )
        try:
            audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except RuntimeError as err:
            raise ValueError(f"Cannot read '{path}' as audio: {err}") from err
        if audio.shape[1] > 1:
            import warnings

            warnings.warn(
                f"'{path}' has {audio.shape[1]} channels; separating the first one only.",
                UserWarning,
                stacklevel=2,
            )
        wav = torch.from_numpy(np.ascontiguousarray(audio[:, 0]))
        model_rate = int(self.sample_rate)
        if rate != model_rate:
            if not resample:
                raise ValueError(
                    f"'{path}' is sampled at {rate} Hz but the model works at {model_rate} Hz; "
                    "pass resample=True to resample it."
                )
            wav = _resample(wav, rate, model_rate)
        if chunk_seconds is not None:
            est = self.separate_long(wav, names, chunk_seconds, overlap_seconds)[0]
        else:
            est = self.separate(wav[None], prompts=names)[0]
        if rate != model_rate:
            est = _resample(est, model_rate, rate)
        out_dir.mkdir(parents=True, exist_ok=True)
        for out_path, src in zip(out_paths, est):
            sf.write(out_path, src.detach().cpu().numpy(), rate)
        return out_paths

    # ------------------------------------------------------------------ Asteroid API
    def get_model_args(self) -> dict:
        """Arguments needed to re-instantiate the model."""
        sep = self.separator.get_config()
        sep.pop("sample_rate")
        return {**sep, **self._stft_args()}


class BSLocoformerNet(_TUSSFrontEnd):
    """The unconditional baseline of TUSS: band encoder, TF-Locoformer stacks, ``n_src`` outputs.

    The TUSS slides compare TUSS with this model ("unconditional", the reference's
    ``BSLocoformerStack``): the same encoder, blocks and decoder, no prompts and a fixed number
    of outputs (4 in the reference's unified training, with zero references for absent sources
    and permutation-invariant training). Same STFT front end as :class:`TUSSNet`.

    Args:
        n_src (int): number of outputs.
        n_first_blocks, first_block, n_second_blocks, second_block: the two stacks (the
            defaults are the reference's ``conventional.medium``: TUSS medium's cross-prompt and
            TSE settings).
        Others: as :class:`TUSSNet`.

    References:
        [1] K. Saijo et al., "Task-aware unified source separation", ICASSP 2025.
    """

    def __init__(
        self,
        n_src: int = 4,
        emb_dim: int = 64,
        num_groups: int = 8,
        n_heads: int = 4,
        n_first_blocks: int = 4,
        first_block: Mapping | None = None,
        n_second_blocks: int = 2,
        second_block: Mapping | None = None,
        encoder: str = "band_split",
        band_config="bs_roformer",
        n_bands: int | None = None,
        encoder_kwargs: Mapping | None = None,
        decoder_hidden: int | None = None,
        tf_order: str = "ft",
        norm_type: str = "rmsgroupnorm",
        dropout: float = 0.0,
        eps: float = 1e-5,
        n_fft: int | None = None,
        hop_length: int | None = None,
        win_length: int | None = None,
        window: str = "sqrt_hann",
        normalize_variance: bool = True,
        sample_rate: float = 48000,
    ):
        super().__init__(sample_rate, n_fft, hop_length, win_length, window, normalize_variance)
        self.separator = UnconditionalSeparator(
            n_src=n_src,
            emb_dim=emb_dim,
            num_groups=num_groups,
            n_heads=n_heads,
            n_first_blocks=n_first_blocks,
            first_block=first_block if first_block is not None else _MEDIUM["cross_prompt_block"],
            n_second_blocks=n_second_blocks,
            second_block=second_block if second_block is not None else _MEDIUM["tse_block"],
            sample_rate=sample_rate,
            n_fft=self.n_fft,
            encoder=encoder,
            band_config=band_config,
            n_bands=n_bands,
            encoder_kwargs=encoder_kwargs,
            decoder_hidden=decoder_hidden,
            tf_order=tf_order,
            norm_type=norm_type,
            dropout=dropout,
            eps=eps,
        )

    @property
    def n_src(self) -> int:
        return self.separator.n_src

    @classmethod
    def from_preset(cls, name: str, n_src: int = 4, **kwargs) -> BSLocoformerNet:
        """The unconditional counterpart of a :data:`TUSS_PRESETS` model (same stacks).

        Args:
            name (str): a TUSS preset name.
            n_src (int): number of outputs.
            **kwargs: overrides of constructor arguments.

        Returns:
            BSLocoformerNet: a freshly initialised model.
        """
        args = preset_args(name)
        args.pop("prompt_names", None)
        args.pop("use_sos_token", None)
        args["n_first_blocks"] = args.pop("n_cross_prompt_blocks")
        args["first_block"] = args.pop("cross_prompt_block")
        args["n_second_blocks"] = args.pop("n_tse_blocks")
        args["second_block"] = args.pop("tse_block")
        args.update(kwargs)
        return cls(n_src=n_src, **args)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Separate ``n_src`` sources.

        Args:
            wav (torch.Tensor): ``(batch, time)``, ``(time,)`` or ``(batch, 1, time)``.

        Returns:
            torch.Tensor: ``(batch, n_src, time)`` (``(n_src, time)`` for a 1-D input).
        """
        shape, wav = self.prepare_input(wav)
        spec, std = self._analyse(wav)
        est = self._synthesise(self.separator(spec), wav.shape[-1], std)
        return _shape_reconstructed(est, shape)

    def get_model_args(self) -> dict:
        """Arguments needed to re-instantiate the model."""
        sep = self.separator.get_config()
        sep.pop("sample_rate")
        return {**sep, **self._stft_args()}


# ---------------------------------------------------------------------- helpers
def preset_args(name: str, **kwargs) -> dict:
    """Constructor arguments of a :data:`TUSS_PRESETS` model, with overrides.

    Raises:
        ValueError: for an unknown preset name.
    """
    key = str(name).lower()
    if key not in TUSS_PRESETS:
        raise ValueError(f"Unknown TUSS preset {name!r}; choose from {list(TUSS_PRESETS)}.")
    args = copy.deepcopy(TUSS_PRESETS[key])
    args.update(kwargs)
    return args


def output_tags(prompts: Sequence[str]) -> list[str]:
    """File tags of the outputs: the prompt name, numbered from 1 when it repeats."""
    counts = {p: prompts.count(p) for p in prompts}
    seen: dict[str, int] = {}
    tags = []
    for p in prompts:
        seen[p] = seen.get(p, 0) + 1
        tags.append(p if counts[p] == 1 else f"{p}{seen[p]}")
    return tags


def _model_device(model: torch.nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _resample(wav: torch.Tensor, orig: int, target: int) -> torch.Tensor:
    from julius import ResampleFrac

    return ResampleFrac(int(orig), int(target))(wav.float())


def _load_state(state_dict_or_path) -> dict:
    if isinstance(state_dict_or_path, (str, os.PathLike)):
        path = os.fspath(state_dict_or_path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No checkpoint file at '{path}'.")
        state = torch.load(path, map_location="cpu", weights_only=True)
    else:
        state = state_dict_or_path
    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ValueError(f"Expected a state dict, got {type(state).__name__}.")
    return dict(state)


def merl_state_dict(state: Mapping) -> dict:
    """The reference's TUSS weights renamed for :class:`TUSSSeparator`.

    Strips the Lightning (``model.``) and wrapper (``separator.``) prefixes and moves the
    band-split module's weights to ``encoder.`` / ``decoder.``.

    Args:
        state: a state dict of the reference's ``TussModel`` (any of the prefixes).

    Returns:
        dict: a state dict for ``TUSSNet.separator``.
    """
    from ..filterbanks import tuss_band_split_key_map

    key_map = tuss_band_split_key_map()
    out = {}
    for key, value in state.items():
        for prefix in ("model.", "separator."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        for old, new in key_map.items():
            if key.startswith(old):
                key = new + key[len(old) :]
        out[key] = value
    return out


def _ffn_settings(ffn_config, where: str) -> tuple[int, int, int]:
    confs = [dict(c.get("conf", c)) for c in ffn_config]
    if not confs or len(confs) > 2:
        raise ValueError(f"{where}: expected one or two FFN configurations, got {len(confs)}.")
    if len(confs) != 2:
        raise ValueError(f"{where}: only Macaron blocks (two FFNs) are supported, got one.")
    keys = [
        (c.get("dim_inner"), c.get("conv1d_kernel", 4), c.get("conv1d_shift", 1)) for c in confs
    ]
    if keys[0] != keys[1]:
        raise ValueError(
            f"{where}: the two FFNs of a path must share their settings here, got {keys}."
        )
    hidden, kernel, shift = keys[0]
    if hidden is None:
        raise ValueError(f"{where}: dim_inner is required.")
    return int(hidden), int(kernel), int(shift)


def _merl_block(conf: Mapping, where: str) -> tuple[dict, dict]:
    f_hidden, f_kernel, f_shift = _ffn_settings(conf["freq_ffn_config"], f"{where}.freq")
    t_hidden, t_kernel, t_shift = _ffn_settings(conf["frame_ffn_config"], f"{where}.frame")
    if f_shift != t_shift:
        raise ValueError(f"{where}: the frequency and time FFN strides must be equal here.")
    block = dict(
        attention_dim=int(conf.get("attention_dim", 128)),
        freq_ffn_hidden_dim=f_hidden,
        freq_conv1d_kernel=f_kernel,
        time_ffn_hidden_dim=t_hidden,
        time_conv1d_kernel=t_kernel,
        conv1d_shift=f_shift,
    )
    common = dict(
        emb_dim=int(conf.get("emb_dim", 128)),
        num_groups=int(conf.get("num_groups", 4)),
        n_heads=int(conf.get("n_heads", 4)),
        tf_order=str(conf.get("tf_order", "ft")),
        dropout=float(conf.get("dropout", 0.0)),
    )
    return block, common


def merl_model_args(hparams) -> dict:
    """``TUSSNet`` arguments of a reference run's hyper-parameters.

    Args:
        hparams: path of ``hparams.yaml``, its dict, or its ``model_conf`` dict.

    Returns:
        dict: constructor arguments (STFT from ``encoder_conf`` when present).

    Raises:
        ValueError: settings the model cannot express.
    """
    if isinstance(hparams, (str, os.PathLike)):
        import yaml

        path = os.fspath(hparams)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No hparams file at '{path}'.")
        with open(path) as handle:
            hparams = yaml.safe_load(handle)
    hparams = dict(hparams)
    model_conf = dict(hparams.get("model_conf", hparams))
    if hparams.get("model_name", "tuss") != "tuss":
        raise ValueError(f"Not a TUSS run: model_name is {hparams.get('model_name')!r}.")
    if int(model_conf.get("prompt_size", 1)) != 1:
        raise ValueError("Only prompt_size 1 is supported (as every released TUSS model).")
    cross, c_common = _merl_block(model_conf["conf_cross_prompt_module"], "cross_prompt")
    tse, t_common = _merl_block(model_conf["conf_cond_tse_module"], "cond_tse")
    for key in ("emb_dim", "num_groups", "n_heads", "tf_order", "dropout"):
        if c_common[key] != t_common[key]:
            raise ValueError(
                f"The cross-prompt and TSE modules must share {key} here, got "
                f"{c_common[key]!r} and {t_common[key]!r}."
            )
    sample_rate = float(model_conf.get("sample_rate", 48000))
    args = dict(
        prompt_names=list(model_conf["prompts"]),
        **c_common,
        n_cross_prompt_blocks=int(model_conf.get("nblocks_cross_prompt_module", 4)),
        cross_prompt_block=cross,
        n_tse_blocks=int(model_conf.get("nblocks_cond_tse_module", 2)),
        tse_block=tse,
        encoder="band_split",
        band_config="bs_roformer",
        use_sos_token=bool(model_conf.get("use_sos_token", True)),
        eps=float(model_conf.get("eps", 1e-5)),
        sample_rate=sample_rate,
        n_fft=int(model_conf.get("stft_size", 2048)),
    )
    enc = hparams.get("encoder_conf")
    if enc is not None:
        if hparams.get("encoder_name", "stft") != "stft":
            raise ValueError(f"Only the STFT encoder is supported, got {hparams['encoder_name']}.")
        if enc.get("normalize") not in (None, "none"):
            raise ValueError(f"Only an unnormalised STFT is supported, got {enc['normalize']!r}.")
        if int(enc.get("fft_size", args["n_fft"])) != args["n_fft"]:
            raise ValueError("encoder_conf.fft_size differs from model_conf.stft_size.")
        args.update(
            hop_length=int(enc["hop_length"]),
            win_length=int(enc.get("window_length", args["n_fft"])),
            window=str(enc.get("window_type", "sqrt_hann")),
        )
    else:
        args["hop_length"] = args["n_fft"] // 4
    args["normalize_variance"] = bool(hparams.get("variance_normalization", True))
    return args
