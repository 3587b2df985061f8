"""Twins' readings in, ``calibration.nc`` out; a calibration applied to a measurement.

:func:`reading_table` gathers one twin's readings on its true pairs,
:func:`calibration_dataset` fits the reading model of each metric to all
twins' readings and lays it out as ``calibration.nc``,
:func:`reading_models` reads the models back, and :func:`calibrate_metrics`
adds the calibrated metrics to a ``metrics.nc`` Dataset (docs/design.md,
"Calibration").
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from .. import __version__, schema
from ..errors import InputError
from ..validation import READING_CURVE_MIN_NECK_NM, metrics_on_true_pairs, truth_at_metrics
from ._model import (
    BRIDGED_GAP_NM,
    FIXED_GAINS,
    READING_TERMS,
    TRANSFORMS,
    ReadingModel,
    fit_reading_model,
    invert_reading,
)

__all__ = ["CALIBRATED", "CALIBRATION_MIN_NECK_NM", "calibrate_metrics", "calibration_dataset", "orientation_deg", "reading_models",
           "reading_table"]

CALIBRATED = {"neck_radius_nm": "neck_radius_calibrated_nm", "distance_nm": "distance_calibrated_nm"}
"""Calibrated metric -> the name of its calibrated estimate in ``metrics.nc``."""
_TABLE = schema.CALIBRATION
CALIBRATION_MIN_NECK_NM = READING_CURVE_MIN_NECK_NM
"""True necks below this (nm) are left out of the neck's reading model: the reading curve's
cut (below ~2 voxels the reading is the crevice's shell particles). Chosen over 0 by the
lower leave-one-twin-out median |error| of r_n/r_p on the quick acquisition's twins
(docs/validation.md, "Calibration of the quick acquisition")."""


def orientation_deg(centre_a, centre_b) -> tuple[np.ndarray, np.ndarray]:
    """In-plane angle from the tilt axis and elevation out of the film plane of the axes a -> b.

    Parameters
    ----------
    centre_a, centre_b : (..., 3) array_like
        Centres ``(z, y, x)``, nm; the tilt axis lies along y, the beam along z.

    Returns
    -------
    in_plane_deg : ndarray
        Angle of the axis's x–y projection from the tilt axis, 0–90°.
    elevation_deg : ndarray
        Angle of the axis out of the x–y plane, 0–90°.
    """
    v = np.asarray(centre_b, dtype=float) - np.asarray(centre_a, dtype=float)
    dz, dy, dx = np.abs(v[..., 0]), np.abs(v[..., 1]), np.abs(v[..., 2])
    return np.degrees(np.arctan2(dx, dy)), np.degrees(np.arctan2(dz, np.hypot(dx, dy)))


def reading_table(metrics: xr.Dataset, truth: xr.Dataset, validation: xr.Dataset, *, run: int) -> dict:
    """One twin's readings on its true pairs: measured and true values with their covariates.

    Parameters
    ----------
    metrics, truth, validation : xarray.Dataset
        The twin's ``metrics.nc``, ``truth.nc`` and ``validation.nc``; the
        truth is taken at the metrics' time steps (a twin may image some
        series only).
    run : int
        The twin's label (its seed).

    Returns
    -------
    dict
        Arrays over the (time, pair) points where the true pair was found
        and measured: the ``reading_*`` variables of ``calibration.nc``
        without the prefix (``twin_seed``, ``pair``, ``time``,
        ``true_neck_radius_nm``, ``measured_neck_radius_nm``, …,
        ``in_plane_deg``, ``elevation_deg`` from the true centres,
        ``bridged`` from the measured surface gap).
    """
    on_true = metrics_on_true_pairs(metrics, validation)
    truth = truth_at_metrics(truth, metrics)  # the imaged series ([heating] imaged_series)
    pairs = truth["pair_particles"].values.astype(int)
    centre = truth["centre_nm"].values
    in_plane, elevation = orientation_deg(centre[:, pairs[:, 0]], centre[:, pairs[:, 1]])
    measured_n, measured_d = on_true["neck_radius_nm"].values, on_true["distance_nm"].values
    seen = np.isfinite(measured_d) & np.isfinite(truth["distance_nm"].values)
    t_idx, p_idx = np.nonzero(seen)
    labels = np.asarray([str(p) for p in truth["pair"].values])
    gap = on_true["surface_gap_nm"].values
    return {
        "twin_seed": np.full(t_idx.size, int(run)),
        "pair": labels[p_idx],
        "time": truth["time"].values[t_idx].astype(int),
        "true_neck_radius_nm": truth["neck_radius_nm"].values[seen],
        "measured_neck_radius_nm": measured_n[seen],
        "true_distance_nm": truth["distance_nm"].values[seen],
        "measured_distance_nm": measured_d[seen],
        "particle_radius_nm": on_true["particle_radius_nm"].values[seen],
        "true_particle_radius_nm": truth["particle_radius_nm"].values[seen],
        "in_plane_deg": in_plane[seen],
        "elevation_deg": elevation[seen],
        "bridged": (np.nan_to_num(gap[seen], nan=0.0) > BRIDGED_GAP_NM).astype(np.int8),
    }


def _fit(table: dict, metric: str, min_true_nm: float) -> ReadingModel:
    name = metric.removesuffix("_nm")
    return fit_reading_model(table[f"measured_{name}_nm"], table[f"true_{name}_nm"], table["in_plane_deg"],
                             table["elevation_deg"], table["bridged"].astype(bool), table["twin_seed"],
                             table["pair"], metric=metric, min_true_nm=min_true_nm, gain=FIXED_GAINS[metric])


def calibration_dataset(tables: list[dict], provenance: dict, *,
                        min_neck_nm: float = CALIBRATION_MIN_NECK_NM) -> xr.Dataset:
    """Fit the reading model of each metric to the twins' readings: the ``calibration.nc`` Dataset.

    Parameters
    ----------
    tables : list of dict
        :func:`reading_table` of each twin.
    provenance : dict
        Attributes to record (``source``, ``acquisition``, ``twin_seeds``,
        ``twin_spec``, seconds, …); dicts and lists are stored as JSON.
    min_neck_nm : float, optional
        True necks below this (nm) are left out of the neck's fit (default
        :data:`CALIBRATION_MIN_NECK_NM`); every reading stays in ``reading``.

    Returns
    -------
    xarray.Dataset
        The variables of :data:`sinter4d.schema.CALIBRATION`.
    """
    if not tables:
        raise InputError("no twin readings to calibrate on")
    table = {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}
    models = [_fit(table, m, min_neck_nm if m == "neck_radius_nm" else 0.0) for m in TRANSFORMS]
    n_terms = len(READING_TERMS)
    per_metric = {
        "transform": [m.transform for m in models],
        "reference_nm": [m.reference_nm for m in models],
        "coefficient": np.array([m.coef for m in models]).reshape(-1, n_terms),
        "coefficient_covariance": np.array([m.cov for m in models]),
        "sigma_run": [m.sigma_run for m in models],
        "sigma_pair": [m.sigma_pair for m in models],
        "sigma_point": [m.sigma_point for m in models],
        "n_points": [m.n_points for m in models],
        "n_pairs": [m.n_pairs for m in models],
        "n_runs": [m.n_runs for m in models],
    }
    data = {k: schema.variable(k, v, table=_TABLE) for k, v in per_metric.items()}
    data.update({f"reading_{k}": schema.variable(f"reading_{k}", v, table=_TABLE) for k, v in table.items()})
    coords = {
        "metric": schema.coordinate("metric", list(TRANSFORMS), table=_TABLE),
        "term": schema.coordinate("term", list(READING_TERMS), table=_TABLE),
        "term_other": schema.coordinate("term_other", list(READING_TERMS), table=_TABLE),
        "reading": schema.coordinate("reading", np.arange(table["time"].size), table=_TABLE),
    }
    attrs = {"title": "sinter4d calibration: the pipeline's reading model from simulated twins",
             "sinter4d_version": __version__, "bridged_gap_nm": BRIDGED_GAP_NM, "min_true_neck_nm": min_neck_nm}
    for key, value in provenance.items():
        attrs[key] = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list, tuple)) else value
    return xr.Dataset(data, coords=coords, attrs=attrs)


def reading_models(calibration: xr.Dataset) -> dict[str, ReadingModel]:
    """The reading model of each metric held by a ``calibration.nc`` Dataset."""
    need = ("coefficient", "coefficient_covariance", "sigma_run", "sigma_pair", "sigma_point", "transform",
            "reference_nm")
    missing = [v for v in need if v not in calibration.variables]
    if missing:
        raise InputError(f"the calibration lacks variable(s) {', '.join(missing)}")
    out = {}
    for k, metric in enumerate(str(m) for m in calibration["metric"].values):
        out[metric] = ReadingModel(
            metric, str(calibration["transform"].values[k]), float(calibration["reference_nm"].values[k]),
            np.asarray(calibration["coefficient"].values[k], dtype=float),
            np.asarray(calibration["coefficient_covariance"].values[k], dtype=float),
            float(calibration["sigma_run"].values[k]), float(calibration["sigma_pair"].values[k]),
            float(calibration["sigma_point"].values[k]))
    return out


def calibrate_metrics(metrics: xr.Dataset, calibration: xr.Dataset) -> xr.Dataset:
    """``metrics`` with the calibrated estimates of the true neck radius and distance added.

    Each pair's orientation comes from its measured 3D centres
    (``pair_centre_nm``), its bridge flag from its measured
    ``surface_gap_nm``; the reading model of each metric is inverted
    (:func:`~sinter4d.calibration.invert_reading`).

    Returns
    -------
    xarray.Dataset
        A copy with the variables of :data:`sinter4d.schema.CALIBRATED_METRICS`
        and the attribute ``calibration`` (the calibration's source and twin seeds).
    """
    need = ("pair_centre_nm", "surface_gap_nm", "particle_radius_nm", *CALIBRATED)
    missing = [v for v in need if v not in metrics.variables]
    if missing:
        raise InputError(f"the metrics lack variable(s) {', '.join(missing)}")
    models = reading_models(calibration)
    centre = metrics["pair_centre_nm"].transpose("time", "pair", "end", "axis").values
    in_plane, elevation = orientation_deg(centre[:, :, 0], centre[:, :, 1])
    bridged = np.nan_to_num(metrics["surface_gap_nm"].values, nan=0.0) > float(
        calibration.attrs.get("bridged_gap_nm", BRIDGED_GAP_NM))
    out = metrics.copy()
    table = schema.CALIBRATED_METRICS
    for metric, name in CALIBRATED.items():
        if metric not in models:
            raise InputError(f"the calibration has no reading model of {metric}")
        est, sd = invert_reading(models[metric], metrics[metric].values, in_plane, elevation, bridged)
        out[name] = schema.variable(name, est, table=table)
        out[name.replace("_nm", "_sd_nm")] = schema.variable(name.replace("_nm", "_sd_nm"), sd, table=table)
    radius = metrics["particle_radius_nm"].values
    out["neck_ratio_calibrated"] = schema.variable("neck_ratio_calibrated",
                                                   out["neck_radius_calibrated_nm"].values / radius, table=table)
    out["distance_ratio_calibrated"] = schema.variable(
        "distance_ratio_calibrated", out["distance_calibrated_nm"].values / (2 * radius), table=table)
    out.attrs["calibration"] = json.dumps({"source": calibration.attrs.get("source", ""),
                                           "twin_seeds": calibration.attrs.get("twin_seeds", "")})
    return out
