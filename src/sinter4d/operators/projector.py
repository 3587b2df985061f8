"""Parallel-beam projector about a single tilt axis parallel to y.

With a single tilt axis and a parallel beam the 3D problem splits into
independent 2D problems, one per y row, that share one system matrix
(DESIGN, "Reconstruction notes"). :class:`ParallelProjector` builds that
matrix once, for one ``(z, x)`` slice, and applies it to every y slice at
once with a compiled, multi-threaded sparse-times-dense-block kernel.

Geometry (the sign convention used everywhere in sinter4d)
-----------------------------------------------------------
Coordinates are those of :class:`sinter4d.phantom.Grid`: the tilt axis is
the line ``x = 0, z = 0``, parallel to y; voxel ``(k, j)`` of an
``(nz, nx)`` slice of voxel size ``h`` has its centre at
``z_k = (k - (nz - 1) / 2) h + z_centre_nm`` and
``x_j = (j - (nx - 1) / 2) h`` (the slab need not be centred on the axis).
At tilt angle ``theta`` the beam travels along ``(x, z) = (-sin theta,
cos theta)`` and a point ``(z, x)`` lands at detector coordinate::

    u = x cos(theta) + z sin(theta)

(so at 0 deg ``u = x``; a point above the axis, ``z > 0``, moves to ``+u``
when the specimen is tilted to positive angles). Detector pixel ``i`` of
``n_det`` pixels of width ``d`` has its centre at
``u_i = (i - (n_det - 1) / 2 - axis_offset_px) d``: with a positive
``axis_offset_px`` the tilt axis projects ``axis_offset_px`` pixels to the
right (+u) of the detector's middle.

Weights
-------
The weight of voxel j in ray i is the area of the intersection of the
voxel (a square of side ``h``) with the strip of detector pixel i, divided
by the pixel width ``d``: the mean length (nm) of the rays of that strip
inside the voxel. It is computed exactly from the voxel's footprint on the
detector, a trapezoid of total area ``h**2`` (the convolution of two boxes
of widths ``h |cos theta|`` and ``h |sin theta|``), integrated over the
pixel. A projection is therefore the line integral (in nm) of the volume's
values: a uniform object of value 1 projects to its chord length in nm.
This is ASTRA's ``strip`` model; summed over a pixel it conserves mass
exactly (each voxel contributes ``h**2 / d`` per angle).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import scipy.sparse as sp

from ._base import LinearOperator

__all__ = ["ParallelProjector"]


# --------------------------------------------------------------------------
# system matrix
# --------------------------------------------------------------------------


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
    mat.indices = mat.indices.astype(np.int32, copy=False)
    mat.indptr = mat.indptr.astype(np.int64, copy=False)
    return mat


# --------------------------------------------------------------------------
# kernels: one y block per task, private buffers, so no write conflicts
# --------------------------------------------------------------------------


@numba.njit(parallel=True, fastmath=True, cache=True)
def _direct_kernel(indptr, indices, data, vol, out, n_angles, n_det, block):  # pragma: no cover - compiled
    nz, ny, nx = vol.shape
    n_blocks = (ny + block - 1) // block
    n_rows = n_angles * n_det
    for blk in numba.prange(n_blocks):
        y0 = blk * block
        nb = min(block, ny - y0)
        xb = np.zeros((nz * nx, block), dtype=np.float32)
        for k in range(nz):
            for b in range(nb):
                for j in range(nx):
                    xb[k * nx + j, b] = vol[k, y0 + b, j]
        acc = np.empty(block, dtype=np.float32)
        ob = np.empty((n_rows, block), dtype=np.float32)
        for r in range(n_rows):
            acc[:] = 0.0
            for q in range(indptr[r], indptr[r + 1]):
                w = data[q]
                c = indices[q]
                for b in range(block):
                    acc[b] += w * xb[c, b]
            for b in range(block):
                ob[r, b] = acc[b]
        for a in range(n_angles):
            for b in range(nb):
                for i in range(n_det):
                    out[a, y0 + b, i] = ob[a * n_det + i, b]


@numba.njit(parallel=True, fastmath=True, cache=True)
def _adjoint_kernel(indptr, indices, data, proj, out, nz, nx, block):  # pragma: no cover - compiled
    n_angles, ny, n_det = proj.shape
    n_blocks = (ny + block - 1) // block
    n_rows = n_angles * n_det
    for blk in numba.prange(n_blocks):
        y0 = blk * block
        nb = min(block, ny - y0)
        pb = np.zeros((n_rows, block), dtype=np.float32)
        for a in range(n_angles):
            for b in range(nb):
                for i in range(n_det):
                    pb[a * n_det + i, b] = proj[a, y0 + b, i]
        xb = np.zeros((nz * nx, block), dtype=np.float32)
        for r in range(n_rows):
            for q in range(indptr[r], indptr[r + 1]):
                w = data[q]
                c = indices[q]
                for b in range(block):
                    xb[c, b] += w * pb[r, b]
        for k in range(nz):
            for b in range(nb):
                for j in range(nx):
                    out[k, y0 + b, j] = xb[k * nx + j, b]


def _block_size(ny: int, n_threads: int, max_block: int) -> int:
    """y columns per task: enough tasks for every thread, at most ``max_block``."""
    per_thread = -(-ny // max(n_threads, 1))
    b = 8
    while b < per_thread and b < max_block:
        b *= 2
    return min(b, max_block)


# --------------------------------------------------------------------------
# operator
# --------------------------------------------------------------------------


def _check_positive(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


class ParallelProjector(LinearOperator):
    """Parallel-beam projector about the y axis, applied to all y slices at once.

    ``direct`` maps a volume ``(nz, ny, nx)`` to projections
    ``(n_angles, ny, n_det)``: the line integrals (nm × value) along the
    beam at each tilt; ``adjoint`` is its exact transpose (back-projection).
    A point ``(z, x)`` lands at detector coordinate
    ``u = x cos(theta) + z sin(theta)``; the tilt axis is ``x = 0, z = 0``.
    See the module docstring for the geometry and the weights.

    Parameters
    ----------
    slab_shape : tuple of int
        ``(nz, nx)``: voxels of one y slice.
    ny : int
        Number of y slices (detector rows).
    voxel_size_nm : float
        Voxel edge ``h`` in nm.
    angles_deg : (n_angles,) array_like
        Tilt angles in degrees, each within (-90, 90).
    n_det : int, optional
        Detector pixels per row (default ``nx``).
    det_pixel_nm : float, optional
        Detector pixel width in nm (default ``voxel_size_nm``).
    z_centre_nm : float, optional
        z of the slab's middle in nm, as :attr:`Grid.z_centre_nm` (default 0).
    axis_offset_px : float, optional
        Detector position of the tilt axis, in pixels right of the middle of
        the detector row (default 0).
    max_block : int, optional
        Largest number of y slices one thread processes together (tuning).

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix
        The ``(n_angles * n_det, nz * nx)`` system matrix of one slice, nm.
    domain_shape, range_shape : tuple of int
        ``(nz, ny, nx)`` and ``(n_angles, ny, n_det)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sinter4d.operators import ParallelProjector
    >>> A = ParallelProjector((32, 32), 4, voxel_size_nm=2.0, angles_deg=[-30, 0, 30])
    >>> A.direct(np.ones((32, 4, 32), np.float32))[1, 0, 16]  # 32 voxels of 2 nm
    64.0
    """

    def __init__(
        self,
        slab_shape: tuple[int, int],
        ny: int,
        *,
        voxel_size_nm: float,
        angles_deg,
        n_det: int | None = None,
        det_pixel_nm: float | None = None,
        z_centre_nm: float = 0.0,
        axis_offset_px: float = 0.0,
        max_block: int = 64,
    ) -> None:
        if len(slab_shape) != 2 or min(int(n) for n in slab_shape) < 1:
            raise ValueError(f"slab_shape must be (nz, nx) of positive ints, got {slab_shape!r}")
        nz, nx = (int(n) for n in slab_shape)
        if int(ny) < 1:
            raise ValueError(f"ny must be a positive int, got {ny!r}")
        angles = np.atleast_1d(np.asarray(angles_deg, dtype=float))
        if angles.ndim != 1 or angles.size == 0:
            raise ValueError(f"angles_deg must be a non-empty 1D sequence, got shape {angles.shape}")
        bad = ~np.isfinite(angles) | (np.abs(angles) >= 90.0)
        if bad.any():
            raise ValueError(f"angles_deg must be finite and within (-90, 90) deg, got {angles[bad][0]!r}")
        self.voxel_size_nm = _check_positive(voxel_size_nm, "voxel_size_nm")
        self.det_pixel_nm = _check_positive(
            self.voxel_size_nm if det_pixel_nm is None else det_pixel_nm, "det_pixel_nm"
        )
        self.n_det = nx if n_det is None else int(n_det)
        if self.n_det < 1:
            raise ValueError(f"n_det must be a positive int, got {n_det!r}")
        for name, val in (("z_centre_nm", z_centre_nm), ("axis_offset_px", axis_offset_px)):
            if not math.isfinite(float(val)):
                raise ValueError(f"{name} must be finite, got {val!r}")
        self.z_centre_nm = float(z_centre_nm)
        self.axis_offset_px = float(axis_offset_px)
        self.angles_deg = angles
        self.nz, self.ny, self.nx = nz, int(ny), nx
        self.domain_shape = (nz, self.ny, nx)
        self.range_shape = (angles.size, self.ny, self.n_det)
        self.max_block = int(max_block)
        self.matrix = strip_system_matrix(
            nz,
            nx,
            voxel_size_nm=self.voxel_size_nm,
            angles_deg=angles,
            n_det=self.n_det,
            det_pixel_nm=self.det_pixel_nm,
            z_centre_nm=self.z_centre_nm,
            axis_offset_px=self.axis_offset_px,
        )
        self._norm = None

    @classmethod
    def from_grid(cls, grid, angles_deg, **kwargs) -> ParallelProjector:
        """Projector for a :class:`sinter4d.phantom.Grid` (voxel size, shape, z centre).

        Other keyword arguments go to the constructor.
        """
        nz, ny, nx = grid.shape
        return cls(
            (nz, nx),
            ny,
            voxel_size_nm=grid.voxel_size_nm,
            angles_deg=angles_deg,
            z_centre_nm=grid.z_centre_nm,
            **kwargs,
        )

    # -- application --------------------------------------------------------

    def _prepare(self, arr, shape, what):
        arr = np.asarray(arr)
        if arr.shape != shape:
            raise ValueError(f"{what} must have shape {shape}, got {arr.shape}")
        return np.ascontiguousarray(arr, dtype=np.float32)

    def _out(self, out, shape, what):
        if out is None:
            return np.empty(shape, dtype=np.float32)
        if out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError(f"out for {what} must be a C-contiguous float32 array of shape {shape}")
        return out

    def direct(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Project a volume.

        Parameters
        ----------
        x : (nz, ny, nx) ndarray
            Volume (any real dtype; computed in float32).
        out : (n_angles, ny, n_det) float32 ndarray, optional
            Buffer for the result.

        Returns
        -------
        (n_angles, ny, n_det) float32 ndarray
            Line integrals, value × nm.
        """
        vol = self._prepare(x, self.domain_shape, "volume")
        res = self._out(out, self.range_shape, "direct")
        m = self.matrix
        block = _block_size(self.ny, numba.get_num_threads(), self.max_block)
        _direct_kernel(m.indptr, m.indices, m.data, vol, res, self.range_shape[0], self.n_det, block)
        return res

    def adjoint(self, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Back-project projections (the exact transpose of :meth:`direct`).

        Parameters
        ----------
        y : (n_angles, ny, n_det) ndarray
            Projections.
        out : (nz, ny, nx) float32 ndarray, optional
            Buffer for the result.

        Returns
        -------
        (nz, ny, nx) float32 ndarray
        """
        proj = self._prepare(y, self.range_shape, "projections")
        res = self._out(out, self.domain_shape, "adjoint")
        m = self.matrix
        block = _block_size(self.ny, numba.get_num_threads(), self.max_block)
        _adjoint_kernel(m.indptr, m.indices, m.data, proj, res, self.nz, self.nx, block)
        return res

    # -- sums used by SIRT-type solvers ----------------------------------

    def row_sums(self) -> np.ndarray:
        """``A 1`` for one slice, ``(n_angles, n_det)``: path length (nm) of each ray in the slab."""
        return np.asarray(self.matrix.sum(axis=1), dtype=np.float64).reshape(self.range_shape[0], self.n_det)

    def column_sums(self) -> np.ndarray:
        """``A^T 1`` for one slice, ``(nz, nx)``: each voxel's summed weight (nm)."""
        return np.asarray(self.matrix.sum(axis=0), dtype=np.float64).reshape(self.nz, self.nx)

    def __repr__(self) -> str:
        return (
            f"ParallelProjector(slab=({self.nz}, {self.nx}), ny={self.ny}, voxel={self.voxel_size_nm} nm, "
            f"{self.range_shape[0]} angles, n_det={self.n_det}, nnz={self.matrix.nnz})"
        )
