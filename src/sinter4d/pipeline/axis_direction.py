"""In-plane direction of the tilt axis, and the rotation that lays it along y.

Convention
----------
``tilt_axis_rotation_deg`` is the in-plane angle of the tilt axis measured from
the image y axis towards +x, in degrees: 0 = along y (the pipeline's frame,
docs/design.md "Conventions"), 90 = along x. In array terms, the axis runs
along the unit vector ``(dy, dx) = (cos a, sin a)``. A direction and its
opposite are the same axis, so angles are reported in ``(-90, 90]``.

Method: the common line
-----------------------
For a parallel beam and a rigid tilt about one axis, every point keeps its
coordinate along the axis. The sum of an image along the lines
perpendicular to the axis (its projection onto the axis) is therefore the
projection of the specimen onto that line, the same at every tilt: the
"common line" of all images (the idea behind AreTomo's and teamtomo's
axis searches). For a candidate direction ``a``,
:func:`common_line_scores` computes each image's profile along ``a`` (the
mean of the pixels on each perpendicular line inside the inscribed disk, so
that every direction sees lines of the same lengths and a uniform film level
is a constant), standardises it (mean 0, variance 1: a tilt-dependent
offset or gain drops out), shifts it onto the mean profile by 1D
cross-correlation (drift along the axis is not yet corrected), and scores
the spread of the profiles about their mean, weighted by line length:
``0`` when all profiles agree, ``~1`` when they are unrelated. Off the axis,
features at different heights move differently with the tilt and the
profiles disagree. :func:`find_tilt_axis_rotation` minimises the score on a
coarse grid over 180 deg, then on finer grids around the best point, and
refines by a parabola through the last three points.

The scores use no tilt angle, so the method needs no geometry beyond a
common axis; it fails on a specimen whose profiles cannot disagree (a single
sphere, a uniform field), where any direction is as consistent as another.

The 180 deg ambiguity
---------------------
``a`` and ``a + 180`` give the same profiles reversed: the data cannot tell
them apart. Rotating the images by an extra 180 deg is the same as negating
every tilt angle, which mirrors the reconstructed volume (its handedness),
and no distance or neck radius changes. The angle is folded into
``(-90, 90]`` and the images are turned by that (the smaller) rotation, so
the file's own tilt-angle signs are kept.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import ndimage, sparse
from skimage.filters import threshold_otsu

from ..checks import check_angles, check_int, check_number
from ..errors import InputError
from .align import align_translations, apply_shifts
from .denoise import _image_stack
from .settings import AlignSettings

__all__ = ["AXIS_ROTATION_SOURCES", "choose_axis_rotation", "common_line_scores", "find_tilt_axis_rotation", "fold_axis_rotation", "is_quarter_turn", "remove_row_offsets", "rotate_to_axis"]

#: Where the angle a reconstruction used came from (its attribute ``tilt_axis_rotation_source``).
AXIS_ROTATION_SOURCES = ("file", "found", "setting")

_log = logging.getLogger(__name__)


def fold_axis_rotation(angle_deg: float) -> float:
    """An axis direction folded into ``(-90, 90]`` deg (``a`` and ``a ± 180`` are the same axis)."""
    a = math.fmod(float(angle_deg), 180.0)
    if a <= -90.0:
        a += 180.0
    elif a > 90.0:
        a -= 180.0
    return a


def remove_row_offsets(images: np.ndarray, *, margin_px: int = 3, flatten_film: bool = False) -> np.ndarray:
    """Images less the offset of each row (the detector's scan-line noise), measured on the film.

    A scan line (a row: the fast-scan direction is x, docs/design.md
    "Detector") shares one offset. Each image's specimen is the pixels above
    Otsu's threshold of the image smoothed by a 2 px Gaussian, grown by
    ``margin_px``; the offset of a row is the mean of its other (film)
    pixels less the film's median level, shrunk by the share of the variance
    of the offsets' row-to-row part (the offsets less their running median
    over 5 rows, where a slow trend of the film or a specimen's tail has no
    share) that twice the pixel noise explains (a Wiener factor: with no
    row noise nothing is removed). A row with fewer than 2 film pixels keeps
    its values. The row offsets along the tilt axis would otherwise add to the
    common line of every image independently (module docstring).

    Subtracting the rows' film means leaves every row's film with the same
    mean in every image: along the rows (an axis at 0 deg) the film's noise
    then cancels, along any other direction it does not, and the common-line
    score is pulled towards 0 deg (by about 2 deg at the quick run's dose,
    docs/validation.md). ``flatten_film`` then sets the film to its median
    level, so that it adds no noise along any direction (an image whose rows
    need no removal keeps its film).

    Parameters
    ----------
    images : (n, ny, nx) or (ny, nx) ndarray
    margin_px : int, optional
        Dilation of the specimen mask (px).
    flatten_film : bool, optional
        Also set every film pixel to the film's median level.

    Returns
    -------
    ndarray
        float64, the shape of ``images``.
    """
    stack, single = _image_stack(images)
    margin = check_int(margin_px, "margin_px", minimum=0)
    out = stack.astype(np.float64)
    for image in out:
        smooth = ndimage.gaussian_filter(image, 2.0)
        film = ~ndimage.binary_dilation(smooth > threshold_otsu(smooth), iterations=margin)
        if not film.any():
            continue
        level = np.median(image[film])
        count = film.sum(axis=1)
        rows = count >= 2
        if rows.sum() < 3:
            continue
        resid = np.where(film, image - level, 0.0)
        offset = resid.sum(axis=1) / np.maximum(count, 1)
        # scan-line noise is told from the film's slow trends by the part that changes from row to row
        jumpy = offset[rows] - ndimage.median_filter(offset[rows], size=5, mode="nearest")
        # the pixel noise's share of the offsets' variance, shrunk away (Wiener): no row noise, no change
        pixel_var = (np.where(film, resid - offset[:, None], 0.0) ** 2).sum(axis=1)[rows] / (count[rows] * (count[rows] - 1))
        excess = 1.0 - 2.0 * float(np.mean(pixel_var)) / max(float(np.var(jumpy)), 1e-300)
        if excess > 0:
            image -= excess * np.where(rows, offset, 0.0)[:, None]
            if flatten_film:  # only where rows were removed: a noise-free film keeps its faint signal
                image[film] = level
    return out[0] if single else out


def _working_stack(stack: np.ndarray, max_size: int) -> np.ndarray:
    """Block means of the images so that neither side exceeds ``max_size`` px (float64)."""
    f = max(1, math.ceil(max(stack.shape[1:]) / max_size))
    n, ny, nx = stack.shape
    cut = stack[:, : ny - ny % f, : nx - nx % f].astype(np.float64)
    return cut.reshape(n, ny // f, f, nx // f, f).mean(axis=(2, 4)) if f > 1 else cut


class _Profiles:
    """Line profiles of a stack along any direction, on the disk inscribed in the images."""

    def __init__(self, stack: np.ndarray):
        n, ny, nx = stack.shape
        yy, xx = np.mgrid[:ny, :nx]
        yy = yy - (ny - 1) / 2.0
        xx = xx - (nx - 1) / 2.0
        self.radius = (min(ny, nx) - 1) / 2.0
        inside = yy**2 + xx**2 <= self.radius**2
        self.y, self.x = yy[inside], xx[inside]
        self.values = stack[:, inside]  # (n, P)
        self.n_bins = 2 * int(math.floor(self.radius)) + 3

    def __call__(self, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
        """``(n, m)`` mean profiles along the direction and ``(m,)`` line lengths (px)."""
        a = math.radians(angle_deg)
        s = self.y * math.cos(a) + self.x * math.sin(a) + (self.n_bins - 1) / 2.0
        i0 = np.floor(s).astype(np.intp)
        w1 = s - i0
        m = self.n_bins
        length = np.bincount(i0, 1.0 - w1, m) + np.bincount(i0 + 1, w1, m)
        # each pixel's share of its two bins as two sparse (bin, pixel) matrices, applied to every image
        # at once: each bin sums its pixels in their order, as np.bincount would
        pixels = np.arange(i0.size)
        lower = sparse.csr_matrix((1.0 - w1, (i0, pixels)), shape=(m, i0.size))
        upper = sparse.csr_matrix((w1, (i0 + 1, pixels)), shape=(m, i0.size))
        values = self.values.T
        sums = (lower @ values).T + (upper @ values).T
        return sums / np.maximum(length, 1e-12), length


def _shift_onto(profiles: np.ndarray, reference: np.ndarray, max_shift: int) -> np.ndarray:
    """Each profile shifted (sub-pixel, linear) to best match ``reference`` within ``±max_shift`` bins."""
    n, m = profiles.shape
    size = 2 * m
    xc = np.fft.irfft(np.fft.rfft(profiles, size) * np.conj(np.fft.rfft(reference, size)), size)
    lags = np.r_[np.arange(0, max_shift + 1), np.arange(-max_shift, 0)]
    cc = xc[:, lags]
    best = np.argmax(cc, axis=1)
    left, right = cc[np.arange(n), best - 1], cc[np.arange(n), (best + 1) % cc.shape[1]]
    mid = cc[np.arange(n), best]
    denom = left - 2 * mid + right
    frac = np.where(denom < 0, 0.5 * (left - right) / np.where(denom < 0, denom, 1.0), 0.0)
    lag = lags[best] + np.clip(frac, -0.5, 0.5)  # profile k(s) ~ reference(s - lag)
    grid = np.arange(m, dtype=float)
    return np.stack([np.interp(grid + d, grid, p) for p, d in zip(profiles, lag)])


def common_line_scores(
    images: np.ndarray,
    candidates_deg,
    *,
    reference: int | None = None,
    max_shift_fraction: float = 0.15,
    max_size: int = 256,
    smooth_px: float = 3.0,
) -> np.ndarray:
    """Disagreement of the images' profiles along each candidate axis direction (0 = all agree).

    Parameters
    ----------
    images : (n, ny, nx) ndarray
        A tilt series (any linear unit), not necessarily aligned.
    candidates_deg : array_like
        Axis directions to score, deg from +y towards +x.
    reference : int, optional
        Image whose profile the others are first shifted onto (default: the
        middle one); they are then shifted onto the mean profile.
    max_shift_fraction : float, optional
        Largest drift along the axis absorbed, as a fraction of the profile length.
    max_size : int, optional
        Images are block-averaged so that neither side exceeds this (px).
    smooth_px : float, optional
        Gaussian sigma (px of the block-averaged images) applied first: the
        noise's share of the score then hardly changes with the direction
        (docs/validation.md).

    Returns
    -------
    ndarray
        One score per candidate, in [0, 1] (see the module docstring).
    """
    stack, single = _image_stack(images)
    if single or stack.shape[0] < 2:
        raise InputError(f"need an (n >= 2, ny, nx) stack, got shape {np.shape(images)}")
    work = _working_stack(stack, check_int(max_size, "max_size", minimum=16))
    smooth = check_number(smooth_px, "smooth_px", minimum=0.0)
    if smooth > 0:
        work = ndimage.gaussian_filter(work, (0, smooth, smooth))
    profiles_of = _Profiles(work)
    level = float(np.mean(profiles_of.values**2))
    # each image minus its mean over the disk (a film level drops out), all in one unit
    profiles_of.values -= profiles_of.values.mean(axis=1, keepdims=True)
    unit = float(np.mean(profiles_of.values**2))
    if unit <= 1e-12 * level:
        raise InputError("the images are uniform: no tilt axis can be found")
    ref = stack.shape[0] // 2 if reference is None else check_int(reference, "reference", minimum=0)
    frac = check_number(max_shift_fraction, "max_shift_fraction", minimum=0.0, maximum=0.5)
    out = []
    for angle in np.atleast_1d(np.asarray(candidates_deg, dtype=float)):
        profiles, length = profiles_of(angle)
        keep = length >= 0.3 * length.max()  # lines across the middle ~95 % of the disk
        p, w = profiles[:, keep], length[keep]
        shift = int(round(frac * p.shape[1]))
        if shift > 0:
            p = _shift_onto(p, p[ref], shift)
            p = _shift_onto(p, p.mean(axis=0), shift)
        mean = p.mean(axis=0)
        gain = (p * w) @ mean / max(float((mean * w) @ mean), 1e-300)  # per-image gain on the mean
        resid = p - gain[:, None] * mean
        out.append(float((resid**2).mean(axis=0) @ w / (w.sum() * unit)))
    return np.asarray(out)


def find_tilt_axis_rotation(
    images: np.ndarray,
    angles_deg,
    *,
    coarse_step_deg: float = 2.0,
    tolerance_deg: float = 0.02,
    max_shift_fraction: float = 0.15,
    max_size: int = 256,
    smooth_px: float = 3.0,
    prealign: bool = True,
    destripe: bool = True,
) -> float:
    """In-plane direction of the tilt axis of a tilt series (the common-line method).

    Parameters
    ----------
    images : (n, ny, nx) ndarray
        Raw or denoised tilt series, not necessarily aligned; the specimen
        must hold several features at different heights (docs/design.md,
        "Reconstruction notes").
    angles_deg : (n,) array_like
        Tilt angles (deg); the image nearest 0 deg is the first reference profile.
    coarse_step_deg : float, optional
        Step of the first grid over 180 deg. Each later grid spans ±1 step
        of the one before at a tenth of its step, down to ``tolerance_deg``.
    tolerance_deg : float, optional
        Step of the last grid (deg) before the parabolic refinement.
    max_shift_fraction, max_size, smooth_px : optional
        See :func:`common_line_scores`.
    prealign : bool, optional
        Remove the drift first (:func:`~sinter4d.pipeline.align.align_translations`
        of the block-averaged images, without the cosine stretch, which
        assumes an axis along y); what drift remains along the axis is
        absorbed by the profiles' shifts.
    destripe : bool, optional
        Remove each row's offset first and flatten the film
        (:func:`remove_row_offsets` with ``flatten_film``): a detector's
        scan-line noise otherwise makes the rows' means disagree between
        images and pushes the estimate away from 0 deg by several degrees, and
        the removal alone pulls it back towards 0 deg (docs/validation.md).

    Returns
    -------
    float
        ``tilt_axis_rotation_deg`` in ``(-90, 90]``: deg from +y towards +x.

    Raises
    ------
    InputError
        Fewer than 3 images, angles that do not match them, or a stack in
        which no direction is more consistent than the others.
    """
    stack, single = _image_stack(images)
    angles = check_angles(angles_deg)
    if single or stack.shape[0] < 3 or angles.shape != (stack.shape[0],):
        raise InputError(f"need an (n >= 3, ny, nx) stack and n angles, got shapes {np.shape(images)} and {np.shape(angles_deg)}")
    step = check_number(coarse_step_deg, "coarse_step_deg", minimum=0.01, maximum=45.0)
    tol = check_number(tolerance_deg, "tolerance_deg", minimum=1e-4, maximum=step)
    if np.ptp(stack) == 0:
        raise InputError("the images are uniform: no tilt axis can be found")
    ref = int(np.argmin(np.abs(angles)))
    stack = _working_stack(stack, check_int(max_size, "max_size", minimum=16))
    if destripe:
        stack = remove_row_offsets(stack, flatten_film=True)
    if prealign:
        # drift removed first, by registrations of adjacent tilts without the cosine stretch
        # (which assumes an axis along y): objects then stay in the field and on their lines
        shifts = align_translations(ndimage.gaussian_filter(stack, (0, 1.0, 1.0)), angles, reference_index=ref,
                                    cosine_stretch=False, upsample_factor=4)
        stack = apply_shifts(stack, -shifts)
    options = dict(reference=ref, max_shift_fraction=max_shift_fraction, max_size=max_size, smooth_px=smooth_px)
    grid = np.arange(-90.0, 90.0, step)
    scores = common_line_scores(stack, grid, **options)
    if scores.max() - scores.min() < 1e-3 * max(scores.max(), 1e-12):
        raise InputError("the images' profiles agree equally along every direction: no tilt axis can be found")
    best = float(grid[np.argmin(scores)])
    while step > tol:
        step = max(step / 10.0, tol)
        grid = best + np.arange(-10, 11) * step
        scores = common_line_scores(stack, grid, **options)
        best = float(grid[np.argmin(scores)])
    k = int(np.clip(np.argmin(scores), 1, grid.size - 2))
    s0, s1, s2 = scores[k - 1 : k + 2]
    curvature = s0 - 2 * s1 + s2
    if curvature > 0:
        best = float(grid[k] + 0.5 * step * (s0 - s2) / curvature)
    angle = fold_axis_rotation(best)
    _log.debug("tilt axis direction %.3f deg from +y (score %.4f)", angle, float(scores.min()))
    return angle


def is_quarter_turn(angle_deg: float) -> bool:
    """Whether ``angle_deg`` is a multiple of 90 deg, which :func:`rotate_to_axis` applies exactly (``rot90``)."""
    quarter = float(angle_deg) / 90.0
    return abs(quarter - round(quarter)) < 1e-9


def rotate_to_axis(images: np.ndarray, angle_deg: float, *, order: int = 3) -> np.ndarray:
    """Rotate images so that a tilt axis at ``angle_deg`` comes to lie along +y.

    Output pixel ``(y', x')`` (centred coordinates) takes the input value at
    ``y = y' cos a - x' sin a``, ``x = y' sin a + x' cos a``: a proper rotation
    (no mirror), so the axis direction ``(cos a, sin a)`` becomes ``(1, 0)``.
    A multiple of 90 deg is an exact ``numpy.rot90`` (no interpolation; a
    (ny, nx) image becomes (nx, ny) at ±90 deg); any other angle resamples
    about the image centre with a spline of ``order`` (scipy.ndimage; cubic
    by default, as the alignment's shifts), keeps the shape, and fills the
    corners that come from outside the field with the nearest edge pixel.

    Parameters
    ----------
    images : (n, ny, nx) or (ny, nx) ndarray
    angle_deg : float
        ``tilt_axis_rotation_deg`` of the images (deg from +y towards +x).
    order : int, optional
        Spline order (0-5) for angles that are not multiples of 90 deg.

    Returns
    -------
    ndarray
        The rotated images; float32 for float32 input (float64 otherwise).
    """
    stack, single = _image_stack(images)
    a = check_number(angle_deg, "angle_deg")
    order = check_int(order, "order", minimum=0)
    if is_quarter_turn(a):
        out = np.ascontiguousarray(np.rot90(stack, k=-int(round(a / 90.0)) % 4, axes=(1, 2)))
    else:
        c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
        matrix = np.array([[c, -s], [s, c]])
        centre = (np.asarray(stack.shape[1:], dtype=float) - 1) / 2.0
        offset = centre - matrix @ centre
        out = np.empty_like(stack)
        for k, img in enumerate(stack):
            ndimage.affine_transform(img, matrix, offset, output=out[k], order=order, mode="nearest")
    return out[0] if single else out


def choose_axis_rotation(
    images: np.ndarray,
    angles_deg,
    settings: AlignSettings = AlignSettings(),
    *,
    recorded: float | None = None,
) -> tuple[float, str]:
    """The tilt axis's in-plane direction to use for a series, and where it came from.

    Parameters
    ----------
    images : (n, ny, nx) ndarray
        The raw tilt series.
    angles_deg : (n,) array_like
        Its tilt angles (deg).
    settings : AlignSettings, optional
        ``axis_rotation`` (``"auto"``, ``"find"`` or a number, deg) and
        ``axis_rotation_snap_deg``.
    recorded : float, optional
        The series' attribute ``tilt_axis_rotation_deg`` (deg), if it has one.

    Returns
    -------
    angle_deg : float
        In ``(-90, 90]``; a found angle within ``axis_rotation_snap_deg`` of 0 or
        90 deg is snapped to it.
    source : {'file', 'found', 'setting'}
    """
    choice = settings.axis_rotation
    if not isinstance(choice, str):
        return fold_axis_rotation(choice), "setting"
    if choice == "auto" and recorded is not None:
        return fold_axis_rotation(check_number(recorded, "tilt_axis_rotation_deg")), "file"
    found = find_tilt_axis_rotation(images, angles_deg)
    nearest = 90.0 * round(found / 90.0)
    if abs(found - nearest) <= settings.axis_rotation_snap_deg:
        found = fold_axis_rotation(nearest)
    return found, "found"
