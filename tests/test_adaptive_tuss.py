"""Adaptive TUSS (issue 26): the conditional TSE module on the refinement core.

Shared weights (an iterated TSE module has one block's parameters and the reference's names),
anytime outputs for every prompt, a gate that decides per (mixture, prompt) with exited prompts
leaving the batch (counted: block passes and multiply-adds), trace == eager on inputs whose gates
differ, training through the gated procedure with prompted batches, and the measured evaluation
(steps and TSE GMACs per prompt, the anytime curve, the report).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from asteroid_lir.engine.gated import GatedSystem, calibrate_exit_margin
from asteroid_lir.engine.procedures import TrainingJob, train
from asteroid_lir.experiment.compute_report import compute_markdown, operating_point
from asteroid_lir.experiment.evaluation import evaluate_items
from asteroid_lir.experiment.measure import count_macs, measured_refinement
from asteroid_lir.experiment.plots import plot_quality_vs_compute
from asteroid_lir.experiment.summaries import per_prompt_summary
from asteroid_lir.experiment.trainer import hardware
from asteroid_lir.losses import PromptSNRLoss
from asteroid_lir.masknn.gating import exit_steps
from asteroid_lir.models import BSLocoformerNet, TUSSNet

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models

BLOCK = dict(attention_dim=8, freq_ffn_hidden_dim=8, freq_conv1d_kernel=3,
             time_ffn_hidden_dim=8, time_conv1d_kernel=2)  # fmt: skip
STACKS = dict(emb_dim=8, num_groups=2, n_heads=2, sample_rate=8000, n_fft=32, hop_length=8,
              band_config="musical", n_bands=4)  # fmt: skip
TUSS = dict(n_cross_prompt_blocks=1, cross_prompt_block=BLOCK, n_tse_blocks=1, tse_block=BLOCK,
            **STACKS)  # fmt: skip
PROMPTS = ["speech", "sfx"]


def tuss(**kwargs) -> TUSSNet:
    torch.manual_seed(0)
    return TUSSNet(**{**TUSS, **kwargs}).eval()


def wave(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def split_gate(model: TUSSNet, wav: torch.Tensor, prompts) -> None:
    """Set the gate's bias so that, before step 2, half of the (item, prompt) samples of this
    batch continue and half exit: gates that differ inside one batch."""
    gate = model.separator.gate
    with torch.no_grad():
        _, z = model.encode(wav, prompts)
        logits = gate(model.separator.refine(z, 0))
        margin = logits[:, 1] - logits[:, 0]
        gate.temporal.bias[1] -= margin.median() + 1e-4


# ---------------------------------------------------------------------- structure
def test_iterated_tse_module_has_one_block_of_parameters_and_the_reference_names():
    base = tuss(n_tse_blocks=2)
    iterated = tuss(n_tse_blocks=2, n_iters=4)
    keys = set(base.state_dict())
    assert set(iterated.state_dict()) == keys
    assert sum(p.numel() for p in iterated.parameters()) == sum(
        p.numel() for p in base.parameters()
    )
    tse = {k for k in keys if ".cond_tse_module." in k}
    assert {k.split(".")[2] for k in tse} == {"0", "1"}  # separator.cond_tse_module.<i>.
    assert iterated.refiner.n_steps == 4 and len(iterated.separator.cond_tse_module) == 2
    # The step schedule runs the registered layers (views, not copies).
    assert iterated.separator.blocks[0][1] is iterated.separator.cond_tse_module[1]
    two = tuss(n_tse_blocks=2, n_blocks=2, head_per_block=True)
    assert {k.split(".")[2] for k in two.state_dict() if ".cond_tse_module." in k} == set("0123")
    assert any(k.startswith("separator.block_decoders.0.") for k in two.state_dict())
    baseline = BSLocoformerNet(n_src=2, n_first_blocks=1, first_block=BLOCK, n_second_blocks=1,
                               second_block=BLOCK, n_iters=3, **STACKS)  # fmt: skip
    assert len(baseline.separator.second_module) == 1 and baseline.n_steps == 3


def test_cond_norm_normalises_what_the_tse_module_refines_and_is_off_by_default():
    base, normed = tuss(n_iters=2), tuss(n_iters=2, cond_norm=True)
    assert base.separator.cond_norm is None  # the reference: no parameter added
    extra = set(normed.state_dict()) - set(base.state_dict())
    assert extra == {"separator.cond_norm.gamma"}
    assert normed.separator.cond_norm in normed.separator.stem_modules()  # frozen with the stem
    with torch.no_grad():
        z_base, z_norm = (m.encode(wave(1, 800), [PROMPTS])[1] for m in (base, normed))
        rms = z_norm.unflatten(1, (2, 4)).pow(2).mean(2).sqrt()  # per group and position
    torch.testing.assert_close(rms, torch.ones_like(rms), atol=1e-3, rtol=0)
    assert not torch.allclose(z_base, z_norm)
    # Serialised and rebuilt with its argument.
    again = TUSSNet.from_pretrained(normed.serialize())
    assert again.get_model_args()["cond_norm"] is True and again.separator.cond_norm is not None


def test_gate_arguments_and_steps_are_checked():
    with pytest.raises(ValueError, match="gate would never decide"):
        tuss(gate_kernel_size=8)  # one step: nothing to decide
    with pytest.raises(TypeError, match="bogus"):
        tuss(bogus=1)
    model = tuss(n_iters=2)
    with pytest.raises(ValueError, match="n_steps must be in"):
        model(wave(1, 800), PROMPTS, n_steps=3)
    with pytest.raises(ValueError, match="Unknown prompt"):
        model.forward_steps(wave(1, 800), ["speech", "kazoo"])


# ---------------------------------------------------------------------- anytime
def test_anytime_estimates_for_every_prompt():
    model = tuss(n_iters=3)
    wav = wave(2, 900)
    with torch.no_grad():
        steps = model.forward_steps(wav, PROMPTS)
        assert len(steps) == 3 and all(s.shape == (2, 2, 900) for s in steps)
        for k, est in enumerate(steps, start=1):
            torch.testing.assert_close(est, model(wav, PROMPTS, n_steps=k))
    assert not torch.allclose(steps[0], steps[-1], atol=1e-4)  # each step refines


# ---------------------------------------------------------------------- per-prompt exit
def test_a_prompt_that_exits_leaves_the_batch_and_costs_no_later_step():
    model = tuss(n_iters=3, gate_kernel_size=8)
    wav = wave(2, 900)
    forced = torch.tensor([[1, 3], [2, 1]])  # steps of each (item, prompt)
    seen = []
    model.separator.cond_tse_module[0].register_forward_hook(lambda m, a, o: seen.append(len(o)))
    with torch.no_grad():
        est, steps = model.forward_with_steps(wav, PROMPTS, force_steps=forced)
        assert steps.tolist() == forced.tolist()
        assert seen == [4, 2, 1]  # after step 1, the two finished prompts are gone
        for b in range(2):  # each prompt's output is that of its own steps
            for p in range(2):
                alone = model.forward_with_steps(wav[b : b + 1], PROMPTS, force_steps=forced[b, p])
                torch.testing.assert_close(est[b, p], alone[0][0, p], rtol=1e-5, atol=1e-6)
        seen.clear()
        model.forward_with_steps(wav, PROMPTS, force_steps=forced, early_exit=False)
        assert seen == [4, 4, 4]  # the branch-free path computes every prompt

    # Multiply-adds, counted: one TSE pass and one gate evaluation per sample and step taken.
    core, flat = model.refiner, forced.reshape(-1)
    with torch.no_grad():
        z = model.encode(wav, PROMPTS)[1]
        step = count_macs(core.refine, z[:1], 0)[1]
        gate = count_macs(core.gate, z[:1])[1]
        batch = count_macs(core.run_gated, z, flat)[1]
        alone = [count_macs(core.run_gated, z[i : i + 1], flat[i])[1] for i in range(4)]
        full = count_macs(core.run_gated, z, flat, early_exit=False)[1]
    evals = flat.clamp(max=core.n_steps - 1)  # a gate before each step after the first taken
    assert step > 0 and gate > 0
    assert alone == [int(s) * step + int(e) * gate for s, e in zip(flat, evals)]
    assert batch == sum(alone) < full == 4 * (3 * step + 2 * gate)


def test_the_gate_decides_per_prompt_and_a_trace_follows_each_input_gates():
    model = tuss(n_iters=3, gate_kernel_size=8)
    wav = wave(3, 900, seed=1)
    prompts = [["speech", "sfx", "sfx"]] * 3
    split_gate(model, wav, prompts)
    ids = model.prompt_ids(prompts, 3)
    with torch.no_grad():
        est, steps = model.forward_with_steps(wav, ids)
    assert len(set(steps.reshape(-1).tolist())) > 1  # the gates differ inside the batch
    assert (steps.min(1).values != steps.max(1).values).any()  # ... and between prompts
    with torch.no_grad():
        for b in range(3):  # batch-independent: the same steps and outputs alone
            e1, s1 = model.forward_with_steps(wav[b : b + 1], ids[b : b + 1])
            assert s1[0].tolist() == steps[b].tolist()
            torch.testing.assert_close(e1[0], est[b], rtol=1e-5, atol=1e-6)
    exported = model.to_torchscript(wav[:1], ids[:1])  # traced on one item, run on all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, (wav[1:2], ids[1:2]), check_trace=False)
    with torch.no_grad():
        t_est, t_steps = exported(wav, ids)
        torch.testing.assert_close(t_est, est, rtol=1e-5, atol=1e-6)
        assert t_steps.tolist() == steps.tolist()
        torch.testing.assert_close(traced(wav, ids), est, rtol=1e-5, atol=1e-6)


def test_a_step_budget_calibrates_the_exit_margin_over_every_prompt():
    model = tuss(n_iters=3, gate_kernel_size=8)
    wav = wave(3, 900, seed=1)
    ids = model.prompt_ids([["speech", "sfx", "sfx"]] * 3, 3)
    with torch.no_grad():  # at the paper's margin 0 every prompt would take every step
        model.separator.gate.temporal.bias[1] += 10.0
    margin = calibrate_exit_margin(model, [(wav, ids)], budget=2.0)
    with torch.no_grad():
        _, steps = model.forward_with_steps(wav, ids)
        logits = model.gate_margin_logits(wav, ids)  # one row per (mixture, prompt)
    assert steps.reshape(-1).tolist() == exit_steps(logits.numpy(), margin).tolist()
    assert steps.float().mean() <= 2.0 and len(set(steps.reshape(-1).tolist())) > 1


# ---------------------------------------------------------------------- training
class _PromptedBatches(torch.utils.data.Dataset):
    """A few (mixtures, references, prompts) batches of noise sources."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        refs = wave(2, 2, 800, seed=self.seed + i)
        return refs.sum(1), refs, [PROMPTS, PROMPTS]


def _loaders():
    kwargs = dict(batch_size=None)
    return (
        torch.utils.data.DataLoader(_PromptedBatches(2, 0), **kwargs),
        torch.utils.data.DataLoader(_PromptedBatches(1, 100), **kwargs),
    )


def test_gated_system_step_penalises_the_steps_of_every_prompt():
    model = tuss(n_iters=3, gate_kernel_size=8).train()
    system = GatedSystem(
        model, torch.optim.Adam(model.parameters()), PromptSNRLoss(), *_loaders(),
        step_penalty=1.0, prompted_batches=True,
    )  # fmt: skip
    batch = next(iter(system.train_loader))
    inputs, targets, loss_args = system.unpack(batch, True)
    assert inputs[1] == loss_args[0] == [PROMPTS, PROMPTS]
    loss = system.common_step(batch, 0)
    loss.backward()
    assert model.separator.gate.temporal.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="remix"):
        GatedSystem(model, None, PromptSNRLoss(), *_loaders(), remix_task="sep_noisy",
                    prompted_batches=True)  # fmt: skip


def test_two_phase_gated_training_of_tuss_through_the_procedures(tmp_path):
    conf = {
        "model": {"name": "TUSSNet", **TUSS, "n_iters": 2},
        "training": {"mode": "gated", "epochs": 1, "num_sanity_val_steps": 0,
                     "progress_bar": False, "log_every_n_steps": 1},
        "optim": {"optimizer": "adam", "lr": 1e-3},
        "gated": {"joint_epochs": 1, "lambda": 0.5, "gate": {"gate_kernel_size": 8}},
    }  # fmt: skip
    from asteroid_lir.experiment.registry import build_model

    job = TrainingJob(
        conf, tmp_path, PromptSNRLoss(), _loaders(), hardware(""), build_model,
        system_kwargs={"prompted_batches": True, "warmup_steps": 1},
    )  # fmt: skip
    trainer, model, report = train(job)
    assert type(model) is TUSSNet and model.refiner.gated and model.n_steps == 2
    assert (tmp_path / "pretrain" / "best_model.pth").is_file()
    assert (
        report["phases"]["pretrain"]["global_steps"]
        == 2
        == report["phases"]["joint"]["global_steps"]
    )
    pre = TUSSNet.from_pretrained(tmp_path / "pretrain" / "best_model.pth")
    assert not pre.refiner.gated


# ---------------------------------------------------------------------- evaluation
def test_cpu_attention_is_counted():
    q = torch.randn(2, 3, 10, 4)
    assert count_macs(F.scaled_dot_product_attention, q, q, q)[1] == 2 * 2 * 3 * 10 * 10 * 4


def _items(n: int = 2) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        refs = rng.standard_normal((2, 900)).astype(np.float32)
        out.append({"id": f"m{i}", "mixture": refs.sum(0), "references": refs,
                    "prompts": PROMPTS, "names": PROMPTS})  # fmt: skip
    return out


def test_measured_evaluation_reports_steps_gmacs_and_the_anytime_curve(tmp_path):
    ungated = tuss(n_iters=3)
    gated = ungated.with_gate(gate_kernel_size=8).eval()
    items = _items()
    split_gate(gated, torch.from_numpy(items[0]["mixture"])[None], [PROMPTS])
    rows, _ = evaluate_items(gated, items, 8000, ("si_sdr",), progress=None, measure=True)
    plain, _ = evaluate_items(ungated, items, 8000, ("si_sdr",), progress=None, measure=True)
    with torch.no_grad():
        wav = torch.from_numpy(items[0]["mixture"])[None]
        run = measured_refinement(gated, (wav, [PROMPTS]), anytime=True)
        steps = gated.forward_with_steps(wav, [PROMPTS])[1]
    assert rows[0]["output_steps"] == [float(s) for s in steps[0]]
    assert len(set(rows[0]["output_steps"])) == 2  # the two prompts took different steps
    # Each output's GMACs follow its steps; the anytime curve is the network without its gate.
    per_step = plain[0]["anytime"][0]["gmacs"] / 2  # one TSE pass of one prompt
    for s, g in zip(rows[0]["output_steps"], rows[0]["output_gmacs"]):
        assert g >= s * per_step and g < s * per_step * 1.1
    assert [a["gmacs"] for a in rows[0]["anytime"]] == [a["gmacs"] for a in plain[0]["anytime"]]
    assert plain[0]["refine_gmacs"] == pytest.approx(plain[0]["anytime"][-1]["gmacs"])
    assert rows[0]["refine_gmacs"] == pytest.approx(float(run.macs.sum()) / 1e9)
    assert rows[0]["refine_gmacs"] < plain[0]["refine_gmacs"]
    summary = per_prompt_summary(rows, "si_sdr")
    assert summary["steps_mean"] == pytest.approx(
        np.mean([s for r in rows for s in r["output_steps"]])
    )
    assert set(summary["per_prompt"]["speech"]) >= {"mean_steps", "mean_gmacs"}
    assert [a["steps"] for a in summary["anytime"]] == [1, 2, 3]
    results = {
        "model": {"gated": True},
        "tasks": {"SE": summary, "FIVE": summary},
    }
    point = operating_point(results)
    assert point["tasks"] == ["SE"] and point["gmacs"] == summary["gmacs_per_mixture"]
    assert "| SE |" in compute_markdown(results)
    base = {"model": {"gated": False}, "tasks": {"SE": per_prompt_summary(plain, "si_sdr")}}
    path = tmp_path / "qc.png"
    assert plot_quality_vs_compute({"gated": results, "ungated": base}, path, "dB")
    assert path.stat().st_size > 0
    assert compute_markdown({"model": {}, "tasks": {"SE": {"gmacs_per_mixture": None}}}) == ""


def test_chunked_separation_reports_the_steps_of_every_prompt():
    from asteroid_lir.inference import separate_chunked

    model = tuss(n_iters=3, gate_kernel_size=8)
    wav = wave(2, 3000, seed=2) * 0.1
    done = separate_chunked(model, wav, chunk_size=1200, overlap=300, prompts=PROMPTS)
    assert done.estimates.shape == (2, 2, 3000)
    assert done.steps.shape == (2, done.n_chunks, 2) and done.n_chunks > 1
    assert ((done.steps >= 1) & (done.steps <= 3)).all()


def test_progressive_tuss_heads_steps_and_prefix_export():
    from asteroid_lir.engine.progressive import ProgressiveSystem
    from asteroid_lir.models.refinement import export_prefix

    model = tuss(n_blocks=2, n_iters=[1, 2], head_per_block=True)
    # Every parameter is trained in exactly one progressive step (the SOS token in step 1).
    per_step = [{id(p) for m in model.step_modules(k) for p in m.parameters()} for k in (1, 2)]
    assert not per_step[0] & per_step[1]
    assert per_step[0] | per_step[1] == {id(p) for p in model.parameters()}
    assert id(model.separator.sos_token) in per_step[0]
    wav = wave(1, 900)
    prefix = export_prefix(model, 1).eval()
    with torch.no_grad():
        torch.testing.assert_close(prefix(wav, PROMPTS), model(wav, PROMPTS, n_steps=1))
        ends = model.forward_block_ends(wav, PROMPTS)
        torch.testing.assert_close(ends[1], model(wav, PROMPTS))
    system = ProgressiveSystem(
        model.train(), lambda params: torch.optim.Adam(params), PromptSNRLoss(), *_loaders(),
        total_epochs=2, prompted_batches=True,
    )  # fmt: skip
    system.common_step(next(iter(system.train_loader)), 0).backward()
    head_1 = list(model.separator.decoder_for(0).parameters())
    assert all(p.grad is not None for p in head_1)  # step 1 trains the first block's head
    assert all(p.grad is None for p in model.separator.decoder.parameters())
