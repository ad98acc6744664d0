"""Data of the unified (TUSS) recipe: prompt-driven mixtures and the test tasks.

Sources come from the index of a folder-per-class tree
(:func:`~asteroid_lir.data.unified_sources.index_sources`, also re-exported here). Training
mixtures are drawn on the fly by the rules of :mod:`asteroid_lir.data.unified_mixing` (the TUSS
reference's scheme; its names are re-exported here) and batched by :class:`UnifiedMixtures`.

Evaluation tasks: :data:`asteroid_lir.tasks.UNIFIED_TASKS` (SE, SS, USS, MSS, CASS: the TUSS
slides) and :data:`~asteroid_lir.tasks.FIVE_PROMPTS`, a five-source case for a model trained
with at most four.

References:
    K. Saijo et al., "Task-aware unified source separation", ICASSP 2025.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch.utils.data import Dataset

from ..tasks import FIVE_PROMPTS, UNIFIED_TASKS
from .unified_mixing import (
    CLASSES,
    MixingOptions,
    SourceBank,
    draw_classes,
    draw_training_example,
    mixture_from,
    render_sources,
)
from .unified_sources import index_sources, write_unified_metadata

__all__ = [
    "CLASSES",
    "MixingOptions",
    "SourceBank",
    "TASKS",
    "UnifiedMixtures",
    "collate_prompted",
    "draw_classes",
    "draw_training_example",
    "index_sources",
    "make_task_mixtures",
    "write_unified_metadata",
]

#: The evaluation tasks (:data:`asteroid_lir.tasks.UNIFIED_TASKS`), under the name the recipes
#: import; new code reads them from :mod:`asteroid_lir.tasks`.
TASKS = UNIFIED_TASKS


class UnifiedMixtures(Dataset):
    """Batches of mixtures drawn on the fly (training) or fixed (validation).

    Every item is a whole batch, so that its mixtures share their number of prompts (and one
    absent prompt, or none): batch ``b`` draws the count from ``(seed, epoch, b)`` and mixture
    ``j`` from ``(seed, epoch, b, j)``. Use it with ``DataLoader(dataset, batch_size=None)``.
    Call :meth:`set_epoch` to draw new mixtures (training); with ``fixed=True`` the epoch is
    ignored (validation).

    Args:
        index (dict): the source index (:func:`index_sources`).
        split (str): the split to draw from.
        n_batches (int): batches per epoch.
        batch_size (int): mixtures per batch.
        segment (float): seconds per mixture.
        options (MixingOptions): how mixtures are drawn.
        seed (int): seed.
        fixed (bool): the same batches every epoch.

    Items:
        tuple: ``(batch, time)`` mixtures, ``(batch, n_prompts, time)`` references and one
        list of prompt names per mixture.
    """

    def __init__(
        self,
        index: dict,
        split: str,
        n_batches: int,
        batch_size: int,
        segment: float,
        options: MixingOptions | None = None,
        seed: int = 0,
        fixed: bool = False,
    ):
        if n_batches < 1 or batch_size < 1 or not segment > 0:
            raise ValueError(
                f"Need n_batches >= 1, batch_size >= 1 and segment > 0, got {n_batches}, "
                f"{batch_size}, {segment}."
            )
        self.bank = SourceBank(index, split)
        if len(self.bank.available) < 2:
            raise ValueError(
                f"Split {split!r} has sources of {self.bank.available} only; mixtures need at "
                "least two classes."
            )
        self.n_batches, self.batch_size = int(n_batches), int(batch_size)
        self.length = int(round(segment * self.bank.sample_rate))
        self.options = options or MixingOptions()
        self.seed, self.fixed, self.epoch = int(seed), bool(fixed), 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the mixtures of another epoch (no effect with ``fixed=True``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_batches

    def __getitem__(self, index: int):
        if not 0 <= index < self.n_batches:
            raise IndexError(f"Batch {index} out of range (0..{self.n_batches - 1}).")
        epoch = 0 if self.fixed else self.epoch
        batch_rng = np.random.default_rng([self.seed, epoch, index])
        n = int(batch_rng.choice(self.options.n_prompts))
        add_absent = n < max(self.options.n_prompts) and batch_rng.random() < self.options.p_absent
        items = []
        for j in range(self.batch_size):
            rng = np.random.default_rng([self.seed, epoch, index, j])
            mix, refs, prompts = draw_training_example(
                self.bank, self.length, rng, n, self.options, add_absent
            )
            items.append((torch.from_numpy(mix), torch.from_numpy(refs), prompts))
        return collate_prompted(items)


def collate_prompted(items):
    """Batch ``(mixture, references, prompts)`` items with equal prompt counts.

    Returns:
        tuple: ``(batch, time)`` mixtures, ``(batch, n_prompts, time)`` references and one
        list of prompt names per item.

    Raises:
        ValueError: items with different prompt counts.
    """
    counts = {len(p) for _, _, p in items}
    if len(counts) != 1:
        raise ValueError(f"A batch mixes prompt counts {sorted(counts)}; they must be equal.")
    mix = torch.stack([m for m, _, _ in items])
    refs = torch.stack([r for _, r, _ in items])
    return mix, refs, [list(p) for _, _, p in items]


# ---------------------------------------------------------------------- evaluation mixtures
def task_classes(task: str, rng: np.random.Generator) -> list[str]:
    """The prompts of one mixture of ``task`` (USS draws 2-4 sfx)."""
    if task == "FIVE":
        shift = int(rng.integers(len(FIVE_PROMPTS)))
        return list(FIVE_PROMPTS[shift:] + FIVE_PROMPTS[:shift])
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; choose from {list(TASKS) + ['FIVE']}.")
    return ["sfx"] * int(rng.integers(2, 5)) if task == "USS" else list(TASKS[task].prompts)


def make_task_mixtures(
    index: dict, task: str, n: int, seconds: float, seed: int = 0, split: str = "tt"
) -> list[dict]:
    """Fixed evaluation mixtures of a task, as sample arrays in memory.

    Args:
        index: the source index.
        task: a key of :data:`TASKS` or ``"FIVE"`` (:data:`FIVE_PROMPTS`).
        n: number of mixtures.
        seconds: their length.
        seed: seed (mixture ``i`` draws from ``(seed, task, i)``).
        split: the split to draw from.

    Returns:
        list of dict: ``{"id", "task", "prompts", "mixture" (time,), "sources" (n_src, time)}``.

    Raises:
        ValueError: if the split lacks a class the task needs.
    """
    bank = SourceBank(index, split)
    needed = set(task_classes(task, np.random.default_rng(0))) if task != "USS" else {"sfx"}
    missing = sorted(needed - set(bank.available))
    if missing:
        raise ValueError(f"Task {task} needs sources of {missing}, absent from split {split!r}.")
    length = int(round(seconds * bank.sample_rate))
    code = int(hashlib.sha1(task.encode()).hexdigest()[:6], 16)
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, code, i])
        classes = task_classes(task, rng)
        mix, refs = mixture_from(render_sources(classes, bank, length, rng))
        item = {"id": f"{task}{i:04d}", "task": task, "prompts": classes}
        out.append({**item, "mixture": mix, "sources": refs})
    return out
