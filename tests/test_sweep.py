"""What-if sweeps: spec validation, grid expansion, and a 2 x 2 sweep through a real LocalCluster."""

import json
import math
import time

import numpy as np
import pytest
import xarray as xr

from sinter4d.cli import main
from sinter4d.errors import SpecError
from sinter4d.experiments.sweep import load_sweep_spec, run_sweep

# 2 cores of 80 nm in 64^2 px of 4.16 nm, 3 series, 9 tilts: one cell runs in ~15 s on one core
TINY_BASE = """
name = "tiny"
seed = 3
[phantom]
n_cores = 2
mean_diameter_nm = 80.0
[sintering]
model = "{root}/models/cu_shell_reservoir.toml"
[heating]
pt_time_s = [0, 31, 209]
temperature_C = [372, 372, 350]
[acquisition]
image_pixels = 256
bin = 4
dose_e_per_nm2 = 250.0
tilt_min_deg = -40.0
tilt_max_deg = 40.0
tilt_step_deg = 10.0
reference_frames = 10
[pipeline]
bm3d_profile = "lc"
bm3d_stages = "hard"
method = "pdhg"
iterations = 50
slab_thickness_nm = 200.0
[fit]
spec = "{root}/assimilation/quick.toml"
walkers = 16
steps = 200
burn_in = 50
thin = 5
"""

# +-40 deg in 15 deg steps is invalid (15 does not divide 80): that cell fails, the others run
TINY_SWEEP = """
name = "tiny_sweep"
base = "base.toml"
[sweep]
"acquisition.tilt_range_deg" = [40, 45]
"acquisition.tilt_step_deg" = [10, 15]
"""

BAD_CELL = "tilt_range_deg-40__tilt_step_deg-15"


def _write(tmp_path, root, sweep=TINY_SWEEP):
    (tmp_path / "base.toml").write_text(TINY_BASE.format(root=root))
    path = tmp_path / "sweep.toml"
    path.write_text(sweep)
    return path


def test_shipped_sweep_specs_expand(root):
    dose = load_sweep_spec(root / "experiments" / "dose_sweep.toml")
    assert dose.dims == ("dose_e_per_nm2",)
    assert [c.spec.acquisition.dose_e_per_nm2 for c in dose.cells()] == [25, 80, 250, 800, 2500]
    tilt = load_sweep_spec(root / "experiments" / "tilt_sweep.toml")
    assert tilt.dims == ("tilt_range_deg", "tilt_step_deg") and tilt.shape == (3, 3)
    cells = tilt.cells()
    assert all(c.error is None for c in cells)
    for c in cells + dose.cells():
        assert c.spec.seed == tilt.base_spec.seed  # the same specimen in every cell
    assert [len(c.spec.acquisition.angles_deg) for c in cells] == [61, 31, 13, 101, 51, 21, 141, 71, 29]


def test_grid_expansion(tmp_path, root):
    sweep = load_sweep_spec(_write(tmp_path, root))
    cells = sweep.cells()
    assert [c.index for c in cells] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert cells[2].name == "tilt_range_deg-45__tilt_step_deg-10"
    acq = cells[2].spec.acquisition
    assert (acq.tilt_min_deg, acq.tilt_max_deg, acq.tilt_step_deg) == (-45.0, 45.0, 10.0)
    assert cells[3].spec.acquisition.angles_deg.size == 7
    bad = cells[1]
    assert bad.name == BAD_CELL and bad.spec is None
    assert "tilt_step_deg must divide" in bad.error and BAD_CELL in bad.error


def test_unquoted_dotted_keys_are_the_same_setting(tmp_path, root):
    body = 'base = "base.toml"\n[sweep]\nacquisition.dose_e_per_nm2 = [25, 2500]\n'
    sweep = load_sweep_spec(_write(tmp_path, root, body))
    assert sweep.keys == ("acquisition.dose_e_per_nm2",)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ('base = "base.toml"\ncolour = 1\n[sweep]\n"seed" = [1, 2]', r"colour: unknown key"),
        ('base = "base.toml"\n[sweep]\n"acquisition.dose" = [1]', r"sweep\.acquisition\.dose: unknown setting"),
        ('base = "base.toml"\n[sweep]\n"acquisition.dose_e_per_nm2" = [25, -1]',
         r"sweep\.acquisition\.dose_e_per_nm2\[1\]: .*greater than 0"),
        ('base = "base.toml"\n[sweep]\n"acquisition.bin" = ["four"]', r"sweep\.acquisition\.bin\[0\]"),
        ('base = "base.toml"\n[sweep]\n"acquisition.bin" = 4', r"sweep\.acquisition\.bin: must be a non-empty list"),
        ('base = "base.toml"\n[sweep]\n"acquisition.tilt_range_deg" = [95]', r"tilt_range_deg\[0\]: .*90"),
        ('base = "nowhere.toml"\n[sweep]\n"seed" = [1]', r"base: no such experiment spec"),
        ('[sweep]\n"seed" = [1]', r"base: missing key"),
        ('base = "base.toml"\n[sweep]', r"sweep: names no setting"),
    ],
)
def test_bad_sweep_spec_is_one_line_naming_the_key(tmp_path, root, body, match):
    with pytest.raises(SpecError, match=match) as info:
        load_sweep_spec(_write(tmp_path, root, body))
    assert "\n" not in str(info.value) and str(tmp_path / "sweep.toml") in str(info.value)


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
    mtimes = {name: p.stat().st_mtime_ns for name, p in cells.items()}

    t0 = time.perf_counter()
    run_sweep(spec, out, progress=False, n_workers=2)  # finished cells skipped: no cluster is started
    assert time.perf_counter() - t0 < 20
    for name, p in cells.items():
        if name != BAD_CELL:
            assert p.stat().st_mtime_ns == mtimes[name], name
    assert json.loads(cells[BAD_CELL].read_text())["status"] == "failed"  # retried (still invalid)
    again = xr.open_dataset(out / "sweep.nc")
    np.testing.assert_array_equal(again["median_abs_error_neck_ratio"], ds["median_abs_error_neck_ratio"])


def test_plots_of_a_1d_sweep_mark_failed_cells(tmp_path):
    from sinter4d.plots.sweep import plot_sweep

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
