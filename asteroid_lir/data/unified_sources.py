"""The source tree of the unified (TUSS) recipe: one folder per class, split or not.

Sources live in one folder per class (the TUSS prompts), split already
(``<root>/{tr,cv,tt}/<class>/*.wav``) or not (``<root>/<class>/*.wav``: files go to tr / cv / tt
by a stable hash of their name, 80 / 10 / 10 %). Files with the same name in ``drums/``,
``bass/``, ``vocals/`` and ``other/`` are the stems of one song (MUSDB18-style), always in the
same split. The embedded corpus (:mod:`asteroid_lir.synth.unified_corpus`) has this layout, and
so can any real collection (VCTK / WSJ speech, FSD50K events, WHAM! / DEMAND noise, MUSDB18
stems, FMA music). :func:`index_sources` checks every file and writes nothing;
:func:`write_unified_metadata` writes the index, which :mod:`asteroid_lir.data.unified` draws
mixtures from.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from ..tasks import PROMPT_NAMES as CLASSES
from ..tasks import SPLITS, STEM_NAMES

__all__ = ["index_sources", "write_unified_metadata"]


def _stable_split(name: str) -> str:
    bucket = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 10
    return "tt" if bucket == 0 else ("cv" if bucket == 1 else "tr")


def _file_problem(path: Path, sample_rate: int, check_silence: bool) -> tuple[int, str, str]:
    """``(frames, "", "")`` of a usable source file, else ``(0, kind of problem, detail)``."""
    try:
        info = sf.info(str(path))
    except RuntimeError as err:
        return 0, "unreadable", f" ({err})"
    if info.samplerate != sample_rate:
        return 0, "sample rate", f" ({info.samplerate} Hz)"
    if info.channels != 1:
        return 0, "not mono", f" ({info.channels} channels)"
    if info.frames == 0:
        return 0, "empty", ""
    if check_silence and not np.abs(sf.read(str(path), dtype="float32")[0]).max() > 0:
        return 0, "silent", ""
    return int(info.frames), "", ""


def index_sources(root: str | Path, sample_rate: int, check_silence: bool = True) -> dict:
    """Index and check a folder-per-class source tree.

    Args:
        root: ``<root>/{tr,cv,tt}/<class>/*.wav`` or ``<root>/<class>/*.wav``.
        sample_rate: the rate every file must have.
        check_silence: read every file and reject all-zero ones.

    Returns:
        dict: ``{"sample_rate", "root", "splits": {split: {class: [{"path", "frames"}]}},
        "songs": {split: {name: {stem: path}}}, "missing": {split: [classes]}}`` with paths
        relative to ``root``.

    Raises:
        FileNotFoundError: no such folder, or no class folder in it.
        ValueError: unreadable, multi-channel, empty, silent files or files of another
            sample rate (all listed at once, up to 10 per kind), or a split without any file.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"The source folder '{root}' does not exist.")
    pre_split = any((root / s).is_dir() for s in SPLITS)
    files: dict[str, dict[str, list[Path]]] = {s: {c: [] for c in CLASSES} for s in SPLITS}
    for cls in CLASSES:
        folders = [(s, root / s / cls) for s in SPLITS] if pre_split else [(None, root / cls)]
        for split, folder in folders:
            for path in sorted(folder.glob("*.wav")) + sorted(folder.glob("*.flac")):
                files[split or _stable_split(path.stem)][cls].append(path)
    if not any(paths for per_class in files.values() for paths in per_class.values()):
        layout = "<root>/{tr,cv,tt}/<class>/*.wav" if pre_split else "<root>/<class>/*.wav"
        raise FileNotFoundError(
            f"No audio files under '{root}' in the layout {layout}, with <class> one of "
            f"{list(CLASSES)}."
        )
    problems: dict[str, list[str]] = {}
    out: dict = {"sample_rate": int(sample_rate), "root": str(root), "splits": {}, "songs": {}}
    for split in SPLITS:
        out["splits"][split] = {}
        for cls in CLASSES:
            entries = []
            for path in files[split][cls]:
                frames, kind, detail = _file_problem(path, sample_rate, check_silence)
                if kind:
                    problems.setdefault(kind, []).append(f"{path.relative_to(root)}{detail}")
                else:
                    entries.append({"path": str(path.relative_to(root)), "frames": frames})
            out["splits"][split][cls] = entries
        songs: dict[str, dict[str, str]] = {}
        for stem in STEM_NAMES:
            for entry in out["splits"][split][stem]:
                songs.setdefault(Path(entry["path"]).stem, {})[stem] = entry["path"]
        out["songs"][split] = {k: v for k, v in sorted(songs.items()) if len(v) > 1}
    if problems:
        lines = []
        for kind, items in problems.items():
            extra = f" (and {len(items) - 10} more)" if len(items) > 10 else ""
            lines.append(f"  {kind} ({len(items)}): {', '.join(items[:10])}{extra}")
        raise ValueError(
            f"Source files under '{root}' cannot be used (expected mono audio at {sample_rate} "
            "Hz, not empty, not silent):\n" + "\n".join(lines)
        )
    out["missing"] = {s: [c for c in CLASSES if not out["splits"][s][c]] for s in SPLITS}
    empty = [s for s in SPLITS if all(not out["splits"][s][c] for c in CLASSES)]
    if empty:
        raise ValueError(
            f"Split(s) {empty} of '{root}' have no file (with an unsplit tree, add more files "
            "per class: 10 % go to cv and 10 % to tt)."
        )
    return out


def write_unified_metadata(
    source_root: str | Path, out_dir: str | Path, sample_rate: int, check_silence: bool = True
) -> dict:
    """Index and check a source tree and write ``<out_dir>/sources.json``.

    Args:
        source_root: the folder-per-class tree.
        out_dir: where the metadata goes.
        sample_rate: expected sample rate.
        check_silence: reject all-zero files (reads every file).

    Returns:
        dict: the index (also written), with a per-split count of files per class.
    """
    index = index_sources(source_root, sample_rate, check_silence)
    index["counts"] = {s: {c: len(index["splits"][s][c]) for c in CLASSES} for s in SPLITS}
    index["root"] = str(Path(source_root).resolve())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "sources.json.tmp"
    tmp.write_text(json.dumps(index, indent=1) + "\n")
    tmp.replace(out_dir / "sources.json")
    return index
