"""TF-Locoformer: modules, TFLocoformerNet contract, and equality with MERL's reference.

The reference comparisons load MERL's ``tflocoformer_separator.py`` (and ESPnet's STFT
encoder/decoder, rotary-embedding-torch 0.6.1) from a scratch folder outside the repository, found
through ``LIR_TFLOCOFORMER_REF`` / ``LIR_TFLOCOFORMER_SITE`` (defaults ``/tmp/scratch/tflocoformer``
and ``/tmp/scratch/site``; see ``asteroid_lir/bench/tflocoformer.py`` for how to prepare them);
they are skipped with a message when it is absent.
"""

import numpy as np
import pytest
import soundfile as sf
import torch
from asteroid.models import BaseModel

from asteroid_lir.bench.tflocoformer import (
    build_pair,
    load_reference,
    randomize_,
    reference_paths,
)
from asteroid_lir.convert.espnet import reference_config
from asteroid_lir.masknn import (
    ConvSwiGLUFFN,
    LocoformerBlock,
    RMSGroupNorm,
    RotaryEmbedding,
    RotaryMultiHeadSelfAttention,
    TFLocoformer,
    TFLocoformerBlock,
)
from asteroid_lir.models import TFLocoformerNet

TINY = dict(
    n_layers=1,
    emb_dim=16,
    attention_dim=16,
    n_heads=2,
    num_groups=2,
    ffn_hidden_dim=[8, 8],
    conv1d_kernel=3,
    n_fft=64,
    hop_length=16,
)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.fixture(scope="module")
def ref():
    import os
    import sys

    # The benchmark's loader imports what is on the path; a test may put the folders there.
    for path in reference_paths():
        if os.path.isdir(path) and path not in sys.path:
            sys.path.append(path)
    mods, reason = load_reference()
    if mods is None:
        pytest.skip(f"reference comparison skipped: {reason}")
    return mods


def tiny_model(**kw):
    return randomize_(TFLocoformerNet(**{**TINY, **kw})).eval()


# ---------------------------------------------------------------- sizes
@pytest.mark.parametrize(
    "preset, exact, published_m",
    [("S", 5_125_220, 5.125), ("M", 14_975_620, 14.976), ("L", 22_459_780, 22.460)],
)
def test_preset_parameter_counts(preset, exact, published_m):
    model = TFLocoformerNet.from_preset(preset, n_src=2)
    count = n_params(model)
    # The reference also counts its two RoPE frequency vectors (2 x 16) as parameters; ours are
    # buffers (never learnt), so the published figures are 32 above these exact counts.
    assert count == exact
    assert abs(count / 1e6 - published_m) <= 0.01 * published_m


def test_preset_stft_scales_with_sample_rate_and_bad_name():
    model = TFLocoformerNet.from_preset("S", n_src=3, sample_rate=16000, n_layers=1)
    assert (model.n_fft, model.hop_length, model.n_src) == (512, 128, 3)
    with pytest.raises(ValueError, match="Unknown TF-Locoformer preset"):
        TFLocoformerNet.from_preset("XL")


def test_state_dict_names_follow_the_reference_layout():
    keys = set(TFLocoformer(n_layers=2, emb_dim=16, attention_dim=16).state_dict())
    for path in ("freq_path", "frame_path"):
        prefix = f"blocks.0.1.{path}."
        for name in (
            "ffn_norm.0.gamma",
            "ffn_norm.1.gamma",
            "ffn.0.conv1d.weight",
            "ffn.1.deconv1d.bias",
            "attn_norm.gamma",
            "attn.qkv.weight",
            "attn.aggregate_heads.0.weight",
            "attn.rope.freqs",
        ):
            assert prefix + name in keys
    # The output head is head 0 of the refinement core (the reference's `deconv`).
    assert {"conv.0.weight", "conv.1.weight", "deconv.0.weight"} <= keys


def test_separator_config_round_trip():
    sep = TFLocoformer(n_src=3, n_layers=2, emb_dim=16, attention_dim=16, ffn_hidden_dim=[8, 12])
    clone = TFLocoformer(**sep.get_config())
    assert {k: v.shape for k, v in clone.state_dict().items()} == {
        k: v.shape for k, v in sep.state_dict().items()
    }
    spec = torch.randn(2, 2, 5, 9)
    assert sep(spec).shape == (2, 3, 2, 5, 9)


# ---------------------------------------------------------------- behaviour for any input
@pytest.mark.parametrize("length", [1, 31, 33, 127, 1001])
def test_output_length_equals_input_length(length):
    model = tiny_model()
    with torch.no_grad():
        out = model(torch.randn(2, length))
    assert out.shape == (2, 2, length)
    assert torch.isfinite(out).all()


def test_input_shapes():
    model = tiny_model()
    wav = torch.randn(3, 401)
    with torch.no_grad():
        out = model(wav)
        assert torch.allclose(model(wav[:, None]), out, atol=1e-6)
        assert torch.allclose(model(wav[0]), out[0], atol=1e-6)
    assert model(wav[0]).shape == (2, 401)


def test_batch_equals_items_one_by_one():
    model = tiny_model()
    wav = torch.randn(3, 517)
    wav[1] *= 10.0  # different scales: the variance normalisation is per item
    with torch.no_grad():
        batch = model(wav)
        one_by_one = torch.cat([model(w[None]) for w in wav])
    assert torch.allclose(batch, one_by_one, atol=1e-5, rtol=1e-4)


def test_scale_equivariance_from_variance_normalisation():
    model = tiny_model()
    wav = torch.randn(1, 600)
    with torch.no_grad():
        assert torch.allclose(model(3.0 * wav), 3.0 * model(wav), atol=1e-5, rtol=1e-4)


def test_inference_paths_equal_autograd_paths():
    # Without an autograd graph the blocks work in place (residuals, gate, RoPE): same result.
    model = tiny_model(n_layers=2)
    wav = torch.randn(2, 700)
    with torch.no_grad():
        fast = model(wav)
    slow = model(wav)
    assert slow.requires_grad
    assert torch.allclose(fast, slow.detach(), atol=1e-6, rtol=1e-5)


def test_chunked_inference_equals_whole_batch():
    model = tiny_model(n_layers=2)
    wav = torch.randn(2, 900)
    with torch.no_grad():
        whole = model(wav)
        for block in model.modules():
            if isinstance(block, LocoformerBlock):
                block.chunk_bytes = 1  # one sequence per chunk
        chunked = model(wav)
    assert torch.allclose(chunked, whole, atol=1e-6, rtol=1e-5)


def test_training_step_reaches_every_parameter():
    model = tiny_model(dropout=0.1).train()
    model(torch.randn(2, 500)).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_tf_order_and_single_ffn_variants_run():
    for kw in (dict(tf_order="tf"), dict(ffn_type="swiglu_conv1d", ffn_hidden_dim=8)):
        model = tiny_model(**kw)
        with torch.no_grad():
            assert model(torch.randn(1, 300)).shape == (1, 2, 300)


# ---------------------------------------------------------------- Asteroid contract
def test_serialize_and_from_pretrained_round_trip(tmp_path):
    model = tiny_model(n_src=3)
    path = tmp_path / "tflocoformer.pth"
    torch.save(model.serialize(), path)
    wav = torch.randn(2, 333)
    with torch.no_grad():
        expected = model(wav)
        for loaded in (
            TFLocoformerNet.from_pretrained(str(path)),
            BaseModel.from_pretrained(str(path)),
        ):
            assert isinstance(loaded, TFLocoformerNet)
            assert loaded.get_model_args() == model.get_model_args()
            assert torch.equal(loaded.eval()(wav), expected)


def test_separate_tensor_numpy_and_file(tmp_path):
    model = tiny_model()
    wav = torch.randn(1, 1, 800)
    with torch.no_grad():
        expected = model(wav)
    # No rescaling (Asteroid's separate() rescales; asteroid_lir keeps the model's scale).
    assert torch.allclose(model.separate(wav), expected, atol=1e-6)
    assert np.allclose(model.separate(wav.numpy()), expected.numpy(), atol=1e-6)
    path = tmp_path / "mix.wav"
    sf.write(path, 0.1 * wav[0, 0].numpy(), 8000)
    model.separate(str(path))
    for i in (1, 2):
        est, sr = sf.read(tmp_path / f"mix_est{i}.wav")
        assert sr == 8000 and est.shape == (800,)


def test_trace_equals_eager_on_other_inputs():
    model = tiny_model()
    traced = torch.jit.trace(model, torch.randn(2, 700), check_trace=False)
    with torch.no_grad():
        for wav in (torch.randn(2, 700), torch.randn(3, 1203)):
            assert torch.allclose(traced(wav), model(wav), atol=1e-5, rtol=1e-4)


def test_bad_inputs_raise_clear_errors():
    model = tiny_model()
    with pytest.raises(ValueError, match="single-channel"):
        model(torch.randn(2, 3, 100))
    with pytest.raises(ValueError, match="NaN"):
        model(torch.tensor([[0.1, float("nan"), 0.2] * 50]))
    with pytest.raises(ValueError, match="empty"):
        model(torch.zeros(2, 0))
    with pytest.raises(ValueError, match="dimensions"):
        model(torch.randn(1, 1, 1, 100))
    with pytest.raises(ValueError, match="silent"):
        model.forward_wav(torch.zeros(1, 100))
    with pytest.raises(ValueError, match="real/imaginary"):
        model.separator(torch.randn(1, 3, 4, 5))
    with pytest.raises(ValueError, match="Unsupported ffn_type"):
        TFLocoformer(ffn_type=["conv1d", "conv1d"])
    with pytest.raises(ValueError, match="tf_order"):
        TFLocoformer(tf_order="xy")


def test_from_espnet_key_handling():
    model = tiny_model(n_layers=2)
    conf = {**reference_config(model.separator), "flash_attention": False, "input_dim": None}
    espnet_sd = {
        k.replace("blocks.0.", "blocks.", 1).replace("deconv.0.", "deconv.", 1): v
        for k, v in model.separator.state_dict().items()
    }
    stft = dict(n_fft=TINY["n_fft"], hop_length=TINY["hop_length"])
    wav = torch.randn(1, 400)
    with torch.no_grad():
        expected = model(wav)
        for sd in (espnet_sd, {f"separator.{k}": v for k, v in espnet_sd.items()}):
            loaded = TFLocoformerNet.from_espnet(sd, conf, **stft).eval()
            assert torch.equal(loaded(wav), expected)
    with pytest.raises(ValueError, match="Unknown TF-Locoformer separator_conf keys"):
        TFLocoformerNet.from_espnet(espnet_sd, {**conf, "n_block": 3}, **stft)
    partial = {k: v for k, v in espnet_sd.items() if not k.startswith("blocks.1.")}
    with pytest.raises(ValueError, match="missing"):
        TFLocoformerNet.from_espnet(partial, conf, **stft)


# ---------------------------------------------------------------- modules alone
def test_rmsgroupnorm_normalises_each_group():
    norm = RMSGroupNorm(4, 16, eps=0.0)
    x = torch.randn(3, 7, 16) * torch.arange(1, 17)
    y = norm(x).unflatten(-1, (4, 4))
    assert torch.allclose(y.square().mean(-1), torch.ones(3, 7, 4), atol=1e-5)


def test_rope_preserves_norms_and_scores_depend_on_offsets_only():
    rope = RotaryEmbedding(8)
    q, k = torch.randn(2, 8), torch.randn(2, 8)
    x = torch.randn(2, 5, 8)
    assert torch.allclose(rope.rotate(x).norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    assert torch.allclose(rope.rotate(x)[:, 0], x[:, 0])  # position 0 is not rotated
    # <R_m q, R_n k> depends on n - m only: q at 0 / k at 2 scores as q at 1 / k at 3.
    seq = torch.zeros(2, 4, 8)
    first, second = seq.clone(), seq.clone()
    first[:, 0], first[:, 2], second[:, 1], second[:, 3] = q, k, q, k
    a, b = rope.rotate(first), rope.rotate(second)
    assert torch.allclose((a[:, 0] * a[:, 2]).sum(-1), (b[:, 1] * b[:, 3]).sum(-1), atol=1e-5)
    assert not torch.allclose((a[:, 0] * a[:, 2]).sum(-1), (q * k).sum(-1), atol=1e-3)
    y = torch.randn(2, 5, 3, 8)
    assert torch.allclose(rope.rotate_(y.clone(), seq_dim=-3), rope.rotate(y, seq_dim=-3))


def test_attention_depends_on_positions():
    attn = RotaryMultiHeadSelfAttention(12, attention_dim=16, n_heads=2).eval()
    x = torch.randn(2, 6, 12)
    assert attn(x).shape == x.shape
    # Without RoPE self-attention is permutation equivariant; with it, order matters.
    assert not torch.allclose(attn(x.flip(1)).flip(1), attn(x), atol=1e-4)


def test_locoformer_block_runs_on_any_sequence():
    block = LocoformerBlock(16, num_groups=2, n_heads=2, attention_dim=16, ffn_hidden_dim=[8, 8])
    tokens = torch.randn(3, 11, 16)  # e.g. prompts + SOS + frames: nothing is assumed
    assert block(tokens).shape == tokens.shape
    assert block(tokens[:, :1]).shape == (3, 1, 16)


def test_tflocoformer_block_accepts_any_memory_layout():
    block = TFLocoformerBlock(16, num_groups=2, n_heads=2, attention_dim=16, ffn_hidden_dim=[8, 8])
    z = torch.randn(2, 16, 5, 7)
    out = block(z)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(block(z.contiguous(memory_format=torch.channels_last)), out)


# ---------------------------------------------------------------- against the reference
def _load(ours, theirs):
    missing, unexpected = ours.load_state_dict(theirs.state_dict(), strict=True)
    assert not missing and not unexpected


def test_rope_matches_rotary_embedding_torch(ref):
    theirs = ref.rope.RotaryEmbedding(32)
    ours = RotaryEmbedding(32)
    ours.load_state_dict({"freqs": theirs.freqs.detach()})
    q = torch.randn(3, 4, 129, 32)
    expected = theirs.rotate_queries_or_keys(q)
    assert torch.allclose(ours.rotate(q), expected, atol=1e-6, rtol=1e-5)
    assert torch.allclose(ours.rotate_(q.clone()), expected, atol=1e-6, rtol=1e-5)


def test_rmsgroupnorm_matches_reference(ref):
    theirs = ref.separator.RMSGroupNorm(4, 96, eps=1e-5)
    randomize_(theirs)
    ours = RMSGroupNorm(4, 96, eps=1e-5)
    _load(ours, theirs)
    x = torch.randn(2, 9, 11, 96)
    x[0, 0, 0] = 0.0  # eps matters where a group is silent
    assert torch.allclose(ours(x), theirs(x), atol=1e-6, rtol=1e-5)


def test_attention_matches_reference(ref):
    theirs = ref.separator.MultiHeadSelfAttention(
        96, attention_dim=128, n_heads=4, rope=ref.rope.RotaryEmbedding(32)
    ).eval()
    ours = RotaryMultiHeadSelfAttention(96, attention_dim=128, n_heads=4).eval()
    _load(ours, theirs)
    x = torch.randn(5, 37, 96)
    with torch.no_grad():
        expected = theirs(x)
        assert rel_err(ours(x), expected) < 1e-5
    assert rel_err(ours(x).detach(), expected) < 1e-5


@pytest.mark.parametrize("kernel, shift", [(8, 1), (4, 1), (1, 1), (4, 2), (5, 3)])
def test_ffn_matches_reference(ref, kernel, shift):
    theirs = ref.separator.SwiGLUConvDeconv1d(24, 16, kernel, shift).eval()
    ours = ConvSwiGLUFFN(24, 16, kernel, shift).eval()
    _load(ours, theirs)
    x = torch.randn(2, 3, 19, 24)
    with torch.no_grad():
        expected = theirs(x).reshape(6, 19, 24)
        assert rel_err(ours(x.reshape(6, 19, 24)), expected) < 1e-5


@pytest.mark.parametrize(
    "norm_type, ffn", [("rmsgroupnorm", 2), ("layernorm", 2), ("rmsgroupnorm", 1)]
)
def test_locoformer_block_matches_reference(ref, norm_type, ffn):
    kw = dict(
        emb_dim=32,
        norm_type=norm_type,
        num_groups=4,
        n_heads=2,
        attention_dim=32,
        ffn_type=["swiglu_conv1d"] * ffn,
        ffn_hidden_dim=[24, 40][:ffn],
        conv1d_kernel=4,
        conv1d_shift=1,
        eps=1e-5,
    )
    theirs = ref.separator.LocoformerBlock(ref.rope.RotaryEmbedding(16), **kw).eval()
    randomize_(theirs)
    ours = LocoformerBlock(**kw).eval()
    _load(ours, theirs)
    x = torch.randn(2, 5, 13, 32)
    with torch.no_grad():
        expected = theirs(x)
        assert rel_err(ours(x.reshape(10, 13, 32)).view(2, 5, 13, 32), expected) < 1e-5


@pytest.mark.parametrize("tf_order", ["ft", "tf"])
def test_tflocoformer_block_matches_reference(ref, tf_order):
    kw = dict(
        emb_dim=32,
        norm_type="rmsgroupnorm",
        num_groups=4,
        tf_order=tf_order,
        n_heads=2,
        attention_dim=32,
        ffn_type=["swiglu_conv1d"] * 2,
        ffn_hidden_dim=[24, 24],
        conv1d_kernel=4,
        conv1d_shift=1,
    )
    rope = ref.rope.RotaryEmbedding
    theirs = ref.separator.TFLocoformerBlock(rope(16), rope(16), **kw).eval()
    randomize_(theirs)
    ours = TFLocoformerBlock(**kw).eval()
    _load(ours, theirs)
    z = torch.randn(2, 32, 9, 13)
    with torch.no_grad():
        assert rel_err(ours(z), theirs(z)) < 1e-5


@pytest.mark.parametrize(
    "preset, overrides", [("S", {}), ("M", {"n_layers": 2})], ids=["S", "M-shaped"]
)
def test_from_espnet_waveform_parity(ref, preset, overrides):
    ours, theirs = build_pair(preset, mods=ref, **overrides)
    wav = torch.randn(1, 1201)
    with torch.no_grad():
        expected = theirs(wav)
        est = ours(wav)
    assert est.shape == expected.shape == (1, 2, 1201)
    assert rel_err(est, expected) < 1e-4
