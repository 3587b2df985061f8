"""The tilt series as the chain receives it: checked, the dark level off, the film's level, BM3D's noise level.

The first steps of :mod:`.chain` (docs/design.md, "Reconstruction notes"),
each a small function of the series' Dataset or its image stack; no file is
touched.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from skimage.filters import threshold_otsu

from ..checks import MIN_TILTS
from ..errors import InputError
from .denoise import DEFAULT_JOBS, select_sigma_psnr
from .noise_model import measure_detector_noise
from .settings import DenoiseSettings

__all__ = ["check_tilt_series", "detector_noise", "reference_index", "reference_noise_level", "remove_dark_level",
           "subtract_background"]


def check_tilt_series(ds: xr.Dataset, *, source: str = "tilt series") -> tuple[np.ndarray, np.ndarray, float]:
    """The images, angles and pixel size of a tilt-series dataset, checked.

    Raises
    ------
    InputError
        A missing variable or attribute, a wrong shape, NaN/inf pixels, or
        angles whose count differs from the image count or that are not
        monotonic within ±90°, or fewer than :data:`~sinter4d.checks.MIN_TILTS`
        images.

    Notes
    -----
    The images come back with the series' ``dark_level`` attribute (the
    detector's vacuum level of an imported series, docs/design.md) subtracted
    (:func:`remove_dark_level`).
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
    if images.shape[0] < MIN_TILTS:
        raise InputError(f"{source}: {images.shape[0]} tilt image(s); the pipeline needs at least {MIN_TILTS}")
    if not np.isfinite(images).all():
        raise InputError(f"{source}: counts hold {int((~np.isfinite(images)).sum())} NaN or infinite pixel(s)")
    if np.any(np.abs(angles) >= 90.0) or not (np.all(np.diff(angles) > 0) or np.all(np.diff(angles) < 0)):
        raise InputError(f"{source}: tilt angles must be strictly monotonic within ±90°")
    return remove_dark_level(images, ds), angles, float(ds.attrs["pixel_size_nm"])


def remove_dark_level(values: np.ndarray, ds: xr.Dataset) -> np.ndarray:
    """``values`` minus the series' ``dark_level`` attribute (0 when absent), float32.

    Not clipped at 0: read noise puts half of the zero-signal pixels below
    the dark level, and clipping them would bias the low signal and shrink
    its variance (the photon transfer of ``psd = 'detector'`` reads it).
    """
    dark = np.float32(ds.attrs.get("dark_level", 0.0))
    values = np.asarray(values, dtype=np.float32)
    if not dark:
        return values
    return values - dark  # one new stack; ``values`` may be the dataset's own array


def subtract_background(images: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """Remove the support film's level from every image.

    The film is a slab much wider than the field of view, so it adds an
    almost uniform level (growing as 1/cos θ) that no finite volume can
    explain. Each image's level is the median of its pixels below Otsu's
    threshold (the film-only pixels).

    Parameters
    ----------
    images : (n, ny, nx) ndarray

    out : (n, ny, nx) float32 ndarray, optional
        Where to write the result (``images`` itself: in place).

    Returns
    -------
    (n, ny, nx) ndarray
        ``images`` minus each image's film level (float32).
    """
    out = np.empty(images.shape, dtype=np.float32) if out is None else out
    for k, image in enumerate(images):
        below = image[image <= threshold_otsu(image)]
        np.subtract(image, np.float32(np.median(below)), out=out[k], casting="same_kind")
    return out


def reference_noise_level(
    ds: xr.Dataset,
    images: np.ndarray,
    angles_deg: np.ndarray,
    settings: DenoiseSettings = DenoiseSettings(),
    *,
    n_jobs: int = DEFAULT_JOBS,
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
    settings : DenoiseSettings, optional
        The filter (a :class:`~sinter4d.pipeline.settings.PipelineSpec` will do).
    n_jobs : int, optional
        Threads for BM3D.

    Returns
    -------
    float
        The selected ``sigma_psd``.
    """
    if settings.psd == "detector":  # the level is measured: unit white noise after stabilisation
        return 1.0
    k = reference_index(ds, angles_deg)
    reference = remove_dark_level(ds["reference"].values, ds)
    return float(select_sigma_psnr(images[k], reference, settings=settings, n_jobs=n_jobs))


def reference_index(ds: xr.Dataset, angles_deg: np.ndarray) -> int:
    """Index of the image nearest the reference's tilt (attribute ``reference_tilt_deg``, default 0)."""
    return int(np.argmin(np.abs(np.asarray(angles_deg) - float(ds.attrs.get("reference_tilt_deg", 0.0)))))


def detector_noise(ds: xr.Dataset, images: np.ndarray, angles_deg: np.ndarray, *, source: str = "tilt series"):
    """The series' measured noise (``psd = 'detector'``): its frame at the reference's tilt against the reference.

    Raises
    ------
    InputError
        The series has no reference, or the photon-transfer fit fails.
    """
    if "reference" not in ds:
        raise InputError(f"{source}: psd = 'detector' measures the noise against the reference average; "
                         "the series has none (use psd = 'g4')")
    reference = remove_dark_level(ds["reference"].values, ds)
    frames = ds["reference"].attrs.get("n_frames", ds.attrs.get("reference_frames"))
    try:
        return measure_detector_noise(images[reference_index(ds, angles_deg)], reference, reference_frames=frames)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
