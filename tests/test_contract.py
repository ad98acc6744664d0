"""One contract, tested as one matrix over every public model class.

Each class (tiny sizes) goes through the same cases: unknown constructor arguments, bad inputs
(NaN/Inf, empty, silent, wrong rank, several channels, channels-last), dtype and numpy
conversion, ``from_pretrained`` failures (another class, a truncated or foreign file, weights
that do not fit), the serialized version, ``torch.autocast`` (bfloat16 on the CPU; float16 on a
GPU when there is one) for inference and a training step, Asteroid's model-test round trip
(serialize, reload with and without the sample rate) and Asteroid's jit convention
(``torch.jit.trace(model, x)`` with its default trace check, then traced == eager on inputs of
other shapes).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch
from asteroid.models import BaseModel

import asteroid_lir
from asteroid_lir.models import (
    BSLocoformerNet,
    GatedLIRSuDORMRFNet,
    LIRSuDORMRFNet,
    TFLocoformerNet,
    TUSSNet,
)

SUDO = dict(n_filters=16, bn_chan=8, upsampling_depth=2)
TF = dict(n_layers=1, emb_dim=8, attention_dim=8, n_heads=2, num_groups=2,
          ffn_hidden_dim=[8, 8], conv1d_kernel=3, n_fft=32, hop_length=8)  # fmt: skip
BANDS = dict(band_config="musical", n_bands=4)
BLOCK = dict(attention_dim=8, freq_ffn_hidden_dim=8, freq_conv1d_kernel=3,
             time_ffn_hidden_dim=8, time_conv1d_kernel=2)  # fmt: skip
SMALL_TF = dict(emb_dim=8, num_groups=2, n_heads=2, sample_rate=8000, n_fft=32, hop_length=8,
                **BANDS)  # fmt: skip
TUSS = dict(n_cross_prompt_blocks=1, cross_prompt_block=BLOCK, n_tse_blocks=1, tse_block=BLOCK,
            **SMALL_TF)  # fmt: skip
BASELINE = dict(n_first_blocks=1, first_block=BLOCK, n_second_blocks=1, second_block=BLOCK,
                **SMALL_TF)  # fmt: skip
PROMPTS = ["speech", "sfx"]


@dataclasses.dataclass
class Case:
    cls: type
    args: dict
    prompts: list[str] | None = None

    def build(self, **overrides) -> torch.nn.Module:
        torch.manual_seed(0)
        return self.cls(**{**self.args, **overrides}).eval()

    def call_args(self, model, wav: torch.Tensor) -> tuple:
        """Positional inputs of ``model`` for ``wav`` (prompt ids for a prompt model)."""
        if self.prompts is None:
            return (wav,)
        batch = 1 if wav.ndim == 1 else wav.shape[0]
        return wav, model.prompt_ids([self.prompts] * batch, batch)

    def run(self, model, wav: torch.Tensor) -> torch.Tensor:
        return model(*self.call_args(model, wav))

    def separate(self, model, wav, **kwargs):
        extra = {} if self.prompts is None else {"prompts": self.prompts}
        return model.separate(wav, **extra, **kwargs)


CASES = {
    "LIRSuDORMRFNet": Case(LIRSuDORMRFNet, dict(n_src=2, n_sub_blocks=1, n_iters=2, **SUDO)),
    "LIRSuDORMRFNet-gated": Case(
        LIRSuDORMRFNet, dict(n_src=2, n_sub_blocks=1, n_iters=3, gate_kernel_size=8, **SUDO)
    ),
    "GatedLIRSuDORMRFNet": Case(GatedLIRSuDORMRFNet, dict(n_src=2, gate_kernel_size=8, **SUDO)),
    "TFLocoformerNet": Case(TFLocoformerNet, dict(n_src=2, n_iters=2, **TF)),
    "TFLocoformerNet-gated": Case(
        TFLocoformerNet, dict(n_src=2, n_iters=3, gate_kernel_size=8, **TF)
    ),
    "TFLocoformerNet-band_split": Case(
        TFLocoformerNet, dict(n_src=2, encoder="band_split", **BANDS, **TF)
    ),
    "TFLocoformerNet-sfc": Case(
        TFLocoformerNet,
        dict(
            n_src=2,
            encoder="sfc",
            encoder_kwargs={"n_heads": 2, "query_type": "adaptive"},
            **BANDS,
            **TF,
        ),
    ),  # fmt: skip
    "TUSSNet": Case(TUSSNet, TUSS, PROMPTS),
    "TUSSNet-sfc": Case(TUSSNet, dict(TUSS, encoder="sfc", encoder_kwargs={"n_heads": 2}), PROMPTS),
    "TUSSNet-gated": Case(TUSSNet, dict(TUSS, n_iters=3, gate_kernel_size=8), PROMPTS),
    "BSLocoformerNet": Case(BSLocoformerNet, dict(BASELINE, n_src=3)),
    "BSLocoformerNet-gated": Case(
        BSLocoformerNet, dict(BASELINE, n_src=3, n_iters=3, gate_kernel_size=8)
    ),
}
N = 1203  # an odd length: no STFT hop or U-ConvBlock stride divides it


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request) -> Case:
    return CASES[request.param]


def wave(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_the_matrix_covers_every_public_model_class():
    covered = {c.cls.__name__ for c in CASES.values()}
    assert covered == set(asteroid_lir.models.__all__)


# ---------------------------------------------------------------------- constructor arguments
def test_unknown_constructor_argument_is_named(case):
    with pytest.raises(TypeError, match="bogus"):
        case.build(bogus=1)


@pytest.mark.parametrize("name, hint", [("num_blocks", "n_sub_blocks"), ("in_chan", "n_filters")])
def test_asteroid_sudormrf_argument_names_get_ours(name, hint):
    for cls in (LIRSuDORMRFNet, GatedLIRSuDORMRFNet):
        with pytest.raises(TypeError, match=f"use {hint}.* instead of {name}"):
            cls(n_src=2, **{name: 4}, **SUDO)


def test_many_uconv_blocks_warn_about_n_blocks():
    with pytest.warns(UserWarning, match="num_blocks=16 is n_blocks=1, n_sub_blocks=16"):
        LIRSuDORMRFNet(n_src=2, n_blocks=16, n_sub_blocks=4, **SUDO)


# ---------------------------------------------------------------------- inputs
BAD_INPUTS: dict[str, tuple[Callable[[], torch.Tensor], str]] = {
    "nan": (lambda: torch.full((1, N), float("nan")), "NaN or infinite"),
    "inf": (lambda: wave(1, N).index_fill_(1, torch.tensor([5]), float("inf")), "NaN or infinite"),
    "empty": (lambda: torch.zeros(1, 0), "empty"),
    "rank": (lambda: wave(1, 1, 1, N), "1, 2 or 3 dimensions"),
    "channels": (lambda: wave(1, 2, N), "2 channels"),
    "channels_last": (lambda: wave(N, 2), "channels-last"),
}


@pytest.mark.parametrize("bad", list(BAD_INPUTS))
def test_bad_input_raises_one_clear_error(case, bad):
    model = case.build()
    make, message = BAD_INPUTS[bad]
    wav = make()
    with pytest.raises(ValueError, match=message), torch.no_grad():
        case.run(model, wav)
    with pytest.raises(ValueError, match=message):
        case.separate(model, wav)


def test_silence_is_refused_by_separate(case):
    with pytest.raises(ValueError, match="silent"):
        case.separate(case.build(), torch.zeros(1, N))


def test_dtypes_and_numpy_are_converted_the_same_way(case):
    model = case.build()
    wav = wave(2, N) * 0.3
    with torch.no_grad():
        reference = case.run(model, wav)
        torch.testing.assert_close(case.run(model, wav.double()), reference)  # cast to the model
    pcm = (wav * 2**15).round().clamp(-(2**15), 2**15 - 1).to(torch.int16)
    with pytest.raises(TypeError, match="floating-point"), torch.no_grad():
        case.run(model, pcm)
    from_pcm = case.separate(model, pcm)
    with torch.no_grad():
        torch.testing.assert_close(from_pcm, case.run(model, pcm.float() / 2**15))
    from_numpy = case.separate(model, wav.numpy())
    assert isinstance(from_numpy, np.ndarray) and from_numpy.dtype == np.float32
    np.testing.assert_allclose(from_numpy, reference.numpy(), rtol=1e-4, atol=1e-5)
    one_d = case.separate(model, wav[0])
    assert one_d.shape == reference.shape[1:]


# ---------------------------------------------------------------------- files
def test_from_pretrained_checks_class_file_and_weights(case, tmp_path):
    model = case.build()
    path = tmp_path / "model.pth"
    package = model.serialize()
    assert package["infos"]["software_versions"]["asteroid_lir_version"] == asteroid_lir.__version__
    torch.save(package, path)
    loaded = case.cls.from_pretrained(path)
    assert type(loaded) is case.cls

    other = next(c for c in CASES.values() if not issubclass(c.cls, case.cls))
    other_path = tmp_path / "other.pth"
    torch.save(other.build().serialize(), other_path)
    with pytest.raises(TypeError, match=rf"other\.pth.* not a {case.cls.__name__}"):
        case.cls.from_pretrained(other_path)

    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"truncated\.pth.*not a readable model package"):
        case.cls.from_pretrained(truncated)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"notes\.pth.*not a readable model package"):
        case.cls.from_pretrained(text)
    foreign = tmp_path / "weights_only.pth"
    torch.save(model.state_dict(), foreign)
    with pytest.raises(ValueError, match=r"weights_only\.pth.*lacks \['model_name'"):
        case.cls.from_pretrained(foreign)

    first = next(iter(package["state_dict"]))
    broken = {
        **package,
        "state_dict": {k: v for k, v in package["state_dict"].items() if k != first},
    }
    broken_path = tmp_path / "broken.pth"
    torch.save(broken, broken_path)
    with pytest.raises(ValueError, match=rf"broken\.pth.*missing keys \['{first}'\]"):
        case.cls.from_pretrained(broken_path)


def test_asteroid_round_trip_convention(case):
    # What asteroid's tests/models/models_test.py checks of every Asteroid model.
    model = case.build()
    wav = wave(1, 801)
    conf = model.serialize()
    reloaded = model.__class__.from_pretrained(conf).eval()
    with torch.no_grad():
        torch.testing.assert_close(case.run(model, wav), case.run(reloaded, wav))
    rate = conf["model_args"].pop("sample_rate")
    without = model.__class__.from_pretrained(conf)
    assert without.sample_rate == model.sample_rate
    assert model.__class__.from_pretrained(conf, sample_rate=rate).sample_rate == rate
    assert type(BaseModel.from_pretrained(model.serialize())) is case.cls


# ---------------------------------------------------------------------- autocast
def _autocast_cases():
    yield pytest.param("cpu", torch.bfloat16, id="cpu-bfloat16")
    gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    yield pytest.param("cuda", torch.bfloat16, id="cuda-bfloat16", marks=gpu)
    yield pytest.param("cuda", torch.float16, id="cuda-float16", marks=gpu)


@pytest.mark.parametrize("device, dtype", _autocast_cases())
def test_autocast_inference_and_training_step(case, device, dtype):
    model = case.build().to(device)
    wav = wave(2, N).to(device)
    with torch.no_grad():
        full = case.run(model, wav)
        with torch.autocast(device, dtype=dtype):
            low = case.run(model, wav)
    assert low.dtype == torch.float32 and torch.isfinite(low).all()
    # Low-precision matmuls, float32 STFT/iSTFT and norms: close to the float32 output.
    assert (low - full).norm() <= 0.1 * full.norm()
    model.train()
    with torch.autocast(device, dtype=dtype):
        loss = case.run(model, wav).pow(2).mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


# ---------------------------------------------------------------------- tracing
OTHER_SHAPES = [(2001,), (1, 1472), (3, 1100), (1, 1, 1502), (2, 1, 1301)]


def test_jit_trace_with_its_default_check_then_traced_equals_eager(case):
    # Asteroid's tests/jit convention: trace on one input (the default check runs), then
    # compare with eager mode on inputs of other shapes and lengths.
    model = case.build()
    example = case.call_args(model, (torch.rand(1, 2500) - 0.5) * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, example)
    for shape in OTHER_SHAPES:
        wav = (torch.rand(*shape, generator=torch.Generator().manual_seed(1)) - 0.5) * 2
        args = case.call_args(model, wav)
        with torch.no_grad():
            torch.testing.assert_close(traced(*args), model(*args), rtol=1e-4, atol=1e-5)
