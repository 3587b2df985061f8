"""The neck's error by the orientation of the pair against the tilt axis.

The missing wedge resolves a neck across the tilt axis worse than along it,
so the validation summarises the neck's error and fill for pairs within 45°
of the tilt axis, beyond, and over all pairs (:data:`ORIENTATIONS`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import schema
from ..measurement import neck_fill_nm2
from ._reading import fit_neck_fill

ORIENTATIONS = ("along_tilt_axis", "across_tilt_axis", "all")
"""Classes of pairs by the angle of their axis to the tilt axis: < 45°, >= 45°, any."""


def orientation_summary(read: np.ndarray, truth: xr.Dataset, angle: np.ndarray) -> dict:
    """Signed neck error and neck fill of the found pairs, along / across the tilt axis and overall.

    Parameters
    ----------
    read : (T, P) ndarray
        Measured neck radius on the truth's (time, pair) grid, nm (NaN where not found).
    truth : xarray.Dataset
        ``neck_radius_nm`` and ``particle_radius_nm`` over the same (time, pair).
    angle : (T, P) ndarray
        Angle of each true pair's axis to the tilt axis, degree
        (:func:`~sinter4d.measurement.pair_axis_angle_deg`).

    Returns
    -------
    dict
        The ``validation.nc`` variables ``tilt_axis_angle_deg`` and, over
        ``orientation``, ``neck_radius_nm_median_error``, ``neck_fill_nm2``,
        ``neck_fill_necks`` and ``neck_fill_resolution_nm``, as
        ``(dims, values, attrs)``.
    """
    true = truth["neck_radius_nm"].values
    r_p = truth["particle_radius_nm"].values
    classes = (angle < 45.0, angle >= 45.0, np.isfinite(angle))
    med_err, fill, n_necks, blur = [], [], [], []
    for sel in classes:
        err = (read - true)[sel]
        err = err[np.isfinite(err)]
        med_err.append(float(np.median(err)) if err.size else float("nan"))
        k, n = fit_neck_fill(read[sel], true[sel])
        fill.append(k)
        n_necks.append(n)
        rp = np.nanmedian(r_p[sel]) if np.isfinite(r_p[sel]).any() else float("nan")
        blur.append(k / neck_fill_nm2(rp, 1.0) if k > 0 and rp > 0 else float("nan"))  # K is linear in the blur
    values = {
        "tilt_axis_angle_deg": angle,
        "neck_radius_nm_median_error": np.array(med_err),
        "neck_fill_nm2": np.array(fill),
        "neck_fill_necks": np.array(n_necks),
        "neck_fill_resolution_nm": np.array(blur),
    }
    return {name: schema.variable(name, v, table=schema.VALIDATION) for name, v in values.items()}
