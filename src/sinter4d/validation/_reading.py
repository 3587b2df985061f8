"""How a pipeline reads necks: the reading curve and the neck fill of measured against true necks.

:func:`neck_reading_curve` fits the straight line of measured against true
necks about :data:`~sinter4d.schema.NECK_READING_REFERENCE_NM` (a fit spec
takes its gain and bias as the reading curve of its neck noise model);
:func:`fit_neck_fill` the fill K of :func:`sinter4d.measurement.neck_fill_nm2`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import InputError
from ..schema import NECK_READING_REFERENCE_NM

READING_CURVE_MIN_NECK_NM = 10.0
"""True necks below this (nm) are left out of the reading curve: below ~2 voxels
the reading is the crevice's shell particles, not the neck."""
READING_CURVE_MAX_GAP_NM = 5.0
"""Pairs whose true surface gap exceeds this (nm) are left out of the reading curve:
their bridges read far narrower (validation.nc) and a fit gives them their own offsets."""


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


def reading_curve_attrs(measured_on_true: np.ndarray, truth: xr.Dataset) -> dict:
    """Gain and bias (at the reference neck) of the measured against the true necks of contacts.

    Parameters
    ----------
    measured_on_true : (T, P) ndarray
        Measured neck radius on the truth's (time, pair) grid, nm (NaN where not found).
    truth : xarray.Dataset
        ``neck_radius_nm`` and ``surface_gap_nm`` over the same (time, pair).

    Returns
    -------
    dict
        The attributes ``neck_reading_gain``, ``neck_reading_bias_nm``,
        ``neck_reading_reference_nm`` and ``neck_reading_points`` of
        ``validation.nc`` (gain and bias NaN when the points do not make a line).
    """
    true = truth["neck_radius_nm"].values
    gap = truth["surface_gap_nm"].values
    use = (true >= READING_CURVE_MIN_NECK_NM) & (gap <= READING_CURVE_MAX_GAP_NM) & (measured_on_true > 0)
    try:
        gain, bias = neck_reading_curve(true[use], measured_on_true[use])
    except ValueError:  # too few points (InputError) or a singular fit
        gain = bias = float("nan")
    return {"neck_reading_gain": gain, "neck_reading_bias_nm": bias,
            "neck_reading_reference_nm": NECK_READING_REFERENCE_NM, "neck_reading_points": int(use.sum())}
