"""ESPnet ``TFLocoformerSeparator`` checkpoints (merlresearch/tf-locoformer 1.0.1, Apache-2.0).

:func:`from_espnet` builds a :class:`~asteroid_lir.models.TFLocoformerNet` computing what the
ESPnet enhancement model computes; tests compare the two on the same weights, with the reference
run from a scratch folder.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import torch

from ..masknn.locoformer import LocoformerBlock
from ..masknn.refinement import REFINEMENT_ARGS
from ..masknn.tflocoformer import TFLocoformer
from ..models.base import check_fit
from . import rename_prefixes

__all__ = ["convert_espnet_state_dict", "from_espnet", "reference_config"]

# separator_conf keys of the ESPnet TFLocoformerSeparator that have no meaning here.
_ESPNET_IGNORED = ("input_dim", "flash_attention")
#: Arguments of TFLocoformer that the reference separator does not have.
_NOT_IN_REFERENCE = (
    *REFINEMENT_ARGS,
    "encoder",
    "sample_rate",
    "n_fft",
    "band_config",
    "n_bands",
    "encoder_kwargs",
)


def convert_espnet_state_dict(state_dict: Mapping) -> dict:
    """Rename the reference's separator keys to ours (``blocks.{j}.…`` -> ``blocks.0.{j}.…``,
    ``deconv.…`` -> ``deconv.0.…``).

    Args:
        state_dict (dict): the ESPnet separator's state dict, without the ``separator.``
            prefix.

    Returns:
        dict: a state dict for :class:`~asteroid_lir.masknn.TFLocoformer`.
    """
    return rename_prefixes(state_dict, {"blocks.": "blocks.0.", "deconv.": "deconv.0."})


def reference_config(separator: TFLocoformer) -> dict:
    """The reference's ``separator_conf`` of a one-block, one-pass separator (``num_spk``).

    Raises:
        ValueError: a separator the reference cannot express (several blocks or steps, a gate,
            a band front end).
    """
    conf = separator.get_config()
    if (
        separator.n_blocks != 1
        or separator.n_steps != 1
        or separator.gated
        or (conf["encoder"] != "conv")
    ):
        raise ValueError("Only a (1, n_layers, 1) separator without a gate has a reference.")
    conf = {k: v for k, v in conf.items() if k not in _NOT_IN_REFERENCE}
    conf["num_spk"] = conf.pop("n_src")
    return conf


def from_espnet(
    model_cls, state_dict: Mapping[str, torch.Tensor], separator_conf: Mapping, **model_args
):
    """Load the weights of an ESPnet ``TFLocoformerSeparator`` (merlresearch/tf-locoformer).

    Args:
        model_cls: :class:`~asteroid_lir.models.TFLocoformerNet` (or a subclass).
        state_dict (Mapping): the separator's weights as ESPnet names them, with or without
            the ``separator.`` prefix (a whole ESPnet enhancement model's state dict works:
            only the ``separator.`` entries are read).
        separator_conf (Mapping): the ``separator_conf`` of the ESPnet config.
        **model_args: the config's ``encoder_conf`` (``n_fft``, ``hop_length``,
            ``win_length``, ``window``), ``model_conf.normalize_variance`` and the recipe's
            ``sample_rate`` (the model's defaults are the reference's 8-kHz WHAMR! recipe).

    Returns:
        TFLocoformerNet: a model computing what the ESPnet model computes.

    Raises:
        ValueError: for unknown ``separator_conf`` keys or weights that do not fit.
    """
    conf = dict(separator_conf)
    for key in _ESPNET_IGNORED:
        conf.pop(key, None)
    if "num_spk" in conf:
        conf["n_src"] = conf.pop("num_spk")
    block_args = set(inspect.signature(LocoformerBlock.__init__).parameters) - {"self", "rope"}
    known = {"n_src", "n_layers", "tf_order", *block_args}
    unknown = sorted(set(conf) - known)
    if unknown:
        raise ValueError(
            f"Unknown TF-Locoformer separator_conf keys {unknown}; expected a subset of "
            f"{sorted(known | {'num_spk', *_ESPNET_IGNORED})}."
        )
    model = model_cls(**conf, **model_args)
    state = dict(state_dict)
    if any(k.startswith("separator.") for k in state):
        state = {k[len("separator.") :]: v for k, v in state.items() if k.startswith("separator.")}
    state = convert_espnet_state_dict(state)
    missing, unexpected = model.separator.load_state_dict(state, strict=False)
    check_fit(missing, unexpected, "The state dict does not fit the separator_conf")
    return model
