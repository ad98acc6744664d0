"""Files written by earlier versions of the code load and give the same output.

Every file in ``tests/data`` is a ``serialize()`` package whose ``infos.test_fixture`` holds an
input (``wav``, and ``prompts`` for TUSS), the output the writing code gave (``est``, and
``steps`` for gated models: per (item, prompt) for a gated TUSS) and the commit that wrote it
(``written_by_commit``). A refactor that changes a state-dict name, a default or a computation
fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from asteroid.models import BaseModel

import asteroid_lir.models  # noqa: F401  (registers the models with Asteroid)
from asteroid_lir.models.base import load_model_conf

DATA = Path(__file__).parent / "data"
FILES = sorted(p.stem for p in DATA.glob("*.pth"))


def _run(model, fixture):
    inputs = (fixture["wav"],)
    if "prompts" in fixture:
        inputs += ([list(fixture["prompts"])] * fixture["wav"].shape[0],)
    with torch.no_grad():
        if fixture.get("steps") is not None:
            return model.forward_with_steps(*inputs)
        return model(*inputs), None


@pytest.mark.parametrize("name", FILES)
def test_saved_file_loads_and_gives_the_same_output(name):
    path = DATA / f"{name}.pth"
    package = load_model_conf(path)
    fixture = package["infos"]["test_fixture"]
    generic = BaseModel.from_pretrained(str(path))
    own = type(generic).from_pretrained(str(path))
    assert type(generic).__name__ == package["model_name"] == type(own).__name__
    for model in (generic, own):
        est, steps = _run(model.eval(), fixture)
        torch.testing.assert_close(est, fixture["est"], rtol=1e-5, atol=1e-6)
        if steps is not None:
            assert steps.tolist() == fixture["steps"].tolist()


def test_every_model_family_has_a_saved_file():
    names = {load_model_conf(DATA / f"{n}.pth")["model_name"] for n in FILES}
    assert names >= {
        "LIRSuDORMRFNet",
        "GatedLIRSuDORMRFNet",
        "TFLocoformerNet",
        "TUSSNet",
        "BSLocoformerNet",
    }
