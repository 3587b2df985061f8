"""SIRT: simultaneous iterative reconstruction with row and column weights.

References
----------
.. [Gregor2008] J. Gregor, T. Benson, "Computational analysis and improvement
   of SIRT", IEEE Trans. Med. Imaging 27, 918–924 (2008).
   doi:10.1109/TMI.2008.923696
"""

from __future__ import annotations

import numpy as np

from ...checks import check_number
from ...operators import LinearOperator
from .base import Algorithm, inverse_sums, relative_norm, step_kernel

__all__ = ["SIRT"]


class SIRT(Algorithm):
    """Simultaneous iterative reconstruction ``x <- x + w C A^T R (b - A x)``.

    ``R`` and ``C`` are the inverse row and column sums of ``A``; each
    iteration is a gradient step on ``1/2 ||A x - b||_R^2`` in the metric
    ``C^-1``, which decreases that weighted residual monotonically for
    ``0 < relaxation < 2`` (also with the projection onto ``x >= 0``).

    Parameters
    ----------
    operator : LinearOperator
        Projector ``A``, ``(nz, ny, nx)`` -> ``(n_angles, ny, n_det)``.
    data : (n_angles, ny, n_det) ndarray
        Projections ``b``.
    initial : (nz, ny, nx) ndarray, optional
        Start (default zeros); copied.
    relaxation : float, optional
        ``w`` in (0, 2).
    nonneg : bool, optional
        Project onto ``x >= 0`` after every step.
    tol : float, optional
        See :class:`Algorithm`.

    References
    ----------
    .. [1] J. Gregor, T. Benson, IEEE Trans. Med. Imaging 27, 918–924 (2008).
       doi:10.1109/TMI.2008.923696
    """

    def __init__(
        self,
        operator: LinearOperator,
        data: np.ndarray,
        *,
        initial: np.ndarray | None = None,
        relaxation: float = 1.0,
        nonneg: bool = True,
        tol: float | None = None,
    ) -> None:
        super().__init__(tol=tol)
        self.relaxation = check_number(relaxation, "relaxation", minimum=0.0, maximum=2.0, strict=True)
        rows, cols = self._set_problem(operator, data, initial, nonneg)
        self._row_sums = rows  # (n_angles, n_det): path length of each ray
        self._R = inverse_sums(rows)[:, None, :]  # (n_angles, 1, n_det)
        self._C = inverse_sums(cols)  # (nz, nx)
        self._r = np.empty(self.data.shape, np.float32)
        self._w = np.empty(self.x.shape, np.float32)

    def _data_step(self, relaxation: float) -> float:
        """One SIRT step in place; returns ``||dx||^2`` (sets ``relative_change``)."""
        r, w = self._r, self._w
        self.operator.direct(self.x, out=r)
        np.subtract(self.data, r, out=r)
        r *= self._R
        self.operator.adjoint(r, out=w)
        d2, n2 = step_kernel(self.x, w, self._C, np.float32(relaxation), self.nonneg)
        self.relative_change = relative_norm(d2, n2)
        return d2

    def update(self) -> None:
        """One SIRT iteration."""
        self._data_step(self.relaxation)

    def objective(self) -> float:
        """Weighted residual ``1/2 ||A x - b||_R^2`` (uses the work sinogram)."""
        r = self.operator.direct(self.x, out=self._r)
        r -= self.data
        s = float(np.einsum("ayd,ayd,ayd->", r, r, np.broadcast_to(self._R, r.shape), dtype=np.float64))
        return 0.5 * s
