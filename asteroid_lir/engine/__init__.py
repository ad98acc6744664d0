"""Training systems (Lightning modules) for asteroid_lir models."""

from .system import LIRSystem, MultiHeadSystem, PromptedSystem

__all__ = ["LIRSystem", "MultiHeadSystem", "PromptedSystem"]
