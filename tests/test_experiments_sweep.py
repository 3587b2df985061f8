"""What-if sweeps: a 2 x 2 sweep through a real LocalCluster, an existing scheduler, errors at the command line."""

import json
import math

import numpy as np
import pytest
import xarray as xr

from _sweeps import BAD_CELL
from _sweeps import write_sweep as _write

from sinter4d.cli import main
from sinter4d.experiments.sweep import run_sweep


def test_cli_bad_sweep_spec_exits_2_and_writes_nothing(tmp_path, root, capsys):
    spec = _write(tmp_path, root, 'base = "base.toml"\n[sweep]\n"acquisition.colour" = [1]')
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "-q"]) == 2
    assert "sweep.acquisition.colour: unknown setting" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.timeout(240)
def test_sweep_on_a_local_cluster(tmp_path, root):
    spec, out = _write(tmp_path, root), tmp_path / "out"
    path = run_sweep(spec, out, progress=False, n_workers=2)
    assert path == out / "sweep.nc"
    ds = xr.open_dataset(path)
    assert ds["status"].dims == ("tilt_range_deg", "tilt_step_deg")
    np.testing.assert_array_equal(ds["tilt_range_deg"], [40, 45])
    np.testing.assert_array_equal(ds["tilt_step_deg"], [10, 15])
    assert ds["tilt_range_deg"].attrs["units"] == "degree"
    for name in ds.variables:
        if name not in ds.dims:
            assert "units" in ds[name].attrs and "long_name" in ds[name].attrs, name

    status = ds["status"].values
    assert status.tolist() == [["ok", "failed"], ["ok", "ok"]]
    bad = ds.sel(tilt_range_deg=40, tilt_step_deg=15)
    assert "tilt_step_deg must divide" in str(bad["error"].values)
    assert math.isnan(bad["median_abs_error_neck_ratio"])
    ok = ds.where(ds["status"] == "ok")
    for name in ("median_abs_error_neck_ratio", "median_abs_error_distance_ratio", "dice", "run_seconds",
                 "posterior_width_capture_radius_nm"):
        values = ok[name].values[status == "ok"]
        assert np.isfinite(values).all(), name
    assert (ok["pairs_found"].values[status == "ok"] >= 1).all()
    assert ds["median_abs_error_neck_ratio"].attrs["units"] == "1"
    assert ds["posterior_width_capture_radius_nm"].attrs["units"] == "nm"
    assert sorted(p.name for p in out.glob("heatmap_*.png"))

    cells = {c.parent.name: c for c in (out / "cells").glob("*/cell.json")}
    assert len(cells) == 4
    records = {name: json.loads(p.read_text()) for name, p in cells.items()}
    assert records[BAD_CELL]["failed_stage"] == "spec"
    for name, rec in records.items():
        if name != BAD_CELL:
            assert rec["worker"]["numba_pool_threads"] == 1  # the worker's env reached numba
            assert set(rec["stages"]) == {"simulate", "reconstruct", "measure", "validate", "fit"}
    assert not list((out / "cells").rglob("*.mrc"))  # a sweep's cells keep no MRC copies
    mtimes = {name: p.stat().st_mtime_ns for name, p in cells.items()}

    run_sweep(spec, out, progress=False, n_workers=2)  # finished cells skipped: no cluster is started
    record = json.loads((out / "sweep.json").read_text())
    assert record["cells_run"] == 0 and "workers" not in record  # nothing submitted, no Dask client
    for name, p in cells.items():
        if name != BAD_CELL:
            assert p.stat().st_mtime_ns == mtimes[name], name
    assert json.loads(cells[BAD_CELL].read_text())["status"] == "failed"  # retried (still invalid)
    again = xr.open_dataset(out / "sweep.nc")
    np.testing.assert_array_equal(again["median_abs_error_neck_ratio"], ds["median_abs_error_neck_ratio"])


def test_plots_of_a_1d_sweep_mark_failed_cells(tmp_path):
    from sinter4d.figures.sweep import plot_sweep

    dose = xr.DataArray([25, 250, 2500], dims="dose_e_per_nm2",
                        attrs={"units": "e/nm^2", "long_name": "electron dose per tilt series"})
    ds = xr.Dataset(
        {"median_abs_error_neck_ratio": ("dose_e_per_nm2", [0.3, 0.1, np.nan], {"units": "1", "long_name": "e"}),
         "status": ("dose_e_per_nm2", ["ok", "ok", "failed"], {"units": "1", "long_name": "status"})},
        coords={"dose_e_per_nm2": dose},
    )
    (png,) = plot_sweep(ds, tmp_path)
    assert png == tmp_path / "sweep_dose_e_per_nm2.png" and png.stat().st_size > 0
    two = xr.concat([ds, ds], dim=xr.DataArray([1, 2], dims="tilt_step_deg", name="tilt_step_deg"))
    assert [p.name for p in plot_sweep(two, tmp_path)] == ["heatmap_median_abs_error_neck_ratio.png"]


@pytest.mark.timeout(180)
def test_sweep_on_an_existing_scheduler(tmp_path, root):
    from distributed import Client, LocalCluster

    from sinter4d.experiments.sweep import WORKER_ENV

    body = 'base = "base.toml"\n[sweep]\n"acquisition.tilt_step_deg" = [20]\n'
    spec, out = _write(tmp_path, root, body), tmp_path / "out"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, env=dict(WORKER_ENV),
                      dashboard_address=None) as cluster:
        path = run_sweep(spec, out, scheduler=cluster.scheduler_address, progress=False)
        with Client(cluster) as client:  # the sweep leaves a cluster it did not start running
            assert len(client.scheduler_info()["workers"]) == 1
    ds = xr.open_dataset(path)
    assert ds["status"].values.tolist() == ["ok"]
    assert np.isfinite(ds["median_abs_error_distance_ratio"].values).all()
    record = json.loads((out / "cells" / "tilt_step_deg-20" / "cell.json").read_text())
    assert record["worker"]["numba_pool_threads"] == 1
