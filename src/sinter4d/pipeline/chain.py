"""The paper's image-processing chain (Fig. 4a) on one tilt series.

denoise (BM3D) -> align (adjacent tilts) -> tilt axis -> background ->
reconstruct (TV) -> binarise (Otsu + opening). A Dataset in the tilt-series
layout goes in, a Dataset in the reconstruction layout of docs/design.md
comes out; no file is touched. Every stage reads its settings from one
:class:`~sinter4d.pipeline.settings.PipelineSpec`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..errors import InputError
from .align import align_translations, apply_shifts
from .axis_direction import choose_axis_rotation, is_quarter_turn, rotate_to_axis
from .binarize import threshold_binary
from .denoise import DEFAULT_JOBS, denoise_bm3d, estimate_sigma_psd
from .reconstruct import reconstruct
from .series import check_tilt_series, detector_noise, reference_noise_level, subtract_background
from .settings import PipelineSpec
from .support import box_bounds, specimen_box, specimen_rows
from .tilt_axis import center_tilt_axis, find_tilt_axis
from .tiltalign import align_to_particles, warp_views
from .warm_start import prepared_start

log = logging.getLogger(__name__)

#: Reconstruction attributes copied from the tilt series when it has them.
CARRIED_ATTRS = ("pt_time_s", "temperature_C", "dose_e_per_nm2", "time_index", "run")


@dataclass(frozen=True)
class PreparedSeries:
    """A tilt series made ready for reconstruction (denoised, aligned, axis-centred).

    Attributes
    ----------
    signal : (n, ny, nx) float32 ndarray
        Denoised, aligned images with the tilt axis on the centre column and
        the film's level removed.
    angles_deg : (n,) ndarray
    pixel_size_nm : float
    shifts_px : (n, 2) ndarray
        Drift found, ``(y, x)`` per image (content displacement, px).
    axis_offset_px : float
        Tilt axis found, px to +x of the centre column.
    sigma_psd : float
        BM3D noise level chosen (NaN when not denoised); BM3D ran at
        ``denoise_strength`` times it.
    seconds : dict
        Wall time of each stage.
    axis_rotation_deg : float
        In-plane direction of the tilt axis in the input images (deg from
        +y towards +x); the images were turned to lay it along y.
    axis_rotation_source : str
        ``'file'``, ``'found'`` or ``'setting'``
        (:func:`~sinter4d.pipeline.axis_direction.choose_axis_rotation`).
    axis_rotations_deg : (n,) ndarray or None
        The direction in each input image found by the tilt alignment to
        features (``axis_refine = 'features'``), None without it; its mean is
        then ``axis_rotation_deg``.
    align_box : (int, int, int, int) or None
        ``(row_start, row_stop, column_start, column_stop)`` of the turned
        images on which the drift was registered (``support_margin_nm``),
        None for the whole images.
    denoise_box : (int, int, int, int) or None
        The same of the input images for the rectangle BM3D ran on
        (``denoise_margin_nm``), None for the whole images.
    """

    signal: np.ndarray
    angles_deg: np.ndarray
    pixel_size_nm: float
    shifts_px: np.ndarray
    axis_offset_px: float
    sigma_psd: float
    seconds: dict
    axis_rotation_deg: float = 0.0
    axis_rotation_source: str = "file"
    axis_rotations_deg: np.ndarray | None = None
    align_box: tuple[int, int, int, int] | None = None
    denoise_box: tuple[int, int, int, int] | None = None


def prepare_tilt_series(
    ds: xr.Dataset,
    settings: PipelineSpec = PipelineSpec(),
    *,
    n_jobs: int = DEFAULT_JOBS,
    source: str = "tilt series",
) -> PreparedSeries:
    """Denoise, turn, align and axis-centre a tilt series (the stages before reconstruction).

    The in-plane direction of the tilt axis is chosen first: the series'
    ``tilt_axis_rotation_deg``, the setting ``axis_rotation``, or the
    direction found (:func:`~sinter4d.pipeline.axis_direction.choose_axis_rotation`).
    The images are denoised on the detector's grid, where the rows are scan
    lines (the noise model's frame), and then turned so that the axis lies
    along y (:func:`~sinter4d.pipeline.axis_direction.rotate_to_axis`; exact
    for multiples of 90 deg, no rotation at 0).

    Parameters
    ----------
    ds : xarray.Dataset
        A tilt series (docs/design.md, "Tilt series file"): ``counts``
        (tilt, y, x) in any linear detector unit, ``tilt_angle`` (deg),
        ``pixel_size_nm``; an optional ``reference`` (y, x) tunes the
        denoiser (the paper's protocol: the BM3D noise level maximising PSNR
        against it).
    settings : PipelineSpec, optional
        The chain's settings (the paper's by default); the denoising and
        alignment ones are read. Without ``sigma_psd`` the BM3D level is
        chosen against ``reference`` when the series has one, else estimated
        from its middle image (with ``psd = 'detector'``: measured against
        ``reference``, which it requires, :func:`detector_noise`); BM3D then runs at ``denoise_strength`` times
        it (a level below the PSNR optimum smooths a neck along the tilt
        axis less).
    n_jobs : int, optional
        Threads for BM3D (-1: all cores).
    source : str, optional
        Name of the input in error messages.

    Returns
    -------
    PreparedSeries
    """
    images, angles, pixel = check_tilt_series(ds, source=source)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        axis_rotation, axis_source = choose_axis_rotation(images, angles, settings,
                                                          recorded=ds.attrs.get("tilt_axis_rotation_deg"))
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
    seconds["axis_direction"] = time.perf_counter() - t0

    # denoised on the detector's own grid (rows = scan lines, the noise model's frame), then turned
    t0 = time.perf_counter()
    sigma = np.nan if settings.sigma_psd is None else float(settings.sigma_psd)
    denoise_box = None
    if settings.denoise:
        noise = detector_noise(ds, images, angles, source=source) if settings.psd == "detector" else None
        if np.isnan(sigma) and ("reference" in ds or noise is not None):
            sigma = reference_noise_level(ds, images, angles, settings, n_jobs=n_jobs)
        elif np.isnan(sigma):
            sigma = estimate_sigma_psd(images[len(images) // 2], settings)
        box = _denoise_box(images, pixel, settings)
        images = denoise_bm3d(
            images, settings, sigma_psd=settings.denoise_strength * sigma, n_jobs=n_jobs, noise=noise, box=box
        ).astype(np.float32, copy=False)
        denoise_box = None if box is None else box_bounds(*box)
    seconds["denoise"] = time.perf_counter() - t0
    # the refinement re-warps the denoised images (a quarter turn is exact: its result will do)
    refine = settings.axis_refine == "features"
    quarter = is_quarter_turn(axis_rotation)
    denoised = images if refine and not quarter else None
    if axis_rotation != 0.0:
        t0 = time.perf_counter()
        images = rotate_to_axis(images, axis_rotation)
        seconds["axis_direction"] += time.perf_counter() - t0
    if refine and quarter:
        denoised = images

    # each stage's stack replaces the one before, so at most two (three when refining) are held at once
    t0 = time.perf_counter()
    shifts, align_box = _drift(images, angles, pixel, settings)
    images = apply_shifts(images, -shifts)
    seconds["align"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    offset = float(find_tilt_axis(images, angles, settings))
    images = center_tilt_axis(images, offset).astype(np.float32, copy=False)
    seconds["tilt_axis"] = time.perf_counter() - t0
    rotations = None
    if denoised is not None:
        t0 = time.perf_counter()
        left = 0.0 if quarter else axis_rotation  # the turn still to apply to ``denoised``
        images, rotations, shifts = _refine_to_features(denoised, images, angles, pixel, axis_rotation, left, shifts,
                                                        offset, settings, source)
        axis_rotation = float(np.mean(rotations))
        seconds["tilt_align"] = time.perf_counter() - t0
    signal = subtract_background(images, out=images)
    return PreparedSeries(signal, angles, pixel, shifts, offset, sigma, seconds, axis_rotation, axis_source, rotations,
                          align_box, denoise_box)


def _denoise_box(images: np.ndarray, pixel: float, settings: PipelineSpec) -> tuple[slice, slice] | None:
    """The rectangle of the raw images BM3D runs on (``denoise_margin_nm``), None for every pixel.

    :func:`~sinter4d.pipeline.support.specimen_box` of the raw images with the
    margin, their profiles smoothed by half the margin (docs/design.md,
    "Reconstruction notes" 1).
    """
    if settings.denoise_margin_nm is None:
        return None
    margin = settings.denoise_margin_nm / pixel
    rows, cols = specimen_box(images, margin_px=margin, smooth_px=margin / 2.0)
    log.info("denoise: BM3D on rows %d..%d, columns %d..%d of the raw images", rows.start, rows.stop - 1,
             cols.start, cols.stop - 1)
    return rows, cols


def reconstructed_rows(prep: PreparedSeries, settings: PipelineSpec = PipelineSpec()) -> tuple[int, int] | None:
    """The rows (slices along the tilt axis) a series reconstructs: ``(start, stop)``, or None for every row.

    With ``support_margin_nm``, those that hold the specimen widened by the
    margin (:func:`~sinter4d.pipeline.support.specimen_rows`).
    """
    if settings.support_margin_nm is None:
        return None
    return specimen_rows(prep.signal, margin_px=settings.support_margin_nm / prep.pixel_size_nm)


#: Share of the specimen's box added on each side for the drift registration: room for the drift
#: itself, and film under the outer eighth of each side that ``xcorr``'s Tukey window tapers.
ALIGN_PAD_FRACTION = 0.15


def _drift(images: np.ndarray, angles: np.ndarray, pixel: float,
           settings: PipelineSpec) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """The series' drift (:func:`~sinter4d.pipeline.align.align_translations`) and the box it was registered on.

    With ``support_margin_nm`` the registrations run on the rectangle where
    the specimen stands out (:func:`~sinter4d.pipeline.support.specimen_box`
    with the margin, padded by :data:`ALIGN_PAD_FRACTION` of its size on each
    side) instead of a field that is mostly film: their cost is per pixel
    (docs/design.md, "Reconstruction notes" 5c).
    """
    if settings.support_margin_nm is None:
        return align_translations(images, angles, settings), None
    rows, cols = specimen_box(images, margin_px=settings.support_margin_nm / pixel)
    rows, cols = _padded(rows, images.shape[1]), _padded(cols, images.shape[2])
    log.info("support: the drift registered on rows %d..%d, columns %d..%d", rows.start, rows.stop - 1,
             cols.start, cols.stop - 1)
    box = np.ascontiguousarray(images[:, rows, cols])
    shifts = align_translations(box, angles, settings, centre_x=(images.shape[2] - 1) / 2.0 - cols.start)
    return shifts, box_bounds(rows, cols)


def _padded(span: slice, length: int) -> slice:
    """``span`` widened by :data:`ALIGN_PAD_FRACTION` of its length on each side, clipped to ``[0, length)``."""
    pad = int(np.ceil(ALIGN_PAD_FRACTION * (span.stop - span.start)))
    return slice(max(0, span.start - pad), min(length, span.stop + pad))


def _refine_to_features(denoised, prepared, angles, pixel, axis_rotation, base, shifts, offset, settings, source):
    """The prepared images re-made from the denoised ones with the rotation and shift per image of the tilt alignment.

    ``prepared`` is ``denoised`` turned by ``axis_rotation`` (``denoised`` is
    passed already turned when that is a quarter turn, an exact ``rot90``; ``base``
    is the turn still to apply to it: 0 then, else ``axis_rotation``),
    shifted by ``-shifts`` and by ``-offset`` along x: pixel ``q`` of it reads
    ``denoised`` at ``R(a) (q + s_i + (0, offset))``. The fit
    (:func:`~sinter4d.pipeline.tiltalign.align_to_particles`) puts the model's
    point ``w`` at ``R(rho_i) w + t_i`` of ``prepared``, so the corrected image
    reads ``denoised`` at ``R(a + rho_i) w + R(a) (t_i + s_i + (0, offset))``:
    one resampling (:func:`~sinter4d.pipeline.tiltalign.warp_views`).

    Returns
    -------
    images : (n, ny, nx) float32 ndarray
    rotations : (n,) ndarray
        The tilt axis's direction in each input image (deg).
    shifts : (n, 2) ndarray
        ``t_i + shifts``: what the image is read shifted by in the turned frame, besides the offset (px).
    """
    lo, hi = (r / pixel for r in settings.feature_radius_nm)
    try:
        fit = align_to_particles(prepared, angles, radius_px=(lo, hi))
    except InputError as exc:
        raise InputError(f"{source}: axis_refine = 'features': {exc}") from None
    a = np.deg2rad(base)
    turn = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = fit.shifts_px + shifts
    images = warp_views(denoised, base + fit.rotation_deg, (moved + np.array([0.0, offset])) @ turn.T)
    return images.astype(np.float32, copy=False), axis_rotation + fit.rotation_deg, moved


def process_tilt_series(
    ds: xr.Dataset,
    settings: PipelineSpec = PipelineSpec(),
    *,
    n_jobs: int = DEFAULT_JOBS,
    callbacks: tuple = (),
    source: str = "tilt series",
    previous: np.ndarray | None = None,
    prepared: PreparedSeries | None = None,
) -> xr.Dataset:
    """Reconstruct and binarise one tilt series, as the paper's Fig. 4a.

    Runs :func:`prepare_tilt_series`, then the reconstruction of the slab and
    Otsu binarisation with an opening (:func:`reconstruct_and_binarize`).

    Parameters
    ----------
    ds : xarray.Dataset
        The tilt series.
    settings : PipelineSpec, optional
        The chain's settings (the paper's by default).
    n_jobs : int, optional
        Threads for BM3D (-1: all cores).
    callbacks : tuple, optional
        Callbacks of the reconstruction algorithm (e.g. a progress bar).
    source : str, optional
        Name of the input in error messages.
    previous : (nz, ny, nx) ndarray, optional
        The previous series' volume on this series' slab. With ``warm_start``
        the reconstruction starts from it, registered to this series, and runs
        ``warm_iterations`` (:func:`~sinter4d.pipeline.warm_start.prepared_start`);
        ignored otherwise.
    prepared : PreparedSeries, optional
        ``ds`` already prepared with these settings (e.g. in another
        process); :func:`prepare_tilt_series` is then skipped.

    Returns
    -------
    xarray.Dataset
        ``volume`` (z, y, x) float32 and ``binary`` (z, y, x) uint8 on the
        tilt series' y/x grid turned so that the tilt axis lies along y (at x = 0); ``shift_y``,
        ``shift_x`` (tilt, px) found by the alignment; the settings as
        attributes (:data:`~sinter4d.pipeline.settings.RECON_ATTRS`, with
        ``denoise_sigma_psd`` the level chosen), ``axis_offset_px``,
        ``tilt_axis_rotation_deg`` and ``tilt_axis_rotation_source`` (the in-plane
        direction used and where it came from) and the seconds of each stage.
    """
    prep = prepared if prepared is not None else prepare_tilt_series(ds, settings, n_jobs=n_jobs, source=source)
    initial, warm = prepared_start(prep, previous, settings) if settings.warm_start else (None, {})
    volume, binary, seconds = reconstruct_and_binarize(prep, settings, callbacks=callbacks, initial=initial)
    out = recon_dataset(ds, prep, volume, binary, settings, seconds)
    out.attrs.update(warm)
    return out


def recon_dataset(
    ds: xr.Dataset, prep: PreparedSeries, volume: np.ndarray, binary: np.ndarray, settings: PipelineSpec,
    seconds: dict,
) -> xr.Dataset:
    """The reconstruction Dataset of a series (docs/design.md, "Reconstruction file").

    Parameters
    ----------
    ds : xarray.Dataset
        The tilt series (its :data:`CARRIED_ATTRS` are copied).
    prep : PreparedSeries
        What :func:`prepare_tilt_series` made of it.
    volume, binary : (nz, ny, nx) ndarray
        The reconstruction and its binary (:func:`reconstruct_prepared`,
        :func:`binarize_volume`).
    settings : PipelineSpec
        The settings they were made with (recorded as attributes).
    seconds : dict
        Wall time of the reconstruction and binarisation stages.

    Returns
    -------
    xarray.Dataset
        See :func:`process_tilt_series`.
    """
    pixel = prep.pixel_size_nm
    nz = volume.shape[0]
    z = (np.arange(nz) - (nz - 1) / 2) * pixel + settings.slab_z_centre_nm
    out = xr.Dataset(
        {
            "volume": (("z", "y", "x"), volume, {"units": "1", "long_name": "reconstructed HAADF scattering density"}),
            "binary": (("z", "y", "x"), binary, {"units": "1", "long_name": "binarised volume (Otsu + opening)"}),
            "shift_y": (("tilt",), prep.shifts_px[:, 0], {"units": "px", "long_name": "drift found along y (content displacement)"}),
            "shift_x": (("tilt",), prep.shifts_px[:, 1], {"units": "px", "long_name": "drift found along x (content displacement)"}),
            **({} if prep.axis_rotations_deg is None else {"axis_rotation": (("tilt",), prep.axis_rotations_deg, {
                "units": "degree", "long_name": "in-plane direction of the tilt axis in each image (from +y towards +x)"})}),
        },
        coords={
            "z": ("z", z, {"units": "nm", "long_name": "height above the tilt axis"}),
            "y": ("y", _centred(volume.shape[1], pixel), {"units": "nm", "long_name": "position along the tilt axis"}),
            "x": ("x", _centred(volume.shape[2], pixel), {"units": "nm", "long_name": "position across the tilt axis"}),
            "tilt_angle": ("tilt", prep.angles_deg, {"units": "degree", "long_name": "tilt angle"}),
        },
        attrs={
            "pixel_size_nm": pixel,
            "axis_offset_px": prep.axis_offset_px,
            "tilt_axis_rotation_deg": prep.axis_rotation_deg,
            "tilt_axis_rotation_source": prep.axis_rotation_source,
            "method": settings.method,
            "iterations": int(settings.iterations),
            "warm_start": int(settings.warm_start),
            "warm_iterations": int(settings.warm_iterations),
            "denoise": int(settings.denoise),
            "denoise_psd": settings.psd,
            "denoise_profile": settings.bm3d_profile,
            "denoise_stages": settings.bm3d_stages,
            "denoise_sigma_psd": prep.sigma_psd,
            "denoise_strength": float(settings.denoise_strength),
            **({} if settings.denoise_margin_nm is None else {"denoise_margin_nm": float(settings.denoise_margin_nm)}),
            **({} if prep.denoise_box is None else {"denoise_box": np.array(prep.denoise_box, dtype=np.int64)}),
            "align_method": settings.align_method,
            "axis_refine": settings.axis_refine,
            **({} if settings.support_margin_nm is None else {"support_margin_nm": float(settings.support_margin_nm)}),
            "support_rows": np.array(reconstructed_rows(prep, settings) or (0, volume.shape[1]), dtype=np.int64),
            **({} if prep.align_box is None else {"align_box": np.array(prep.align_box, dtype=np.int64)}),
            "binarize_radius_nm": float(settings.binarize_radius_nm),
            "binarize_level": float(settings.binarize_level),
            **{f"seconds_{k}": round(v, 3) for k, v in {**prep.seconds, **seconds}.items()},
        },
    )
    for key in CARRIED_ATTRS:
        if key in ds.attrs:
            out.attrs[key] = ds.attrs[key]
    return out


def reconstruct_and_binarize(
    prep: PreparedSeries, settings: PipelineSpec = PipelineSpec(), *, callbacks: tuple = (),
    initial: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Reconstruct the slab of a prepared series and binarise it.

    Parameters
    ----------
    prep : PreparedSeries
        From :func:`prepare_tilt_series`.
    settings : PipelineSpec, optional
        The reconstruction and binarisation settings are read: the slab
        (``slab_thickness_nm`` thick about ``slab_z_centre_nm``; the
        specimen's height on the film bounds it), the algorithm and the
        radius of the opening after Otsu's threshold and the threshold's scale.
    callbacks : tuple, optional
        Callbacks of the reconstruction algorithm (e.g. a progress bar).
    initial : (nz, ny, nx) ndarray, optional
        A warm start (:func:`~sinter4d.pipeline.warm_start.prepared_start`):
        the solver starts from it and runs ``warm_iterations``, not ``iterations``.

    Returns
    -------
    volume : (nz, ny, nx) float32 ndarray
    binary : (nz, ny, nx) uint8 ndarray
    seconds : dict
        Wall time of the two stages.
    """
    t0 = time.perf_counter()
    volume = reconstruct_prepared(prep, settings, callbacks=callbacks, initial=initial)
    t1 = time.perf_counter()
    binary = binarize_volume(volume, settings, voxel_size_nm=prep.pixel_size_nm, rows=reconstructed_rows(prep, settings))
    return volume, binary, {"reconstruct": t1 - t0, "binarize": time.perf_counter() - t1}


def reconstruct_prepared(prep: PreparedSeries, settings: PipelineSpec = PipelineSpec(), *,
                         callbacks: tuple = (), initial: np.ndarray | None = None) -> np.ndarray:
    """The slab of a prepared series, reconstructed with the settings' algorithm: (nz, ny, nx) float32.

    From ``initial`` (a warm start) the solver runs ``warm_iterations``, else ``iterations``.
    Only the :func:`reconstructed_rows` are reconstructed; the others are 0.
    """
    pixel = prep.pixel_size_nm
    rows = reconstructed_rows(prep, settings)
    span = slice(None) if rows is None else slice(*rows)
    if rows is not None:
        log.info("support: rows %d..%d of %d hold the specimen", rows[0], rows[1] - 1, prep.signal.shape[1])
    part = reconstruct(
        np.ascontiguousarray(prep.signal[:, span]),
        prep.angles_deg,
        method=settings.method,
        iterations=settings.iterations_for(initial is not None),
        initial=None if initial is None else np.ascontiguousarray(initial[:, span]),
        slab_nz=settings.slab_voxels(pixel),
        voxel_size_nm=pixel,
        z_centre_nm=settings.slab_z_centre_nm,
        tv_weight=settings.tv_weight,
        tol=settings.tol,
        callbacks=callbacks,
    ).astype(np.float32, copy=False)
    if rows is None:
        return part
    volume = np.zeros((part.shape[0], prep.signal.shape[1], part.shape[2]), np.float32)
    volume[:, span] = part
    return volume


def binarize_volume(volume: np.ndarray, settings: PipelineSpec = PipelineSpec(), *,
                    voxel_size_nm: float, rows: tuple[int, int] | None = None) -> np.ndarray:
    """Otsu's threshold times ``binarize_level``, then the opening of ``binarize_radius_nm``: (nz, ny, nx) uint8.

    With ``rows`` (``(start, stop)`` along y, the rows reconstructed) only
    those are binarised, so the empty rest does not weigh in Otsu's
    threshold; the rest is 0.
    """
    if rows is None:
        return threshold_binary(
            volume, method="otsu", radius_nm=settings.binarize_radius_nm, voxel_size_nm=voxel_size_nm,
            level=settings.binarize_level,
        ).astype(np.uint8, copy=False)
    binary = np.zeros(volume.shape, np.uint8)
    span = slice(*rows)
    binary[:, span] = binarize_volume(volume[:, span], settings, voxel_size_nm=voxel_size_nm)
    return binary


def _centred(n: int, pixel: float) -> np.ndarray:
    return (np.arange(n) - (n - 1) / 2) * pixel
