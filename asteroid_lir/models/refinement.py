"""Forward paths of every model built on a :class:`~asteroid_lir.masknn.RefinementCore`.

A model plugs its stem and heads into the core by defining four things; every forward path
(plain, anytime, frozen-prefix block ends, gated), progressive training's parameter split and
:func:`export_prefix` then come from :class:`RefinementModelMixin`:

- ``refiner_name``: the attribute holding the core (``"masker"`` for Sudo rm -rf);
- ``encode(wav[, *inputs]) -> (ctx, z0)``: input checks, encoder and the latent ``z_0``; ``ctx``
  is whatever ``decode`` needs besides the latent (encoder output, lengths, shapes). A model with
  inputs besides the waveform (TUSS: the prompts) takes them here and names them in its own
  ``forward``/``forward_steps``/... signatures, which call the ``run_*`` methods with all inputs;
- ``decode(ctx, z, head_idx)``: the estimates of head ``head_idx``, shaped like ``model(wav)``;
- ``stem_modules()`` and ``head_modules(head_idx)``: the modules before the first block and those
  of one head, which with the core's blocks partition the parameters (by default the core's own
  ``stem_modules()`` / ``head_modules(head_idx)``: a model whose stem and heads all live in its
  core defines neither).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["RefinementModelMixin", "export_prefix"]


class RefinementModelMixin:
    """Plain, anytime, frozen-prefix and gated forward passes through ``self.refiner``."""

    #: The attribute that holds the refinement core (Asteroid's ``masker``, or a ``separator``).
    refiner_name = "separator"

    # ------------------------------------------------------------------ structure
    @property
    def refiner(self) -> nn.Module:
        """The refinement core."""
        return getattr(self, self.refiner_name)

    @property
    def n_src(self) -> int:
        """Number of estimated sources."""
        return self.refiner.n_src

    @property
    def n_blocks(self) -> int:
        """Number of distinct blocks."""
        return self.refiner.n_blocks

    @property
    def n_steps(self) -> int:
        """Number of refinement steps of the full model (``sum(n_iters)``)."""
        return self.refiner.n_steps

    def stem_modules(self) -> list[nn.Module]:
        """The modules before the first block (default: the core's ``stem_modules()``)."""
        return self.refiner.stem_modules()

    def head_modules(self, head_idx: int) -> list[nn.Module]:
        """The modules of head ``head_idx`` (default: the core's ``head_modules``)."""
        return self.refiner.head_modules(head_idx)

    def check_heads_per_block(self) -> None:
        """Raise unless every block has its own head (progressive and multi-head training)."""
        if self.refiner.n_blocks > 1 and not self.refiner.head_per_block:
            raise ValueError(
                f"The model has {self.refiner.n_blocks} blocks but one head: build it with "
                "head_per_block=True, so that every block has its own head."
            )

    def step_modules(self, step: int) -> list[nn.Module]:
        """Modules trained in progressive step ``step`` (1-based): block ``step`` and its head,
        and for step 1 also the stem. Every parameter belongs to exactly one step."""
        self.check_heads_per_block()
        idx = self.refiner.check_block(step) - 1
        modules = [self.refiner.blocks[idx], *self.head_modules(idx)]
        return [*self.stem_modules(), *modules] if idx == 0 else modules

    # ------------------------------------------------------------------ forward passes
    # Each public pass takes the waveform (and a prompt model its prompts, which it names in its
    # own signature) and calls the ``run_*`` method of the same name with ``inputs``, the tuple
    # ``encode`` takes: one implementation of every pass for every family.
    def forward(self, wav: torch.Tensor, n_steps: int | None = None) -> torch.Tensor:
        """Separate ``wav``.

        Args:
            wav (torch.Tensor): waveform ``(time,)``, ``(batch, time)`` or ``(batch, 1, time)``.
            n_steps (int, optional): run only the first ``n_steps`` refinement steps (anytime
                inference; a gated model takes exactly that many). Default: all, or the gate's.

        Returns:
            torch.Tensor: ``(batch, n_src, time)``, or ``(n_src, time)`` for a 1-D input.
        """
        return self.run_forward((wav,), n_steps)

    def forward_steps(self, wav: torch.Tensor, n_steps: int | None = None) -> list[torch.Tensor]:
        """Estimates after each refinement step (ungated), computed in one pass.

        Args:
            wav (torch.Tensor): waveform as for :meth:`forward`.
            n_steps (int, optional): stop after this many steps (default: all).

        Returns:
            list of torch.Tensor: one estimate per step, each shaped like ``model(wav)``; the
            last one equals ``model(wav, n_steps)`` of the ungated model.
        """
        return self.run_steps((wav,), n_steps)

    def forward_block_ends(
        self, wav: torch.Tensor, last_block: int | None = None, grad_from: int = 1
    ) -> list[torch.Tensor]:
        """Estimates of the heads of blocks ``grad_from..last_block``, each after its block's
        iterations. The stem and the blocks before ``grad_from`` run without autograd (the
        frozen prefix of progressive training: no graph, no stored activations).

        Args:
            wav (torch.Tensor): waveform as for :meth:`forward`.
            last_block (int, optional): last block to run (1-based, default: all).
            grad_from (int): first block (1-based) computed with autograd and decoded.

        Returns:
            list of torch.Tensor: estimates shaped like ``model(wav)``.
        """
        return self.run_block_ends((wav,), last_block, grad_from)

    def forward_with_steps(
        self,
        wav: torch.Tensor,
        force_steps: int | torch.Tensor | None = None,
        early_exit: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Separate ``wav`` with the gate and say how many steps each sample used.

        Args:
            wav (torch.Tensor): waveform ``(time,)``, ``(batch, time)`` or ``(batch, 1, time)``.
            force_steps (int or torch.Tensor, optional): take exactly this many steps, for all
                samples (int) or per sample (``(batch,)``), instead of following the gate.
            early_exit (bool): in eval mode, drop finished samples from the batch (``False``:
                compute all steps and select, the path a trace records).

        Returns:
            tuple: the estimates, shaped like ``model(wav)``, and the steps ``(batch,)``: in eval
            mode the steps taken (``torch.long``), in training mode the differentiable ``C_hat``.
        """
        return self.run_with_steps((wav,), force_steps, early_exit)

    def gate_margin_logits(self, *inputs) -> torch.Tensor:
        """The gate's ``process - exit`` logits before each decision, every step taken
        (:meth:`RefinementCore.margin_logits
        <asteroid_lir.masknn.refinement.RefinementCore.margin_logits>`).

        Args:
            *inputs: what :meth:`encode` takes (the waveform; a prompted model's prompts).

        Returns:
            torch.Tensor: ``(batch, n_decisions)``.
        """
        return self.refiner.margin_logits(self.encode(*inputs)[1])

    def run_forward(self, inputs: tuple, n_steps: int | None = None) -> torch.Tensor:
        """:meth:`forward` of the model inputs ``inputs`` (what :meth:`encode` takes)."""
        ctx, z = self.encode(*inputs)
        head_idx, z = self.refiner.refine_to_head(z, n_steps)
        return self.decode(ctx, z, head_idx)

    def run_steps(self, inputs: tuple, n_steps: int | None = None) -> list[torch.Tensor]:
        """:meth:`forward_steps` of the model inputs ``inputs``."""
        ctx, z = self.encode(*inputs)
        return [
            self.decode(ctx, z, self.refiner.head_index(b))
            for b, z in self.refiner.iter_steps(z, n_steps)
        ]

    def run_block_ends(
        self, inputs: tuple, last_block: int | None = None, grad_from: int = 1
    ) -> list[torch.Tensor]:
        """:meth:`forward_block_ends` of the model inputs ``inputs``."""
        self.check_heads_per_block()
        with torch.set_grad_enabled(torch.is_grad_enabled() and grad_from == 1):
            ctx, z = self.encode(*inputs)
        ends = self.refiner.iter_block_ends(z, last_block, grad_from)
        return [self.decode(ctx, z, self.refiner.head_index(b)) for b, z in ends]

    def run_with_steps(
        self,
        inputs: tuple,
        force_steps: int | torch.Tensor | None = None,
        early_exit: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward_with_steps` of the model inputs ``inputs``; the steps are shaped by
        :meth:`sample_steps` (a tensor ``force_steps`` of that shape is accepted too)."""
        ctx, z = self.encode(*inputs)
        if isinstance(force_steps, torch.Tensor) and force_steps.ndim > 1:
            force_steps = force_steps.reshape(-1)  # e.g. (batch, n_prompts): one per sample
        z, steps = self.refiner.run_gated(z, force_steps, early_exit)
        return self.decode(ctx, z, 0), self.sample_steps(ctx, steps)

    def sample_steps(self, ctx, steps: torch.Tensor) -> torch.Tensor:
        """The steps of the refined samples ``(n_samples,)`` in the layout a model reports them:
        one per input here; a model that refines several samples per input (TUSS: one per
        prompt) reshapes them."""
        return steps

    # ------------------------------------------------------------------ gating and export
    def with_gate(
        self, n_iters: int | Sequence[int] | None = None, model_cls: type | None = None, **gate
    ) -> RefinementModelMixin:
        """A gated copy of this (pre-trained, ungated) model: every weight copied, gate fresh.

        The paper's recipe (Sec. 2.3): pre-train the network without the gate, then train both
        jointly (:class:`~asteroid_lir.engine.gated.GatedSystem`). Works for every family.

        Args:
            n_iters (int or list of int, optional): the gated model's iterations (default: this
                model's).
            model_cls (type, optional): the class of the copy (default: this model's class).
            **gate: ``gate_kernel_size`` (required), ``min_steps``, ``gumbel_tau``,
                ``exit_is_final``.

        Returns:
            the gated model, in this model's training mode.

        Raises:
            ValueError: a model that is gated already, has one head per block, or no gate size.
        """
        if self.refiner.gated:
            raise ValueError(f"This {type(self).__name__} is gated already.")
        if self.refiner.n_blocks > 1 and self.refiner.head_per_block:
            raise ValueError(
                "A gated model has one head: gate a model with head_per_block=False (or export "
                "a prefix of the progressive model first, export_prefix)."
            )
        if gate.get("gate_kernel_size") is None:
            raise ValueError("with_gate needs gate_kernel_size (frames spanned by the gate).")
        args = {**self.get_model_args(), **gate}
        if n_iters is not None:
            args["n_iters"] = n_iters
        model_cls = type(self) if model_cls is None else model_cls
        new = model_cls(**model_cls.gated_args(args))
        missing, unexpected = new.load_state_dict(self.state_dict(), strict=False)
        not_gate = [k for k in missing if ".gate." not in f".{k}"]
        if unexpected or not_gate:
            raise RuntimeError(
                f"State dicts do not match: missing {not_gate}, unexpected {unexpected}."
            )
        return new.train(self.training)

    @staticmethod
    def gated_args(args: dict) -> dict:
        """Constructor arguments of a gated model from ``with_gate``'s (overridden by classes
        whose constructor differs)."""
        return args

    def to_torchscript(self, *example_inputs: torch.Tensor) -> torch.jit.ScriptModule:
        """A TorchScript module ``wav -> (estimates, steps)`` of a gated model, made by tracing.

        A trace cannot keep the data-dependent batch shrinking of the early exit, so the traced
        module runs every step for every sample and the (deterministic) gate selects the
        result with ``torch.where``: outputs and step counts equal eager inference exactly,
        because an exit is final; the compute saving is lost. (``torch.jit.trace(model, wav)``
        records the same branch-free path for the estimates alone.)

        Args:
            *example_inputs (torch.Tensor): the inputs used for tracing: a waveform
                ``(batch, time)`` (and for a prompt model the prompt indices,
                ``model.prompt_ids(prompts, batch)``).

        Returns:
            torch.jit.ScriptModule: call it as ``estimates, steps = module(wav[, prompt_ids])``.
        """
        if not self.refiner.gated:
            raise ValueError("to_torchscript exports the steps of a gated model; trace others.")
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                export = _SelectedStepsExport(self)
                return torch.jit.trace(export, example_inputs, check_trace=False)
        finally:
            self.train(was_training)


class _SelectedStepsExport(nn.Module):
    # Traceable wrapper: eval-mode gating without batch shrinking (see to_torchscript).
    def __init__(self, model: RefinementModelMixin):
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.run_with_steps(inputs, early_exit=False)


def export_prefix(model: RefinementModelMixin, n_blocks: int) -> RefinementModelMixin:
    """Standalone model made of the first ``n_blocks`` blocks and head ``n_blocks``.

    The result has the class of ``model``, ``head_per_block=False`` and the first ``n_blocks``
    iteration counts: its output equals ``model(wav, n_steps=sum(n_iters[:n_blocks]))``. Its
    weights are copies (independent of ``model``) and it round-trips through ``serialize()``.

    Args:
        model: a model with one head per block (progressively trained).
        n_blocks (int): number of leading blocks to keep (1..``model.n_blocks``).

    Returns:
        the deployable prefix model, in the training mode of ``model``.
    """
    model.check_heads_per_block()
    n_blocks = model.refiner.check_block(n_blocks)
    args = model.get_model_args()
    n_iters = list(model.refiner.n_iters[:n_blocks])
    args.update(n_blocks=n_blocks, n_iters=n_iters, head_per_block=False)
    prefix = type(model)(**args)
    pairs = [
        *zip(model.stem_modules(), prefix.stem_modules()),
        *zip(model.refiner.blocks[:n_blocks], prefix.refiner.blocks),
        *zip(model.head_modules(n_blocks - 1), prefix.head_modules(0)),
    ]
    for src, dst in pairs:
        dst.load_state_dict(src.state_dict())
    return prefix.train(model.training)
