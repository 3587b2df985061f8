"""The base of the iterative solvers and the pieces they share.

CIL-style (STYLE.md): a solver is an object built once from a
:class:`~sinter4d.operators.LinearOperator` and the data, whose
:meth:`Algorithm.update` performs one iteration and whose
:meth:`Algorithm.run` loops, calling callbacks (progress bar, logging,
objective recording, early stop; :mod:`sinter4d.pipeline.callbacks`) after
every iteration. Buffers are allocated once and reused; everything is
float32.

The operators are those of the single-tilt-axis geometry (docs/design.md,
"Reconstruction notes"): they act identically on every y slice of a
``(nz, ny, nx)`` volume and map it to ``(n_angles, ny, n_det)``
projections, so the SIRT-type weights (:func:`system_sums`) are
``(n_angles, n_det)`` and ``(nz, nx)`` arrays shared by all slices.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable

import numba
import numpy as np

from ...checks import check_int, check_number
from ...errors import InputError
from ...operators import LinearOperator

__all__ = [
    "Algorithm",
    "check_data",
    "initial_iterate",
    "inverse_sums",
    "relative_norm",
    "step_kernel",
    "system_sums",
]

logger = logging.getLogger(__name__)


class Algorithm:
    """Base of the iterative solvers: ``update()`` one iteration, ``run()`` many.

    Parameters
    ----------
    tol : float, optional
        Stop when the relative change of the iterate,
        ``||x_k - x_{k-1}|| / ||x_k||``, falls below ``tol`` (None: never).

    Attributes
    ----------
    x : (nz, ny, nx) float32 ndarray
        The current iterate (the solution so far).
    iteration : int
        Iterations done.
    relative_change : float
        Relative change of the last iteration (``inf`` before the first).
    max_iteration : int
        Iteration count at which the current :meth:`run` ends.
    """

    def __init__(self, *, tol: float | None = None) -> None:
        self.tol = None if tol is None else check_number(tol, "tol", minimum=0.0)
        self.iteration = 0
        self.relative_change = math.inf
        self.max_iteration = 0
        self.x: np.ndarray

    def update(self) -> None:
        """One iteration (sets ``x`` and ``relative_change``)."""
        raise NotImplementedError

    def objective(self) -> float:
        """Value of the objective the algorithm decreases, at ``x``."""
        raise NotImplementedError

    def _set_problem(self, operator: LinearOperator, data: np.ndarray, initial: np.ndarray | None,
                     nonneg: bool) -> tuple[np.ndarray, np.ndarray]:
        """Hold the operator, the checked data, the start ``x`` and the constraint; return :func:`system_sums`."""
        self.operator = operator
        self.data = check_data(operator, data)
        self.x = initial_iterate(operator, initial)
        self.nonneg = bool(nonneg)
        return system_sums(operator)

    def should_stop(self) -> bool:
        """Whether the stopping tolerance is met."""
        return self.tol is not None and self.relative_change < self.tol

    def run(self, n_iter: int, *, callbacks: Iterable[Callable[[Algorithm], None]] = ()) -> np.ndarray:
        """Run ``n_iter`` iterations (fewer if ``tol`` is met or a callback raises StopIteration).

        Parameters
        ----------
        n_iter : int
            Iterations to run (from the current state; runs can be chained).
        callbacks : sequence of callables
            Each is called as ``cb(self)`` after every iteration.

        Returns
        -------
        (nz, ny, nx) float32 ndarray
            ``self.x`` (not a copy).
        """
        n_iter = check_int(n_iter, "n_iter", minimum=0)
        callbacks = tuple(callbacks)
        self.max_iteration = self.iteration + n_iter
        try:
            while self.iteration < self.max_iteration:
                self.update()
                self.iteration += 1
                for cb in callbacks:
                    cb(self)
                if self.should_stop():
                    logger.debug("%s stopped at iteration %d (tol)", type(self).__name__, self.iteration)
                    break
        except StopIteration:
            logger.debug("%s stopped by a callback at iteration %d", type(self).__name__, self.iteration)
        finally:
            for cb in callbacks:
                close = getattr(cb, "close", None)
                if close is not None:
                    close()
        return self.x


@numba.njit(parallel=True, fastmath=True, cache=True)
def step_kernel(x, w, coef, factor, nonneg):  # pragma: no cover - compiled
    # x <- max(x + factor * coef[k, i] * w, 0); returns (|dx|^2, |x_new|^2).
    # coef is (nz, nx), broadcast over y: the step of SIRT and of the TV descent.
    nz, ny, nx = x.shape
    d2 = np.zeros(nz)
    n2 = np.zeros(nz)
    for k in numba.prange(nz):
        sd = 0.0
        sn = 0.0
        for j in range(ny):
            for i in range(nx):
                old = x[k, j, i]
                new = old + factor * coef[k, i] * w[k, j, i]
                if nonneg and new < 0:
                    new = np.float32(0.0)
                x[k, j, i] = new
                d = new - old
                sd += d * d
                sn += new * new
        d2[k] = sd
        n2[k] = sn
    return d2.sum(), n2.sum()


def relative_norm(d2: float, n2: float) -> float:
    """``sqrt(d2 / n2)``: the relative change ``||dx|| / ||x||`` from the squared norms."""
    return math.sqrt(d2 / n2) if n2 > 0 else (0.0 if d2 == 0 else math.inf)


def check_data(operator: LinearOperator, data: np.ndarray) -> np.ndarray:
    """``data`` as a C-contiguous float32 array of the operator's range shape, all finite."""
    data = np.asarray(data)
    if data.shape != tuple(operator.range_shape):
        raise InputError(f"data must have the operator's range shape {tuple(operator.range_shape)}, got {data.shape}")
    if not np.all(np.isfinite(data)):
        raise InputError("data holds NaN or infinite values")
    return np.ascontiguousarray(data, dtype=np.float32)


def initial_iterate(operator: LinearOperator, initial: np.ndarray | None) -> np.ndarray:
    """A float32 copy of ``initial`` (zeros if None) of the operator's domain shape."""
    shape = tuple(operator.domain_shape)
    if initial is None:
        return np.zeros(shape, np.float32)
    initial = np.asarray(initial)
    if initial.shape != shape:
        raise InputError(f"initial must have the operator's domain shape {shape}, got {initial.shape}")
    return np.array(initial, dtype=np.float32, order="C", copy=True)


def system_sums(operator: LinearOperator) -> tuple[np.ndarray, np.ndarray]:
    """Row sums ``A 1`` as ``(n_angles, n_det)`` and column sums ``A^T 1`` as ``(nz, nx)``.

    Uses the operator's ``row_sums()`` / ``column_sums()`` when it has them;
    otherwise applies it to arrays of ones and averages over y (the
    operators of this package act identically on every y slice).
    """
    if hasattr(operator, "row_sums") and hasattr(operator, "column_sums"):
        return np.asarray(operator.row_sums(), np.float64), np.asarray(operator.column_sums(), np.float64)
    rows = operator.direct(np.ones(operator.domain_shape, np.float32)).mean(axis=1, dtype=np.float64)
    cols = operator.adjoint(np.ones(operator.range_shape, np.float32)).mean(axis=1, dtype=np.float64)
    return rows, cols


def inverse_sums(s: np.ndarray) -> np.ndarray:
    """``1 / s`` as float32, 0 where ``s <= 1e-6 max(s)`` (rays or voxels that meet nothing)."""
    tiny = 1e-6 * float(np.max(s)) if s.size else 0.0
    out = np.zeros(s.shape, np.float32)
    np.divide(1.0, s, out=out, where=s > tiny, casting="unsafe")
    return out
