"""TUSS (task-aware unified source separation) and its unconditional baseline as Asteroid models.

``TUSSNet``: ``model(wav, prompts)`` separates one source per prompt name, e.g.
``model(wav, [["speech", "sfxbg"], ["speech", "sfxbg"]])`` -> ``(2, 2, time)``. Any number of
prompts, repeated prompts allowed (``["sfx", "sfx", "sfx"]`` extracts three sound events); every
item of a batch must have the same number of prompts. ``BSLocoformerNet``: the unconditional
model of the TUSS slides (same stacks, fixed number of outputs, no prompts).

Both are :class:`~asteroid_lir.models.tf_base.BaseTFModel` s with the STFT front end of the TUSS
reference (merlresearch/unified-source-separation, ``utils/audio_utils.py`` and
``nets/model_wrapper.py``): the mixture is divided by its standard deviation (+1e-8), analysed
with a square-root periodic Hann window without normalisation, zero padded by ``n_fft // 2`` on
both sides and on the right up to a whole number of hops; the estimates are synthesised with
``torch.istft`` (``center=True``), cut to the input length and multiplied back by the standard
deviation. At 48 kHz the reference uses n_fft 2048 / hop 512; by default both scale with the
sample rate (``2 * round(1024 * sr / 48000)`` and ``round(512 * sr / 48000)``: 342 / 85 at
8 kHz, 682 / 171 at 16 kHz). Separation of arrays and files, long ones chunk-wise with the same
prompts for every chunk, is ``model.separate(wav, prompts=[...], chunk_seconds=...)``
(:mod:`asteroid_lir.inference`). The reference's checkpoints load with :meth:`TUSSNet.from_merl`
(:mod:`asteroid_lir.convert.merl`).

References:
    [1] K. Saijo, J. Ebbers, F. G. Germain, G. Wichern and J. Le Roux, "Task-aware unified
    source separation", ICASSP 2025.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..masknn.tuss import PROMPT_NAMES, TUSSSeparator, UnconditionalSeparator
from .presets import TUSS_PRESETS, default_stft, preset_args
from .refinement import RefinementModelMixin
from .tf_base import BaseTFModel

__all__ = ["BSLocoformerNet", "PROMPT_NAMES", "TUSS_PRESETS", "TUSSNet", "default_stft"]


class _BandTFModel(RefinementModelMixin, BaseTFModel):
    """The TUSS reference's STFT front end around a band-wise separator.

    The separator's second stack (TUSS's conditional TSE module) is a refinement core: the
    model takes the refinement arguments of every family (``n_blocks``, ``n_iters``,
    ``head_per_block``, ``gate_kernel_size``, ``min_steps``, ``gumbel_tau``, ``exit_is_final``)
    and has their forward passes (:class:`~asteroid_lir.models.refinement.RefinementModelMixin`:
    ``forward_steps``, ``n_steps``, ``forward_with_steps``, ``with_gate``, ...).

    Args:
        separator_cls (type): the separator class.
        n_fft (int, optional): FFT size (default: 2048 scaled by ``sample_rate / 48000``).
        hop_length (int, optional): hop size (default: 512 scaled likewise).
        win_length (int, optional): window length (default ``n_fft``).
        window (str): ``"sqrt_hann"`` (the reference) or a ``torch.<name>_window`` name.
        normalize_variance (bool): divide the input by its standard deviation and multiply the
            outputs by it (the reference does).
        sample_rate (float): sample rate of the model.
        decoder_hidden (int, optional): the band-split decoder's MLP size in files written
            before ``encoder_kwargs`` (now ``encoder_kwargs={"hidden": ...}``).
        **separator_args: the separator's arguments.
    """

    std_offset = 1e-8

    def __init__(
        self,
        separator_cls: type,
        *,
        n_fft: int | None = None,
        hop_length: int | None = None,
        win_length: int | None = None,
        window: str = "sqrt_hann",
        normalize_variance: bool = True,
        sample_rate: float = 48000,
        decoder_hidden: int | None = None,
        **separator_args,
    ) -> None:
        d_fft, d_hop = default_stft(sample_rate)
        n_fft = d_fft if n_fft is None else int(n_fft)
        hop_length = d_hop if hop_length is None else int(hop_length)
        stft = (n_fft, hop_length, win_length, window, normalize_variance)
        super().__init__(sample_rate, *stft, padding="zero")
        if decoder_hidden is not None:  # files written before encoder_kwargs
            kwargs = separator_args.get("encoder_kwargs") or {}
            separator_args["encoder_kwargs"] = {"hidden": decoder_hidden, **kwargs}
        self.separator = separator_cls(
            sample_rate=float(sample_rate), n_fft=n_fft, **separator_args
        )

    # ------------------------------------------------------------------ refinement interface
    def separator_inputs(self, spec: torch.Tensor, *inputs) -> tuple:
        """What the separator's ``embed`` takes besides the spectrum (none here)."""
        return inputs

    def encode(self, wav: torch.Tensor, *inputs) -> tuple[tuple, torch.Tensor]:
        """``(ctx, z_0)``: the analysed input and the latent(s) of the refined stack."""
        wav_ctx, spec = self.analyse(wav)
        z, sep_ctx = self.separator.embed(spec, *self.separator_inputs(spec, *inputs))
        return (wav_ctx, sep_ctx), z

    def decode(self, ctx: tuple, z: torch.Tensor, head_idx: int) -> torch.Tensor:
        """Waveforms ``(batch, n_out, time)`` of head ``head_idx`` for the refined latent."""
        wav_ctx, sep_ctx = ctx
        return self.synthesise(wav_ctx, self.separator.head(z, head_idx, sep_ctx))


class TUSSNet(_BandTFModel):
    """Task-aware unified source separation: one output per prompt.

    ``wav -> STFT -> band encoder -> cross-prompt module over [prompts, SOS, frames] ->
    (prompt vector * mixture feature) -> conditional TSE module -> band decoder (complex mask)
    -> iSTFT``, see :class:`~asteroid_lir.masknn.tuss.TUSSSeparator`.

    Prompts: :attr:`prompt_names` (default ``speech, sfx, sfxbg, drums, bass, vocals, other,
    musicbg``). ``model(wav, prompts)`` takes one list of names per batch item (all of one
    length), a single list used for every item, or the prompt indices as a long tensor.

    Args:
        prompt_names (sequence of str): the learnable prompts.
        **kwargs: the STFT (``n_fft``, ``hop_length``, ``win_length``, ``window``,
            ``normalize_variance``, ``sample_rate``; defaults: the reference's, scaled to the
            sample rate), and the separator's settings (``emb_dim``, ``num_groups``,
            ``n_heads``, ``n_cross_prompt_blocks``, ``cross_prompt_block``, ``n_tse_blocks``,
            ``tse_block``, ``use_sos_token``, ``tf_order``, ``norm_type``, ``dropout``,
            ``eps``) and front end (``encoder``: ``"band_split"``, the reference, or
            ``"sfc"``; ``band_config``, ``n_bands``, ``encoder_kwargs``), see
            :class:`~asteroid_lir.masknn.tuss.TUSSSeparator`; the defaults are the
            reference's ``medium`` model.

    References:
        [1] K. Saijo et al., "Task-aware unified source separation", ICASSP 2025.
    """

    def __init__(self, prompt_names: Sequence[str] = PROMPT_NAMES, **kwargs):
        super().__init__(TUSSSeparator, prompt_names=prompt_names, **kwargs)
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
        """A model computing what the TUSS reference computes (see
        :func:`asteroid_lir.convert.merl.from_merl`)."""
        from ..convert.merl import from_merl

        return from_merl(cls, state_dict_or_path, hparams, strict=strict, **kwargs)

    # ------------------------------------------------------------------ prompts
    def prompt_ids(self, prompts, batch: int) -> torch.Tensor:
        """Check prompts and turn them into ``(batch, n_prompts)`` indices.

        Args:
            prompts: one list of names per batch item (all of one length), one list of
                names (or one name) for every item, or the ``(batch, n_prompts)`` indices
                themselves (a long tensor, e.g. to trace the model).
            batch (int): the batch size of the input.

        Returns:
            torch.Tensor: long indices into :attr:`prompt_names`.

        Raises:
            ValueError: no prompts, an empty list, lists of different lengths, a number of
                lists that is not the batch size, or unknown names (all listing the known
                prompts).
            TypeError: prompts that are not names or lists of names.
        """
        hint = f"known prompts: {self.prompt_names}"
        if isinstance(prompts, torch.Tensor):
            return self._checked_ids(prompts, batch)
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
        if len({len(p) for p in per_item}) > 1:
            counts = [len(p) for p in per_item]
            raise ValueError(
                f"Every batch item must have the same number of prompts, got {counts} prompts "
                f"per item; separate items with different counts in different calls ({hint})."
            )
        # Imported here: asteroid_lir.inference imports the models (models.base), so a module
        # import either way round would be circular when the inference modules load first.
        from ..inference import check_prompts

        check_prompts(self, sorted({str(p) for item in per_item for p in item}))
        ids = [[self._prompt_index[p] for p in item] for item in per_item]
        return torch.tensor(ids, dtype=torch.long)

    def _checked_ids(self, ids: torch.Tensor, batch: int) -> torch.Tensor:
        # Prompt indices given as a tensor (what a trace records: names are not tensors).
        if (
            ids.dtype != torch.long
            or ids.ndim != 2
            or (not torch.jit.is_tracing() and ids.shape[0] != batch)
        ):
            raise ValueError(
                f"Prompt indices must be a (batch={batch}, n_prompts) long tensor, got "
                f"{tuple(ids.shape)} {ids.dtype}."
            )
        if not torch.jit.is_tracing() and (
            ids.numel() == 0 or bool((ids < 0).any() | (ids >= len(self.prompt_names)).any())
        ):
            raise ValueError(
                f"Prompt indices must lie in [0, {len(self.prompt_names)}) (one per output): "
                f"got {ids.tolist()}."
            )
        return ids

    # ------------------------------------------------------------------ separation
    def file_separate(self, filename, prompts=None, output_dir=None, **kwargs) -> list[str]:
        """:meth:`~asteroid_lir.models.base.LIRModelMixin.file_separate` with the prompts as
        second argument: one file per prompt, ``<name>_<prompt>.wav`` (a repeated prompt is
        numbered: ``<name>_sfx1.wav``, ``<name>_sfx2.wav``)."""
        return super().file_separate(filename, output_dir, prompts=prompts, **kwargs)

    def separate_long(
        self,
        wav,
        prompts,
        chunk_seconds: float = 6.0,
        overlap_seconds: float | None = None,
        batch_chunks: int = 1,
    ) -> torch.Tensor:
        """``separate(wav, prompts=..., chunk_seconds=...)`` with the reference's 6-s chunks and
        a sixth of a chunk of overlap by default: ``(batch, n_prompts, time)`` for any length
        with bounded memory (the same prompts for every chunk)."""
        if overlap_seconds is None:
            overlap_seconds = chunk_seconds / 6
        est = self.separate(
            torch.as_tensor(wav),
            prompts=prompts,
            chunk_seconds=chunk_seconds,
            overlap_seconds=overlap_seconds,
            batch_chunks=batch_chunks,
        )
        return est if est.ndim == 3 else est[None]

    # ------------------------------------------------------------------ forward
    def forward(self, wav: torch.Tensor, prompts=None, n_steps: int | None = None) -> torch.Tensor:
        """Separate one source per prompt.

        Args:
            wav (torch.Tensor): ``(batch, time)``, ``(time,)`` or ``(batch, 1, time)``.
            prompts: one list of prompt names per batch item (e.g. ``[["speech", "sfxbg"]]``),
                all of one length, or one list used for every item (or the indices,
                :meth:`prompt_ids`).
            n_steps (int, optional): run only the first ``n_steps`` steps of the conditional
                TSE module (anytime inference; a gated model takes exactly that many for every
                prompt). Default: all, or the gate's (per prompt).

        Returns:
            torch.Tensor: ``(batch, n_prompts, time)`` (``(n_prompts, time)`` for a 1-D
            input), in prompt order, the input's length.

        Raises:
            ValueError: bad waveform (rank, channels, empty, NaN) or bad prompts (see
                :meth:`prompt_ids`).
        """
        return self.run_forward((wav, prompts), n_steps)

    def forward_steps(self, wav: torch.Tensor, prompts=None, n_steps: int | None = None) -> list:
        """One estimate per step of the conditional TSE module, for every prompt (ungated;
        :meth:`~asteroid_lir.models.refinement.RefinementModelMixin.forward_steps`)."""
        return self.run_steps((wav, prompts), n_steps)

    def forward_block_ends(
        self, wav: torch.Tensor, prompts=None, last_block: int | None = None, grad_from: int = 1
    ) -> list[torch.Tensor]:
        """The heads' estimates at the TSE blocks' ends (progressive training; :meth:`~asteroid_
        lir.models.refinement.RefinementModelMixin.forward_block_ends`)."""
        return self.run_block_ends((wav, prompts), last_block, grad_from)

    def forward_with_steps(
        self,
        wav: torch.Tensor,
        prompts=None,
        force_steps: int | torch.Tensor | None = None,
        early_exit: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Separate with the gate, which decides per (item, prompt); see :meth:`~asteroid_lir.
        models.refinement.RefinementModelMixin.forward_with_steps`.

        Returns:
            tuple: the estimates, shaped like ``model(wav, prompts)``, and the steps of every
            (item, prompt), ``(batch, n_prompts)``. In eval mode with ``early_exit`` a prompt
            whose gate says stop leaves the batch: no later TSE step is computed for it.
        """
        return self.run_with_steps((wav, prompts), force_steps, early_exit)

    def separator_inputs(self, spec: torch.Tensor, *inputs) -> tuple:
        """The prompt indices (checked, on the spectrum's device)."""
        (prompts,) = inputs
        return (self.prompt_ids(prompts, spec.shape[0]).to(spec.device),)

    def sample_steps(self, ctx: tuple, steps: torch.Tensor) -> torch.Tensor:
        """Steps per (item, prompt): ``(batch, n_prompts)``."""
        return steps.reshape(ctx[1][2], -1)


class BSLocoformerNet(_BandTFModel):
    """The unconditional baseline of TUSS: band encoder, TF-Locoformer stacks, ``n_src`` outputs.

    The TUSS slides compare TUSS with this model ("unconditional", the reference's
    ``BSLocoformerStack``): the same encoder, blocks and decoder, no prompts and a fixed number
    of outputs (4 in the reference's unified training, with zero references for absent sources
    and permutation-invariant training). Same STFT front end as :class:`TUSSNet`.

    Args:
        n_src (int): number of outputs.
        **kwargs: the STFT as :class:`TUSSNet`; the two stacks (``n_first_blocks``,
            ``first_block``, ``n_second_blocks``, ``second_block``; defaults: the reference's
            ``conventional.medium``, TUSS medium's cross-prompt and TSE settings) and the
            settings shared with :class:`TUSSNet`, see
            :class:`~asteroid_lir.masknn.tuss.UnconditionalSeparator`.

    References:
        [1] K. Saijo et al., "Task-aware unified source separation", ICASSP 2025.
    """

    def __init__(self, n_src: int = 4, **kwargs):
        super().__init__(UnconditionalSeparator, n_src=n_src, **kwargs)

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
