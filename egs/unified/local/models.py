"""Models of the unified recipe: a TUSSNet preset (or its unconditional baseline) plus overrides."""

from __future__ import annotations

from asteroid_lir.models import BSLocoformerNet, TUSSNet

__all__ = ["build_model", "count_parameters"]


def build_model(model_conf: dict, sample_rate: int):
    """The model of a configuration's ``model`` section, at the data's sample rate.

    ``name``: ``TUSSNet`` or ``BSLocoformerNet`` (the unconditional baseline, with ``n_src``
    outputs); ``preset``: a ``TUSS_PRESETS`` name; ``args``: constructor overrides (for the
    baseline, the TUSS names of the two stacks are translated by ``from_preset``; use
    ``first_block`` / ``second_block`` / ``n_first_blocks`` / ``n_second_blocks`` here).
    """
    conf = dict(model_conf)
    name, preset = conf.pop("name"), conf.pop("preset", "tiny")
    args = dict(conf.pop("args", None) or {})
    n_src = int(conf.pop("n_src", 4))
    if conf:
        raise ValueError(f"Unknown model key(s) {sorted(conf)}; known: name, preset, args, n_src.")
    args["sample_rate"] = sample_rate
    if name == "TUSSNet":
        return TUSSNet.from_preset(preset, **args)
    renamed = {
        "n_cross_prompt_blocks": "n_first_blocks",
        "cross_prompt_block": "first_block",
        "n_tse_blocks": "n_second_blocks",
        "tse_block": "second_block",
    }
    args = {renamed.get(k, k): v for k, v in args.items()}
    return BSLocoformerNet.from_preset(preset, n_src=n_src, **args)


def count_parameters(model) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())
