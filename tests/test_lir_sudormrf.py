"""LIRSuDORMRFNet / IterativeSuDORMRF: structure, equality with Asteroid, BaseModel contract."""

import numpy as np
import pytest
import soundfile as sf
import torch
from asteroid.masknn.convolutional import UConvBlock
from asteroid.models import BaseModel, SuDORMRFImprovedNet

from asteroid_lir.masknn import FastUConvBlock, IterativeSuDORMRF
from asteroid_lir.models import LIRSuDORMRFNet

SMALL = dict(n_filters=32, bn_chan=16, upsampling_depth=3, kernel_size=21, stride=10)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


# ---------------------------------------------------------------- paper Table 1
# Exact counts (they equal Asteroid's SuDORMRFImprovedNet with as many U-ConvBlocks). The paper
# rounds to 0.1 M and differs in places (egs/wham/README.md): paper 0.4/0.5, 0.8/1.0, 1.4/1.5,
# 2.6/2.7 and 1.4/1.5 M.
@pytest.mark.parametrize(
    "blocks, sub_blocks, iters, enh, sep",
    [
        (1, 1, 1, 375_042, 441_090),
        (1, 4, 1, 839_301, 905_349),
        (1, 8, 1, 1_458_313, 1_524_361),
        (1, 16, 1, 2_696_337, 2_762_385),
        (2, 4, 2, 1_458_313, 1_524_361),
    ],
)
def test_table1_parameter_counts(blocks, sub_blocks, iters, enh, sep):
    # Enhancement estimates speech + noise (2 outputs), noisy separation 2 speakers + noise (3).
    assert n_params(LIRSuDORMRFNet(2, blocks, sub_blocks, n_iters=iters)) == enh
    assert n_params(LIRSuDORMRFNet(3, blocks, sub_blocks, n_iters=iters)) == sep


def test_iterations_add_no_parameters():
    counts = {n_params(LIRSuDORMRFNet(2, 1, 2, n_iters=i, **SMALL)) for i in (1, 2, 4, 16)}
    assert len(counts) == 1
    per_block = LIRSuDORMRFNet(2, 2, 2, n_iters=[1, 3], **SMALL)
    assert n_params(per_block) == n_params(LIRSuDORMRFNet(2, 2, 2, n_iters=1, **SMALL))


def test_one_uconvblock_size_matches_paper():
    block = FastUConvBlock(out_chan=128, in_chan=512, upsampling_depth=5)
    assert 147_000 <= n_params(block) <= 155_000


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match="n_iters has 3 entries"):
        IterativeSuDORMRF(32, 2, n_blocks=2, n_iters=[1, 2, 3])
    with pytest.raises(ValueError, match="at least one iteration"):
        IterativeSuDORMRF(32, 2, n_iters=0)
    with pytest.raises(ValueError, match="n_blocks"):
        IterativeSuDORMRF(32, 2, n_blocks=0)


# ---------------------------------------------------------------- Asteroid equivalence
@pytest.mark.parametrize("length", [1600, 1603, 3201])
def test_fast_uconvblock_matches_asteroid_forward_and_backward(length):
    ref = UConvBlock(out_chan=16, in_chan=32, upsampling_depth=4)
    fast = FastUConvBlock(out_chan=16, in_chan=32, upsampling_depth=4)
    fast.load_state_dict(ref.state_dict())
    x1 = torch.randn(2, 16, length, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    y1, y2 = ref(x1), fast(x2)
    assert y1.shape == y2.shape
    assert rel_err(y2, y1) < 1e-5
    y1.square().sum().backward()
    y2.square().sum().backward()
    assert rel_err(x2.grad, x1.grad) < 1e-4
    for (name, p1), p2 in zip(ref.named_parameters(), fast.parameters()):
        assert rel_err(p2.grad, p1.grad) < 1e-3, name


@pytest.mark.parametrize("n_src, blocks, depth", [(2, 3, 4), (3, 2, 5)])
def test_from_asteroid_gives_same_output(n_src, blocks, depth):
    ref = SuDORMRFImprovedNet(
        n_src=n_src, num_blocks=blocks, upsampling_depth=depth, n_filters=64, bn_chan=32
    ).eval()
    # Perturb every parameter so that a mapping mistake cannot hide behind default inits.
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ours = LIRSuDORMRFNet.from_asteroid(ref).eval()
    assert (ours.n_blocks, ours.masker.n_sub_blocks, ours.masker.n_iters) == (1, blocks, [1])
    wav = torch.randn(2, 4013)
    with torch.no_grad():
        assert rel_err(ours(wav), ref(wav)) < 1e-5
    # The serialized package of an Asteroid model converts as well.
    again = LIRSuDORMRFNet.from_asteroid(ref.serialize()).eval()
    with torch.no_grad():
        assert rel_err(again(wav), ref(wav)) < 1e-5


def test_from_asteroid_rejects_other_models():
    with pytest.raises(TypeError, match="SuDORMRFImprovedNet"):
        LIRSuDORMRFNet.from_asteroid(torch.nn.Linear(2, 2))


# ---------------------------------------------------------------- anytime inference
def test_forward_steps_are_the_truncated_forwards():
    model = LIRSuDORMRFNet(
        3, n_blocks=2, n_sub_blocks=1, n_iters=[2, 1], head_per_block=True, **SMALL
    ).eval()
    assert model.n_steps == 3
    wav = torch.randn(2, 1600)
    with torch.no_grad():
        steps = model.forward_steps(wav)
        full = model(wav)
        assert len(steps) == 3
        for k, est in enumerate(steps, start=1):
            assert est.shape == full.shape == (2, 3, 1600)
            assert torch.allclose(est, model(wav, n_steps=k), atol=1e-6)
        assert torch.allclose(steps[-1], full, atol=1e-6)
        # Every step refines: consecutive estimates differ.
        assert not torch.allclose(steps[0], steps[1])
        assert len(model.forward_steps(wav, n_steps=2)) == 2
    with pytest.raises(ValueError, match="n_steps must be in"):
        model(wav, n_steps=4)


def test_heads_follow_their_blocks():
    model = LIRSuDORMRFNet(2, n_blocks=2, n_sub_blocks=1, n_iters=1, head_per_block=True, **SMALL)
    assert len(model.masker.mask_nets) == 2 and len(model.block_decoders) == 1
    assert model.decoder_for(0) is model.block_decoders[0]
    assert model.decoder_for(1) is model.decoder
    single = LIRSuDORMRFNet(2, n_blocks=2, n_sub_blocks=1, n_iters=1, **SMALL)
    assert len(single.masker.mask_nets) == 1 and len(single.block_decoders) == 0


# ---------------------------------------------------------------- Asteroid BaseModel contract
@pytest.fixture
def model():
    return LIRSuDORMRFNet(2, n_blocks=2, n_sub_blocks=1, n_iters=[2, 1], **SMALL).eval()


def test_shapes(model):
    with torch.no_grad():
        assert model(torch.randn(1600)).shape == (2, 1600)
        assert model(torch.randn(3, 1600)).shape == (3, 2, 1600)
        assert model(torch.randn(3, 1, 1601)).shape == (3, 2, 1601)


def test_serialize_roundtrip_through_asteroid(model, tmp_path):
    wav = torch.randn(2, 1600)
    path = tmp_path / "model.pth"
    torch.save(model.serialize(), path)
    # Asteroid's own loader (torch.load with weights_only=True) must read our files.
    for loaded in (
        BaseModel.from_pretrained(str(path)),
        LIRSuDORMRFNet.from_pretrained(str(path)),
        LIRSuDORMRFNet.from_pretrained(model.serialize()),
    ):
        assert isinstance(loaded, LIRSuDORMRFNet)
        loaded.eval()
        with torch.no_grad():
            assert torch.equal(loaded(wav), model(wav))
    assert BaseModel.from_pretrained(str(path)).sample_rate == 8000
    conf = model.serialize()
    del conf["model_args"]["sample_rate"]
    assert LIRSuDORMRFNet.from_pretrained(conf).sample_rate == 8000
    assert LIRSuDORMRFNet.from_pretrained(str(path), sample_rate=16000).sample_rate == 16000


def test_from_pretrained_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model file"):
        LIRSuDORMRFNet.from_pretrained(str(tmp_path / "missing.pth"))
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        LIRSuDORMRFNet.from_pretrained(str(empty))


def test_separate_tensor_numpy_and_file(model, tmp_path):
    wav = torch.randn(1, 1, 1600)
    out_t = model.separate(wav)
    out_n = model.separate(wav.numpy())
    assert out_t.shape == (1, 2, 1600) and isinstance(out_n, np.ndarray)
    np.testing.assert_allclose(out_n, out_t.numpy(), rtol=1e-5, atol=1e-6)
    path = tmp_path / "mix.wav"
    sf.write(path, wav[0, 0].numpy() * 0.1, 8000)
    model.separate(str(path))
    est1, sr = sf.read(tmp_path / "mix_est1.wav")
    assert sr == 8000 and est1.shape == (1600,)
    assert (tmp_path / "mix_est2.wav").exists()


def test_bad_input_gives_clear_errors(model, tmp_path):
    with pytest.raises(ValueError, match="1, 2 or 3 dimensions"):
        model.separate(torch.randn(1, 1, 1, 1600))
    with pytest.raises(ValueError, match="empty"):
        model.separate(torch.zeros(1, 0))
    with pytest.raises(ValueError, match="NaN"):
        model.separate(torch.full((1, 1600), float("nan")))
    with pytest.raises(ValueError, match="silent"):
        model.separate(torch.zeros(1, 1600))
    wrong_sr = tmp_path / "wrong_sr.wav"
    sf.write(wrong_sr, np.random.randn(1600) * 0.1, 16000)
    with pytest.raises(RuntimeError, match="sampling rate of 16000Hz"):
        model.separate(str(wrong_sr))
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), 8000)
    with pytest.raises(ValueError, match="empty"):
        model.separate(str(empty))


def test_jit_trace_matches_eager_on_another_length(model):
    traced = torch.jit.trace(model, torch.randn(1, 1600), check_trace=False)
    other = torch.randn(2, 2403)
    with torch.no_grad():
        assert torch.allclose(traced(other), model(other), atol=1e-5)


def test_registered_with_asteroid():
    from asteroid.models import get

    assert get("LIRSuDORMRFNet") is LIRSuDORMRFNet
