"""Position of the tilt axis in an aligned tilt series (the paper's third step).

Convention
----------
``offset_px`` is how far, in pixels along +x, the tilt axis lies from the
centre column ``(nx - 1) / 2`` of the images: a point on the axis appears
in column ``(nx - 1) / 2 + offset_px`` at every tilt. It is the
``axis_offset_px`` of :class:`sinter4d.operators.ParallelProjector`, whose
detector pixel ``i`` sits at ``u = i - (n_det - 1) / 2 - axis_offset_px``.
:func:`center_tilt_axis` shifts the images by ``-offset_px`` along x so that
the axis lands on the centre column. After :func:`~sinter4d.pipeline.align.align_translations`
the offset is that of the aligned series (it includes the x drift of the
reference image, which the alignment keeps fixed).

Why not an image-sharpness criterion by default
-----------------------------------------------
An axis error ``delta`` shifts every projection by ``delta``; in Fourier
space it multiplies each central slice by ``exp(-2 pi i rho delta)``, a
pure phase. The energy (L2 norm, variance) of a filtered or unfiltered
back-projection is therefore blind to it (up to discretisation); only the
part of the phase that a rigid shift of the object cannot absorb,
``delta (1 - cos theta)`` (at most 0.23 ``delta`` at 40 deg), shows, as an
arc of radius ``delta`` around every point, at spatial frequencies above
~``1 / (4 delta)`` cycle/px. At the paper's dose (about 6 e-/px) those
frequencies are pure noise, so the total variation of the ramp-filtered
back-projection (the paper's "artefact", ``method='sharpness'``) misplaces
the axis even on noise-free images, and more at low dose; smoothing the
images first biases it further (docs/validation.md).

``method='moments'`` (default) uses the same consistency in its most
noise-robust form, the first Helgason–Ludwig condition: in every row ``y``
the centre of mass of the projection moves as
``c_y(theta) = offset + X_y cos(theta) + Z_y sin(theta)``, where
``(X_y, Z_y)`` is the centre of mass of that slice relative to the axis.
A weighted least-squares fit over all usable rows, with ``offset`` shared
and ``(X_y, Z_y)`` free per row, gives the offset from the curvature of the
tracks. Rows whose content touches the left or right edge at some tilt
(truncated projections) are left out.

References
----------
.. [Helgason1980] S. Helgason, "The Radon Transform", Birkhäuser (1980);
   D. Ludwig, "The Radon transform on Euclidean space", Comm. Pure Appl.
   Math. 19, 49–81 (1966). doi:10.1002/cpa.3160190105
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from ..checks import check_choice
from ..errors import InputError
from .align import apply_shifts
from .denoise import _image_stack
from .settings import AlignSettings

__all__ = ["AXIS_METHODS", "center_tilt_axis", "find_tilt_axis"]

AXIS_METHODS = ("moments", "sharpness")
_log = logging.getLogger(__name__)


def center_tilt_axis(images: np.ndarray, offset_px: float, *, method: str = "spline") -> np.ndarray:
    """Shift every image by ``-offset_px`` along x: the tilt axis moves to the centre column.

    Parameters
    ----------
    images : (n, ny, nx) or (ny, nx) ndarray
    offset_px : float
        Axis offset from :func:`find_tilt_axis`, px (+x).
    method : {'spline', 'fourier'}, optional
        See :func:`~sinter4d.pipeline.align.apply_shifts`.

    Returns
    -------
    ndarray
        Same shape; float32 for float32 input.
    """
    stack, single = _image_stack(images)
    shifts = np.tile([0.0, -float(offset_px)], (stack.shape[0], 1))
    out = apply_shifts(stack, shifts, method=method)
    return out[0] if single else out


def _background_subtracted(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image minus its background level, and the (n, ny, nx) object masks.

    Objects are the pixels of a Gaussian-smoothed (sigma 2 px) image above
    Otsu's threshold; the background level is the mean of the pixels more
    than 3 px away from any object.
    """
    from skimage.filters import threshold_otsu

    out = np.empty(stack.shape, dtype=np.float64)
    masks = np.zeros(stack.shape, dtype=bool)
    for k, img in enumerate(stack):
        img = img.astype(np.float64)
        smooth = ndimage.gaussian_filter(img, 2.0)
        if np.ptp(smooth) > 0:
            masks[k] = smooth > threshold_otsu(smooth)
        far = ~ndimage.binary_dilation(masks[k], iterations=3)
        out[k] = img - (img[far].mean() if far.any() else img.mean())
    return out, masks


def _moments_offset(stack: np.ndarray, angles: np.ndarray, window_px: int) -> float:
    """Weighted least-squares axis offset from the centre-of-mass tracks of all usable rows."""
    n, ny, nx = stack.shape
    u = np.arange(nx) - (nx - 1) / 2.0
    data, masks = _background_subtracted(stack)
    # one column window per row: where an object lies at any tilt, widened by window_px
    window = ndimage.binary_dilation(masks.any(axis=0), structure=np.ones((1, 3), bool), iterations=window_px)
    data *= window[None]
    m0 = data.sum(axis=2)  # (n, ny)
    m1 = (data * u).sum(axis=2)
    centre = m1 / np.where(m0 > 0, m0, 1.0)
    # variance of the centre of mass for noise of variance ~ signal (Poisson-like; scale-free weights)
    spread = np.clip(stack, 0, None) * window[None] * (u[None, None, :] - centre[..., None]) ** 2
    var = np.maximum(spread.sum(axis=2), 1e-12)
    truncated = window[:, 0] | window[:, -1]
    # rows with a mass of at least 5 % of the heaviest row's at every tilt
    usable = ~truncated & (m0.min(axis=0) > 0.05 * max(float(m0.mean(axis=0).max()), 0.0))
    if usable.sum() < 3:
        raise InputError(
            f"only {int(usable.sum())} rows hold whole (untruncated) objects at every tilt; "
            "the moment method needs at least 3 (try method='sharpness')"
        )
    theta = np.deg2rad(angles)
    basis = np.column_stack([np.cos(theta), np.sin(theta)])
    one = np.ones(n)
    num = den = 0.0
    for c, w in zip(centre[:, usable].T, (m0[:, usable] ** 2 / var[:, usable]).T):
        bw = basis.T * w
        resid_one = one - basis @ np.linalg.solve(bw @ basis, bw @ one)  # 1 with cos/sin projected out
        num += (w * resid_one) @ c
        den += (w * resid_one) @ one
    return float(num / den)


def _ramp_filter_upsampled(sino: np.ndarray, upsample: int) -> np.ndarray:
    """Ramp-filter along the last axis (zero-padded) and resample ``upsample`` x finer."""
    nx = sino.shape[-1]
    m = int(2 ** np.ceil(np.log2(2 * nx)))
    freq = np.fft.rfftfreq(m)
    spec = np.fft.rfft(sino, m, axis=-1) * (2.0 * np.abs(freq))
    fine = np.zeros(spec.shape[:-1] + (m * upsample // 2 + 1,), dtype=complex)
    fine[..., : spec.shape[-1]] = spec
    return np.fft.irfft(fine, m * upsample, axis=-1)[..., : nx * upsample] * upsample


def _sharpness_scores(stack: np.ndarray, angles: np.ndarray, offsets: np.ndarray, n_rows: int, thickness_px: int) -> np.ndarray:
    """Total variation of ramp-filtered back-projections of ``n_rows`` rows for each offset.

    The slice grid is fixed to the detector (column ``X`` relative to the
    centre column), so the sample position of ``(X, z)`` at tilt ``theta`` is
    ``X cos theta + z sin theta + offset (1 - cos theta)`` from the centre:
    the content stays in place and only the inconsistency changes. Only the
    part of the slice seen by every tilt at every offset is scored.
    """
    n, ny, nx = stack.shape
    data, _ = _background_subtracted(stack)
    rows = np.argsort(data.var(axis=(0, 2)))[::-1][: min(n_rows, ny)]
    up = 4
    sino = _ramp_filter_upsampled(np.transpose(data[:, np.sort(rows), :], (1, 0, 2)), up)
    theta = np.deg2rad(angles)
    xs = np.arange(nx) - (nx - 1) / 2.0
    zs = np.arange(thickness_px) - (thickness_px - 1) / 2.0
    reach = (thickness_px / 2.0) * np.abs(np.sin(theta)).max() + np.abs(offsets).max() * (1 - np.cos(theta)).max() + 2
    keep = np.abs(xs) <= nx / 2.0 - reach
    if keep.sum() < 8:
        raise InputError("images too narrow for this search range and thickness_px")
    scores = np.empty(offsets.size)
    for k, off in enumerate(offsets):
        rec = np.zeros((sino.shape[0], zs.size, nx))
        for a, t in enumerate(theta):
            pos = ((nx - 1) / 2.0 + xs[None, :] * np.cos(t) + zs[:, None] * np.sin(t) + off * (1 - np.cos(t))) * up
            i0 = np.clip(np.floor(pos).astype(int), 0, nx * up - 2)
            w = pos - i0
            rec += sino[:, a, i0] * (1 - w) + sino[:, a, i0 + 1] * w
        gz, gx = np.gradient(rec[:, :, keep], axis=(1, 2))
        scores[k] = np.sqrt(gz**2 + gx**2).sum()
    return scores


def find_tilt_axis(
    images: np.ndarray,
    angles_deg: np.ndarray,
    settings: AlignSettings = AlignSettings(),
    *,
    method: str = "moments",
    search_px: tuple[float, float] | None = None,
    window_px: int = 4,
    n_rows: int = 32,
    thickness_px: int | None = None,
) -> float:
    """Offset of the tilt axis from the centre column of an aligned tilt series.

    Parameters
    ----------
    images : (n, ny, nx) ndarray
        Aligned tilt series, bright objects on a darker uniform background
        (HAADF); denoised or raw.
    angles_deg : (n,) array_like
        Tilt angles in degrees (a limited range such as +-40 deg is fine;
        nothing here needs 180 deg).
    method : {'moments', 'sharpness'}, optional
        ``'moments'``: first-moment consistency (see the module docstring);
        ``'sharpness'``: minimum total variation of the ramp-filtered
        back-projection of ``n_rows`` rows over a 0.5 px grid on
        ``search_px``, refined by a parabola through the 5 best-placed
        points (errors of pixels even on noise-free images).
    settings : AlignSettings, optional
        Its ``axis_search_px`` is the half-width of the admissible range.
    search_px : (float, float), optional
        Admissible range of the offset, px, in place of
        ``±settings.axis_search_px``; a result outside it raises.
    window_px : int, optional
        ``'moments'``: margin (px) added on both sides of the objects of a
        row when summing its centre of mass.
    n_rows : int, optional
        ``'sharpness'``: rows back-projected (those of largest variance).
    thickness_px : int, optional
        ``'sharpness'``: height of the back-projected slices (default ``nx // 2``).

    Returns
    -------
    float
        ``offset_px``: the axis lies at column ``(nx - 1) / 2 + offset_px``.

    Raises
    ------
    InputError
        On bad input, too few usable rows, or a result outside ``search_px``.
    """
    check_choice(method, "method", AXIS_METHODS)
    stack, single = _image_stack(images)
    angles = np.asarray(angles_deg, dtype=np.float64).ravel()
    if single or angles.shape != (stack.shape[0],) or stack.shape[0] < 3:
        raise InputError(f"need an (n >= 3, ny, nx) stack and n angles, got shapes {np.shape(images)} and {np.shape(angles_deg)}")
    if np.any(np.abs(angles) >= 90):
        raise InputError("angles_deg must lie strictly between -90 and 90 degrees")
    if search_px is None:
        search_px = (-settings.axis_search_px, settings.axis_search_px)
    lo, hi = float(search_px[0]), float(search_px[1])
    if not lo < hi:
        raise InputError(f"search_px must be (low, high) with low < high, got {search_px}")
    if method == "moments":
        offset = _moments_offset(stack, angles, int(window_px))
    else:
        offsets = np.arange(lo, hi + 0.25, 0.5)
        scores = _sharpness_scores(stack, angles, offsets, int(n_rows), int(thickness_px or stack.shape[2] // 2))
        k = int(np.clip(np.argmin(scores), 2, offsets.size - 3))
        a, b, _ = np.polyfit(offsets[k - 2 : k + 3], scores[k - 2 : k + 3], 2)
        offset = float(-b / (2 * a)) if a > 0 else float(offsets[np.argmin(scores)])
    if not lo <= offset <= hi:
        raise InputError(f"tilt-axis offset {offset:.2f} px is outside search_px={search_px}; check the alignment")
    _log.debug("tilt axis offset %.3f px (method %s)", offset, method)
    return offset
