"""The neck fill of a finite resolution, and its correction.

A reconstruction resolves the particles to some blur ``sigma``, and a blurred
concave neck, binarised at half height, reads wider than it is. Near the neck
plane of two spheres of radius ``R`` joined by a neck of radius x, a section
at distance t from that plane has radius r(t) with r² ≈ x² + 2h|t|
(h = sqrt(R² − x²), the centre's distance from the neck plane). Blurred
along the pair axis by a Gaussian of SD ``sigma``, a point at radius ρ in the
neck plane is half inside when P(|T| > (ρ² − x²)/2h) = 1/2, T ~ N(0, sigma²),
so the apparent neck radius x_app obeys

    x_app² = x² + K,    K = 2 z h sigma,    z = Φ⁻¹(3/4) ≈ 0.674

:func:`neck_fill_nm2` gives K from a resolution; :func:`correct_neck_fill`
undoes it, ``x = sqrt(x_app² − K)``; the validation estimates K from
measured necks against known ones (:func:`sinter4d.validation.fit_neck_fill`;
``validation.nc`` reports it for pairs along and across the tilt axis).

A tomogram is not blurred by one Gaussian: the missing wedge resolves a neck
across the tilt axis worse than along it, and TV and the shell particles in a
contact's crevice add their own bias. K changes sign with the pair's
orientation and from one specimen to another (docs/validation.md), so the
measurement corrects nothing by default.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from ..checks import check_positive
from ..errors import InputError

#: Φ⁻¹(3/4): the half-height offset, in SDs, of a Gaussian-blurred kink.
HALF_HEIGHT_Z = float(ndtri(0.75))


def neck_fill_nm2(particle_radius_nm, resolution_nm, neck_radius_nm=0.0):
    """Fill K (nm²) that a Gaussian blur adds to the squared neck radius.

    Parameters
    ----------
    particle_radius_nm : float or ndarray
        Radius R of the two particles, nm.
    resolution_nm : float or ndarray
        SD of the Gaussian blur along the pair axis, nm.
    neck_radius_nm : float or ndarray, optional
        True neck radius x, nm (sets h = sqrt(R² − x²); default 0, touching).

    Returns
    -------
    float or ndarray
        ``K = 2 Φ⁻¹(3/4) sqrt(R² − x²) sigma``, nm²: the blurred neck reads
        ``sqrt(x² + K)`` at half height.

    Examples
    --------
    >>> round(float(neck_fill_nm2(75.0, 4.0)), 1)   # touching 150 nm spheres, 4 nm blur
    404.7
    """
    r = np.asarray(particle_radius_nm, dtype=float)
    s = np.asarray(resolution_nm, dtype=float)
    x = np.asarray(neck_radius_nm, dtype=float)
    if np.any(~np.isfinite(r) | (r <= 0)) or np.any(~np.isfinite(s) | (s < 0)):
        raise InputError("particle_radius_nm must be > 0 and resolution_nm >= 0")
    if np.any(~np.isfinite(x) | (x < 0) | (x > r)):
        raise InputError("neck_radius_nm must be in [0, particle_radius_nm]")
    out = 2.0 * HALF_HEIGHT_Z * np.sqrt(r * r - x * x) * s
    return float(out) if out.ndim == 0 else out


def correct_neck_fill(neck_radius_nm, fill_nm2: float):
    """Neck radius with a resolution fill taken out: ``sqrt(max(r² − K, 0))``.

    Parameters
    ----------
    neck_radius_nm : float or ndarray
        Apparent neck radius, nm (0 = no neck, NaN = not measured: both kept).
    fill_nm2 : float
        The fill K, nm² (:func:`neck_fill_nm2`, or as fitted by the validation); 0
        returns the input.

    Returns
    -------
    float or ndarray
        Corrected neck radius, nm; a neck narrower than the fill reads 0.

    Examples
    --------
    >>> correct_neck_fill([0.0, 20.0, 25.0, float("nan")], 400.0).tolist()
    [0.0, 0.0, 15.0, nan]
    """
    k = check_positive(fill_nm2, "fill_nm2", allow_zero=True)
    r = np.asarray(neck_radius_nm, dtype=float)
    out = np.sqrt(np.clip(r * r - k, 0.0, None))
    out = np.where(np.isnan(r), np.nan, out)
    return float(out) if out.ndim == 0 else out
