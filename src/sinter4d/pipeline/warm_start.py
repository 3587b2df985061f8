"""Warm start: a series' reconstruction begun from the previous series' volume (issue 16).

A 4D experiment is one specimen seen many times, so the volume of series
``k - 1`` is a far better start for series ``k`` than zeros. Between the two
series the specimen moves as a whole (the cluster slides on the film; each
series' alignment fixes the volume only up to a translation, docs/design.md,
"Reconstruction notes"), so the previous volume is first registered to the
current series: it is projected at the current tilts, each projection is
registered to its tilt image (:func:`~sinter4d.pipeline.align.register_pair`),
and the per-tilt shifts are fitted by the rigid translation of the volume
that explains them (:func:`register_volume`). What moves within the cluster
(necks, single cores) is left to the solver. docs/design.md ("Reconstruction notes", 5b)
gives the contract.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..operators import ParallelProjector
from .align import register_pair

if TYPE_CHECKING:
    from .chain import PreparedSeries
    from .settings import ReconstructionSettings

__all__ = ["prepared_start", "register_volume", "shift_volume"]

log = logging.getLogger(__name__)


def register_volume(
    volume: np.ndarray,
    tilt_images: np.ndarray,
    angles_deg: Sequence[float],
    *,
    voxel_size_nm: float,
    z_centre_nm: float = 0.0,
    axis_offset_px: float = 0.0,
) -> np.ndarray:
    """Rigid translation that carries ``volume`` onto the tilt series.

    ``volume`` is projected with the reconstruction's projector
    (:class:`~sinter4d.operators.ParallelProjector`, ``u = x cos θ + z sin θ``);
    each projection ``i`` is registered to tilt image ``i`` by cross-correlation,
    giving ``(s_y, s_u)_i``. A translation ``(dz, dy, dx)`` of the volume moves
    projection ``i`` by ``(dy, dx cos θ_i + dz sin θ_i)``, so ``dy`` is the
    median of ``s_y`` and ``(dx, dz)`` the least-squares fit to ``s_u``.
    The values are not rescaled: series of one run share their dose, and the
    ratio of the summed data to the summed projections is no measure of scale
    (the film's level is removed, so about half the data are negative and a
    non-negative solution projects to ~1.4× their sum; docs/validation.md,
    "Warm start of TV").

    Parameters
    ----------
    volume : (nz, ny, nx) ndarray
        The previous series' volume on the current series' slab.
    tilt_images : (n_tilt, ny, nx) ndarray
        The current series, prepared (aligned, axis-centred, film removed).
    angles_deg : (n_tilt,) sequence of float
    voxel_size_nm : float
        Voxel size = pixel size, nm.
    z_centre_nm, axis_offset_px : float, optional
        The slab's centre and the axis position, as for
        :func:`~sinter4d.pipeline.reconstruct.reconstruct`.

    Returns
    -------
    (3,) ndarray
        ``(dz, dy, dx)`` in voxels: content of ``volume`` at ``p`` belongs at
        ``p + shift_px`` (pass to :func:`shift_volume`).

    Raises
    ------
    InputError
        Shapes that do not agree (the message names both).
    """
    x0 = np.asarray(volume, dtype=np.float32)
    b = np.asarray(tilt_images, dtype=np.float32)
    angles = np.asarray(angles_deg, dtype=float).ravel()
    if x0.ndim != 3 or b.ndim != 3 or x0.shape[1:] != b.shape[1:] or angles.size != b.shape[0]:
        raise InputError(f"volume (nz, ny, nx) {x0.shape} does not fit tilt images (n_tilt, ny, nx) {b.shape} "
                         f"with {angles.size} angles")
    op = ParallelProjector((x0.shape[0], x0.shape[2]), x0.shape[1], voxel_size_nm=voxel_size_nm, angles_deg=angles,
                           n_det=b.shape[2], z_centre_nm=z_centre_nm, axis_offset_px=axis_offset_px)
    proj = op.direct(np.ascontiguousarray(x0))
    shifts = np.array([register_pair(p, image, method="xcorr", upsample_factor=10) for p, image in zip(proj, b)])
    theta = np.deg2rad(angles)
    design = np.column_stack([np.cos(theta), np.sin(theta)])
    (dx, dz), *_ = np.linalg.lstsq(design, shifts[:, 1], rcond=None)
    return np.array([dz, float(np.median(shifts[:, 0])), dx])


def shift_volume(volume: np.ndarray, shift_px: Sequence[float]) -> np.ndarray:
    """``volume`` translated by ``shift_px`` ``(dz, dy, dx)`` voxels, zeros let in at the edges.

    Linear interpolation (``scipy.ndimage.shift``, order 1), so a non-negative
    volume stays non-negative. Returns a new float32 array.
    """
    v = np.asarray(volume, dtype=np.float32)
    s = np.asarray(shift_px, dtype=float).ravel()
    if v.ndim != 3 or s.size != 3:
        raise InputError(f"volume must be (nz, ny, nx) and shift_px (dz, dy, dx), got {v.shape} and {s.size} values")
    if not np.any(s):
        return v.copy()
    return ndimage.shift(v, s, order=1, mode="constant", cval=0.0, prefilter=False).astype(np.float32, copy=False)


def prepared_start(
    prep: PreparedSeries, previous: np.ndarray | None, settings: ReconstructionSettings
) -> tuple[np.ndarray | None, dict]:
    """The warm start of a prepared series, and the attributes that record it.

    Parameters
    ----------
    prep : PreparedSeries
        The series (:func:`~sinter4d.pipeline.chain.prepare_tilt_series`).
    previous : (nz, ny, nx) ndarray or None
        The previous series' volume; None (the first series) gives a cold start.
    settings : ReconstructionSettings
        The slab (its centre) is read.

    Returns
    -------
    initial : (nz, ny, nx) float32 ndarray or None
        ``previous`` translated onto the series (:func:`register_volume`,
        :func:`shift_volume`; a new array); None when ``previous`` is None.
    attrs : dict
        ``warm_start_shift_px`` (dz, dy, dx) and ``seconds_warm_start``, for
        the reconstruction file (empty on a cold start).

    Raises
    ------
    InputError
        ``previous`` is not of the slab's shape ``(nz, ny, nx)``.
    """
    if previous is None:
        return None, {}
    _, ny, nx = prep.signal.shape
    shape = (settings.slab_voxels(prep.pixel_size_nm), ny, nx)
    if np.shape(previous) != shape:
        raise InputError(f"the previous volume is {np.shape(previous)}, this series' slab is {shape}: "
                         "warm_start needs series of one grid")
    t0 = time.perf_counter()
    shift = register_volume(previous, prep.signal, prep.angles_deg, voxel_size_nm=prep.pixel_size_nm,
                            z_centre_nm=settings.slab_z_centre_nm)
    log.info("warm start: the previous volume moved by (dz, dy, dx) = (%.2f, %.2f, %.2f) px", *shift)
    initial = shift_volume(previous, shift)
    return initial, {"warm_start_shift_px": shift, "seconds_warm_start": round(time.perf_counter() - t0, 3)}
