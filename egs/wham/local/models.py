"""Models of the WHAM! recipe: any model registered in ``asteroid_lir.models``, by name.

``train.py`` builds the configuration's ``model`` section with :func:`build_model` and
``eval.py`` loads a trained package with :func:`load_model`; both look the name up among
``asteroid_lir.models.__all__``.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from .config import DEFAULT_MODEL

__all__ = [
    "build_model",
    "load_model",
    "model_class",
    "model_sample_rate",
    "model_structure",
    "registered_models",
    "resolve_model_conf",
    "takes_argument",
]


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


def resolve_model_conf(conf: dict, n_src: int, progressive: bool = False) -> dict:
    """The ``model`` section as it will be built: ``n_src`` set, the sample rate of the data,
    ``head_per_block: true`` for progressive training when the model takes it.

    Args:
        conf: the experiment configuration (``model`` and ``data`` sections).
        n_src: number of outputs the task needs.
        progressive: whether the model is trained progressively (one head per block).

    Returns:
        dict: a new ``model`` section; write it to ``conf.yml`` so it records what was built.

    Raises:
        ValueError: unknown model name, or a model sample rate that differs from the data's.
    """
    model = dict(conf["model"])
    name = model.setdefault("name", DEFAULT_MODEL)
    cls = model_class(name)
    model["n_src"] = n_src
    data_sr = int(conf["data"]["sample_rate"])
    if model.get("sample_rate") is not None and int(model["sample_rate"]) != data_sr:
        raise ValueError(
            f"model.sample_rate ({model['sample_rate']}) differs from data.sample_rate "
            f"({data_sr}): the model must be trained at the sample rate of its data."
        )
    if "preset" in model or takes_argument(cls, "sample_rate"):
        model["sample_rate"] = data_sr
    if progressive and takes_argument(cls, "head_per_block"):
        model["head_per_block"] = True  # every block trains with its own head
    return model


def build_model(model_conf: dict):
    """Instantiate a resolved ``model`` section (:func:`resolve_model_conf`).

    ``preset: <name>`` builds ``cls.from_preset(preset, n_src=..., sample_rate=..., **rest)``
    for a class that offers presets; otherwise ``cls(**args)``.

    Raises:
        ValueError: unknown model name, or a preset for a class without ``from_preset``.
    """
    args = dict(model_conf)
    name = args.pop("name")
    cls = model_class(name)
    preset = args.pop("preset", None)
    if preset is None:
        return cls(**args)
    if not hasattr(cls, "from_preset"):
        raise ValueError(f"model.preset is set but {name} has no presets (no from_preset).")
    return cls.from_preset(
        preset, n_src=args.pop("n_src"), sample_rate=args.pop("sample_rate"), **args
    )


def load_model(path: str | os.PathLike):
    """Load a serialized model package with the registered class named in it.

    Args:
        path: a file written with ``torch.save(model.serialize(), path)``.

    Returns:
        tuple: the model and its package (``model_name``, ``model_args``, ``infos``, ...).

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable package or unknown model name.
    """
    from asteroid_lir.models.base import load_model_conf

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No trained model at {path}: run stage 2 (./run.sh --stage 2).")
    package = load_model_conf(path)
    try:
        cls = model_class(package.get("model_name", ""))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    return cls.from_pretrained(package), package


def model_sample_rate(model) -> int | None:
    """Sample rate the model was built for (``None`` if it does not say)."""
    sr = getattr(model, "sample_rate", None)
    return None if sr is None else int(sr)


def model_structure(model, preset: str | None = None) -> str:
    """Short description of the model's structure for reports.

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
