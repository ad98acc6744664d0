"""Latent iterative refinement Sudo rm -rf with adaptive early exit (gated iterations)."""

from __future__ import annotations

import os

import torch
from torch import nn

from ..masknn.gating import GatedIterativeSuDORMRF
from .base import load_model_conf
from .lir_sudormrf import LIRSuDORMRFNet

__all__ = ["GatedLIRSuDORMRFNet"]


class GatedLIRSuDORMRFNet(LIRSuDORMRFNet):
    """Sudo rm -rf whose single iterated block is preceded by a gate (paper Sec. 2.3).

    Up to ``n_iters`` applications of one block of ``n_sub_blocks`` U-ConvBlocks; before each
    application after the first ``min_steps`` a :class:`~asteroid_lir.masknn.GatingModule`
    decides whether to take it (step semantics: :mod:`asteroid_lir.masknn.gating`). Encoder,
    mask network and decoder are those of :class:`LIRSuDORMRFNet`; the state dict is that of a
    ``LIRSuDORMRFNet(n_blocks=1)`` plus ``masker.gate.*``, so a pre-trained model initialises
    everything but the gate (:meth:`from_lir`).

    Inference (eval mode): ``model(wav)`` or ``model.separate(...)`` gives the estimates;
    :meth:`forward_with_steps` also gives the steps each sample used. Samples whose gate said
    stop leave the batch, so later steps cost less. Training mode: every sample goes through
    every step with hard straight-through Gumbel gates, and :meth:`forward_with_steps` returns
    the differentiable step count ``C_hat`` (Eq. 10) for the loss ``L_sep + lambda * C_hat``
    (:class:`asteroid_lir.engine.gated.GatedSystem`).

    Export: ``torch.jit.trace(model, wav)`` and :meth:`to_torchscript` (which also returns the
    steps) record the branch-free path, where the gate selects among all-step results: same
    outputs and step counts as eager inference on any input, no compute saving (see there why
    ``torch.jit.script`` is not used).

    Args:
        n_src, n_sub_blocks: as for :class:`LIRSuDORMRFNet`.
        n_iters (int): maximum number of refinement steps.
        gate_kernel_size (int): latent frames spanned by the gate (3200 = 4 s at 8 kHz with
            stride 10); other lengths are resampled to it (see ``GatingModule``).
        min_steps (int): steps always taken before the first gate (0: gate every step).
        gumbel_tau (float): Gumbel-softmax temperature in training.
        exit_is_final (bool): in training, a 0 gate also stops the later steps of the sample.
        **kwargs: the other arguments of :class:`LIRSuDORMRFNet` (``bn_chan``, ``n_filters``,
            ``kernel_size``, ``stride``, ``upsampling_depth``, ``mask_act``, ``sample_rate``,
            ``fb_name``, filterbank arguments); ``n_blocks=1`` and one head.

    References:
        [1] "Latent Iterative Refinement for Modular Source Separation", Sec. 2.3 and 4.3.
    """

    def __init__(
        self,
        n_src: int,
        n_sub_blocks: int = 1,
        n_iters: int = 4,
        gate_kernel_size: int = 3200,
        min_steps: int = 1,
        gumbel_tau: float = 1.0,
        exit_is_final: bool = True,
        **kwargs,
    ):
        super().__init__(n_src, n_blocks=1, n_sub_blocks=n_sub_blocks, n_iters=n_iters, **kwargs)
        # The parent builds its plain masker inline; replacing it (same layout plus the gate)
        # reuses all of the parent's encoder, decoder and shaping code.
        plain = self.masker
        self.masker = GatedIterativeSuDORMRF(
            plain.in_chan,
            n_src,
            bn_chan=plain.bn_chan,
            n_sub_blocks=n_sub_blocks,
            n_iters=n_iters,
            upsampling_depth=plain.upsampling_depth,
            mask_act=plain.mask_act,
            gate_kernel_size=gate_kernel_size,
            min_steps=min_steps,
            gumbel_tau=gumbel_tau,
            exit_is_final=exit_is_final,
        )

    # ------------------------------------------------------------------ export
    def to_torchscript(self, example_wav: torch.Tensor) -> torch.jit.ScriptModule:
        """A TorchScript module ``wav -> (estimates, steps)`` for deployment, made by tracing.

        ``torch.jit.script`` is not used: Asteroid's filterbanks and the U-ConvBlock forward
        (``nn.Module``-typed helpers) are not scriptable. A trace cannot keep the data-dependent
        batch shrinking of the early exit, so the traced module runs every step for every
        sample and the (deterministic) gate selects the result with ``torch.where``. Outputs and
        step counts equal eager inference exactly, because an exit is final; the compute saving
        of the early exit is lost. The module is traced for inputs shaped like
        ``example_wav`` (other batch sizes and lengths run, but check them against eager mode
        before relying on them).

        Args:
            example_wav (torch.Tensor): waveform ``(batch, time)`` used for tracing.

        Returns:
            torch.jit.ScriptModule: call it as ``estimates, steps = module(wav)``.
        """
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                return torch.jit.trace(_SelectedStepsExport(self), example_wav, check_trace=False)
        finally:
            self.train(was_training)

    # ------------------------------------------------------------------ Asteroid API
    @classmethod
    def from_lir(
        cls,
        model: LIRSuDORMRFNet | dict | str | os.PathLike,
        n_iters: int | None = None,
        **gate_kwargs,
    ) -> GatedLIRSuDORMRFNet:
        """Gated model initialised from a pre-trained one-block ``LIRSuDORMRFNet``.

        Encoder, block, mask network and decoder weights are copied; the gate is freshly
        initialised (paper: pre-train without the gate, then train both jointly).

        Args:
            model: a ``LIRSuDORMRFNet`` with ``n_blocks=1``, its serialized package (dict) or
                the path of a file written with ``torch.save(model.serialize(), path)``.
            n_iters (int, optional): maximum steps of the gated model (default: the
                iterations the model was trained with).
            **gate_kwargs: ``gate_kernel_size``, ``min_steps``, ``gumbel_tau``,
                ``exit_is_final``.

        Returns:
            GatedLIRSuDORMRFNet: the gated model, in training mode.

        Raises:
            TypeError: if ``model`` is not a ``LIRSuDORMRFNet`` (or its package).
            ValueError: if it has more than one distinct block.
        """
        if isinstance(model, (str, os.PathLike)):
            model = load_model_conf(model)
        if isinstance(model, dict):
            if model.get("model_name") != "LIRSuDORMRFNet":
                raise TypeError(
                    f"Expected a LIRSuDORMRFNet package, got {model.get('model_name')!r}."
                )
            model = LIRSuDORMRFNet.from_pretrained(model)
        if not isinstance(model, LIRSuDORMRFNet) or isinstance(model, GatedLIRSuDORMRFNet):
            raise TypeError(f"from_lir converts a LIRSuDORMRFNet, got {type(model).__name__}.")
        if model.n_blocks != 1:
            raise ValueError(
                f"The gated model iterates one block; the given model has n_blocks="
                f"{model.n_blocks}."
            )
        args = model.get_model_args()
        for key in ("n_blocks", "head_per_block"):
            args.pop(key)
        args["n_iters"] = int(args["n_iters"][0]) if n_iters is None else int(n_iters)
        new = cls(**args, **gate_kwargs)
        missing, unexpected = new.load_state_dict(model.state_dict(), strict=False)
        not_gate = [k for k in missing if not k.startswith("masker.gate.")]
        if unexpected or not_gate:
            raise RuntimeError(
                f"State dicts do not match: missing {not_gate}, unexpected {unexpected}."
            )
        return new


class _SelectedStepsExport(nn.Module):
    # Traceable wrapper: eval-mode gating without batch shrinking (see to_torchscript).
    def __init__(self, model: GatedLIRSuDORMRFNet):
        super().__init__()
        self.model = model

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.forward_with_steps(wav, early_exit=False)
