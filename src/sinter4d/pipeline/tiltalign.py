"""A tilt-alignment model fitted to tracked features: one in-plane rotation and one shift per image.

The common line (:mod:`sinter4d.pipeline.axis_direction`) finds one
direction of the tilt axis for a whole series; a stage whose scan frame
turns a little from image to image (docs/design.md, "Stage") breaks its
assumption, and the per-image turns pull it 5-10x their size
(docs/validation.md). IMOD's ``tiltalign`` [Mastronarde2017]_ instead fits
the positions of features tracked through the series with a projection
model; this module is that model, with the variables the simulated stage
has.

Model
-----
In the frame of the prepared series (the axis along y through the centre
column, centred pixel coordinates ``(y, x)``), point ``j`` at ``(X, Y, Z)_j``
(px) appears in image ``i`` at

.. math::

   p_{ij} = R(\\rho_i) \\, (Y_j, \\; X_j \\cos\\theta_i + Z_j \\sin\\theta_i) + t_i,

``R(rho)`` turning +y towards +x (a tilt axis along y then runs along
``(cos rho, sin rho)``, the convention of ``tilt_axis_rotation_deg``),
``theta_i`` the tilt angle (plus a fitted correction ``dtheta_i`` when
``fit_tilt``, zero at the reference image), ``t_i`` the image's shift (px).
The fit is :func:`scipy.optimize.least_squares` (trust-region reflective,
analytic Jacobian, a robust ``soft_l1`` loss), followed by rounds that drop
points whose residual is far above the others' (a feature that jumped).

Gauges: a translation of all points is absorbed by the shifts (a
translation of the reconstructed volume); it is fixed afterwards by the
translation that keeps the shifts smallest, so the volume stays where
the alignment put it. A common rotation of every image is *not* a gauge:
it moves point ``j`` along the axis by ``delta (X_j (cos theta_i - 1) +
Z_j sin theta_i)``, which no shift and no ``Y_j`` absorbs, so the absolute
direction is found from the points' spread across the axis and in depth.
With ``fit_tilt`` a common tilt offset would be a rotation of the object
about the axis (a gauge), so the reference image's correction is fixed at 0.

References
----------
.. [Mastronarde2017] D. N. Mastronarde, S. R. Held, "Automated tilt series
   alignment and tomographic reconstruction in IMOD", J. Struct. Biol. 197,
   102-113 (2017). doi:10.1016/j.jsb.2016.07.011
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.optimize import least_squares

from ..checks import check_angles, check_number
from ..errors import InputError
from .denoise import _image_stack

__all__ = ["MIN_FEATURES", "MIN_VIEWS", "TiltAlignment", "align_to_particles", "fit_tilt_alignment", "project_points", "warp_views"]

#: Fewest tracked features the fit accepts (3 points fix a rotation per image and its gauge, with margin).
MIN_FEATURES = 4
#: Fewest images the fit accepts.
MIN_VIEWS = 3

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TiltAlignment:
    """Result of :func:`fit_tilt_alignment`.

    Attributes
    ----------
    rotation_deg : (n,) ndarray
        In-plane direction of the tilt axis in each image of the fitted
        frame (deg from +y towards +x).
    shifts_px : (n, 2) ndarray
        ``t_i`` = ``(dy, dx)`` (px): where the axis's origin appears in each image.
    tilt_correction_deg : (n,) ndarray
        ``dtheta_i`` (deg; zeros unless ``fit_tilt``).
    points_px : (m, 3) ndarray
        ``(X, Y, Z)`` of each feature (px); NaN for features rejected.
    residual_px : float
        Root-mean-square residual of the kept observations (px).
    kept : (m,) bool ndarray
        Features kept after the rejection rounds.
    condition : float
        Condition number of the Jacobian (columns scaled to unit norm) at the solution, gauges removed.
    """

    rotation_deg: np.ndarray
    shifts_px: np.ndarray
    tilt_correction_deg: np.ndarray
    points_px: np.ndarray
    residual_px: float
    kept: np.ndarray
    condition: float


def project_points(points_px, angles_deg, rotation_deg, shifts_px) -> np.ndarray:
    """Image positions ``(n, m, 2)`` (y, x; px) of points ``(m, 3)`` (X, Y, Z; px) under the model.

    ``angles_deg`` (n,) are the tilts (with any correction already added),
    ``rotation_deg`` (n,) the in-plane rotations, ``shifts_px`` (n, 2) the shifts.
    """
    p = np.asarray(points_px, dtype=float)
    th = np.deg2rad(np.asarray(angles_deg, dtype=float))[:, None]
    rho = np.deg2rad(np.asarray(rotation_deg, dtype=float))[:, None]
    t = np.asarray(shifts_px, dtype=float)
    v = np.broadcast_to(p[None, :, 1], (th.shape[0], p.shape[0]))
    u = p[None, :, 0] * np.cos(th) + p[None, :, 2] * np.sin(th)
    y = v * np.cos(rho) - u * np.sin(rho) + t[:, None, 0]
    x = v * np.sin(rho) + u * np.cos(rho) + t[:, None, 1]
    return np.stack([y, x], axis=-1)


class _Problem:
    """Parameters ``[rho (n), t (n, 2), dtheta (n - 1, when fitted), points (m, 3)]``; residuals of the seen observations."""

    def __init__(self, positions, angles, reference, fit_tilt, smooth):
        self.n, self.m = positions.shape[:2]
        self.obs = positions
        self.views, self.points = np.nonzero(np.isfinite(positions).all(axis=2))
        self.angles = np.deg2rad(angles)
        self.tilted = np.flatnonzero(np.arange(self.n) != reference) if fit_tilt else np.zeros(0, dtype=int)
        self.smooth = smooth  # weight of the (rho_{i+1} - rho_i) rows, px per radian (0: none)
        self.n_view = 3 * self.n + self.tilted.size

    def unpack(self, x):
        """``rho`` (rad), ``t`` (px), ``dtheta`` (rad) per image and the ``(m, 3)`` points (px)."""
        n = self.n
        dth = np.zeros(n)
        dth[self.tilted] = x[3 * n : self.n_view]
        return x[:n], x[n : 3 * n].reshape(n, 2), dth, x[self.n_view :].reshape(self.m, 3)

    def _parts(self, x):
        rho, t, dth, pts = self.unpack(x)
        i, j = self.views, self.points
        th = self.angles[i] + dth[i]
        ct, st, c, s = np.cos(th), np.sin(th), np.cos(rho[i]), np.sin(rho[i])
        u = pts[j, 0] * ct + pts[j, 2] * st
        v = pts[j, 1]
        return i, j, ct, st, c, s, u, v, t, pts

    def residuals(self, x):
        i, j, ct, st, c, s, u, v, t, _ = self._parts(x)
        r = np.empty((i.size, 2))
        r[:, 0] = v * c - u * s + t[i, 0] - self.obs[i, j, 0]
        r[:, 1] = v * s + u * c + t[i, 1] - self.obs[i, j, 1]
        r = r.ravel()
        if self.smooth > 0:
            r = np.concatenate([r, self.smooth * np.diff(x[: self.n])])
        return r

    def jacobian(self, x):
        i, j, ct, st, c, s, u, v, _, pts = self._parts(x)
        n, k = self.n, np.arange(i.size)
        jac = np.zeros((2 * i.size + (n - 1 if self.smooth > 0 else 0), self.n_view + 3 * self.m))
        ry, rx = 2 * k, 2 * k + 1
        jac[ry, i], jac[rx, i] = -v * s - u * c, v * c - u * s  # rho
        jac[ry, n + 2 * i], jac[rx, n + 2 * i + 1] = 1.0, 1.0  # t
        if self.tilted.size:
            col = np.full(n, -1)
            col[self.tilted] = 3 * n + np.arange(self.tilted.size)
            du = -pts[j, 0] * st + pts[j, 2] * ct
            on = col[i] >= 0
            jac[ry[on], col[i][on]], jac[rx[on], col[i][on]] = (-s * du)[on], (c * du)[on]
        base = self.n_view + 3 * j
        jac[ry, base], jac[rx, base] = -s * ct, c * ct  # X
        jac[ry, base + 1], jac[rx, base + 1] = c, s  # Y
        jac[ry, base + 2], jac[rx, base + 2] = -s * st, c * st  # Z
        if self.smooth > 0:
            rows = 2 * i.size + np.arange(n - 1)
            jac[rows, np.arange(n - 1)] = -self.smooth
            jac[rows, np.arange(1, n)] = self.smooth
        return jac


def _initial_points(positions: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """``(m, 3)`` points from the positions with no rotation or shift: ``Y`` the mean y, ``(X, Z)`` by linear least squares in x."""
    th = np.deg2rad(angles)
    basis = np.column_stack([np.cos(th), np.sin(th)])
    out = np.zeros((positions.shape[1], 3))
    for j in range(positions.shape[1]):
        seen = np.isfinite(positions[:, j]).all(axis=1)
        out[j, 1] = positions[seen, j, 0].mean()
        out[j, [0, 2]] = np.linalg.lstsq(basis[seen], positions[seen, j, 1], rcond=None)[0]
    return out


def _remove_translation_gauge(rho, t, dth, pts, angles):
    """Move the points by the translation that makes the shifts smallest (least squares); the fit is unchanged."""
    th = np.deg2rad(angles) + dth
    c, s = np.cos(rho), np.sin(rho)
    # effect on t_i of moving every point by (dX, dY, dZ): t_i -= R(rho_i) (dY, dX cos th_i + dZ sin th_i)
    g = np.zeros((rho.size, 2, 3))
    g[:, 0, 0], g[:, 1, 0] = -s * np.cos(th), c * np.cos(th)
    g[:, 0, 1], g[:, 1, 1] = c, s
    g[:, 0, 2], g[:, 1, 2] = -s * np.sin(th), c * np.sin(th)
    d = np.linalg.lstsq(g.reshape(-1, 3), t.ravel(), rcond=None)[0]
    return t - (g @ d), pts + d


def _condition(jac) -> float:
    """Condition number of a Jacobian with unit-norm columns, the 3 translation gauges (smallest singular values) removed."""
    j = np.asarray(jac)
    norms = np.linalg.norm(j, axis=0)
    j = j[:, norms > 0] / norms[norms > 0]
    sv = np.linalg.svd(j, compute_uv=False)
    return float(sv[0] / sv[-4]) if sv.size > 4 else math.inf


def fit_tilt_alignment(
    positions_px,
    angles_deg,
    *,
    fit_tilt: bool = True,
    rotation_smoothing: float = 0.0,
    loss: str = "soft_l1",
    f_scale_px: float = 0.5,
    reject_factor: float = 4.0,
    reference_index: int | None = None,
    condition: bool = False,
) -> TiltAlignment:
    """Fit the projection model (module docstring) to tracked feature positions.

    Parameters
    ----------
    positions_px : (n, m, 2) array_like
        ``(y, x)`` of feature ``j`` in image ``i``, centred pixel coordinates
        of the frame the series was prepared in; NaN where a feature was not
        tracked.
    angles_deg : (n,) array_like
        Nominal tilt angles (deg).
    fit_tilt : bool, optional
        Fit a correction to each tilt angle (the reference image's is 0).
    rotation_smoothing : float, optional
        Weight of the penalty on the change of rotation between consecutive
        images, px of residual per degree of change (0: each image free).
    loss : str, optional
        :func:`scipy.optimize.least_squares` loss (``'linear'`` for plain least squares).
    f_scale_px : float, optional
        Residual (px) where the robust loss turns from quadratic to linear.
    reject_factor : float, optional
        A feature whose RMS residual exceeds this many times the median
        feature's is dropped and the fit repeated (at most 3 rounds).
    reference_index : int, optional
        Image whose tilt correction is fixed (default: the one nearest 0 deg).
    condition : bool, optional
        Compute the Jacobian's condition number (a dense SVD; NaN otherwise).

    Returns
    -------
    TiltAlignment

    Raises
    ------
    InputError
        Fewer than :data:`MIN_VIEWS` images, fewer than :data:`MIN_FEATURES`
        features seen in at least half of them, or mismatched shapes.
    """
    obs = np.array(positions_px, dtype=float)
    angles = check_angles(angles_deg)
    if obs.ndim != 3 or obs.shape[2] != 2 or obs.shape[0] != angles.size:
        raise InputError(f"positions_px must be (n_images, n_features, 2) for {angles.size} angles, got shape {obs.shape}")
    if angles.size < MIN_VIEWS:
        raise InputError(f"{angles.size} image(s); the tilt-alignment fit needs at least {MIN_VIEWS}")
    f_scale = check_number(f_scale_px, "f_scale_px", minimum=1e-6)
    smooth = check_number(rotation_smoothing, "rotation_smoothing", minimum=0.0)
    ref = int(np.argmin(np.abs(angles))) if reference_index is None else int(reference_index)
    kept = np.isfinite(obs).all(axis=2).sum(axis=0) >= max(MIN_VIEWS, (angles.size + 1) // 2)
    x0 = None
    for _ in range(4):
        if kept.sum() < MIN_FEATURES:
            raise InputError(f"{int(kept.sum())} feature(s) tracked through at least half the images; "
                             f"the tilt-alignment fit needs at least {MIN_FEATURES}")
        prob = _Problem(obs[:, kept], angles, ref, fit_tilt, np.rad2deg(1.0) * smooth)
        if x0 is None or x0.size != prob.n_view + 3 * prob.m:
            x0 = np.concatenate([np.zeros(prob.n_view), _initial_points(obs[:, kept], angles).ravel()])
        sol = least_squares(prob.residuals, x0, jac=prob.jacobian, loss=loss, f_scale=f_scale,
                            x_scale="jac", method="trf", tr_solver="exact", xtol=1e-10, ftol=1e-10, gtol=1e-10)
        rho, t, dth, pts = prob.unpack(sol.x)
        resid = project_points(pts, angles + np.rad2deg(dth), np.rad2deg(rho), t) - obs[:, kept]
        per_feature = np.sqrt(np.nanmean((resid**2).sum(axis=2), axis=0))
        bad = per_feature > reject_factor * max(float(np.median(per_feature)), 1e-3)
        if not bad.any():
            break
        idx = np.flatnonzero(kept)
        kept = kept.copy()
        kept[idx[bad]] = False
        x0 = np.concatenate([sol.x[: prob.n_view], pts[~bad].ravel()])
    t, pts = _remove_translation_gauge(rho, t, dth, pts, angles)
    points = np.full((obs.shape[1], 3), np.nan)
    points[kept] = pts
    rms = float(np.sqrt(np.nanmean((resid**2).sum(axis=2))))
    cond = _condition(sol.jac) if condition else math.nan
    _log.debug("tilt alignment: %d features, rms %.3f px, rotation %.3f..%.3f deg", kept.sum(), rms,
               np.rad2deg(rho).min(), np.rad2deg(rho).max())
    return TiltAlignment(np.rad2deg(rho), t, np.rad2deg(dth), points, rms, kept, cond)


def warp_views(images: np.ndarray, rotation_deg, shifts_px, *, order: int = 3) -> np.ndarray:
    """Each image turned and shifted in one resampling: output pixel ``q`` takes the input at ``R(a_i) q + s_i``.

    ``R(a)`` is the rotation of :func:`project_points` (it takes +y to
    ``(cos a, sin a)``), about the image centre: a tilt axis at ``a_i`` in
    image ``i`` comes to lie along +y, and a point the model puts at ``w``
    in the output frame is read from ``R(a_i) w + s_i``. Edges take the
    nearest pixel (as :func:`~sinter4d.pipeline.axis_direction.rotate_to_axis`).

    Parameters
    ----------
    images : (n, ny, nx) ndarray
    rotation_deg : (n,) array_like
        ``a_i`` (deg from +y towards +x).
    shifts_px : (n, 2) array_like
        ``s_i`` = ``(dy, dx)`` in input pixels.
    order : int, optional
        Spline order (cubic by default, as the alignment's shifts).

    Returns
    -------
    (n, ny, nx) ndarray
        float32 for float32 input (float64 otherwise).
    """
    stack, _ = _image_stack(images)
    rot = np.deg2rad(np.asarray(rotation_deg, dtype=float))
    shifts = np.asarray(shifts_px, dtype=float)
    if rot.shape != (stack.shape[0],) or shifts.shape != (stack.shape[0], 2):
        raise InputError(f"need {stack.shape[0]} rotations and (n, 2) shifts, got shapes {rot.shape} and {shifts.shape}")
    centre = (np.asarray(stack.shape[1:], dtype=float) - 1) / 2.0
    out = np.empty_like(stack)
    for k, img in enumerate(stack):
        c, s = math.cos(rot[k]), math.sin(rot[k])
        matrix = np.array([[c, -s], [s, c]])
        ndimage.affine_transform(img, matrix, centre - matrix @ centre + shifts[k], output=out[k], order=order, mode="nearest")
    return out


def align_to_particles(images: np.ndarray, angles_deg, *, radius_px: tuple[float, float], smooth_px: float = 1.5) -> TiltAlignment:
    """Track the particles of a prepared series and fit the projection model to them.

    The particles are the blobs of the image nearest 0 deg with radii in
    ``radius_px`` (:func:`~sinter4d.pipeline.feature_tracks.particle_centres`);
    each is followed by a patch of side ``1.8 x`` the largest radius cut from
    that image (a sphere's outline does not change with the tilt, so no
    stretch and no accumulated error), on images smoothed by ``smooth_px``
    (:func:`~sinter4d.pipeline.feature_tracks.track_patches`). The fit
    leaves the tilt angles as they are (docs/validation.md: on a compact
    cluster their corrections are not identifiable).

    Parameters
    ----------
    images : (n, ny, nx) ndarray
        Prepared series (denoised, turned to the common-line direction,
        aligned, axis on the centre column).
    angles_deg : (n,) array_like
        Tilt angles (deg).
    radius_px : (float, float)
        Smallest and largest particle radius (px).
    smooth_px : float, optional
        Gaussian sigma (px) before matching.

    Returns
    -------
    TiltAlignment
        Rotations and shifts in the frame of ``images``.

    Raises
    ------
    InputError
        Fewer than :data:`MIN_FEATURES` particles tracked through half the series.
    """
    from .feature_tracks import particle_centres, track_patches

    stack, _ = _image_stack(images)
    angles = check_angles(angles_deg)
    lo, hi = (float(r) for r in radius_px)
    patch = 2 * int(round(0.9 * hi))
    search = max(3, int(round(0.27 * hi)))
    ref = int(np.argmin(np.abs(angles))) if angles.size == stack.shape[0] else 0
    centres = particle_centres(stack[ref], min_radius_px=lo, max_radius_px=hi, margin_px=patch // 2 + search + 1)
    if centres.shape[0] < MIN_FEATURES:
        raise InputError(f"{centres.shape[0]} particle(s) of radius {lo:.1f}-{hi:.1f} px found in the image nearest 0 deg; "
                         f"the tilt-alignment fit needs at least {MIN_FEATURES}")
    tracks = track_patches(stack, angles, centres, patch_px=patch, search_px=search, template="reference", smooth_px=smooth_px)
    return fit_tilt_alignment(tracks, angles, fit_tilt=False)
