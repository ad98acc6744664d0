"""Separation models (Asteroid ``BaseModel`` subclasses)."""

from .gated_lir_sudormrf import GatedLIRSuDORMRFNet
from .lir_sudormrf import LIRSuDORMRFNet
from .tflocoformer import TFLocoformerNet

__all__ = ["GatedLIRSuDORMRFNet", "LIRSuDORMRFNet", "TFLocoformerNet"]
