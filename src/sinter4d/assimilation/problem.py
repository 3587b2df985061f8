"""``build_problem``: a fit spec applied to trajectories, the posterior to sample.

Reads the data (``metrics.nc``, ``truth.nc`` or a trajectory CSV), keeps the
fitted pairs, resolves the heating log and the pairs' geometry (radius, gap,
initial neck) into the forward model (:mod:`.model`), and builds the log
posterior (:mod:`.likelihood`) with its start point; :mod:`.fitting` samples
it (docs/design.md, "Fit: observation model").
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError, SpecError
from ..io.trajectories import experiment_heating, read_trajectories, validation_sigma
from ..sintering import HeatingLog, logged_trace_pieces
from .calibrated import calibrated_readings
from .likelihood import LogPosterior
from .model import TrajectoryModel
from .specs import INITIAL_NECK_PARAMETER, FitSpec, load_fit_spec, pair_sigma_parameter, sigma_parameter

log = logging.getLogger(__name__)

_DEFAULTS = {"standby_temperature_C": 200.0, "standby_s": 900.0, "shell_thickness_nm": 10.0}


@dataclass
class FitProblem:
    """A fit spec applied to data: the posterior to sample and what it was built from.

    Attributes
    ----------
    spec : FitSpec
    data : xarray.Dataset
        The trajectories of the fitted pairs.
    logpost : LogPosterior
    start : (D,) ndarray
        Default point of the sampled parameters (card defaults, 1 nm sigmas, the card's initial neck).
    truth : dict
        True parameter values found in the data file (simulated runs).
    settings : dict
        Resolved heating and geometry settings (for provenance).
    """

    spec: FitSpec
    data: xr.Dataset
    logpost: LogPosterior
    start: np.ndarray
    truth: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def resume_key(self) -> str:
        """Hash of the spec and the data a chain depends on."""
        h = hashlib.sha256(self.spec.resume_key().encode())
        for v in self.logpost.variables:
            h.update(np.ascontiguousarray(self.logpost.observed[v]).tobytes())
        m = self.logpost.model
        traces = [a for trace in (m.log.step_traces or ()) for a in trace]
        for arr in (m.log.pt_time_s, m.log.temperature_C, m.log.standby_s, m.radius_nm, m.gap_nm,
                    m.start_index, np.zeros(0) if m.neck0_nm is None else m.neck0_nm, *traces):
            h.update(np.ascontiguousarray(arr, dtype=float).tobytes())
        h.update(json.dumps(self.settings, sort_keys=True, default=str).encode())
        return h.hexdigest()[:16]


def build_problem(data_path: str | Path | None, spec: FitSpec | str | Path) -> FitProblem:
    """Read the data and build the posterior of a fit (no sampling, no file written).

    Parameters
    ----------
    data_path : str or Path or None
        ``metrics.nc``, ``truth.nc`` or a trajectory CSV; None: the spec's ``data``.
    spec : FitSpec or str or Path
        The fit spec or its TOML file.

    Returns
    -------
    FitProblem

    Raises
    ------
    SpecError, InputError
        Invalid spec; unreadable data, a fitted variable with no value, bad heating log.
    """
    spec = spec if isinstance(spec, FitSpec) else load_fit_spec(spec)
    if data_path is None:
        if spec.data is None:
            raise SpecError(f"{spec.path}: data: missing (name a data file here or pass DATA)")
        data_path = spec.data
    data_path = Path(data_path)
    ds = _fitted_pairs(read_trajectories(data_path), spec.variables, data_path)
    settings = _settings(spec, ds)
    try:
        heating = HeatingLog(pt_time_s=ds["pt_time_s"].values, temperature_C=ds["temperature_C"].values,
                             standby_temperature_C=settings["standby_temperature_C"], standby_s=settings["standby_s"],
                             step_traces=_holder_traces(ds))
    except ValueError as exc:
        raise InputError(f"{data_path}: heating log: {exc}") from None
    model, excluded = _pair_model(spec, ds, heating, settings["shell_thickness_nm"], data_path)
    calibrated = _calibrated(spec, ds, data_path, settings)
    sigma, pair_sigma, bias, gain, reference, bridged_bias, left_out = {}, {}, {}, {}, {}, {}, {}
    for v in spec.variables:
        noise = spec.noise[v]
        if noise.mode == "calibration" and v == "distance_nm":
            sigma[v] = calibrated[v].model.sigma_point
        elif noise.mode == "fixed":
            sigma[v] = noise.sigma_nm
        elif noise.mode == "validation":
            sigma[v] = validation_sigma(noise.validation, v)
            log.info("sigma of %s = %.3g nm from %s", v, sigma[v], noise.validation)
        if noise.pair_mode == "fixed":
            pair_sigma[v] = noise.pair_sigma_nm
        if noise.bias_nm and noise.bias_prior is None:
            bias[v] = noise.bias_nm
        if noise.gain != 1.0 and noise.gain_prior is None:
            gain[v] = noise.gain
        if noise.gain_prior is not None or noise.gain != 1.0:
            reference[v] = noise.reference_nm
        if noise.bridged_bias_nm and noise.bridged_prior is None:
            bridged_bias[v] = noise.bridged_bias_nm
        out = np.zeros(ds[v].shape, dtype=bool)
        for k in noise.exclude_series:
            if k >= ds.sizes["time"]:
                raise InputError(f"{spec.path}: noise.{v}.exclude_series: series {k} does not exist "
                                 f"({data_path} has {ds.sizes['time']}, numbered from 0)")
            out[k] = True
        if v == "neck_radius_nm":
            if excluded is not None:
                out |= excluded
            apart = _read_apart(ds[v].values, out)
            if apart.any():
                log.info("%s: %d neck readings of 0 (pairs read apart) leave the likelihood", data_path, apart.sum())
            out |= apart
        left_out[v] = out
    n_series = ds.sizes["time"]
    step_names = spec.step_error_names(n_series)
    names = spec.parameter_names + step_names
    if spec.sampler.walkers < 2 * len(names):
        raise SpecError(f"{spec.path}: sampler.walkers: must be at least twice the number of sampled parameters "
                        f"({2 * len(names)}, with {n_series - 1} step-time errors), got {spec.sampler.walkers}")
    bounds = ds["pt_step_error_bound_s"].values[1:] if "pt_step_error_bound_s" in ds else None
    step_priors = spec.step_error_priors(n_series, bounds)
    if step_priors:  # (absent when off: the resume key of a chain made before the bounds existed)
        settings["step_error_bounds_s"] = [p.high for p in step_priors]
    bridged = model.gap_nm > 0.0  # the pairs the forward model bridges across a surface gap (forward.gap)
    if any(spec.noise[v].bridged_prior is not None or spec.noise[v].bridged_bias_nm for v in spec.variables):
        log.info("%s: %d of %d pairs bridged across a gap take the bridged pairs' reading offset", data_path,
                 bridged.sum(), bridged.size)
    logpost = LogPosterior(model, names, spec.parameter_priors + step_priors, spec.fixed,
                           {v: ds[v].values for v in spec.variables}, sigma, pair_sigma_nm=pair_sigma,
                           bias_nm=bias, gain=gain, reference_nm=reference, bridged=bridged,
                           bridged_bias_nm=bridged_bias, excluded=left_out, calibrated=calibrated)
    truth = {}
    made_with = ds.attrs.get("model_card")
    if made_with in (None, spec.card.name):  # a truth.nc of another card has no truth for this one
        for name in (*spec.card.parameter_names, INITIAL_NECK_PARAMETER,
                     *(sigma_parameter(v) for v in spec.variables),
                     *(pair_sigma_parameter(v) for v in spec.variables)):
            if name in ds.data_vars and ds[name].ndim == 0:
                truth[name] = float(ds[name].values)
        if step_names and "pt_step_error_s" in ds:
            truth.update(zip(step_names, map(float, ds["pt_step_error_s"].values[1:])))
    fwd = spec.forward
    settings.update(initial_neck=fwd.initial_neck, gap=fwd.gap, include_standby=fwd.include_standby,
                    grid_points=fwd.grid_points, sigma_nm=sigma)
    start = np.concatenate([_start_point(spec), np.zeros(len(step_names))])
    return FitProblem(spec, ds, logpost, start, truth, settings)


def _calibrated(spec: FitSpec, ds: xr.Dataset, data_path: Path, settings: dict) -> dict:
    """The calibration's reading model of each variable that names one (recorded in ``settings``)."""
    paths = {v: spec.noise[v].calibration for v in spec.variables if spec.noise[v].calibration is not None}
    out = {}
    for path in sorted(set(paths.values())):
        out.update(calibrated_readings(path, data_path, [str(p) for p in ds["pair"].values],
                                       [v for v, p in paths.items() if p == path]))
    if out:  # the reading models enter the chain's resume key through the settings
        settings["calibration"] = {v: {"source": r.source, "coefficient": r.model.coef.tolist(),
                                       "sigma_run_pair_point": [r.model.sigma_run, r.model.sigma_pair,
                                                                r.model.sigma_point]} for v, r in out.items()}
        for v, r in out.items():
            log.info("observation model of %s from %s", v, r.source)
    return out


def _holder_traces(ds: xr.Dataset) -> tuple | None:
    """Each PT step's temperature as the holder logged it (``holder_log_*`` of an imported run), or None.

    A step with samples is the pieces of :func:`~sinter4d.sintering.logged_trace_pieces`;
    one without is at its median ``temperature_C`` throughout.
    """
    if "holder_log_series" not in ds or ds["holder_log_series"].size == 0:
        return None
    t, median = ds["pt_time_s"].values, ds["temperature_C"].values
    series = ds["holder_log_series"].values
    time_s, temp = ds["holder_log_time_s"].values, ds["holder_log_temperature_C"].values
    traces = []
    for k in range(1, t.size):
        mine = series == k
        step = t[k] - t[k - 1]
        traces.append(logged_trace_pieces(time_s[mine], temp[mine], step) if mine.any()
                      else (np.array([median[k]]), np.array([step])))
    return tuple(traces)


def _fitted_pairs(ds: xr.Dataset, variables, data_path: Path) -> xr.Dataset:
    """The pairs with something to fit (each fitted variable measured somewhere)."""
    for v in variables:
        if not np.any(np.isfinite(ds[v].values)):
            raise InputError(f"{data_path}: {v}: no measured value in any pair (drop it from the spec's variables)")
    keep = np.zeros(ds.sizes["pair"], dtype=bool)
    for v in variables:
        keep |= np.isfinite(ds[v].values).any(axis=0)
    if "neck_radius_nm" in variables:
        keep &= np.isfinite(ds["neck_radius_nm"].values).any(axis=0)
    keep &= (ds["particle_radius_nm"].values > 0).any(axis=0)
    dropped = [str(p) for p, ok in zip(ds["pair"].values, keep) if not ok]
    if dropped:
        log.info("%s: pairs without data to fit are left out: %s", data_path, ", ".join(dropped))
    return ds.isel(pair=np.flatnonzero(keep))


def _settings(spec: FitSpec, ds: xr.Dataset) -> dict:
    """Standby and shell thickness: the fit spec's, else the data file's experiment spec, else defaults."""
    recorded = experiment_heating(ds)
    settings = {}
    for key in ("standby_temperature_C", "standby_s", "shell_thickness_nm"):
        given = getattr(spec.forward, key)
        settings[key] = given if given is not None else recorded.get(key, _DEFAULTS[key])
        source = "fit spec" if given is not None else ("data file's spec" if key in recorded else "default")
        log.info("%s = %g (%s)", key, settings[key], source)
    return settings


def _pair_model(spec: FitSpec, ds: xr.Dataset, heating: HeatingLog, shell_thickness_nm: float, data_path: Path):
    """The forward model of the pairs, and the neck points used as initial conditions (or None)."""
    fwd = spec.forward
    neck = ds["neck_radius_nm"].values
    r_p = ds["particle_radius_nm"].values
    radius = np.nanmedian(np.where(r_p > 0, r_p, np.nan), axis=0)
    n_pair = radius.size
    start = np.zeros(n_pair, dtype=np.int64)
    neck0 = excluded = None
    if fwd.initial_neck == "first":
        neck0 = np.empty(n_pair)
        excluded = np.zeros(neck.shape, dtype=bool)
        for p in range(n_pair):
            ok = np.flatnonzero(np.isfinite(neck[:, p]) & (neck[:, p] > 0))
            if not ok.size:
                raise InputError(f"{data_path}: neck_radius_nm: pair {ds['pair'].values[p]} has no positive neck "
                                 'to start from (initial_neck = "first")')
            start[p], neck0[p] = ok[0], neck[ok[0], p]
            excluded[ok[0], p] = True

    def make_model(gap):
        return TrajectoryModel(spec.card, heating, radius, gap, start_index=start, neck0_nm=neck0,
                               shell_thickness_nm=shell_thickness_nm, include_standby=fwd.include_standby,
                               grid_points=fwd.grid_points)

    model = make_model(np.zeros(n_pair))
    if fwd.gap == "data" and spec.card.saturation == "shell_reservoir":
        if "surface_gap_nm" in ds and np.isfinite(ds["surface_gap_nm"].values).any():
            gap, source = ds["surface_gap_nm"].values, "surface_gap_nm"
        else:
            gap, source = ds["distance_nm"].values - 2.0 * radius[None, :], "distance_nm - 2 r_p"
        model = make_model(_gap_from_data(model, gap, spec, source))
    return model, excluded


def _start_point(spec: FitSpec) -> np.ndarray:
    """Default of each sampled parameter: the card's, 1 nm for a sigma, 0 (or the prior's mean) for a bias,
    the card's initial neck (inside the prior)."""
    out = []
    for name, prior in zip(spec.parameter_names, spec.parameter_priors):
        if name in spec.card.parameters:
            value = spec.card.parameters[name].default
        elif name == INITIAL_NECK_PARAMETER:
            value = spec.card.initial_neck_nm
        elif name.startswith(("bias_", "gain_", "bridged_bias_")):
            value = prior.mean if prior.dist == "normal" else (1.0 if name.startswith("gain_") else 0.0)
        else:
            value = 1.0
        if not math.isfinite(float(prior.logpdf(value))):
            if prior.dist == "normal":
                value = prior.mean
            elif prior.dist == "log_uniform":
                value = math.sqrt(prior.low * prior.high)
            else:
                value = 0.5 * (prior.low + prior.high)
        out.append(value)
    return np.asarray(out, dtype=float)


def _read_apart(neck_nm: np.ndarray, left_out: np.ndarray) -> np.ndarray:
    """Neck readings of exactly 0 (the binary holds the pair apart) not already left out.

    A pair read apart has no neck to read, not a neck of 0 nm: the
    measurement reports 0 when the binarisation separates two particles
    whose true neck may be 20 nm wide (a bridged pair, a neck along the beam).
    As a reading of 0 it would pull the shared parameters by the whole neck,
    so it leaves the likelihood, as it does the calibrated reading model's
    domain (docs/design.md, "Fit: observation model").
    """
    return np.isfinite(neck_nm) & (neck_nm == 0.0) & ~left_out


def _gap_from_data(model: TrajectoryModel, gap_nm: np.ndarray, spec: FitSpec, source: str = "") -> np.ndarray:
    """Surface gap of each pair at its start, ``max(g0, 0)``, with g0 averaged over the pair's trajectory.

    ``gap_nm`` (T, P) is the measured gap at each time: the file's
    ``surface_gap_nm`` (along the line of centres, which for cores that are
    not spheres is what matters), else ``d - 2 r_p``. It shrinks by the
    centre approach A, so ``g0 = mean_k(g_k + A_k)`` with the approach of the
    card's default parameters, first with the gap read at the first
    measured time, then once more with the gap so found. Averaging over the
    trajectory keeps the measurement noise out of the gap (it would shift
    the reservoir). Gaps below ``forward.gap_min_nm`` count as 0 (contact):
    voxels of 4 nm, binarisation and the shell particles on the cores make a
    measured gap uncertain by a few nm. Pairs without a gap get 0.
    """
    a = model.radius_nm
    measured = np.isfinite(gap_nm)
    gap = np.zeros(a.size)
    for p in range(a.size):
        ok = np.flatnonzero(measured[:, p])
        if ok.size:
            gap[p] = max(gap_nm[ok[0], p], 0.0)
    params = {**spec.card.default_parameters, **spec.fixed}
    for _ in range(2):
        trial = TrajectoryModel(model.card, model.log, a, gap, start_index=model.start_index,
                                neck0_nm=model.neck0_nm, shell_thickness_nm=model.shell_thickness_nm,
                                include_standby=model.include_standby, grid_points=model.grid_points)
        _, approach = trial(params)
        # a pair that starts late (initial_neck = "first") has no approach before its start
        valid = measured & np.isfinite(approach)
        total = np.where(valid, gap_nm + np.where(valid, approach, 0.0), 0.0).sum(axis=0)
        count = valid.sum(axis=0)
        gap = np.maximum(np.where(count > 0, total / np.maximum(count, 1), 0.0), 0.0)
    gap = np.where(gap < spec.forward.gap_min_nm, 0.0, gap)
    log.info("surface gaps from %s (nm): %s", source or "the data", np.array2string(gap, precision=1))
    return gap
