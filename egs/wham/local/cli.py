"""Entry-point wrapper shared by the recipe's Python scripts."""

from __future__ import annotations

import sys
from collections.abc import Callable


def run_cli(main: Callable[[], int]) -> None:
    """Run ``main`` and exit with its code; expected input errors print one line, not a trace."""
    try:
        sys.exit(main())
    except (FileNotFoundError, ValueError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        sys.exit(1)
