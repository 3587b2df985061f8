"""The part of the field that holds the specimen: its slices and its box (issue 16).

With a single tilt axis along y, each row ``y`` of the prepared images is
the projection of one slice of the volume, independent of the others. A
field of view is mostly film and vacuum, so only the rows that hold the
specimen need reconstructing; the rest are film, whose level the chain has
removed, and stay empty. The reconstruction of those rows is exact
tomography on a smaller problem (no truncation: every ray of a kept slice
stays in it), so the cost falls with the share of rows kept.

A slice's projected mass ``m(y) = sum_x signal(theta, y, x)`` is the same at
every tilt for a parallel beam, so its mean over the tilts is a low-noise
profile of the specimen along the axis; the rows kept are those where it
rises by a ``fraction`` of its range above the film's, widened by a margin.
docs/design.md ("Reconstruction notes") gives the contract.

:func:`specimen_box` is the rectangle where the images' row and column
profiles, averaged over the tilts, stand out of the film's: the chain
registers the drift on it (the registrations' cost is per pixel, and the
film carries nothing to register).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..checks import check_number
from ..errors import InputError

__all__ = ["SUPPORT_FRACTION", "box_bounds", "slice_mass", "specimen_box", "specimen_rows"]

#: Share of the slice-mass range above the film's at which a row holds the specimen.
SUPPORT_FRACTION = 0.05
#: Percentile of a profile (the slice mass, a box's row or column means) taken as the film's level.
_FILM_PERCENTILE = 5.0


def slice_mass(signal: np.ndarray) -> np.ndarray:
    """Projected mass of each slice along the tilt axis, averaged over the tilts.

    Parameters
    ----------
    signal : (n_tilt, ny, nx) ndarray
        Prepared images: aligned, the tilt axis along y, the film's level removed.

    Returns
    -------
    (ny,) float64 ndarray
        ``mean_theta sum_x signal(theta, y, x)``, in the images' units times pixels.
    """
    b = np.asarray(signal)
    if b.ndim != 3:
        raise InputError(f"signal must be (n_tilt, ny, nx), got shape {b.shape}")
    return b.sum(axis=2, dtype=np.float64).mean(axis=0)


def specimen_rows(signal: np.ndarray, *, margin_px: float, fraction: float = SUPPORT_FRACTION) -> tuple[int, int]:
    """First and one-past-last row of the slices that hold the specimen.

    The film's slice mass ``m_film`` is the 5th percentile of :func:`slice_mass`
    over the rows, its peak ``m_max`` the largest; rows with
    ``m > m_film + fraction (m_max - m_film)`` hold the specimen. The span from
    the first to the last of them, widened by ``margin_px`` on each side and
    clipped to the image, is kept (one span: a cluster's gaps stay in).

    Parameters
    ----------
    signal : (n_tilt, ny, nx) ndarray
        Prepared images (aligned, axis along y, film's level removed).
    margin_px : float
        Rows added on each side (>= 0): the particles' faint ends and the
        binarisation's opening.
    fraction : float, optional
        Level as a share of the slice mass's range, in [0, 1].

    Returns
    -------
    (int, int)
        ``(start, stop)``: rows ``start .. stop - 1``. ``(0, ny)`` when no row
        stands out (a flat profile).

    Examples
    --------
    >>> import numpy as np
    >>> signal = np.zeros((3, 100, 40), np.float32)
    >>> signal[:, 40:60, 10:30] = 1.0
    >>> specimen_rows(signal, margin_px=5)
    (35, 65)
    """
    check_number(margin_px, "margin_px", minimum=0.0)
    check_number(fraction, "fraction", minimum=0.0, maximum=1.0)
    return _span(slice_mass(signal), margin_px, fraction)


def box_bounds(rows: slice, columns: slice) -> tuple[int, int, int, int]:
    """A box as the reconstruction file records it (``align_box``, ``denoise_box``): ``(row_start, row_stop,
    column_start, column_stop)``."""
    return rows.start, rows.stop, columns.start, columns.stop


def specimen_box(images: np.ndarray, *, margin_px: float, fraction: float = SUPPORT_FRACTION,
                 smooth_px: float = 0.0) -> tuple[slice, slice]:
    """The rectangle where the specimen stands out of the film: ``(rows, columns)`` slices.

    The means of each row and of each column of the images, averaged over the
    tilts, are profiles of the specimen along y and along x. In each the
    film's level is its 5th percentile and the specimen is where it rises by
    ``fraction`` of the profile's range above it (as :func:`specimen_rows`);
    the span from the first to the last such point, widened by ``margin_px``
    and clipped to the image, is the box's side. With ``smooth_px`` the
    profiles are first smoothed by a Gaussian of that s.d.: a raw frame's
    scan-line offsets do not average out along a row, and smoothing across
    the rows brings them under the level (the box can only grow by it).

    The average over the tilts keeps the profiles out of the noise (one
    image's profile at the paper's dose is not), but weighs a part of the
    specimen by the share of images it appears in: what only the highest
    tilts or a large drift show may lie outside. The box suits the drift
    registration, which needs most of the specimen and none of the film,
    and not a mask of data to keep.

    Parameters
    ----------
    images : (n_tilt, ny, nx) ndarray
        Images in any linear unit with the specimen brighter than the film
        (HAADF), any in-plane direction of the tilt axis; denoised at a low
        dose (on the raw frames of the paper's series 0 the scan lines' noise
        crosses the level along y, and the box grows to the whole field:
        safe, but no saving), or raw with ``smooth_px``.
    margin_px : float
        Pixels added on each side (>= 0).
    fraction : float, optional
        Level as a share of each profile's range, in [0, 1].
    smooth_px : float, optional
        S.d. (px, >= 0) of the Gaussian the profiles are smoothed by; 0: none.

    Returns
    -------
    (slice, slice)
        Rows and columns of the box; the whole image along a direction whose
        profile is flat.

    Examples
    --------
    >>> import numpy as np
    >>> images = np.zeros((2, 100, 80), np.float32)
    >>> images[0, 40:60, 10:30] = images[1, 45:65, 20:40] = 1.0
    >>> specimen_box(images, margin_px=5)
    (slice(35, 70, None), slice(5, 45, None))
    """
    check_number(margin_px, "margin_px", minimum=0.0)
    check_number(fraction, "fraction", minimum=0.0, maximum=1.0)
    check_number(smooth_px, "smooth_px", minimum=0.0)
    b = np.asarray(images)
    if b.ndim != 3:
        raise InputError(f"images must be (n_tilt, ny, nx), got shape {b.shape}")
    profiles = [b.mean(axis=axes, dtype=np.float64) for axes in ((0, 2), (0, 1))]
    if smooth_px > 0:
        profiles = [ndimage.gaussian_filter1d(p, smooth_px, mode="reflect") for p in profiles]
    rows, columns = (_span(p, margin_px, fraction) for p in profiles)
    return slice(*rows), slice(*columns)


def _span(profile: np.ndarray, margin_px: float, fraction: float) -> tuple[int, int]:
    """``(start, stop)`` of the points of ``profile`` above its level, widened by the margin and clipped.

    The level is the 5th percentile plus ``fraction`` of the range above it;
    ``(0, len(profile))`` for a flat profile.
    """
    length = profile.size
    film = float(np.percentile(profile, _FILM_PERCENTILE))
    peak = float(profile.max())
    if not peak > film:
        return 0, length
    hit = np.flatnonzero(profile > film + fraction * (peak - film))
    margin = int(np.ceil(margin_px))
    return max(0, int(hit[0]) - margin), min(length, int(hit[-1]) + 1 + margin)
