"""Training systems (Lightning modules) for asteroid_lir models."""

from .system import LIRSystem, PromptedSystem

__all__ = ["LIRSystem", "PromptedSystem"]
