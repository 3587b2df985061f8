"""Synthetic trajectories: isolated pairs sintered by a card, plus Gaussian noise.

For recovery and calibration tests of the fit, and for what-if studies (how
wide is the posterior at a given measurement noise?). The trajectories come
from :func:`sinter4d.sintering.neck_growth` and the reference
truncated-sphere geometry (bisection), not from the fit's own forward model.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import xarray as xr

from .. import schema
from ..errors import InputError
from ..io.trajectories import TRAJECTORY_VARIABLES
from ..sintering import HeatingLog, ModelCard, neck_growth, truncated_sphere_distance_ratio


def synthetic_trajectories(card: ModelCard, params: Mapping[str, float] | None, *, rng: np.random.Generator | int,
                           n_pairs: int = 7, log: HeatingLog | None = None, radius_range_nm=(65.0, 80.0),
                           neck_sigma_nm: float = 1.0, distance_sigma_nm: float = 2.0,
                           neck_pair_sigma_nm: float = 0.0,
                           initial_neck_nm: float | None = None, shell_thickness_nm: float = 10.0,
                           true_log: HeatingLog | None = None, gap_nm=0.0,
                           bridged_neck_offset_nm: float = 0.0) -> xr.Dataset:
    """Neck and distance trajectories of isolated sphere pairs, with Gaussian measurement noise.

    Parameters
    ----------
    card : ModelCard
    params : mapping or None
        Card parameters (missing ones take the card's defaults).
    rng : numpy.random.Generator or int
        Draws the radii and the noise.
    n_pairs : int
        Number of pairs P.
    log : HeatingLog, optional
        Heating log (default: the paper's, 900 s standby).
    radius_range_nm : (float, float)
        Sphere radii are uniform in this range (nm).
    neck_sigma_nm, distance_sigma_nm : float
        Standard deviation of the noise on the neck radius and the distance (nm).
    neck_pair_sigma_nm : float
        Standard deviation (nm) of an offset shared by all the neck readings
        of a pair (a reconstruction's systematic error per pair); 0: none.
    initial_neck_nm : float, optional
        Neck at the first time (default: the card's ``contact.initial_neck``).
    shell_thickness_nm : float
        Shell thickness of the reservoir (nm).
    true_log : HeatingLog, optional
        The heating the pairs really saw (e.g. ``true_heating(log, ...).true``:
        step-time errors, overshoot); the file still carries ``log``'s times
        and temperatures, as a user's would. Default: ``log``.
    gap_nm : float or (P,) array_like
        Surface gap each pair's neck bridges at the start (nm, >= 0; default 0:
        pairs in contact). It enters the shell reservoir
        (:func:`~sinter4d.sintering.neck_growth`) and the distance,
        ``d = 2a d_ts(x_d/a) + gap``.
    bridged_neck_offset_nm : float
        Added to every neck reading of the pairs with a gap (nm): how a
        pipeline reads bridged necks (docs/validation.md, "The bridged
        pairs' offset"); default 0.

    Returns
    -------
    xarray.Dataset
        Laid out as ``metrics.nc`` (dims ``(time, pair)``; ``neck_radius_nm``,
        ``distance_nm``, ``particle_radius_nm``, ``surface_gap_nm`` (the
        noisy distance less 2a); coordinates ``pt_time_s``,
        ``temperature_C``), with the noise-free ``true_neck_radius_nm`` and
        ``true_distance_nm`` and, as 0-d variables, the parameter values used
        (as ``truth.nc`` records them), and ``true_pt_time_s`` and
        ``pt_step_error_s`` (time; as in ``truth.nc``). Pairs touch at the
        start (no gap): ``d0 = 2a``.
    """
    rng = np.random.default_rng(rng)
    log = HeatingLog.paper() if log is None else log
    params = card.resolve_parameters(params)
    a = rng.uniform(*radius_range_nm, size=n_pairs)
    gap = np.broadcast_to(np.asarray(gap_nm, dtype=float), (n_pairs,)).copy()
    if not np.all(np.isfinite(gap) & (gap >= 0)):
        raise InputError(f"gap_nm must be finite and >= 0; got {gap}")
    x0 = card.initial_neck_nm if initial_neck_nm is None else float(initial_neck_nm)
    true_log = log if true_log is None else true_log
    if true_log.n_series != log.n_series:
        raise InputError(f"true_log has {true_log.n_series} series, log {log.n_series}")
    x, xd = neck_growth(card, params, radius_nm=a, neck0_nm=np.full(n_pairs, x0), log=true_log,
                        gap_nm=gap, shell_thickness_nm=shell_thickness_nm)
    d = 2.0 * a * truncated_sphere_distance_ratio(np.clip(xd / a, 0.0, 1.0)) + gap[None, :]
    noisy_x = x + neck_sigma_nm * rng.standard_normal(x.shape)
    noisy_d = d + distance_sigma_nm * rng.standard_normal(d.shape)
    if neck_pair_sigma_nm > 0:
        noisy_x = noisy_x + neck_pair_sigma_nm * rng.standard_normal(n_pairs)[None, :]
    noisy_x = noisy_x + np.where(gap > 0, float(bridged_neck_offset_nm), 0.0)[None, :]
    dims = ("time", "pair")
    data = {
        "neck_radius_nm": (dims, noisy_x),
        "distance_nm": (dims, noisy_d),
        "particle_radius_nm": (dims, np.broadcast_to(a, x.shape).copy()),
        "surface_gap_nm": (dims, noisy_d - 2.0 * a),
    }
    for name, (units, long_name) in TRAJECTORY_VARIABLES.items():
        data[name] += ({"units": units, "long_name": long_name},)
    data["true_neck_radius_nm"] = (dims, x, {"units": "nm", "long_name": "noise-free neck radius"})
    data["true_distance_nm"] = (dims, d, {"units": "nm", "long_name": "noise-free distance"})
    step_error = np.concatenate([[0.0], np.diff(true_log.pt_time_s) - np.diff(log.pt_time_s)])
    data["gap_nm"] = ("pair", gap, {"units": "nm", "long_name": "true surface gap bridged at the start"})
    data["true_pt_time_s"] = ("time", np.asarray(true_log.pt_time_s), schema.attrs("true_pt_time_s", schema.TRUTH))
    data["pt_step_error_s"] = ("time", step_error, schema.attrs("pt_step_error_s", schema.TRUTH))
    for name, value in params.items():
        data[name] = ((), float(value), {"long_name": f"model parameter {name} of card {card.name}", "units": "1"})
    coords = {
        "time": ("time", np.arange(log.n_series), {"long_name": "tilt-series index"}),
        "pt_time_s": ("time", np.asarray(log.pt_time_s), {"units": "s", "long_name": "cumulative processing time"}),
        "temperature_C": ("time", np.asarray(log.temperature_C),
                          {"units": "degC", "long_name": "median processing temperature"}),
        "pair": ("pair", [f"P{k + 1}" for k in range(n_pairs)], {"long_name": "particle pair"}),
    }
    attrs = {"title": f"synthetic trajectories of card {card.name}", "model_card": card.name,
             "neck_sigma_nm": float(neck_sigma_nm), "distance_sigma_nm": float(distance_sigma_nm),
             "neck_pair_sigma_nm": float(neck_pair_sigma_nm),
             "bridged_neck_offset_nm": float(bridged_neck_offset_nm)}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def read_through_calibration(ds: xr.Dataset, models: Mapping, *, rng: np.random.Generator | int,
                             in_plane_deg=None, elevation_deg=None) -> xr.Dataset:
    """Synthetic trajectories read as a calibrated pipeline reads them: one run drawn from its reading model.

    The run's coefficients are drawn from ``N(b̂, C + σ_run² e0 e0ᵀ)``, each
    pair's offset from ``N(0, σ_pair²)`` and each reading's error from
    ``N(0, σ_point²)``, in the metric's transform g (docs/design.md,
    "Calibration"): ``g(y) = W b + u_pair + e`` with W the design at the
    true value and the pair's orientation. For coverage studies of the
    calibrated observation model (:mod:`.calibrated`).

    Parameters
    ----------
    ds : xarray.Dataset
        :func:`synthetic_trajectories` output (its ``true_*`` variables are read).
    models : mapping
        Metric -> :class:`~sinter4d.calibration.ReadingModel` (``neck_radius_nm``
        and/or ``distance_nm``); a metric without one keeps its readings.
    rng : numpy.random.Generator or int
    in_plane_deg, elevation_deg : (P,) array_like, optional
        Each pair's angle from the tilt axis and elevation (degrees); default
        uniform on 0–90° and 0°.

    Returns
    -------
    xarray.Dataset
        A copy with the readings replaced (a neck whose g reads below 0 reads
        0), ``pair_centre_nm`` (time, pair, end, axis) laid along each pair's
        orientation at the true distance, and ``surface_gap_nm`` 0 (pairs in
        contact, none bridged).
    """
    from ..calibration import design_matrix

    rng = np.random.default_rng(rng)
    n_t, n_p = ds.sizes["time"], ds.sizes["pair"]
    a = np.radians(rng.uniform(0.0, 90.0, n_p) if in_plane_deg is None else np.asarray(in_plane_deg, dtype=float))
    e = np.radians(np.zeros(n_p) if elevation_deg is None else np.asarray(elevation_deg, dtype=float))
    out = ds.copy(deep=True)
    for metric, m in models.items():
        true = ds[f"true_{metric}"].values
        x = design_matrix(true, np.broadcast_to(np.degrees(a), true.shape), np.broadcast_to(np.degrees(e), true.shape),
                          np.zeros(true.shape, dtype=bool), transform=m.transform, reference_nm=m.reference_nm)
        cov = np.array(m.cov, dtype=float)
        cov[0, 0] += m.sigma_run ** 2
        b = rng.multivariate_normal(m.coef, cov, method="eigh")
        g = (x @ b).reshape(true.shape) + m.sigma_pair * rng.standard_normal(n_p)[None, :]
        g = g + m.sigma_point * rng.standard_normal(true.shape)
        out[metric].values[...] = m.from_g(g)
    unit = np.stack([np.sin(e), np.cos(e) * np.cos(a), np.cos(e) * np.sin(a)], axis=-1)  # (z, y, x)
    centre = np.zeros((n_t, n_p, 2, 3))
    centre[:, :, 1] = ds["true_distance_nm"].values[..., None] * unit[None]
    out["pair_centre_nm"] = (("time", "pair", "end", "axis"), centre, {"units": "nm", "long_name": "pair centres"})
    out["surface_gap_nm"].values[...] = 0.0
    return out
