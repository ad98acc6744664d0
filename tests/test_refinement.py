"""The refinement core shared by every block type: compatibility, gated tracing, early-exit
compute, frozen prefix, input checks and import hygiene."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import asteroid_lir.models  # noqa: F401  (registers the models with Asteroid)
from asteroid_lir.masknn import GatingModule
from asteroid_lir.masknn.refinement import RefinementCore
from asteroid_lir.models import GatedLIRSuDORMRFNet, LIRSuDORMRFNet
from asteroid_lir.models.base import load_model_conf

DATA = Path(__file__).parent / "data"
TINY = dict(n_filters=16, bn_chan=8, upsampling_depth=2)


# ---------------------------------------------------------------- gated tracing
def test_trace_of_a_gated_model_follows_each_input_gates():
    path = DATA / "gated_1x1x4.pth"
    model = GatedLIRSuDORMRFNet.from_pretrained(str(path)).eval()
    wav = load_model_conf(path)["infos"]["test_fixture"]["wav"]
    first, second = wav[:1], wav[1:2]
    with torch.no_grad():
        assert int(model.forward_with_steps(first)[1]) != int(model.forward_with_steps(second)[1])
        for example in (first, second):  # trace on either, run on both
            traced = torch.jit.trace(model, example, check_trace=False)
            for other in (first, second):
                torch.testing.assert_close(traced(other), model(other))


# ---------------------------------------------------------------- early exit cuts compute
def test_early_exit_runs_later_steps_on_the_remaining_samples_only():
    torch.manual_seed(0)
    model = GatedLIRSuDORMRFNet(n_src=2, n_iters=4, gate_kernel_size=16, **TINY).eval()
    seen = []
    model.masker.blocks[0].register_forward_hook(lambda m, args, out: seen.append(out.shape[0]))
    wav = torch.randn(4, 800)
    with torch.no_grad():
        _, steps = model.forward_with_steps(wav, force_steps=torch.tensor([1, 1, 4, 4]))
    assert steps.tolist() == [1, 1, 4, 4]
    assert seen == [4, 2, 2, 2]  # after the first step, the two finished samples are gone
    seen.clear()
    with torch.no_grad():
        model.forward_with_steps(wav, force_steps=torch.tensor([1, 1, 4, 4]), early_exit=False)
    assert seen == [4, 4, 4, 4]  # the branch-free path computes every sample


# ---------------------------------------------------------------- frozen prefix
def test_frozen_prefix_saves_nothing_for_backward():
    torch.manual_seed(0)
    model = LIRSuDORMRFNet(2, n_blocks=2, n_sub_blocks=1, n_iters=[2, 1], head_per_block=True,
                           **TINY)  # fmt: skip
    # Every parameter requires grad: only the core's no_grad can keep the prefix graph-free.
    assert all(p.requires_grad for p in model.parameters())
    prefix = [*model.stem_modules(), model.masker.blocks[0]]
    running = []
    for module in prefix:
        module.register_forward_pre_hook(lambda m, args: running.append(m))
        module.register_forward_hook(lambda m, args, out: running.remove(m))
    saved_in_prefix = []

    def pack(tensor):
        if running:
            saved_in_prefix.append(tensor.shape)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        est = model.forward_block_ends(torch.randn(2, 800), last_block=2, grad_from=2)
    assert len(est) == 1 and est[0].grad_fn is not None
    assert saved_in_prefix == []
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.forward_block_ends(torch.randn(2, 800), last_block=2, grad_from=1)
    assert saved_in_prefix  # the same modules do save tensors when they are trained


# ---------------------------------------------------------------- a new block type plugs in
class _Affine(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.5))

    def forward(self, z):
        return z * self.scale + 1.0


def test_any_block_type_on_a_4d_latent_with_the_gate():
    core = RefinementCore(_Affine, nn.Identity, n_blocks=2, n_sub_blocks=1, n_iters=[2, 1],
                          gate=GatingModule(in_chan=3, kernel_size=4))  # fmt: skip
    z = torch.zeros(5, 3, 6, 7)  # (batch, chan, frames, freqs)
    assert core.step_schedule() == [0, 0, 1]
    ends = [z for _, z in core.iter_steps(z)]
    assert [float(e[0, 0, 0, 0]) for e in ends] == [1.0, 1.5, 1.75]
    core.eval()
    out, steps = core.run_gated(z, force_steps=torch.tensor([0, 1, 2, 3, 3]))
    assert steps.tolist() == [0, 1, 2, 3, 3]
    assert out[:, 0, 0, 0].tolist() == [0.0, 1.0, 1.5, 1.75, 1.75]
    core.train()
    out, c_hat = core.run_gated(z)
    assert out.shape == z.shape and c_hat.shape == (5,)


# ---------------------------------------------------------------- clear errors
def test_bad_encoder_settings_and_multichannel_input_are_named():
    with pytest.raises(ValueError, match="stride must be kernel_size // 2"):
        LIRSuDORMRFNet(2, 1, 1, kernel_size=21, stride=8, **{**TINY})
    model = LIRSuDORMRFNet(2, 1, 1, **TINY)
    with pytest.raises(ValueError, match=r"3 channels \(shape \(2, 3, 800\)\)"):
        model(torch.randn(2, 3, 800))


def test_importing_the_library_leaves_warning_filters_alone():
    code = (
        "import warnings; before = list(warnings.filters); import asteroid_lir; "
        "assert list(warnings.filters) == before, 'filters changed'"
    )
    subprocess.run([sys.executable, "-W", "default", "-c", code], check=True)


# ---------------------------------------------------------------- TF-Locoformer blocks on the core
TF_TINY = dict(n_layers=1, emb_dim=8, attention_dim=8, n_heads=2, num_groups=2,
               ffn_hidden_dim=[8, 8], n_fft=32, hop_length=8)  # fmt: skip


def test_iterated_tflocoformer_shares_one_block_and_gives_anytime_steps():
    from asteroid_lir.models import TFLocoformerNet

    torch.manual_seed(0)
    iterated = TFLocoformerNet(n_src=2, n_iters=4, **TF_TINY).eval()
    plain = TFLocoformerNet(n_src=2, **TF_TINY).eval()
    n_params = [sum(p.numel() for p in m.parameters()) for m in (iterated, plain)]
    assert n_params[0] == n_params[1] and iterated.n_steps == 4
    plain.load_state_dict(iterated.state_dict())
    wav = torch.randn(2, 301)
    with torch.no_grad():
        steps = iterated.forward_steps(wav)
        assert len(steps) == 4 and steps[0].shape == (2, 2, 301)
        torch.testing.assert_close(steps[0], plain(wav))
        torch.testing.assert_close(steps[-1], iterated(wav))
        torch.testing.assert_close(steps[1], iterated(wav, n_steps=2))
        assert (steps[1] - steps[0]).abs().max() > 1e-4  # a second pass changes the estimate


def test_progressive_and_gated_training_run_on_tflocoformer():
    from asteroid_lir.engine.gated import GatedSystem
    from asteroid_lir.engine.progressive import ProgressiveSystem, export_prefix
    from asteroid_lir.losses import SpeechPITLoss
    from asteroid_lir.models import TFLocoformerNet

    torch.manual_seed(0)
    sources = torch.randn(2, 2, 301)
    mix = sources.sum(1)
    model = TFLocoformerNet(n_src=2, n_blocks=2, n_iters=[1, 2], head_per_block=True, **TF_TINY)
    system = ProgressiveSystem(model, torch.optim.Adam, SpeechPITLoss(2), None, total_epochs=2)
    system.enter_step(2)
    system.loss_func(system.forward_step(mix), sources).backward()
    assert all(p.grad is None for m in model.step_modules(1) for p in m.parameters())
    assert all(p.grad is not None for m in model.step_modules(2) for p in m.parameters())
    prefix = export_prefix(model.eval(), 1)
    with torch.no_grad():
        torch.testing.assert_close(prefix(mix), model(mix, n_steps=1))

    gated = TFLocoformerNet(n_src=2, n_iters=3, gate_kernel_size=8, **TF_TINY)
    gated_system = GatedSystem(gated, torch.optim.Adam(gated.parameters()), SpeechPITLoss(2), None)
    loss = gated_system.common_step((mix, sources), 0)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in gated.separator.gate.parameters())
    with torch.no_grad():
        _, steps = gated.eval().forward_with_steps(mix)
    assert steps.dtype == torch.long and ((steps >= 1) & (steps <= 3)).all()
