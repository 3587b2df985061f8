"""Finite-difference gradient of a volume, its adjoint, and fused TV kernels.

The gradient is the forward difference along each axis of a ``(nz, ny, nx)``
volume with Neumann boundaries (the difference across the last face is
zero), the standard discretisation of isotropic total variation
[Chambolle2004]_. Its adjoint is minus the matching backward-difference
divergence, so ``<grad x, p> = -<x, div p>`` holds to rounding (checked by
:func:`sinter4d.operators.dot_test`).

Besides :class:`Gradient` (a :class:`LinearOperator`) the module holds the
compiled, multi-threaded kernels that total-variation solvers call in their
hot loops. They fuse the gradient with what follows it, so a solver never
stores the 3-component gradient field unless it needs it (Chambolle–Pock's
dual variable): see :func:`tv_gradient`, :func:`tv_value`,
:func:`dual_ball_step` and :func:`primal_divergence_step`.

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

from ._base import LinearOperator

__all__ = [
    "Gradient",
    "dual_ball_step",
    "primal_divergence_step",
    "tv_gradient",
    "tv_value",
]

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


@numba.njit(fastmath=True, cache=True, inline="always")
def _unit_grad_plane(x, k, has_z, eps2, bz, by, bx):  # pragma: no cover - compiled
    # normalised gradient g / sqrt(|g|^2 + eps^2) of plane k into padded buffers:
    # b[j + 1, i + 1] holds voxel (k, j, i); row 0 and column 0 stay zero, and the
    # differences across the last faces are zero (Neumann). Branch-free inner loop.
    nz, ny, nx = x.shape
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for j in range(ny):
        jy = j + 1 if j < ny - 1 else j  # last row: gy = 0
        for i in range(nx - 1):
            v = x[k, j, i]
            gz = x[k + 1, j, i] - v if has_z else zero
            gy = x[k, jy, i] - v
            gx = x[k, j, i + 1] - v
            inv = one / math.sqrt(gz * gz + gy * gy + gx * gx + eps2)
            bz[j + 1, i + 1] = gz * inv
            by[j + 1, i + 1] = gy * inv
            bx[j + 1, i + 1] = gx * inv
        i = nx - 1
        v = x[k, j, i]
        gz = x[k + 1, j, i] - v if has_z else zero
        gy = x[k, jy, i] - v
        inv = one / math.sqrt(gz * gz + gy * gy + eps2)
        bz[j + 1, i + 1] = gz * inv
        by[j + 1, i + 1] = gy * inv
        bx[j + 1, i + 1] = zero


@numba.njit(parallel=True, fastmath=True, cache=True)
def _tv_gradient_kernel(x, out, eps2, n_chunks):  # pragma: no cover - compiled
    # out = d/dx sum sqrt(|grad x|^2 + eps^2) = grad^T (g / |g|_eps), computed plane by plane:
    # each thread walks a run of z planes keeping the previous plane's z component, so the
    # gradient field is never stored. Returns ||out||^2.
    nz, ny, nx = x.shape
    norm2 = np.zeros(n_chunks)
    for c in numba.prange(n_chunks):
        k0 = c * nz // n_chunks
        k1 = (c + 1) * nz // n_chunks
        pz = np.zeros((ny + 1, nx + 1), dtype=np.float32)
        cz = np.zeros((ny + 1, nx + 1), dtype=np.float32)
        cy = np.zeros((ny + 1, nx + 1), dtype=np.float32)
        cx = np.zeros((ny + 1, nx + 1), dtype=np.float32)
        if k0 > 0:
            _unit_grad_plane(x, k0 - 1, True, eps2, pz, cy, cx)
        acc = 0.0
        for k in range(k0, k1):
            _unit_grad_plane(x, k, k < nz - 1, eps2, cz, cy, cx)
            for j in range(ny):
                for i in range(nx):
                    s = (
                        pz[j + 1, i + 1] - cz[j + 1, i + 1]
                        - cy[j + 1, i + 1] + cy[j, i + 1]
                        - cx[j + 1, i + 1] + cx[j + 1, i]
                    )  # fmt: skip
                    out[k, j, i] = s
                    acc += s * s
            pz, cz = cz, pz
        norm2[c] = acc
    return norm2.sum()


@numba.njit(parallel=True, fastmath=True, cache=True)
def _tv_value_kernel(x, eps2):  # pragma: no cover - compiled
    nz, ny, nx = x.shape
    acc = np.zeros(nz)
    for k in numba.prange(nz):
        s = 0.0
        for j in range(ny):
            for i in range(nx):
                v = x[k, j, i]
                gz = x[k + 1, j, i] - v if k < nz - 1 else 0.0
                gy = x[k, j + 1, i] - v if j < ny - 1 else 0.0
                gx = x[k, j, i + 1] - v if i < nx - 1 else 0.0
                s += math.sqrt(gz * gz + gy * gy + gx * gx + eps2)
        acc[k] = s
    return acc.sum()


@numba.njit(parallel=True, fastmath=True, cache=True)
def _dual_ball_kernel(p, x, sigma, radius):  # pragma: no cover - compiled
    # p <- projection onto {|p_v| <= radius} of p + sigma * grad x (isotropic, per voxel)
    nz, ny, nx = x.shape
    for k in numba.prange(nz):
        for j in range(ny):
            for i in range(nx):
                v = x[k, j, i]
                gz = x[k + 1, j, i] - v if k < nz - 1 else 0.0
                gy = x[k, j + 1, i] - v if j < ny - 1 else 0.0
                gx = x[k, j, i + 1] - v if i < nx - 1 else 0.0
                a = p[0, k, j, i] + sigma * gz
                b = p[1, k, j, i] + sigma * gy
                c = p[2, k, j, i] + sigma * gx
                m = math.sqrt(a * a + b * b + c * c)
                f = radius / m if m > radius else np.float32(1.0)
                p[0, k, j, i] = a * f
                p[1, k, j, i] = b * f
                p[2, k, j, i] = c * f


@numba.njit(parallel=True, fastmath=True, cache=True)
def _primal_kernel(x, g, p, tau, theta, nonneg):  # pragma: no cover - compiled
    # x_new = max(x - tau (g - div p), 0); g <- x_new + theta (x_new - x); x <- x_new.
    # tau is (nz, nx) (broadcast over y). Returns (|x_new - x|^2, |x_new|^2).
    _, nz, ny, nx = p.shape
    d2 = np.zeros(nz)
    n2 = np.zeros(nz)
    for k in numba.prange(nz):
        sd = 0.0
        sn = 0.0
        for j in range(ny):
            for i in range(nx):
                dv = -p[0, k, j, i] - p[1, k, j, i] - p[2, k, j, i]
                if k > 0:
                    dv += p[0, k - 1, j, i]
                if j > 0:
                    dv += p[1, k, j - 1, i]
                if i > 0:
                    dv += p[2, k, j, i - 1]
                # grad^T p = -div p = dv   (p is zero across the last faces)
                old = x[k, j, i]
                new = old - tau[k, i] * (g[k, j, i] + dv)
                if nonneg and new < 0:
                    new = np.float32(0.0)
                d = new - old
                g[k, j, i] = new + theta * d
                x[k, j, i] = new
                sd += d * d
                sn += new * new
        d2[k] = sd
        n2[k] = sn
    return d2.sum(), n2.sum()


# --------------------------------------------------------------------------
# public wrappers
# --------------------------------------------------------------------------


def _as_volume(x: np.ndarray, name: str = "x") -> np.ndarray:
    if not (isinstance(x, np.ndarray) and x.ndim == 3 and x.dtype == np.float32 and x.flags.c_contiguous):
        raise ValueError(
            f"{name} must be a C-contiguous float32 (nz, ny, nx) array, got "
            f"{getattr(x, 'dtype', type(x))} of shape {getattr(x, 'shape', None)}"
        )
    return x


def _check_out(out: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}, got {out.dtype} {out.shape}")
    return out


def _n_chunks(nz: int) -> int:
    return max(1, min(nz, numba.get_num_threads()))


def tv_gradient(x: np.ndarray, out: np.ndarray, *, eps: float) -> float:
    """Gradient of the smoothed isotropic TV, written into ``out``.

    ``TV_eps(x) = sum_v sqrt(|grad x|_v^2 + eps^2)``; its gradient is
    ``grad^T (grad x / |grad x|_eps)``, computed plane by plane without
    storing the gradient field.

    Parameters
    ----------
    x : (nz, ny, nx) float32 ndarray
    out : (nz, ny, nx) float32 ndarray
        Receives the gradient (must not be ``x``).
    eps : float
        Smoothing, in the units of ``x`` per voxel (> 0 avoids division by 0).

    Returns
    -------
    float
        ``||out||^2`` (accumulated in float64).
    """
    _as_volume(x)
    _as_volume(out, "out")
    if out is x:
        raise ValueError("out must be a different array from x")
    return float(_tv_gradient_kernel(x, out, np.float32(eps * eps), _n_chunks(x.shape[0])))


def tv_value(x: np.ndarray, *, eps: float = 0.0) -> float:
    """Isotropic total variation ``sum_v sqrt(|grad x|_v^2 + eps^2)`` (float64 sum).

    Parameters
    ----------
    x : (nz, ny, nx) float32 ndarray
    eps : float, optional
        Smoothing (0: the exact isotropic TV).
    """
    return float(_tv_value_kernel(_as_volume(x), np.float32(eps * eps)))


def dual_ball_step(p: np.ndarray, x: np.ndarray, *, sigma: float, radius: float) -> None:
    """In place ``p <- P_{|.|<=radius}(p + sigma grad x)``, voxel-wise isotropic.

    The dual step of Chambolle–Pock for ``radius * ||grad x||_{2,1}``.

    Parameters
    ----------
    p : (3, nz, ny, nx) float32 ndarray
    x : (nz, ny, nx) float32 ndarray
    sigma, radius : float
    """
    _as_volume(x)
    if p.shape != (3, *x.shape) or p.dtype != np.float32 or not p.flags.c_contiguous:
        raise ValueError(f"p must be a C-contiguous float32 array of shape {(3, *x.shape)}, got {p.shape}")
    _dual_ball_kernel(p, x, np.float32(sigma), np.float32(radius))


def primal_divergence_step(
    x: np.ndarray, g: np.ndarray, p: np.ndarray, tau: np.ndarray, *, theta: float = 1.0, nonneg: bool = True
) -> tuple[float, float]:
    """Fused primal step of Chambolle–Pock for TV.

    ``x_new = max(x - tau * (g + grad^T p), 0)``, then ``g <- x_new + theta *
    (x_new - x)`` (the extrapolated point) and ``x <- x_new``, all in place.

    Parameters
    ----------
    x : (nz, ny, nx) float32 ndarray
        Primal iterate (updated).
    g : (nz, ny, nx) float32 ndarray
        On entry the data-term gradient part (``A^T q``); on exit the
        extrapolated point ``x_bar``.
    p : (3, nz, ny, nx) float32 ndarray
        Dual variable of the TV term.
    tau : (nz, nx) float32 ndarray
        Primal step per voxel column (constant along y).
    theta : float, optional
        Extrapolation (1 in Chambolle & Pock).
    nonneg : bool, optional
        Project onto ``x >= 0``.

    Returns
    -------
    (float, float)
        ``||x_new - x||^2`` and ``||x_new||^2``.
    """
    _as_volume(x)
    _as_volume(g, "g")
    nz, _, nx = x.shape
    if tau.shape != (nz, nx) or tau.dtype != np.float32:
        raise ValueError(f"tau must be a float32 array of shape {(nz, nx)}, got {tau.shape}")
    d2, n2 = _primal_kernel(x, g, p, tau, np.float32(theta), bool(nonneg))
    return float(d2), float(n2)


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
            raise ValueError(f"shape must be (nz, ny, nx) of positive ints, got {shape!r}")
        h = np.broadcast_to(np.asarray(voxel_size, dtype=float), (3,))
        if not np.all(np.isfinite(h) & (h > 0)):
            raise ValueError(f"voxel_size must be positive and finite, got {voxel_size!r}")
        self.domain_shape = shape
        self.range_shape = (3, *shape)
        self._w = tuple(np.float32(1.0 / v) for v in h)
        self._norm = None

    def direct(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Forward differences; ``(nz, ny, nx)`` -> ``(3, nz, ny, nx)``."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.shape != self.domain_shape:
            raise ValueError(f"x must have shape {self.domain_shape}, got {x.shape}")
        out = _check_out(out, self.range_shape)
        _grad_kernel(x, out, *self._w)
        return out

    def adjoint(self, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Minus the divergence; ``(3, nz, ny, nx)`` -> ``(nz, ny, nx)``."""
        y = np.ascontiguousarray(y, dtype=np.float32)
        if y.shape != self.range_shape:
            raise ValueError(f"y must have shape {self.range_shape}, got {y.shape}")
        out = _check_out(out, self.domain_shape)
        _neg_div_kernel(y, out, *self._w)
        return out

    def norm_bound(self) -> float:
        """Analytic upper bound of ``||grad||`` (no power iteration)."""
        return float(2.0 * math.sqrt(sum(float(w) ** 2 for w in self._w)))
