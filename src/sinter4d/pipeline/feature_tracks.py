"""Features followed through a prepared tilt series by patch tracking (IMOD's fiducial-less alignment).

A patch of the image nearest 0 deg is followed outward, image by image, by
normalised cross-correlation (:func:`skimage.feature.match_template`) with a
template cut from the image before, optionally stretched across the axis by
``cos(theta_i) / cos(theta_prev)`` (flat features shorten so; a sphere's
outline does not), and the correlation peak is refined to a fraction of a
pixel by a parabola through its neighbours in y and in x. A track stops
where the correlation falls below ``min_score`` or the patch leaves the
image. This is IMOD's "patch tracking" [Mastronarde2017]_; the positions are
what :func:`~sinter4d.pipeline.tiltalign.fit_tilt_alignment` fits.

Where the patches sit: :func:`particle_centres` puts one on each particle
(the maxima of a Laplacian-of-Gaussian, :func:`skimage.feature.blob_log`, of
the image nearest 0 deg), :func:`grid_centres` on a regular grid over the
specimen (docs/validation.md compares the two).

References
----------
.. [Mastronarde2017] D. N. Mastronarde, S. R. Held, "Automated tilt series
   alignment and tomographic reconstruction in IMOD", J. Struct. Biol. 197,
   102-113 (2017). doi:10.1016/j.jsb.2016.07.011
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage.feature import blob_log, match_template
from skimage.filters import threshold_otsu

from ..checks import check_angles, check_choice, check_int, check_number
from ..errors import InputError
from .denoise import _image_stack

__all__ = ["grid_centres", "particle_centres", "track_patches"]


def particle_centres(image: np.ndarray, *, min_radius_px: float, max_radius_px: float, margin_px: int = 0) -> np.ndarray:
    """``(m, 2)`` centres (y, x; centred px) of the round particles of an image (:func:`skimage.feature.blob_log`).

    ``min_radius_px`` and ``max_radius_px`` bound the particles' radii (a
    blob of radius ``r`` answers at the Laplacian's scale ``r / sqrt(2)``);
    blobs nearer than ``margin_px`` to an edge are left out.
    """
    img = np.asarray(image, dtype=np.float64)
    scaled = (img - img.min()) / max(float(np.ptp(img)), 1e-300)
    lo = check_number(min_radius_px, "min_radius_px", minimum=0.5) / math.sqrt(2)
    hi = check_number(max_radius_px, "max_radius_px", minimum=min_radius_px) / math.sqrt(2)
    blobs = blob_log(scaled, min_sigma=lo, max_sigma=hi, num_sigma=8, threshold=0.05, overlap=0.3)
    return _inside(blobs[:, :2].astype(float), img.shape, margin_px)


def grid_centres(image: np.ndarray, *, spacing_px: int, margin_px: int = 0) -> np.ndarray:
    """``(m, 2)`` centres (y, x; centred px) of a square grid, kept where the smoothed image is above Otsu's threshold."""
    img = np.asarray(image, dtype=np.float64)
    step = check_int(spacing_px, "spacing_px", minimum=2)
    smooth = ndimage.gaussian_filter(img, 2.0)
    inside = smooth > threshold_otsu(smooth)
    yy, xx = np.mgrid[step // 2 : img.shape[0] : step, step // 2 : img.shape[1] : step]
    keep = inside[yy, xx]
    return _inside(np.column_stack([yy[keep], xx[keep]]).astype(float), img.shape, margin_px)


def _inside(index_yx: np.ndarray, shape, margin: int) -> np.ndarray:
    """Array indices to centred coordinates, those within ``margin`` of an edge dropped."""
    size = np.asarray(shape, dtype=float)
    ok = ((index_yx >= margin) & (index_yx <= size - 1 - margin)).all(axis=1)
    return index_yx[ok] - (size - 1) / 2.0


def _stretch_x(patch: np.ndarray, factor: float) -> np.ndarray:
    """The patch stretched by ``factor`` along x about its centre (cubic spline, nearest edges)."""
    if abs(factor - 1.0) < 1e-6:
        return patch
    c = float(patch.shape[1] // 2)  # the template's centre pixel (see _match)
    return ndimage.affine_transform(patch, np.diag([1.0, 1.0 / factor]), offset=(0.0, c - c / factor), order=3, mode="nearest")


def _subpixel_peak(score: np.ndarray) -> tuple[float, float, float]:
    """``(iy, ix, value)`` of the maximum, refined by a parabola through its neighbours along each axis."""
    iy, ix = np.unravel_index(int(np.argmax(score)), score.shape)
    best = float(score[iy, ix])
    out = [float(iy), float(ix)]
    for axis, i in enumerate((iy, ix)):
        if 0 < i < score.shape[axis] - 1:
            lo = score[(iy - 1, ix) if axis == 0 else (iy, ix - 1)]
            hi = score[(iy + 1, ix) if axis == 0 else (iy, ix + 1)]
            curv = lo - 2 * best + hi
            if curv < 0:
                out[axis] += float(np.clip(0.5 * (lo - hi) / curv, -0.5, 0.5))
    return out[0], out[1], best


def _match(image, template, centre_idx, search_px):
    """Where (array index of the centre, float) ``template`` best matches ``image`` near ``centre_idx``, and the score."""
    half = np.asarray(template.shape) // 2
    lo = np.round(centre_idx).astype(int) - half - search_px
    hi = lo + np.asarray(template.shape) + 2 * search_px
    if (lo < 0).any() or (hi > np.asarray(image.shape)).any():
        return None, -1.0
    score = match_template(image[lo[0] : hi[0], lo[1] : hi[1]], template)
    py, px, value = _subpixel_peak(score)
    return np.array([lo[0] + py + half[0], lo[1] + px + half[1]]), value


def track_patches(
    images: np.ndarray,
    angles_deg,
    centres_px,
    *,
    patch_px: int = 48,
    search_px: int = 6,
    stretch: bool = False,
    template: str = "previous",
    smooth_px: float = 0.0,
    min_score: float = 0.5,
) -> np.ndarray:
    """Positions of patches followed outward from the image nearest 0 deg (module docstring).

    Parameters
    ----------
    images : (n, ny, nx) ndarray
        A prepared tilt series: aligned, the tilt axis along y through the
        centre column (its residual turns and shifts are what the tracks measure).
    angles_deg : (n,) array_like
        Tilt angles (deg).
    centres_px : (m, 2) array_like
        ``(y, x)`` of each patch's centre in the image nearest 0 deg, centred px.
    patch_px : int, optional
        Side of the square patch (px).
    search_px : int, optional
        How far from its position in the image before a patch is looked for (px).
    stretch : bool, optional
        Stretch the template across the axis by ``cos(theta_i) / cos(theta_prev)``.
    template : {'previous', 'reference'}, optional
        Cut the template from the image before (its content changes least)
        or from the image nearest 0 deg (no accumulated error; a sphere's
        outline does not change with the tilt).
    smooth_px : float, optional
        Gaussian sigma (px) applied to the images before matching (0: none).
    min_score : float, optional
        Lowest normalised cross-correlation kept; a track stops below it.

    Returns
    -------
    (n, m, 2) ndarray
        ``(y, x)`` of every patch in every image (centred px), NaN where not tracked.
    """
    stack, single = _image_stack(images)
    angles = check_angles(angles_deg)
    if single or angles.shape != (stack.shape[0],):
        raise InputError(f"need an (n, ny, nx) stack and n angles, got shapes {np.shape(images)} and {np.shape(angles_deg)}")
    centres = np.asarray(centres_px, dtype=float).reshape(-1, 2)
    size = check_int(patch_px, "patch_px", minimum=5)
    search = check_int(search_px, "search_px", minimum=1)
    check_choice(template, "template", ("previous", "reference"))
    if check_number(smooth_px, "smooth_px", minimum=0.0) > 0:
        stack = ndimage.gaussian_filter(stack.astype(np.float64), (0, smooth_px, smooth_px))
    origin = (np.asarray(stack.shape[1:], dtype=float) - 1) / 2.0
    cosines = np.cos(np.deg2rad(angles))
    ref = int(np.argmin(np.abs(angles)))
    out = np.full((stack.shape[0], centres.shape[0], 2), np.nan)
    out[ref] = centres
    for j in range(centres.shape[0]):
        for order in (range(ref + 1, stack.shape[0]), range(ref - 1, -1, -1)):
            prev = ref
            for i in order:
                src = ref if template == "reference" else prev
                p_idx = out[src, j] + origin
                cut = np.round(p_idx).astype(int) - size // 2
                if (cut < 0).any() or (cut + size > np.asarray(stack.shape[1:])).any():
                    break
                factor = cosines[i] / cosines[src] if stretch else 1.0
                patch = _stretch_x(stack[src, cut[0] : cut[0] + size, cut[1] : cut[1] + size].astype(np.float64), factor)
                predicted = out[prev, j] + origin
                found, score = _match(stack[i], patch, predicted, search)
                if found is None or score < min_score:
                    break
                # the template's centre is the rounded position: carry the sub-pixel remainder over
                rest = (p_idx - (cut + size // 2)) * np.array([1.0, factor])
                out[i, j] = found + rest - origin
                prev = i
    return out
