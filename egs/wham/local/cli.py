"""Entry-point wrapper shared by the recipe's Python scripts."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

__all__ = ["RecipeError", "run_cli"]


class RecipeError(RuntimeError):
    """A stage cannot go on; the message says why and what to do."""


def run_cli(main: Callable[[], int]) -> None:
    """Run ``main`` and exit with its code; expected errors print one line, not a trace.

    A :class:`RecipeError` caused by something other than bad input (``ValueError``,
    ``OSError``) also prints the cause's traceback, which a bug report needs.
    """
    try:
        sys.exit(main())
    except (FileNotFoundError, ValueError, RecipeError) as err:
        cause = err.__cause__
        if isinstance(err, RecipeError) and cause and not isinstance(cause, (ValueError, OSError)):
            traceback.print_exception(cause)
        print(f"ERROR: {err}", file=sys.stderr)
        sys.exit(1)
