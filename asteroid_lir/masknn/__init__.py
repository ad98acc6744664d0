"""Mask networks and their building blocks (Asteroid ``masknn`` conventions)."""

from .iterative_sudormrf import IterativeSuDORMRF
from .uconv import FastGlobLN, FastUConvBlock

__all__ = ["FastGlobLN", "FastUConvBlock", "IterativeSuDORMRF"]
