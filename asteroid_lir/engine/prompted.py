"""Training system of prompted unified separation (TUSS) and of its unconditional baseline."""

from __future__ import annotations

from .system import LIRSystem

__all__ = ["PromptedSystem"]


class PromptedSystem(LIRSystem):
    """Trains a prompt model (``model(mix, prompts)``) or a model with fixed outputs end to end.

    :class:`~asteroid_lir.engine.system.LIRSystem` with ``prompted_batches=True``: batches are
    ``(mixtures, references, prompts)`` (e.g. ``asteroid_lir.data.unified.UnifiedMixtures``,
    which draws new mixtures every epoch and is told the epoch). The loss
    (:class:`~asteroid_lir.losses.PromptSNRLoss`) gets the prompts of a prompt model (PIT inside
    equal prompts) and ``None`` for a fixed-output model (PIT over all outputs, references padded
    with zeros). No online remixing (the mixtures are drawn anew). The gated, progressive and
    multi-head systems take ``prompted_batches=True`` the same way.

    Args:
        *args, **kwargs: those of :class:`~asteroid_lir.engine.system.LIRSystem` (``warmup_steps``
            for a linear learning-rate warm-up; ``remix_task`` is ignored).
    """

    def __init__(self, *args, **kwargs):
        kwargs.pop("remix_task", None)
        kwargs["prompted_batches"] = True
        super().__init__(*args, **kwargs)
