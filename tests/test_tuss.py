"""TUSS: prompt handling, the model contract, presets, long inputs and parity with MERL's code.

The reference comparisons import MERL's unified-source-separation code (``nets/``, ``utils/``,
``loss_functions/``; AGPL, never copied into this repository) from a scratch folder found through
``LIR_TUSS_REF`` (default ``/tmp/scratch/tuss``), with ``rotary-embedding-torch`` 0.6.1 and its
import ``beartype`` from ``LIR_TUSS_SITE`` (default ``/tmp/scratch/site``). To prepare them::

    git clone https://github.com/merlresearch/unified-source-separation /tmp/scratch/tuss
    python -m pip install --no-deps --target /tmp/scratch/site rotary-embedding-torch==0.6.1 \
        beartype

They are skipped with a message when absent.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from asteroid.models import BaseModel

from asteroid_lir.audio_files import output_tags
from asteroid_lir.convert.merl import merl_model_args
from asteroid_lir.masknn.locoformer import block_config
from asteroid_lir.models import BSLocoformerNet, TUSSNet
from asteroid_lir.models.tuss import TUSS_PRESETS, default_stft

KNOWN = ["speech", "sfx", "sfxbg", "drums", "bass", "vocals", "other", "musicbg"]
_BLOCK = dict(
    attention_dim=16,
    freq_ffn_hidden_dim=16,
    freq_conv1d_kernel=3,
    time_ffn_hidden_dim=16,
    time_conv1d_kernel=2,
)
TINY = dict(
    emb_dim=8,
    num_groups=2,
    n_heads=2,
    n_cross_prompt_blocks=1,
    cross_prompt_block=_BLOCK,
    n_tse_blocks=1,
    tse_block=_BLOCK,
    band_config="musical",
    n_bands=6,
    sample_rate=8000,
    n_fft=64,
    hop_length=16,
)


def tiny(**kwargs) -> TUSSNet:
    torch.manual_seed(0)
    return TUSSNet(**{**TINY, **kwargs}).eval()


def randomized(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Perturb every parameter (default gains of one would hide errors)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + 0.3 * torch.randn(p.shape, generator=gen))
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models


@pytest.fixture(scope="module")
def model() -> TUSSNet:
    return randomized(tiny())


# ---------------------------------------------------------------------- prompts and outputs
@pytest.mark.parametrize("n_prompts", [1, 2, 3, 4, 5])
def test_n_prompts_give_n_outputs(model, n_prompts):
    wav = torch.randn(2, 1000)
    prompts = (KNOWN * 2)[:n_prompts]
    with torch.no_grad():
        out = model(wav, [prompts, prompts[::-1]])
    assert out.shape == (2, n_prompts, 1000)
    assert torch.isfinite(out).all()


def test_identical_prompts_give_different_outputs(model):
    wav = torch.randn(1, 1200)
    with torch.no_grad():
        out = model(wav, [["sfx", "sfx", "sfx"]])
    for i in range(3):
        for j in range(i + 1, 3):
            rel = (out[0, i] - out[0, j]).norm() / out[0, i].norm()
            assert rel > 1e-3, (i, j, rel)


def test_prompt_changes_output(model):
    wav = torch.randn(1, 1200)
    with torch.no_grad():
        a = model(wav, [["speech", "bass"]])
        b = model(wav, [["speech", "drums"]])
    assert not torch.allclose(a[:, 1], b[:, 1], atol=1e-5)


def test_items_do_not_depend_on_other_batch_items(model):
    torch.manual_seed(3)
    wav = torch.randn(3, 900)
    prompts = [["speech", "sfxbg"], ["drums", "bass"], ["sfx", "sfx"]]
    with torch.no_grad():
        batched = model(wav, prompts)
        for b in range(3):
            alone = model(wav[b : b + 1], [prompts[b]])
            torch.testing.assert_close(batched[b : b + 1], alone, rtol=1e-4, atol=1e-5)
        # Replacing another item changes nothing for item 0.
        other = wav.clone()
        other[1:] = torch.randn(2, 900)
        torch.testing.assert_close(model(other, prompts)[0], batched[0], rtol=1e-4, atol=1e-5)


def test_flat_prompt_list_applies_to_every_item(model):
    wav = torch.randn(2, 700)
    with torch.no_grad():
        flat = model(wav, ["speech", "musicbg"])
        nested = model(wav, [["speech", "musicbg"]] * 2)
    torch.testing.assert_close(flat, nested)


def test_shapes_and_lengths(model):
    with torch.no_grad():
        for length in (1, 15, 16, 17, 333):
            assert model(torch.randn(length), ["speech"]).shape == (1, length)
        assert model(torch.randn(2, 1, 100), ["sfx", "sfx"]).shape == (2, 2, 100)


def test_scale_equivariance(model):
    wav = torch.randn(1, 800)
    with torch.no_grad():
        a = model(wav, ["speech", "other"])
        b = model(3.0 * wav, ["speech", "other"])
    torch.testing.assert_close(b, 3.0 * a, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "prompts, match",
    [
        (
            [["speech", "piano"], ["sfx", "sfx"]],
            r"Unknown prompt name\(s\) \['piano'\].*known prompts: \[.speech",
        ),
        ([], r"prompt list is empty.*known prompts"),
        (None, r"needs prompts.*known prompts"),
        ([["speech"], []], r"batch item\(s\) \[1\] is empty.*known prompts"),
        ([["speech"], ["sfx", "sfx"]], r"same number of prompts, got \[1, 2\].*known prompts"),
        ([["speech"]], r"1 prompt lists for a batch of 2.*known prompts"),
    ],
)
def test_bad_prompts_raise_clear_errors(model, prompts, match):
    with pytest.raises(ValueError, match=match):
        model(torch.randn(2, 500), prompts)


def test_mixed_prompt_forms_raise(model):
    with pytest.raises(TypeError, match="not a mixture of both"):
        model(torch.randn(2, 500), ["speech", ["sfx"]])


def test_bad_waveforms_raise_clear_errors(model):
    with pytest.raises(ValueError, match="NaN"):
        model(torch.full((1, 100), float("nan")), ["speech"])
    with pytest.raises(ValueError, match="empty"):
        model(torch.zeros(1, 0), ["speech"])
    with pytest.raises(ValueError, match="2 channels"):
        model(torch.randn(1, 2, 100), ["speech"])
    with pytest.raises(ValueError, match="dimensions"):
        model(torch.randn(1, 1, 1, 100), ["speech"])
    with pytest.raises(ValueError, match="silent"):
        model.separate(torch.zeros(1, 100), prompts=["speech"])


# ---------------------------------------------------------------------- training behaviour
def test_gradients_reach_the_used_prompts_only():
    net = tiny().train()
    out = net(torch.randn(2, 600), [["speech", "sfx"], ["sfx", "bass"]])
    out.pow(2).mean().backward()
    grads = {n: net.separator.prompts[n].grad for n in net.prompt_names}
    for name in ("speech", "sfx", "bass"):
        assert grads[name] is not None and grads[name].abs().sum() > 0, name
    for name in ("drums", "vocals", "other", "musicbg", "sfxbg"):
        assert grads[name] is None or grads[name].abs().sum() == 0, name
    assert net.separator.sos_token.grad.abs().sum() > 0


def test_sfc_encoder_option_runs_and_differs_in_structure():
    net = tiny(encoder="sfc", encoder_kwargs={"n_heads": 2, "query_type": "adaptive"})
    with torch.no_grad():
        out = net(torch.randn(2, 640), [["speech", "sfx", "sfx"]] * 2)
    assert out.shape == (2, 3, 640)
    assert any(k.startswith("separator.encoder.block") for k in net.state_dict())
    with pytest.raises(TypeError, match="not arguments of the 'band_split' encoder or decoder"):
        tiny(encoder_kwargs={"n_heads": 2})


def test_block_config_checks():
    assert block_config({"attention_dim": 8})["freq_ffn_hidden_dim"] == 384
    with pytest.raises(ValueError, match="Unknown key"):
        block_config({"attn": 8})
    with pytest.raises(ValueError, match="multiple of n_heads"):
        tiny(n_heads=3)
    with pytest.raises(ValueError, match="unique"):
        tiny(prompt_names=["a", "a"])


def test_time_path_has_its_own_ffn_settings():
    net = tiny()
    block = net.separator.cross_prompt_module[0]
    assert block.freq_path.ffn[0].kernel_size == 3
    assert block.frame_path.ffn[0].kernel_size == 2


# ---------------------------------------------------------------------- Asteroid contract
def test_serialize_round_trip_through_asteroid(tmp_path, model):
    path = tmp_path / "tuss.pth"
    torch.save(model.serialize(), path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = BaseModel.from_pretrained(str(path))
    assert type(loaded) is TUSSNet
    assert loaded.get_model_args() == model.get_model_args()
    wav = torch.randn(2, 777)
    with torch.no_grad():
        torch.testing.assert_close(loaded(wav, ["sfx", "speech"]), model(wav, ["sfx", "speech"]))
    again = TUSSNet.from_pretrained(str(path))
    assert again.prompt_names == KNOWN


def test_custom_prompt_names_round_trip(tmp_path):
    net = tiny(prompt_names=["dog", "cat"])
    path = tmp_path / "m.pth"
    torch.save(net.serialize(), path)
    loaded = TUSSNet.from_pretrained(str(path))
    assert loaded.prompt_names == ["dog", "cat"]
    with pytest.raises(ValueError, match=r"known prompts: \['dog', 'cat'\]"):
        loaded(torch.randn(1, 100), ["speech"])


def test_separate_tensor_numpy_and_file(tmp_path, model):
    wav = torch.randn(1, 1600)
    with torch.no_grad():
        direct = model(wav, ["speech", "sfx", "sfx"])
    torch.testing.assert_close(model.separate(wav, prompts=["speech", "sfx", "sfx"]), direct)
    arr = model.separate(wav.numpy(), prompts=["speech", "sfx", "sfx"])
    assert isinstance(arr, np.ndarray) and arr.shape == (1, 3, 1600)
    path = tmp_path / "mix.wav"
    sf.write(path, wav[0].numpy() * 0.1, 8000)
    written = model.separate(str(path), prompts=["speech", "sfx", "sfx"])
    assert [os.path.basename(p) for p in written] == [
        "mix_speech.wav",
        "mix_sfx1.wav",
        "mix_sfx2.wav",
    ]
    data, rate = sf.read(written[0])
    assert rate == 8000 and data.shape == (1600,)
    with pytest.raises(FileExistsError, match="force_overwrite"):
        model.separate(str(path), prompts=["speech", "sfx", "sfx"])
    out_dir = tmp_path / "out"
    written = model.file_separate(path, ["bass"], output_dir=out_dir)
    assert written == [str(out_dir / "mix_bass.wav")]
    with pytest.raises(ValueError, match="Unknown prompt"):
        model.file_separate(path, ["piano"], force_overwrite=True)
    with pytest.raises(ValueError, match="prompt list is empty"):
        model.file_separate(path, [], force_overwrite=True)


def test_file_of_another_rate(tmp_path, model):
    path = tmp_path / "mix16k.wav"
    sf.write(path, 0.1 * np.random.default_rng(0).standard_normal(3200), 16000)
    with pytest.raises(ValueError, match="sampling rate of 16000Hz, the model works at 8000Hz"):
        model.file_separate(path, ["speech"])
    written = model.file_separate(path, ["speech"], resample=True)
    data, rate = sf.read(written[0])
    assert rate == 16000 and abs(len(data) - 3200) <= 2
    with pytest.raises(FileNotFoundError):
        model.file_separate(tmp_path / "missing.wav", ["speech"])


def test_baseline_model_contract(tmp_path):
    torch.manual_seed(0)
    args = {k: v for k, v in TINY.items()}
    args["n_first_blocks"] = args.pop("n_cross_prompt_blocks")
    args["first_block"] = args.pop("cross_prompt_block")
    args["n_second_blocks"] = args.pop("n_tse_blocks")
    args["second_block"] = args.pop("tse_block")
    net = BSLocoformerNet(n_src=4, **args).eval()
    assert not hasattr(net, "prompt_names")
    wav = torch.randn(2, 900)
    with torch.no_grad():
        out = net(wav)
    assert out.shape == (2, 4, 900)
    path = tmp_path / "b.pth"
    torch.save(net.serialize(), path)
    loaded = BaseModel.from_pretrained(str(path))
    with torch.no_grad():
        torch.testing.assert_close(loaded(wav), out)


# ---------------------------------------------------------------------- presets
@pytest.mark.parametrize(
    "name, expected",
    [("medium", 11_132_296), ("large", 38_210_056), ("small", 2_470_344), ("tiny", 785_088)],
)
def test_preset_parameter_counts(name, expected):
    """medium/large: the reference's 11 132 352 / 38 210 112 minus its 56 RoPE frequencies
    (trainable-looking parameters there, buffers here)."""
    net = TUSSNet.from_preset(name)
    assert sum(p.numel() for p in net.parameters()) == expected


def test_preset_stft_and_bands():
    med = TUSSNet.from_preset("medium")
    low = TUSSNet.from_preset("medium", sample_rate=8000, band_config="musical", n_bands=16)
    assert (med.n_fft, med.hop_length, med.separator.n_bands) == (2048, 512, 61)
    assert (low.n_fft, low.hop_length) == default_stft(8000) == (342, 85)
    assert default_stft(16000) == (682, 171)
    with pytest.raises(ValueError, match="Unknown TUSS preset"):
        TUSSNet.from_preset("huge")
    assert set(TUSS_PRESETS) == {"medium", "large", "small", "tiny"}


def test_output_tags():
    assert output_tags(["speech", "sfx", "sfx", "bass"], 4) == ["speech", "sfx1", "sfx2", "bass"]
    assert output_tags(None, 2) == ["est1", "est2"]


# ---------------------------------------------------------------------- long inputs
def test_long_input_chunked_matches_prompt_order_and_length(model):
    torch.manual_seed(5)
    wav = torch.randn(8000 * 3 + 123)
    est = model.separate_long(wav, ["speech", "drums", "speech"], chunk_seconds=1.0)
    assert est.shape == (1, 3, wav.shape[-1])
    # In the middle of a chunk, far from its edges, the chunked output equals the model's
    # output on that chunk alone (the same prompts were used, in the same places).
    with torch.no_grad():
        first = model(wav[None, :8000], ["speech", "drums", "speech"])
    mid = slice(2000, 5000)
    torch.testing.assert_close(est[0, 1, mid], first[0, 1, mid], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="Unknown prompt"):
        model.separate_long(wav, ["piano"])


def test_chunked_file_separation(tmp_path, model):
    path = tmp_path / "long.wav"
    sf.write(path, 0.1 * np.random.default_rng(1).standard_normal(8000 * 3), 8000)
    written = model.file_separate(path, ["speech", "sfxbg"], chunk_seconds=1.0)
    assert len(written) == 2
    assert sf.read(written[1])[0].shape == (24000,)


# ---------------------------------------------------------------------- the reference
REF_ENV, SITE_ENV = "LIR_TUSS_REF", "LIR_TUSS_SITE"


def _reference():
    ref = os.environ.get(REF_ENV, "/tmp/scratch/tuss")
    site = os.environ.get(SITE_ENV, "/tmp/scratch/site")
    if not os.path.isfile(os.path.join(ref, "nets", "tuss.py")):
        pytest.skip(
            f"TUSS reference comparison skipped: merlresearch/unified-source-separation is not "
            f"at {ref} (set {REF_ENV}; see this file's docstring)"
        )
    for path in (ref, site):
        if os.path.isdir(path) and path not in sys.path:
            sys.path.append(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module("nets.model_wrapper"), ref
    except ImportError as err:
        pytest.skip(f"TUSS reference comparison skipped: the reference does not import: {err}")


def _ffn(hidden, kernel):
    return [dict(conf=dict(dim_inner=hidden, conv1d_kernel=kernel, conv1d_shift=1))] * 2


def _reference_pair(wrapper, model_conf, enc, seed=0):
    torch.manual_seed(seed)
    css = dict(segment_size=6, shift_size=6, normalize_segment_scale=False, solve_perm=False)
    ref = wrapper.SeparationModel(
        "stft", enc, "stft", enc, "tuss", model_conf, {**css, "sample_rate": 48000}, True
    ).eval()
    randomized(ref, seed + 1)
    hparams = dict(
        model_name="tuss",
        model_conf=model_conf,
        encoder_name="stft",
        encoder_conf=enc,
        decoder_conf=enc,
        variance_normalization=True,
    )
    # A Lightning checkpoint names the weights model.separator.*.
    state = {"model." + k: v for k, v in ref.state_dict().items()}
    return ref, TUSSNet.from_merl({"state_dict": state}, hparams).eval()


@pytest.mark.parametrize("use_sos_token, tf_order", [(True, "ft"), (False, "tf")])
def test_from_merl_matches_the_reference(use_sos_token, tf_order):
    wrapper, _ = _reference()
    block = dict(emb_dim=16, num_groups=4, tf_order=tf_order, n_heads=2, flash_attention=False)
    model_conf = dict(
        prompts=KNOWN,
        conf_cross_prompt_module=dict(
            block, attention_dim=32, freq_ffn_config=_ffn(24, 4), frame_ffn_config=_ffn(24, 1)
        ),
        conf_cond_tse_module=dict(
            block, attention_dim=16, freq_ffn_config=_ffn(20, 3), frame_ffn_config=_ffn(20, 4)
        ),
        nblocks_cross_prompt_module=2,
        nblocks_cond_tse_module=2,
        sample_rate=48000,
        stft_size=2048,
        use_sos_token=use_sos_token,
    )
    enc = dict(fft_size=2048, window_length=2048, hop_length=512, window_type="sqrt_hann")
    enc["normalize"] = None
    ref, ours = _reference_pair(wrapper, model_conf, enc)
    wav = torch.randn(2, 12345)
    prompts = [["speech", "sfx", "sfx"], ["drums", "bass", "vocals"]]
    with torch.no_grad():
        expected = ref(wav.clone(), prompts)[..., : wav.shape[-1]]
        got = ours(wav, prompts)
    rel = ((got - expected).norm() / expected.norm()).item()
    assert rel < 1e-4, rel


@pytest.mark.slow
@pytest.mark.parametrize("size", ["medium", "large"])
def test_from_merl_released_configurations(size):
    """The released hparams.yaml (random weights: the .pth files are LFS pointers)."""
    import yaml

    wrapper, ref_dir = _reference()
    path = os.path.join(ref_dir, "pretrained_models", f"tuss.{size}.2-4src", "hparams.yaml")
    if not os.path.isfile(path):
        pytest.skip(f"no {path}")
    hp = yaml.safe_load(open(path))
    torch.manual_seed(0)
    ref = wrapper.SeparationModel(
        hp["encoder_name"],
        hp["encoder_conf"],
        hp["decoder_name"],
        hp["decoder_conf"],
        hp["model_name"],
        hp["model_conf"],
        hp["css_conf"],
        hp["variance_normalization"],
    ).eval()
    ours = TUSSNet.from_merl(ref.state_dict(), path).eval()
    assert merl_model_args(path)["n_fft"] == 2048
    preset = TUSSNet.from_preset(size)
    assert ours.get_model_args() == preset.get_model_args()
    wav = torch.randn(1, 24000)
    prompts = [["speech", "sfxbg", "musicbg"]]
    with torch.no_grad():
        expected = ref(wav.clone(), prompts)[..., : wav.shape[-1]]
        got = ours(wav, prompts)
    assert ((got - expected).norm() / expected.norm()).item() < 1e-4


def test_from_merl_rejects_what_it_cannot_express():
    block = dict(emb_dim=16, num_groups=4, n_heads=2, attention_dim=16)
    conf = dict(
        prompts=KNOWN,
        conf_cross_prompt_module=dict(
            block, freq_ffn_config=_ffn(8, 4)[:1] + _ffn(9, 4)[:1], frame_ffn_config=_ffn(8, 1)
        ),
        conf_cond_tse_module=dict(block, freq_ffn_config=_ffn(8, 4), frame_ffn_config=_ffn(8, 4)),
    )
    with pytest.raises(ValueError, match="must share their settings"):
        merl_model_args(conf)
    with pytest.raises(ValueError, match="prompt_size"):
        merl_model_args({**conf, "prompt_size": 2})
    good = dict(conf)
    good["conf_cross_prompt_module"] = dict(
        block, freq_ffn_config=_ffn(8, 4), frame_ffn_config=_ffn(8, 1)
    )
    with pytest.raises(ValueError, match="do not fit"):
        TUSSNet.from_merl({"separator.prompts.speech": torch.zeros(16, 1, 1)}, good)
