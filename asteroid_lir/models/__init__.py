"""Separation models (Asteroid ``BaseModel`` subclasses)."""

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
