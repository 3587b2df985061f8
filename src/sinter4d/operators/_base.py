"""The linear-operator interface every projector and regulariser's gradient follows.

Modelled on CIL's ``Operator``: an operator maps arrays of ``domain_shape``
to arrays of ``range_shape`` with :meth:`direct`, and back with
:meth:`adjoint`; solvers talk only to this interface, so SIRT, FISTA-TV,
Chambolle–Pock and the paper's alternating scheme share one projector.
"""

from __future__ import annotations

import numpy as np


class LinearOperator:
    """A linear map ``A`` with its adjoint ``A^T``.

    Subclasses set ``domain_shape``, ``range_shape`` and ``dtype`` and
    implement :meth:`direct` and :meth:`adjoint`; both accept ``out=`` so a
    solver can reuse buffers in its hot loop.
    """

    domain_shape: tuple[int, ...]
    range_shape: tuple[int, ...]
    dtype = np.float32
    _norm: float | None = None

    def direct(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Apply ``A`` to ``x`` (shape ``domain_shape``)."""
        raise NotImplementedError

    def adjoint(self, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Apply ``A^T`` to ``y`` (shape ``range_shape``)."""
        raise NotImplementedError

    def norm(self, *, n_iter: int = 30, seed: int = 0) -> float:
        """Operator 2-norm ``||A||`` estimated by power iteration (cached).

        Parameters
        ----------
        n_iter : int, optional
            Power iterations on ``A^T A``.
        seed : int, optional
            Seed of the random start vector.
        """
        if self._norm is None:
            rng = np.random.default_rng(seed)
            x = rng.standard_normal(self.domain_shape).astype(self.dtype)
            s = 0.0
            for _ in range(n_iter):
                x = self.adjoint(self.direct(x))
                s = float(np.linalg.norm(x))
                if s == 0.0:
                    break
                x /= s
            self._norm = float(np.sqrt(s))
        return self._norm


def dot_test(op: LinearOperator, *, seed: int = 0) -> float:
    """Relative mismatch of ``<A x, y>`` and ``<x, A^T y>`` for random x, y.

    A correct adjoint gives a value at the level of floating-point rounding
    (about 1e-6 in float32).

    Parameters
    ----------
    op : LinearOperator
    seed : int, optional

    Returns
    -------
    float
        ``|<Ax, y> - <x, A^T y>| / max(|<Ax, y>|, tiny)``.
    """
    rng = np.random.default_rng(seed)
    x = rng.random(op.domain_shape).astype(op.dtype)
    y = rng.random(op.range_shape).astype(op.dtype)
    lhs = float(np.vdot(op.direct(x).astype(np.float64), y.astype(np.float64)))
    rhs = float(np.vdot(x.astype(np.float64), op.adjoint(y).astype(np.float64)))
    return abs(lhs - rhs) / max(abs(lhs), np.finfo(float).tiny)
