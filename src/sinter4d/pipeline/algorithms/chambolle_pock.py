"""Chambolle–Pock: the preconditioned primal–dual solver of least squares + TV + non-negativity.

References
----------
.. [Chambolle2011] A. Chambolle, T. Pock, "A first-order primal-dual algorithm
   for convex problems with applications to imaging", J. Math. Imaging Vis.
   40, 120–145 (2011). doi:10.1007/s10851-010-0251-1
.. [Pock2011] T. Pock, A. Chambolle, "Diagonal preconditioning for first order
   primal-dual algorithms in convex optimization", ICCV 2011, 1762–1769.
   doi:10.1109/ICCV.2011.6126441
"""

from __future__ import annotations

import numpy as np

from ...checks import check_number, check_positive
from ...operators import LinearOperator
from ..functions.total_variation import dual_ball_step, primal_divergence_step, tv_value
from .base import Algorithm, inverse_sums, relative_norm

__all__ = ["BALANCE_FACTOR", "ChambollePock"]

#: Default balance of :class:`ChambollePock`: this many times the mean column sum of A over 6.
BALANCE_FACTOR = 4.0


class ChambollePock(Algorithm):
    """Preconditioned primal–dual solver of ``min 1/2 ||A x - b||^2 + lambda TV(x) + i_{x>=0}``.

    ``K = [A; s grad]`` with diagonal step sizes [2]_ (``alpha = 1``):
    ``sigma`` = inverse row sums of ``|K|`` (``R`` for the projections,
    ``1/(2 s)`` for the gradient), ``tau`` = inverse column sums
    (``1 / (C_A + 6 s)``), which guarantees convergence without an operator
    norm. The balance ``s`` only changes the speed; the default,
    ``4 * mean(A^T 1) / 6``, makes the gradient's share of ``1 / tau`` four
    times the projector's (and scales with the voxel size as it should).
    TV is isotropic in 3D with unit voxel spacing.

    Memory: ``x``, ``x_bar`` and the dual field ``p`` (3 volumes), plus the
    dual ``q`` and one work array in projection space.

    Parameters
    ----------
    operator : LinearOperator
    data : (n_angles, ny, n_det) ndarray
    tv_weight : float
        ``lambda`` (>= 0), in data units squared per unit of ``x``;
        :func:`~sinter4d.pipeline.reconstruct.tv_weight_rule` gives a scale-aware value.
    balance : float, optional
        ``s`` above.
    initial, nonneg, tol
        As for :class:`~sinter4d.pipeline.algorithms.SIRT`.

    References
    ----------
    .. [1] A. Chambolle, T. Pock, J. Math. Imaging Vis. 40, 120–145 (2011).
       doi:10.1007/s10851-010-0251-1
    .. [2] T. Pock, A. Chambolle, ICCV 2011, 1762–1769. doi:10.1109/ICCV.2011.6126441
    """

    def __init__(
        self,
        operator: LinearOperator,
        data: np.ndarray,
        *,
        tv_weight: float,
        balance: float | None = None,
        initial: np.ndarray | None = None,
        nonneg: bool = True,
        tol: float | None = None,
    ) -> None:
        super().__init__(tol=tol)
        self.tv_weight = check_number(tv_weight, "tv_weight", minimum=0.0)
        rows, cols = self._set_problem(operator, data, initial, nonneg)
        if balance is None:
            balance = BALANCE_FACTOR * max(float(np.mean(cols)), 1e-12) / 6.0
        self.balance = check_positive(balance, "balance")
        self._sigma = inverse_sums(rows)[:, None, :]
        self._tau = (1.0 / (cols + 6.0 * self.balance)).astype(np.float32)
        self._xbar = self.x.copy()
        self._p = np.zeros((3, *self.x.shape), np.float32)
        self._q = np.zeros(self.data.shape, np.float32)
        self._r = np.empty(self.data.shape, np.float32)
        self._sigma1 = (1.0 / (1.0 + self._sigma)).astype(np.float32)

    def update(self) -> None:
        """One primal–dual iteration."""
        r, q = self._r, self._q
        # dual, data term: q <- (q + sigma (A x_bar - b)) / (1 + sigma)
        self.operator.direct(self._xbar, out=r)
        r -= self.data
        r *= self._sigma
        q += r
        q *= self._sigma1
        # dual, TV term; p holds s * p_K, p_K the dual of s grad with step 1 / (2 s):
        # p <- P_{|.|<=lambda}(p + s^2 / (2 s) grad x_bar)
        dual_ball_step(self._p, self._xbar, sigma=0.5 * self.balance, radius=self.tv_weight)
        # primal: x <- P_+(x - tau (A^T q + grad^T p)); x_bar <- 2 x_new - x
        self.operator.adjoint(q, out=self._xbar)
        d2, n2 = primal_divergence_step(self.x, self._xbar, self._p, self._tau, theta=1.0, nonneg=self.nonneg)
        self.relative_change = relative_norm(d2, n2)

    def objective(self) -> float:
        """``1/2 ||A x - b||^2 + lambda TV(x)`` at the current iterate."""
        r = self.operator.direct(self.x, out=self._r)
        r -= self.data
        return 0.5 * float(np.einsum("ayd,ayd->", r, r, dtype=np.float64)) + self.tv_weight * tv_value(self.x)
