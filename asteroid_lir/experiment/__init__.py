"""The experiment toolkit of the recipes: configurations, the model registry, the trainer, the
evaluation and the reports (each recipe's ``train.py`` / ``eval.py`` wires these)."""

from .config import apply_overrides, deep_merge, dump_config, load_config
from .registry import build_model, load_model, model_structure, resolve_model_conf

__all__ = [
    "apply_overrides",
    "build_model",
    "deep_merge",
    "dump_config",
    "load_config",
    "load_model",
    "model_structure",
    "resolve_model_conf",
]
