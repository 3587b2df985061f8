"""Neck/distance trajectories: a run's metrics or truth file, or the CSV a user types in.

Both layouts of docs/design.md are read into one :class:`xarray.Dataset` with dims
``(time, pair)``:

* a metrics file (a run's metrics; its truth file has the same variables):
  variables ``neck_radius_nm``, ``distance_nm``, ``particle_radius_nm`` over
  ``(time, pair)``, coordinates ``pt_time_s`` and ``temperature_C`` on
  ``time``. 0-d numeric variables (the parameter values a simulated run was
  made with) are kept.
* a trajectory table (``.csv``): columns ``pt_time_s, temperature_C, pair,
  neck_radius_nm, distance_nm, particle_radius_nm``, one row per pair and
  time; ``distance_nm`` may be empty or absent. An optional column (and
  variable) ``surface_gap_nm`` gives the gap along the line of centres,
  which a shell-reservoir fit uses for the gap a neck bridges.

An imported run's ``metrics.nc`` (or ``metrics.csv``) is read with the
run folder's ``heating_log.nc`` beside it when the manifest gave one
(docs/design.md, "Heating log as measured"): its variables
``pt_step_error_bound_s`` (time) and ``holder_log_*`` (sample) join the
dataset.

NaN marks a point that could not be measured; it is skipped by the fit, not
fatal. Errors a user can cause raise :class:`~sinter4d.errors.InputError`
with one line naming the file and the problem.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import xarray as xr

from ..checks import check_file
from ..errors import InputError
from ..runfolder import RunFolder
from ..schema import COORDINATES, HEATING_LOG, PAIR_METRICS
from .netcdf import open_dataset_checked

log = logging.getLogger(__name__)

#: Variables of a trajectory dataset, with units and long names.
TRAJECTORY_VARIABLES: dict[str, tuple[str, str]] = {
    **{name: (PAIR_METRICS[name].units, PAIR_METRICS[name].long_name)
       for name in ("neck_radius_nm", "distance_nm", "particle_radius_nm")},
    # shorter than the schema's: the gap of a typed-in table need not come from moment ellipsoids
    "surface_gap_nm": ("nm", "gap between the particles' surfaces along the line of centres"),
}
_REQUIRED_NC = ("neck_radius_nm", "particle_radius_nm", "pt_time_s", "temperature_C")
_CSV_COLUMNS = ("pt_time_s", "temperature_C", "pair", "neck_radius_nm", "distance_nm", "particle_radius_nm",
                "surface_gap_nm")
_CSV_REQUIRED = ("pt_time_s", "temperature_C", "pair", "neck_radius_nm", "particle_radius_nm")


def read_trajectories(path: str | Path) -> xr.Dataset:
    """Read the trajectories of particle pairs from a metrics file or a CSV table.

    Parameters
    ----------
    path : str or Path
        A netCDF file laid out as a run's metrics (or its truth), or a
        ``.csv`` trajectory table (docs/design.md, "Trajectory table").

    Returns
    -------
    xarray.Dataset
        Dims ``(time, pair)``; variables ``neck_radius_nm``, ``distance_nm``
        and ``surface_gap_nm`` (all NaN when the file has none) and
        ``particle_radius_nm`` (nm);
        coordinates ``pt_time_s`` (s), ``temperature_C`` (°C) and ``pair``
        (labels); 0-d parameter variables of a simulated run; the
        variables of ``heating_log.nc`` when the file is a run folder's
        metrics and the folder has one; attribute
        ``source`` (the path) and, when the file carries one, ``spec`` (the
        experiment spec as JSON).

    Raises
    ------
    InputError
        Missing file, variable or column; a value that is not a number or
        infinite; times that do not increase; a time with two temperatures;
        every pair NaN; a negative particle radius; a pair with necks but no
        particle radius. (A negative neck or distance is kept with a
        warning: noise around a small value can make it negative.)

    Examples
    --------
    >>> from sinter4d.runfolder import RunFolder
    >>> ds = read_trajectories(RunFolder("runs/quick").metrics)  # doctest: +SKIP
    >>> ds.neck_radius_nm.dims  # doctest: +SKIP
    ('time', 'pair')
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        ds = _read_csv(path)
    else:
        ds = _read_netcdf(path)
    _check(ds, path)
    ds = _with_heating_log(ds, path)
    ds.attrs["source"] = str(path)
    return ds


def write_trajectories_csv(ds: xr.Dataset, path: str | Path) -> Path:
    """Write the trajectories of a metrics (or truth) dataset as a trajectory table (CSV).

    The inverse of :func:`read_trajectories` for a table: one row per time
    and pair (time-major), the columns of docs/design.md ("Trajectory
    table"), ``surface_gap_nm`` only when the dataset has it; NaN is an
    empty cell. Values are written in full precision, so reading the table
    back gives the same numbers. The file is written atomically.

    Parameters
    ----------
    ds : xarray.Dataset
        Variables ``neck_radius_nm``, ``particle_radius_nm`` (and
        ``distance_nm``, ``surface_gap_nm`` when present) over ``(time,
        pair)``; coordinates (or variables) ``pt_time_s`` and
        ``temperature_C`` over ``time``; ``pair`` labels (default ``P1``,
        ``P2``, ...).
    path : str or Path
        The ``.csv`` file.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        A required variable is missing.
    """
    import pandas as pd

    from .atomic import atomic_path

    source = ds.attrs.get("source", "dataset")
    missing = [name for name in _REQUIRED_NC if name not in ds.variables]
    if missing:
        raise InputError(f"{source}: missing variable(s) {', '.join(missing)}")
    n_time, n_pair = ds.sizes["time"], ds.sizes["pair"]
    pairs = [str(p) for p in ds["pair"].values] if "pair" in ds.coords else [f"P{k + 1}" for k in range(n_pair)]
    columns = {
        "pt_time_s": np.repeat(np.asarray(ds["pt_time_s"].values, float), n_pair),
        "temperature_C": np.repeat(np.asarray(ds["temperature_C"].values, float), n_pair),
        "pair": np.tile(pairs, n_time),
    }
    for name in _CSV_COLUMNS[3:]:
        if name in ds:
            columns[name] = np.asarray(ds[name].transpose("time", "pair").values, float).ravel()
        elif name == "distance_nm":
            columns[name] = np.full(n_time * n_pair, np.nan)
    with atomic_path(path) as tmp:
        pd.DataFrame(columns).to_csv(tmp, index=False, na_rep="")
    return Path(path)


def _read_netcdf(path: Path) -> xr.Dataset:
    raw = open_dataset_checked(path, _REQUIRED_NC)
    for name in ("neck_radius_nm", "particle_radius_nm", "distance_nm"):
        if name in raw and set(raw[name].dims) != {"time", "pair"}:
            raise InputError(f"{path}: {name}: dims must be (time, pair), got {raw[name].dims}")
    for name in ("pt_time_s", "temperature_C"):
        if raw[name].dims != ("time",):
            raise InputError(f"{path}: {name}: must be 1-D over time, got dims {raw[name].dims}")
    n_time, n_pair = raw.sizes["time"], raw.sizes["pair"]
    pairs = [str(p) for p in raw["pair"].values] if "pair" in raw.coords else [f"P{k + 1}" for k in range(n_pair)]
    data = {}
    for name, (units, long_name) in TRAJECTORY_VARIABLES.items():
        if name in raw:
            values = _as_float(raw[name].transpose("time", "pair").values, path, name)
        else:
            values = np.full((n_time, n_pair), np.nan)
        data[name] = (("time", "pair"), values, {"units": units, "long_name": long_name})
    for name, var in raw.data_vars.items():
        if var.ndim == 0 and var.dtype.kind in "fiu" and name not in data:
            data[name] = ((), float(var.values), dict(var.attrs))
    if "pt_step_error_s" in raw and raw["pt_step_error_s"].dims == ("time",):  # a simulated run's true step errors
        data["pt_step_error_s"] = (("time",), _as_float(raw["pt_step_error_s"].values, path, "pt_step_error_s"),
                                   dict(raw["pt_step_error_s"].attrs))
    coords = _coords(_as_float(raw["pt_time_s"].values, path, "pt_time_s"),
                     _as_float(raw["temperature_C"].values, path, "temperature_C"), pairs)
    attrs = {k: raw.attrs[k] for k in ("spec", "model_card", "parameter_names", "title") if k in raw.attrs}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _read_csv(path: Path) -> xr.Dataset:
    import pandas as pd

    check_file(path)
    try:
        table = pd.read_csv(path, skipinitialspace=True, comment="#", dtype={"pair": str})
    except Exception as exc:  # pandas raises ParserError, UnicodeDecodeError, EmptyDataError...
        raise InputError(f"{path}: not a readable CSV table ({exc})") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in _CSV_REQUIRED if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (expected {', '.join(_CSV_COLUMNS)})")
    unknown = [c for c in table.columns if c not in _CSV_COLUMNS]
    if unknown:
        raise InputError(f"{path}: unknown column(s) {', '.join(unknown)} (expected {', '.join(_CSV_COLUMNS)})")
    if table.empty:
        raise InputError(f"{path}: the table has no rows")
    if table["pair"].isna().any():
        row = int(np.flatnonzero(table["pair"].isna().values)[0]) + 2
        raise InputError(f"{path}: line {row}: pair: empty label")
    cols = {}
    for name in ("pt_time_s", "temperature_C", "neck_radius_nm", "distance_nm", "particle_radius_nm", "surface_gap_nm"):
        if name not in table.columns:
            cols[name] = np.full(len(table), np.nan)
            continue
        values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(np.isnan(values) & table[name].notna().to_numpy())
        if bad.size:
            raise InputError(f"{path}: line {bad[0] + 2}: {name}: not a number ({table[name].iloc[bad[0]]!r})")
        cols[name] = values
    for name in ("pt_time_s", "temperature_C"):
        bad = np.flatnonzero(~np.isfinite(cols[name]))
        if bad.size:
            raise InputError(f"{path}: line {bad[0] + 2}: {name}: missing value")
    labels = [str(p).strip() for p in table["pair"]]
    pairs = list(dict.fromkeys(labels))
    for pair in pairs:
        rows = np.flatnonzero(np.array(labels) == pair)
        t = cols["pt_time_s"][rows]
        step = np.flatnonzero(np.diff(t) <= 0)
        if step.size:
            raise InputError(
                f"{path}: line {rows[step[0] + 1] + 2}: pt_time_s: times of pair {pair} do not increase "
                f"({t[step[0]]:g} then {t[step[0] + 1]:g})"
            )
    times = np.unique(cols["pt_time_s"])
    temperature = np.full(times.size, np.nan)
    k_of_row = np.searchsorted(times, cols["pt_time_s"])
    for row, k in enumerate(k_of_row):
        temp = cols["temperature_C"][row]
        if np.isnan(temperature[k]):
            temperature[k] = temp
        elif not math.isclose(temperature[k], temp, rel_tol=0, abs_tol=1e-9):
            raise InputError(
                f"{path}: line {row + 2}: temperature_C: {temp:g} at pt_time_s {times[k]:g}, "
                f"where another row has {temperature[k]:g}"
            )
    p_of_row = np.array([pairs.index(p) for p in labels])
    data = {}
    for name, (units, long_name) in TRAJECTORY_VARIABLES.items():
        values = np.full((times.size, len(pairs)), np.nan)
        values[k_of_row, p_of_row] = cols[name]
        data[name] = (("time", "pair"), values, {"units": units, "long_name": long_name})
    return xr.Dataset(data, coords=_coords(times, temperature, pairs))


def _with_heating_log(ds: xr.Dataset, path: Path) -> xr.Dataset:
    """``ds`` with the variables of the run folder's ``heating_log.nc`` when ``path`` is that folder's metrics."""
    run = RunFolder(path.parent)
    if path.name not in (run.metrics.name, run.metrics_csv.name) or not run.heating_log.is_file():
        return ds
    heating = open_dataset_checked(run.heating_log, list(HEATING_LOG) + ["pt_time_s"])
    logged, measured = heating["pt_time_s"].values, ds["pt_time_s"].values
    if logged.shape != measured.shape or not np.allclose(logged, measured, rtol=0, atol=1e-6):
        raise InputError(f"{run.heating_log}: its times ({', '.join(f'{t:g}' for t in logged)} s) differ from those "
                         f"of {path} ({', '.join(f'{t:g}' for t in measured)} s); measure every series of the run")
    for name, var in HEATING_LOG.items():
        ds[name] = (var.dims, _as_float(heating[name].values, run.heating_log, name), var.attrs)
    ds.attrs["heating_log"] = str(run.heating_log)
    return ds


def _coords(pt_time_s, temperature_C, pairs):
    values = {"time": np.arange(len(pt_time_s)), "pt_time_s": np.asarray(pt_time_s, float),
              "temperature_C": np.asarray(temperature_C, float), "pair": list(pairs)}
    return {name: (COORDINATES[name].dims, data, _attrs(name)) for name, data in values.items()}


def _attrs(name: str) -> dict:
    """Units (where any) then long name of a coordinate, as the file has always had them."""
    var = COORDINATES[name]
    return {"units": var.units, "long_name": var.long_name} if var.units else {"long_name": var.long_name}


def _as_float(values, path, name) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {name}: not numeric") from None


def _check(ds: xr.Dataset, path: Path) -> None:
    t = ds["pt_time_s"].values
    if t.size == 0 or ds.sizes["pair"] == 0:
        raise InputError(f"{path}: no times or no pairs")
    if not np.all(np.isfinite(t)):
        raise InputError(f"{path}: pt_time_s: NaN or infinite times")
    if np.any(np.diff(t) <= 0):
        k = int(np.flatnonzero(np.diff(t) <= 0)[0])
        raise InputError(f"{path}: pt_time_s: times do not increase ({t[k]:g} then {t[k + 1]:g} at time {k + 1})")
    if not np.all(np.isfinite(ds["temperature_C"].values)):
        raise InputError(f"{path}: temperature_C: NaN or infinite temperatures")
    neck = ds["neck_radius_nm"].values
    if np.all(np.isnan(neck)):
        raise InputError(f"{path}: neck_radius_nm: every pair is NaN at every time (nothing to fit)")
    for name in TRAJECTORY_VARIABLES:
        values = ds[name].values
        if np.any(np.isinf(values)):
            raise InputError(f"{path}: {name}: infinite values")
        negative = int(np.count_nonzero(values[np.isfinite(values)] < 0))
        if negative and name == "particle_radius_nm":
            raise InputError(f"{path}: {name}: negative values")
        if negative and name != "surface_gap_nm":  # noise around a small neck can do this; the likelihood takes it
            log.warning("%s: %s: %d negative value(s) kept", path, name, negative)
    radius = ds["particle_radius_nm"].values
    for p, label in enumerate(ds["pair"].values):
        if np.any(np.isfinite(neck[:, p])) and not np.any(radius[:, p] > 0):
            raise InputError(f"{path}: particle_radius_nm: pair {label} has necks but no particle radius")


def experiment_heating(ds: xr.Dataset) -> dict:
    """The heating settings recorded in a trajectory dataset's ``spec`` attribute.

    Returns
    -------
    dict
        ``standby_temperature_C``, ``standby_s`` (from the spec's
        ``heating`` table) and ``shell_thickness_nm`` (from ``phantom``),
        whichever the spec holds; empty when the file carries no spec.
    """
    text = ds.attrs.get("spec")
    if not isinstance(text, str):
        return {}
    try:
        spec = json.loads(text)
    except ValueError:
        return {}
    out = {}
    heating = spec.get("heating") or {}
    for key in ("standby_temperature_C", "standby_s"):
        if isinstance(heating.get(key), (int, float)):
            out[key] = float(heating[key])
    phantom = spec.get("phantom") or {}
    if isinstance(phantom.get("shell_thickness_nm"), (int, float)):
        out["shell_thickness_nm"] = float(phantom["shell_thickness_nm"])
    return out


def validation_sigma(path: str | Path, variable: str) -> float:
    """Spread of one metric in a run's validation file (metrics − truth): its root mean square.

    Parameters
    ----------
    path : str or Path
        A validation file (differences metrics − truth over ``(time, pair)``).
    variable : str
        e.g. ``"neck_radius_nm"``.

    Returns
    -------
    float
        ``sqrt(mean(diff**2))`` over the finite differences (nm). The root
        mean square, not the standard deviation: a bias of the measurement is
        noise the model does not know about.

    Raises
    ------
    InputError
        Missing file or variable, or no finite difference.
    """
    ds = open_dataset_checked(path, [variable])
    diff = np.asarray(ds[variable].values, dtype=float)
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        raise InputError(f"{path}: {variable}: no finite difference to take a spread from")
    sigma = float(np.sqrt(np.mean(diff**2)))
    if not sigma > 0:
        raise InputError(f"{path}: {variable}: every difference is 0 (no spread)")
    return sigma
