"""asteroid_lir: latent iterative refinement, progressive training and early exit for Asteroid.

Importing the package imports none of its parts: each subpackage loads on first use
(``asteroid_lir.models``, ``asteroid_lir.data``, ...), so that building a corpus or reading a
dataset does not load the models. Importing :mod:`asteroid_lir.models` (or any model class)
registers the models with Asteroid's model registry, so that
``asteroid.models.BaseModel.from_pretrained(path)`` can rebuild any serialized asteroid_lir
model. The package changes no process-wide state on import (warning filters, threads, seeds).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_SUBPACKAGES = (
    "audio_files",
    "bench",
    "chunking",
    "convert",
    "data",
    "engine",
    "filterbanks",
    "inference",
    "layers",
    "losses",
    "masknn",
    "models",
    "separate",
    "synth",
    "tasks",
)


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUBPACKAGES])


__all__ = ["__version__", "filterbanks", "masknn", "models"]
