"""The dark level of a HAADF detector: the signal of vacuum, estimated from the images.

Real detectors add an offset: an FEI series stored as ``int16`` may read
about -31 900 in vacuum and +32 000 on the specimen. The HAADF signal is the
offset plus what the specimen scatters, which is never negative, so vacuum is
the darkest part of a series and its level is the offset.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from ..checks import check_int, check_number
from ..errors import InputError

__all__ = [
    "DARK_LEVEL_METHOD",
    "DARK_LEVEL_SKEWNESS_METHOD",
    "DARK_TILE_PX",
    "DARK_TILE_FRACTION",
    "estimate_dark_level",
    "estimate_dark_level_skewness",
]

#: Edge (px) of the square tiles the images are cut into.
DARK_TILE_PX = 16
#: Share of each image's tiles, darkest first, whose pixels are pooled.
DARK_TILE_FRACTION = 0.02
#: What :func:`estimate_dark_level` does, for the ``dark_level_method`` attribute.
DARK_LEVEL_METHOD = (
    f"median over the images of each image's vacuum level: the median of the pixels of its darkest "
    f"{DARK_TILE_FRACTION:.0%} of {DARK_TILE_PX}x{DARK_TILE_PX} px tiles (ranked by their median)"
)
#: Smoothing window (px) and erosion (px) that pick the low-signal region of an image.
LOW_SIGNAL_WINDOW_PX = 7
LOW_SIGNAL_EROSION_PX = 4
#: What :func:`estimate_dark_level_skewness` does, for the ``dark_level_method`` attribute.
DARK_LEVEL_SKEWNESS_METHOD = (
    "photon transfer: mean minus third cumulant / gain^2 of each image's low-signal region "
    "(below Otsu's threshold of a 7 px mean, eroded 4 px), pooled over the images; gain from "
    "the raw frame against the reference"
)


def estimate_dark_level(
    images: np.ndarray, *, tile_px: int = DARK_TILE_PX, fraction: float = DARK_TILE_FRACTION
) -> float:
    """Dark level (vacuum signal) of a stack of HAADF images.

    Each image is cut into ``tile_px`` square tiles (the edge remainder is
    dropped); its tiles are ranked by their median and the pixels of the
    darkest ``fraction`` of them (at least one tile) are pooled; the image's
    vacuum level is the median of that pool. The dark level is the median of
    the images' levels.

    Why this estimator: vacuum is the darkest region of a HAADF image, and a
    tile lying wholly in vacuum holds the offset plus zero-mean noise, so its
    median is the offset. Ranking by a tile's median rather than by single
    pixels keeps the noise from choosing: a pixel percentile sits
    ``z * sigma`` below the offset (-2 sigma for the 2nd percentile), while
    the median of a 256-pixel tile scatters by only ``1.25 sigma / 16``, so
    picking the darkest tiles biases the level by a small part of sigma
    (docs/validation.md). Tiles that touch the specimen rank above the
    vacuum ones and are left out as long as vacuum covers more than
    ``fraction`` of an image's tiles (whole tiles: a vacuum strip narrower
    than ``tile_px`` is not seen). Taking the median over images, rather than
    the darkest tiles of the whole stack, gives the typical vacuum level when
    the detector's level drifts from image to image, and ignores a minority
    of images with no vacuum. A series with no vacuum at all gets the level
    of its darkest region (e.g. the support film), which the pipeline's
    background step removes anyway.

    Parameters
    ----------
    images : (n, ny, nx) or (ny, nx) array_like
        Raw detector values (any linear unit, any offset).
    tile_px : int, optional
        Tile edge in px; tiles larger than an image shrink to it.
    fraction : float, optional
        Share of tiles pooled, in (0, 1].

    Returns
    -------
    float
        The dark level, in the units of ``images``.

    Raises
    ------
    InputError
        An empty stack, NaN/inf values, or bad settings.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> stack = -31900 + rng.normal(0, 20, (3, 64, 64))
    >>> stack[:, 16:48, 16:48] += 5000  # the specimen
    >>> round(estimate_dark_level(stack) / 100) * 100
    -31900
    """
    stack = np.asarray(images)
    if stack.ndim == 2:
        stack = stack[None]
    if stack.ndim != 3 or stack.size == 0:
        raise InputError(f"images must be an (n, ny, nx) stack, got shape {stack.shape}")
    tile = check_int(tile_px, "tile_px", minimum=1)
    share = check_number(fraction, "fraction", minimum=0.0, maximum=1.0, strict=False)
    if share <= 0:
        raise InputError(f"fraction={fraction!r} must be > 0")
    ty, tx = min(tile, stack.shape[1]), min(tile, stack.shape[2])
    my, mx = stack.shape[1] // ty, stack.shape[2] // tx
    n_pick = max(1, int(round(share * my * mx)))
    levels = np.empty(stack.shape[0])
    for k, image in enumerate(stack):  # one image at a time: no copy of the whole stack
        tiles = np.asarray(image[: my * ty, : mx * tx], dtype=np.float64).reshape(my, ty, mx, tx)
        tiles = tiles.transpose(0, 2, 1, 3).reshape(my * mx, ty * tx)
        medians = np.median(tiles, axis=1)
        if not np.isfinite(medians).all():
            raise InputError(f"images hold NaN or infinite values (image {k})")
        levels[k] = np.median(tiles[np.argpartition(medians, n_pick - 1)[:n_pick]])
    return float(np.median(levels))


def estimate_dark_level_skewness(images: np.ndarray, gain: float) -> float:
    """Dark level of a Poisson–Gaussian stack that may hold no vacuum, from the skewness of its darkest region.

    The signal ``x = dark + gain N + e`` with ``N`` Poisson and ``e``
    symmetric (normal read and row noise, rounding) has mean ``dark + gain
    E[N]`` and third cumulant ``gain**3 E[N]``: the noise skews by the
    electrons counted, never by the offset. So ``dark = mean - kappa_3 /
    gain**2`` on any region of uniform signal, e.g. a support film that
    scatters a few electrons per pixel, where the darkest tiles
    (:func:`estimate_dark_level`) read the film, not the offset.

    Each image's low-signal region is the set of pixels whose
    ``LOW_SIGNAL_WINDOW_PX`` mean lies below Otsu's threshold of that mean,
    eroded by ``LOW_SIGNAL_EROSION_PX`` (away from the specimen's edges).
    Its third cumulant is measured on ``x`` minus the mean of its 8
    neighbours (which removes a slowly varying film level and scales the
    cumulant by ``1 - 1/64``, undone). Images are pooled weighted by their
    pixel counts.

    Parameters
    ----------
    images : (n, ny, nx) or (ny, nx) array_like
        Raw detector values.
    gain : float
        Detector units per detected electron
        (:func:`~sinter4d.acquisition.estimate_photon_transfer`).

    Returns
    -------
    float
        The dark level, in the units of ``images``.

    Raises
    ------
    InputError
        A bad stack or gain, or no low-signal region.

    Notes
    -----
    Assumes the zero-signal noise is symmetric: a detector whose single
    electrons give a skewed pulse-height distribution biases it (docs/design.md,
    "Acquisition"). Its error on simulated series is in
    docs/validation.md, "Simulated detector".
    """
    stack = np.asarray(images)
    stack = stack[None] if stack.ndim == 2 else stack
    if stack.ndim != 3 or min(stack.shape[1:], default=0) < 3 * LOW_SIGNAL_WINDOW_PX:
        raise InputError(f"images must be an (n, ny, nx) stack of at least {3 * LOW_SIGNAL_WINDOW_PX} px a side, got shape {stack.shape}")
    g = check_number(gain, "gain", minimum=0.0)
    if g <= 0:
        raise InputError(f"gain={gain!r} must be > 0")
    total = weight = 0.0
    for k, image in enumerate(stack):
        x = np.asarray(image, dtype=np.float64)
        if not np.isfinite(x).all():
            raise InputError(f"images hold NaN or infinite values (image {k})")
        smooth = ndi.uniform_filter(x, LOW_SIGNAL_WINDOW_PX)
        low = ndi.binary_erosion(smooth < threshold_otsu(smooth), iterations=LOW_SIGNAL_EROSION_PX)
        n = int(np.count_nonzero(low))
        if n < 64:
            continue
        neighbours = (ndi.uniform_filter(x, 3) * 9.0 - x) / 8.0
        r = (x - neighbours)[low]
        kappa3 = float(np.mean((r - r.mean()) ** 3)) / (1.0 - 1.0 / 64.0)
        total += n * (float(x[low].mean()) - kappa3 / g**2)
        weight += n
    if weight == 0:
        raise InputError("no image has a low-signal region of 64 px or more")
    return total / weight
