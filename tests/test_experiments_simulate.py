"""End to end: `sinter4d simulate` writes truth.nc and tilts/tNN.nc as docs/design.md says, and resumes."""

import json

import numpy as np
import pytest
import xarray as xr

from sinter4d import schema
from sinter4d.acquisition import dose_e_per_nm2
from sinter4d.cli import main
from sinter4d.experiments import load_spec, plan_simulation
from sinter4d.experiments.simulate import truth_dataset

TINY = """
name = "tiny"
seed = 3
[phantom]
n_cores = 4
[sintering]
model = "cu_shell_reservoir"
[heating]
pt_time_s = [0, 5, 12, 61]
temperature_C = [372, 370, 370, 364]
[acquisition]
image_pixels = 512
pixel_size_nm = 2.08
bin = 4
tilt_min_deg = -40.0
tilt_max_deg = 40.0
tilt_step_deg = 10.0
reference_frames = 10
"""



@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, root):
    folder = tmp_path_factory.mktemp("tiny")
    spec = folder / "tiny.toml"
    spec.write_text(TINY.replace('"cu_shell_reservoir"', f'"{root / "models" / "cu_shell_reservoir.toml"}"'))
    out = folder / "run"
    assert main(["simulate", str(spec), "--out", str(out), "-q"]) == 0
    return spec, out


def test_files_and_variables(tiny_run):
    _, out = tiny_run
    truth = xr.open_dataset(out / "truth.nc")
    assert truth.sizes["time"] == 4 and truth.sizes["pair"] >= 1
    for name in schema.PAIR_METRICS:
        assert truth[name].dims == ("time", "pair")
    for name in truth.variables:  # every variable as the schema declares it (parameters: 0-d, units 1)
        if name in json.loads(truth.attrs["parameter_names"]):
            assert truth[name].attrs["units"] == "1"
        else:
            assert truth[name].attrs == schema.attrs(name, schema.TRUTH)
    assert truth.pt_time_s.attrs["units"] == "s"
    assert list(truth.pair.values[:2]) == ["P1", "P2"][: truth.sizes["pair"]]
    for name in json.loads(truth.attrs["parameter_names"]):
        assert truth[name].ndim == 0
    files = sorted((out / "tilts").glob("t*.nc"))
    assert [f.name for f in files] == ["t01.nc", "t02.nc", "t03.nc", "t04.nc"]
    ds = xr.open_dataset(files[-1])
    assert ds.counts.dims == ("tilt", "y", "x") and ds.counts.shape == (9, 128, 128)
    np.testing.assert_allclose(ds.tilt_angle.values, np.arange(-40, 41, 10))
    for name in ("pixel_size_nm", "dose_e_per_nm2", "probe_current_pA", "dwell_time_ns", "pt_time_s",
                 "temperature_C", "true_axis_offset_px"):
        assert name in ds.attrs, name
    assert ds.attrs["pt_time_s"] == 61.0 and ds.attrs["temperature_C"] == 364.0
    for name in ("true_shift_y", "true_shift_x", "reference", "true_label"):
        assert name in ds.variables, name
    assert ds.x.attrs["units"] == "nm" and ds.tilt_angle.attrs["units"].startswith("deg")
    assert not list(out.rglob("*.tmp"))


def test_dose_of_the_file_is_the_specs(tiny_run):
    spec, out = tiny_run
    acq = load_spec(spec).acquisition
    ds = xr.open_dataset(out / "tilts" / "t01.nc")
    expected = dose_e_per_nm2(
        probe_current_pA=acq.probe_current_pA, dwell_time_ns=acq.dwell_time_ns,
        n_pixels=acq.image_pixels**2, n_images=9, pixel_size_nm=acq.pixel_size_nm,
    )
    assert ds.attrs["dose_e_per_nm2"] == pytest.approx(expected, rel=1e-9)


def test_truth_necks_grow_and_pairs_densify(tiny_run):
    _, out = tiny_run
    truth = xr.open_dataset(out / "truth.nc")
    neck = truth.neck_radius_nm.values
    assert np.all(np.diff(neck, axis=0) >= -1e-9)
    assert np.all(neck[-1] > neck[0] + 5.0)
    ratio = truth.distance_ratio.values
    assert np.all(ratio[-1] <= ratio[0] + 1e-9)


def test_true_label_is_the_truth_geometry(tiny_run):
    _, out = tiny_run
    truth = xr.open_dataset(out / "truth.nc")
    ds = xr.open_dataset(out / "tilts" / "t01.nc")
    label = ds.true_label.values
    voxel_nm3 = ds.attrs["pixel_size_nm"] ** 3
    volume = np.bincount(label.ravel(), minlength=truth.sizes["particle"] + 1)[1:] * voxel_nm3
    expected = 4.0 / 3.0 * np.pi * truth.initial_radius_nm.values**3
    np.testing.assert_allclose(volume, expected, rtol=0.08)


def test_resume_rewrites_only_missing_steps_and_matches(tiny_run):
    spec, out = tiny_run
    target = out / "tilts" / "t03.nc"
    before = xr.open_dataset(target).counts.values.copy()
    keep = (out / "tilts" / "t02.nc").stat().st_mtime_ns
    target.unlink()
    assert main(["simulate", str(spec), "--out", str(out), "-q"]) == 0
    np.testing.assert_array_equal(xr.open_dataset(target).counts.values, before)
    assert (out / "tilts" / "t02.nc").stat().st_mtime_ns == keep


def test_time_steps_simulated_side_by_side_equal_one_after_another(tiny_run, tmp_path, monkeypatch):
    # the module's run was simulated in this process (its grid is below POOL_MIN_VOXELS);
    # by two worker processes, the same files
    from sinter4d.experiments import simulate

    monkeypatch.setattr(simulate, "POOL_MIN_VOXELS", 0)
    spec, out = tiny_run
    workers = tmp_path / "workers"
    assert main(["simulate", str(spec), "--out", str(workers), "--jobs", "2", "-q"]) == 0
    names = sorted(p.name for p in (out / "tilts").glob("t*.nc"))
    assert names == sorted(p.name for p in (workers / "tilts").glob("t*.nc")) and len(names) == 4
    for name in names:
        with xr.open_dataset(out / "tilts" / name) as a, xr.open_dataset(workers / "tilts" / name) as b:
            xr.testing.assert_identical(a, b)


def test_simulate_jobs_out_of_range_is_one_line(tiny_run, tmp_path, capsys):
    spec, _ = tiny_run
    assert main(["simulate", str(spec), "--out", str(tmp_path / "run"), "--jobs", "0", "-q"]) == 2
    err = capsys.readouterr().err
    assert "n_jobs must be -1 (all cores) or a positive int, got 0" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_other_spec_in_same_folder_is_refused(tiny_run, tmp_path, capsys):
    spec, out = tiny_run
    other = tmp_path / "other.toml"
    other.write_text(spec.read_text().replace("seed = 3", "seed = 4"))
    assert main(["simulate", str(other), "--out", str(out), "-q"]) == 2
    assert "different spec" in capsys.readouterr().err


def test_same_seed_same_truth(root):
    spec = load_spec(root / "experiments" / "quick.toml")
    a = plan_simulation(spec, root / "experiments" / "quick.toml")
    b = plan_simulation(spec, root / "experiments" / "quick.toml")
    np.testing.assert_array_equal(a.clusters[-1].centre_nm, b.clusters[-1].centre_nm)
    assert a.spec.acquisition.axis_offset_px == b.spec.acquisition.axis_offset_px


def test_dose_command_prints_the_papers_numbers(capsys):
    assert main(["dose", "--current", "2.0", "--dwell", "500", "--pixels", "1024", "--tilts", "41", "--pixel-size", "1.04"]) == 0
    out = capsys.readouterr().out
    electrons = float(out.split("electrons per series:")[1].split()[0])
    dose = float(out.split("dose per series:")[1].split()[0])
    assert round(electrons / 1e8, 1) == 2.7
    assert 235.0 <= dose <= 250.0


def test_dose_key_sets_the_dose_of_the_file(root):
    from sinter4d.experiments import parse_spec
    from sinter4d.experiments.simulate import tilt_series_dataset

    spec = parse_spec({
        "name": "dose", "seed": 1, "phantom": {"n_cores": 2},
        "heating": {"pt_time_s": [0], "temperature_C": [372]},
        "acquisition": {"image_pixels": 512, "pixel_size_nm": 2.08, "bin": 4, "tilt_step_deg": 10.0,
                        "reference_frames": 0, "dose_e_per_nm2": 500.0},
    })
    ds = tilt_series_dataset(plan_simulation(spec, root / "experiments" / "quick.toml"), 0)
    assert ds.attrs["dose_e_per_nm2"] == pytest.approx(500.0, rel=1e-9)


def test_a_spec_json_written_before_a_key_existed_is_the_same_spec(tmp_path, root):
    from sinter4d.experiments.simulate import same_spec

    spec = load_spec(root / "experiments" / "quick.toml")
    old = json.loads(spec.to_json())
    for key in ("n_stacked", "n_gap_pairs"):  # keys added with the calibration twins
        del old["phantom"][key]
    stamp = tmp_path / "spec.json"
    stamp.write_text(json.dumps(old))
    assert same_spec(stamp, spec)
    stamp.write_text(json.dumps({**old, "seed": old["seed"] + 1}))
    assert not same_spec(stamp, spec)
    stamp.write_text(json.dumps({**old, "bogus": 1}))
    assert not same_spec(stamp, spec)


CLOCK = """
[heating.step_time_error]
enabled = true
[heating.overshoot]
enabled = true
"""


def _tiny_plan(root, extra=""):
    import tomllib

    from sinter4d.experiments import parse_spec

    text = TINY.replace('"cu_shell_reservoir"', f'"{root / "models" / "cu_shell_reservoir.toml"}"') + extra
    return plan_simulation(parse_spec(tomllib.loads(text)))


def test_heating_errors_off_integrate_the_logged_log(root):
    from sinter4d.sintering import sinter_cluster

    plan = _tiny_plan(root)
    assert plan.heating_truth.true is plan.heating
    again = sinter_cluster(plan.clusters[0], plan.card, plan.parameters, plan.heating, shell_thickness_nm=10.0)
    for a, b in zip(plan.clusters, again):  # no rigid motion in this comparison: the necks only
        np.testing.assert_array_equal(a.neck_radius_nm, b.neck_radius_nm)


def test_heating_errors_on_truth_records_and_streams(root):
    off, on = _tiny_plan(root), _tiny_plan(root, CLOCK)
    # the phantom, axis and step streams are unchanged: same cores, same offset, same per-step seeds
    np.testing.assert_array_equal(off.clusters[0].centre_nm, on.clusters[0].centre_nm)
    assert off.spec.acquisition.axis_offset_px == on.spec.acquisition.axis_offset_px
    assert [s.spawn_key for s in off.seeds] == [s.spawn_key for s in on.seeds]
    truth = truth_dataset(on)
    e = truth["pt_step_error_s"].values
    assert truth["pt_step_error_s"].dims == ("time",)  # one error per step, shared by every pair
    assert e[0] == 0 and np.all(np.abs(e[1:]) <= 1.0) and np.any(e[1:] != 0)
    np.testing.assert_allclose(truth["true_pt_time_s"].values, truth["pt_time_s"].values + np.cumsum(e))
    trace = truth["heating_trace_duration_s"].values
    series = truth["heating_trace_series"].values
    for k in range(1, 4):
        assert trace[series == k].sum() == pytest.approx(np.diff(truth["true_pt_time_s"].values)[k - 1])
        temp = truth["heating_trace_temperature_C"].values[series == k]
        assert temp.max() > truth["temperature_C"].values[k]  # the overshoot
    # the pairs' necks grew along the true log, not the logged one
    assert not np.array_equal(off.clusters[-1].neck_radius_nm, on.clusters[-1].neck_radius_nm)
    assert truth["pt_time_s"].values.tolist() == [0, 5, 12, 61]
