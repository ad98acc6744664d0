"""Asteroid's Sudo rm -rf checkpoints (``asteroid.models.SuDORMRFImprovedNet``).

A conventional Sudo rm -rf of ``num_blocks`` U-ConvBlocks is the latent iterative refinement
model ``(n_blocks, n_sub_blocks, n_iters) = (1, num_blocks, 1)``: :func:`from_asteroid` copies
its weights (tests compare the outputs).
"""

from __future__ import annotations

from asteroid.models.sudormrf import SuDORMRFImprovedNet

from . import rename_prefixes

__all__ = ["from_asteroid"]


def from_asteroid(model_cls, model):
    """Build the ``(1, num_blocks, 1)`` model computing exactly what ``model`` computes.

    Args:
        model_cls: :class:`~asteroid_lir.models.LIRSuDORMRFNet` (or a subclass).
        model: an Asteroid ``SuDORMRFImprovedNet`` (any trained or fresh instance), or its
            serialized package (dict).

    Returns:
        LIRSuDORMRFNet: same encoder, blocks, mask network and decoder weights.

    Raises:
        TypeError: if ``model`` is not a ``SuDORMRFImprovedNet`` (or its package).
    """
    if isinstance(model, dict):
        if model.get("model_name") != "SuDORMRFImprovedNet":
            raise TypeError(
                f"Expected a SuDORMRFImprovedNet package, got {model.get('model_name')!r}."
            )
        model = SuDORMRFImprovedNet.from_pretrained(model)
    if not isinstance(model, SuDORMRFImprovedNet):
        raise TypeError(
            f"from_asteroid converts asteroid.models.SuDORMRFImprovedNet, got {type(model)}."
        )
    masker, fb_cfg = model.masker, model.encoder.filterbank.get_config()
    if fb_cfg.get("fb_name") != "FreeFB":
        raise TypeError(f"Only the free filterbank can be converted, got {fb_cfg.get('fb_name')}.")
    new = model_cls(
        n_src=masker.n_src,
        n_blocks=1,
        n_sub_blocks=masker.num_blocks,
        n_iters=1,
        bn_chan=masker.bn_chan,
        n_filters=fb_cfg["n_filters"],
        kernel_size=fb_cfg["kernel_size"],
        stride=fb_cfg["stride"],
        upsampling_depth=masker.upsampling_depth,
        mask_act=masker.mask_act,
        sample_rate=model.sample_rate,
    )
    prefixes = {"masker.sm.": "masker.blocks.0.", "masker.mask_net.": "masker.mask_nets.0."}
    new.load_state_dict(rename_prefixes(model.state_dict(), prefixes))
    return new
