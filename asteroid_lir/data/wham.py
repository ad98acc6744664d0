"""WHAM! corpus: layout validation, JSON metadata and the training/evaluation dataset.

The WHAM! layout is ``<root>/wav8k/min/{tr,cv,tt}/{mix_both,mix_single,mix_clean,s1,s2,noise}/``
with the same file names in every folder of a split. The dataset returns the noise as an optional
extra target (Asteroid's ``WhamDataset`` does not), which the paper's models estimate.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from ..tasks import SPLITS, WHAM_FOLDERS, WHAM_TASKS, wham_task

__all__ = ["TASKS", "WhamDataset", "validate_wham_dir", "write_wham_metadata"]

#: The WHAM! tasks (:data:`asteroid_lir.tasks.WHAM_TASKS`), under the name the recipes import;
#: new code reads them from :mod:`asteroid_lir.tasks`.
TASKS = WHAM_TASKS
_N_CHECKED_FILES = 3  # files per folder whose header is checked by validate_wham_dir


def _find_wav_dir(path: Path, sample_rate: int, mode: str) -> Path:
    """The ``wav<k>k/<mode>`` folder of a WHAM! root, or ``path`` if it already is one."""
    if any((path / split).is_dir() for split in SPLITS):
        return path
    candidate = path / f"wav{sample_rate // 1000}k" / mode
    if candidate.is_dir():
        return candidate
    present = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    raise FileNotFoundError(
        f"{path} is neither a WHAM! root (expected {candidate}) nor a wav{sample_rate // 1000}k/"
        f"{mode} folder (expected sub-folders {', '.join(SPLITS)}); it contains "
        f"{present[:10] or 'nothing'}."
    )


def validate_wham_dir(
    path: str | Path, sample_rate: int = 8000, mode: str = "min", splits: tuple[str, ...] = SPLITS
) -> Path:
    """Check a WHAM! layout and return its ``wav<k>k/<mode>`` folder.

    All problems are reported together: missing split or sub-folders, empty folders, files
    missing from one folder of a split, and (a quick check of a few files per folder) unreadable
    headers, other sample rates or channel counts. :func:`write_wham_metadata` checks every file.

    Args:
        path (str or Path): WHAM! root (containing ``wav8k/min``) or the ``wav8k/min`` folder.
        sample_rate (int): expected sample rate in Hz.
        mode (str): ``"min"`` or ``"max"``.
        splits (tuple of str): splits that must be present (e.g. ``("tt",)`` for a test set).

    Returns:
        Path: the ``wav<k>k/<mode>`` folder.

    Raises:
        FileNotFoundError: ``path`` does not exist or is not a WHAM! folder.
        ValueError: the layout is broken (the message lists every problem).
    """
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")
    unknown = set(splits) - set(SPLITS)
    if unknown or not splits:
        raise ValueError(f"splits must be a non-empty subset of {SPLITS}, got {splits}.")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"WHAM! directory {path} does not exist.")
    wav_dir = _find_wav_dir(path, sample_rate, mode)
    problems = []
    for split in splits:
        split_dir = wav_dir / split
        if not split_dir.is_dir():
            problems.append(f"missing split folder {split_dir}")
            continue
        for folder, files in _wav_names(split_dir, problems, quick=True).items():
            for name in sorted(files)[:_N_CHECKED_FILES]:
                problems += _header_problems(split_dir / folder / name, sample_rate, quick=True)[1]
    if problems:
        raise ValueError(f"Invalid WHAM! layout in {wav_dir}:\n  - " + "\n  - ".join(problems))
    return wav_dir


def _wav_names(split_dir: Path, problems: list[str], quick: bool) -> dict[str, set[str]]:
    """The wav files of each folder of a split; missing folders and files missing from a folder
    go to ``problems`` (``quick``: empty folders too, and at most three names per folder)."""
    names = {}
    for folder in WHAM_FOLDERS:
        sub = split_dir / folder
        if not sub.is_dir():
            problems.append(f"missing folder {sub}")
            continue
        names[folder] = {f for f in os.listdir(sub) if f.endswith(".wav")}
        if quick and not names[folder]:
            problems.append(f"empty folder {sub} (no .wav files)")
    union = set().union(*names.values())
    for folder, files in names.items():
        missing = sorted(union - files)
        if missing and (files or not quick):  # quick: an empty folder is reported already
            listed = f", e.g. {', '.join(missing[:3])}" if quick else ": " + ", ".join(missing)
            where = f"{split_dir.name} missing from {split_dir / folder}"
            problems.append(f"{len(missing)} file(s) of {where}{listed}")
    return names


def _header_problems(path: Path, sample_rate: int, quick: bool = False) -> tuple[int | None, list]:
    """Frames of one wav file (``None`` if unreadable) and what is wrong with its header
    (``quick``: not its length, and the channels as :func:`validate_wham_dir` words them)."""
    try:
        info = sf.info(str(path))
    except RuntimeError as err:  # soundfile's LibsndfileError
        return None, [f"unreadable file {path}: {err}"]
    problems = [f"empty file {path} (0 samples)"] if info.frames == 0 and not quick else []
    if info.samplerate != sample_rate:
        problems.append(f"{path} is at {info.samplerate} Hz, expected {sample_rate} Hz")
    if info.channels != 1:
        problems.append(f"{path} has {info.channels} channels" + ("" if quick else ", expected 1"))
    return info.frames, problems


def _scan_split(split_dir: Path, sample_rate: int) -> tuple[list[dict], list[str]]:
    """Metadata entries of one split and every problem of its files (each file's header)."""
    problems: list[str] = []
    names = _wav_names(split_dir, problems, quick=False)
    union = sorted(set().union(*names.values()))
    if names and not union:
        problems.append(f"no .wav file in {split_dir}")
    entries = []
    for name in union:
        frames = {}
        for folder, files in names.items():
            if name in files:
                n, file_problems = _header_problems(split_dir / folder / name, sample_rate)
                problems += file_problems
                if n is not None:
                    frames[folder] = n
        if len(set(frames.values())) > 1:
            problems.append(
                f"utterance {name[: -len('.wav')]} of {split_dir.name}: lengths differ between "
                "folders (" + ", ".join(f"{f} {n}" for f, n in frames.items()) + " samples)"
            )
        entry = {"id": name[: -len(".wav")], "length": frames.get("mix_both")}
        entries.append({**entry, **{f: str(split_dir / f / name) for f in WHAM_FOLDERS}})
    return entries, problems


def write_wham_metadata(
    wav_dir: str | Path, out_dir: str | Path, sample_rate: int = 8000, mode: str = "min"
) -> list[Path]:
    """Check every file of a WHAM! layout and write ``<out_dir>/<split>.json`` for each split.

    Every wav header of the six folders of each split present is read: a file that is
    unreadable, empty, at another sample rate, not mono, missing from a folder, or of another
    length than the other files of its utterance is a problem. All problems are reported
    together, each naming its file, and then nothing is written. Each JSON is a list (sorted by
    utterance id) of ``{"id", "length", <folder>: absolute path, ...}``, replaced atomically (an
    interrupted run leaves no half-written JSON; running it twice gives the same files).

    Args:
        wav_dir (str or Path): the ``wav<k>k/<mode>`` folder or the WHAM! root above it (see
            :func:`validate_wham_dir`).
        out_dir (str or Path): where to write the JSON files (created if needed).
        sample_rate (int): sample rate every file must have.
        mode (str): ``"min"`` or ``"max"`` (to find the folder under a WHAM! root).

    Returns:
        list of Path: the JSON files written.

    Raises:
        FileNotFoundError: ``wav_dir`` has no split folder.
        ValueError: some files are bad (the message lists every one).
    """
    path = Path(wav_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"WHAM! directory {path} does not exist.")
    wav_dir = _find_wav_dir(path, sample_rate, mode).resolve()
    splits = [s for s in SPLITS if (wav_dir / s).is_dir()]
    if not splits:
        raise FileNotFoundError(f"No split folder ({', '.join(SPLITS)}) in {wav_dir}.")
    scanned, problems = {}, []
    for split in splits:
        scanned[split], split_problems = _scan_split(wav_dir / split, sample_rate)
        problems += split_problems
    if problems:
        raise ValueError(
            f"Cannot write the metadata of {wav_dir}: {len(problems)} problem(s):\n  - "
            + "\n  - ".join(problems)
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for split in splits:
        target = out_dir / f"{split}.json"
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(scanned[split], indent=1))
        os.replace(tmp, target)
        written.append(target)
    return written


class WhamDataset(Dataset):
    """WHAM! mixtures with their speech targets and, optionally, the noise.

    Args:
        json_path (str or Path): metadata of one split from :func:`write_wham_metadata`.
        task (str): ``"sep_noisy"`` (targets ``s1, s2[, noise]``) or ``"enh_single"``
            (targets ``s1[, noise]``).
        segment (float, optional): training chunk in seconds: a random crop of longer
            utterances, zero-padded when shorter (paper Sec. 3.3). ``None``: whole utterances.
        sample_rate (int): expected sample rate of the files.
        return_noise (bool): append the noise to the targets.
        return_id (bool): also return the utterance id.

    Returns (``__getitem__``):
        tuple: ``mix (time,)``, ``targets (n_targets, time)`` float32 tensors, and the
        utterance id when ``return_id``.

    References:
        [1] G. Wichern et al., "WHAM!: Extending speech separation to noisy environments",
        Interspeech 2019.
    """

    dataset_name = "WHAM!"

    def __init__(
        self,
        json_path: str | Path,
        task: str = "sep_noisy",
        segment: float | None = 4.0,
        sample_rate: int = 8000,
        return_noise: bool = True,
        return_id: bool = False,
    ):
        super().__init__()
        self.spec = wham_task(task)
        self.task = task
        self.json_path = Path(json_path)
        if not self.json_path.is_file():
            raise FileNotFoundError(
                f"Metadata file {self.json_path} does not exist (write it with "
                "asteroid_lir.data.write_wham_metadata)."
            )
        try:
            self.entries = json.loads(self.json_path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"Metadata file {self.json_path} is not valid JSON: {err}") from err
        if not isinstance(self.entries, list) or not self.entries:
            raise ValueError(f"Metadata file {self.json_path} lists no utterance.")
        noise = [self.spec["noise"]] if return_noise else []
        self.target_folders = list(self.spec["speech"]) + noise
        needed = {"id", "length", self.spec["mixture"], *self.target_folders}
        lacking = needed - set(self.entries[0])
        if lacking:
            raise ValueError(f"Metadata file {self.json_path} lacks the fields {sorted(lacking)}.")
        if segment is not None and segment <= 0:
            raise ValueError(f"segment must be positive or None, got {segment}.")
        self.segment = segment
        self.sample_rate = int(sample_rate)
        self.seg_len = None if segment is None else int(round(segment * sample_rate))
        self.return_noise = return_noise
        self.return_id = return_id

    @property
    def n_speech(self) -> int:
        """Number of speech targets (2 for ``sep_noisy``, 1 for ``enh_single``)."""
        return len(self.spec["speech"])

    @property
    def n_targets(self) -> int:
        """Number of targets (speech sources, plus the noise when ``return_noise``)."""
        return len(self.target_folders)

    def __len__(self) -> int:
        return len(self.entries)

    def _read(self, path: str, start: int, stop: int) -> np.ndarray:
        if not Path(path).is_file():
            raise FileNotFoundError(
                f"Audio file {path} listed in {self.json_path} does not exist; was the corpus "
                "moved or deleted? Rewrite the metadata."
            )
        wav, sr = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=True)
        if sr != self.sample_rate:
            raise ValueError(f"{path} is at {sr} Hz but the dataset expects {self.sample_rate} Hz.")
        if wav.shape[1] != 1:
            raise ValueError(f"{path} has {wav.shape[1]} channels; WHAM! files are mono.")
        if wav.shape[0] != stop - start:
            raise ValueError(
                f"{path} is shorter than its metadata says ({start + wav.shape[0]} < {stop} "
                f"samples); rewrite the metadata of {self.json_path}."
            )
        return wav[:, 0]

    def __getitem__(self, idx: int):
        entry = self.entries[idx]
        length = int(entry["length"])
        start, stop = 0, length
        if self.seg_len is not None and length > self.seg_len:
            # torch's RNG is seeded per DataLoader worker, so crops differ across workers.
            start = int(torch.randint(0, length - self.seg_len + 1, (1,)).item())
            stop = start + self.seg_len
        mix = self._read(entry[self.spec["mixture"]], start, stop)
        targets = np.stack([self._read(entry[f], start, stop) for f in self.target_folders])
        if self.seg_len is not None and length < self.seg_len:
            pad = self.seg_len - length
            mix = np.pad(mix, (0, pad))
            targets = np.pad(targets, ((0, 0), (0, pad)))
        mix_t, targets_t = torch.from_numpy(mix), torch.from_numpy(targets)
        if self.return_id:
            return mix_t, targets_t, entry["id"]
        return mix_t, targets_t

    def get_infos(self) -> dict:
        """Dataset information (Asteroid convention, used in model cards)."""
        title = "WHAM! (noise: CC BY-NC 4.0; speech: wsj0, LDC licence)"
        licence = {"title": title, "title_link": "http://wham.whisper.ai/", "non_commercial": True}
        return {"dataset": self.dataset_name, "task": self.task, "licenses": [licence]}
