"""Evaluation (asteroid_lir.experiment.evaluation and the WHAM! recipe's stage 3) against oracles.

The metrics must be right for estimates whose answer is known: perfect estimates (in any
order), the mixture itself (no improvement), and estimates with a distortion of known level.
Signals with known SI-SDRs are built from mutually orthogonal zero-mean signals.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from asteroid_lir.data import WhamDataset, write_wham_metadata
from asteroid_lir.experiment.evaluation import (
    EvaluationError,
    evaluate_items,
    score_sources,
)
from asteroid_lir.experiment.summaries import quartile_table, summarize
from asteroid_lir.models import LIRSuDORMRFNet
from asteroid_lir.synth import build_mini_corpus

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "wham"


def score_utterance(mix, speech, est, rate, metrics=("si_sdr", "sdr")):
    """The WHAM! recipe's scoring: the speech outputs (the first ones) matched to the speakers."""
    scores, chosen = score_sources(
        mix.numpy(), speech.numpy(), est.numpy(), rate, metrics, candidates=len(speech)
    )
    return scores, torch.from_numpy(chosen)


def wham_items(dataset, n_utt):
    """Evaluation items of the first test mixtures, as the recipe's stage 3 builds them."""
    n = dataset.n_speech

    def load(i):
        mix, targets, _ = dataset[i]
        return {"mixture": mix.numpy(), "references": targets[:n].numpy(),
                "noise": targets[n].numpy(), "candidates": n}  # fmt: skip

    return [{"id": dataset.entries[i]["id"], "load": lambda i=i: load(i)} for i in range(n_utt)]


SR = 8000
T = 8000


def orthogonal_sources(energies, seed: int = 0) -> torch.Tensor:
    """Mutually orthogonal zero-mean signals ``(len(energies), T)`` with the given energies."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(T, len(energies) + 1, generator=gen, dtype=torch.float64)
    x = x - x.mean(0)
    q, _ = torch.linalg.qr(x[:, 1:] - x[:, 1:].mean(0))
    q = q - q.mean(0)  # the columns stay orthogonal: they are orthogonal to the constant
    return torch.stack(
        [q[:, k] / q[:, k].norm() * energies[k] ** 0.5 for k in range(len(energies))]
    )


def with_si_sdr(ref: torch.Tensor, db: float, seed: int) -> torch.Tensor:
    """An estimate of ``ref`` whose SI-SDR is exactly ``db`` (distortion orthogonal to it)."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(T, generator=gen, dtype=torch.float64)
    noise = noise - noise.mean()
    noise = noise - (noise @ ref) / (ref @ ref) * ref
    return ref + noise * (ref.norm() / noise.norm()) * 10 ** (-db / 20)


@pytest.fixture
def sep_sources():
    s1, s2, noise = orthogonal_sources([1.0, 0.5, 0.25])
    return s1, s2, noise, s1 + s2 + noise


# ----------------------------------------------------------------------------- metrics
def test_perfect_estimates_in_any_order_score_the_same_very_high_improvement(sep_sources):
    s1, s2, noise, mix = sep_sources
    speech = torch.stack([s1, s2])
    ordered, est_ordered = score_utterance(mix, speech, torch.stack([s1, s2, noise]), SR)
    swapped, est_swapped = score_utterance(mix, speech, torch.stack([s2, s1, noise]), SR)
    assert torch.equal(est_swapped, speech.double()) and torch.equal(est_ordered, speech.double())
    for key in ("si_sdr", "si_sdri", "sdr", "sdri"):
        np.testing.assert_allclose(swapped[key], ordered[key], rtol=1e-9)
    assert min(swapped["si_sdri"]) > 60 and min(swapped["sdri"]) > 60


def test_mixture_as_estimate_gives_no_improvement(sep_sources):
    s1, s2, noise, mix = sep_sources
    scores, _ = score_utterance(mix, torch.stack([s1, s2]), torch.stack([mix] * 3), SR)
    np.testing.assert_allclose(scores["si_sdri"], [0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(scores["sdri"], [0.0, 0.0], atol=1e-6)


def test_known_si_sdr_values(sep_sources):
    s1, s2, noise, mix = sep_sources
    est = torch.stack([with_si_sdr(s2, 5.0, 2), with_si_sdr(s1, 10.0, 1), noise])  # swapped
    scores, _ = score_utterance(mix, torch.stack([s1, s2]), est, SR, ("si_sdr",))
    # Orthogonal sources: the mixture's SI-SDR for s_k is 10 log10(|s_k|^2 / |rest|^2).
    input_db = [10 * np.log10(1.0 / 0.75), 10 * np.log10(0.5 / 1.25)]
    np.testing.assert_allclose(scores["input_si_sdr"], input_db, atol=1e-6)
    np.testing.assert_allclose(scores["si_sdr"], [10.0, 5.0], atol=1e-6)
    np.testing.assert_allclose(
        scores["si_sdri"], [10.0 - input_db[0], 5.0 - input_db[1]], atol=1e-6
    )


def test_the_noise_output_is_never_matched_to_a_speaker(sep_sources):
    s1, s2, noise, mix = sep_sources
    junk = orthogonal_sources([1.0], seed=5)[0]
    # The noise output holds speaker 2 perfectly: it must not be used for speaker 2.
    scores, _ = score_utterance(
        mix, torch.stack([s1, s2]), torch.stack([s1, junk, s2]), SR, ("si_sdr",)
    )
    assert scores["si_sdr"][0] > 60
    assert scores["si_sdr"][1] < 0


def test_enhancement_scores_the_speech_output_only():
    s1, noise = orthogonal_sources([1.0, 0.1])
    mix = s1 + noise
    est = torch.stack([with_si_sdr(s1, 12.0, 3), s1])  # a perfect "noise" output is ignored
    scores, _ = score_utterance(mix, s1[None], est, SR, ("si_sdr",))
    np.testing.assert_allclose(scores["si_sdr"], [12.0], atol=1e-6)
    np.testing.assert_allclose(scores["input_si_sdr"], [10.0], atol=1e-6)


def test_more_outputs_than_references_match_the_best_outputs(sep_sources):
    # An unconditional model with four outputs on a two-source task: each reference gets the
    # output that holds it, wherever it stands.
    s1, s2, noise, mix = sep_sources
    junk = orthogonal_sources([1.0, 1.0], seed=7)
    est = torch.stack([junk[0], with_si_sdr(s2, 8.0, 4), junk[1], with_si_sdr(s1, 3.0, 6)])
    scores, chosen = score_sources(mix.numpy(), torch.stack([s1, s2]).numpy(), est.numpy(), SR)
    assert scores["output"] == [3, 1]
    np.testing.assert_allclose(scores["si_sdr"], [3.0, 8.0], atol=1e-6)
    np.testing.assert_allclose(chosen, est[[3, 1]].numpy())


def test_estimates_of_the_wrong_shape_are_rejected(sep_sources):
    s1, s2, noise, mix = sep_sources
    with pytest.raises(ValueError, match="expected at least 2 sources"):
        score_utterance(mix, torch.stack([s1, s2]), s1[None], SR)
    with pytest.raises(ValueError, match="expected at least 2 sources"):
        score_utterance(mix, torch.stack([s1, s2]), torch.stack([s1, s2])[:, :-3], SR)


def test_quartiles_group_mixtures_by_input_snr():
    snrs = np.array([7.0, 0.0, 5.0, 2.0, 1.0, 6.0, 3.0, 4.0])
    rows = quartile_table(snrs, {"si_sdri": snrs * 10}, steps=snrs + 1)
    assert [r["count"] for r in rows] == [2, 2, 2, 2]
    assert [r["si_sdri"] for r in rows] == pytest.approx([5.0, 25.0, 45.0, 65.0])
    assert [r["steps_mean"] for r in rows] == pytest.approx([1.5, 3.5, 5.5, 7.5])


# ----------------------------------------------------------------------------- whole loop
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_corpus")
    wav_dir = build_mini_corpus(
        root, n_train=1, n_valid=1, n_test=3, utt_seconds=1.0, seed=1, progress=False, workers=1
    )
    write_wham_metadata(wav_dir, root / "metadata")
    return root / "metadata"


class OracleModel(nn.Module):
    """Returns the true sources of each test mixture, speakers swapped (or the mixture)."""

    def __init__(self, dataset, mode: str = "swapped", fail_on: str | None = None):
        super().__init__()
        self.table = {}
        for i in range(len(dataset)):
            mix, targets, utt_id = dataset[i]
            self.table[mix.numpy().tobytes()] = (targets, utt_id)
        self.mode = mode
        self.fail_on = fail_on

    def forward(self, wav):
        targets, utt_id = self.table[wav[0].numpy().tobytes()]
        if utt_id == self.fail_on:
            raise RuntimeError("boom")
        if self.mode == "mixture":
            return wav[:, None].expand(1, 3, -1)
        return targets[[1, 0, 2]][None]


def _dataset(meta):
    return WhamDataset(meta / "tt.json", segment=None, return_noise=True, return_id=True)


def test_evaluation_of_an_oracle(corpus, tmp_path):
    ds = _dataset(corpus)
    rows, timing = evaluate_items(
        OracleModel(ds), wham_items(ds, 3), SR, ("si_sdr",), examples_dir=tmp_path, n_examples=1
    )
    assert [r["id"] for r in rows] == [e["id"] for e in ds.entries]
    for row in rows:
        assert min(row["si_sdri"]) > 90 and "steps" not in row
    assert timing["audio_seconds"] == pytest.approx(sum(e["length"] for e in ds.entries) / SR)
    assert (tmp_path / rows[0]["id"] / "s2_estimate.wav").is_file()
    summary = summarize(rows, ("si_sdr",), timing)
    assert summary["si_sdri"] > 90 and summary["n_utterances"] == 3
    rows, _ = evaluate_items(OracleModel(ds, "mixture"), wham_items(ds, 3), SR, ("si_sdr",))
    for row in rows:
        np.testing.assert_allclose(row["si_sdri"], [0.0, 0.0], atol=1e-4)


def test_an_evaluation_error_names_the_utterance(corpus, tmp_path):
    ds = _dataset(corpus)
    bad = ds.entries[1]["id"]
    with pytest.raises(EvaluationError, match=f"'{bad}' .*RuntimeError: boom"):
        evaluate_items(OracleModel(ds, fail_on=bad), wham_items(ds, 3), SR, ("si_sdr",))
    # An unreadable file after the metadata was written: the utterance and the file are named.
    entries = json.loads((corpus / "tt.json").read_text())
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"")
    entries[2]["s1"] = str(broken)
    (tmp_path / "tt.json").write_text(json.dumps(entries))
    ds_broken = _dataset(tmp_path)
    with pytest.raises(EvaluationError, match=f"'{entries[2]['id']}' .*broken.wav"):
        evaluate_items(OracleModel(ds), wham_items(ds_broken, 3), SR, ("si_sdr",))


# ----------------------------------------------------------------------------- task checks
def run_eval(*args: str) -> subprocess.CompletedProcess:
    """The recipe's stage 3 as a script (as run.sh runs it)."""
    cmd = [sys.executable, str(RECIPE / "eval.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def _experiment(tmp_path, task="sep_noisy", n_src=3, model_sr=8000, conf_sr=8000):
    import yaml

    model = LIRSuDORMRFNet(
        n_src, 1, 1, n_filters=16, bn_chan=8, upsampling_depth=2, sample_rate=model_sr
    )
    conf = {"data": {"task": task, "sample_rate": conf_sr, "return_noise": True}}
    package = model.serialize()
    package["infos"]["recipe"] = {"config": conf}
    exp = tmp_path / f"exp_{task}_{n_src}_{model_sr}_{conf_sr}"
    exp.mkdir()
    torch.save(package, exp / "best_model.pth")
    (exp / "conf.yml").write_text(yaml.safe_dump(conf))
    return exp


@pytest.mark.parametrize(
    "trained, asked, message",
    [
        (dict(task="enh_single", n_src=2), "sep_noisy", "trained for task 'enh_single'"),
        (dict(task="sep_noisy", n_src=3), "enh_single", "trained for task 'sep_noisy'"),
        (dict(task="sep_noisy", n_src=2), "sep_noisy", "it has 2 outputs, 3 are needed"),
        (dict(model_sr=16000), "sep_noisy", "it works at 16000 Hz, the data at 8000 Hz"),
    ],
)
def test_eval_rejects_a_model_of_another_task_or_sample_rate(
    corpus, tmp_path, trained, asked, message
):
    exp = _experiment(tmp_path, **trained)
    res = run_eval("--exp_dir", str(exp), "--meta_dir", str(corpus), "--task", asked)
    assert res.returncode != 0 and message in res.stderr, res.stderr[-2000:]
    assert f"--task {asked}" in res.stderr and "Traceback" not in res.stderr
    assert not (exp / "results.json").exists()


def test_eval_runs_on_a_model_of_the_right_task(corpus, tmp_path):
    exp = _experiment(tmp_path)
    argv = ["--exp_dir", str(exp), "--meta_dir", str(corpus), "--task", "sep_noisy"]
    res = run_eval(*argv, "--n_examples", "0")
    assert res.returncode == 0, res.stderr[-2000:]
    results = json.loads((exp / "results.json").read_text())
    assert results["model"]["structure"].startswith("1x1x1 ")
    assert set(results["summary"]["metrics"]) == {"si_sdr", "sdr"}
    for key in ("si_sdri", "sdri"):
        assert len(results["summary"][f"{key}_per_source"]) == 2
        assert all(len(row[key]) == 2 for row in results["utterances"])
    assert "SDRi" in (exp / "results.md").read_text()
