"""Data: the WHAM! layout, its dataset and augmentation, and the embedded mini corpus.

The recipes read a real WHAM! corpus when one is given and otherwise build the mini corpus
(:func:`build_mini_corpus`) in exactly the same layout, so the same loaders serve both.
"""

from .mini_corpus import build_mini_corpus
from .remix import remix_batch
from .unified import UnifiedMixtures, index_sources, write_unified_metadata
from .unified_corpus import build_unified_corpus
from .wham import TASKS, WhamDataset, validate_wham_dir, write_wham_metadata

__all__ = [
    "TASKS",
    "UnifiedMixtures",
    "WhamDataset",
    "build_mini_corpus",
    "build_unified_corpus",
    "index_sources",
    "remix_batch",
    "validate_wham_dir",
    "write_unified_metadata",
    "write_wham_metadata",
]
