"""The package as a whole: what an import loads, Asteroid's registry, the shipped metadata."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_importing_the_package_loads_no_part():
    _run(
        "import sys, asteroid_lir\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('asteroid_lir.', 'torch')))\n"
        "assert not loaded, loaded\n"
        "assert asteroid_lir.tasks.n_speech('sep_noisy') == 2  # parts load on first use\n"
    )


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
