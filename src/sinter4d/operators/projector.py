"""Parallel-beam projector about a single tilt axis parallel to y.

With a single tilt axis and a parallel beam the 3D problem splits into
independent 2D problems, one per y row, that share one system matrix
(docs/design.md, "Reconstruction notes"). :class:`ParallelProjector` builds that
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

import threading

import numba
import numpy as np

from ..checks import check_angles, check_int, check_number, check_positive
from ..errors import InputError
from ._base import LinearOperator
from ._strip import strip_system_matrix
from ._tiled import BLOCK, adjoint_kernel, direct_kernel, tiled_formats

__all__ = ["ParallelProjector", "strip_system_matrix"]


# --------------------------------------------------------------------------
# operator
# --------------------------------------------------------------------------


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

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix
        The ``(n_angles * n_det, nz * nx)`` system matrix of one slice, nm.
    domain_shape, range_shape : tuple of int
        ``(nz, ny, nx)`` and ``(n_angles, ny, n_det)``.

    Notes
    -----
    Build once per geometry and reuse: construction (matrix + two tiled
    orderings, about 24 bytes per non-zero) is the expensive part.
    ``direct`` and ``adjoint`` use all numba threads and work on y in blocks
    of 64 slices, so ``ny < 64`` costs as much as ``ny = 64``
    (``benchmarks/bench_projector.py`` times them). Calls on one instance are serialised by a lock (they share
    a work buffer of ``ceil(ny / 64) * 64 * n_angles * n_det`` floats); the
    object pickles (without the buffer) for process pools.

    Examples
    --------
    >>> import numpy as np
    >>> from sinter4d.operators import ParallelProjector
    >>> A = ParallelProjector((32, 32), 4, voxel_size_nm=2.0, angles_deg=[-30, 0, 30])
    >>> float(A.direct(np.ones((32, 4, 32), np.float32))[1, 0, 16])  # 32 voxels of 2 nm
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
    ) -> None:
        if len(slab_shape) != 2 or min(int(n) for n in slab_shape) < 1:
            raise InputError(f"slab_shape must be (nz, nx) of positive ints, got {slab_shape!r}")
        nz, nx = (int(n) for n in slab_shape)
        ny = check_int(ny, "ny", minimum=1)
        angles = check_angles(angles_deg, "angles_deg")
        self.voxel_size_nm = check_positive(voxel_size_nm, "voxel_size_nm")
        self.det_pixel_nm = check_positive(
            self.voxel_size_nm if det_pixel_nm is None else det_pixel_nm, "det_pixel_nm"
        )
        self.n_det = nx if n_det is None else check_int(n_det, "n_det", minimum=1)
        self.z_centre_nm = check_number(z_centre_nm, "z_centre_nm")
        self.axis_offset_px = check_number(axis_offset_px, "axis_offset_px")
        self.angles_deg = angles
        self.nz, self.ny, self.nx = nz, int(ny), nx
        self.domain_shape = (nz, self.ny, nx)
        self.range_shape = (angles.size, self.ny, self.n_det)
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
        self._fwd, self._bwd, self._n_tile_groups = tiled_formats(
            self.matrix, nz, nx, angles.size, self.n_det, self.ny, numba.get_num_threads()
        )
        self._lock = threading.Lock()
        self._work: np.ndarray | None = None
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
            raise InputError(f"{what} must have shape {shape}, got {arr.shape}")
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
        with self._lock:
            direct_kernel(*self._fwd, vol, self._workspace(), res, self.range_shape[0], self.n_det)
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
        with self._lock:
            adjoint_kernel(*self._bwd, proj, self._workspace(), res, self._n_tile_groups)
        return res

    def _workspace(self) -> np.ndarray:
        """Projections in (y block, ray, BLOCK) layout: allocated once, reused under the lock."""
        if self._work is None:
            n_blocks = -(-self.ny // BLOCK)
            self._work = np.empty((n_blocks, self.range_shape[0] * self.n_det * BLOCK), dtype=np.float32)
        return self._work

    # -- sums used by SIRT-type solvers ----------------------------------

    def row_sums(self) -> np.ndarray:
        """``A 1`` for one slice, ``(n_angles, n_det)``: path length (nm) of each ray in the slab."""
        return np.asarray(self.matrix.sum(axis=1), dtype=np.float64).reshape(self.range_shape[0], self.n_det)

    def column_sums(self) -> np.ndarray:
        """``A^T 1`` for one slice, ``(nz, nx)``: each voxel's summed weight (nm)."""
        return np.asarray(self.matrix.sum(axis=0), dtype=np.float64).reshape(self.nz, self.nx)

    def __getstate__(self) -> dict:
        # picklable (for process pools): drop the lock and the work buffer
        state = dict(self.__dict__)
        state["_lock"] = None
        state["_work"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"ParallelProjector(slab=({self.nz}, {self.nx}), ny={self.ny}, voxel={self.voxel_size_nm} nm, "
            f"{self.range_shape[0]} angles, n_det={self.n_det}, nnz={self.matrix.nnz})"
        )
