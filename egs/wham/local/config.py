"""Experiment configurations of the WHAM! recipe: YAML files with inheritance and overrides.

A configuration file may start with ``defaults: <file>`` (or a list of files), paths relative
to the file itself; those are loaded first and the file's own keys are merged over them,
section by section. This keeps every paper experiment a few lines on top of ``paper.yml``.
A ``model`` section whose ``name`` differs from the inherited one replaces the inherited
section (another model's arguments do not apply), so e.g. a TF-Locoformer experiment can
inherit the training settings of ``paper.yml``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEFAULT_MODEL",
    "TRAINING_MODES",
    "deep_merge",
    "load_config",
    "n_sources",
    "parse_override",
]

TRAINING_MODES = ("end_to_end", "progressive", "gated")
#: ``model.name`` of a configuration that names none.
DEFAULT_MODEL = "LIRSuDORMRFNet"
# Speech sources of each task; the noise is one more output when `data.return_noise` is true.
N_SPEECH = {"sep_noisy": 2, "enh_single": 1}
REQUIRED_SECTIONS = ("data", "model", "training", "optim", "scheduler")


def deep_merge(base: dict, override: dict) -> dict:
    """Return ``base`` updated recursively with ``override`` (neither input is modified).

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


def _load_file(path: Path, chain: tuple[Path, ...]) -> dict:
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise ValueError(f"Configuration files include each other in a loop: {cycle}")
    if not path.is_file():
        where = f" (included by {chain[-1]})" if chain else ""
        raise FileNotFoundError(f"Configuration file not found: {path}{where}")
    with open(path) as handle:
        try:
            conf = yaml.safe_load(handle) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"Configuration file {path} is not valid YAML: {err}") from err
    if not isinstance(conf, dict):
        raise ValueError(
            f"Configuration file {path} must hold a mapping, not {type(conf).__name__}."
        )
    parents = conf.pop("defaults", None) or []
    if isinstance(parents, str):
        parents = [parents]
    merged: dict = {}
    for parent in parents:
        merged = deep_merge(merged, _load_file(path.parent / parent, (*chain, path)))
    model = conf.get("model")
    if isinstance(model, dict) and "name" in model:
        inherited = merged.get("model") or {}
        if model["name"] != inherited.get("name", DEFAULT_MODEL):
            merged.pop("model")  # another model: the inherited model arguments do not apply
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


def load_config(path: str | Path, overrides: list[str] | None = None) -> dict:
    """Load an experiment configuration, resolving ``defaults`` and applying overrides.

    Args:
        path: YAML file.
        overrides: ``section.key=value`` strings applied last (e.g. ``training.epochs=2``).

    Returns:
        dict: the configuration, with every section of ``REQUIRED_SECTIONS`` present.

    Raises:
        FileNotFoundError: if the file (or one it includes) does not exist.
        ValueError: on invalid YAML, a missing section or an unknown training mode.
    """
    conf = _load_file(Path(path), ())
    for text in overrides or []:
        keys, value = parse_override(text)
        node = conf
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ValueError(f"Override '{text}': '{key}' is not a section.")
        node[keys[-1]] = value
    missing = [s for s in REQUIRED_SECTIONS if not isinstance(conf.get(s), dict)]
    if missing:
        raise ValueError(f"Configuration {path} lacks the section(s) {missing}.")
    mode = conf["training"].get("mode", "end_to_end")
    if mode not in TRAINING_MODES:
        raise ValueError(f"training.mode must be one of {TRAINING_MODES}, got {mode!r} in {path}.")
    conf["training"]["mode"] = mode
    return conf


def n_sources(task: str, return_noise: bool) -> tuple[int, int]:
    """Speech sources and model outputs of a task.

    Args:
        task: ``"sep_noisy"`` (two speakers + noise) or ``"enh_single"`` (speech + noise).
        return_noise: whether the noise is estimated as an extra output.

    Returns:
        tuple: ``(n_speech, n_src)``, e.g. ``(2, 3)`` for ``sep_noisy`` with the noise.

    Raises:
        ValueError: for an unknown task.
    """
    if task not in N_SPEECH:
        raise ValueError(f"Unknown task {task!r}; choose one of {sorted(N_SPEECH)}.")
    n_speech = N_SPEECH[task]
    return n_speech, n_speech + int(bool(return_noise))
