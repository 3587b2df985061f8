"""Objective terms for reconstruction: total variation, non-negativity, least squares.

CIL-style functions (see STYLE.md): each is called for its value and offers
``gradient`` and/or ``proximal``; solvers in :mod:`sinter4d.pipeline.reconstruct`
talk only to these and to a :class:`~sinter4d.operators.LinearOperator`.
Volumes are ``(nz, ny, nx)`` float32 arrays; total variation is isotropic in
3D over ``(z, y, x)`` with unit (voxel) spacing.

References
----------
.. [Rudin1992] L. I. Rudin, S. Osher, E. Fatemi, "Nonlinear total variation
   based noise removal algorithms", Physica D 60, 259–268 (1992).
   doi:10.1016/0167-2789(92)90242-F
.. [Beck2009] A. Beck, M. Teboulle, "Fast gradient-based algorithms for
   constrained total variation image denoising and deblurring problems",
   IEEE Trans. Image Process. 18, 2419–2434 (2009). doi:10.1109/TIP.2009.2028250
"""

from __future__ import annotations

import math

import numpy as np

from ..operators._base import LinearOperator
from ..operators.gradient import GRAD_NORM_SQ_3D, _neg_div_kernel, dual_ball_step, tv_gradient, tv_value

__all__ = ["LeastSquares", "NonNegativity", "TotalVariation"]


def _volume(x: np.ndarray, name: str = "x") -> np.ndarray:
    """The one dtype policy: a C-contiguous float32 ``(nz, ny, nx)`` array (copy only if needed)."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"{name} must be a (nz, ny, nx) volume, got shape {x.shape}")
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
        weight = float(weight)
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight must be a finite number >= 0, got {weight!r}")
        if not math.isfinite(float(smoothing)) or smoothing <= 0:
            raise ValueError(f"smoothing must be a positive number, got {smoothing!r}")
        self.weight = weight
        self.smoothing = float(smoothing)
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
        t = 1.0
        for _ in range(int(n_iter)):
            self._primal_from_dual(z, r, gamma, out)
            p, p_old = p_old, p
            np.copyto(p, r)
            dual_ball_step(p, out, sigma=1.0 / (GRAD_NORM_SQ_3D * gamma), radius=1.0)
            t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
            # r = p + (t - 1) / t_new * (p - p_old)
            np.subtract(p, p_old, out=r)
            r *= np.float32((t - 1.0) / t_new)
            r += p
            t = t_new
        self._primal_from_dual(z, p, gamma, out)
        return out

    def _primal_from_dual(self, z, p, gamma, out):
        # out = P_C(z - gamma * grad^T p)
        _neg_div_kernel(p, out, np.float32(1.0), np.float32(1.0), np.float32(1.0))
        out *= np.float32(-gamma)
        out += z
        if self.nonneg:
            np.maximum(out, 0, out=out)


class NonNegativity:
    """Indicator of ``x >= 0``: 0 on the non-negative orthant, +inf elsewhere."""

    def __call__(self, x: np.ndarray) -> float:
        """0 if every value is >= 0, else ``inf``."""
        return 0.0 if float(np.min(x)) >= 0 else math.inf

    def proximal(self, x: np.ndarray, tau: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
        """Projection ``max(x, 0)`` (``tau`` is ignored)."""
        return np.maximum(x, 0, out=out)


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
            raise ValueError(f"data must have shape {tuple(operator.range_shape)}, got {data.shape}")
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
