"""The contract every asteroid_lir model adds to Asteroid's ``BaseModel``.

- **Inputs**: :func:`check_waveform` is the one check of a waveform, used by every ``forward``
  (through :func:`mono_batch`) and by ``separate``: wrong rank, several channels (also a
  channels-last ``(time, channels)`` array), no samples, NaN/Inf, integer dtypes and, for
  ``separate``, silence all raise an error that names the problem. ``separate`` converts numpy
  arrays and integer PCM (``int16``: divided by 32768) to float tensors
  (:func:`to_float_waveform`); ``forward`` casts other float dtypes to the model's.
- **Files**: :func:`load_model_conf` reads local files only and names the file in every error;
  ``X.from_pretrained`` returns an ``X`` (or a subclass) or refuses, and a state dict that does
  not fit names the file and the keys. ``serialize()`` writes plain types (Asteroid's own
  ``BaseModel.from_pretrained`` reads them with ``weights_only=True``) and records the
  asteroid_lir version in ``infos``.
- **Separation**: ``separate`` / ``file_separate`` go through
  :mod:`asteroid_lir.inference` and :mod:`asteroid_lir.audio_files`, the path of the
  ``asteroid-lir-separate`` command (see :mod:`asteroid_lir.inference` for what we keep of
  Asteroid's ``separate`` and why).
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from typing import Any

import numpy as np
import torch
from asteroid.utils.torch_utils import jitable_shape

__all__ = [
    "LIRModelMixin",
    "check_fit",
    "check_waveform",
    "load_model_conf",
    "mono_batch",
    "to_float_waveform",
]

#: Most channels a 2-D array's last axis may have before we take it for a channels-last layout.
_MAX_CHANNELS = 8


def check_waveform(
    wav: Any, owner: str = "", name: str = "input waveform", allow_silence: bool = True
) -> None:
    """Raise a clear error unless ``wav`` is a float mono waveform a model can separate.

    Accepted layouts: ``(time,)``, ``(batch, time)``, ``(batch, 1, time)``. The value checks
    (empty, NaN/Inf, silence) are skipped while tracing.

    Args:
        wav: the input.
        owner: who checks (a model's name), put in front of the messages.
        name: how the messages call the signal.
        allow_silence: accept an all-zero signal (``forward``; ``separate`` refuses it).

    Raises:
        TypeError: not a tensor, or not a floating-point tensor.
        ValueError: wrong rank, several channels or a channels-last layout, no samples,
            NaN/Inf samples, or (``allow_silence=False``) an all-zero signal.
    """
    the = f"{owner}: the {name}" if owner else f"The {name}"
    if not isinstance(wav, torch.Tensor):
        raise TypeError(
            f"{the} must be a torch.Tensor, got {type(wav).__name__} (model.separate() also "
            "takes numpy arrays and file names)."
        )
    if not wav.is_floating_point():
        raise TypeError(
            f"{the} must be floating-point, got dtype {wav.dtype}; convert it first "
            "(model.separate() turns integer PCM into floats in [-1, 1))."
        )
    shape = tuple(wav.shape)
    if wav.ndim not in (1, 2, 3):
        raise ValueError(
            f"{the} must have 1, 2 or 3 dimensions, (time,), (batch, time) or (batch, 1, time); "
            f"got shape {shape}."
        )
    if wav.ndim >= 2 and wav.shape[-1] <= _MAX_CHANNELS < wav.shape[-2]:
        raise ValueError(
            f"{the} has shape {shape}, which looks like channels-last audio (time, channels): "
            "give (batch, time) or (batch, 1, time), and mix several channels down to one (or "
            "separate each channel)."
        )
    if wav.ndim == 3 and wav.shape[1] != 1:
        raise ValueError(
            f"{the} has {wav.shape[1]} channels (shape {shape}), but the model separates "
            "single-channel audio: mix the channels down to one, or separate each channel."
        )
    if torch.jit.is_tracing():
        return
    if wav.numel() == 0:
        raise ValueError(f"{the} is empty (0 samples, shape {shape}).")
    if not torch.isfinite(wav).all():
        raise ValueError(f"{the} contains NaN or infinite samples.")
    if not allow_silence and not wav.abs().amax() > 0:
        raise ValueError(f"{the} is silent (all samples are zero): there is nothing to separate.")


def to_float_waveform(wav: Any) -> tuple[torch.Tensor, Any]:
    """A float tensor of ``wav`` and what the estimates should be given back as.

    Numpy arrays become tensors; integer PCM is scaled to ``[-1, 1)`` (``int16`` by ``2**15``,
    ``int32`` by ``2**31``, ``uint8`` centred on 128); float64 stays float64 (the model casts it).

    Args:
        wav: ``torch.Tensor`` or ``np.ndarray``.

    Returns:
        tuple: the tensor and ``"numpy"`` or ``"torch"``.

    Raises:
        TypeError: any other type, or an unsupported dtype (bool, complex).
    """
    kind = "numpy" if isinstance(wav, np.ndarray) else "torch"
    if kind == "numpy":
        wav = torch.from_numpy(np.ascontiguousarray(wav))
    if not isinstance(wav, torch.Tensor):
        raise TypeError(
            f"Cannot separate a {type(wav).__name__}: give a torch.Tensor, a numpy array or the "
            "path of an audio file."
        )
    if wav.is_floating_point():
        return wav, kind
    scale = {torch.int16: 2.0**15, torch.int32: 2.0**31, torch.int8: 2.0**7}.get(wav.dtype)
    if wav.dtype == torch.uint8:
        return (wav.float() - 128.0) / 128.0, kind
    if scale is None:
        raise TypeError(f"Cannot separate a waveform of dtype {wav.dtype}.")
    return wav.float() / scale, kind


def mono_batch(wav: Any, owner: str, dtype: torch.dtype | None = None) -> tuple:
    """Check a model input (:func:`check_waveform`) and reshape it to ``(batch, time)``.

    Args:
        wav: ``(time,)``, ``(batch, time)`` or ``(batch, 1, time)`` float tensor.
        owner: the model's name, for the error messages.
        dtype: the model's floating dtype; an input of another float dtype is cast to it.

    Returns:
        tuple: ``(shape, wav_2d)``; ``shape`` gives the output its input's layout through
        :func:`reshape_like_input`.
    """
    check_waveform(wav, owner)
    if dtype is not None and wav.dtype != dtype:
        wav = wav.to(dtype)
    return jitable_shape(wav), _as_batch(wav)


@torch.jit.script_if_tracing
def _as_batch(wav: torch.Tensor) -> torch.Tensor:
    # Scripted while tracing, so that a trace handles every input rank.
    if wav.ndim == 1:
        return wav.unsqueeze(0)
    if wav.ndim == 3:
        return wav[:, 0]
    return wav


@torch.jit.script_if_tracing
def reshape_like_input(est: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """``(batch, n_src, time)`` estimates without the batch axis for a 1-D input, in float32
    (or float64) also when a lower-precision autocast computed them."""
    if est.dtype != torch.float64:
        est = est.float()
    if shape.shape[0] == 1:
        return est.squeeze(0)
    return est


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
        ValueError: an empty, truncated or unreadable file, or one that is not a model package
            (every message names the file).
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
    except (pickle.UnpicklingError, EOFError, RuntimeError, OSError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"'{path}' is not a readable model package (truncated or not written by "
            f"torch.save(model.serialize(), path)): {err}"
        ) from err
    if not isinstance(conf, dict):
        raise ValueError(f"'{path}' holds a {type(conf).__name__}, not a model package dict.")
    missing = [k for k in ("model_name", "model_args", "state_dict") if k not in conf]
    if missing:
        raise ValueError(f"'{path}' is not a serialize()d model package: it lacks {missing}.")
    return conf


def check_fit(missing: list[str], unexpected: list[str], what: str) -> None:
    """Raise ``ValueError(what: missing ..., unexpected ...)`` if a state dict did not fit.

    Args:
        missing, unexpected: the keys ``load_state_dict(..., strict=False)`` reported.
        what: the start of the message (which weights, which file).
    """

    def describe(keys: list[str]) -> str:
        return f"{keys[:5]}{' ...' if len(keys) > 5 else ''} ({len(keys)})"

    if missing or unexpected:
        raise ValueError(
            f"{what}: missing keys {describe(missing)}, unexpected keys {describe(unexpected)}."
        )


class LIRModelMixin:
    """The asteroid_lir contract on top of an Asteroid ``BaseModel`` (see the module docstring).

    Models define ``forward``; the mixin gives them the checked, file-naming
    :meth:`from_pretrained`, a :meth:`serialize` that Asteroid's loader reads back,
    :meth:`forward_wav` and the separation methods of :mod:`asteroid_lir.inference`.
    """

    def model_dtype(self) -> torch.dtype:
        """The floating dtype of the parameters (inputs of another float dtype are cast)."""
        param = next(self.parameters(), None)  # type: ignore[attr-defined]
        return param.dtype if param is not None and param.is_floating_point() else torch.float32

    def prepare_input(self, wav: torch.Tensor) -> tuple:
        """``(shape, wav_2d)``: ``wav`` checked, cast and shaped ``(batch, time)``."""
        return mono_batch(wav, type(self).__name__, self.model_dtype())

    def serialize(self) -> dict:
        """The model package (``model_name``, ``model_args``, ``state_dict``, ``infos``)."""
        from .. import __version__

        # Asteroid's serialize() imports pytorch_lightning, whose torchmetrics<=0.11.4 warns that
        # pkg_resources is deprecated (asteroid 0.7.0's pin, nothing a user can act on).
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
            conf = super().serialize()  # type: ignore[misc]
        conf["infos"] = _plain(conf.get("infos", {}))
        conf["infos"]["software_versions"]["asteroid_lir_version"] = __version__
        # Also here: band layouts depend on the rate, so a package whose model_args lost it
        # (Asteroid's tests pop it) must not be rebuilt at a default rate.
        conf["infos"]["sample_rate"] = float(self.sample_rate)  # type: ignore[attr-defined]
        conf["model_args"] = _plain(conf["model_args"])
        return conf

    @classmethod
    def from_pretrained(cls, pretrained_model_conf_or_path, *args, **kwargs):
        """Load a model package (a ``serialize()`` dict or a local file).

        Args:
            pretrained_model_conf_or_path: the package or the path of a file holding one.
            *args, **kwargs: constructor arguments overriding the package's.

        Returns:
            an instance of this class (or of the subclass the package names).

        Raises:
            FileNotFoundError: no such file.
            TypeError: the package holds a model of another class.
            ValueError: an unreadable file, arguments or weights that do not fit (the messages
                name the file).
        """
        from asteroid.models import get

        source = pretrained_model_conf_or_path
        where = "the model package"
        if isinstance(source, (str, os.PathLike)):
            where = f"'{os.fspath(source)}'"
            source = load_model_conf(source)
        name = source.get("model_name")
        try:
            model_cls = get(name)
        except ValueError:
            raise ValueError(
                f"{where} holds a {name!r}, a model no loaded package knows."
            ) from None
        if not (isinstance(model_cls, type) and issubclass(model_cls, cls)):
            raise TypeError(
                f"{where} holds a {name}, not a {cls.__name__}: load it with "
                f"{name}.from_pretrained or asteroid.models.BaseModel.from_pretrained."
            )
        model_args = {**source["model_args"], **kwargs}
        if "sample_rate" not in model_args and "sample_rate" in source.get("infos", {}):
            model_args["sample_rate"] = source["infos"]["sample_rate"]
        try:
            model = model_cls(*args, **model_args)
        except TypeError as err:
            raise TypeError(f"{where}: the {name} arguments do not fit: {err}") from err
        missing, unexpected = model.load_state_dict(source["state_dict"], strict=False)
        check_fit(missing, unexpected, f"{where}: the weights do not fit a {name} built from it")
        return model

    def forward_wav(self, wav: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        """Asteroid's separation hook: ``wav`` checked (silence refused), then ``forward``."""
        check_waveform(wav, type(self).__name__, allow_silence=False)
        return self(wav, *args, **kwargs)  # type: ignore[operator]

    def separate(self, wav, output_dir=None, force_overwrite: bool = False, **kwargs):
        """Separate a tensor, a numpy array or an audio file (Asteroid's ``separate``).

        Args:
            wav: ``torch.Tensor`` / ``np.ndarray`` (``(time,)``, ``(batch, time)`` or
                ``(batch, 1, time)``; integer PCM is scaled to ``[-1, 1)``) or a file path.
            output_dir: for a file, where to write (default: next to it).
            force_overwrite (bool): for a file, overwrite existing outputs.
            **kwargs: ``prompts`` (prompt-conditioned models), ``chunk_seconds`` /
                ``overlap_seconds`` (chunk-wise separation of long inputs), and for files
                ``resample`` and ``channels`` (:func:`asteroid_lir.audio_files.separate_file`).

        Returns:
            the estimates ``(batch, n_src, time)`` as the input's type (tensor on its device,
            or array), or for a file the list of paths written.
        """
        from ..inference import separate_waveform

        if isinstance(wav, (str, os.PathLike)):
            return self.file_separate(
                wav, output_dir=output_dir, force_overwrite=force_overwrite, **kwargs
            )
        return separate_waveform(self, wav, **kwargs)

    def file_separate(
        self, filename, output_dir=None, force_overwrite: bool = False, **kwargs
    ) -> list[str]:
        """Separate an audio file and write one float WAV per estimate.

        Args:
            filename: the mixture.
            output_dir: where to write (default: the input's folder).
            force_overwrite (bool): overwrite existing outputs (else ``FileExistsError``).
            **kwargs: see :func:`asteroid_lir.audio_files.separate_file` (``prompts``,
                ``resample``, ``channels``, ``chunk_seconds``, ``overlap_seconds``).

        Returns:
            list of str: the files written.
        """
        from ..audio_files import separate_file

        return separate_file(self, filename, output_dir, force_overwrite=force_overwrite, **kwargs)
