"""What every asteroid_lir model adds to Asteroid's ``BaseModel``: input checks and safe I/O."""

from __future__ import annotations

import os
import pickle
import warnings
from typing import Any

import torch
from asteroid.models.base_models import _unsqueeze_to_3d
from asteroid.utils.torch_utils import jitable_shape

__all__ = ["LIRModelMixin", "load_model_conf", "mono_batch", "validate_waveform"]


def validate_waveform(wav: Any, name: str = "input waveform") -> None:
    """Raise a clear error if ``wav`` cannot be separated.

    Args:
        wav: a tensor or array shaped ``(time,)``, ``(batch, time)`` or ``(batch, 1, time)``.
        name: how the error messages call the signal.

    Raises:
        ValueError: wrong rank, empty signal, NaN/Inf samples or an all-zero (silent) signal.
    """
    if not isinstance(wav, torch.Tensor):
        wav = torch.as_tensor(wav)
    if wav.ndim not in (1, 2, 3):
        raise ValueError(
            f"The {name} must have 1, 2 or 3 dimensions (time), (batch, time) or "
            f"(batch, channel, time); got shape {tuple(wav.shape)}."
        )
    if wav.shape[-1] == 0:
        raise ValueError(f"The {name} is empty (0 samples, shape {tuple(wav.shape)}).")
    if not torch.isfinite(wav).all():
        raise ValueError(f"The {name} contains NaN or infinite samples.")
    if not wav.abs().amax() > 0:
        raise ValueError(
            f"The {name} is silent (all samples are zero): there is nothing to separate."
        )


def mono_batch(wav: Any, owner: str) -> tuple:
    """Check a model input and reshape it to ``(batch, time)``.

    Args:
        wav: ``(time,)``, ``(batch, time)`` or ``(batch, 1, time)`` tensor.
        owner: the model's name, for the error messages.

    Returns:
        tuple: ``(shape, wav_2d)``; ``shape`` gives the output its input's layout through
        Asteroid's ``_shape_reconstructed``.

    Raises:
        TypeError: not a tensor.
        ValueError: wrong rank, several channels, no samples, NaN or infinite samples (the
            value checks are skipped while tracing).
    """
    if not isinstance(wav, torch.Tensor):
        raise TypeError(f"Expected a torch.Tensor waveform, got {type(wav).__name__}.")
    if wav.ndim not in (1, 2, 3):
        raise ValueError(
            "Expected a waveform of shape (time,), (batch, time) or (batch, 1, time); got "
            f"{wav.ndim} dimensions {tuple(wav.shape)}."
        )
    if wav.ndim == 3 and wav.shape[1] != 1:
        raise ValueError(
            f"{owner} separates single-channel audio; got {wav.shape[1]} channels "
            f"(input shape {tuple(wav.shape)}). Pick or mix down one channel first."
        )
    if not torch.jit.is_tracing():
        if wav.numel() == 0:
            raise ValueError(f"The input waveform is empty (shape {tuple(wav.shape)}).")
        if not torch.isfinite(wav).all():
            raise ValueError("The input waveform contains NaN or infinite samples.")
    return jitable_shape(wav), _unsqueeze_to_3d(wav)[:, 0]


def _plain(obj: Any) -> Any:
    # TorchVersion and other str subclasses are not accepted by torch.load(weights_only=True).
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    if isinstance(obj, str):
        return str(obj)
    return obj


def load_model_conf(path: str | os.PathLike) -> dict:
    """Load a model package written by ``serialize()`` + ``torch.save`` without downloading.

    Files written by asteroid_lir load with ``weights_only=True``. Files written by Asteroid
    itself contain a ``TorchVersion`` object, which is allow-listed explicitly rather than
    falling back to full unpickling.

    Args:
        path: a local file.

    Returns:
        dict: the model package (``model_name``, ``model_args``, ``state_dict``, ...).

    Raises:
        FileNotFoundError: if ``path`` is not an existing file.
        ValueError: if the file is empty or not a model package.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model file at '{path}' (asteroid_lir never downloads models).")
    if os.path.getsize(path) == 0:
        raise ValueError(f"The model file '{path}' is empty.")
    from torch.torch_version import TorchVersion

    try:
        with torch.serialization.safe_globals([TorchVersion]):
            conf = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError) as err:
        raise ValueError(f"'{path}' is not a readable model package: {err}") from err
    if not isinstance(conf, dict):
        raise ValueError(f"'{path}' holds a {type(conf).__name__}, not a model package dict.")
    return conf


class LIRModelMixin:
    """Mixin for Asteroid ``BaseModel`` subclasses.

    - ``serialize()`` writes only plain Python types, so that Asteroid's own
      ``BaseModel.from_pretrained(path)`` (which uses ``torch.load(weights_only=True)``) reads it.
    - ``from_pretrained(path)`` reads local files only and gives clear errors.
    - ``forward_wav`` (the path used by ``separate()``) rejects bad input with a clear message.
    """

    def serialize(self) -> dict:
        # Asteroid's serialize() imports pytorch_lightning, whose torchmetrics<=0.11.4 warns that
        # pkg_resources is deprecated (asteroid 0.7.0's pin, nothing a user can act on).
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
            conf = super().serialize()  # type: ignore[misc]
        conf["infos"] = _plain(conf.get("infos", {}))
        conf["model_args"] = _plain(conf["model_args"])
        return conf

    @classmethod
    def from_pretrained(cls, pretrained_model_conf_or_path, *args, **kwargs):
        if isinstance(pretrained_model_conf_or_path, (str, os.PathLike)):
            pretrained_model_conf_or_path = load_model_conf(pretrained_model_conf_or_path)
        return super().from_pretrained(pretrained_model_conf_or_path, *args, **kwargs)  # type: ignore[misc]

    def forward_wav(self, wav: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        validate_waveform(wav)
        return self(wav, *args, **kwargs)  # type: ignore[operator]
