"""The indicator of the non-negative orthant, whose proximal map is ``max(x, 0)``."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["NonNegativity"]


class NonNegativity:
    """Indicator of ``x >= 0``: 0 on the non-negative orthant, +inf elsewhere."""

    def __call__(self, x: np.ndarray) -> float:
        """0 if every value is >= 0, else ``inf``."""
        return 0.0 if float(np.min(x)) >= 0 else math.inf

    def proximal(self, x: np.ndarray, tau: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
        """Projection ``max(x, 0)`` (``tau`` is ignored)."""
        return np.maximum(x, 0, out=out)
