"""Compiled kernels of the depth-resolved probe projection (see :mod:`._probe`).

The volume is ``(nz, ny, nx)`` and y is the tilt axis, so every y slice is
an independent 2-D problem: the tasks of every kernel are y slices, which
write disjoint outputs (no locks, no reductions across threads).

* :func:`_above_slice` integrates the Cu thickness above each voxel of one
  slice down the tilted beam, layer by layer from the top (+z), one linear
  interpolation along x per layer.
* :func:`mass_thickness_above` fills it for the whole volume, once per tilt,
  into a buffer the caller may reuse.
* :func:`project_into_nodes` splits each voxel's value between the two
  depth nodes around that thickness (hat weights) and adds it, through
  one tilt's rows of the slice system matrix, to ``(node, y, det)``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["mass_thickness_above", "project_into_nodes"]


@numba.njit(cache=True)
def _above_slice(vol, y, half_path, n, f, out):  # pragma: no cover - compiled
    """Thickness above each voxel of slice ``y`` into ``out[:, y]``; ray shift ``n + f`` voxels per layer."""
    nz, _, nx = vol.shape
    carry = np.zeros(nx, dtype=np.float32)
    g = np.zeros(nx + 2, dtype=np.float32)  # g[1 + x]; g[0] and g[nx + 1] stay 0 (outside the slice)
    f0 = np.float32(1.0) - f
    lo = min(max(-n - 1, 0), nx)  # carry[x] = g[x + n] (1 - f) + g[x + n + 1] f needs x + n in [-1, nx - 1];
    hi = max(min(nx - n, nx), lo)  # elsewhere it stays 0
    for k in range(nz - 1, -1, -1):
        row = vol[k, y]
        o = out[k, y]
        for x in range(nx):
            half = row[x] * half_path
            v = carry[x] + half
            o[x] = v
            g[1 + x] = v + half
        for x in range(lo, hi):  # branch-free, so that it vectorises
            carry[x] = g[1 + x + n] * f0 + g[2 + x + n] * f


def _ray(voxel_size_nm: float, angle_deg: float):
    """Half a voxel's path (nm) and the ray's shift per layer up, ``n + f`` voxels along x."""
    th = math.radians(angle_deg)
    s = -math.tan(th)  # one layer up, the same ray is s voxels along x
    n = math.floor(s)
    return np.float32(0.5 * voxel_size_nm / math.cos(th)), n, np.float32(s - n)


@numba.njit(parallel=True, cache=True)
def _above_all(vol, half_path, n, f, out):  # pragma: no cover - compiled
    for y in numba.prange(vol.shape[1]):
        _above_slice(vol, y, half_path, n, f, out)


@numba.njit(parallel=True, cache=True)
def _nodes(vol, above, colptr, rows, data, n_det, step, n_nodes):  # pragma: no cover - compiled
    nz, ny, nx = vol.shape
    out = np.empty((n_nodes, ny, n_det), dtype=np.float32)
    last = n_nodes - 1.0
    for y in numba.prange(ny):
        acc = np.zeros((n_nodes, n_det), dtype=np.float64)  # summed in float64
        for z in range(nz):
            for x in range(nx):
                v = np.float64(vol[z, y, x])
                if v == 0.0:  # only Cu voxels carry signal
                    continue
                q = min(above[z, y, x] / step, last)
                k = int(q)
                hi = (q - k) * v
                lo = v - hi
                j = z * nx + x
                for p in range(colptr[j], colptr[j + 1]):
                    acc[k, rows[p]] += lo * data[p]
                    if hi != 0.0:
                        acc[k + 1, rows[p]] += hi * data[p]
        for k in range(n_nodes):
            for d in range(n_det):
                out[k, y, d] = acc[k, d]
    return out


def mass_thickness_above(volume: np.ndarray, voxel_size_nm: float, angle_deg: float, *, out=None) -> np.ndarray:
    """Cu-equivalent thickness (nm) the beam crosses above each voxel's centre at one tilt.

    The beam enters at +z and travels down the ray ``u = x cos(theta) + z
    sin(theta)`` (the projector's geometry); half the voxel's own path counts.

    Parameters
    ----------
    volume : (nz, ny, nx) ndarray
        Cu volume fraction (0..1).
    voxel_size_nm : float
    angle_deg : float
        Tilt angle (degrees, within (-90, 90)).
    out : (nz, ny, nx) float32 C-contiguous ndarray, optional
        Filled and returned. A caller that loops over tilts passes the same
        one: a fresh array of a whole volume costs its page faults on every
        call, more than the integration itself.

    Returns
    -------
    (nz, ny, nx) float32 ndarray
        nm of Cu above each voxel centre along the beam.
    """
    vol = np.ascontiguousarray(volume, dtype=np.float32)
    if out is None:
        out = np.empty(vol.shape, dtype=np.float32)
    elif out.shape != vol.shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {vol.shape}")
    _above_all(vol, *_ray(voxel_size_nm, angle_deg), out)
    return out


def project_into_nodes(volume, above, rows, step, n_nodes) -> np.ndarray:
    """Project ``volume`` ``(nz, ny, nx)`` through one tilt's ``rows`` of the slice matrix, split by depth node.

    A voxel with ``q = above / step`` between nodes ``k = floor(q)`` and
    ``k + 1`` gives ``1 - (q - k)`` of its value to node ``k`` and ``q - k``
    to node ``k + 1`` (past the last node, all to the last).

    Parameters
    ----------
    volume : (nz, ny, nx) ndarray
        Cu volume fraction.
    above : (nz, ny, nx) ndarray
        Cu thickness above each voxel at that tilt (nm, :func:`mass_thickness_above`).
    rows : scipy.sparse matrix, (n_det, nz * nx)
        That tilt's rows of the slice system matrix (nm).
    step : float
        Cu thickness (nm) between nodes.
    n_nodes : int

    Returns
    -------
    (n_nodes, ny, n_det) float32 ndarray
        The projection of each node's share; their sum is the plain projection.
    """
    vol = np.ascontiguousarray(volume, dtype=np.float32)
    above = np.ascontiguousarray(above, dtype=np.float32)
    csc = rows.tocsc()
    return _nodes(vol, above, csc.indptr, csc.indices, csc.data, int(rows.shape[0]), float(step), int(n_nodes))
