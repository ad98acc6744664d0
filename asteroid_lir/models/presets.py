"""Model sizes by name: the published TF-Locoformer and TUSS configurations, and CPU-sized ones."""

from __future__ import annotations

import copy

from ..masknn.locoformer import BLOCK_DEFAULTS, TSE_BLOCK_DEFAULTS

__all__ = ["TFLOCOFORMER_PRESETS", "TUSS_PRESETS", "default_stft", "preset_args"]

#: Separator settings of the published sizes (2 sources: S 5.125 M, M 14.976 M, L 22.460 M
#: parameters). S is the WHAMR! "small" configuration, M and L the WSJ0-2mix ones.
TFLOCOFORMER_PRESETS: dict[str, dict] = {
    "S": dict(n_layers=4, emb_dim=96, ffn_hidden_dim=[128, 128], conv1d_kernel=8),
    "M": dict(n_layers=6, emb_dim=128, ffn_hidden_dim=[384, 384], conv1d_kernel=4),
    "L": dict(n_layers=9, emb_dim=128, ffn_hidden_dim=[384, 384], conv1d_kernel=4),
}
_PRESET_COMMON = dict(
    n_heads=4,
    num_groups=4,
    attention_dim=128,
    ffn_type=["swiglu_conv1d", "swiglu_conv1d"],
    conv1d_shift=1,
    norm_type="rmsgroupnorm",
    tf_order="ft",
    eps=1e-5,
)

_REF_RATE = 48000.0

_MEDIUM = dict(
    emb_dim=64,
    num_groups=8,
    n_heads=4,
    n_cross_prompt_blocks=4,
    cross_prompt_block={k: v for k, v in BLOCK_DEFAULTS.items() if k != "conv1d_shift"},
    n_tse_blocks=2,
    tse_block=dict(TSE_BLOCK_DEFAULTS),
)


def _cpu_preset(emb_dim: int, attention: int, ffn: int, sample_rate: int, n_bands: int) -> dict:
    # A CPU-sized TUSS: two cross-prompt blocks and one TSE block, "musical" bands.
    def block(time_kernel: int) -> dict:
        return dict(
            attention_dim=attention,
            freq_ffn_hidden_dim=ffn,
            freq_conv1d_kernel=4,
            time_ffn_hidden_dim=ffn,
            time_conv1d_kernel=time_kernel,
        )

    return dict(
        emb_dim=emb_dim,
        num_groups=4,
        n_heads=4,
        n_cross_prompt_blocks=2,
        cross_prompt_block=block(1),
        n_tse_blocks=1,
        tse_block=block(4),
        sample_rate=sample_rate,
        band_config="musical",
        n_bands=n_bands,
    )


#: Model settings by name. ``medium`` and ``large`` are the reference's released models
#: (48 kHz, STFT 2048 / 512, 61 BS-RoFormer bands: 11.132 M and 38.210 M parameters, counting
#: its 56 RoPE frequencies, which are buffers here). ``small`` (16 kHz) and ``tiny`` (8 kHz) are
#: CPU-sized: fewer, wider bands (24 / 16 "musical" bands), narrower and fewer blocks.
TUSS_PRESETS: dict[str, dict] = {
    "medium": dict(_MEDIUM, sample_rate=48000, band_config="bs_roformer"),
    "large": dict(
        _MEDIUM,
        emb_dim=128,
        n_heads=8,
        n_cross_prompt_blocks=6,
        cross_prompt_block=dict(_MEDIUM["cross_prompt_block"], attention_dim=256),
        n_tse_blocks=3,
        tse_block=dict(_MEDIUM["tse_block"], attention_dim=192),
        sample_rate=48000,
        band_config="bs_roformer",
    ),
    "small": _cpu_preset(48, 64, 128, sample_rate=16000, n_bands=24),
    "tiny": _cpu_preset(32, 32, 64, sample_rate=8000, n_bands=16),
}


def default_stft(sample_rate: float) -> tuple[int, int]:
    """The reference's STFT (2048 / hop 512 at 48 kHz) scaled to ``sample_rate``.

    Returns:
        tuple: ``(n_fft, hop_length)``; ``n_fft`` is even.
    """
    scale = float(sample_rate) / _REF_RATE
    return max(2, 2 * round(1024 * scale)), max(1, round(512 * scale))


def preset_args(name: str, **kwargs) -> dict:
    """Constructor arguments of a :data:`TUSS_PRESETS` model, with overrides.

    Raises:
        ValueError: for an unknown preset name.
    """
    key = str(name).lower()
    if key not in TUSS_PRESETS:
        raise ValueError(f"Unknown TUSS preset {name!r}; choose from {list(TUSS_PRESETS)}.")
    args = copy.deepcopy(TUSS_PRESETS[key])
    args.update(kwargs)
    return args
