"""Model registry: build a model from a configuration's ``model`` section, load a trained one.

A ``model`` section names a class of :mod:`asteroid_lir.models` and its arguments, flat::

    model: {name: LIRSuDORMRFNet, n_blocks: 2, n_sub_blocks: 4, n_iters: 2}
    model: {name: TUSSNet, preset: tiny, emb_dim: 24}   # preset: cls.from_preset(preset, ...)

The recipes, the evaluation, the ``asteroid-lir-separate`` command and the benchmarks all build
and load models here.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from torch import nn

__all__ = [
    "build_model",
    "check_model",
    "describe_model",
    "load_model",
    "model_class",
    "model_structure",
    "registered_models",
    "resolve_model_conf",
    "takes_argument",
]

#: The file of an experiment folder that holds its trained model.
MODEL_FILE = "best_model.pth"


def registered_models() -> dict[str, type]:
    """``{name: class}`` of every model class that ``asteroid_lir.models`` exports."""
    import asteroid_lir.models as lir_models

    classes = {name: getattr(lir_models, name, None) for name in lir_models.__all__}
    return {name: cls for name, cls in classes.items() if inspect.isclass(cls)}


def model_class(name: str) -> type:
    """The class registered under ``name``.

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    models = registered_models()
    if name not in models:
        raise ValueError(
            f"Unknown model {name!r}; asteroid_lir.models provides: {', '.join(sorted(models))}."
        )
    return models[name]


def takes_argument(cls: type, name: str) -> bool:
    """Whether ``cls.__init__`` names the argument ``name`` (``**kwargs`` does not count)."""
    return name in inspect.signature(cls.__init__).parameters


def resolve_model_conf(
    model_conf: dict,
    sample_rate: int,
    n_src: int | None = None,
    progressive: bool = False,
    default_name: str | None = None,
) -> dict:
    """The ``model`` section as it will be built, to save with the experiment.

    Sets ``name`` (``default_name`` when it names none), ``n_src`` (when given), the data's
    sample rate (for a preset or a class that takes one) and ``head_per_block: true`` for
    progressive training when the class takes it.

    Args:
        model_conf: the configuration's ``model`` section (not modified).
        sample_rate: the data's sample rate.
        n_src: number of outputs the task needs (``None``: the section's own, e.g. prompts).
        progressive: whether the model is trained progressively (one head per block).
        default_name: the class of a section without ``name``.

    Returns:
        dict: a new ``model`` section.

    Raises:
        ValueError: no or an unknown model name, or a model sample rate that differs from the
            data's.
    """
    model = dict(model_conf)
    if default_name is not None:
        model.setdefault("name", default_name)
    if "name" not in model:
        raise ValueError("The model section names no model (model.name).")
    cls = model_class(model["name"])
    if n_src is not None:
        model["n_src"] = n_src
    if model.get("sample_rate") is not None and int(model["sample_rate"]) != int(sample_rate):
        raise ValueError(
            f"model.sample_rate ({model['sample_rate']}) differs from data.sample_rate "
            f"({sample_rate}): the model must be trained at the sample rate of its data."
        )
    if "preset" in model or takes_argument(cls, "sample_rate"):
        model["sample_rate"] = int(sample_rate)
    if progressive and takes_argument(cls, "head_per_block"):
        model["head_per_block"] = True  # every block trains with its own head
    return model


def build_model(model_conf: dict) -> nn.Module:
    """Instantiate a resolved ``model`` section (:func:`resolve_model_conf`).

    ``preset: <name>`` builds ``cls.from_preset(preset, **rest)`` for a class that offers
    presets; otherwise ``cls(**args)``.

    Raises:
        ValueError: unknown model name, or a preset for a class without ``from_preset``.
    """
    args = dict(model_conf)
    name, preset = args.pop("name"), args.pop("preset", None)
    cls = model_class(name)
    if preset is None:
        return cls(**args)
    if not hasattr(cls, "from_preset"):
        raise ValueError(f"model.preset is set but {name} has no presets (no from_preset).")
    return cls.from_preset(preset, **args)


def load_model(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """Load a trained model: a ``serialize()`` file, or an experiment folder holding one.

    Any asteroid_lir model, and any Asteroid model (Asteroid's registry), loads.

    Args:
        path: a model file, or a folder with ``best_model.pth``.

    Returns:
        tuple: the model (eval mode, CPU) and its package (``model_name``, ``model_args``,
        ``infos``, ...).

    Raises:
        FileNotFoundError: no such file, or a folder without ``best_model.pth``.
        ValueError: an unreadable package or a model name no loaded package knows (the
            messages name the file).
    """
    from asteroid import models as asteroid_models

    from ..models.base import load_model_conf

    path = Path(path)
    if path.is_dir():
        if not (path / MODEL_FILE).is_file():
            raise FileNotFoundError(
                f"The experiment folder '{path}' has no {MODEL_FILE}: train it first (stage 2)."
            )
        path = path / MODEL_FILE
    package = load_model_conf(path)
    name = package["model_name"]
    try:
        cls = model_class(name)
    except ValueError as err:
        try:
            cls = asteroid_models.get(name)
        except ValueError:
            raise ValueError(f"{path}: {err}") from None
    return cls.from_pretrained(package).eval(), package


def model_structure(model: nn.Module, preset: str | None = None) -> str:
    """Short description of a model's structure for reports.

    Args:
        model: the model.
        preset: the configuration's ``model.preset``, if it named one.

    Returns:
        str: ``blocks x sub-blocks x iterations`` for refinement models, then the preset when
        there is one (empty for another model without preset: its class name says it all).
    """
    refiner = getattr(model, "refiner", None)
    parts = []
    if refiner is not None and hasattr(refiner, "n_iters"):
        iters = list(refiner.n_iters)
        its = str(iters[0]) if len(set(iters)) == 1 else "(" + ",".join(map(str, iters)) + ")"
        sub = getattr(refiner, "n_sub_blocks", "?")
        parts.append(f"{refiner.n_blocks}x{sub}x{its} (blocks x sub-blocks x iterations)")
    if preset:
        parts.append(f"preset {preset}")
    return ", ".join(parts)


def check_model(model: nn.Module, sample_rate: int, n_src: int | None = None, where="") -> None:
    """Raise unless ``model`` works at ``sample_rate`` with ``n_src`` outputs (when given).

    Raises:
        ValueError: naming what the model has and what is asked (and ``where`` it comes from).
    """
    problems = []
    if n_src is not None and getattr(model, "n_src", n_src) != n_src:
        problems.append(f"it has {model.n_src} outputs, {n_src} are needed")
    if int(model.sample_rate) != int(sample_rate):
        problems.append(f"it works at {model.sample_rate:g} Hz, the data at {sample_rate} Hz")
    if problems:
        raise ValueError(
            f"The model of {where} does not fit the data: " + "; ".join(problems) + "."
        )


def describe_model(model: nn.Module, package: dict, preset: str | None = None) -> dict:
    """The ``model`` and ``training`` records of an evaluation's results: name, parameters,
    structure, gating, steps, progressive export, and the training budget done of planned
    (``total_steps``: the optimizer steps of every phase)."""
    recipe = package.get("infos", {}).get("recipe") or {}
    phases = recipe.get("phases") or {}
    keys = ("global_steps", "steps_planned", "epochs_done", "epochs_planned", "stopped_by_time")
    return {
        "model": {
            "name": package["model_name"],
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "structure": model_structure(model, preset),
            "model_args": package["model_args"],
            "gated": bool(getattr(getattr(model, "refiner", None), "gated", False)),
            "n_steps": getattr(model, "n_steps", None),
            "progressive": recipe.get("progressive"),
        },
        "training": {
            **{k: recipe.get(k) for k in (*keys, "max_time_minutes")},
            # Every phase's steps (a gated training: pre-training and joint phase).
            "total_steps": sum(p.get("global_steps") or 0 for p in phases.values())
            if phases
            else recipe.get("global_steps"),
        },
    }
