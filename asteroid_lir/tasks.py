"""The task and prompt vocabulary shared by the data, the corpus synthesis and the models.

One place for the names that several parts must agree on, and nothing else: this module imports
no other part of the library (and no torch), so that the datasets (:mod:`asteroid_lir.data`),
the corpus builders (:mod:`asteroid_lir.synth`), the models and the recipes read the same
tables without importing each other.

* The splits of every corpus (:data:`SPLITS`).
* The WHAM! layout (:data:`WHAM_FOLDERS`) and its separation tasks
  (:data:`WHAM_TASKS`: which mixture folder, which speech targets; :func:`n_speech`).
* The prompts of prompt-driven separation (:data:`PROMPT_NAMES`, the source classes of TUSS;
  :data:`STEM_NAMES`, the music stems among them) and the evaluation tasks of the unified
  recipe (:data:`UNIFIED_TASKS`, :data:`FIVE_PROMPTS`).

References:
    G. Wichern et al., "WHAM!: Extending speech separation to noisy environments",
    Interspeech 2019 (the layout and the ``sep_noisy`` / ``enh_single`` tasks).
    K. Saijo et al., "Task-aware unified source separation", ICASSP 2025 (the prompts and the
    SE / SS / USS / MSS / CASS tasks).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FIVE_PROMPTS",
    "MIXTURE_FOLDERS",
    "PROMPT_NAMES",
    "SOURCE_FOLDERS",
    "SPLITS",
    "STEM_NAMES",
    "UNIFIED_TASKS",
    "WHAM_FOLDERS",
    "WHAM_TASKS",
    "TaskSpec",
    "n_speech",
    "wham_task",
]

#: Training, validation and test splits, in that order (WHAM! and the unified data).
SPLITS = ("tr", "cv", "tt")

# ------------------------------------------------------------------------------ WHAM!
SOURCE_FOLDERS = ("s1", "s2", "noise")
MIXTURE_FOLDERS = ("mix_both", "mix_single", "mix_clean")
WHAM_FOLDERS = MIXTURE_FOLDERS + SOURCE_FOLDERS

#: WHAM! task -> mixture folder, speech target folders (in target order) and the noise folder.
WHAM_TASKS: dict[str, dict] = {
    "sep_noisy": {"mixture": "mix_both", "speech": ("s1", "s2"), "noise": "noise"},
    "enh_single": {"mixture": "mix_single", "speech": ("s1",), "noise": "noise"},
}


def wham_task(task: str) -> dict:
    """The entry of :data:`WHAM_TASKS` for ``task``.

    Args:
        task (str): ``"sep_noisy"`` or ``"enh_single"``.

    Returns:
        dict: ``{"mixture": folder, "speech": folders, "noise": folder}``.

    Raises:
        ValueError: unknown task (the message lists the known ones).
    """
    if task not in WHAM_TASKS:
        raise ValueError(f"Unknown task {task!r}; expected one of {sorted(WHAM_TASKS)}.")
    return WHAM_TASKS[task]


def n_speech(task: str) -> int:
    """Number of speech sources a model estimates for a WHAM! task (2 or 1).

    Args:
        task (str): ``"sep_noisy"`` or ``"enh_single"``.

    Returns:
        int: the number of speech targets (the noise, when estimated, comes after them).
    """
    return len(wham_task(task)["speech"])


# ------------------------------------------------------------------------------ prompts
#: Source classes of prompt-driven separation (TUSS): the learnable prompts of the model, the
#: class folders of the unified data and the classes of the embedded unified corpus.
PROMPT_NAMES = ("speech", "sfx", "sfxbg", "drums", "bass", "vocals", "other", "musicbg")
#: The four stems of a song (MUSDB18 style), in the order of :data:`PROMPT_NAMES`.
STEM_NAMES = ("drums", "bass", "vocals", "other")


@dataclass(frozen=True)
class TaskSpec:
    """An evaluation task: its prompts (a tuple, or the sfx counts of USS) and metric."""

    name: str
    prompts: tuple
    metric: str  # "si_sdr" or "snr"
    description: str


#: The evaluation tasks of the TUSS slides.
UNIFIED_TASKS = {
    "SE": TaskSpec("SE", ("speech", "sfxbg"), "si_sdr", "speech enhancement"),
    "SS": TaskSpec("SS", ("speech", "speech", "sfxbg"), "si_sdr", "noisy speech separation"),
    "USS": TaskSpec("USS", ("sfx",), "si_sdr", "universal sound separation (2-4 sfx)"),
    "MSS": TaskSpec("MSS", ("vocals", "bass", "drums", "other"), "snr", "music separation"),
    "CASS": TaskSpec("CASS", ("speech", "sfxbg", "musicbg"), "si_sdr", "cinematic separation"),
}
#: The five-prompt case (the model trains with at most four): speech in ambience with three
#: stems of one song. Each mixture rotates this order by a random number of places, so that
#: every class is the fifth prompt in about a fifth of the mixtures.
FIVE_PROMPTS = ("speech", "sfxbg", "bass", "vocals", "drums")
