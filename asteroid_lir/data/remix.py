"""Online data augmentation: remix the sources of a batch into new mixtures."""

from __future__ import annotations

import torch

from ..tasks import n_speech as task_n_speech

__all__ = ["REMIX_GAIN_DB", "remix_batch"]

#: Each remixed source gets a gain uniform in [-REMIX_GAIN_DB, REMIX_GAIN_DB] dB. Small enough
#: that the speaker-to-speaker and speech-to-noise levels stay close to WHAM!'s ranges
#: (widened by at most 2 x REMIX_GAIN_DB), large enough to create new level combinations.
REMIX_GAIN_DB = 2.5


def remix_batch(
    targets: torch.Tensor,
    task: str,
    generator: torch.Generator | None = None,
    gain_db: float = REMIX_GAIN_DB,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffle each source across the batch, apply random gains and sum new mixtures.

    Source ``j`` of new example ``b`` is source ``j`` of example ``perm_j[b]`` times a random
    gain, with an independent permutation per source, so every batch holds new
    speaker/speaker/noise combinations. The new mixture is the sum of the new sources, so the
    noise target is required (``return_noise=True``): the remixed mixtures would lose it.

    Args:
        targets (torch.Tensor): ``(batch, n_speech + 1, time)`` speech sources then the noise.
        task (str): ``"sep_noisy"`` (2 speakers) or ``"enh_single"`` (1 speaker).
        generator (torch.Generator, optional): random generator (CPU), for reproducibility.
        gain_db (float): half-width of the uniform gain range, in dB (0: no gains).

    Returns:
        tuple: ``(mixture (batch, time), targets (batch, n_speech + 1, time))``.

    References:
        [1] E. Tzinis et al., "Two-step sound source separation: training on learned latent
        targets", ICASSP 2020 (online remixing of the sources inside a batch).
    """
    n_speech = task_n_speech(task)
    if targets.ndim != 3:
        raise ValueError(
            f"targets must be (batch, n_sources, time); got shape {tuple(targets.shape)}."
        )
    if targets.shape[1] != n_speech + 1:
        raise ValueError(
            f"remix_batch for {task} needs {n_speech} speech target(s) plus the noise "
            f"(got {targets.shape[1]} targets): the remixed mixture must contain noise, so build "
            "the dataset with return_noise=True or disable online remixing."
        )
    if gain_db < 0:
        raise ValueError(f"gain_db must be >= 0, got {gain_db}.")
    batch, n_sources, _ = targets.shape
    device = generator.device if generator is not None else torch.device("cpu")
    perms = torch.stack(
        [torch.randperm(batch, generator=generator, device=device) for _ in range(n_sources)], 1
    ).to(targets.device)
    gains_db = (torch.rand(batch, n_sources, generator=generator, device=device) * 2 - 1) * gain_db
    gains = (10 ** (gains_db / 20)).to(device=targets.device, dtype=targets.dtype)
    source_idx = torch.arange(n_sources, device=targets.device).expand(batch, n_sources)
    remixed = targets[perms, source_idx] * gains.unsqueeze(-1)
    return remixed.sum(dim=1), remixed
