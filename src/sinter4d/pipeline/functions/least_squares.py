"""The least-squares data term ``1/2 ||A x - b||^2`` of a linear operator."""

from __future__ import annotations

import numpy as np

from ...errors import InputError
from ...operators import LinearOperator

__all__ = ["LeastSquares"]


class LeastSquares:
    """``1/2 ||A x - b||^2`` for a linear operator ``A`` and data ``b``.

    Parameters
    ----------
    operator : LinearOperator
    data : ndarray
        ``b``, of shape ``operator.range_shape``.
    """

    def __init__(self, operator: LinearOperator, data: np.ndarray) -> None:
        data = np.asarray(data)
        if data.shape != tuple(operator.range_shape):
            raise InputError(f"data must have shape {tuple(operator.range_shape)}, got {data.shape}")
        self.operator = operator
        self.data = np.ascontiguousarray(data, dtype=np.float32)

    def __call__(self, x: np.ndarray) -> float:
        """``1/2 ||A x - b||^2`` (float64 sum)."""
        r = self.operator.direct(x)
        r -= self.data
        return 0.5 * float(np.vdot(r.ravel().astype(np.float64), r.ravel().astype(np.float64)))

    def gradient(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``A^T (A x - b)``."""
        r = self.operator.direct(x)
        r -= self.data
        return self.operator.adjoint(r, out=out)
