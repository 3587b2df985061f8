"""The sweep's results: one cell's figures (``cell.json``) and all of them on the grid (``sweep.nc``).

:func:`cell_results` runs in the worker once a cell has finished and reads
its run folder; :func:`sweep_dataset` puts every cell's record on the
sweep's grid, with the names, units and long names of
:data:`sinter4d.schema.SWEEP`.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import xarray as xr

from ..io.netcdf import open_dataset_checked
from ..runfolder import SWEEP_CELL_STAGES, RunFolder, SweepFolder
from ..schema import SWEEP, SWEEP_POSTERIOR, SWEEP_SETTINGS, Variable, suffix_units
from .sweep_spec import DERIVED_KEYS, Cell, SweepSpec, dim_name

__all__ = ["cell_results", "read_cell_record", "sweep_dataset"]

_PAIR_COUNTS = ("pairs_true", "pairs_found", "pairs_missed", "pairs_spurious")


def _attrs(var: Variable) -> dict:
    """``units`` then ``long_name``, in the order sweep.nc has always carried them."""
    return {"units": var.units, "long_name": var.long_name}


def read_cell_record(cell_dir: str | Path) -> dict | None:
    """A cell's record (``cell.json``), or None when missing or unreadable."""
    path = SweepFolder.cell_record(RunFolder(cell_dir))
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def cell_results(run_dir: str | Path) -> dict:
    """The figures of a finished cell: validation summary and posterior widths.

    Returns
    -------
    dict
        ``metrics``: name -> ``{"value", "units", "long_name"}`` (the
        ``median_abs_error_*``/``max_abs_error_*`` summaries, ``dice`` and
        ``pairs_*`` of the run's validation); ``posterior``: parameter ->
        ``{"mean", "sd", "hdi_low", "hdi_high", "hdi_width", "r_hat",
        "ess_bulk", "truth", "units"}`` (the fit's summary table, 94 % HDI;
        ``truth`` from the run's truth); ``fit``: ``n_over_tau`` and
        ``acceptance_fraction`` (the fit's posterior). Empty when the cell
        has no fit.
    """
    run = RunFolder(run_dir)
    val = open_dataset_checked(run.validation)
    metrics = {}
    for key, value in val.attrs.items():
        if key.startswith(("median_abs_error_", "max_abs_error_")):
            stat, metric = key.split("_abs_error_", 1)
            attrs = val[f"{metric}_{stat}_abs_error"].attrs if f"{metric}_{stat}_abs_error" in val else {}
            what = attrs.get("long_name", f"{stat} |error| of {metric}")
            metrics[key] = {"value": float(value), "units": attrs.get("units", "1"),
                            "long_name": f"{what}, over pairs and time steps"}
        elif key in _PAIR_COUNTS:
            metrics[key] = {"value": int(value), **_attrs(SWEEP[key])}
    if "dice" in val:
        metrics["dice"] = {"value": float(np.nanmedian(val["dice"].values)) if val["dice"].size else math.nan,
                           **_attrs(SWEEP["dice"])}
    out = {"metrics": metrics, "posterior": {}, "fit": {}}
    summary = run.fit.summary_csv
    if summary.is_file():
        truth = open_dataset_checked(run.truth) if run.truth.is_file() else None
        with summary.open(newline="") as fh:
            for row in csv.DictReader(fh):
                param = row[""]
                f = {k: _float(row.get(k)) for k in ("mean", "sd", "hdi_3%", "hdi_97%", "r_hat", "ess_bulk")}
                out["posterior"][param] = {
                    "mean": f["mean"], "sd": f["sd"], "hdi_low": f["hdi_3%"], "hdi_high": f["hdi_97%"],
                    "hdi_width": f["hdi_97%"] - f["hdi_3%"], "r_hat": f["r_hat"], "ess_bulk": f["ess_bulk"],
                    "truth": float(truth[param].values) if truth is not None and param in truth.data_vars
                    and truth[param].ndim == 0 else None,
                    "units": "nm" if param.endswith("_nm") else "1",
                }
        posterior = run.fit.posterior
        if posterior.is_file():
            with xr.open_dataset(posterior, group="posterior", engine="netcdf4") as ds:
                out["fit"] = {"n_over_tau": _float(ds.attrs.get("n_over_tau")),
                              "acceptance_fraction": _float(ds.attrs.get("acceptance_fraction_mean"))}
    return out


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _coord(key: str, values: tuple) -> tuple[np.ndarray, dict]:
    dim = dim_name(key)
    if all(isinstance(v, bool) for v in values):
        data = np.array([str(v).lower() for v in values])
    elif all(isinstance(v, str) for v in values):
        data = np.array(values)
    elif all(isinstance(v, int) for v in values):
        data = np.array(values, dtype=np.int64)
    else:
        data = np.array(values, dtype=np.float64)
    if dim in SWEEP_SETTINGS:
        units, long_name = SWEEP_SETTINGS[dim].units, SWEEP_SETTINGS[dim].long_name
    else:
        units = suffix_units(dim)
        long_name = key.replace("_", " ")
    attrs = {"units": units, "long_name": long_name, "spec_key": key}
    if key in DERIVED_KEYS:
        attrs["comment"] = DERIVED_KEYS[key]
    return data, attrs


def sweep_dataset(sweep: SweepSpec, cells: list[Cell], out_dir: str | Path) -> xr.Dataset:
    """The sweep's results on its grid, from the cells' ``cell.json``.

    Dimensions: one per swept key (named by its last part, with ``units``,
    ``long_name`` and the ``spec_key``). Variables: the validation summaries
    (``median_abs_error_neck_ratio``, ``max_abs_error_neck_ratio``,
    ``median_abs_error_distance_ratio``, ... in the units of the metric),
    ``dice`` (median over time steps), ``pairs_true``/``pairs_found``/
    ``pairs_missed``/``pairs_spurious``, ``posterior_width_<param>`` (94 %
    HDI), ``posterior_mean_<param>``, ``posterior_sd_<param>``,
    ``fit_n_over_tau``, ``run_seconds``, ``stage_seconds`` (extra dimension
    ``stage``), ``status`` (``ok``/``failed``/``not run``), ``failed_stage``,
    ``error`` and ``cell`` (folder under ``cells/``). NaN where a cell
    failed.
    """
    folder = SweepFolder(out_dir)
    dims, shape = list(sweep.dims), sweep.shape
    records = {c.name: read_cell_record(folder.cell(c.name).path) or {} for c in cells}
    num: dict[str, tuple[np.ndarray, dict]] = {}
    text = {name: np.full(shape, "", dtype=object) for name in ("status", "failed_stage", "error", "cell")}
    stage_seconds = np.full((*shape, len(SWEEP_CELL_STAGES)), np.nan)
    truths: dict[str, set] = {}

    def put(name, index, value, attrs):  # the attrs of a name's first cell stay
        if name not in num:
            num[name] = (np.full(shape, np.nan), attrs)
        num[name][0][index] = np.nan if value is None else value

    for cell in cells:
        rec, i = records[cell.name], cell.index
        text["cell"][i] = cell.name
        text["status"][i] = rec.get("status", "not run")
        text["failed_stage"][i] = rec.get("failed_stage") or ""
        text["error"][i] = rec.get("error") or ""
        if rec:
            put("run_seconds", i, rec.get("run_seconds"), _attrs(SWEEP["run_seconds"]))
        for k, stage in enumerate(SWEEP_CELL_STAGES):
            entry = rec.get("stages", {}).get(stage)
            if entry and entry.get("status") in ("done", "skipped"):
                stage_seconds[(*i, k)] = entry.get("seconds", np.nan)
        if rec.get("status") != "ok":
            continue
        res = rec.get("results") or {}
        for name, m in res.get("metrics", {}).items():
            put("dice" if name == "median_dice" else name, i, m["value"],
                {"units": m["units"], "long_name": m["long_name"]})
        for param, p in res.get("posterior", {}).items():
            for (name, long_name), value in zip(SWEEP_POSTERIOR.items(), (p["hdi_width"], p["mean"], p["sd"])):
                put(name.format(param=param), i, value,
                    {"units": p["units"], "long_name": long_name.format(param=param)})
            if p.get("truth") is not None:
                truths.setdefault(param, set()).add(p["truth"])
        fit = res.get("fit", {})
        if "n_over_tau" in fit:
            put("fit_n_over_tau", i, fit["n_over_tau"], _attrs(SWEEP["fit_n_over_tau"]))
    order = ("median_abs_error_neck_ratio", "median_abs_error_distance_ratio", "max_abs_error_neck_ratio",
             "max_abs_error_distance_ratio", "median_abs_error", "max_abs_error", "dice", "pairs_",
             "posterior_width_", "posterior_mean_", "posterior_sd_", "fit_", "run_seconds")
    rank = {name: next((k for k, prefix in enumerate(order) if name.startswith(prefix)), len(order)) for name in num}
    data_vars = {name: (dims, *num[name]) for name in sorted(num, key=lambda n: rank[n])}
    for param, values in truths.items():
        if len(values) == 1:
            data_vars[f"posterior_mean_{param}"][2]["truth"] = values.pop()
    data_vars["stage_seconds"] = ([*dims, "stage"], stage_seconds, _attrs(SWEEP["stage_seconds"]))
    for name, values in text.items():
        data_vars[name] = (dims, values.astype(str), _attrs(SWEEP[name]))
    coords = {}
    for key, values in zip(sweep.keys, sweep.values):
        data, attrs = _coord(key, values)
        coords[dim_name(key)] = (dim_name(key), data, attrs)
    coords["stage"] = ("stage", np.array(SWEEP_CELL_STAGES), _attrs(SWEEP["stage"]))
    from .. import __version__

    return xr.Dataset(data_vars, coords=coords, attrs={
        "title": f"sinter4d sweep {sweep.name}", "description": sweep.description,
        "sweep_spec": str(sweep.source.resolve()), "base_spec_file": str(sweep.base_path),
        "base_spec": sweep.base_spec.to_json(),
        "seed": sweep.base_spec.seed, "sinter4d_version": __version__,
        "comment": "every cell keeps the base seed (same specimen and sintering truth); NaN where a cell failed",
    })
