"""One fingerprint of the corpus synthesis, stored with every generated corpus and pool.

It hashes the code that makes a corpus and nothing else: every module of
:mod:`asteroid_lir.synth` (name and bytes) and the vocabulary it writes into a corpus (the
names of :mod:`asteroid_lir.tasks`, as values). Editing any synthesiser changes it, even where
the audio would stay the same (a false "stale" is cheap, a missed one is not). The recipes stamp
their corpora with it (``egs/*/local/prepare_data.py``) and the neural engine's pool cache keys
on it (:mod:`~asteroid_lir.synth.speech_pool`), so no manual version number has to be raised.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from .. import tasks

__all__ = ["corpus_fingerprint"]

_PACKAGE = Path(__file__).resolve().parent
_VOCABULARY = ("SPLITS", "WHAM_FOLDERS", "PROMPT_NAMES", "STEM_NAMES")


@lru_cache(maxsize=1)
def corpus_fingerprint() -> str:
    """Hash of the corpus synthesis code (see the module docstring).

    Returns:
        str: 12 hexadecimal characters.
    """
    digest = hashlib.sha1()
    for path in sorted(_PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(_PACKAGE).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    for name in _VOCABULARY:
        digest.update(f"{name}={getattr(tasks, name)!r}".encode())
    return digest.hexdigest()[:12]
