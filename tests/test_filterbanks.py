"""asteroid_lir.filterbanks: band configurations, band-split and SFC-CA encoders/decoders.

Reference checks (the SFC-CA authors' code, MIT, and the TUSS reference, AGPL; both run from a
scratch copy outside the repository, never imported by the library) are skipped unless
``LIR_SFC_REF`` points at a folder holding ``spectral_feature_compression/`` (default
``/tmp/scratch/sfc``) and ``LIR_TUSS_REF`` at one holding ``nets/tuss.py`` (default
``/tmp/scratch/tuss``, the folder of the TUSS tests).
"""

from __future__ import annotations

import ast
import math
import os
import sys
import types
from itertools import accumulate
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import torch
from torch import nn

from asteroid_lir.convert.merl import tuss_band_split_key_map
from asteroid_lir.convert.sfc import convert_sfc_reference_state_dict
from asteroid_lir.filterbanks import (
    BandConfig,
    BandSplitDecoder,
    BandSplitEncoder,
    SFCDecoder,
    SFCEncoder,
    bs_roformer_bands,
    get_band_config,
    musical_bands,
)

F_1025 = 1025
MUSICAL = dict(sample_rate=44100, n_fft=2048, band_config="musical")  # 64 bands
BSR = dict(sample_rate=48000, n_fft=2048, band_config="bs_roformer")  # 61 bands


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def stft_like(batch: int = 1, frames: int = 3, freqs: int = F_1025) -> torch.Tensor:
    return torch.randn(batch, 2, frames, freqs)


def _ref_dir(env: str, marker: str) -> Path:
    default = {"LIR_SFC_REF": "/tmp/scratch/sfc", "LIR_TUSS_REF": "/tmp/scratch/tuss"}[env]
    path = Path(os.environ.get(env, default))
    if not (path / marker).is_file():
        pytest.skip(f"reference not available: set {env} to a folder containing {marker}")
    return path


# ------------------------------------------------------------------------------ band configs
def test_bs_roformer_61_bands_at_48k_and_bs_roformer_widths_at_44k():
    at48 = bs_roformer_bands(48000, 2048)
    assert at48.n_bands == 61
    # The TUSS reference's table at 48 kHz: 4 bands above 16 kHz.
    assert at48.widths == [2] * 22 + [4] * 11 + [12] * 8 + [24] * 8 + [48] * 8 + [66, 66, 66, 67]
    # BS-RoFormer's published band widths (44.1 kHz, n_fft 2048).
    at44 = bs_roformer_bands(44100, 2048)
    bs_roformer_paper = [2] * 24 + [4] * 12 + [12] * 8 + [24] * 8 + [48] * 8 + [128, 129]
    assert at44.widths == bs_roformer_paper
    assert not at48.overlapping and at48.bands[0][0] == 0 and at48.bands[-1][1] == F_1025


def test_bs_roformer_scales_with_n_fft():
    # Twice the FFT size: same bands in Hz, every edge at twice the bin index.
    small, big = bs_roformer_bands(48000, 2048), bs_roformer_bands(48000, 4096)
    assert big.n_bands == small.n_bands
    assert [s for s, _ in big.bands] == [2 * s for s, _ in small.bands]


def test_musical_64_overlapping_bands():
    cfg = musical_bands(44100, 2048)
    assert cfg.n_bands == 64 and cfg.overlapping
    assert cfg.bands[0][0] == 0 and cfg.bands[-1][1] == F_1025
    assert int(cfg.band_counts().min()) >= 1
    starts = [s for s, _ in cfg.bands]
    assert starts == sorted(starts)
    # Log-spaced: the top band is far wider than the bottom one.
    assert cfg.widths[-2] > 20 * cfg.widths[1]


@pytest.mark.parametrize(
    "sample_rate, n_fft",
    [(8000, 256), (16000, 512), (22050, 1024), (44100, 4096), (48000, 2048), (96000, 2048)],
)
@pytest.mark.parametrize("name", ["bs_roformer", "musical"])
def test_configs_cover_every_bin_at_any_rate(name, sample_rate, n_fft):
    cfg = get_band_config(name, sample_rate, n_fft)
    n_freqs = n_fft // 2 + 1
    assert cfg.n_freqs == n_freqs
    assert all(e > s for s, e in cfg.bands)
    counts = cfg.band_counts()
    assert counts.shape == (n_freqs,) and int(counts.min()) >= 1
    if name == "musical":
        assert cfg.n_bands == 64
    else:  # consecutive, non-overlapping
        assert [e for _, e in cfg.bands[:-1]] == [s for s, _ in cfg.bands[1:]]


def test_overlap_weights_average_the_covering_bands():
    cfg = BandConfig(((0, 6), (4, 10), (8, 10)), 10)
    w = cfg.overlap_weights()
    expected = torch.tensor(
        [
            [1, 1, 1, 1, 0.5, 0.5, 0, 0, 0, 0],
            [0, 0, 0, 0, 0.5, 0.5, 1, 1, 0.5, 0.5],
            [0, 0, 0, 0, 0, 0, 0, 0, 0.5, 0.5],
        ]
    )
    torch.testing.assert_close(w, expected)


def test_position_bias_band_formula():
    # Band 0 = [0, 3): centre 1, half-width 1; band 1 = [3, 8): centre 5, half-width 2.
    bias = BandConfig(((0, 3), (3, 8)), 8).position_bias()
    expected = torch.tensor(
        [
            [-0.5, 0.0, -0.5, -1.0, -2.0, -3.0, -4.0, -5.0],
            [-3.0, -2.0, -1.0, -2 / 3, -1 / 3, 0.0, -1 / 3, -2 / 3],
        ]
    )
    torch.testing.assert_close(bias, expected)


def test_user_band_edges_and_pairs():
    edges = get_band_config([0, 100, 400, F_1025], 44100, 2048)
    assert edges.bands == ((0, 100), (100, 400), (400, F_1025))
    pairs = get_band_config([(0, 200), (150, F_1025)], 44100, 2048)
    assert pairs.overlapping and pairs.n_bands == 2


def test_gap_and_empty_band_errors_name_the_band():
    with pytest.raises(
        ValueError, match=r"bins \[10, 12\) uncovered .*after band 0.*before band 1"
    ):
        get_band_config([(0, 10), (12, F_1025)], 44100, 2048)
    with pytest.raises(ValueError, match=r"Band 1 \[10, 10\).*empty"):
        get_band_config([0, 10, 10, F_1025], 44100, 2048)
    with pytest.raises(ValueError, match=r"bins \[1000, 1025\) uncovered.*after band 1"):
        get_band_config([0, 10, 1000], 44100, 2048)
    with pytest.raises(ValueError, match=r"Band 2 \[900, 1100\).*outside"):
        get_band_config([(0, 500), (500, 900), (900, 1100)], 44100, 2048)
    with pytest.raises(ValueError, match="Unknown band configuration 'mel'"):
        get_band_config("mel", 44100, 2048)
    with pytest.raises(ValueError, match="n_bands=64 does not match the 61"):
        get_band_config("bs_roformer", 48000, 2048, n_bands=64)
    with pytest.raises(ValueError, match="sample_rate"):
        get_band_config("musical", -1, 2048)


def test_musical_bands_match_the_authors_code():
    ref = _ref_dir("LIR_SFC_REF", "spectral_feature_compression/core/model/bandit_split.py")
    source = (ref / "spectral_feature_compression/core/model/bandit_split.py").read_text()
    (fn,) = [
        n
        for n in ast.parse(source).body
        if isinstance(n, ast.FunctionDef) and n.name == "musical_filterbank"
    ]
    namespace = {
        "np": np,
        "torch": torch,
        "hz_to_midi": lambda f: 12 * (np.log2(np.asanyarray(f)) - np.log2(440.0)) + 69,
        "midi_to_hz": lambda m: 440.0 * (2.0 ** ((np.asanyarray(m) - 69.0) / 12.0)),
    }
    exec(compile(ast.Module([fn], []), "musical_filterbank", "exec"), namespace)
    for sample_rate, n_fft, n_bands in [(44100, 2048, 64), (48000, 2048, 64), (16000, 512, 32)]:
        n_freqs = n_fft // 2 + 1
        fb = namespace["musical_filterbank"](n_bands, sample_rate, 0.0, sample_rate / 2, n_freqs)
        ref_bands = []
        for row in fb:
            active = torch.nonzero(row).flatten()
            ref_bands.append((int(active[0]), int(active[-1]) + 1))
        ours = musical_bands(sample_rate, n_fft, n_bands)
        assert list(ours.bands) == ref_bands
        torch.testing.assert_close(ours.overlap_weights().double(), (fb / fb.sum(0)).double())


# ------------------------------------------------------------------------------ band split
@pytest.mark.parametrize("kw", [MUSICAL, BSR], ids=["musical", "bs_roformer"])
def test_band_split_shapes_at_1025_bins(kw):
    enc, dec = BandSplitEncoder(16, **kw), BandSplitDecoder(16, n_src=2, **kw)
    spec = stft_like(batch=2)
    feats = enc(spec)
    assert feats.shape == (2, 16, 3, enc.n_bands)
    est = dec(feats, spec)
    assert est.shape == (2, 2, 2, 3, F_1025)


def test_band_split_decoder_overlap_add_is_normalised():
    # Make every band's MLP output exactly 1: GLU(a, b) = a * sigmoid(b) with a = 1, b = +inf.
    dec = BandSplitDecoder(8, n_src=1, output="mapping", **MUSICAL)
    assert dec.bands.overlapping
    with torch.no_grad():
        for module in dec.band_modules:
            last = module[5]
            half = last.out_channels // 2
            last.weight.zero_()
            last.bias[:half] = 1.0
            last.bias[half:] = float("inf")
    est = dec(torch.randn(1, 8, 2, dec.n_bands), stft_like(frames=2))
    torch.testing.assert_close(est, torch.ones_like(est))


def test_band_split_mask_is_complex_product_with_mixture():
    torch.manual_seed(1)
    dec_mask = BandSplitDecoder(8, n_src=2, output="mask", **BSR)
    dec_map = BandSplitDecoder(8, n_src=2, output="mapping", **BSR)
    dec_map.load_state_dict(dec_mask.state_dict())
    feats, mix = torch.randn(1, 8, 2, dec_mask.n_bands), stft_like(frames=2)
    mask = dec_map(feats, mix)
    est = dec_mask(feats, mix)
    as_complex = torch.complex(mask[:, :, 0], mask[:, :, 1]) * torch.complex(mix[:, 0], mix[:, 1])
    torch.testing.assert_close(est, torch.stack((as_complex.real, as_complex.imag), dim=2))


def _tuss_band_split_module():
    ref = _ref_dir("LIR_TUSS_REF", "nets/tuss.py")
    source = (ref / "nets/tuss.py").read_text()
    wanted = [
        n
        for n in ast.parse(source).body
        if (isinstance(n, ast.ClassDef) and n.name == "BandSplitModule")
        or (isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "BAND_SPLIT")
    ]
    namespace = {"math": math, "torch": torch, "nn": nn, "accumulate": accumulate}
    namespace["Optional"] = Optional
    exec(compile(ast.Module(wanted, []), "tuss_band_split", "exec"), namespace)
    return namespace["BandSplitModule"]


def test_band_split_loads_tuss_reference_weights_and_matches_it():
    reference_cls = _tuss_band_split_module()
    torch.manual_seed(0)
    ref = reference_cls(2, 16, 2048, 48000)  # num_src, emb_dim, stft_size, sample_rate
    holder = nn.Module()
    holder.encoder = BandSplitEncoder(16, **BSR)
    holder.decoder = BandSplitDecoder(16, n_src=2, **BSR)
    assert ref.bands == holder.encoder.bands.widths
    renamed = {}
    for key, value in ref.state_dict().items():
        for theirs, ours in tuss_band_split_key_map().items():
            if ("band_split_module." + key).startswith(theirs):
                renamed[ours + ("band_split_module." + key)[len(theirs) :]] = value
    holder.load_state_dict(renamed, strict=True)

    spec = stft_like(frames=4)
    feats_ref = ref.band_split(spec.permute(0, 2, 3, 1))  # reference input: (batch, T, F, 2)
    feats = holder.encoder(spec)
    torch.testing.assert_close(feats, feats_ref, rtol=1e-4, atol=1e-5)
    mask_ref = ref.bandwise_decoding(feats_ref)  # (batch, re/im, source, T, F)
    mask_c = torch.complex(mask_ref[:, 0], mask_ref[:, 1])  # TUSS's own masking:
    est_ref = torch.complex(spec[:, 0], spec[:, 1])[:, None] * mask_c
    est = holder.decoder(feats, spec)
    torch.testing.assert_close(est[:, :, 0], est_ref.real, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(est[:, :, 1], est_ref.imag, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------ SFC-CA
@pytest.mark.parametrize("query_type", ["learnable", "adaptive"])
@pytest.mark.parametrize("kw", [MUSICAL, BSR], ids=["musical", "bs_roformer"])
def test_sfc_shapes_at_1025_bins(kw, query_type):
    enc = SFCEncoder(24, d_inner=16, query_type=query_type, **kw)
    dec = SFCDecoder(24, n_src=2, d_inner=16, query_type=query_type, **kw)
    spec = stft_like(batch=2)
    feats, context = enc.forward_with_context(spec)
    assert feats.shape == (2, 24, 3, enc.n_bands)
    assert context.shape == (2, 3, F_1025, 16)
    assert dec(feats, spec, context).shape == (2, 2, 2, 3, F_1025)


def test_sfc_is_several_times_smaller_than_band_split():
    # Same band configuration and channel size: musical 64 bands, 44.1 kHz, n_fft 2048, d = 96.
    sfc = n_params(SFCEncoder(96, **MUSICAL)) + n_params(SFCDecoder(96, n_src=1, **MUSICAL))
    bs = n_params(BandSplitEncoder(96, **MUSICAL)) + n_params(BandSplitDecoder(96, 1, **MUSICAL))
    assert bs > 5 * sfc  # measured: 15.58 M vs 0.99 M


def _in_band_mass(weights: torch.Tensor, member: torch.Tensor) -> torch.Tensor:
    return (weights * member).sum(-1)  # (frames, heads, queries)


def _band_plus(cfg: BandConfig, margin: int) -> torch.Tensor:
    wide = torch.zeros(cfg.n_bands, cfg.n_freqs, dtype=torch.bool)
    for k, (s, e) in enumerate(cfg.bands):
        wide[k, max(0, s - margin) : e + margin] = True
    return wide


@torch.no_grad()
def test_sfc_encoder_bias_makes_queries_attend_to_their_band():
    spec = stft_like(frames=4)
    torch.manual_seed(0)
    with_bias = SFCEncoder(96, **MUSICAL)
    torch.manual_seed(0)
    without = SFCEncoder(96, position_bias=False, **MUSICAL)
    cfg = with_bias.bands
    member, widths = cfg.membership(), torch.tensor(cfg.widths)

    mass = _in_band_mass(with_bias.attention_weights(spec), member)
    mass_none = _in_band_mass(without.attention_weights(spec), member)
    # With the bias: > 90 % inside the own band for every query whose band has >= 32 bins, and
    # > 90 % within the band widened by 3 bins for every query. The bias alone caps narrow bands
    # (2 bins: 1.6 / 2.8 = 58 % at slope 1), so "> 90 % inside" cannot hold for all 64.
    assert mass[..., widths >= 32].min() > 0.9
    assert _in_band_mass(with_bias.attention_weights(spec), _band_plus(cfg, 3)).min() > 0.9
    assert mass.mean() > 0.7
    # Without it: nearly uniform over the 1025 bins, no query comes close.
    assert mass_none.max() < 0.5 and mass_none.mean() < 0.1
    assert _in_band_mass(without.attention_weights(spec), _band_plus(cfg, 3)).max() < 0.5


@torch.no_grad()
def test_sfc_decoder_bias_makes_bins_attend_to_their_bands():
    torch.manual_seed(0)
    with_bias = SFCDecoder(96, 1, **MUSICAL)
    torch.manual_seed(0)
    without = SFCDecoder(96, 1, position_bias=False, **MUSICAL)
    feats = torch.randn(1, 96, 4, with_bias.n_bands)
    member_t = with_bias.bands.membership().T  # (F, K): bin f lies in band k
    mass = _in_band_mass(with_bias.attention_weights(feats), member_t)
    mass_none = _in_band_mass(without.attention_weights(feats), member_t)
    assert mass.median() > 0.95 and mass.mean() > 0.9
    assert mass_none.mean() < 0.1


@torch.no_grad()
def test_sfc_mask_outside_bands_keeps_all_attention_inside():
    enc = SFCEncoder(16, mask_outside_bands=True, **BSR)
    mass = _in_band_mass(enc.attention_weights(stft_like(frames=2)), enc.bands.membership())
    torch.testing.assert_close(mass, torch.ones_like(mass))


@torch.no_grad()
def test_sfc_attention_weights_are_what_forward_uses():
    enc = SFCEncoder(32, d_inner=16, **MUSICAL)
    spec = stft_like(frames=2)
    block = enc.block
    _, kv = enc._flat(spec)
    query = enc.queries(kv)
    weights = block.attention_weights(kv, query)
    _, _, v = block.project(block.norm_kv(kv), block.norm_q(query))
    attn = block.out_proj((weights @ v).transpose(1, 2).reshape(kv.shape[0], enc.n_bands, -1))
    expected = attn + block.mlp(block.norm_mlp(attn))
    torch.testing.assert_close(block(kv, query), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: (SFCEncoder(16, **MUSICAL), SFCDecoder(16, 1, **MUSICAL)),
        lambda: (
            SFCEncoder(16, query_type="adaptive", **BSR),
            SFCDecoder(16, 1, query_type="adaptive", output="mapping", **BSR),
        ),
        lambda: (BandSplitEncoder(16, **MUSICAL), BandSplitDecoder(16, 1, **MUSICAL)),
    ],
    ids=["sfc-learnable", "sfc-adaptive", "band-split"],
)
def test_gradients_reach_every_parameter(make):
    enc, dec = make()
    spec = stft_like(frames=3)
    feats, context = enc.forward_with_context(spec)
    dec(feats, spec, context).square().mean().backward()
    for module in (enc, dec):
        for name, p in module.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (SFCEncoder, dict(channels=16, query_type="adaptive", slopes=[1, 2, 1, 0.5])),
        (SFCDecoder, dict(channels=16, n_src=2, mask_outside_bands=True, output="mapping")),
        (BandSplitEncoder, dict(channels=8, band_config=[0, 100, 400, F_1025])),
        (BandSplitDecoder, dict(channels=8, n_src=2, band_config=[[0, 300], [200, F_1025]])),
    ],
)
def test_get_config_rebuilds_the_same_module(cls, kwargs):
    kwargs = {"sample_rate": 44100, "n_fft": 2048, **kwargs}
    module = cls(**kwargs)
    clone = cls(**module.get_config())
    clone.load_state_dict(module.state_dict())
    feats = torch.randn(1, module.channels, 2, module.n_bands)
    spec = stft_like(frames=2)
    args = (spec,) if "Encoder" in cls.__name__ else (feats, spec)
    torch.testing.assert_close(clone(*args), module(*args))


@pytest.mark.parametrize("family", ["sfc", "band_split"])
def test_trace_matches_eager(family):
    enc_cls, dec_cls = (
        (SFCEncoder, SFCDecoder) if family == "sfc" else (BandSplitEncoder, BandSplitDecoder)
    )
    # 1025 bins, few bands (tracing 61 per-band modules is slow and shows nothing more).
    kw = dict(sample_rate=48000, n_fft=2048, band_config=[0, 40, 200, 500, F_1025])
    enc, dec = enc_cls(16, **kw).eval(), dec_cls(16, 1, **kw).eval()
    spec = stft_like(frames=3)
    traced_enc = torch.jit.trace(enc, (spec,))
    feats = enc(spec)
    traced_dec = torch.jit.trace(dec, (feats, spec))
    other = stft_like(frames=5)
    torch.testing.assert_close(traced_enc(other), enc(other))
    torch.testing.assert_close(traced_dec(enc(other), other), dec(enc(other), other))


def test_bad_inputs_raise_clear_errors():
    enc, dec = SFCEncoder(16, **MUSICAL), SFCDecoder(16, 1, **MUSICAL)
    bs_enc, bs_dec = BandSplitEncoder(16, **MUSICAL), BandSplitDecoder(16, 1, **MUSICAL)
    for module in (enc, bs_enc):
        with pytest.raises(ValueError, match=r"\(batch, 2, frames, 1025\).*got \(1, 2, 3, 1024\)"):
            module(torch.randn(1, 2, 3, 1024))
        with pytest.raises(ValueError, match=r"\(batch, 2, frames, 1025\).*got \(1, 3, 3, 1025\)"):
            module(torch.randn(1, 3, 3, F_1025))
        with pytest.raises(ValueError, match="1025"):
            module(torch.randn(2, 3, F_1025))
        with pytest.raises(TypeError, match="real and imaginary parts stacked"):
            module(torch.randn(1, 3, F_1025, dtype=torch.complex64))
        with pytest.raises(ValueError, match="empty"):
            module(torch.randn(1, 2, 0, F_1025))
    spec = stft_like(frames=2)
    for module in (dec, bs_dec):
        with pytest.raises(ValueError, match=r"\(batch, 16, frames, 64\).*got \(1, 8, 2, 64\)"):
            module(torch.randn(1, 8, 2, 64), spec)
        with pytest.raises(ValueError, match=r"64 bands.*got \(1, 16, 2, 61\)"):
            module(torch.randn(1, 16, 2, 61), spec)
        with pytest.raises(ValueError, match="mixture"):
            module(torch.randn(1, 16, 2, 64), torch.randn(1, 2, 2, 513))
        with pytest.raises(ValueError, match="does not match"):
            module(torch.randn(1, 16, 2, 64), stft_like(frames=5))
    adaptive = SFCDecoder(16, 1, query_type="adaptive", **MUSICAL)
    with pytest.raises(ValueError, match="needs the encoder's context"):
        adaptive(torch.randn(1, 16, 2, 64), spec)
    with pytest.raises(ValueError, match="context must be shaped"):
        adaptive(torch.randn(1, 16, 2, 64), spec, torch.randn(1, 2, F_1025, 8))
    with pytest.raises(ValueError, match="query_type"):
        SFCEncoder(16, query_type="random", **MUSICAL)
    with pytest.raises(ValueError, match="multiple of n_heads"):
        SFCEncoder(16, d_inner=18, n_heads=4, **MUSICAL)
    with pytest.raises(ValueError, match="output must be one of"):
        BandSplitDecoder(16, 1, output="spectrum", **MUSICAL)
    with pytest.raises(ValueError, match="mask_outside_bands=True needs position_bias"):
        SFCDecoder(16, 1, position_bias=False, mask_outside_bands=True, **MUSICAL)
    with pytest.raises(ValueError, match="slopes for 4 heads"):
        SFCEncoder(16, slopes=[1.0, 2.0], **MUSICAL)


# ------------------------------------------------------------------------------ authors' code
def _authors_modules(monkeypatch):
    ref = _ref_dir("LIR_SFC_REF", "spectral_feature_compression/core/model/crossattn_enc_dec.py")
    # Their band module imports spafe and librosa at import time; only librosa's two MIDI
    # conversions are used by the musical configuration.
    librosa = types.ModuleType("librosa")
    librosa.hz_to_midi = lambda f: 12 * (np.log2(np.asanyarray(f)) - np.log2(440.0)) + 69
    librosa.midi_to_hz = lambda m: 440.0 * (2.0 ** ((np.asanyarray(m) - 69.0) / 12.0))
    spafe_fbanks = types.ModuleType("spafe.fbanks")
    spafe_fbanks.bark_fbanks = None
    converters = types.ModuleType("spafe.utils.converters")
    converters.hz2bark = converters.hz2erb = None
    for name, module in {
        "librosa": librosa,
        "spafe": types.ModuleType("spafe"),
        "spafe.fbanks": spafe_fbanks,
        "spafe.utils": types.ModuleType("spafe.utils"),
        "spafe.utils.converters": converters,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    for name in list(sys.modules):
        if name.startswith("spectral_feature_compression"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(ref))
    import importlib

    module = importlib.import_module("spectral_feature_compression.core.model.crossattn_enc_dec")
    # They pin the CUDA memory-efficient SDPA kernel, which CPU builds do not have.
    monkeypatch.setattr(module, "sdpa_kernel", lambda *_: __import__("contextlib").nullcontext())
    return module


@pytest.mark.parametrize("query_type", ["learnable", "adaptive"])
def test_sfc_matches_the_authors_code(monkeypatch, query_type):
    theirs = _authors_modules(monkeypatch)
    common = dict(d_inner=16, d_model=24, n_chan=1, sample_rate=44100, n_fft=2048, n_bands=64)
    common.update(band_config="musical", query_type=query_type, n_heads=4)
    torch.manual_seed(0)
    ref_enc = theirs.CrossAttnEncoder(**common)
    ref_dec = theirs.CrossAttnDecoder(n_src=2, **common)
    enc = SFCEncoder(24, d_inner=16, query_type=query_type, **MUSICAL)
    dec = SFCDecoder(24, n_src=2, d_inner=16, query_type=query_type, **MUSICAL)
    for ours, ref in ((enc, ref_enc), (dec, ref_dec)):
        # Same initial bias (band formula; transposed in the decoder), one copy per head.
        torch.testing.assert_close(ours.block.position_bias.bias, ref.block.mixer.pos_bias.pos_bias)
        with torch.no_grad():  # move their random initial bias off the shared init
            ref.block.mixer.pos_bias.pos_bias.add_(
                torch.randn_like(ref.block.mixer.pos_bias.pos_bias)
            )
        ours.load_state_dict(convert_sfc_reference_state_dict(ref.state_dict(), ours), strict=True)

    spec = stft_like(frames=3)
    ref_feats, ref_emb = ref_enc(spec)
    feats, context = enc.forward_with_context(spec)
    torch.testing.assert_close(feats, ref_feats, rtol=1e-4, atol=1e-5)
    ref_out, _ = ref_dec(ref_feats, query=ref_emb)  # (batch, 2 * n_src, T, F): (re/im, source)
    ref_out = ref_out.reshape(1, 2, 2, 3, F_1025)
    mask = torch.complex(ref_out[:, 0], ref_out[:, 1])  # BS-Locoformer: masking=True
    ref_est = mask * torch.complex(spec[:, 0], spec[:, 1])[:, None]
    est = dec(feats, spec, context)
    torch.testing.assert_close(est[:, :, 0], ref_est.real, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(est[:, :, 1], ref_est.imag, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("query_type", ["learnable", "adaptive"])
def test_sfc_inference_in_frame_chunks_gives_the_training_path_outputs(query_type):
    # 4 heads x 64 x 1025 scores per frame: an inference pass of 40 frames runs in chunks of 16
    # frames (the last one shorter); with autograd on, all frames go through at once.
    torch.manual_seed(0)
    enc = SFCEncoder(16, d_inner=16, query_type=query_type, **MUSICAL)
    dec = SFCDecoder(16, 2, d_inner=16, query_type=query_type, **MUSICAL)
    spec = stft_like(batch=2, frames=20)
    feats, ctx = enc.forward_with_context(spec)
    est = dec(feats, spec, context=ctx)
    with torch.no_grad():
        feats_nc, ctx_nc = enc.forward_with_context(spec)
        est_nc = dec(feats_nc, spec, context=ctx_nc)
    torch.testing.assert_close(feats_nc, feats.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(est_nc, est.detach(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding", ["reflect", "zero"])
@pytest.mark.parametrize("length", [1000, 1001])
def test_stacked_stft_round_trip_and_layout(padding, length):
    from asteroid_lir.filterbanks import StackedSTFT

    wav = torch.randn(3, length)
    window = torch.hann_window(64)
    stft = StackedSTFT(64, 16, 64, "hann", padding=padding)
    spec = stft(wav)
    assert spec.shape[:2] == (3, 2) and spec.shape[-1] == 33
    # Frame t, bin f equals the complex STFT's value there.
    ref = torch.stft(wav, 64, 16, 64, window, center=True, return_complex=True)
    if padding == "reflect":
        torch.testing.assert_close(spec[:, 0], ref.real.transpose(1, 2))
    back = stft.inverse(spec[None], length)
    assert back.shape == (1, 3, length)
    torch.testing.assert_close(back[0], wav, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="padding"):
        StackedSTFT(64, 16, 64, "hann", padding="circular")
