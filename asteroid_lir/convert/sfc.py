"""The SFC-CA authors' encoder/decoder weights (b-sigpro/spectral-feature-compression, MIT).

Their ``CrossAttnEncoder`` / ``CrossAttnDecoder`` map to :class:`~asteroid_lir.filterbanks.
SFCEncoder` / :class:`~asteroid_lir.filterbanks.SFCDecoder` by renaming state-dict prefixes
(:func:`sfc_reference_key_map`; tests compare the outputs with their code, run from a scratch
folder).

Deviations from the authors' code (b-sigpro/spectral-feature-compression, MIT; read in the
public copy minjunmy619-spec/ASS, ``core/model/crossattn_enc_dec.py``, ``enc_dec_base.py``):

- mono input only (their ``n_chan``): the interface is ``(batch, 2, frames, freqs)``;
- the query projection of learnable queries is computed once and broadcast over frames (their
  code projects the broadcast copy; same result);
- no forced bf16 autocast and no forced SDPA backend (they pin the memory-efficient kernel on
  CUDA); torch picks the kernel;
- the complex mask is applied inside the decoder (their model wrapper does it);
- ``position_bias=False`` builds the ablation without the bias (their classes always have it).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..filterbanks.sfc import SFCDecoder, SFCEncoder

__all__ = ["convert_sfc_reference_state_dict", "sfc_reference_key_map"]


def sfc_reference_key_map() -> dict[str, str]:
    """State-dict key prefixes of the authors' ``CrossAttnEncoder``/``CrossAttnDecoder`` -> ours.

    Apply the longest matching prefix. Their buffers ``block.mixer.pos_bias.slope`` (fixed
    slopes) and ``block.mixer.pos_bias.attention_mask`` are rebuilt from the config here and are
    not in our state dict; learnable slopes map to ``block.position_bias.slopes``.

    Returns:
        dict: their prefix -> our prefix.
    """
    return {
        "input_conv.0.": "input_conv.",  # encoder: Conv2d inside (conv, rearrange, norm, ...)
        "input_conv.2.": "input_norm.",
        "output_conv.0.": "output_conv.",
        "output_conv.2.": "output_norm.",
        "input_conv.": "input_conv.",  # decoder: plain ConvTranspose2d
        "output_conv.": "output_conv.",
        "query": "query",
        "freq_weights": "query_weights",
        "query_mlp.": "query_mlp.",
        "block.norm_attn_q.": "block.norm_q.",
        "block.norm_attn_kv.": "block.norm_kv.",
        "block.norm_ffn.": "block.norm_mlp.",
        "block.feed_forward.": "block.mlp.",
        "block.mixer.q_proj.": "block.q_proj.",
        "block.mixer.kv_proj.": "block.kv_proj.",
        "block.mixer.aggregate_heads.0.": "block.out_proj.",
        "block.mixer.pos_bias.pos_bias": "block.position_bias.bias",
        "block.mixer.pos_bias.slope": "block.position_bias.slopes",
    }


def convert_sfc_reference_state_dict(
    state_dict: Mapping[str, torch.Tensor], module: SFCEncoder | SFCDecoder
) -> dict[str, torch.Tensor]:
    """Rename an authors' ``CrossAttnEncoder``/``CrossAttnDecoder`` state dict for ``module``.

    Args:
        state_dict: their module's state dict (without any outer prefix).
        module: the :class:`SFCEncoder` or :class:`SFCDecoder` built with the same settings
            (mono: their ``n_chan=1``).

    Returns:
        dict: a state dict for ``module.load_state_dict`` (their fixed buffers that we rebuild
        from the config are dropped).

    Raises:
        KeyError: a key that no prefix of :func:`sfc_reference_key_map` matches.
    """
    mapping = sorted(sfc_reference_key_map().items(), key=lambda kv: -len(kv[0]))
    ours = module.state_dict()
    out = {}
    for key, value in state_dict.items():
        prefix = next((p for p, _ in mapping if key.startswith(p)), None)
        if prefix is None:
            raise KeyError(f"No mapping for the reference key '{key}'.")
        new_key = dict(mapping)[prefix] + key[len(prefix) :]
        if new_key in ours:
            out[new_key] = value
        elif not key.startswith(("block.mixer.pos_bias.slope", "block.mixer.pos_bias.attention")):
            raise KeyError(
                f"The reference key '{key}' maps to '{new_key}', which "
                f"{type(module).__name__} lacks."
            )
    return out
