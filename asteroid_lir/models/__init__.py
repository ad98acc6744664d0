"""Separation models (Asteroid ``BaseModel`` subclasses).

Importing this package registers every model class below with Asteroid's model registry
(``asteroid.models.register_model``, once per class), so that Asteroid's own loader,
``asteroid.models.BaseModel.from_pretrained(path)``, rebuilds any serialized asteroid_lir model:

>>> import asteroid_lir.models  # noqa: F401 (registers the models)
>>> from asteroid.models import BaseModel
>>> model = BaseModel.from_pretrained("model.pth")  # doctest: +SKIP
"""

from .gated_lir_sudormrf import GatedLIRSuDORMRFNet
from .lir_sudormrf import LIRSuDORMRFNet
from .tflocoformer import TFLocoformerNet
from .tuss import BSLocoformerNet, TUSSNet

__all__ = [
    "BSLocoformerNet",
    "GatedLIRSuDORMRFNet",
    "LIRSuDORMRFNet",
    "TFLocoformerNet",
    "TUSSNet",
]


def _register_models() -> None:
    from asteroid import models as asteroid_models

    for name in __all__:
        try:
            asteroid_models.get(name)
        except ValueError:
            asteroid_models.register_model(globals()[name])


_register_models()
