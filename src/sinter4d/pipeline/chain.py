"""The paper's image-processing chain (Fig. 4a) on one tilt series.

denoise (BM3D) -> align (adjacent tilts) -> tilt axis -> background ->
reconstruct (TV) -> binarise (Otsu + opening). A Dataset in the tilt-series
layout goes in, a Dataset in the reconstruction layout of DESIGN.md comes
out; no file is touched.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import xarray as xr
from skimage.filters import threshold_otsu

from ..errors import InputError
from .align import align_translations, apply_shifts
from .binarize import threshold_binary
from .denoise import denoise_bm3d, estimate_sigma_psd, select_sigma_psnr
from .reconstruct import reconstruct
from .tilt_axis import center_tilt_axis, find_tilt_axis

log = logging.getLogger(__name__)

METHODS = ("tv", "pdhg", "sirt", "fbp")


def check_tilt_series(ds: xr.Dataset, *, source: str = "tilt series") -> tuple[np.ndarray, np.ndarray, float]:
    """The images, angles and pixel size of a tilt-series dataset, checked.

    Raises
    ------
    InputError
        A missing variable or attribute, a wrong shape, NaN/inf pixels, or
        angles whose count differs from the image count or that are not
        monotonic within ±90°.
    """
    if "counts" not in ds:
        raise InputError(f"{source}: missing variable counts")
    if "tilt_angle" not in ds.variables:
        raise InputError(f"{source}: missing coordinate tilt_angle")
    if "pixel_size_nm" not in ds.attrs:
        raise InputError(f"{source}: missing attribute pixel_size_nm")
    images = np.asarray(ds["counts"].values, dtype=np.float32)
    angles = np.asarray(ds["tilt_angle"].values, dtype=float)
    if images.ndim != 3:
        raise InputError(f"{source}: counts must be (tilt, y, x), got {images.ndim} dimensions")
    if angles.shape != (images.shape[0],):
        raise InputError(f"{source}: {angles.size} tilt angles for {images.shape[0]} images")
    if not np.isfinite(images).all():
        raise InputError(f"{source}: counts hold {int((~np.isfinite(images)).sum())} NaN or infinite pixel(s)")
    if np.any(np.abs(angles) >= 90.0) or not (np.all(np.diff(angles) > 0) or np.all(np.diff(angles) < 0)):
        raise InputError(f"{source}: tilt angles must be strictly monotonic within ±90°")
    return images, angles, float(ds.attrs["pixel_size_nm"])


def subtract_background(images: np.ndarray) -> np.ndarray:
    """Remove the support film's level from every image.

    The film is a slab much wider than the field of view, so it adds an
    almost uniform level (growing as 1/cos θ) that no finite volume can
    explain. Each image's level is the median of its pixels below Otsu's
    threshold (the film-only pixels).

    Parameters
    ----------
    images : (n, ny, nx) ndarray

    Returns
    -------
    (n, ny, nx) ndarray
        ``images`` minus each image's film level (float32).
    """
    out = np.empty(images.shape, dtype=np.float32)
    for k, image in enumerate(images):
        below = image[image <= threshold_otsu(image)]
        out[k] = image - np.float32(np.median(below))
    return out


def reference_noise_level(
    ds: xr.Dataset,
    images: np.ndarray,
    angles_deg: np.ndarray,
    *,
    psd: str = "g4",
    anscombe: bool = False,
    bm3d_profile: str = "np",
    bm3d_stages: str = "all",
    n_jobs: int = 2,
) -> float:
    """BM3D noise level of a series chosen against its reference average (the paper's protocol).

    The raw frame nearest the reference's tilt (attribute
    ``reference_tilt_deg``, default 0°) is denoised at several levels and
    the one closest in PSNR to ``ds["reference"]`` is kept
    (:func:`~sinter4d.pipeline.denoise.select_sigma_psnr`).

    Parameters
    ----------
    ds : xarray.Dataset
        The tilt series, holding ``reference`` (y, x).
    images : (n, ny, nx) ndarray
        Its raw images; ``angles_deg`` (n,) their tilts.
    psd, anscombe, bm3d_profile, bm3d_stages, n_jobs
        As in :func:`prepare_tilt_series`.

    Returns
    -------
    float
        The selected ``sigma_psd``.
    """
    k = int(np.argmin(np.abs(np.asarray(angles_deg) - float(ds.attrs.get("reference_tilt_deg", 0.0)))))
    return float(select_sigma_psnr(
        images[k], ds["reference"].values, psd=psd, anscombe=anscombe, profile=bm3d_profile, stages=bm3d_stages,
        n_jobs=n_jobs,
    ))


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
    """

    signal: np.ndarray
    angles_deg: np.ndarray
    pixel_size_nm: float
    shifts_px: np.ndarray
    axis_offset_px: float
    sigma_psd: float
    seconds: dict


def prepare_tilt_series(
    ds: xr.Dataset,
    *,
    denoise: bool = True,
    psd: str = "g4",
    anscombe: bool = False,
    bm3d_profile: str = "np",
    bm3d_stages: str = "all",
    sigma_psd: float | None = None,
    denoise_strength: float = 1.0,
    align_method: str = "xcorr",
    axis_search_px: float = 20.0,
    n_jobs: int = 2,
    source: str = "tilt series",
) -> PreparedSeries:
    """Denoise, align and axis-centre a tilt series (the stages before reconstruction).

    Parameters
    ----------
    ds : xarray.Dataset
        A tilt series (DESIGN.md "Tilt series file"): ``counts`` (tilt, y, x)
        in any linear detector unit, ``tilt_angle`` (deg), ``pixel_size_nm``;
        an optional ``reference`` (y, x) tunes the denoiser (the paper's
        protocol: the BM3D noise level maximising PSNR against it).
    denoise : bool
        Run BM3D first (the paper does).
    psd : {'g4', 'white'}
        Noise spectrum handed to BM3D (the paper: pink ``g4``).
    anscombe : bool
        Variance-stabilise the counts before BM3D.
    bm3d_profile : {'np', 'refilter', 'vn', 'high', 'lc'}
        BM3D preset; ``'lc'`` (low complexity) is about 3x faster than the
        normal ``'np'``.
    bm3d_stages : {'all', 'hard'}
        Both BM3D stages, or hard thresholding alone (half the cost).
    sigma_psd : float, optional
        BM3D noise level to use as it is (the paper tuned it once and kept
        it); by default it is chosen against ``reference`` when the series
        has one, else estimated from the images.
    denoise_strength : float
        BM3D runs at ``denoise_strength`` times that level (default 1). The
        level of maximum PSNR smooths a neck along the tilt axis, so a neck
        lying along it reads wider and one across it loses contrast; the
        quick spec's 0.35 takes its median |error| of r_n/r_p from 0.085 to
        0.032 (experiments/README.md).
    align_method : {'xcorr', 'mattes'}
        Registration of adjacent tilts.
    axis_search_px : float
        Half-width of the tilt-axis search (px).
    n_jobs : int
        Threads for BM3D.
    source : str
        Name of the input in error messages.

    Returns
    -------
    PreparedSeries
    """
    images, angles, pixel = check_tilt_series(ds, source=source)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    sigma = np.nan if sigma_psd is None else float(sigma_psd)
    if not (np.isfinite(denoise_strength) and denoise_strength > 0):
        raise ValueError(f"denoise_strength must be a number > 0, got {denoise_strength!r}")
    if denoise:
        if np.isnan(sigma) and "reference" in ds:
            sigma = reference_noise_level(
                ds, images, angles, psd=psd, anscombe=anscombe, bm3d_profile=bm3d_profile, bm3d_stages=bm3d_stages,
                n_jobs=n_jobs,
            )
        elif np.isnan(sigma):
            sigma = estimate_sigma_psd(images[len(images) // 2], psd=psd, anscombe=anscombe)
        images = denoise_bm3d(
            images,
            sigma_psd=denoise_strength * sigma,
            psd=psd,
            anscombe=anscombe,
            profile=bm3d_profile,
            stages=bm3d_stages,
            n_jobs=n_jobs,
        ).astype(np.float32)
    seconds["denoise"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    shifts = align_translations(images, angles, method=align_method)
    aligned = apply_shifts(images, -shifts)
    seconds["align"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    offset = float(find_tilt_axis(aligned, angles, search_px=(-axis_search_px, axis_search_px)))
    centred = center_tilt_axis(aligned, offset)
    seconds["tilt_axis"] = time.perf_counter() - t0
    return PreparedSeries(subtract_background(centred), angles, pixel, shifts, offset, sigma, seconds)


def process_tilt_series(
    ds: xr.Dataset,
    *,
    denoise: bool = True,
    psd: str = "g4",
    anscombe: bool = False,
    bm3d_profile: str = "np",
    bm3d_stages: str = "all",
    sigma_psd: float | None = None,
    denoise_strength: float = 1.0,
    align_method: str = "xcorr",
    axis_search_px: float = 20.0,
    method: str = "tv",
    iterations: int = 300,
    tv_weight: float | None = None,
    tol: float | None = None,
    slab_thickness_nm: float = 360.0,
    slab_z_centre_nm: float = 0.0,
    binarize_radius_nm: float = 4.0,
    n_jobs: int = 2,
    callbacks: tuple = (),
    source: str = "tilt series",
) -> xr.Dataset:
    """Reconstruct and binarise one tilt series, as the paper's Fig. 4a.

    Runs :func:`prepare_tilt_series` (whose parameters it shares), then the
    reconstruction of the slab and Otsu binarisation with an opening.

    Parameters
    ----------
    ds : xarray.Dataset
        The tilt series.
    method : {'tv', 'pdhg', 'sirt', 'fbp'}
        Reconstruction algorithm: the paper's alternating data/TV scheme,
        Chambolle–Pock TV, or the two baselines.
    iterations : int
        Iterations of the iterative methods (the paper: 300).
    tv_weight : float, optional
        TV strength (see :func:`~sinter4d.pipeline.reconstruct.reconstruct`).
    tol : float, optional
        Stop when the relative change of the iterate falls below it.
    slab_thickness_nm, slab_z_centre_nm : float
        The slab reconstructed (nm): the specimen's height on the film
        bounds it, and most of a cube would be empty.
    binarize_radius_nm : float
        Radius of the erosion/dilation after Otsu's threshold (nm).
    callbacks : tuple
        Callbacks of the reconstruction algorithm (e.g. a progress bar).
    denoise, psd, anscombe, bm3d_profile, bm3d_stages, sigma_psd, denoise_strength, align_method, axis_search_px, n_jobs, source
        As in :func:`prepare_tilt_series`.

    Returns
    -------
    xarray.Dataset
        ``volume`` (z, y, x) float32 and ``binary`` (z, y, x) uint8 on the
        tilt series' y/x grid, the tilt axis at x = 0; ``shift_y``,
        ``shift_x`` (tilt, px) found by the alignment; attributes
        ``axis_offset_px``, ``method``, ``iterations``,
        ``denoise_sigma_psd`` (the level chosen), ``denoise_strength`` and
        the seconds of each stage.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    prep = prepare_tilt_series(
        ds, denoise=denoise, psd=psd, anscombe=anscombe, bm3d_profile=bm3d_profile, bm3d_stages=bm3d_stages,
        sigma_psd=sigma_psd, denoise_strength=denoise_strength,
        align_method=align_method,
        axis_search_px=axis_search_px, n_jobs=n_jobs, source=source,
    )
    volume, binary, seconds = reconstruct_and_binarize(
        prep, method=method, iterations=iterations, tv_weight=tv_weight, tol=tol,
        slab_thickness_nm=slab_thickness_nm, slab_z_centre_nm=slab_z_centre_nm,
        binarize_radius_nm=binarize_radius_nm, callbacks=callbacks,
    )
    pixel = prep.pixel_size_nm
    nz = volume.shape[0]
    z = (np.arange(nz) - (nz - 1) / 2) * pixel + slab_z_centre_nm
    out = xr.Dataset(
        {
            "volume": (("z", "y", "x"), volume, {"units": "1", "long_name": "reconstructed HAADF scattering density"}),
            "binary": (("z", "y", "x"), binary, {"units": "1", "long_name": "binarised volume (Otsu + opening)"}),
            "shift_y": (("tilt",), prep.shifts_px[:, 0], {"units": "px", "long_name": "drift found along y (content displacement)"}),
            "shift_x": (("tilt",), prep.shifts_px[:, 1], {"units": "px", "long_name": "drift found along x (content displacement)"}),
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
            "method": method,
            "iterations": int(iterations),
            "denoise": int(denoise),
            "denoise_psd": psd,
            "denoise_profile": bm3d_profile,
            "denoise_stages": bm3d_stages,
            "denoise_sigma_psd": prep.sigma_psd,
            "denoise_strength": float(denoise_strength),
            "align_method": align_method,
            "binarize_radius_nm": float(binarize_radius_nm),
            **{f"seconds_{k}": round(v, 3) for k, v in {**prep.seconds, **seconds}.items()},
        },
    )
    for key in ("pt_time_s", "temperature_C", "dose_e_per_nm2", "time_index", "run"):
        if key in ds.attrs:
            out.attrs[key] = ds.attrs[key]
    return out


def reconstruct_and_binarize(
    prep: PreparedSeries,
    *,
    method: str = "tv",
    iterations: int = 300,
    tv_weight: float | None = None,
    tol: float | None = None,
    slab_thickness_nm: float = 360.0,
    slab_z_centre_nm: float = 0.0,
    binarize_radius_nm: float = 4.0,
    callbacks: tuple = (),
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Reconstruct the slab of a prepared series and binarise it.

    Returns
    -------
    volume : (nz, ny, nx) float32 ndarray
    binary : (nz, ny, nx) uint8 ndarray
    seconds : dict
        Wall time of the two stages.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    pixel = prep.pixel_size_nm
    t0 = time.perf_counter()
    volume = reconstruct(
        prep.signal,
        prep.angles_deg,
        method=method,
        iterations=iterations,
        slab_nz=max(2, int(round(slab_thickness_nm / pixel))),
        voxel_size_nm=pixel,
        z_centre_nm=slab_z_centre_nm,
        tv_weight=tv_weight,
        tol=tol,
        callbacks=callbacks,
    ).astype(np.float32)
    t1 = time.perf_counter()
    binary = threshold_binary(volume, method="otsu", radius_nm=binarize_radius_nm, voxel_size_nm=pixel).astype(np.uint8)
    return volume, binary, {"reconstruct": t1 - t0, "binarize": time.perf_counter() - t1}


def _centred(n: int, pixel: float) -> np.ndarray:
    return (np.arange(n) - (n - 1) / 2) * pixel
