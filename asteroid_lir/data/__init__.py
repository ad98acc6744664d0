"""Data: the WHAM! layout and dataset, the unified (TUSS) class folders, online remixing.

The recipes read a real corpus when one is given; otherwise they build an embedded one in the
same layout with :mod:`asteroid_lir.synth` (``pip install asteroid-lir[synth]``), so the same
loaders serve both. The task and prompt names come from :mod:`asteroid_lir.tasks`; nothing here
imports a model or the corpus synthesis.
"""

from .remix import remix_batch
from .unified import UnifiedMixtures
from .unified_sources import index_sources, write_unified_metadata
from .wham import WhamDataset, validate_wham_dir, write_wham_metadata

__all__ = [
    "UnifiedMixtures",
    "WhamDataset",
    "index_sources",
    "remix_batch",
    "validate_wham_dir",
    "write_unified_metadata",
    "write_wham_metadata",
]
