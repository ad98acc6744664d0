"""Asteroid's Sudo rm -rf checkpoints (``asteroid.models.SuDORMRFImprovedNet``).

A conventional Sudo rm -rf of ``num_blocks`` U-ConvBlocks is the latent iterative refinement
model ``(n_blocks, n_sub_blocks, n_iters) = (1, num_blocks, 1)``: :func:`from_asteroid` copies
its weights (tests compare the outputs).
"""

from __future__ import annotations

from asteroid.models.sudormrf import SuDORMRFImprovedNet

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
    masker = model.masker
    fb = model.encoder.filterbank
    fb_cfg = fb.get_config()
    fb_name = {"FreeFB": "free"}.get(fb_cfg.get("fb_name"), None)
    if fb_name is None:
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
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("masker.sm."):
            key = "masker.blocks.0." + key[len("masker.sm.") :]
        elif key.startswith("masker.mask_net."):
            key = "masker.mask_nets.0." + key[len("masker.mask_net.") :]
        state[key] = value
    new.load_state_dict(state)
    return new
