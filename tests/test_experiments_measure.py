"""Measurement and validation of noiseless phantoms of a simulated plan: the run folder's metrics.nc,
validation.nc, figures and resume."""

import json
import os

import numpy as np
import pytest
import xarray as xr

from sinter4d import schema
from sinter4d.errors import InputError
from sinter4d.experiments import parse_spec, plan_simulation, truth_dataset
from sinter4d.experiments.measure import figure_paths, measure_run
from sinter4d.experiments.validate import validate_run
from sinter4d.measurement import measure_volumes
from sinter4d.runfolder import RunFolder
from sinter4d.validation import compare_to_truth
from sinter4d.io.netcdf import write_dataset_atomic
from sinter4d.phantom import Grid, pair_silhouette_waist_nm, voxelize

VOX = 4.0  # nm
SHIFT_VOX = (1, 2, -3)  # rigid translation of the "reconstruction" against the truth
METRICS = list(schema.PAIR_METRICS)


def _spec(root):
    return parse_spec(
        {
            "name": "measure-test",
            "seed": 3,
            "phantom": {"n_cores": 4},
            # the phantom these tolerances were set on: one rigid body, whose slide between series
            # would only move the cores against the voxel grid (tests/test_sintering_motion.py tracks moves)
            "sintering": {"model": str(root / "models" / "cu_shell_reservoir.toml"), "rigid_motion": {"enabled": False}},
            "heating": {"pt_time_s": [0, 12, 41, 209], "temperature_C": [372, 370, 370, 350]},
            "acquisition": {"image_pixels": 512, "pixel_size_nm": 2.08, "bin": 4, "tilt_step_deg": 10.0},
        }
    )


def _grid(clusters):
    """A 4 nm grid centred on the tilt axis holding every core at every time."""
    lo = np.min([(c.centre_nm - 1.3 * c.radius_nm[:, None]).min(axis=0) for c in clusters], axis=0)
    hi = np.max([(c.centre_nm + 1.3 * c.radius_nm[:, None]).max(axis=0) for c in clusters], axis=0)
    nz = int(np.ceil((hi[0] - lo[0]) / VOX)) + 4
    nyx = [2 * int(np.ceil(max(abs(lo[k]), abs(hi[k])) / VOX)) + 8 for k in (1, 2)]
    return Grid((nz, *nyx), VOX, 0.5 * (lo[0] + hi[0]))


@pytest.fixture(scope="module")
def phantom(root):
    """Noiseless binaries (true core labels > 0) of a 4-core plan at 4 time steps, and its truth."""
    plan = plan_simulation(_spec(root))
    grid = _grid(plan.clusters)
    labels = [voxelize(c, grid).label for c in plan.clusters]
    truth = truth_dataset(plan)
    waist = np.stack([pair_silhouette_waist_nm(c, plan.pairs) for c in plan.clusters])
    return plan, grid, labels, truth, waist


@pytest.fixture(scope="module")
def metrics(phantom):
    plan, grid, labels, _, _ = phantom
    z, y, x = grid.coords_nm()
    binaries = [(lab > 0).astype(np.uint8) for lab in labels]
    return measure_volumes(
        binaries, z, y, x, plan.spec.heating.pt_time_s, plan.spec.heating.temperature_C, voxel_size_nm=VOX
    )


@pytest.fixture(scope="module")
def run_dir(phantom, tmp_path_factory):
    """A run folder: truth.nc, tilts/tNN.nc (true_label only), recon/tNN.nc (binary, shifted)."""
    plan, grid, labels, truth, _ = phantom
    run = tmp_path_factory.mktemp("measure") / "run"
    z, y, x = grid.coords_nm()
    write_dataset_atomic(truth, run / "truth.nc")
    coords = {"z": ("z", z, {"units": "nm"}), "y": ("y", y, {"units": "nm"}), "x": ("x", x, {"units": "nm"})}
    for t, lab in enumerate(labels):
        name = f"t{t + 1:02d}.nc"
        tilts = xr.Dataset({"true_label": (("z", "y", "x"), lab.astype(np.uint8))}, coords=coords)
        write_dataset_atomic(tilts, run / "tilts" / name)
        binary = np.roll((lab > 0).astype(np.uint8), SHIFT_VOX, axis=(0, 1, 2))
        attrs = {
            "pixel_size_nm": VOX,
            "pt_time_s": float(plan.spec.heating.pt_time_s[t]),
            "temperature_C": float(plan.spec.heating.temperature_C[t]),
        }
        recon = xr.Dataset({"binary": (("z", "y", "x"), binary)}, coords=coords, attrs=attrs)
        write_dataset_atomic(recon, run / "recon" / name)
    return run


def _true_index(metrics, truth):
    """For each measured pair and time, the truth's pair index (by the cores of its particles), or -1."""
    val = compare_to_truth(metrics, truth)
    names = [str(p) for p in metrics.pair.values]
    out = np.full(metrics.status.shape, -1)
    for t, j in zip(*np.nonzero(val.measured_pair.values != "")):
        out[t, names.index(str(val.measured_pair.values[t, j]))] = j
    return val, out


def test_every_true_pair_found_and_none_spurious(phantom, metrics):
    _, _, _, truth, _ = phantom
    val, _ = _true_index(metrics, truth)
    n_true = truth.sizes["pair"]
    assert val.found.values.tolist() == [n_true] * 4
    assert val.spurious.values.tolist() == [0] * 4
    assert (val.attrs["pairs_found"], val.attrs["pairs_missed"], val.attrs["pairs_spurious"]) == (n_true, 0, 0)
    assert (metrics.status.values == "ok").all()
    assert metrics.sizes["pair"] == n_true


def test_neck_within_a_voxel_and_distance_within_half_a_voxel(phantom, metrics):
    """r_n reads the silhouette's waist (the protocol's truth) within 1 voxel wherever the neck is
    resolved (r_n >= sqrt(r_p * voxel): a smaller neck reads as the voxelised contact of two spheres);
    d (3D centres of mass) is within 0.5 voxel of the true distance for every pair."""
    _, _, _, truth, waist = phantom
    _, idx = _true_index(metrics, truth)
    t, k = np.nonzero(idx >= 0)
    j = idx[t, k]
    true_rn = truth.neck_radius_nm.values[t, j]
    resolved = true_rn >= np.sqrt(truth.particle_radius_nm.values[t, j] * VOX)
    assert resolved.sum() >= 0.6 * len(t)
    rn_err = metrics.neck_radius_nm.values[t, k] - waist[t, j]
    assert np.abs(rn_err[resolved]).max() <= VOX
    # the 3D neck (in-plane extent) against the real neck: half an extent of a spheroids' elliptic
    # contact is not its equal-area radius, so only about a voxel
    n3_err = metrics.neck_radius_3d_nm.values[t, k] - true_rn
    assert np.median(np.abs(n3_err[resolved])) <= 0.6 * VOX
    assert np.abs(n3_err[resolved]).max() <= 1.5 * VOX
    d_err = metrics.distance_nm.values[t, k] - truth.distance_nm.values[t, j]
    assert np.abs(d_err).max() <= 0.5 * VOX
    assert np.median(np.abs(d_err)) <= 0.2 * VOX
    rp_err = metrics.particle_radius_nm.values[t, k] - truth.particle_radius_nm.values[t, j]
    assert np.abs(rp_err).max() <= VOX
    ar_err = metrics.aspect_ratio.values[t, k] - truth.aspect_ratio.values[t, j]
    assert np.abs(ar_err).max() <= 0.06


def test_protocol_distance_is_also_available(phantom):
    plan, grid, labels, _, _ = phantom
    z, y, x = grid.coords_nm()
    b = (labels[-1] > 0).astype(np.uint8)
    ds = measure_volumes([b], z, y, x, [209.0], [350.0], voxel_size_nm=VOX, distance="protocol", centre="inscribed")
    assert ds.attrs["distance"] == "protocol" and ds.attrs["centre"] == "inscribed"
    assert np.isfinite(ds.distance_nm.values).all()


def test_metrics_layout(metrics):
    assert metrics.neck_ratio.dims == ("time", "pair")
    assert metrics.pt_time_s.dims == ("time",) and metrics.temperature_C.dims == ("time",)
    assert metrics.pt_time_s.attrs["units"] == "s" and metrics.temperature_C.attrs["units"] == "degC"
    assert [str(p) for p in metrics.pair.values] == [f"P{k + 1}" for k in range(metrics.sizes["pair"])]
    for name in metrics.variables:  # every variable as the schema declares it
        want = schema.attrs(name, schema.METRICS)
        assert {k: metrics[name].attrs[k] for k in want} == want
    assert metrics.status.dtype.kind in "UO"
    assert set(json.loads(metrics.status.attrs["meanings"])) >= {"ok", "merged", "lost", "absent"}
    assert metrics.particle_label.dims == ("time", "pair", "end")
    assert metrics.pair_centre_nm.dims == ("time", "pair", "end", "axis")
    np.testing.assert_allclose(
        metrics.neck_ratio, metrics.neck_radius_nm / metrics.particle_radius_nm, rtol=1e-12
    )
    np.testing.assert_allclose(
        metrics.distance_ratio, metrics.distance_nm / (2 * metrics.particle_radius_nm), rtol=1e-12
    )


def test_run_writes_metrics_validation_and_figures_and_resumes(run_dir, phantom):
    _, _, _, truth, _ = phantom
    target = measure_run(run_dir, progress=False)
    assert target == RunFolder(run_dir).metrics
    fig8, fig9 = figure_paths(target)
    assert fig8.stat().st_size > 10_000 and fig9.stat().st_size > 10_000
    with xr.open_dataset(target) as ds:
        assert ds.sizes["time"] == 4 and ds.attrs["distance"] == "com3d"
        assert list(ds.pt_time_s.values) == [0, 12, 41, 209]
    # resume: nothing newer, nothing rewritten
    stamp = target.stat().st_mtime_ns
    assert measure_run(run_dir, progress=False) == target
    assert target.stat().st_mtime_ns == stamp

    out = validate_run(run_dir, progress=False)
    assert out == RunFolder(run_dir).validation
    assert RunFolder(run_dir).validation_fig8.is_file()
    with xr.open_dataset(out) as val:
        n_true = truth.sizes["pair"]
        assert (val.attrs["pairs_found"], val.attrs["pairs_missed"], val.attrs["pairs_spurious"]) == (n_true, 0, 0)
        assert val.dice.values == pytest.approx(1.0)
        # the rigid shift is undone before matching
        np.testing.assert_allclose(val.registration_offset_nm.values, np.tile(-np.array(SHIFT_VOX) * VOX, (4, 1)), atol=1.0)
        for name in val.variables:
            assert val[name].attrs == schema.attrs(name, schema.VALIDATION) or name in ("pt_time_s", "temperature_C")
        for name in METRICS:
            assert val[name].dims == ("time", "pair")
        assert val.attrs["median_abs_error_distance_ratio"] <= 0.01
        assert val.attrs["max_abs_error_distance_ratio"] <= 0.03
        assert val.attrs["median_abs_error_neck_ratio"] <= 0.05
        # noiseless voxels: the reading curve is near the identity, the surface gap within half a voxel
        assert val.attrs["neck_reading_points"] >= 8
        assert abs(val.attrs["neck_reading_bias_nm"]) <= 0.5 * VOX
        assert 0.9 <= val.attrs["neck_reading_gain"] <= 1.25
        assert val.attrs["median_abs_error_surface_gap_nm"] <= 0.5 * VOX

    # a newer reconstruction is measured again
    recon = run_dir / "recon" / "t02.nc"
    os.utime(recon, ns=(stamp + 10**9, stamp + 10**9))
    measure_run(run_dir, progress=False)
    assert target.stat().st_mtime_ns > stamp


def test_single_file_and_out(run_dir, tmp_path):
    out = measure_run(run_dir / "recon" / "t03.nc", out=tmp_path / "one.nc", progress=False)
    assert out == tmp_path / "one.nc"
    with xr.open_dataset(out) as ds:
        assert ds.sizes["time"] == 1 and float(ds.pt_time_s[0]) == 41.0
    assert all(p.is_file() for p in figure_paths(out))


def test_recon_without_binary_is_one_line(tmp_path):
    bad = tmp_path / "t01.nc"
    write_dataset_atomic(xr.Dataset({"volume": (("z", "y", "x"), np.zeros((2, 3, 4), np.float32))}), bad)
    with pytest.raises(InputError, match=r"t01\.nc: missing variable\(s\) binary") as err:
        measure_run(bad, progress=False)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="no reconstruction"):
        measure_run(tmp_path, progress=False)
