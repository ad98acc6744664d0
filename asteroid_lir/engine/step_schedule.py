"""The epoch schedule of progressive training: which step (block) each epoch trains.

Progressive training (paper Sec. 2.2) runs its N steps in one ``Trainer.fit``; a step is a
range of epochs. The schedule is a list ``step_epochs`` of N epoch counts, the last one
``None`` when that step runs until the trainer stops. These functions are the arithmetic on it,
shared by :class:`~asteroid_lir.engine.progressive.ProgressiveSystem` (which step to enter) and
the training procedure (which steps a stopped run completed).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "completed_steps",
    "last_epoch_of_step",
    "resolve_step_epochs",
    "split_epochs",
    "step_for_epoch",
]


def split_epochs(total_epochs: int, n_steps: int) -> list[int]:
    """Epochs of each progressive step: ``total_epochs // n_steps`` each, the last step also
    gets the remainder (200 epochs over 3 steps: 66, 66, 68).

    Args:
        total_epochs (int): epochs of the whole training.
        n_steps (int): number of steps (blocks).

    Returns:
        list of int: ``n_steps`` positive epoch counts summing to ``total_epochs``.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}.")
    if total_epochs < n_steps:
        raise ValueError(
            f"total_epochs={total_epochs} cannot be split between {n_steps} steps "
            "(every step needs at least one epoch)."
        )
    per_step = total_epochs // n_steps
    return [per_step] * (n_steps - 1) + [total_epochs - per_step * (n_steps - 1)]


def resolve_step_epochs(
    n_steps: int,
    total_epochs: int | None = None,
    epochs_per_step: int | Sequence[int] | None = None,
) -> list[int | None]:
    """The schedule from exactly one of ``total_epochs`` / ``epochs_per_step``.

    Args:
        n_steps (int): number of steps (blocks).
        total_epochs (int, optional): epochs of the whole training, split with
            :func:`split_epochs`.
        epochs_per_step (int or sequence of int, optional): an int: the epochs of every step
            but the last, which runs until the trainer stops (``None``); a sequence: one
            positive count per step.

    Returns:
        list: ``n_steps`` epoch counts (the last may be ``None``).
    """
    if (total_epochs is None) == (epochs_per_step is None):
        raise ValueError("Give exactly one of total_epochs and epochs_per_step.")
    if total_epochs is not None:
        return split_epochs(int(total_epochs), n_steps)
    if isinstance(epochs_per_step, int):
        if epochs_per_step < 1:
            raise ValueError(f"epochs_per_step must be >= 1, got {epochs_per_step}.")
        return [epochs_per_step] * (n_steps - 1) + [None]
    step_epochs = [int(e) for e in epochs_per_step]
    if len(step_epochs) != n_steps or min(step_epochs) < 1:
        raise ValueError(
            f"epochs_per_step needs {n_steps} positive values (one per block), "
            f"got {list(epochs_per_step)}."
        )
    return step_epochs


def step_for_epoch(step_epochs: Sequence[int | None], epoch: int) -> int:
    """The step (1-based) that trains during epoch ``epoch`` (0-based)."""
    end = 0
    for step, n in enumerate(step_epochs[:-1], start=1):
        end += n
        if epoch < end:
            return step
    return len(step_epochs)


def last_epoch_of_step(step_epochs: Sequence[int | None], step: int) -> int | None:
    """0-based index of the last epoch of ``step`` (``None``: open-ended last step)."""
    epochs = step_epochs[:step]
    return None if epochs[-1] is None else sum(epochs) - 1


def completed_steps(step_epochs: list, epochs_done: int, planned_epochs: int) -> int:
    """Progressive steps that ran all their epochs.

    Args:
        step_epochs: epochs of each step (``ProgressiveSystem.step_epochs``; ``None`` for an
            open-ended last step, complete when the training ran its planned epochs).
        epochs_done: epochs the trainer finished.
        planned_epochs: the trainer's ``max_epochs``.

    Returns:
        int: the number of leading steps completed (0 to ``len(step_epochs)``).
    """
    end = 0
    for done, n_epochs in enumerate(step_epochs):
        if n_epochs is None:
            return done + int(epochs_done >= planned_epochs and epochs_done > end)
        end += n_epochs
        if epochs_done < end:
            return done
    return len(step_epochs)
