"""Separation models (Asteroid ``BaseModel`` subclasses)."""

from .gated_lir_sudormrf import GatedLIRSuDORMRFNet
from .lir_sudormrf import LIRSuDORMRFNet

__all__ = ["GatedLIRSuDORMRFNet", "LIRSuDORMRFNet"]
