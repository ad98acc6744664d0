"""Separation models (Asteroid ``BaseModel`` subclasses)."""

from .lir_sudormrf import LIRSuDORMRFNet

__all__ = ["LIRSuDORMRFNet"]
