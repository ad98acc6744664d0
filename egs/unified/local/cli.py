"""Entry-point wrapper of the recipe's scripts: expected errors print one line, not a trace."""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["run_cli"]


def run_cli(main: Callable[[], int]) -> None:
    """Run ``main`` and exit with its code; bad input or missing files print ``ERROR: ...``."""
    try:
        sys.exit(main())
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        sys.exit(1)
