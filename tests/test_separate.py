"""Chunked inference (overlap-add, source alignment) and the asteroid-lir-separate command line."""

from __future__ import annotations

import itertools
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from asteroid import models as asteroid_models
from asteroid.models.base_models import BaseModel
from torch import nn

from asteroid_lir.inference import (
    align_sources,
    check_chunk_sizes,
    chunk_bounds,
    chunk_weights,
    separate_chunked,
    source_groups,
)
from asteroid_lir.models import GatedLIRSuDORMRFNet, LIRSuDORMRFNet
from asteroid_lir.separate import main

TINY = dict(n_filters=16, bn_chan=8, upsampling_depth=2, n_sub_blocks=1)


# ---------------------------------------------------------------------- test models
class ShortKernelNet(BaseModel):
    """Two convolutions of kernel 9, no normalisation: the output at a sample depends only on
    the input within ``RADIUS = 8`` samples of it. Records the longest input it was given."""

    RADIUS = 8

    def __init__(self, n_src: int = 2, hidden: int = 8, sample_rate: float = 8000):
        super().__init__(sample_rate=sample_rate)
        self.n_src = n_src
        self.net = nn.Sequential(
            nn.Conv1d(1, hidden, 9, padding=4), nn.Tanh(), nn.Conv1d(hidden, n_src, 9, padding=4)
        )
        self.longest_input = 0

    def forward(self, wav):
        self.longest_input = max(self.longest_input, wav.shape[0] * wav.shape[-1])
        return self.net(wav.reshape(-1, 1, wav.shape[-1]))

    def get_model_args(self):
        return {"n_src": self.n_src, "sample_rate": self.sample_rate}


class PermutingOracle(BaseModel):
    """Returns the true sources of the chunk it is called on, in an order that changes from
    chunk to chunk (chunks are recognised by the order of the calls)."""

    def __init__(self, sources: torch.Tensor, bounds, perms):
        super().__init__(sample_rate=8000)
        self.sources, self.bounds, self.perms = sources, bounds, perms
        self.calls = 0

    def forward(self, wav):
        start, end = self.bounds[self.calls]
        assert wav.shape[-1] == end - start
        perm = self.perms[self.calls % len(self.perms)]
        self.calls += 1
        return self.sources[None, perm, start:end].expand(wav.shape[0], -1, -1)


class PromptNet(BaseModel):
    """A prompt-conditioned stand-in (the TUSS calling convention): one output per prompt,
    ``wav`` scaled by the prompt's index + 1."""

    prompt_names = ["speech", "sfx", "music"]

    def __init__(self, sample_rate: float = 8000):
        super().__init__(sample_rate=sample_rate)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, wav, prompts):
        assert len(prompts) == wav.shape[0]
        gains = torch.tensor([[self.prompt_names.index(p) + 1.0 for p in ps] for ps in prompts])
        return self.scale * gains[..., None] * wav.reshape(wav.shape[0], 1, -1)

    def get_model_args(self):
        return {"sample_rate": self.sample_rate}


@pytest.fixture(scope="module", autouse=True)
def _registered_prompt_net():
    # The command line loads models through Asteroid's registry, as it would a real TUSS model.
    try:
        asteroid_models.get("PromptNet")
    except ValueError:
        asteroid_models.register_model(PromptNet)


def tiny_lir() -> LIRSuDORMRFNet:
    torch.manual_seed(0)
    return LIRSuDORMRFNet(n_src=2, **TINY).eval()


def noise(*shape, seed=0) -> torch.Tensor:
    return 0.1 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------- chunk layout
@pytest.mark.parametrize(
    "n, chunk, overlap, fade",
    [
        (1000, 100, 20, 10),
        (1003, 100, 21, 21),
        (1000, 100, 40, 0),
        (999, 64, 32, 32),
        (50, 100, 20, 10),
    ],
)
def test_chunk_weights_sum_to_one_everywhere(n, chunk, overlap, fade):
    bounds = chunk_bounds(n, chunk, overlap)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    total = torch.zeros(n, dtype=torch.float64)
    for i, (start, end) in enumerate(bounds):
        w = chunk_weights(end - start, i > 0, i < len(bounds) - 1, overlap, fade)
        total[start:end] += w
        margin = (overlap - fade) // 2
        if i > 0:  # samples near a cut edge are never used
            assert torch.all(w[:margin] == 0)
            assert start == bounds[i - 1][1] - overlap
        if i < len(bounds) - 1:
            assert torch.all(w[end - start - margin :] == 0)
            assert end - start == chunk
    torch.testing.assert_close(total, torch.ones(n, dtype=torch.float64), atol=1e-6, rtol=0)


def test_chunk_sizes_are_checked():
    assert check_chunk_sizes(100, 20) == 10
    for bad in [(0, 0, 0), (100, 100, 0), (100, -1, 0), (100, 20, 30), (100, 80, 40)]:
        with pytest.raises(ValueError):
            check_chunk_sizes(*bad)


# ---------------------------------------------------------------------- chunked == one piece
@pytest.mark.parametrize("batch_chunks", [1, 3])
def test_chunked_equals_one_piece_when_receptive_field_fits(batch_chunks):
    # Chunk 400, overlap 100, fade 50: every output sample is taken from chunk positions at
    # least (100 - 50) // 2 = 25 >= RADIUS samples away from a cut edge, so it saw exactly the
    # input the one-piece pass saw; only float rounding differs.
    torch.manual_seed(0)
    model = ShortKernelNet().eval()
    wav = noise(2, 5000)
    with torch.no_grad():
        whole = model(wav)
    model.longest_input = 0
    result = separate_chunked(model, wav, 400, 100, fade=50, batch_chunks=batch_chunks)
    assert result.n_chunks == 17 and result.steps is None
    assert model.longest_input <= 400 * 2 * batch_chunks  # never the whole input at once
    err = (result.estimates - whole).abs().max() / whole.abs().max()
    assert err < 1e-5
    # Control: with no margin left (fade = overlap), edge samples leak in and the test fails.
    loose = separate_chunked(model, wav, 400, 16, fade=16).estimates
    assert (loose - whole).abs().max() / whole.abs().max() > 1e-3


def test_short_input_goes_through_in_one_piece():
    model = tiny_lir()
    wav = noise(1, 700)
    result = separate_chunked(model, wav, 800, 200)
    assert result.n_chunks == 1
    with torch.no_grad():
        torch.testing.assert_close(result.estimates, model(wav))


# ---------------------------------------------------------------------- source alignment
def swapping_sources(n_src: int, n: int) -> torch.Tensor:
    """Sources whose energies swap: each one is loud in its own part of the signal only."""
    t = torch.arange(n) / 8000
    sources = []
    for k in range(n_src):
        envelope = 0.05 + torch.clamp(torch.cos(2 * np.pi * (t / t[-1] - k / n_src)), min=0)
        sources.append(envelope * torch.sin(2 * np.pi * (200 + 170 * k) * t + k))
    return torch.stack(sources)


@pytest.mark.parametrize("n_src", [2, 3])
def test_source_order_is_kept_across_chunks(n_src):
    n, chunk, overlap = 6000, 800, 200
    sources = swapping_sources(n_src, n)
    bounds = chunk_bounds(n, chunk, overlap)
    perms = list(itertools.permutations(range(n_src)))[::-1]  # changes at every chunk
    oracle = PermutingOracle(sources, bounds, perms)
    mix = sources.sum(0, keepdim=True)
    est = separate_chunked(oracle, mix, chunk, overlap).estimates[0]
    torch.testing.assert_close(est, sources[list(perms[0])], atol=1e-6, rtol=0)
    # Control: without alignment the order changes between chunks.
    oracle.calls = 0
    unaligned = separate_chunked(oracle, mix, chunk, overlap, align=False).estimates[0]
    assert (unaligned - sources[list(perms[0])]).abs().max() > 0.1


def test_alignment_only_exchanges_outputs_of_the_same_prompt():
    a, b = noise(1, 1, 50, seed=1), noise(1, 1, 50, seed=2)
    previous, current = torch.cat([a, b], 1), torch.cat([b, a], 1)
    assert align_sources(previous, current).tolist() == [[1, 0]]
    assert source_groups(["sfx", "speech", "sfx"], 3) == [[0, 2], [1]]
    groups = source_groups(["speech", "sfx"], 2)
    assert align_sources(previous, current, groups).tolist() == [[0, 1]]


# ---------------------------------------------------------------------- gated and prompt models
def test_gated_model_reports_steps_of_every_chunk():
    torch.manual_seed(0)
    model = GatedLIRSuDORMRFNet(n_src=2, n_iters=4, gate_kernel_size=16, **TINY).eval()
    with torch.no_grad():  # make the gate's decisions differ between inputs
        model.masker.gate.temporal.weight.normal_(0, 2.0)
    wav = noise(2, 3000, seed=3) * torch.tensor([[1.0], [30.0]])
    result = separate_chunked(model, wav, 800, 200, batch_chunks=2)
    bounds = chunk_bounds(3000, 800, 200)
    assert result.steps.shape == (2, len(bounds))
    with torch.no_grad():
        expected = torch.stack([model.forward_with_steps(wav[:, s:e])[1] for s, e in bounds], 1)
    assert torch.equal(result.steps, expected)


def test_prompts_reach_prompt_models_and_errors_name_the_problem():
    model = PromptNet()
    wav = noise(1, 3000)
    est = separate_chunked(model, wav, 800, 200, prompts=["music", "speech"]).estimates
    torch.testing.assert_close(est, torch.stack([3 * wav, wav], 1), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="steered by prompts.*speech"):
        separate_chunked(model, wav, 800, 200)
    with pytest.raises(ValueError, match=r"Unknown prompt name\(s\) \['drums'\]"):
        separate_chunked(model, wav, 800, 200, prompts=["drums"])
    with pytest.raises(ValueError, match="takes no prompts"):
        separate_chunked(tiny_lir(), wav, 800, 200, prompts=["speech"])


def test_bad_waveforms_are_refused():
    for bad, word in [(torch.zeros(1, 100), "silent"), (torch.full((1, 9), np.nan), "NaN")]:
        with pytest.raises(ValueError, match=word):
            separate_chunked(tiny_lir(), bad, 800, 200)


# ---------------------------------------------------------------------- command line
@pytest.fixture
def model_file(tmp_path) -> Path:
    path = tmp_path / "model.pth"
    torch.save(tiny_lir().serialize(), path)
    return path


def write(path: Path, data, rate: int = 8000, subtype: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(data, dtype="float32"), rate, subtype=subtype)
    return path


def test_cli_writes_one_file_per_source_at_the_input_rate_and_length(tmp_path, model_file):
    mono = write(tmp_path / "in" / "long.wav", noise(2500).numpy())  # several 0.1-s chunks
    stereo = write(tmp_path / "in" / "wide.flac", noise(4800, 2).numpy(), rate=16000)
    out = tmp_path / "out"
    args = ["--chunk_seconds", "0.1", "--overlap_seconds", "0.025", "--out_dir", str(out)]
    assert main([str(model_file), str(tmp_path / "in"), *args, "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "long_est1.wav",
        "long_est2.wav",
        "wide_est1.wav",
        "wide_est2.wav",
    ]
    for name, rate, frames in [("long_est2.wav", 8000, 2500), ("wide_est1.wav", 16000, 4800)]:
        info = sf.info(str(out / name))
        assert (info.samplerate, info.frames, info.channels) == (rate, frames, 1)
    # What the command wrote is the library's chunked result.
    wav = torch.from_numpy(sf.read(str(mono), dtype="float32")[0])
    expected = separate_chunked(tiny_lir(), wav, 800, 200).estimates[0]
    written = torch.from_numpy(sf.read(str(out / "long_est1.wav"), dtype="float32")[0])
    torch.testing.assert_close(written, expected[0])

    # An experiment folder, per-channel separation.
    exp = tmp_path / "exp"
    exp.mkdir()
    shutil.copy(model_file, exp / "best_model.pth")
    out2 = tmp_path / "out2"
    assert main([str(exp), str(stereo), "--channels", "each", "--out_dir", str(out2)]) == 0
    assert sorted(p.name for p in out2.iterdir()) == [
        f"wide_ch{c}_est{k}.wav" for c in (1, 2) for k in (1, 2)
    ]


def test_cli_reports_bad_files_by_name_and_still_processes_the_others(tmp_path, model_file, capsys):
    folder = tmp_path / "in"
    write(folder / "good.wav", noise(1200).numpy())
    write(folder / "silent.wav", np.zeros(800))
    write(folder / "nan.wav", np.full(800, np.nan), subtype="FLOAT")
    write(folder / "empty.wav", np.zeros(0))
    (folder / "broken.wav").write_text("not audio")
    out = tmp_path / "out"
    status = main(
        [str(model_file), str(folder), str(tmp_path / "missing.wav"), "--out_dir", str(out)]
    )
    assert status == 1
    assert sorted(p.name for p in out.iterdir()) == ["good_est1.wav", "good_est2.wav"]
    err = capsys.readouterr().err
    for name, reason in [
        ("silent.wav", "silent"),
        ("nan.wav", "NaN"),
        ("empty.wav", "empty"),
        ("broken.wav", "cannot read it as audio"),
        ("missing.wav", "no such file"),
    ]:
        assert any(name in line and reason in line for line in err.splitlines()), (name, err)
    assert "separated 1 of 6 input(s)" in err


def test_cli_refuses_inputs_whose_outputs_would_clash(tmp_path, model_file, capsys):
    a = write(tmp_path / "a" / "x.wav", noise(800).numpy())
    b = write(tmp_path / "b" / "x.wav", noise(800).numpy())
    with pytest.raises(SystemExit) as exc:
        main([str(model_file), str(a), str(b), "--out_dir", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert str(a) in err and str(b) in err
    assert not (tmp_path / "out").exists()


def test_cli_prompt_errors(tmp_path, model_file, capsys):
    wav = write(tmp_path / "x.wav", noise(800).numpy())
    out = ["--out_dir", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exc:
        main([str(model_file), str(wav), "--prompts", "speech,sfx", *out])
    assert exc.value.code == 2 and "takes no prompts" in capsys.readouterr().err
    prompt_file = tmp_path / "prompt.pth"
    torch.save(PromptNet().serialize(), prompt_file)
    with pytest.raises(SystemExit) as exc:
        main([str(prompt_file), str(wav), *out])
    assert exc.value.code == 2 and "['speech', 'sfx', 'music']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(prompt_file), str(wav), "--prompts", "speech,guitar", *out])
    assert "guitar" in capsys.readouterr().err
    assert main([str(prompt_file), str(wav), "--prompts", "sfx,speech", *out]) == 0
    est1 = sf.read(str(tmp_path / "out" / "x_sfx.wav"))[0]  # outputs named by prompt
    np.testing.assert_allclose(est1, 2 * sf.read(str(wav))[0], atol=1e-6)


def test_cli_model_errors(tmp_path, capsys):
    wav = write(tmp_path / "x.wav", noise(800).numpy())
    (tmp_path / "exp").mkdir()
    for model in (tmp_path / "exp", tmp_path / "none.pth"):
        with pytest.raises(SystemExit) as exc:
            main([str(model), str(wav), "--out_dir", str(tmp_path / "out")])
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "has no best_model.pth" in err and "none.pth" in err


def test_cli_reports_gated_steps(tmp_path, capsys):
    torch.manual_seed(0)
    model = GatedLIRSuDORMRFNet(n_src=2, n_iters=3, gate_kernel_size=16, **TINY)
    torch.save(model.serialize(), tmp_path / "gated.pth")
    wav = write(tmp_path / "x.wav", noise(2000).numpy())
    args = ["--chunk_seconds", "0.1", "--overlap_seconds", "0.02", "--out_dir", str(tmp_path)]
    assert main([str(tmp_path / "gated.pth"), str(wav), *args]) == 0
    assert "x.wav: gated steps per chunk mean" in capsys.readouterr().err


@pytest.mark.slow  # a fresh interpreter importing torch and Asteroid: 5-10 s on 2 busy cores
def test_console_script_runs(tmp_path, model_file):
    script = Path(sys.executable).parent / "asteroid-lir-separate"
    assert script.exists(), "console script missing: reinstall the package (source .ci/venv.sh)"
    wav = write(tmp_path / "x.wav", noise(1000).numpy())
    run = subprocess.run(
        [str(script), str(model_file), str(wav), "--out_dir", str(tmp_path / "out"), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "x_est2.wav").is_file()


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")
def test_module_runs_as_a_script(tmp_path, model_file, monkeypatch):
    wav = write(tmp_path / "x.wav", noise(1000).numpy())
    argv = ["asteroid_lir.separate", str(model_file), str(wav), "--out_dir", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", [*argv, "--quiet"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_module("asteroid_lir.separate", run_name="__main__", alter_sys=True)
    assert exc.value.code == 0
    assert (tmp_path / "x_est1.wav").is_file()
