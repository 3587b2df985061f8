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
undoes it, ``x = sqrt(x_app² − K)``; :func:`fit_neck_fill` estimates K from
measured necks against known ones (``validation.nc`` reports it for pairs
along and across the tilt axis).

A tomogram is not blurred by one Gaussian: the missing wedge resolves a neck
across the tilt axis worse than along it, and TV and the shell particles in a
contact's crevice add their own bias. On the quick spec K changes sign with
the pair's orientation and from one specimen to another (385 nm² on seed 7,
−82 nm² on seed 11, both at the PSNR-optimal BM3D level), so the measurement
corrects nothing by default.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from ..errors import InputError
from ._checks import check_positive

#: Φ⁻¹(3/4): the half-height offset, in SDs, of a Gaussian-blurred kink.
HALF_HEIGHT_Z = float(ndtri(0.75))

#: Neck (nm) about which a reading curve's bias is read: mid-way between the
#: quick run's early and plateau necks.
NECK_READING_REFERENCE_NM = 25.0


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
        The fill K, nm² (:func:`neck_fill_nm2` or :func:`fit_neck_fill`); 0
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
    k = check_positive("fill_nm2", fill_nm2, allow_zero=True)
    r = np.asarray(neck_radius_nm, dtype=float)
    out = np.sqrt(np.clip(r * r - k, 0.0, None))
    out = np.where(np.isnan(r), np.nan, out)
    return float(out) if out.ndim == 0 else out


def fit_neck_fill(measured_nm, true_nm) -> tuple[float, int]:
    """Fill K (nm²) of measured necks against the true ones: median of ``r_meas² − r_true²``.

    Only necks seen in both (finite and > 0) count: a pair read apart (0)
    says nothing about the fill.

    Parameters
    ----------
    measured_nm, true_nm : array_like
        Apparent (uncorrected) and true neck radii, nm, of the same pairs and
        times (any matching shape).

    Returns
    -------
    fill_nm2 : float
        The median; negative when the necks read narrower than they are
        (where the reconstruction loses the neck's contrast); NaN when no neck
        is seen in both.
    n : int
        How many necks it is the median of.

    Examples
    --------
    >>> x = np.array([10.0, 20.0, 30.0, 0.0])
    >>> fit_neck_fill(np.sqrt(x**2 + 300.0), x)
    (300.0, 3)
    """
    m = np.asarray(measured_nm, dtype=float)
    t = np.asarray(true_nm, dtype=float)
    if m.shape != t.shape:
        raise InputError(f"measured_nm has shape {m.shape} but true_nm {t.shape}")
    seen = np.isfinite(m) & np.isfinite(t) & (m > 0) & (t > 0)
    n = int(seen.sum())
    if n == 0:
        return float("nan"), 0
    return float(np.median(m[seen] ** 2 - t[seen] ** 2)), n


def neck_reading_curve(true_nm, measured_nm, *, reference_nm: float = NECK_READING_REFERENCE_NM) -> tuple[float, float]:
    """Straight line through the measured necks against the true ones, about a reference neck.

    Least squares fit of ``measured = reference + gain (true - reference) + bias``:
    how a pipeline reads necks (gain < 1: small necks read wide and large
    ones narrow, as resolution does). A fit spec takes gain and bias (or
    priors on them, from several validation runs) as the reading curve of its
    neck noise model (``assimilation/README.md``).

    Parameters
    ----------
    true_nm, measured_nm : array_like
        Pairs of true and measured neck radii (nm), same shape; points where
        either is NaN are skipped.
    reference_nm : float, optional
        Neck (nm) at which ``bias`` is read (default
        :data:`NECK_READING_REFERENCE_NM`, 25 nm).

    Returns
    -------
    gain : float
    bias_nm : float
        Measured minus true at ``reference_nm`` (nm).

    Raises
    ------
    InputError
        Shapes that differ, fewer than three points, or all at one true value.

    Examples
    --------
    >>> import numpy as np
    >>> true = np.array([10.0, 20.0, 30.0])
    >>> [round(v, 3) for v in neck_reading_curve(true, 0.8 * true + 6.0)]
    [0.8, 1.0]
    """
    x = np.asarray(true_nm, dtype=float).ravel()
    y = np.asarray(measured_nm, dtype=float).ravel()
    if x.shape != y.shape:
        raise InputError(f"true_nm and measured_nm differ in size ({x.size} and {y.size})")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok] - reference_nm, y[ok] - reference_nm
    if x.size < 3 or np.ptp(x) == 0:
        raise InputError(f"need three points at two true necks or more, got {x.size}")
    (gain, bias), *_ = np.linalg.lstsq(np.column_stack([x, np.ones_like(x)]), y, rcond=None)
    return float(gain), float(bias)
