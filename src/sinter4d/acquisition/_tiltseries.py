"""Simulated HAADF-STEM tilt series: projection, dose, drift, axis offset, Poisson counts.

Conventions (shared with the pipeline, which must undo them):

* Geometry is that of :class:`~sinter4d.operators.ParallelProjector`: the
  tilt axis is parallel to y, and at tilt theta a point ``(z, x)`` lands at
  ``u = x cos(theta) + z sin(theta)``.
* A shift ``(dy, dx)`` in pixels says where the image content *moved to*:
  the recorded image is ``I(y - dy, x - dx)`` of the unshifted one, and
  shifting the recorded image by ``(-dy, -dx)`` restores it.
* The tilt axis lies ``axis_offset_px`` pixels to +x of the image centre
  (the centre of the x axis, x = 0 nm): every image is shifted by
  ``axis_offset_px`` along x on top of the drift.
* The stage drift is a random walk over the images in acquisition order
  (the order of ``angles_deg``) with independent normal steps of standard
  deviation ``drift_sd_px`` in y and x, anchored to 0 at the image nearest
  0 deg. ``true_shift_y`` / ``true_shift_x`` store the drift only.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from scipy import ndimage

from ..checks import check_int, check_positive
from ..errors import InputError
from ..operators.projector import ParallelProjector
from ..phantom import Grid
from ._detector import detector_attrs, detector_readout
from ._dose import electrons_per_pixel
from ._haadf import HaadfModel
from ._stage import StageMotion
from .settings import ScanSettings

__all__ = [
    "BLOCK_VOXELS",
    "bin_tilt_series",
    "drift_random_walk",
    "project_cu_thickness",
    "shift_image",
    "simulate_tilt_series",
]


def _bin_sum(a: np.ndarray, factor: int) -> np.ndarray:
    """Sum ``factor × factor`` blocks over the last two axes."""
    if factor == 1:
        return a
    *lead, ny, nx = a.shape
    return a.reshape(*lead, ny // factor, factor, nx // factor, factor).sum(axis=(-3, -1))


def drift_random_walk(n_images: int, drift_sd_px: float, anchor: int, rng: np.random.Generator) -> np.ndarray:
    """Stage drift of each image (px), ``(n_images, 2)`` as ``(dy, dx)``.

    A random walk over consecutive images with normal steps of s.d.
    ``drift_sd_px`` per axis, shifted so that image ``anchor`` is at 0.
    """
    steps = np.zeros((n_images - 1, 2))
    if drift_sd_px > 0:
        steps = rng.normal(0.0, drift_sd_px, size=steps.shape)
    walk = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    return walk - walk[anchor]


def shift_image(image: np.ndarray, shift_px, *, order: int = 3) -> np.ndarray:
    """Move an image's content by ``shift_px = (dy, dx)`` pixels (sub-pixel, cubic spline).

    Content entering from outside the field is 0; values stay >= 0 when the
    input is >= 0 (the spline's small undershoots are clipped).

    Parameters
    ----------
    image : (ny, nx) ndarray
    shift_px : (2,) array_like
        Where the content moves to, in pixels (+y, +x).
    order : int, optional
        Spline order (3 = cubic).

    Returns
    -------
    (ny, nx) ndarray
        Same dtype as ``image``.
    """
    dy, dx = (float(s) for s in shift_px)
    if dy == 0.0 and dx == 0.0:
        return image.copy()
    out = ndimage.shift(image, (dy, dx), order=order, mode="grid-constant", cval=0.0, prefilter=True)
    if image.min() >= 0:
        np.clip(out, 0, None, out=out)
    return out


def _projector_for(grid: Grid, angles: np.ndarray, projector: ParallelProjector | None) -> ParallelProjector:
    if projector is None:
        return ParallelProjector.from_grid(grid, angles)
    problems = []
    if tuple(projector.domain_shape) != tuple(grid.shape):
        problems.append(f"volume shape {projector.domain_shape} != grid {grid.shape}")
    if projector.angles_deg.shape != angles.shape or not np.allclose(projector.angles_deg, angles, atol=1e-9):
        problems.append("tilt angles differ")
    if not math.isclose(projector.voxel_size_nm, grid.voxel_size_nm, rel_tol=1e-9):
        problems.append(f"voxel size {projector.voxel_size_nm} != {grid.voxel_size_nm}")
    if not math.isclose(projector.det_pixel_nm, grid.voxel_size_nm, rel_tol=1e-9) or projector.n_det != grid.shape[2]:
        problems.append("detector is not one pixel per voxel across the grid")
    if not math.isclose(projector.z_centre_nm, grid.z_centre_nm, abs_tol=1e-9):
        problems.append(f"z_centre_nm {projector.z_centre_nm} != {grid.z_centre_nm}")
    if projector.axis_offset_px != 0.0:
        problems.append("the projector's axis_offset_px must be 0 (the offset is applied as an image shift)")
    if problems:
        raise InputError("projector does not match the grid and angles: " + "; ".join(problems))
    return projector


BLOCK_VOXELS = 2**27
"""Most voxels of the projection grid drawn and projected at once (~0.5 GB per float32 copy):
a larger grid goes block of rows by block of rows (:func:`project_cu_thickness`)."""


def _block_rows(grid: Grid, max_voxels: int) -> int:
    nz, ny, nx = grid.shape
    return max(1, min(ny, int(max_voxels) // (nz * nx)))


def project_cu_thickness(
    volume,
    grid: Grid,
    angles_deg,
    probe=None,
    *,
    projector: ParallelProjector | None = None,
    max_voxels: int = BLOCK_VOXELS,
) -> tuple[np.ndarray, np.ndarray]:
    """Projected Cu thickness (nm) of a volume, by blocks of rows when it is large.

    The tilt axis runs along y, so each row of the grid (a slice at one y)
    projects on its own: a grid of more than ``max_voxels`` voxels is drawn
    and projected in blocks of rows and never held whole. With a probe the
    blocks carry :meth:`~._probe.Probe.halo_rows` rows of their neighbours
    through the blur and share the whole volume's depth nodes (found by a
    first pass over the blocks), so the images equal those of the whole
    volume projected at once.

    Parameters
    ----------
    volume : (nz, ny, nx) ndarray or callable
        Cu volume fraction on ``grid``, or ``volume(start, stop)`` returning
        rows ``start:stop`` of it (``(nz, stop - start, nx)``), called once
        per block (twice with a broadening probe), so that only a block is
        ever drawn.
    grid : Grid
    angles_deg : (n_angles,) array_like
        The tilts the beam sees (the stage's true ones).
    probe : Probe, optional
        None: an ideal point probe.
    projector : ParallelProjector, optional
        A projector for ``grid`` and ``angles_deg``, used when the grid is
        projected whole.
    max_voxels : int, optional
        Most voxels of a block (default :data:`BLOCK_VOXELS`).

    Returns
    -------
    thickness : (n_angles, ny, nx) float32 ndarray
    deepest_nm : (n_angles,) ndarray
        Depth of the last probe node per tilt (nm); zeros without broadening.
    """
    nz, ny, nx = grid.shape
    angles = np.asarray(angles_deg, dtype=float)
    draw = volume if callable(volume) else (lambda a, b: np.asarray(volume)[:, a:b])
    block = _block_rows(grid, check_int(max_voxels, "max_voxels", minimum=1))
    if block >= ny:  # the whole grid at once
        op = projector if projector is not None else ParallelProjector.from_grid(grid, angles)
        vol = _checked(draw(0, ny), (nz, ny, nx))
        if probe is None:
            return op.direct(vol), np.zeros(angles.size)
        return probe.project(vol, op)
    starts = range(0, ny, block)
    broadening = probe is not None and probe.broadening
    deepest = np.zeros(angles.size)
    if broadening:
        for a in starts:
            b = min(ny, a + block)
            block_cu = _checked(draw(a, b), (nz, b - a, nx))
            deepest = np.maximum(deepest, probe.deepest_nm(block_cu, grid.voxel_size_nm, angles))
    halo = 0 if probe is None else min(ny, probe.halo_rows(deepest, grid.voxel_size_nm))
    op = ParallelProjector.from_grid(grid.rows(0, min(ny, block + 2 * halo)), angles)
    out = np.empty((angles.size, ny, nx), dtype=np.float32)
    for a in starts:
        b = min(ny, a + block)
        lo, hi = max(0, a - halo), min(ny, b + halo)
        vol = _checked(draw(lo, hi), (nz, hi - lo, nx))
        if broadening:
            t, _ = probe.project(vol, op, deepest_nm=deepest)
        else:
            padded = np.zeros(op.domain_shape, dtype=np.float32)
            padded[:, : hi - lo] = vol
            t = op.direct(padded)[:, : hi - lo]
            if probe is not None:
                t = probe.blur(np.ascontiguousarray(t), grid.voxel_size_nm)
        out[:, a:b] = t[:, a - lo : b - lo]
    return out, deepest


def _checked(vol, shape) -> np.ndarray:
    vol = np.asarray(vol, dtype=np.float32)
    if vol.shape != tuple(shape):
        raise InputError(f"the volume's rows have shape {vol.shape}, expected {tuple(shape)}")
    if not np.isfinite(vol).all():
        raise InputError("core/shell volume fractions hold NaN or infinite values")
    return vol


def simulate_tilt_series(
    core,
    shell: np.ndarray | None,
    grid: Grid,
    scan: ScanSettings,
    *,
    film_thickness_nm: float = 0.0,
    rng: np.random.Generator | int | None = None,
    haadf: HaadfModel | None = None,
    projector: ParallelProjector | None = None,
    pt_time_s: float = float("nan"),
    temperature_C: float = float("nan"),
    store_expected: bool = False,
    max_voxels: int = BLOCK_VOXELS,
) -> xr.Dataset:
    """Simulate one HAADF-STEM tilt series of a core–shell phantom.

    The Cu thickness is projected at the grid's voxel size
    (:class:`~sinter4d.operators.ParallelProjector`), each projection is
    moved by its drift plus the tilt-axis offset (sub-pixel spline shift),
    turned into expected counts with the HAADF model (the film added
    analytically as ``thickness / cos(theta)``), summed over
    ``scan.bin_factor²`` voxels into output pixels and drawn as Poisson
    counts, or read out through ``scan.detector`` when it is enabled
    (efficiency, gain, dark level, read and row noise, integer type; each
    reference frame read out on its own). See the module docstring for the
    shift and drift conventions.

    Parameters
    ----------
    core : (nz, ny, nx) ndarray or callable
        Volume fraction of NP-150 core Cu in each voxel of ``grid`` (0..1);
        or ``core(start, stop)`` returning rows ``start:stop`` of the Cu
        volume fraction (core and shell), drawn block by block on a grid of
        more than ``max_voxels`` voxels (:func:`project_cu_thickness`).
    shell : (nz, ny, nx) ndarray or None
        Volume fraction of NP-10 shell Cu (its fill fraction); None for none
        (and with a callable ``core``).
    grid : Grid
        The voxel grid of ``core`` and ``shell`` (tilt axis through its middle).
    scan : ScanSettings
        The series: tilts, output pixel (``grid.voxel_size_nm ×
        bin_factor``), probe, drift, tilt-axis offset, reference frames.
        When ``scan.reference_tilt_deg`` is one of the tilts the reference
        frames share that image's expected counts (drift included), so the
        raw image and the reference align; otherwise it is projected apart,
        without drift. ``scan.stage`` adds the stage's errors when enabled
        (:mod:`._stage`: axis rotation, tilt-angle errors, rotating drift,
        reference drift; docs/design.md, "Acquisition").
    film_thickness_nm : float, optional
        Thickness of the Si3N4 support film (nm), not voxelised.
    rng : numpy.random.Generator or int or None
        Random generator or seed (None: fresh entropy).
    haadf : HaadfModel, optional
        Signal model (default :class:`HaadfModel()`).
    projector : ParallelProjector, optional
        A projector built for this grid and these angles (with
        ``axis_offset_px = 0``), reused across time steps.
    pt_time_s, temperature_C : float, optional
        Processing time (s) and temperature (°C) stored as attributes.
    store_expected : bool, optional
        Also store the noiseless ``expected_counts`` (tilt, y, x).
    max_voxels : int, optional
        Most voxels projected at once (:data:`BLOCK_VOXELS`).

    Returns
    -------
    xarray.Dataset
        ``counts`` (tilt, y, x) float32 Poisson counts; coordinates
        ``tilt_angle`` (deg), ``y``, ``x`` (nm, pixel centres, 0 at the
        image centre); ``reference`` (y, x); ``true_shift_y``,
        ``true_shift_x`` (tilt, px: the drift); attributes ``pixel_size_nm``,
        ``dose_e_per_nm2`` (whole series), ``probe_current_pA``,
        ``dwell_time_ns``, ``pt_time_s``, ``temperature_C``,
        ``true_axis_offset_px``, ``tilt_axis_rotation_deg`` (0: the axis runs
        along y), ``electrons_per_pixel_per_frame``,
        ``film_thickness_nm`` and the HAADF parameters; with the detector
        on, ``counts`` and ``reference`` are in detector units and the
        attributes add ``detector_*`` (its truth) and the estimated
        ``dark_level`` (docs/design.md, "Acquisition").

    Raises
    ------
    InputError
        ``core`` or ``shell`` of the wrong shape or holding NaN/inf, a
        negative film, a pixel size or projector that does not match the
        grid.
    """
    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be a sinter4d.phantom.Grid, got {type(grid).__name__}")
    if not isinstance(scan, ScanSettings):
        raise TypeError(f"scan must be a sinter4d.acquisition.ScanSettings, got {type(scan).__name__}")
    if callable(core):
        if shell is not None:
            raise InputError("with a callable core (the Cu of a block of rows), shell must be None")
        volume = core
    else:
        core = np.asarray(core)
        if core.shape != tuple(grid.shape):
            raise InputError(f"core has shape {core.shape}, the grid {tuple(grid.shape)}")
        if shell is not None and np.shape(shell) != tuple(grid.shape):
            raise InputError(f"shell has shape {np.shape(shell)}, the grid {tuple(grid.shape)}")
        volume = np.asarray(core, dtype=np.float32)
        if shell is not None:
            volume = volume + np.asarray(shell, dtype=np.float32)
    angles = np.asarray(scan.angles_deg, dtype=float)
    current, dwell, drift_sd = scan.probe_current_pA, scan.dwell_time_ns, scan.drift_sd_px
    offset, ref_tilt, reference_frames = scan.axis_offset_px, scan.reference_tilt_deg, scan.reference_frames
    film = check_positive(film_thickness_nm, "film_thickness_nm", allow_zero=True)
    b = scan.bin_factor
    nz, ny, nx = grid.shape
    if ny % b or nx % b:
        raise InputError(f"bin_factor {b} must divide the grid's ny={ny} and nx={nx}")
    pixel = scan.pixel_size_nm
    if not math.isclose(pixel, grid.voxel_size_nm * b, rel_tol=1e-6):
        raise InputError(
            f"pixel_size_nm ({pixel}) must equal grid.voxel_size_nm × bin_factor "
            f"({grid.voxel_size_nm} × {b} = {grid.voxel_size_nm * b})"
        )
    haadf = HaadfModel() if haadf is None else haadf
    rng = np.random.default_rng(rng)

    anchor = int(np.argmin(np.abs(angles)))
    drift = drift_random_walk(angles.size, drift_sd, anchor, rng)
    stage = StageMotion.draw(scan.stage, angles, anchor=anchor, reference_frames=reference_frames, pixel_size_nm=pixel, rng=rng)
    if projector is not None:
        _projector_for(grid, angles, projector)  # a given projector must match the nominal series
    if stage.enabled:  # projected at the goniometer's true angles (docs/design.md, "Acquisition")
        projector = None
    probe = scan.probe  # None: an ideal point probe (docs/design.md, "Acquisition")
    # (tilt, ny, nx) nm of Cu; with a probe depth-resolved and blurred
    thickness, deepest = project_cu_thickness(
        volume, grid, stage.angles_deg, probe, projector=projector, max_voxels=max_voxels
    )
    e_out = electrons_per_pixel(current, dwell)  # per output pixel per frame
    e_fine = e_out / (b * b)
    cos = np.cos(np.deg2rad(stage.angles_deg))  # the nominal angles when the stage is off

    def expected_for(t_fine: np.ndarray, cos_theta: float, shift_px, index: int | None) -> np.ndarray:
        t = stage.place(t_fine, np.asarray(shift_px) * b, index, shift_image)
        frac = haadf.scattered_fraction(t, film / cos_theta)
        signal = _bin_sum(frac.astype(np.float64), b) * (e_fine * haadf.detector_efficiency)
        return signal + haadf.background_counts

    expected = np.empty((angles.size, ny // b, nx // b), dtype=np.float64)
    for i in range(angles.size):
        expected[i] = expected_for(thickness[i], cos[i], (drift[i, 0], drift[i, 1] + offset), i)
    counts = detector_readout(expected, scan.detector, rng).astype(np.float32)

    ds = _dataset(counts, angles, pixel)
    for k, axis in enumerate("yx"):
        ds[f"true_shift_{axis}"] = (
            "tilt",
            drift[:, k],
            {"units": "px", "long_name": f"true stage drift along {axis} (where the content moved to)"},
        )
    if store_expected:
        ds["expected_counts"] = (
            ("tilt", "y", "x"),
            expected.astype(np.float32),
            {"units": "counts", "long_name": "expected HAADF counts per pixel (noiseless)"},
        )
    if reference_frames > 0:
        hit = np.flatnonzero(np.abs(angles - ref_tilt) < 1e-6)
        if hit.size:
            mean = expected[hit[0]]
        else:
            t_ref, _ = project_cu_thickness(volume, grid, [ref_tilt], probe, max_voxels=max_voxels)
            mean = expected_for(t_ref[0], math.cos(math.radians(ref_tilt)), (0.0, offset), None)
        mean = stage.reference_mean(mean)  # the frames drift while they are recorded
        reference = detector_readout(mean, scan.detector, rng, frames=reference_frames)
        ds["reference"] = (
            ("y", "x"),
            reference.astype(np.float32),
            {
                "units": "counts",
                "long_name": f"mean of {int(reference_frames)} frames at {ref_tilt:g} deg tilt",
                "tilt_angle_deg": ref_tilt,
                "n_frames": int(reference_frames),
            },
        )
    ds.attrs.update(
        title="sinter4d simulated HAADF-STEM tilt series",
        pixel_size_nm=pixel,
        dose_e_per_nm2=e_out * angles.size / pixel**2,
        probe_current_pA=current,
        dwell_time_ns=dwell,
        pt_time_s=float(pt_time_s),
        temperature_C=float(temperature_C),
        electrons_per_pixel_per_frame=e_out,
        true_axis_offset_px=offset,
        tilt_axis_rotation_deg=0.0,
        drift_sd_px=drift_sd,
        film_thickness_nm=film,
        voxel_size_nm=float(grid.voxel_size_nm),
        bin_factor=b,
        haadf_mu_cu_per_nm=haadf.mu_cu_per_nm,
        haadf_mu_film_per_nm=haadf.mu_film_per_nm,
        haadf_detector_efficiency=haadf.detector_efficiency,
        haadf_background_counts=haadf.background_counts,
        shift_convention="shift = where the content moved to; undo by shifting by -shift",
        projection_convention="u = x cos(theta) + z sin(theta), tilt axis parallel to y",
    )
    same_view = reference_frames > 0 and hit.size > 0  # the reference repeats one of the images
    ds.attrs.update(detector_attrs(scan.detector, counts, ds["reference"].values if same_view else None,
                                   reference_index=int(hit[0]) if same_view else 0, reference_frames=reference_frames))
    stage.record(ds)
    if probe is not None:
        ds.attrs.update(probe.attrs(), probe_max_cu_above_nm=deepest)
    return ds


def _dataset(counts: np.ndarray, angles: np.ndarray, pixel: float) -> xr.Dataset:
    """The tilt-series skeleton: counts with tilt_angle, y, x coordinates."""
    _, ny, nx = counts.shape
    y = (np.arange(ny) - (ny - 1) / 2) * pixel
    x = (np.arange(nx) - (nx - 1) / 2) * pixel
    return xr.Dataset(
        {"counts": (("tilt", "y", "x"), counts, {"units": "counts", "long_name": "HAADF detector counts per pixel"})},
        coords={
            "tilt_angle": ("tilt", angles, {"units": "degree", "long_name": "tilt angle"}),
            "y": ("y", y, {"units": "nm", "long_name": "y (along the tilt axis)"}),
            "x": ("x", x, {"units": "nm", "long_name": "x (across the tilt axis)"}),
        },
    )


def bin_tilt_series(ds: xr.Dataset, factor: int) -> xr.Dataset:
    """Sum ``factor × factor`` pixels of a tilt-series dataset.

    Counts (and ``reference``, ``expected_counts``) are summed, so the total
    counts and the dose per nm² are kept; the pixel grows by ``factor`` and
    ``dwell_time_ns`` by ``factor²`` (a pixel ``factor²`` times larger
    scanned at the same dose). Shifts in pixels (``true_shift_*``,
    ``shift_*``, ``true_axis_offset_px``, ``axis_offset_px``) are divided by
    ``factor``; coordinates become the block centres. Other variables on
    the image grid (e.g. a simulated ``true_label``) cannot be summed and are
    dropped.

    Parameters
    ----------
    ds : xarray.Dataset
        A tilt-series dataset (docs/design.md, "Tilt series file").
    factor : int
        Pixels summed along y and along x; must divide both image sizes.

    Returns
    -------
    xarray.Dataset
        A new dataset; ``ds`` is unchanged.
    """
    f = check_int(factor, "factor", minimum=1)
    if "counts" not in ds:
        raise InputError("tilt series has no 'counts' variable")
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    if ny % f or nx % f:
        raise InputError(f"factor {f} must divide the image size ({ny} × {nx})")
    if f == 1:
        return ds.copy()
    summable = ("counts", "reference", "expected_counts")
    other = [n for n, v in ds.data_vars.items() if n not in summable and ("y" in v.dims or "x" in v.dims)]
    out = ds.drop_vars(other).coarsen(y=f, x=f).sum(keep_attrs=True)
    out = out.assign_coords(
        y=("y", ds["y"].values.reshape(-1, f).mean(axis=1), dict(ds["y"].attrs)),
        x=("x", ds["x"].values.reshape(-1, f).mean(axis=1), dict(ds["x"].attrs)),
    )
    for name in ("counts", "reference", "expected_counts"):
        if name in out:
            out[name] = out[name].astype(ds[name].dtype)
            out[name].attrs = dict(ds[name].attrs)
    for name in ("true_shift_y", "true_shift_x", "shift_y", "shift_x", "true_reference_shift_y", "true_reference_shift_x"):
        if name in out:
            out[name] = out[name] / f
            out[name].attrs = dict(ds[name].attrs)
    attrs = dict(ds.attrs)
    if "pixel_size_nm" in attrs:
        attrs["pixel_size_nm"] = float(attrs["pixel_size_nm"]) * f
    if "dwell_time_ns" in attrs:
        attrs["dwell_time_ns"] = float(attrs["dwell_time_ns"]) * f * f
    if "electrons_per_pixel_per_frame" in attrs:
        attrs["electrons_per_pixel_per_frame"] = float(attrs["electrons_per_pixel_per_frame"]) * f * f
    for key in ("dark_level", "detector_dark_level"):  # an offset per pixel: the sum holds f² of them
        if key in attrs:
            attrs[key] = float(attrs[key]) * f * f
    if "haadf_background_counts" in attrs:
        attrs["haadf_background_counts"] = float(attrs["haadf_background_counts"]) * f * f
    for key in ("true_axis_offset_px", "axis_offset_px"):
        if key in attrs:
            attrs[key] = float(attrs[key]) / f
    if "bin_factor" in attrs:
        attrs["bin_factor"] = int(attrs["bin_factor"]) * f
    out.attrs = attrs
    return out
