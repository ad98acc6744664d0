"""Progressive block-wise training (paper Sec. 2.2): freezing, optimizer, resume, export, memory."""

import argparse
import warnings

import pytest
import pytorch_lightning as pl
import torch
from asteroid.models import BaseModel
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from asteroid_lir.bench.training_memory import TrainingMemoryMeter
from asteroid_lir.engine.progressive import (
    MultiHeadSystem,
    ProgressiveSystem,
    block_end_estimates,
    export_prefix,
    progressive_step_modules,
    split_epochs,
)
from asteroid_lir.losses import SpeechPITLoss
from asteroid_lir.models import LIRSuDORMRFNet

TINY = dict(n_filters=16, bn_chan=8, upsampling_depth=2, kernel_size=5, stride=2)
N_SAMPLES = 400
LR = 1e-2


def tiny_model(n_blocks=2, n_iters=(1, 2), seed=0):
    torch.manual_seed(seed)
    return LIRSuDORMRFNet(
        n_src=2,
        n_blocks=n_blocks,
        n_sub_blocks=1,
        n_iters=list(n_iters),
        head_per_block=True,
        **TINY,
    )


def loaders(n=8, batch=4):
    gen = torch.Generator().manual_seed(0)
    sources = torch.randn(n, 2, N_SAMPLES, generator=gen)
    data = TensorDataset(sources.sum(1), sources)
    return DataLoader(data, batch_size=batch), DataLoader(data, batch_size=batch)


def make_system(model, total_epochs=4):
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    return ProgressiveSystem(
        model, optimizer, SpeechPITLoss(n_speech=2), *loaders(), scheduler=scheduler,
        total_epochs=total_epochs,
    )  # fmt: skip


def make_trainer(tmp_path, max_epochs, callbacks=(), every_n_train_steps=None):
    checkpoint = ModelCheckpoint(
        dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=every_n_train_steps
    )
    return pl.Trainer(
        max_epochs=max_epochs,
        callbacks=[*callbacks, checkpoint],
        default_root_dir=tmp_path,
        logger=pl.loggers.CSVLogger(tmp_path),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )


def state_of(modules):
    return {f"{i}.{k}": v.detach().clone() for i, m in enumerate(modules) for k, v in
            m.state_dict().items()}  # fmt: skip


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def optimizer_param_ids(optimizer):
    return {id(p) for group in optimizer.param_groups for p in group["params"]}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        yield


# ---------------------------------------------------------------- structure
def test_steps_partition_the_parameters():
    model = tiny_model(n_blocks=3, n_iters=(1, 1, 2))
    seen = []
    for step in (1, 2, 3):
        seen += [id(p) for m in progressive_step_modules(model, step) for p in m.parameters()]
    assert sorted(seen) == sorted(id(p) for p in model.parameters())  # each exactly once
    step1 = {id(m) for m in progressive_step_modules(model, 1)}
    assert id(model.encoder) in step1 and id(model.masker.bottleneck) in step1
    assert id(model.encoder) not in {id(m) for m in progressive_step_modules(model, 2)}


def test_epoch_split_and_bad_arguments():
    assert split_epochs(200, 2) == [100, 100]
    assert split_epochs(200, 3) == [66, 66, 68]  # the last step takes the remainder
    with pytest.raises(ValueError, match="at least one epoch"):
        split_epochs(3, 4)
    system = make_system(tiny_model(n_blocks=3, n_iters=(1, 1, 1)), total_epochs=7)
    assert [system.step_for_epoch(e) for e in range(7)] == [1, 1, 2, 2, 3, 3, 3]
    assert system.last_epoch_of_step(2) == 3 and system.last_epoch_of_step(3) == 6
    with pytest.raises(ValueError, match="exactly one"):
        ProgressiveSystem(tiny_model(), torch.optim.Adam, SpeechPITLoss(2), None)
    single_head = LIRSuDORMRFNet(n_src=2, n_blocks=2, n_sub_blocks=1, **TINY)
    with pytest.raises(ValueError, match="head_per_block"):
        ProgressiveSystem(single_head, torch.optim.Adam, SpeechPITLoss(2), None, total_epochs=2)


def test_step_forward_has_no_graph_through_the_frozen_prefix():
    model = tiny_model()
    system = ProgressiveSystem(model, torch.optim.Adam, SpeechPITLoss(2), None, total_epochs=2)
    system.enter_step(2)
    mix = torch.randn(2, N_SAMPLES)
    est = system.forward_step(mix)
    est.sum().backward()
    frozen = [p for m in progressive_step_modules(model, 1) for p in m.parameters()]
    trained = [p for m in progressive_step_modules(model, 2) for p in m.parameters()]
    assert all(p.grad is None and not p.requires_grad for p in frozen)
    assert all(p.grad is not None for p in trained)
    # The estimate is head 2's, after all steps.
    model.eval()
    torch.testing.assert_close(est, model(mix))


# ---------------------------------------------------------------- training with Lightning
class StepSpy(pl.Callback):
    """Records the model state at the end of step 1 and the optimizer at every epoch."""

    def __init__(self):
        self.step1_state, self.epochs = None, []

    def on_train_epoch_start(self, trainer, pl_module):
        opt = trainer.optimizers[0]
        self.epochs.append(
            (trainer.current_epoch, pl_module.active_step, optimizer_param_ids(opt),
             opt.param_groups[0]["lr"])
        )  # fmt: skip

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == pl_module.last_epoch_of_step(1):
            self.step1_state = state_of(progressive_step_modules(pl_module.model, 1))


@pytest.mark.slow
def test_progressive_fit_freezes_step1_and_rebuilds_the_optimizer(tmp_path):
    model = tiny_model()
    system = make_system(model, total_epochs=4)
    spy = StepSpy()
    make_trainer(tmp_path, 4, [spy]).fit(system)

    step1 = progressive_step_modules(model, 1)
    step2 = progressive_step_modules(model, 2)
    # After step 2, the encoder, block 1 and head 1 are bit-identical to the end of step 1.
    assert_same_state(spy.step1_state, state_of(step1))
    assert all(not p.requires_grad for m in step1 for p in m.parameters())
    # The optimizer holds exactly the current step's parameters; the schedule restarts.
    ids = {k: {id(p) for m in progressive_step_modules(model, k) for p in m.parameters()}
           for k in (1, 2)}  # fmt: skip
    assert [(e, s) for e, s, _, _ in spy.epochs] == [(0, 1), (1, 1), (2, 2), (3, 2)]
    for _, step, opt_ids, _ in spy.epochs:
        assert opt_ids == ids[step]
    lrs = [lr for *_, lr in spy.epochs]
    assert lrs[0] == lrs[2] == pytest.approx(LR) and lrs[1] == lrs[3] == pytest.approx(LR / 2)
    # Block 2 did train.
    fresh = tiny_model()
    assert not torch.equal(step2[0][0].res_conv.weight, fresh.masker.blocks[1][0].res_conv.weight)

    # Per-step outputs: a checkpoint and a deployable prefix model for each step.
    ckpt_dir = tmp_path / "ckpt"
    for k in (1, 2):
        assert (ckpt_dir / f"step{k}-last.ckpt").is_file()
    wav = torch.randn(2, N_SAMPLES)
    model.eval()
    step1_model = LIRSuDORMRFNet.from_pretrained(str(ckpt_dir / "step1_model.pth")).eval()
    assert step1_model.n_blocks == 1
    torch.testing.assert_close(step1_model(wav), model(wav, n_steps=1), rtol=0, atol=0)
    step1_ckpt = torch.load(ckpt_dir / "step1-last.ckpt", weights_only=False)
    assert step1_ckpt["progressive"]["active_step"] == 1
    assert step1_ckpt["epoch"] == 1


class CrashAfter(pl.Callback):
    def __init__(self, epoch, batch_idx):
        self.epoch, self.batch_idx = epoch, batch_idx

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == self.batch_idx:
            raise RuntimeError("simulated crash")


class ResumeProbe(pl.Callback):
    def __init__(self):
        self.seen = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.seen is None:
            opt = trainer.optimizers[0]
            adam_steps = {float(s["step"]) for s in opt.state.values()}
            self.seen = dict(
                epoch=trainer.current_epoch,
                batch_idx=batch_idx,
                step=pl_module.active_step,
                opt_ids=optimizer_param_ids(opt),
                adam_steps=adam_steps,
                frozen=state_of(progressive_step_modules(pl_module.model, 1)),
                requires_grad=[p.requires_grad for p in pl_module.model.encoder.parameters()],
            )


@pytest.mark.slow
def test_resume_mid_step_lands_in_the_right_step(tmp_path):
    # 6 epochs, 2 per step; the run dies at the 2nd batch of epoch 3 (step 2's 2nd epoch).
    system = make_system(tiny_model(n_blocks=3, n_iters=(1, 1, 1)), total_epochs=6)
    trainer = make_trainer(tmp_path, 6, [CrashAfter(epoch=3, batch_idx=1)], every_n_train_steps=1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer.fit(system)
    last = tmp_path / "ckpt" / "last.ckpt"
    step1 = torch.load(tmp_path / "ckpt" / "step1-last.ckpt", weights_only=False)

    # A new process: a fresh model with other weights, restored from last.ckpt.
    resumed = make_system(tiny_model(n_blocks=3, n_iters=(1, 1, 1), seed=1), total_epochs=6)
    probe = ResumeProbe()
    trainer = make_trainer(tmp_path, 6, [probe], every_n_train_steps=1)
    trainer.fit(resumed, ckpt_path=str(last))

    seen = probe.seen
    assert (seen["epoch"], seen["batch_idx"], seen["step"]) == (3, 1, 2)
    model = resumed.model
    assert seen["opt_ids"] == {id(p) for m in progressive_step_modules(model, 2)
                               for p in m.parameters()}  # fmt: skip
    # Adam's state was restored: 2 batches of epoch 2 + 1 of epoch 3 were done in step 2.
    assert seen["adam_steps"] == {3.0}
    assert not any(seen["requires_grad"])
    # Frozen weights after resuming are those that step 1 produced, bit for bit.
    ref = {k[len("model.") :]: v for k, v in step1["state_dict"].items()}
    step1_keys = [k for k in ref if k.startswith(("encoder.", "masker.ln.", "masker.bottleneck.",
                  "masker.blocks.0.", "masker.mask_nets.0.", "block_decoders.0."))]  # fmt: skip
    final = model.state_dict()
    for key in step1_keys:
        assert torch.equal(final[key], ref[key]), key
    assert_same_state(seen["frozen"], state_of(progressive_step_modules(model, 1)))
    assert resumed.active_step == 3 and trainer.current_epoch == 6


def test_multi_head_end_to_end_losses():
    model = tiny_model()
    mix, targets = next(iter(loaders()[0]))
    loss = SpeechPITLoss(n_speech=2)
    opt = torch.optim.Adam(model.parameters())
    all_heads = MultiHeadSystem(model, opt, loss, None, heads="all")
    last_head = MultiHeadSystem(model, opt, loss, None, heads="last")
    per_step = model.forward_steps(mix)  # steps: block 1 once, block 2 twice
    expected = loss(per_step[0], targets) + loss(per_step[2], targets)
    torch.testing.assert_close(all_heads.common_step((mix, targets), 0), expected)
    torch.testing.assert_close(last_head.common_step((mix, targets), 0), loss(model(mix), targets))
    ests = block_end_estimates(model, mix)
    assert len(ests) == 2 and ests[1].requires_grad


def test_step_loss_every_scores_the_estimate_after_each_step():
    model = tiny_model(n_blocks=1, n_iters=(3,))
    mix, targets = next(iter(loaders()[0]))
    loss = SpeechPITLoss(n_speech=2)
    steps = MultiHeadSystem(model, None, loss, None, heads="steps")
    per_step = [loss(est, targets) for est in model.forward_steps(mix)]
    assert len(per_step) == 3 and len({round(v.item(), 4) for v in per_step}) == 3
    torch.testing.assert_close(steps.common_step((mix, targets), 0), sum(per_step) / 3)
    # Validation scores the deployed (last) estimate only.
    torch.testing.assert_close(steps.common_step((mix, targets), 0, train=False), per_step[-1])
    # The earlier estimates are trained too: the gradient is not that of the last estimate's loss.
    params = [p for p in model.parameters() if p.requires_grad]
    every = torch.autograd.grad(steps.common_step((mix, targets), 0), params)
    last = torch.autograd.grad(loss(model(mix), targets), params)
    assert any(not torch.allclose(a, b) for a, b in zip(every, last))
    with pytest.raises(ValueError, match="heads must be one of"):
        MultiHeadSystem(model, None, loss, None, heads="first")
    # Every step's estimate exists without a head per block (one shared head), unlike the heads
    # of every block.
    torch.manual_seed(0)
    shared_head = LIRSuDORMRFNet(n_src=2, n_blocks=2, n_sub_blocks=1, n_iters=1, **TINY)
    MultiHeadSystem(shared_head, None, loss, None, heads="steps")
    with pytest.raises(ValueError):
        MultiHeadSystem(shared_head, None, loss, None, heads="all")


def _job(tmp_path, training):
    from asteroid_lir.engine.procedures import TrainingJob
    from asteroid_lir.experiment.registry import build_model
    from asteroid_lir.experiment.trainer import hardware

    conf = {
        "model": {"name": "LIRSuDORMRFNet", "n_src": 2, "n_blocks": 1, "n_sub_blocks": 1,
                  "n_iters": 2, **TINY},
        "training": {"mode": "end_to_end", "epochs": 1, "num_sanity_val_steps": 0,
                     "progress_bar": False, "log_every_n_steps": 1, **training},
        "optim": {"optimizer": "adam", "lr": 1e-3},
    }  # fmt: skip
    return TrainingJob(conf, tmp_path, SpeechPITLoss(n_speech=2), loaders(), hardware(""),
                       build_model)  # fmt: skip


@pytest.mark.parametrize("step_loss", ["last", "every"])
def test_training_step_loss_option_chooses_the_system(tmp_path, step_loss):
    from asteroid_lir.engine.procedures import train

    trainer, model, report = train(_job(tmp_path, {"step_loss": step_loss}))
    system = trainer.lightning_module
    assert isinstance(system, MultiHeadSystem) == (step_loss == "every")
    assert getattr(system, "heads", "last") == ("steps" if step_loss == "every" else "last")
    assert report["global_steps"] == 2 and model.n_steps == 2


@pytest.mark.parametrize(
    "training, match",
    [({"step_loss": "first"}, "step_loss must be one of"),
     ({"step_loss": "every", "mode": "progressive"}, "is for end_to_end and gated")],
)  # fmt: skip
def test_training_step_loss_option_rejects_what_it_cannot_do(tmp_path, training, match):
    from asteroid_lir.engine.procedures import train

    with pytest.raises(ValueError, match=match):
        train(_job(tmp_path, training))


# ---------------------------------------------------------------- export
@pytest.mark.parametrize("n_blocks", [1, 2, 3])
def test_export_prefix_round_trip(tmp_path, n_blocks):
    model = tiny_model(n_blocks=3, n_iters=(2, 1, 3)).eval()
    prefix = export_prefix(model, n_blocks)
    assert prefix.n_blocks == n_blocks and not prefix.masker.head_per_block
    assert prefix.masker.n_iters == [2, 1, 3][:n_blocks]
    path = tmp_path / "prefix.pth"
    torch.save(prefix.serialize(), path)
    loaded = LIRSuDORMRFNet.from_pretrained(str(path)).eval()
    assert isinstance(BaseModel.from_pretrained(str(path)), LIRSuDORMRFNet)
    wav = torch.randn(2, N_SAMPLES)
    with torch.no_grad():
        expected = model(wav, n_steps=sum([2, 1, 3][:n_blocks]))
        torch.testing.assert_close(loaded(wav), expected, rtol=0, atol=0)
    # The copy is independent of the trained model.
    with torch.no_grad():
        model.masker.blocks[0][0].res_conv.weight.add_(1.0)
        torch.testing.assert_close(loaded(wav), expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="step must be"):
        export_prefix(model, 4)


# ---------------------------------------------------------------- memory accounting
def measure(system, batch):
    optimizer = system.configure_optimizers()
    for _ in range(2):  # warm-up step (Adam state), then the measured one
        optimizer.zero_grad(set_to_none=True)
        meter = TrainingMemoryMeter(system.model, optimizer, batch)
        with meter:
            loss = system.common_step(batch, 0, train=True)
            meter.mark("forward")
            loss.backward()
            meter.mark("backward")
            optimizer.step()
            meter.mark("step")
    return meter


def progressive_at(model, step):
    system = ProgressiveSystem(model, torch.optim.Adam, SpeechPITLoss(2), None, epochs_per_step=1)
    system.enter_step(step)
    return system


def test_memory_meter_progressive_below_end_to_end():
    batch = next(iter(loaders()[0]))
    e2e_model = tiny_model(n_iters=(2, 2))
    e2e_system = MultiHeadSystem(
        e2e_model, torch.optim.Adam(e2e_model.parameters()), SpeechPITLoss(2), None, heads="last"
    )
    e2e = measure(e2e_system, batch)
    model = tiny_model(n_iters=(2, 2))
    prog = [measure(progressive_at(model, k), batch) for k in (1, 2)]
    assert max(m.peak_bytes for m in prog) < e2e.peak_bytes
    for m in (e2e, *prog):
        b = m.breakdown
        assert m.peak_bytes == sum(b.values()) and b["saved_activations"] > 0
    step2 = prog[1].breakdown
    n_step2 = sum(p.numel() for mod in progressive_step_modules(model, 2) for p in mod.parameters())
    assert prog[1].grad_bytes == 4 * n_step2  # after backward: the step's gradients only
    assert step2["params"] == 4 * sum(p.numel() for p in model.parameters())
    # Adam: two moments per trained parameter (+ the step counters).
    assert 8 * n_step2 <= step2["optimizer_state"] < 8 * n_step2 + 1024
    # A frozen prefix holds no activation: the last step of a 3-block model saves exactly what
    # the last step of a 2-block model saves (same blocks, one more frozen in front).
    deeper = tiny_model(n_blocks=3, n_iters=(2, 2, 2))
    last3 = measure(progressive_at(deeper, 3), batch).breakdown["saved_activations"]
    assert last3 == step2["saved_activations"]
    assert prog[0].breakdown["saved_activations"] > step2["saved_activations"]  # + encoder


@pytest.mark.slow
def test_table2_benchmark_quick():
    from asteroid_lir.bench import progressive as bench

    torch.set_num_threads(1)  # tiny tensors: a second thread only adds synchronisation
    args = argparse.Namespace(device="cpu", quick=True, repeats=1)
    result = bench.run(args)
    rows = {row["config"]: row for row in result["rows"]}
    assert list(rows) == ["1x16x1", "2x8x1", "2x4x2", "2x2x4", "4x4x1", "4x2x2", "4x1x4"]
    assert rows["1x16x1"]["mode"] == "end_to_end"
    for row in rows.values():
        assert isinstance(row["peak_bytes"], int) and row["step_seconds"] > 0
        if row["mode"] == "progressive":
            assert len(row["per_step"]) == row["blocks"]
            assert row["peak_bytes"] == max(s["peak_bytes"] for s in row["per_step"])
            assert row["peak_bytes"] < rows["1x16x1"]["peak_bytes"]
    assert rows["4x4x1"]["peak_bytes"] < rows["2x8x1"]["peak_bytes"]
    assert "| 2x8x1 | progressive |" in bench.to_markdown(result)
