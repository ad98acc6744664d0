"""Experiment configurations: YAML files with inheritance and command-line overrides.

One rule for every recipe: a file may start with ``defaults: <file>`` (or a list of files),
paths relative to the file itself; those are loaded first and the file's own keys are merged
over them, section by section (nested mappings merge, other values replace). A ``model`` section
whose ``name`` or ``preset`` differs from the inherited one replaces the inherited section
instead of merging with it (another model's arguments, or the sizes tuned for another preset, do
not apply). Overrides ``section.key=value`` (the value read
as YAML) are applied last, and reach the configuration that is saved with the experiment.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "apply_overrides",
    "deep_merge",
    "dump_config",
    "load_config",
    "parse_override",
]


def deep_merge(base: dict, override: dict) -> dict:
    """``base`` updated recursively with ``override`` (neither input is modified).

    Args:
        base: the inherited configuration.
        override: keys to change; nested dicts are merged, any other value replaces.

    Returns:
        dict: the merged configuration.
    """
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _load_file(path: Path, chain: tuple[Path, ...], default_model: str | None) -> dict:
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise ValueError(f"Configuration files include each other in a loop: {cycle}")
    if not path.is_file():
        where = f" (included by {chain[-1]})" if chain else ""
        raise FileNotFoundError(f"Configuration file not found: {path}{where}")
    try:
        conf = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"Configuration file {path} is not valid YAML: {err}") from err
    if not isinstance(conf, dict):
        raise ValueError(
            f"Configuration file {path} must hold a mapping, not {type(conf).__name__}."
        )
    parents = conf.pop("defaults", None) or []
    merged: dict = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        merged = deep_merge(merged, _load_file(path.parent / parent, (*chain, path), default_model))
    model, inherited = conf.get("model"), merged.get("model")
    if isinstance(model, dict) and isinstance(inherited, dict):
        for key, default in (("name", default_model), ("preset", None)):
            if key in model and model[key] != inherited.get(key, default):
                merged.pop("model")  # another model or size: the inherited arguments do not apply
                break
    return deep_merge(merged, conf)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``section.key=value`` (the value is read as YAML: ``3``, ``1e-3``, ``null``, ...).

    Args:
        text: the override as typed on the command line.

    Returns:
        tuple: the key path (list of names) and the parsed value.

    Raises:
        ValueError: if ``text`` has no ``=`` or an empty key.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"Override '{text}' must look like section.key=value.")
    parsed = yaml.safe_load(value)
    if isinstance(parsed, str):
        # YAML 1.1 reads "1e-4" (no dot) as a string; a number is what anyone typing it means.
        try:
            parsed = float(parsed)
        except ValueError:
            pass
    return key.strip().split("."), parsed


def apply_overrides(conf: dict, overrides: Sequence[str]) -> dict:
    """``conf`` with ``section.key=value`` overrides applied (in place; returned too).

    Raises:
        ValueError: a malformed override, or one whose path crosses a value that is no section.
    """
    for text in overrides:
        keys, value = parse_override(text)
        node = conf
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ValueError(f"Override '{text}': '{key}' is not a section.")
        node[keys[-1]] = value
    return conf


def load_config(
    path: str | Path,
    overrides: Sequence[str] = (),
    required: Sequence[str] = (),
    default_model: str | None = None,
) -> dict:
    """Load an experiment configuration, resolving ``defaults`` and applying overrides.

    Args:
        path: YAML file.
        overrides: ``section.key=value`` strings applied last (e.g. ``training.epochs=2``).
        required: sections that must be present (mappings).
        default_model: the ``model.name`` of a section that names none (for the replacement
            rule of the module docstring).

    Returns:
        dict: the configuration.

    Raises:
        FileNotFoundError: if the file (or one it includes) does not exist.
        ValueError: invalid YAML, an include loop, a bad override or a missing section.
    """
    conf = apply_overrides(_load_file(Path(path), (), default_model), overrides)
    missing = [s for s in required if not isinstance(conf.get(s), dict)]
    if missing:
        raise ValueError(f"Configuration {path} lacks the section(s) {missing}.")
    return conf


def dump_config(conf: dict) -> str:
    """YAML text of a configuration, in its own key order."""
    return yaml.safe_dump(conf, sort_keys=False)
