"""SpeechPITLoss: PIT over the speech sources only, the noise kept in place, the weight of the
extra (noise) term, one speaker, and bad input.

The estimates are built with a known SI-SDR: a zero-mean reference plus a zero-mean distortion
orthogonal to it, scaled to the wanted energy ratio, has exactly that SI-SDR.
"""

from __future__ import annotations

import pytest
import torch

from asteroid_lir.losses import SpeechPITLoss

T = 4000


def _signals(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, T, generator=gen, dtype=torch.float64)
    return x - x.mean(-1, keepdim=True)


def with_si_sdr(ref: torch.Tensor, db: float, seed: int = 1) -> torch.Tensor:
    """An estimate of ``ref`` (1-D, zero mean) whose SI-SDR is exactly ``db``."""
    noise = _signals(1, seed)[0]
    noise = noise - (noise @ ref) / (ref @ ref) * ref  # orthogonal to ref, still zero mean
    noise = noise * (ref.norm() / noise.norm()) * 10 ** (-db / 20)
    return ref + noise


@pytest.fixture
def sources():
    s1, s2, noise = _signals(3)
    return s1, s2, noise


def test_known_values_and_extra_weight(sources):
    s1, s2, noise = sources
    targets = torch.stack([s1, s2, noise])[None]
    # Speech estimates at 20 and 10 dB, noise estimate at 6 dB.
    est = torch.stack([with_si_sdr(s1, 20.0), with_si_sdr(s2, 10.0, 2), with_si_sdr(noise, 6.0)])
    est = est[None]
    # Weighted mean of the per-source losses: speech sources weight 1, the noise extra_weight.
    expected = {0.0: -15.0, 1.0: -12.0, 2.0: -10.5, 0.5: -(30 + 3) / 2.5}
    for weight, value in expected.items():
        loss = SpeechPITLoss(2, extra_weight=weight)(est, targets)
        assert loss.item() == pytest.approx(value, abs=1e-4), weight


def test_zero_extra_weight_ignores_the_noise_output(sources):
    s1, s2, noise = sources
    targets = torch.stack([s1, s2, noise])[None]
    est = torch.stack([with_si_sdr(s1, 12.0), with_si_sdr(s2, 8.0, 2), noise]).requires_grad_()
    loss_fn = SpeechPITLoss(2, extra_weight=0.0)
    loss = loss_fn(est[None], targets)
    (grad,) = torch.autograd.grad(loss, est)
    assert grad[2].abs().max() == 0  # no gradient reaches the noise output
    assert grad[:2].abs().max() > 0
    worse_noise = torch.stack([est[0], est[1], _signals(1, 7)[0]]).detach()
    assert loss_fn(worse_noise[None], targets).item() == pytest.approx(loss.item(), abs=1e-9)
    # With a positive weight the same change of the noise output raises the loss.
    weighted = SpeechPITLoss(2, extra_weight=1.0)
    assert weighted(worse_noise[None], targets) > weighted(est.detach()[None], targets) + 1.0


def test_pit_over_speech_only(sources):
    s1, s2, noise = sources
    targets = torch.stack([s1, s2, noise])[None]
    loss_fn = SpeechPITLoss(2, extra_weight=1.0)
    ordered = torch.stack([with_si_sdr(s1, 15.0), with_si_sdr(s2, 5.0, 2), noise])[None]
    swapped = ordered[:, [1, 0, 2]]
    assert loss_fn(swapped, targets).item() == pytest.approx(loss_fn(ordered, targets).item())
    # The reordered estimates put the speakers back in the targets' order; the noise output
    # stays where it is.
    _, reordered = loss_fn(swapped, targets, return_est=True)
    assert torch.equal(reordered, ordered)


def test_noise_output_is_never_matched_to_a_speaker(sources):
    s1, s2, noise = sources
    targets = torch.stack([s1, s2, noise])[None]
    garbage = _signals(1, 9)[0]
    # Output 3 (the noise slot) holds speaker 2 perfectly; the speech outputs hold s1 and junk.
    est = torch.stack([s1, garbage, s2])[None]
    loss_fn = SpeechPITLoss(2, extra_weight=0.0)
    loss, reordered = loss_fn(est, targets, return_est=True)
    assert loss.item() > -60  # a PIT that used output 3 for s2 would give about -(inf + inf)/2
    perfect = loss_fn(torch.stack([s1, s2, garbage])[None], targets)
    assert loss.item() > perfect.item() + 50
    assert torch.equal(reordered[0, 2], s2)  # the noise slot is left alone


def test_one_speaker_is_plain_negative_si_sdr(sources):
    s1, _, noise = sources
    est = with_si_sdr(s1, 13.0)[None, None]
    assert SpeechPITLoss(1)(est, s1[None, None]).item() == pytest.approx(-13.0, abs=1e-4)
    # With the noise output, weight 0: the speech term alone.
    est2 = torch.stack([with_si_sdr(s1, 13.0), with_si_sdr(noise, -5.0, 3)])[None]
    targets2 = torch.stack([s1, noise])[None]
    assert SpeechPITLoss(1, extra_weight=0)(est2, targets2).item() == pytest.approx(-13.0, abs=1e-4)
    assert SpeechPITLoss(1, extra_weight=1)(est2, targets2).item() == pytest.approx(-4.0, abs=1e-4)


def test_batch_mean_and_per_item_permutations(sources):
    s1, s2, noise = sources
    targets = torch.stack([s1, s2, noise])
    a = torch.stack([with_si_sdr(s1, 20.0), with_si_sdr(s2, 20.0, 2), noise])
    b = torch.stack([with_si_sdr(s2, 10.0, 3), with_si_sdr(s1, 10.0, 4), noise])  # swapped
    loss_fn = SpeechPITLoss(2, extra_weight=0.0)
    loss = loss_fn(torch.stack([a, b]), torch.stack([targets, targets]))
    assert loss.item() == pytest.approx(-15.0, abs=1e-4)


def test_bad_input_raises(sources):
    s1, s2, noise = sources
    targets = torch.stack([s1, s2, noise])[None]
    loss_fn = SpeechPITLoss(2)
    with pytest.raises(ValueError, match="differ in shape"):
        loss_fn(targets[:, :2], targets)
    with pytest.raises(ValueError, match="n_speech=2"):
        loss_fn(targets[:, :1], targets[:, :1])
    with pytest.raises(ValueError, match="n_speech must be >= 1"):
        SpeechPITLoss(0)
    for weight in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="extra_weight"):
            SpeechPITLoss(2, extra_weight=weight)
