"""Twins of a run: the same acquisition, other specimens; the calibration applied to a measurement."""

import json

import numpy as np
import pytest
import xarray as xr

from sinter4d.calibration import (
    acquisition_of_spec,
    acquisition_of_tilts,
    calibrate_metrics,
    calibration_dataset,
    orientation_deg,
    reading_models,
    twin_specs,
)
from sinter4d.errors import InputError
from sinter4d.experiments import load_spec, parse_spec, plan_simulation
from sinter4d.io.netcdf import write_dataset_atomic

from _readings import synthetic_readings


@pytest.fixture(scope="module")
def quick(root):
    return json.loads(load_spec(root / "experiments" / "quick.toml").to_json())


def test_twins_match_the_acquisition_and_differ_in_specimen(quick):
    twins = twin_specs(quick, 3)
    assert [t["seed"] for t in twins] == [1001, 1002, 1003]
    for t in twins:
        for key in ("pixel_size_nm", "bin", "image_pixels", "tilt_min_deg", "tilt_max_deg", "tilt_step_deg",
                    "probe_current_pA", "dwell_time_ns", "detector", "stage", "probe", "oversample"):
            assert t["acquisition"][key] == quick["acquisition"][key], key
        assert t["acquisition"]["axis_offset_px"] is None
        assert t["pipeline"] == quick["pipeline"]
        assert t["heating"]["pt_time_s"] == [0.0, 22.0, 209.0]  # first, middle, last of the run's seven
        assert t["heating"]["temperature_C"] == [372.0, 370.0, 350.0]
        assert t["phantom"]["n_stacked"] == 1 and t["fit"]["spec"] is None
    assert acquisition_of_spec(quick)["dose_e_per_nm2"] == pytest.approx(236.6, abs=0.05)  # the paper's dose
    # an imported run's spec has no log: its twins take the default (the paper's) log's first, middle and last
    imported = twin_specs({"name": "imported", "seed": 0}, 1)[0]
    assert imported["heating"]["pt_time_s"] == [0.0, 41.0, 209.0] and imported["heating"]["imaged_series"] is None
    with pytest.raises(InputError, match="run's own seed"):
        twin_specs(quick, 2, seeds=[7, 8])
    with pytest.raises(InputError, match="distinct"):
        twin_specs(quick, 2, seeds=[5, 5])


def test_twins_on_a_smaller_field_keep_the_acquisition_and_the_cores_per_area(root):
    paper = json.loads(load_spec(root / "experiments" / "paper_cu_350c.toml").to_json())
    run = plan_simulation(parse_spec(paper), root / "experiments" / "paper_cu_350c.toml")
    twin = twin_specs(paper, 1, image_pixels=512, n_series=1)[0]
    plan = plan_simulation(parse_spec(twin), root / "experiments" / "paper_cu_350c.toml")
    # the middle of the paper's 18 series (index 8: 41 s), reached through the paper's log, imaged alone
    assert twin["heating"]["pt_time_s"] == paper["heating"]["pt_time_s"][:9]
    assert twin["heating"]["temperature_C"] == paper["heating"]["temperature_C"][:9]
    assert twin["heating"]["imaged_series"] == [8] and parse_spec(twin).heating.imaged == [8]
    # a quarter of the field: 9 cores x 1/4 rounds to 2, raised to two on the film besides the stacked one
    assert twin["phantom"]["n_cores"] == 3 and twin["phantom"]["n_stacked"] == 1
    assert twin_specs(paper, 1, image_pixels=768)[0]["phantom"]["n_cores"] == 5  # 9 x 9/16 = 5.06
    assert plan.spec.acquisition.output_pixels == 512 and run.spec.acquisition.output_pixels == 1024
    assert plan.grid.shape[1:] == (run.grid.shape[1] // 2, run.grid.shape[2] // 2)
    # the same pixel, tilts and electrons per nm^2: only the field is cut
    assert plan.spec.acquisition.pixel_size_nm == run.spec.acquisition.pixel_size_nm
    assert np.array_equal(plan.spec.acquisition.angles_deg, run.spec.acquisition.angles_deg)
    assert acquisition_of_spec(twin)["dose_e_per_nm2"] == pytest.approx(acquisition_of_spec(paper)["dose_e_per_nm2"])
    quick = json.loads(load_spec(root / "experiments" / "quick.toml").to_json())  # bin 4
    with pytest.raises(InputError, match="multiple of its bin"):
        twin_specs(quick, 1, image_pixels=510)
    with pytest.raises(InputError, match="at most the run's 1024"):
        twin_specs(quick, 1, image_pixels=2048)


def test_a_stacked_core_makes_a_pair_out_of_the_plane(root):
    doc = {"name": "s", "seed": 3, "phantom": {"n_cores": 4, "n_stacked": 1},
           "heating": {"pt_time_s": [0.0], "temperature_C": [370.0]},
           "acquisition": {"image_pixels": 256, "pixel_size_nm": 4.16, "tilt_step_deg": 20.0}}
    plan = plan_simulation(parse_spec(doc), root / "experiments" / "quick.toml")
    centre = plan.clusters[0].centre_nm
    _, elevation = orientation_deg(centre[plan.pairs[:, 0]], centre[plan.pairs[:, 1]])
    assert elevation.max() > 30.0
    flat = plan_simulation(parse_spec({**doc, "phantom": {"n_cores": 4}}), root / "experiments" / "quick.toml")
    c = flat.clusters[0].centre_nm
    assert orientation_deg(c[flat.pairs[:, 0]], c[flat.pairs[:, 1]])[1].max() < 30.0
    with pytest.raises(Exception, match="n_stacked"):
        parse_spec({**doc, "phantom": {"n_cores": 3, "n_stacked": 2}})


def test_orientation_of_known_axes():
    a = np.zeros((3, 3))
    b = np.array([[0.0, 10.0, 0.0], [0.0, 0.0, 10.0], [10.0, 0.0, 10.0]])  # along y (the axis), along x, 45° up
    in_plane, elevation = orientation_deg(a, b)
    assert np.allclose(in_plane, [0.0, 90.0, 90.0]) and np.allclose(elevation, [0.0, 0.0, 45.0])


def test_acquisition_of_tilts():
    ds = xr.Dataset({"counts": (("tilt", "y", "x"), np.ones((5, 16, 16), np.float32))},
                    coords={"tilt_angle": ("tilt", np.linspace(-40.0, 40.0, 5))},
                    attrs={"pixel_size_nm": 4.16, "dose_e_per_nm2": 250.0})
    acq = acquisition_of_tilts(ds)
    assert acq["tilt_step_deg"] == 20.0 and acq["image_pixels"] == 16 and acq["dose_source"] == "file"
    uneven = ds.assign_coords(tilt_angle=("tilt", [-40.0, -20.0, 0.0, 10.0, 40.0]))
    with pytest.raises(InputError, match="evenly spaced"):
        acquisition_of_tilts(uneven)


def _metrics(neck, gap, centre_b):
    """A one-pair, two-time metrics Dataset (pair axis from the origin to centre_b)."""
    n_t = len(neck)
    centre = np.zeros((n_t, 1, 2, 3))
    centre[:, 0, 1] = centre_b
    v = {"neck_radius_nm": neck, "distance_nm": [150.0] * n_t, "surface_gap_nm": gap,
         "particle_radius_nm": [75.0] * n_t}
    data = {k: (("time", "pair"), np.asarray(x, float)[:, None]) for k, x in v.items()}
    data["pair_centre_nm"] = (("time", "pair", "end", "axis"), centre)
    return xr.Dataset(data, coords={"time": np.arange(n_t), "pair": ["P1"]})


def test_calibrate_metrics_inverts_each_reading(tmp_path):
    table = synthetic_readings(seed=1, n=400)
    cal = calibration_dataset([table], {"source": "synthetic", "twin_seeds": list(range(8))})
    write_dataset_atomic(cal, tmp_path / "calibration.nc")
    cal = xr.open_dataset(tmp_path / "calibration.nc").load()  # what a reader gets back from the file
    assert set(reading_models(cal)) == {"neck_radius_nm", "distance_nm"}
    assert cal["coefficient"].attrs["long_name"] and cal["reading_true_neck_radius_nm"].attrs["units"] == "nm"
    # one pair along the tilt axis, in the plane, not bridged: true necks 20 and 30 nm
    true = np.array([20.0, 30.0])
    m = _metrics(np.sqrt(true**2 + 280.0), [0.0, 0.0], [0.0, 150.0, 0.0])
    out = calibrate_metrics(m, cal)
    assert np.allclose(out["neck_radius_calibrated_nm"].values[:, 0], true, atol=1.0)
    assert np.all(out["neck_radius_calibrated_sd_nm"].values > 0)
    assert np.allclose(out["distance_calibrated_nm"].values, 150.0 - 1.5, atol=0.3)
    assert np.allclose(out["neck_ratio_calibrated"].values[:, 0], true / 75.0, atol=0.015)
    with pytest.raises(InputError, match="pair_centre_nm"):
        calibrate_metrics(m.drop_vars("pair_centre_nm"), cal)
