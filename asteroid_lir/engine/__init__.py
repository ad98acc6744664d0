"""Training systems (Lightning modules) for asteroid_lir models."""

from .system import LIRSystem

__all__ = ["LIRSystem"]
