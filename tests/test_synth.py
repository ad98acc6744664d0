"""asteroid_lir.synth as its own part: its fingerprint, its extra, and what it imports."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asteroid_lir import tasks
from asteroid_lir.synth import corpus_fingerprint, extra, fingerprint, speech_pool
from asteroid_lir.synth import speech_sources as ss

SYNTH_DIR = Path(fingerprint.__file__).parent


def test_fingerprint_is_the_synth_sources_and_vocabulary_only(tmp_path, monkeypatch):
    corpus_fingerprint.cache_clear()
    original = corpus_fingerprint()  # the package as installed
    # A copy of the synth modules, and nothing else of the library, gives the same fingerprint:
    # no dataset loader, model or recipe enters it.
    copy = tmp_path / "synth"
    shutil.copytree(SYNTH_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fingerprint, "_PACKAGE", copy)
    uncached = corpus_fingerprint.__wrapped__
    assert uncached() == original and len(original) == 12
    module = copy / "noise_synth.py"
    module.write_text(module.read_text() + "\n# an edit\n")
    edited = uncached()
    assert edited != original
    monkeypatch.setattr(tasks, "WHAM_FOLDERS", (*tasks.WHAM_FOLDERS, "extra"))
    assert uncached() not in (original, edited)


def _fake_pools(monkeypatch, cache_dir: Path) -> dict:
    class FakePiper:
        sample_rate = 16000

        def __init__(self, seed: int = 0, threads: int = 1):
            self.rng = np.random.default_rng(seed)

        def synthesize(self, text, scales):
            t = np.arange(8000) / self.sample_rate
            return 0.1 * np.sin(2 * np.pi * 150 * t) + 1e-3 * self.rng.standard_normal(8000)

    monkeypatch.setattr(speech_pool, "PiperVoice", FakePiper)
    return speech_pool.build_speech_pools(
        {"train": 2}, seed=0, sample_rate=8000, workers=1, progress=False, cache_dir=cache_dir
    )


def test_pool_cache_is_keyed_by_the_fingerprint(tmp_path, monkeypatch):
    _fake_pools(monkeypatch, tmp_path)
    first = sorted(p.name for p in tmp_path.glob("*.npz"))
    assert len(first) == 1
    _fake_pools(monkeypatch, tmp_path)  # same code: the cached pool is reused
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == first
    monkeypatch.setattr(speech_pool, "corpus_fingerprint", lambda: "another-code")
    _fake_pools(monkeypatch, tmp_path)  # other synthesis code: a new pool, the old one unused
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_missing_extra_is_named_with_the_install_command(monkeypatch):
    ok, reason = extra.missing_packages("onnxruntime", "pyworld")
    assert ok and reason == ""
    monkeypatch.setitem(sys.modules, "pyworld", None)  # import pyworld -> ImportError
    ok, reason = extra.missing_packages("onnxruntime", "pyworld")
    assert not ok and "pyworld-prebuilt" in reason and "onnxruntime" not in reason
    assert "pip install asteroid-lir[synth]" in reason
    with pytest.raises(ValueError, match="not packages of the synth extra"):
        extra.missing_packages("torch")
    # Through the engines: "auto" goes on without the engine, by name it is an error.
    with pytest.warns(RuntimeWarning, match=r"neural speech engine.*asteroid-lir\[synth\]"):
        assert ss.NEURAL_ENGINE not in ss.resolve_speech_engine("auto")
    with pytest.raises(RuntimeError, match=r"pyworld-prebuilt.*asteroid-lir\[synth\]"):
        ss.resolve_speech_engine("neural")


_BLOCK_EXTRA = """
import sys, warnings
for name in {modules!r}:
    sys.modules[name] = None  # as if the synth extra were not installed
import asteroid_lir.synth as synth
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    synth.build_mini_corpus(sys.argv[1], n_train=2, n_valid=1, n_test=2, utt_seconds=1.0,
                            n_train_speakers=2, n_test_speakers=2, workers=1, progress=False)
messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
assert len(messages) == 2, messages
assert all("pip install asteroid-lir[synth]" in m for m in messages), messages
assert not any(m.startswith("asteroid_lir.masknn") or m.startswith("asteroid_lir.models")
               for m in sys.modules)
"""


@pytest.mark.slow
def test_corpus_builds_without_the_extra_and_says_what_to_install(tmp_path):
    code = _BLOCK_EXTRA.format(modules=sorted(extra.EXTRA_PACKAGES))
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "c")], check=True, timeout=300)
    info = (tmp_path / "c" / "mixture_info" / "speech_source.json").read_text()
    assert '"engine": "formant"' in info


def test_tasks_are_the_one_vocabulary():
    import inspect

    from asteroid_lir.data import unified
    from asteroid_lir.masknn import tuss
    from asteroid_lir.models import TUSSNet
    from asteroid_lir.synth import music_synth, unified_corpus

    assert unified.CLASSES is tasks.PROMPT_NAMES is unified_corpus.CLASSES
    assert unified.TASKS is tasks.UNIFIED_TASKS
    assert music_synth.STEMS is tasks.STEM_NAMES
    assert tuss.PROMPT_NAMES is tasks.PROMPT_NAMES
    assert inspect.signature(TUSSNet).parameters["prompt_names"].default is tasks.PROMPT_NAMES
    assert [tasks.n_speech(t) for t in ("sep_noisy", "enh_single")] == [2, 1]
    with pytest.raises(ValueError, match="Unknown task 'sep_clean'.*enh_single"):
        tasks.n_speech("sep_clean")
