"""Adaptive early exit: gate, gated masker and model, joint training system, benchmark."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from asteroid.models.base_models import BaseModel
from torch.utils.data import DataLoader, TensorDataset

from asteroid_lir.engine.gated import (
    GatedSystem,
    build_gated_model,
    calibrate_exit_margin,
    gated_lr_scheduler,
)
from asteroid_lir.masknn import GatingModule
from asteroid_lir.masknn.gating import exit_margin_for_budget, exit_steps
from asteroid_lir.models import GatedLIRSuDORMRFNet, LIRSuDORMRFNet

TINY = dict(n_filters=16, bn_chan=8, upsampling_depth=2)
N_SAMPLES = 800


def tiny_gated(**kwargs) -> GatedLIRSuDORMRFNet:
    torch.manual_seed(0)
    return GatedLIRSuDORMRFNet(n_src=2, n_iters=4, gate_kernel_size=16, **{**TINY, **kwargs})


def set_gate_bias(model: GatedLIRSuDORMRFNet, process_minus_exit: float) -> None:
    with torch.no_grad():
        model.masker.gate.temporal.bias.copy_(torch.tensor([0.0, process_minus_exit]))


@pytest.fixture
def wav() -> torch.Tensor:
    return torch.randn(4, N_SAMPLES, generator=torch.Generator().manual_seed(1))


# ---------------------------------------------------------------------- gate
def test_paper_gate_has_13k_parameters():
    gate = GatingModule(in_chan=128, kernel_size=3200)
    counts = {name: p.numel() for name, p in gate.named_parameters()}
    assert counts["proj.weight"] + counts["proj.bias"] == 258
    assert counts["act.weight"] == 1
    assert counts["temporal.weight"] + counts["temporal.bias"] == 12_802
    assert sum(counts.values()) == 12_802 + 258 + 1
    assert gate.get_config() == {"in_chan": 128, "kernel_size": 3200}


def test_gate_length_rule_resamples_time_axis():
    torch.manual_seed(0)
    gate = GatingModule(in_chan=8, kernel_size=16).eval()
    z = torch.randn(3, 8, 16)
    logits = gate(z)
    assert logits.shape == (3, 2)
    # Longer: averaging over windows, so a latent with every frame doubled gives the same logits.
    torch.testing.assert_close(gate(z.repeat_interleave(2, dim=-1)), logits)
    # Shorter: stretched by repeating frames, so half the frames doubled give the same logits.
    half = z[..., :8]
    torch.testing.assert_close(gate(half), gate(half.repeat_interleave(2, dim=-1)))
    assert gate(torch.randn(2, 8, 37)).shape == (2, 2)
    with pytest.raises(ValueError, match="expects a latent"):
        gate(torch.randn(2, 5, 16))


def test_training_decisions_are_hard_with_straight_through_gradient():
    torch.manual_seed(0)
    gate = GatingModule(in_chan=8, kernel_size=16).train()
    z = torch.randn(64, 8, 16)
    g = gate.decide(z)
    assert set(g.unique().tolist()) <= {0.0, 1.0}
    assert 0 < g.sum() < 64  # random init: both decisions occur
    (g * torch.arange(64.0)).sum().backward()
    for param in (gate.proj.weight, gate.act.weight, gate.temporal.weight):
        assert param.grad is not None and param.grad.abs().sum() > 0


def test_eval_decisions_are_deterministic():
    torch.manual_seed(0)
    gate = GatingModule(in_chan=8, kernel_size=16).eval()
    z = torch.randn(16, 8, 20)
    logits = gate(z)
    expected = (logits[:, 1] > logits[:, 0]).float()
    for _ in range(3):
        assert torch.equal(gate.decide(z), expected)


# ---------------------------------------------------------------------- gated model, inference
def test_forced_steps_equal_ungated_refinement(wav):
    model = tiny_gated().eval()
    with torch.no_grad():
        per_step = model.forward_steps(wav)  # inherited, ungated anytime outputs
        for k in range(1, 5):
            est, steps = model.forward_with_steps(wav, force_steps=k)
            assert steps.dtype == torch.long and steps.tolist() == [k] * 4
            torch.testing.assert_close(est, per_step[k - 1])
            torch.testing.assert_close(model(wav, n_steps=k), est)


def test_per_sample_exit_matches_each_sample_alone(wav):
    model = tiny_gated().eval()
    forced = torch.tensor([1, 3, 4, 2])
    with torch.no_grad():
        est, steps = model.forward_with_steps(wav, force_steps=forced)
        assert steps.tolist() == forced.tolist()
        for i in range(4):
            alone, _ = model.forward_with_steps(wav[i : i + 1], force_steps=int(forced[i]))
            torch.testing.assert_close(est[i], alone[0], rtol=1e-5, atol=1e-6)


def test_gate_driven_exit_is_exact_and_batch_independent():
    model = tiny_gated().eval()
    # Search a few inputs until the fresh gate disagrees across samples (deterministic).
    gen = torch.Generator().manual_seed(3)
    for _ in range(50):
        set_gate_bias(model, float(torch.randn(1, generator=gen)) * 0.5)
        wav = torch.randn(8, N_SAMPLES, generator=gen) * torch.rand(8, 1, generator=gen)
        with torch.no_grad():
            est, steps = model.forward_with_steps(wav)
        if len(steps.unique()) > 1:
            break
    assert len(steps.unique()) > 1, "could not build a batch with different exits"
    with torch.no_grad():
        # Same as running every sample through every step and selecting with the gate.
        est_sel, steps_sel = model.forward_with_steps(wav, early_exit=False)
        assert torch.equal(steps, steps_sel)
        torch.testing.assert_close(est, est_sel, rtol=1e-5, atol=1e-6)
        for i in range(8):
            alone, steps_alone = model.forward_with_steps(wav[i : i + 1])
            assert steps_alone.item() == steps[i].item()
            torch.testing.assert_close(alone[0], est[i], rtol=1e-5, atol=1e-6)
        # Same as the ungated model run for that many steps.
        per_step = model.forward_steps(wav)
        for i in range(8):
            torch.testing.assert_close(est[i], per_step[int(steps[i]) - 1][i])


def test_min_steps_and_force_steps_validation(wav):
    model = tiny_gated().eval()
    set_gate_bias(model, -100.0)  # the gate always says exit
    with torch.no_grad():
        assert model.forward_with_steps(wav)[1].tolist() == [1] * 4  # first step always taken
        model0 = tiny_gated(min_steps=0).eval()
        set_gate_bias(model0, -100.0)
        est0, steps0 = model0.forward_with_steps(wav)
        assert steps0.tolist() == [0] * 4 and torch.isfinite(est0).all()
        set_gate_bias(model, 100.0)
        assert model.forward_with_steps(wav)[1].tolist() == [4] * 4
    with pytest.raises(ValueError, match="force_steps"):
        model.forward_with_steps(wav, force_steps=5)
    with pytest.raises(ValueError, match="force_steps"):
        model.forward_with_steps(wav, force_steps=torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="min_steps"):
        tiny_gated(min_steps=5)
    with pytest.raises(TypeError, match="n_iters"):
        tiny_gated(n_iters=[2, 2])


def test_one_dimensional_input_and_separate(wav):
    model = tiny_gated().eval()
    with torch.no_grad():
        est, steps = model.forward_with_steps(wav[0])
        assert est.shape == (2, N_SAMPLES) and steps.shape == (1,)
        out = model.separate(wav[:1])
    assert out.shape == (1, 2, N_SAMPLES)
    # The model's own scale (Asteroid's separate() would rescale to the input's L1 norm).
    torch.testing.assert_close(out[0], est, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="silent"):
        model.separate(torch.zeros(1, N_SAMPLES))


def test_serialization_round_trip(tmp_path, wav):
    model = tiny_gated(min_steps=0, gumbel_tau=0.5, exit_is_final=False).eval()
    set_gate_bias(model, 0.3)
    path = tmp_path / "gated.pth"
    torch.save(model.serialize(), path)
    for loaded in (GatedLIRSuDORMRFNet.from_pretrained(path), BaseModel.from_pretrained(str(path))):
        assert type(loaded) is GatedLIRSuDORMRFNet
        assert loaded.get_model_args() == model.get_model_args()
        loaded.eval()
        with torch.no_grad():
            a, sa = model.forward_with_steps(wav)
            b, sb = loaded.forward_with_steps(wav)
        assert torch.equal(sa, sb)
        torch.testing.assert_close(a, b)


def test_traced_export_matches_eager(wav):
    model = tiny_gated().eval()
    set_gate_bias(model, 0.2)
    traced = model.to_torchscript(wav)
    with torch.no_grad():
        est, steps = model.forward_with_steps(wav)
        est_t, steps_t = traced(wav)
    assert torch.equal(steps, steps_t)
    torch.testing.assert_close(est_t, est, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------- exit margin
LOGITS = [[1.0, 2.0, -1.0], [-1.0, 5.0, 5.0], [3.0, 3.0, 3.0]]


def test_exit_steps_count_the_decisions_above_the_margin_until_the_first_exit():
    assert exit_steps(LOGITS, 0.0).tolist() == [3, 1, 4]
    assert exit_steps(LOGITS, 2.5).tolist() == [1, 1, 4]
    assert exit_steps(LOGITS, 3.0).tolist() == [1, 1, 1]  # a logit equal to the margin exits
    assert exit_steps(LOGITS, -np.inf, min_steps=0).tolist() == [3, 3, 3]


@pytest.mark.parametrize(
    "budget, margin", [(4.0, -np.inf), (3.0, -1.0), (2.5, 1.0), (2.0, 1.0), (1.0, 3.0)]
)
def test_exit_margin_for_budget_is_the_smallest_within_the_budget(budget, margin):
    # Mean steps per candidate margin: -inf 4, -1 8/3, 1 2, 2 2, 3 1, 5 1.
    assert exit_margin_for_budget(LOGITS, budget) == margin


def test_exit_margin_for_budget_rejects_bad_input():
    with pytest.raises(ValueError, match="budget must lie in \\[1, 4\\]"):
        exit_margin_for_budget(LOGITS, 4.5)
    with pytest.raises(ValueError, match="finite"):
        exit_margin_for_budget([[0.0, float("nan")]], 2.0)
    with pytest.raises(ValueError, match="non-empty"):
        exit_margin_for_budget(np.zeros((0, 3)), 2.0)


@pytest.mark.parametrize("exit_is_final", [True, False])
def test_calibrated_margin_gives_the_budget_and_follows_the_gate_ranking(exit_is_final):
    # exit_is_final only changes training: at inference every exit is final, so a model trained
    # with independent draws calibrates alike.
    model = tiny_gated(exit_is_final=exit_is_final)
    set_gate_bias(model, 2.0)  # every sample would take every step at the paper's margin 0
    gen = torch.Generator().manual_seed(4)
    valid = [torch.randn(2, N_SAMPLES, generator=gen) * torch.rand(2, 1, generator=gen)
             for _ in range(6)]  # fmt: skip
    margin = calibrate_exit_margin(model, valid, budget=2.5)
    assert not model.training and float(model.masker.gate.exit_margin) == margin
    with torch.no_grad():
        logits = torch.cat([model.gate_margin_logits(w) for w in valid])
        steps = torch.cat([model.forward_with_steps(w)[1] for w in valid])
    # The model exits where the margin rule says, and spends at most the budget on average.
    assert steps.tolist() == exit_steps(logits.numpy(), margin).tolist()
    assert steps.float().mean() <= 2.5 and len(steps.unique()) > 1
    with pytest.raises(ValueError, match="gated"):
        calibrate_exit_margin(LIRSuDORMRFNet(n_src=2, n_iters=2, **TINY), valid, 2.0)


def test_exit_margin_is_saved_and_old_files_load_with_the_paper_rule(tmp_path, wav):
    model = tiny_gated().eval()
    set_gate_bias(model, 0.2)
    model.masker.gate.exit_margin.fill_(0.75)
    path = tmp_path / "gated.pth"
    torch.save(model.serialize(), path)
    assert float(GatedLIRSuDORMRFNet.from_pretrained(path).masker.gate.exit_margin) == 0.75
    old = model.serialize()
    del old["state_dict"]["masker.gate.exit_margin"]  # a file saved before the margin existed
    loaded = GatedLIRSuDORMRFNet.from_pretrained(old).eval()
    assert float(loaded.masker.gate.exit_margin) == 0.0
    model.masker.gate.exit_margin.fill_(0.0)
    with torch.no_grad():
        assert torch.equal(loaded.forward_with_steps(wav)[1], model.forward_with_steps(wav)[1])


# ---------------------------------------------------------------------- from a pre-trained model
def test_from_lir_copies_network_and_adds_fresh_gate(tmp_path, wav):
    torch.manual_seed(0)
    lir = LIRSuDORMRFNet(n_src=2, n_blocks=1, n_sub_blocks=1, n_iters=3, **TINY).eval()
    path = tmp_path / "lir.pth"
    torch.save(lir.serialize(), path)
    gated = build_gated_model(path, gate_kernel_size=16).eval()
    assert gated.masker.n_steps == 3 and gated.masker.gate.kernel_size == 16
    with torch.no_grad():
        for k in (1, 3):
            torch.testing.assert_close(gated(wav, n_steps=k), lir(wav, n_steps=k))
    assert GatedLIRSuDORMRFNet.from_lir(lir, n_iters=5).masker.n_steps == 5
    with pytest.raises(ValueError, match="n_blocks"):
        GatedLIRSuDORMRFNet.from_lir(LIRSuDORMRFNet(n_src=2, n_blocks=2, n_sub_blocks=1, **TINY))
    with pytest.raises(TypeError, match="LIRSuDORMRFNet"):
        GatedLIRSuDORMRFNet.from_lir(gated)
    with pytest.raises(FileNotFoundError):
        build_gated_model(tmp_path / "missing.pth")


# ---------------------------------------------------------------------- training
@pytest.mark.parametrize("exit_is_final", [True, False])
def test_c_hat_is_the_sum_of_the_gates(wav, exit_is_final):
    model = tiny_gated(exit_is_final=exit_is_final).train()
    decisions = []
    decide = model.masker.gate.decide

    def recording_decide(z, tau=1.0):
        g = decide(z, tau)
        decisions.append(g)
        return g

    model.masker.gate.decide = recording_decide
    torch.manual_seed(5)
    est, c_hat = model.forward_with_steps(torch.cat([wav, wav]))
    assert c_hat.dtype == est.dtype and c_hat.requires_grad
    gates = torch.stack(decisions, 1)  # (batch, gated steps)
    if exit_is_final:
        gates = gates.cumprod(1)
    torch.testing.assert_close(c_hat, model.masker.min_steps + gates.sum(1))
    assert ((c_hat >= 1) & (c_hat <= 4)).all()


def _toy_loaders(n: int = 8, batch: int = 4):
    gen = torch.Generator().manual_seed(0)
    sources = torch.randn(n, 2, N_SAMPLES, generator=gen)
    data = TensorDataset(sources.sum(1), sources)
    return DataLoader(data, batch_size=batch), DataLoader(data, batch_size=batch)


def _neg_sisdr(est, targets):
    from asteroid.losses import singlesrc_neg_sisdr

    return singlesrc_neg_sisdr(est.flatten(0, 1), targets.flatten(0, 1)).mean()


def test_gated_system_trains_with_lightning(tmp_path):
    lir = LIRSuDORMRFNet(n_src=2, n_blocks=1, n_sub_blocks=1, n_iters=2, **TINY)
    train, val = _toy_loaders()
    system = GatedSystem.from_ungated(
        lir, _neg_sisdr, train, val, lr=1e-3, step_penalty=0.5, gate_kwargs={"gate_kernel_size": 16}
    )
    assert isinstance(system.scheduler, torch.optim.lr_scheduler.StepLR)
    trainer = pl.Trainer(
        max_epochs=1,
        default_root_dir=tmp_path,
        logger=pl.loggers.CSVLogger(tmp_path),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(system)
    metrics = trainer.callback_metrics
    for key in ("loss_sep_epoch", "c_hat_epoch", "val_loss_sep", "val_c_hat", "val_loss"):
        assert key in metrics and torch.isfinite(metrics[key])
    torch.testing.assert_close(
        metrics["val_loss"], metrics["val_loss_sep"] + 0.5 * metrics["val_c_hat"]
    )
    with pytest.raises(TypeError, match="a refinement model with a gate"):
        GatedSystem(lir, system.optimizer, _neg_sisdr, train)
    with pytest.raises(ValueError, match="step_penalty"):
        GatedSystem(system.model, system.optimizer, _neg_sisdr, train, step_penalty=-1)


def test_step_penalty_pushes_c_hat_down(wav):
    train, _ = _toy_loaders()
    batch = next(iter(train))

    def train_gate(step_penalty: float) -> float:
        model = tiny_gated()
        set_gate_bias(model, 2.0)  # start by taking (almost) every step, like the pre-trained net
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
        system = GatedSystem(model, optimizer, _neg_sisdr, train, step_penalty=step_penalty)
        torch.manual_seed(0)
        for _ in range(12):
            optimizer.zero_grad()
            system.common_step(batch, 0, train=True).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            return model.forward_with_steps(wav)[1].float().mean().item()

    assert train_gate(step_penalty=2.0) < train_gate(step_penalty=0.0)


def _gate_logit_shift(**rates) -> float:
    """Mean |change| of the gate's logits over a batch after one joint training step."""
    torch.manual_seed(0)
    lir = LIRSuDORMRFNet(n_src=2, n_blocks=1, n_sub_blocks=1, n_iters=4, **TINY)
    train, _ = _toy_loaders()
    system = GatedSystem.from_ungated(
        lir,
        _neg_sisdr,
        train,
        lr=1e-3,
        step_penalty=0.3,
        gate_kwargs={"gate_kernel_size": 400},
        **rates,
    )
    model, batch = system.model, next(iter(train))

    def logits() -> torch.Tensor:
        with torch.no_grad():
            _, z = model.encode(batch[0])
            return model.refiner.gate(model.refiner.refine(z, 0))

    before = logits()
    system.train()
    system.optimizer.zero_grad()
    torch.manual_seed(1)
    system.common_step(batch, 0, train=True).backward()
    system.optimizer.step()
    return (logits() - before).abs().mean().item()


def test_joint_training_default_rates_do_not_saturate_the_gate():
    # At the paper's single rate one Adam step moves every weight of the gate's 400-frame
    # temporal convolution by about lr (at the mini recipe's sizes the logits moved by about 5,
    # issue 15); the default rates (a tenth for network and gate) move them ten times less.
    paper = _gate_logit_shift(network_lr=1e-3, gate_lr=1e-3)
    default = _gate_logit_shift()
    assert paper > 0.05
    assert default < 0.3 * paper


def test_joint_param_groups_and_frozen_network():
    lir = LIRSuDORMRFNet(n_src=2, n_blocks=1, n_sub_blocks=1, n_iters=2, **TINY)
    train, _ = _toy_loaders()
    system = GatedSystem.from_ungated(
        lir,
        _neg_sisdr,
        train,
        lr=1e-3,
        network_lr=0,
        gate_lr=2e-3,
        gate_kwargs={"gate_kernel_size": 16},
    )
    groups = system.optimizer.param_groups
    assert [g["name"] for g in groups] == ["gate"] and groups[0]["lr"] == 2e-3
    model, batch = system.model, next(iter(train))
    net_before = {k: v.clone() for k, v in model.state_dict().items() if ".gate." not in k}
    gate_before = model.masker.gate.temporal.weight.clone()
    system.train()
    system.common_step(batch, 0, train=True).backward()
    system.optimizer.step()
    for k, v in model.state_dict().items():
        if ".gate." not in k:
            torch.testing.assert_close(v, net_before[k])
    assert not torch.equal(model.masker.gate.temporal.weight, gate_before)
    default = GatedSystem.from_ungated(lir, _neg_sisdr, train, lr=1e-3)
    assert [(g["name"], g["lr"]) for g in default.optimizer.param_groups] == [
        ("gate", pytest.approx(1e-4)),
        ("network", pytest.approx(1e-4)),
    ]
    with pytest.raises(ValueError, match="gate_lr"):
        GatedSystem.from_ungated(lir, _neg_sisdr, train, gate_lr=0)


def test_lr_schedule_divides_by_three_every_five_epochs():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.9)
    scheduler = gated_lr_scheduler(optimizer)
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:5] == [0.9] * 5
    assert lrs[5] == pytest.approx(0.3) and lrs[19] == pytest.approx(0.9 / 27)


# ---------------------------------------------------------------------- benchmark
@pytest.mark.slow
def test_early_exit_benchmark_quick_run():
    from asteroid_lir.bench import early_exit

    args = argparse.Namespace(device="cpu", quick=True, repeats=1)
    result = early_exit.run(args)
    assert [r["steps"] for r in result["rows"][:4]] == ["1", "2", "3", "4"]
    macs = result["macs"]
    assert 0 < macs["gate"] < macs["uconv_pass"] < macs["fixed"] * 10
    assert "| exit after 4 |" in early_exit.to_markdown(result)
