"""Measured pair metrics against the truth: the ``validation.nc`` Dataset."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import __version__, schema
from ..checks import check_positive
from ..errors import InputError
from ..measurement import pair_axis_angle_deg
from ._matching import DEFAULT_MATCH_GATE_NM, SeriesMatch, match_series, on_true_pairs
from ._orientation import ORIENTATIONS, orientation_summary
from ._reading import reading_curve_attrs

_AXES = ("z", "y", "x")

_SUMMARY_ATTRS = (
    "neck_ratio", "distance_ratio", "neck_radius_nm", "distance_nm", "neck_radius_3d_nm", "surface_gap_nm",
)
"""Pair metrics whose median and largest |error| are repeated as attributes of ``validation.nc``."""


def compare_to_truth(
    metrics: xr.Dataset,
    truth: xr.Dataset,
    *,
    dice: np.ndarray | None = None,
    gate_nm: float = DEFAULT_MATCH_GATE_NM,
) -> xr.Dataset:
    """Errors of measured pair metrics against the truth (the ``validation.nc`` Dataset).

    At each time the measured particles are registered to the true cores
    (the reconstruction is known only up to a rigid translation: the
    translation that brings most measured centres within ``gate_nm`` of a
    true one, refined to the mean offset of the matched particles), then
    matched (:func:`match_series`); a measured pair present at that time is
    found when its two particles match the two cores of a true pair.

    Parameters
    ----------
    metrics : xarray.Dataset
        From :func:`~sinter4d.measurement.measure_volumes` (needs
        ``particle_centre_nm`` and ``particle_label``).
    truth : xarray.Dataset
        ``truth.nc`` of a simulated run: the metrics over ``(time, pair)``,
        ``pair_particles`` ``(pair, end)`` and ``centre_nm`` ``(time,
        particle, axis)``; the same times as ``metrics``.
    dice : (T,) ndarray, optional
        Dice of each time's binary against the truth, stored as is.
    gate_nm : float, optional
        Largest distance between a registered measured centre and a true one
        for a match, nm (default :data:`DEFAULT_MATCH_GATE_NM`).

    Returns
    -------
    xarray.Dataset
        The variables of :data:`sinter4d.schema.VALIDATION`, over ``(time,
        pair)`` with the truth's pair labels: each metric under its own name
        (as in ``truth.nc``) holding measured - true (NaN where the true pair
        was not found or not measured), ``measured_pair`` (label of the
        matching measured pair, ``""`` if none); per time ``found``,
        ``missed``, ``spurious``, ``registration_offset_nm`` (added to the
        measured centres) and ``dice``; 0-d ``<metric>_median_abs_error`` and
        ``<metric>_max_abs_error``. The neck's error depends on how the pair
        lies against the tilt axis (the missing wedge), so
        ``tilt_axis_angle_deg`` ``(time, pair)`` holds the angle of each true
        pair's axis to the tilt axis, and over ``orientation``
        (:data:`ORIENTATIONS`: within 45° of it, beyond, all pairs)
        ``neck_radius_nm_median_error`` (signed median of measured - true),
        ``neck_fill_nm2`` (median of r_meas² - r_true² over ``neck_fill_necks``
        necks: the fill K of :func:`~sinter4d.measurement.neck_fill_nm2`) and
        ``neck_fill_resolution_nm`` (the Gaussian blur along the pair axis
        that gives that K at the median r_p). Attributes repeat the summary of
        ``neck_ratio`` and ``distance_ratio`` and hold the pair counts over
        the run: ``pairs_found`` (true pairs matched at some time),
        ``pairs_missed`` (never matched), ``pairs_spurious`` (measured pairs
        never matching a true pair), and the reading curve
        (:func:`reading_curve_attrs`). When ``metrics`` carries calibrated
        estimates (:data:`sinter4d.schema.CALIBRATED_OF`), each holds
        calibrated - true too, with its median and largest |error| (the
        errors after correction beside those before).
    """
    gate = check_positive(gate_nm, "gate_nm")
    for name, ds, need in (
        ("metrics", metrics, ("particle_centre_nm", "particle_label", *schema.PAIR_METRICS)),
        ("truth", truth, ("pair_particles", "centre_nm", *schema.PAIR_METRICS)),
    ):
        missing = [v for v in need if v not in ds.variables]
        if missing:
            raise InputError(f"{name} lacks variable(s) {', '.join(missing)}")
    n_t = metrics.sizes["time"]
    if truth.sizes["time"] != n_t:
        raise InputError(f"metrics has {n_t} times but the truth has {truth.sizes['time']}")
    true_pairs = truth["pair_particles"].values.astype(np.int64)
    true_centres = truth["centre_nm"].values
    found = match_series(
        metrics["particle_label"].values, metrics["particle_centre_nm"].values, true_centres, true_pairs, gate_nm=gate
    )

    data, summary, on_true = _errors(metrics, truth, found.match)
    angle = pair_axis_angle_deg(true_centres[:, true_pairs[:, 0]], true_centres[:, true_pairs[:, 1]])
    data.update(orientation_summary(on_true["neck_radius_nm"], truth, angle))
    m_names = [str(p) for p in metrics["pair"].values]
    match = found.match
    measured_pair = np.where(match >= 0, np.asarray(m_names + [""], dtype=object)[match], "").astype(str)
    values = {
        "measured_pair": measured_pair,
        "found": found.counts[:, 0],
        "missed": found.counts[:, 1],
        "spurious": found.counts[:, 2],
        "registration_offset_nm": found.offset_nm,
    }
    if dice is not None:
        dice_arr = np.asarray(dice, dtype=float).reshape(-1)
        if dice_arr.size != n_t:
            raise InputError(f"dice has {dice_arr.size} values but there are {n_t} times")
        values["dice"] = dice_arr
    data.update({name: schema.variable(name, v, table=schema.VALIDATION) for name, v in values.items()})
    coords = {
        "time": schema.coordinate("time", metrics["time"].values, table=schema.VALIDATION),
        "pt_time_s": ("time", metrics["pt_time_s"].values, dict(metrics["pt_time_s"].attrs)),
        "temperature_C": ("time", metrics["temperature_C"].values, dict(metrics["temperature_C"].attrs)),
        "pair": schema.coordinate("pair", [str(p) for p in truth["pair"].values], table=schema.VALIDATION),
        "axis": schema.coordinate("axis", list(_AXES), table=schema.VALIDATION),
        "orientation": schema.coordinate("orientation", list(ORIENTATIONS), table=schema.VALIDATION),
    }
    attrs = _summary_attrs(found, summary, data, gate)
    attrs.update(reading_curve_attrs(on_true["neck_radius_nm"], truth))
    if dice is not None:
        attrs["median_dice"] = float(np.nanmedian(dice_arr)) if np.isfinite(dice_arr).any() else float("nan")
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _errors(metrics: xr.Dataset, truth: xr.Dataset, match: np.ndarray) -> tuple[dict, dict, dict]:
    """Each pair metric's error on the truth's pairs with its median and largest |error|.

    Returns the ``validation.nc`` variables, ``{metric: (median, max, n)}``
    and the measured metrics on the truth's (time, pair) grid.
    """
    data, summary, on_true = {}, {}, {}
    # each metric against its own truth, then the calibrated estimates (when the metrics carry them) against theirs
    estimates = [(name, name) for name in schema.PAIR_METRICS]
    estimates += [(name, of) for name, of in schema.CALIBRATED_OF.items() if name in metrics.variables]
    for name, of in estimates:
        read = on_true_pairs(metrics[name].values, match)
        if name in schema.PAIR_METRICS:
            on_true[name] = read
        err = read - truth[of].values
        summary[name] = _abs_summary(err)
        data[name] = schema.variable(name, err, table=schema.VALIDATION)
        for stat, value in zip(("median", "max"), summary[name][:2]):
            data[f"{name}_{stat}_abs_error"] = schema.variable(f"{name}_{stat}_abs_error", value,
                                                               table=schema.VALIDATION)
    return data, summary, on_true


def _abs_summary(err: np.ndarray) -> tuple[float, float, int]:
    """Median and largest |error| over the finite errors, and how many."""
    finite = np.abs(err[np.isfinite(err)])
    if not finite.size:
        return float("nan"), float("nan"), 0
    return float(np.median(finite)), float(finite.max()), int(finite.size)


def _summary_attrs(found: SeriesMatch, summary: dict, data: dict, gate: float) -> dict:
    """Pair counts over the run and the error summary, as attributes of ``validation.nc``."""
    n_true = len(found.true_found)
    attrs = {
        "title": "sinter4d validation: measured pair metrics minus the truth",
        "pairs_true": n_true,
        "pairs_found": int(found.true_found.sum()),
        "pairs_missed": int(n_true - found.true_found.sum()),
        "pairs_spurious": int((found.measured_seen & ~found.measured_matched).sum()),
        "gate_nm": gate,
        "sinter4d_version": __version__,
    }
    for name in (*_SUMMARY_ATTRS, *(c for c in schema.CALIBRATED_OF if c in summary)):
        attrs[f"median_abs_error_{name}"] = summary[name][0]
        attrs[f"max_abs_error_{name}"] = summary[name][1]
    for k, name in enumerate(ORIENTATIONS):
        attrs[f"median_error_neck_radius_nm_{name}"] = float(data["neck_radius_nm_median_error"][1][k])
    return attrs


def truth_at_metrics(truth: xr.Dataset, metrics: xr.Dataset) -> xr.Dataset:
    """The truth at the time steps the metrics hold (a run may image some series only).

    Parameters
    ----------
    truth : xarray.Dataset
        ``truth.nc``: every time step of the simulation.
    metrics : xarray.Dataset
        ``metrics.nc``: its ``time`` coordinate holds the step indices measured
        (``[heating] imaged_series``).

    Returns
    -------
    xarray.Dataset
        ``truth`` at those steps, in the metrics' order.

    Raises
    ------
    InputError
        A step the truth does not hold.
    """
    steps = metrics["time"].values.astype(int)
    if steps.max(initial=-1) >= truth.sizes["time"]:
        raise InputError(f"the metrics' time step {steps.max() + 1} is not in the truth "
                         f"({truth.sizes['time']} steps)")
    return truth.isel(time=steps)


def metrics_on_true_pairs(metrics: xr.Dataset, validation: xr.Dataset) -> xr.Dataset:
    """The measured metrics rearranged onto the truth's pairs (NaN where not found).

    Parameters
    ----------
    metrics : xarray.Dataset
        From :func:`~sinter4d.measurement.measure_volumes`.
    validation : xarray.Dataset
        From :func:`compare_to_truth` on the same metrics (its
        ``measured_pair``).

    Returns
    -------
    xarray.Dataset
        The pair metrics over ``(time, pair)`` with the truth's pair labels,
        so that they can be drawn over, or subtracted from, ``truth.nc``.
    """
    index = {str(p): k for k, p in enumerate(metrics["pair"].values)}
    which = validation["measured_pair"].values
    n_t, n_true = which.shape
    data = {}
    for name in schema.PAIR_METRICS:
        values = metrics[name].values
        out = np.full((n_t, n_true), np.nan)
        for t in range(n_t):
            for j in range(n_true):
                k = index.get(str(which[t, j]))
                if k is not None:
                    out[t, j] = values[t, k]
        data[name] = (("time", "pair"), out, dict(metrics[name].attrs))
    coords = {c: validation[c] for c in ("time", "pt_time_s", "temperature_C", "pair")}
    return xr.Dataset(data, coords=coords)
