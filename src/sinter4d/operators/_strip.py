"""The exact strip-area system matrix of one ``(nz, nx)`` slice (ASTRA's ``strip`` model).

The weight of voxel j in ray i is the area of the intersection of the voxel
(a square of side ``h``) with the strip of detector pixel i, divided by the
pixel width ``d``; see :mod:`sinter4d.operators.projector` for the geometry.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

__all__ = ["strip_system_matrix"]


def _footprint_cdf(t: np.ndarray, w1: float, w2: float, height: float, area: float) -> np.ndarray:
    """Integral from the left edge to ``t`` of a trapezoid footprint.

    The trapezoid rises over ``w1``, stays at ``height`` over ``w2 - w1``
    and falls over ``w1``; its total width is ``w1 + w2`` and area ``area``.
    ``t`` must already be clipped to ``[0, w1 + w2]``.
    """
    if w1 <= 1e-12 * w2:  # a box (theta a multiple of 90 deg)
        return height * t
    width = w1 + w2
    rise = height * t * t / (2.0 * w1)
    plateau = height * (0.5 * w1 + (t - w1))
    fall = area - height * (width - t) ** 2 / (2.0 * w1)
    return np.where(t < w1, rise, np.where(t <= w2, plateau, fall))


def strip_system_matrix(
    nz: int,
    nx: int,
    *,
    voxel_size_nm: float,
    angles_deg: np.ndarray,
    n_det: int,
    det_pixel_nm: float,
    z_centre_nm: float = 0.0,
    axis_offset_px: float = 0.0,
) -> sp.csr_matrix:
    """Exact strip-area system matrix of one ``(nz, nx)`` slice.

    Rows are ``angle * n_det + i``, columns ``k * nx + j`` (the slice
    flattened in C order); the weights are in nm (see the module docstring).

    Parameters
    ----------
    nz, nx : int
        Slice shape in voxels.
    voxel_size_nm : float
        Voxel edge ``h`` in nm.
    angles_deg : (n_angles,) array_like
        Tilt angles in degrees.
    n_det : int
        Detector pixels per row.
    det_pixel_nm : float
        Detector pixel width ``d`` in nm.
    z_centre_nm : float, optional
        z of the slab's middle, nm (the tilt axis is at z = 0).
    axis_offset_px : float, optional
        Where the tilt axis lands on the detector, in pixels right of its middle.

    Returns
    -------
    scipy.sparse.csr_matrix
        Shape ``(n_angles * n_det, nz * nx)``, float32 values, int32 indices,
        sorted column indices.
    """
    h = float(voxel_size_nm)
    d = float(det_pixel_nm)
    theta = np.deg2rad(np.asarray(angles_deg, dtype=float))
    z = (np.arange(nz) - (nz - 1) / 2.0) * h + z_centre_nm
    x = (np.arange(nx) - (nx - 1) / 2.0) * h
    zz, xx = np.meshgrid(z, x, indexing="ij")
    zz = zz.ravel()
    xx = xx.ravel()
    cols_all = np.arange(nz * nx, dtype=np.int64)
    p_centre = (n_det - 1) / 2.0 + axis_offset_px  # detector index of u = 0
    blocks = []
    for th in theta:
        c, s = abs(math.cos(th)), abs(math.sin(th))
        w1, w2 = h * min(c, s), h * max(c, s)
        width = w1 + w2
        height = h * h / w2
        u0 = xx * math.cos(th) + zz * math.sin(th)
        left = u0 - 0.5 * width  # left edge of the footprint, nm
        # first detector pixel touched, and how many at most
        first = np.floor(left / d + p_centre + 0.5).astype(np.int64)
        n_touch = int(math.ceil(width / d)) + 1
        rows, cols, vals = [], [], []
        for k in range(n_touch):
            i = first + k
            u_lo = (i - p_centre - 0.5) * d
            t_lo = np.clip(u_lo - left, 0.0, width)
            t_hi = np.clip(u_lo + d - left, 0.0, width)
            w = (_footprint_cdf(t_hi, w1, w2, height, h * h) - _footprint_cdf(t_lo, w1, w2, height, h * h)) / d
            keep = (i >= 0) & (i < n_det) & (w > 1e-7 * h)
            rows.append(i[keep])
            cols.append(cols_all[keep])
            vals.append(w[keep])
        block = sp.coo_matrix(
            (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_det, nz * nx),
        ).tocsr()
        block.sort_indices()
        blocks.append(block)
    mat = sp.vstack(blocks, format="csr")
    mat.sort_indices()
    return mat
