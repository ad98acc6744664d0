"""What the recipes' stage scripts share: their entry point and the experiment folder's state."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import yaml

from .config import dump_config
from .trainer import DONE_FILE

__all__ = ["StageError", "check_experiment", "run_stage"]


class StageError(RuntimeError):
    """A stage cannot go on; the message says why and what to do."""


def run_stage(main: Callable[[], int]) -> None:
    """Run a stage's ``main`` and exit with its code; expected errors print one line (and the
    cause's traceback when the cause is a bug rather than bad input), not a trace."""
    from ..engine.procedures import TrainingError
    from .evaluation import EvaluationError

    try:
        sys.exit(main())
    except (FileNotFoundError, ValueError, StageError, TrainingError, EvaluationError) as err:
        cause = err.__cause__
        if cause is not None and not isinstance(cause, (ValueError, OSError)):
            traceback.print_exception(cause)
        print(f"ERROR: {err}", file=sys.stderr)
        sys.exit(1)


def _differences(old, new, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new), key=str)
        return [d for k in keys for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


#: The budget: what may change when a training is continued (the rest defines the experiment).
BUDGET_KEYS = ("training.epochs", "training.max_time_minutes")
#: Settings of the later stages: they may change without touching the trained model.
EVALUATION_KEYS = ("evaluation",)


def check_experiment(exp_dir: Path, conf: dict) -> str:
    """The state of an experiment folder for the configuration ``conf`` as it will be trained.

    Returns ``"new"`` (nothing there; ``conf.yml`` is written), ``"resume"`` (an unfinished
    training of the same configuration, or one whose budget, :data:`BUDGET_KEYS`, changed: it
    continues from its last checkpoint and ``conf.yml`` records the new budget) or ``"done"``
    (trained with the same configuration: nothing to do). Changed evaluation settings
    (:data:`EVALUATION_KEYS`) are recorded in ``conf.yml`` and retrain nothing.

    Raises:
        StageError: the folder holds an experiment of another configuration (the message lists
            the differences): a changed configuration or override is never silently skipped,
            nor resumed from the other one's checkpoints.
    """
    conf_path = exp_dir / "conf.yml"
    if conf_path.is_file():
        old = yaml.safe_load(conf_path.read_text()) or {}
        changes = _differences(old, conf)
        later = [c for c in changes if c.startswith(tuple(f"{k}." for k in EVALUATION_KEYS))]
        if later:
            print(f"[stage 2] New evaluation settings for {exp_dir}: {'; '.join(later)}")
            conf_path.write_text(dump_config(conf))
            changes = [c for c in changes if c not in later]
        if any(not c.startswith(tuple(f"{k}:" for k in BUDGET_KEYS)) for c in changes):
            raise StageError(
                f"{exp_dir} holds an experiment of another configuration "
                f"({'; '.join(changes[:8])}). Use another --tag, or delete {exp_dir} to train "
                "this one there."
            )
        if changes:
            print(f"[stage 2] New budget for {exp_dir}: {'; '.join(changes)}")
            conf_path.write_text(dump_config(conf))
            return "resume"
        if (exp_dir / DONE_FILE).is_file() and (exp_dir / "best_model.pth").is_file():
            return "done"
        return "resume"
    exp_dir.mkdir(parents=True, exist_ok=True)
    conf_path.write_text(dump_config(conf))
    return "new"
