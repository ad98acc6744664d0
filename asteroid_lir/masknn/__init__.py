"""Mask networks and their building blocks (Asteroid ``masknn`` conventions)."""

from .gating import GatedIterativeSuDORMRF, GatingModule
from .iterative_sudormrf import IterativeSuDORMRF
from .uconv import FastGlobLN, FastUConvBlock

__all__ = [
    "FastGlobLN",
    "FastUConvBlock",
    "GatedIterativeSuDORMRF",
    "GatingModule",
    "IterativeSuDORMRF",
]
