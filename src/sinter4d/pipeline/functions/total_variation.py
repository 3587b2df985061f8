"""Total variation: the functional, its gradient and its proximal map, with their kernels.

CIL-style (STYLE.md): a function is called for its value and offers
``gradient`` and/or ``proximal``; the solvers of
:mod:`sinter4d.pipeline.algorithms` talk only to functions like this and to a
:class:`~sinter4d.operators.LinearOperator`. Volumes are ``(nz, ny, nx)``
float32 arrays; total variation is isotropic in 3D over ``(z, y, x)`` with
unit (voxel) spacing, on the forward-difference gradient of
:class:`~sinter4d.operators.Gradient` (Neumann boundaries) [Chambolle2004]_.

Besides :class:`TotalVariation` the module holds the compiled,
multi-threaded kernels that total-variation solvers call in their hot
loops. They fuse the gradient with what follows it, so a solver never
stores the 3-component gradient field unless it needs it (Chambolle–Pock's
dual variable): see :func:`tv_gradient`, :func:`tv_value`,
:func:`dual_ball_step` and :func:`primal_divergence_step`.

References
----------
.. [Chambolle2004] A. Chambolle, "An algorithm for total variation
   minimization and applications", J. Math. Imaging Vis. 20, 89–97 (2004).
   doi:10.1023/B:JMIV.0000011325.36760.1e
.. [Rudin1992] L. I. Rudin, S. Osher, E. Fatemi, "Nonlinear total variation
   based noise removal algorithms", Physica D 60, 259–268 (1992).
   doi:10.1016/0167-2789(92)90242-F
.. [Beck2009] A. Beck, M. Teboulle, "Fast gradient-based algorithms for
   constrained total variation image denoising and deblurring problems",
   IEEE Trans. Image Process. 18, 2419–2434 (2009). doi:10.1109/TIP.2009.2028250
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ...checks import check_number, check_positive
from ...errors import InputError
from ...operators.gradient import GRAD_NORM_SQ_3D, Gradient

__all__ = [
    "TotalVariation",
    "dual_ball_step",
    "primal_divergence_step",
    "tv_gradient",
    "tv_value",
]


# --------------------------------------------------------------------------
# kernels (compiled; parallel over z planes)
# --------------------------------------------------------------------------


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
# wrappers of the kernels
# --------------------------------------------------------------------------


def _as_volume(x: np.ndarray, name: str = "x") -> np.ndarray:
    if not (isinstance(x, np.ndarray) and x.ndim == 3 and x.dtype == np.float32 and x.flags.c_contiguous):
        raise ValueError(
            f"{name} must be a C-contiguous float32 (nz, ny, nx) array, got "
            f"{getattr(x, 'dtype', type(x))} of shape {getattr(x, 'shape', None)}"
        )
    return x


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


# --------------------------------------------------------------------------
# the functional
# --------------------------------------------------------------------------


def _volume(x: np.ndarray, name: str = "x") -> np.ndarray:
    """The one dtype policy: a C-contiguous float32 ``(nz, ny, nx)`` array (copy only if needed)."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise InputError(f"{name} must be a (nz, ny, nx) volume, got shape {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


class TotalVariation:
    """Isotropic total variation ``weight * sum_v |grad x|_v`` of a volume.

    Parameters
    ----------
    weight : float
        Regularisation weight ``lambda`` (>= 0), in units of the data term
        per unit of ``x`` (see :func:`sinter4d.pipeline.reconstruct.tv_weight_rule`).
    smoothing : float, optional
        ``eps`` of the smoothed TV ``sum sqrt(|grad x|^2 + eps^2)`` used by
        :meth:`gradient` (the value :meth:`__call__` is the exact TV).
    nonneg : bool, optional
        Whether :meth:`proximal` also constrains ``x >= 0`` (the proximal
        map of ``TV + i_{x>=0}``, computed jointly as in [Beck2009]_).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((1, 4, 4), np.float32); x[:, :, 2:] = 1.0
    >>> float(TotalVariation(1.0)(x))  # a unit step across 4 rows
    4.0
    """

    def __init__(self, weight: float, *, smoothing: float = 1e-3, nonneg: bool = False) -> None:
        self.weight = check_number(weight, "weight", minimum=0.0)
        self.smoothing = check_positive(smoothing, "smoothing")
        self.nonneg = bool(nonneg)

    def __call__(self, x: np.ndarray) -> float:
        """``weight * TV(x)`` (exact isotropic TV, float64 sum)."""
        return self.weight * tv_value(_volume(x))

    def gradient(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Gradient of ``weight * TV_eps(x)`` (smoothed with ``eps = smoothing``)."""
        x = _volume(x)
        if out is None:
            out = np.empty_like(x)
        tv_gradient(x, out, eps=self.smoothing)
        out *= np.float32(self.weight)
        return out

    def proximal(self, x: np.ndarray, tau: float, out: np.ndarray | None = None, *, n_iter: int = 50) -> np.ndarray:
        """``argmin_u 1/2 ||u - x||^2 + tau * weight * TV(u)`` (+ ``u >= 0`` if ``nonneg``).

        Computed by ``n_iter`` iterations of the fast gradient projection
        (FGP) on the dual [Beck2009]_, starting from a zero dual field. Uses
        three ``(3, nz, ny, nx)`` work arrays: meant for denoising and tests,
        not for the reconstruction loop (see ``AlternatingTV``).

        Parameters
        ----------
        x : (nz, ny, nx) ndarray
        tau : float
            Step (> 0); the TV weight applied is ``tau * weight``.
        out : (nz, ny, nx) float32 ndarray, optional
        n_iter : int, optional
            Dual iterations.

        Returns
        -------
        (nz, ny, nx) float32 ndarray
        """
        z = _volume(x)
        if out is None:
            out = np.empty_like(z)
        gamma = float(tau) * self.weight
        if gamma <= 0:
            np.copyto(out, z)
            if self.nonneg:
                np.maximum(out, 0, out=out)
            return out
        shape = (3, *z.shape)
        p = np.zeros(shape, np.float32)
        p_old = np.zeros(shape, np.float32)
        r = np.zeros(shape, np.float32)
        grad = Gradient(z.shape)
        t = 1.0
        for _ in range(int(n_iter)):
            self._primal_from_dual(grad, z, r, gamma, out)
            p, p_old = p_old, p
            np.copyto(p, r)
            dual_ball_step(p, out, sigma=1.0 / (GRAD_NORM_SQ_3D * gamma), radius=1.0)
            t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
            # r = p + (t - 1) / t_new * (p - p_old)
            np.subtract(p, p_old, out=r)
            r *= np.float32((t - 1.0) / t_new)
            r += p
            t = t_new
        self._primal_from_dual(grad, z, p, gamma, out)
        return out

    def _primal_from_dual(self, grad, z, p, gamma, out):
        # out = P_C(z - gamma * grad^T p)
        grad.adjoint(p, out=out)
        out *= np.float32(-gamma)
        out += z
        if self.nonneg:
            np.maximum(out, 0, out=out)
