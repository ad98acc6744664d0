"""Configurations of the unified recipe: YAML with ``defaults:`` inheritance and overrides.

A file may start with ``defaults: other.yml`` (a path relative to it); the other file is loaded
first and this file's sections are merged over it, key by key, except ``model``: a file's model
section replaces the inherited one as a whole. ``--set section.key=value``
changes one value after loading (the value is read as YAML: ``3``, ``1e-3``, ``[2, 3]``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

__all__ = ["load_config", "merge"]

REQUIRED = ("data", "model", "loss", "training", "evaluation")
MODEL_NAMES = ("TUSSNet", "BSLocoformerNet")


def merge(base: dict, over: dict) -> dict:
    """``base`` updated recursively by ``over`` (a new dict; the inputs are left alone)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read(path: Path, seen: tuple) -> dict:
    path = path.resolve()
    if path in seen:
        raise ValueError(f"Configuration files include each other: {' -> '.join(map(str, seen))}")
    if not path.is_file():
        raise FileNotFoundError(f"Configuration file not found: {path}")
    try:
        conf = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(conf, dict):
        raise ValueError(f"{path} must hold a mapping, not {type(conf).__name__}.")
    parent = conf.pop("defaults", None)
    if parent:
        base = _read(path.parent / parent, (*seen, path))
        # A model section replaces the inherited one as a whole (no mixing of two models' args).
        if "model" in conf:
            base.pop("model", None)
        conf = merge(base, conf)
    return conf


def _parse_value(text: str) -> Any:
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads "1e-4" as a string
        except ValueError:
            return value
    return value


def load_config(path: str | Path, overrides: list[str] | None = None) -> dict:
    """Load a configuration, resolve ``defaults`` and apply ``section.key=value`` overrides.

    Raises:
        FileNotFoundError: a missing file.
        ValueError: bad YAML, a missing section, a malformed override or an unknown model.
    """
    conf = _read(Path(path), ())
    for text in overrides or []:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"Override {text!r} must look like section.key=value.")
        keys = key.strip().split(".")
        node = conf
        for part in keys[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"Override {text!r}: {part!r} is not a section.")
        node[keys[-1]] = _parse_value(value)
    missing = [s for s in REQUIRED if not isinstance(conf.get(s), dict)]
    if missing:
        raise ValueError(f"Configuration {path} lacks the section(s) {missing}.")
    if conf["model"].get("name") not in MODEL_NAMES:
        raise ValueError(
            f"model.name must be one of {list(MODEL_NAMES)}, got {conf['model'].get('name')!r}."
        )
    return conf
