"""MERL's TUSS checkpoints (merlresearch/unified-source-separation, AGPL; read, never copied).

:func:`from_merl` builds a :class:`~asteroid_lir.models.TUSSNet` from a reference run's
``hparams.yaml`` and weights; tests compare the outputs with the reference code run from a
scratch folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from ..models.base import check_fit
from . import rename_prefixes

__all__ = ["from_merl", "merl_model_args", "merl_state_dict", "tuss_band_split_key_map"]


def tuss_band_split_key_map() -> dict[str, str]:
    """Prefixes of the TUSS reference's band-split module -> prefixes of this module pair.

    Returns:
        dict: ``{"band_split_module.band_split_module.": "encoder.band_modules.",
        "band_split_module.bandwise_decoding_module.": "decoder.band_modules."}``, for a model
        holding a :class:`BandSplitEncoder` as ``encoder`` and a :class:`BandSplitDecoder` as
        ``decoder`` (strip ``separator.`` / ``model.`` first). The reference builds 61
        ``"bs_roformer"`` bands at 48 kHz, n_fft 2048, ``hidden = 4 * channels``, one source
        per prompt.
    """
    return {
        "band_split_module.band_split_module.": "encoder.band_modules.",
        "band_split_module.bandwise_decoding_module.": "decoder.band_modules.",
    }


def from_merl(model_cls, state_dict_or_path, hparams, strict: bool = True, **kwargs):
    """Load a model of the TUSS reference (merlresearch/unified-source-separation).

    Args:
        model_cls: :class:`~asteroid_lir.models.TUSSNet` (or a subclass).
        state_dict_or_path: the reference's weights: a state dict (of ``TussModel``, of its
            ``SeparationModel`` wrapper with ``separator.`` names, or of the Lightning module
            with ``model.separator.`` names; a Lightning checkpoint dict with a
            ``state_dict`` entry works too), or the path of a ``.pth`` / ``.ckpt`` file.
        hparams: the run's ``hparams.yaml`` (path or dict) or its ``model_conf`` dict.
        strict (bool): fail on weights that do not fit.
        **kwargs: overrides of constructor arguments.

    Returns:
        TUSSNet: a model computing what the reference computes.

    Raises:
        ValueError: unsupported settings (``prompt_size != 1``, two FFNs of one path with
            different settings, a non-STFT encoder) or weights that do not fit.
        FileNotFoundError: a path that does not exist.
    """
    args = merl_model_args(hparams)
    args.update(kwargs)
    model = model_cls(**args)
    state = merl_state_dict(_load_state(state_dict_or_path))
    missing, unexpected = model.separator.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("rope.freqs")]
    if strict:
        check_fit(missing, unexpected, "The reference weights do not fit the hparams")
    return model


def _load_state(state_dict_or_path) -> dict:
    if isinstance(state_dict_or_path, (str, os.PathLike)):
        path = os.fspath(state_dict_or_path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No checkpoint file at '{path}'.")
        state = torch.load(path, map_location="cpu", weights_only=True)
    else:
        state = state_dict_or_path
    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ValueError(f"Expected a state dict, got {type(state).__name__}.")
    return dict(state)


def merl_state_dict(state: Mapping) -> dict:
    """The reference's TUSS weights renamed for :class:`~asteroid_lir.masknn.tuss.TUSSSeparator`.

    Strips the Lightning (``model.``) and wrapper (``separator.``) prefixes and moves the
    band-split module's weights to ``encoder.`` / ``decoder.``.

    Args:
        state: a state dict of the reference's ``TussModel`` (any of the prefixes).

    Returns:
        dict: a state dict for ``TUSSNet.separator``.
    """
    state = rename_prefixes(state, {"model.separator.": "", "model.": "", "separator.": ""})
    return rename_prefixes(state, tuss_band_split_key_map())


def _ffn_settings(ffn_config, where: str) -> tuple[int, int, int]:
    confs = [dict(c.get("conf", c)) for c in ffn_config]
    if not confs or len(confs) > 2:
        raise ValueError(f"{where}: expected one or two FFN configurations, got {len(confs)}.")
    if len(confs) != 2:
        raise ValueError(f"{where}: only Macaron blocks (two FFNs) are supported, got one.")
    keys = [
        (c.get("dim_inner"), c.get("conv1d_kernel", 4), c.get("conv1d_shift", 1)) for c in confs
    ]
    if keys[0] != keys[1]:
        raise ValueError(
            f"{where}: the two FFNs of a path must share their settings here, got {keys}."
        )
    hidden, kernel, shift = keys[0]
    if hidden is None:
        raise ValueError(f"{where}: dim_inner is required.")
    return int(hidden), int(kernel), int(shift)


def _merl_block(conf: Mapping, where: str) -> tuple[dict, dict]:
    f_hidden, f_kernel, f_shift = _ffn_settings(conf["freq_ffn_config"], f"{where}.freq")
    t_hidden, t_kernel, t_shift = _ffn_settings(conf["frame_ffn_config"], f"{where}.frame")
    if f_shift != t_shift:
        raise ValueError(f"{where}: the frequency and time FFN strides must be equal here.")
    block = dict(
        attention_dim=int(conf.get("attention_dim", 128)),
        freq_ffn_hidden_dim=f_hidden,
        freq_conv1d_kernel=f_kernel,
        time_ffn_hidden_dim=t_hidden,
        time_conv1d_kernel=t_kernel,
        conv1d_shift=f_shift,
    )
    common = dict(
        emb_dim=int(conf.get("emb_dim", 128)),
        num_groups=int(conf.get("num_groups", 4)),
        n_heads=int(conf.get("n_heads", 4)),
        tf_order=str(conf.get("tf_order", "ft")),
        dropout=float(conf.get("dropout", 0.0)),
    )
    return block, common


def merl_model_args(hparams) -> dict:
    """``TUSSNet`` arguments of a reference run's hyper-parameters.

    Args:
        hparams: path of ``hparams.yaml``, its dict, or its ``model_conf`` dict.

    Returns:
        dict: constructor arguments (STFT from ``encoder_conf`` when present).

    Raises:
        ValueError: settings the model cannot express.
    """
    if isinstance(hparams, (str, os.PathLike)):
        import yaml

        path = os.fspath(hparams)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No hparams file at '{path}'.")
        with open(path) as handle:
            hparams = yaml.safe_load(handle)
    hparams = dict(hparams)
    model_conf = dict(hparams.get("model_conf", hparams))
    if hparams.get("model_name", "tuss") != "tuss":
        raise ValueError(f"Not a TUSS run: model_name is {hparams.get('model_name')!r}.")
    if int(model_conf.get("prompt_size", 1)) != 1:
        raise ValueError("Only prompt_size 1 is supported (as every released TUSS model).")
    cross, c_common = _merl_block(model_conf["conf_cross_prompt_module"], "cross_prompt")
    tse, t_common = _merl_block(model_conf["conf_cond_tse_module"], "cond_tse")
    for key in ("emb_dim", "num_groups", "n_heads", "tf_order", "dropout"):
        if c_common[key] != t_common[key]:
            raise ValueError(
                f"The cross-prompt and TSE modules must share {key} here, got "
                f"{c_common[key]!r} and {t_common[key]!r}."
            )
    sample_rate = float(model_conf.get("sample_rate", 48000))
    args = dict(
        prompt_names=list(model_conf["prompts"]),
        **c_common,
        n_cross_prompt_blocks=int(model_conf.get("nblocks_cross_prompt_module", 4)),
        cross_prompt_block=cross,
        n_tse_blocks=int(model_conf.get("nblocks_cond_tse_module", 2)),
        tse_block=tse,
        encoder="band_split",
        band_config="bs_roformer",
        use_sos_token=bool(model_conf.get("use_sos_token", True)),
        eps=float(model_conf.get("eps", 1e-5)),
        sample_rate=sample_rate,
        n_fft=int(model_conf.get("stft_size", 2048)),
    )
    enc = hparams.get("encoder_conf")
    if enc is not None:
        if hparams.get("encoder_name", "stft") != "stft":
            raise ValueError(f"Only the STFT encoder is supported, got {hparams['encoder_name']}.")
        if enc.get("normalize") not in (None, "none"):
            raise ValueError(f"Only an unnormalised STFT is supported, got {enc['normalize']!r}.")
        if int(enc.get("fft_size", args["n_fft"])) != args["n_fft"]:
            raise ValueError("encoder_conf.fft_size differs from model_conf.stft_size.")
        args.update(
            hop_length=int(enc["hop_length"]),
            win_length=int(enc.get("window_length", args["n_fft"])),
            window=str(enc.get("window_type", "sqrt_hann")),
        )
    else:
        args["hop_length"] = args["n_fft"] // 4
    args["normalize_variance"] = bool(hparams.get("variance_normalization", True))
    return args
