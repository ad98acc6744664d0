"""The generated corpora are the same audio as the recorded ones (same seed -> same files).

``tests/data/corpus_sha256.json`` holds the sha256 of every WAV and CSV file of three small
corpora, generated in the pinned environment by the code of commit 7d81d16, before corpus
synthesis moved to its own subpackage: a mini corpus with every speech engine (Piper + WORLD,
eSpeak NG training voices with made breath, formant), the held-out eSpeak NG test set and the
unified corpus. Each is built here in a fresh process, as the recipes do (eSpeak NG keeps state
from one utterance to the next inside a process), and must give the same bytes. Recorded hashes
hold for the versions of the packages that make the audio; in another environment the test is
skipped and says which versions differ.
"""

import hashlib
import json
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

RECORD = Path(__file__).parent / "data" / "corpus_sha256.json"

# The three corpora, with the settings of the recorded ones.
_BUILD = """
import sys
from pathlib import Path
from asteroid_lir.synth import build_mini_corpus, build_tts_testset, build_unified_corpus

if __name__ == "__main__":
    out = Path(sys.argv[1])
    build_mini_corpus(out / "mini", n_train=4, n_valid=2, n_test=2, seed=0, utt_seconds=1.5,
                      n_train_speakers=15, n_test_speakers=4, workers=2, speech="mixed",
                      progress=False)
    build_tts_testset(out / "heldout", n_test=2, seed=0, n_speakers=3, progress=False)
    build_unified_corpus(out / "unified", n_train=2, n_valid=1, n_test=1, clip_seconds=1.0,
                         seed=0, progress=False)
"""


def _version_differences(recorded: dict[str, str]) -> list[str]:
    differences = []
    for package, wanted in recorded.items():
        try:
            found = version(package)
        except PackageNotFoundError:
            found = "not installed"
        if found != wanted:
            differences.append(f"{package} {found} (recorded with {wanted})")
    return differences


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.suffix in (".wav", ".csv") and "speech_pool" not in path.parts
    }


@pytest.mark.slow
def test_generated_corpora_match_the_recorded_hashes(tmp_path):
    record = json.loads(RECORD.read_text())
    differences = _version_differences(record["versions"])
    if differences:
        pytest.skip("hashes recorded with other package versions: " + "; ".join(differences))
    script = tmp_path / "build.py"
    script.write_text(_BUILD)
    out = tmp_path / "corpora"
    subprocess.run([sys.executable, str(script), str(out)], check=True, timeout=600)
    got = _hashes(out)
    want = record["files"]
    assert sorted(got) == sorted(want), "the corpora have other files than the recorded ones"
    changed = sorted(name for name in want if got[name] != want[name])
    assert not changed, f"{len(changed)} of {len(want)} files changed, e.g. {changed[:5]}"
