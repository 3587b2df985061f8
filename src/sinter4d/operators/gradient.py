"""Finite-difference gradient of a volume and its adjoint.

The gradient is the forward difference along each axis of a ``(nz, ny, nx)``
volume with Neumann boundaries (the difference across the last face is
zero), the standard discretisation of isotropic total variation
[Chambolle2004]_. Its adjoint is minus the matching backward-difference
divergence, so ``<grad x, p> = -<x, div p>`` holds to rounding (checked by
:func:`sinter4d.operators.dot_test`).

The total-variation functional built on it, with its proximal map and the
fused kernels the TV solvers use, is
:mod:`sinter4d.pipeline.functions.total_variation`.

References
----------
.. [Chambolle2004] A. Chambolle, "An algorithm for total variation
   minimization and applications", J. Math. Imaging Vis. 20, 89–97 (2004).
   doi:10.1023/B:JMIV.0000011325.36760.1e
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..errors import InputError
from ._base import LinearOperator

__all__ = ["GRAD_NORM_SQ_3D", "Gradient"]

#: Upper bound of ``||grad||^2`` for forward differences in 3D (4 per axis).
GRAD_NORM_SQ_3D = 12.0


# --------------------------------------------------------------------------
# kernels (compiled; parallel over z planes)
# --------------------------------------------------------------------------


@numba.njit(parallel=True, fastmath=True, cache=True)
def _grad_kernel(x, out, wz, wy, wx):  # pragma: no cover - compiled
    nz, ny, nx = x.shape
    for k in numba.prange(nz):
        for j in range(ny):
            for i in range(nx):
                v = x[k, j, i]
                out[0, k, j, i] = wz * (x[k + 1, j, i] - v) if k < nz - 1 else 0.0
                out[1, k, j, i] = wy * (x[k, j + 1, i] - v) if j < ny - 1 else 0.0
                out[2, k, j, i] = wx * (x[k, j, i + 1] - v) if i < nx - 1 else 0.0


@numba.njit(parallel=True, fastmath=True, cache=True)
def _neg_div_kernel(p, out, wz, wy, wx):  # pragma: no cover - compiled
    # out = grad^T p = -div p, div the backward difference matching _grad_kernel
    _, nz, ny, nx = p.shape
    for k in numba.prange(nz):
        for j in range(ny):
            for i in range(nx):
                s = 0.0
                if k < nz - 1:
                    s -= wz * p[0, k, j, i]
                if k > 0:
                    s += wz * p[0, k - 1, j, i]
                if j < ny - 1:
                    s -= wy * p[1, k, j, i]
                if j > 0:
                    s += wy * p[1, k, j - 1, i]
                if i < nx - 1:
                    s -= wx * p[2, k, j, i]
                if i > 0:
                    s += wx * p[2, k, j, i - 1]
                out[k, j, i] = s


def _check_out(out: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}, got {out.dtype} {out.shape}")
    return out


class Gradient(LinearOperator):
    """Forward-difference gradient of a ``(nz, ny, nx)`` volume (Neumann boundaries).

    ``direct`` maps ``(nz, ny, nx)`` to ``(3, nz, ny, nx)`` (components z, y,
    x); ``adjoint`` is its exact transpose, minus the backward-difference
    divergence. With the default unit spacing the differences are per voxel;
    give ``voxel_size`` to get them per unit length.

    Parameters
    ----------
    shape : tuple of int
        ``(nz, ny, nx)``. A 2D image is a volume with ``nz = 1`` (its z
        component is then zero).
    voxel_size : float or (3,) sequence, optional
        Spacing along ``(z, y, x)``; the differences are divided by it.

    Notes
    -----
    ``||grad||^2 <= 4 * sum(1 / voxel_size**2)`` (12 for unit spacing in 3D).

    Examples
    --------
    >>> import numpy as np
    >>> from sinter4d.operators import dot_test
    >>> from sinter4d.operators.gradient import Gradient
    >>> D = Gradient((4, 5, 6))
    >>> float(D.direct(np.ones((4, 5, 6), np.float32)).max())
    0.0
    >>> dot_test(D) < 1e-5
    True
    """

    def __init__(self, shape: tuple[int, int, int], *, voxel_size: float | tuple[float, float, float] = 1.0):
        shape = tuple(int(n) for n in shape)
        if len(shape) != 3 or min(shape) < 1:
            raise InputError(f"shape must be (nz, ny, nx) of positive ints, got {shape!r}")
        h = np.broadcast_to(np.asarray(voxel_size, dtype=float), (3,))
        if not np.all(np.isfinite(h) & (h > 0)):
            raise InputError(f"voxel_size must be positive and finite, got {voxel_size!r}")
        self.domain_shape = shape
        self.range_shape = (3, *shape)
        self._w = tuple(np.float32(1.0 / v) for v in h)
        self._norm = None

    def direct(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Forward differences; ``(nz, ny, nx)`` -> ``(3, nz, ny, nx)``."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.shape != self.domain_shape:
            raise InputError(f"x must have shape {self.domain_shape}, got {x.shape}")
        out = _check_out(out, self.range_shape)
        _grad_kernel(x, out, *self._w)
        return out

    def adjoint(self, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Minus the divergence; ``(3, nz, ny, nx)`` -> ``(nz, ny, nx)``."""
        y = np.ascontiguousarray(y, dtype=np.float32)
        if y.shape != self.range_shape:
            raise InputError(f"y must have shape {self.range_shape}, got {y.shape}")
        out = _check_out(out, self.domain_shape)
        _neg_div_kernel(y, out, *self._w)
        return out

    def norm_bound(self) -> float:
        """Analytic upper bound of ``||grad||`` (no power iteration)."""
        return float(2.0 * math.sqrt(sum(float(w) ** 2 for w in self._w)))
