"""sweep.nc from the cells' records: the grid, the schema's names, units and long names, NaN where a cell failed."""

import json

import numpy as np
from _sweeps import BAD_CELL
from _sweeps import write_sweep as _write

from sinter4d.experiments.sweep_dataset import read_cell_record, sweep_dataset
from sinter4d.experiments.sweep_spec import load_sweep_spec
from sinter4d.runfolder import SWEEP_CELL_STAGES, SweepFolder
from sinter4d.schema import SWEEP


def _ok_record(name, k):
    return {
        "cell": name, "status": "ok", "failed_stage": None, "error": None, "run_seconds": 10.0 + k,
        "stages": {s: {"status": "done", "seconds": 1.0 + k} for s in SWEEP_CELL_STAGES},
        "results": {
            "metrics": {
                "median_abs_error_neck_ratio": {"value": 0.1 * k, "units": "1", "long_name": "|error| of r_n/r_p"},
                "pairs_found": {"value": 2, **SWEEP["pairs_found"].attrs},
                "dice": {"value": 0.9, **SWEEP["dice"].attrs},
            },
            "posterior": {"capture_radius_nm": {"hdi_width": 3.0 + k, "mean": 20.0, "sd": 1.0, "units": "nm",
                                                "truth": 21.0}},
            "fit": {"n_over_tau": 60.0},
        },
    }


def _records(tmp_path, root):
    sweep = load_sweep_spec(_write(tmp_path, root))
    cells = sweep.cells()
    folder = SweepFolder(tmp_path / "out")
    for k, cell in enumerate(cells):
        run = folder.cell(cell.name)
        run.path.mkdir(parents=True)
        record = (_ok_record(cell.name, k) if cell.error is None else
                  {"cell": cell.name, "status": "failed", "failed_stage": "spec", "error": cell.error, "stages": {},
                   "results": None, "run_seconds": 0.0})
        SweepFolder.cell_record(run).write_text(json.dumps(record))
    return sweep, cells, folder


def test_read_cell_record_is_none_when_missing_or_broken(tmp_path):
    assert read_cell_record(tmp_path) is None
    SweepFolder.cell_record(SweepFolder(tmp_path).cell("x")).parent.mkdir(parents=True)
    SweepFolder.cell_record(SweepFolder(tmp_path).cell("x")).write_text("{not json")
    assert read_cell_record(tmp_path / "cells" / "x") is None


def test_sweep_dataset_on_the_grid(tmp_path, root):
    sweep, cells, folder = _records(tmp_path, root)
    ds = sweep_dataset(sweep, cells, folder.path)
    assert ds["status"].dims == ("tilt_range_deg", "tilt_step_deg")
    assert ds["status"].values.tolist() == [["ok", "failed"], ["ok", "ok"]]
    assert list(ds["stage"].values) == list(SWEEP_CELL_STAGES) == ["simulate", "reconstruct", "measure",
                                                                   "validate", "fit"]
    bad = ds.sel(tilt_range_deg=40, tilt_step_deg=15)
    assert np.isnan(bad["median_abs_error_neck_ratio"]) and np.isnan(bad["stage_seconds"]).all()
    assert str(bad["cell"].values) == BAD_CELL and "tilt_step_deg must divide" in str(bad["error"].values)
    np.testing.assert_allclose(ds["median_abs_error_neck_ratio"].values.ravel(), [0.0, np.nan, 0.2, 0.3])
    np.testing.assert_allclose(ds["posterior_width_capture_radius_nm"].values.ravel(), [3, np.nan, 5, 6])
    np.testing.assert_allclose(ds["stage_seconds"].sel(stage="fit").values.ravel(), [1, np.nan, 3, 4])
    # names, units and long names of the schema, units first as sweep.nc has always had them
    for name in ("pairs_found", "dice", "fit_n_over_tau", "run_seconds", "stage_seconds", "status",
                 "failed_stage", "error", "cell", "stage"):
        assert ds[name].attrs == {"units": SWEEP[name].units, "long_name": SWEEP[name].long_name}, name
        assert list(ds[name].attrs) == ["units", "long_name"], name
    assert ds["posterior_mean_capture_radius_nm"].attrs == {
        "units": "nm", "long_name": "posterior mean of capture_radius_nm", "truth": 21.0}
    assert ds["posterior_sd_capture_radius_nm"].attrs["long_name"] == (
        "posterior standard deviation of capture_radius_nm")
    assert ds["tilt_range_deg"].attrs["comment"].startswith("symmetric tilt range")
    assert ds["tilt_step_deg"].attrs == {"units": "degree", "long_name": "tilt step",
                                         "spec_key": "acquisition.tilt_step_deg"}
    # the order of the variables: summaries, dice, pairs, posterior, fit, time, then the cell's text
    assert list(ds.data_vars) == [
        "median_abs_error_neck_ratio", "dice", "pairs_found", "posterior_width_capture_radius_nm",
        "posterior_mean_capture_radius_nm", "posterior_sd_capture_radius_nm", "fit_n_over_tau", "run_seconds",
        "stage_seconds", "status", "failed_stage", "error", "cell"]


def test_switches_of_nested_tables_get_their_own_coordinates(tmp_path, root):
    """Two switches (``acquisition.probe.enabled``, ``acquisition.stage.enabled``) are two dimensions with coordinates."""
    sweep = load_sweep_spec(_write(tmp_path, root, sweep="""
name = "switches"
base = "base.toml"
[sweep]
"acquisition.probe.enabled" = [false, true]
"acquisition.stage.enabled" = [false, true]
"""))
    cells = sweep.cells()
    folder = SweepFolder(tmp_path / "out")
    for k, cell in enumerate(cells):
        run = folder.cell(cell.name)
        run.path.mkdir(parents=True)
        SweepFolder.cell_record(run).write_text(json.dumps(_ok_record(cell.name, k)))
    ds = sweep_dataset(sweep, cells, folder.path)
    assert ds["dice"].dims == ("probe_enabled", "stage_enabled") and "enabled" not in ds.dims
    assert ds["probe_enabled"].values.tolist() == ds["stage_enabled"].values.tolist() == ["false", "true"]
    assert ds["stage_enabled"].attrs["spec_key"] == "acquisition.stage.enabled"
    cell = ds.sel(probe_enabled="true", stage_enabled="false")["cell"].values
    assert str(cell) == "probe_enabled-true__stage_enabled-false"
