"""[acquisition.stage]: tilt-axis rotation, tilt-angle errors, rotating drift, reference drift; off = unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from sinter4d.acquisition import AcquisitionSpec, ScanSettings, bin_tilt_series, simulate_tilt_series
from sinter4d.acquisition._stage import StageMotion, StageSettings, mean_of_shifted, place_image
from sinter4d.errors import SpecError
from sinter4d.phantom import Grid
from sinter4d.specs import parse

GRID = Grid((16, 48, 48), 2.0)  # 32 x 96 x 96 nm
ANGLES = (-30.0, 0.0, 30.0)


def blob(grid: Grid, centre_zyx, sigma_nm: float) -> np.ndarray:
    """A small isotropic Gaussian of volume fraction <= 0.2 (its projections are symmetric)."""
    z, y, x = grid.coords_nm()
    r2 = (z[:, None, None] - centre_zyx[0]) ** 2 + (y[None, :, None] - centre_zyx[1]) ** 2 + (x[None, None, :] - centre_zyx[2]) ** 2
    return (0.2 * np.exp(-r2 / (2 * sigma_nm**2))).astype(np.float32)


def scan(**kw) -> ScanSettings:
    args = dict(angles_deg=ANGLES, pixel_size_nm=GRID.voxel_size_nm, probe_current_pA=2.0, dwell_time_ns=500.0)
    args.update(kw)
    return ScanSettings(**args)


def test_off_is_bit_identical():
    """A stage table present but off changes nothing, whatever its other values."""
    core = blob(GRID, (2.0, 6.0, -4.0), 8.0)
    common = dict(drift_sd_px=0.7, axis_offset_px=1.5, reference_frames=20)
    off = StageSettings(enabled=False, axis_rotation_deg=7.0, tilt_angle_sd_deg=1.0, rotation_step_sd_deg=0.5,
                        reference_drift_step_sd_nm=3.0)
    a = simulate_tilt_series(core, None, GRID, scan(**common), film_thickness_nm=20.0, rng=3, store_expected=True)
    b = simulate_tilt_series(core, None, GRID, scan(**common, stage=off), film_thickness_nm=20.0, rng=3,
                             store_expected=True)
    assert a.identical(b)
    assert a.attrs["tilt_axis_rotation_deg"] == 0.0 and "tilt_angle_true" not in a


def test_spec_table_absent_is_on_and_off_is_the_perfect_stage():
    doc = {"axis_offset_px": 0.0}
    absent = parse(AcquisitionSpec, doc, source="a.toml").scan_settings()
    off = parse(AcquisitionSpec, {**doc, "stage": {"enabled": False, "axis_rotation_deg": 5.0}}, source="a.toml")
    assert off.scan_settings().stage.enabled is False
    assert absent.stage == StageSettings(enabled=True) and absent.stage.axis_rotation_deg == 3.0
    on = parse(AcquisitionSpec, {**doc, "stage": {"enabled": True}}, source="a.toml").scan_settings()
    assert on.stage.enabled and on.stage.axis_rotation_deg == 3.0


@pytest.mark.parametrize(
    "table, match",
    [({"axis_rotation_deg": 95.0}, "axis_rotation_deg"), ({"tilt_angle_sd_deg": -0.1}, "tilt_angle_sd_deg"),
     ({"enabled": 1}, "enabled"), ({"wobble": 1.0}, "unknown key")],
)
def test_bad_stage_keys(table, match):
    with pytest.raises(SpecError, match=match):
        parse(AcquisitionSpec, {"stage": table}, source="a.toml")


def test_rotation_and_true_angles_put_the_centroid_where_they_say():
    """Image i's centroid is R(a_i) (y0, x0 cos t_i + z0 sin t_i + offset), t_i and a_i the recorded truth."""
    z0, y0, x0, offset = 6.0, 10.0, 14.0, 1.5
    stage = StageSettings(enabled=True, axis_rotation_deg=4.0, tilt_angle_sd_deg=1.0, rotation_step_sd_deg=1.0,
                          reference_drift_step_sd_nm=0.0)
    ds = simulate_tilt_series(blob(GRID, (z0, y0, x0), 3.0), None, GRID, scan(axis_offset_px=offset, stage=stage),
                              rng=11, store_expected=True)
    np.testing.assert_array_equal(ds["tilt_angle"].values, ANGLES)  # the file keeps the nominal angles
    true = ds["tilt_angle_true"].values
    rot = np.deg2rad(ds["true_axis_rotation"].values)
    assert np.all(np.abs(true - ANGLES) > 1e-3) and ds["true_axis_rotation"].values[1] == 4.0  # anchored at 0 deg
    img = ds["expected_counts"].values
    y, x = ds["y"].values, ds["x"].values
    h = GRID.voxel_size_nm
    for i, t in enumerate(np.deg2rad(true)):
        w = img[i] / img[i].sum()
        cy, cx = (w.sum(axis=1) @ y) / h, (w.sum(axis=0) @ x) / h
        sy, sx = y0 / h, (x0 * np.cos(t) + z0 * np.sin(t)) / h + offset  # in the axis frame (px)
        want = (sy * np.cos(rot[i]) - sx * np.sin(rot[i]), sy * np.sin(rot[i]) + sx * np.cos(rot[i]))
        assert (cy, cx) == pytest.approx(want, abs=0.02)


def test_place_image_axis_direction():
    """A line along y, rotated by a, runs along (cos a, sin a) (the pipeline's convention)."""
    img = np.zeros((65, 65))
    img[:, 32] = 1.0
    out = place_image(img, (0.0, 0.0), 30.0, order=1)
    yy, xx = np.mgrid[:65, :65] - 32.0
    w = out * (yy**2 + xx**2 < 25**2)
    cov = np.cov(np.stack([yy.ravel(), xx.ravel()]), aweights=w.ravel())
    direction = np.linalg.eigh(cov)[1][:, -1]
    assert abs(direction @ [np.cos(np.pi / 6), np.sin(np.pi / 6)]) == pytest.approx(1.0, abs=1e-4)


def test_true_angles_have_the_spec_sd():
    sd, n = 0.2, 4000
    nominal = np.linspace(-40.0, 40.0, n)
    motion = StageMotion.draw(StageSettings(enabled=True, tilt_angle_sd_deg=sd), nominal, anchor=n // 2,
                              reference_frames=0, pixel_size_nm=1.0, rng=np.random.default_rng(5))
    err = motion.angles_deg - nominal
    assert np.std(err, ddof=1) == pytest.approx(sd, rel=0.05)  # s.e. of an s.d. ~ 1/sqrt(2n) = 1.1 %
    assert abs(err.mean()) < 4 * sd / np.sqrt(n)


def test_reference_drift_blurs_by_the_walks_variance():
    """Mean of copies of a Gaussian moved by w_k: its centroid moves by mean(w), its variance grows by var(w)."""
    sigma, c = 2.0, 31.5
    yy, xx = np.mgrid[:64, :64]
    point = np.exp(-((yy - c) ** 2 + (xx - c) ** 2) / (2 * sigma**2))
    rng = np.random.default_rng(2)
    walk = np.cumsum(rng.normal(0.0, 0.4, (50, 2)), axis=0)
    out = mean_of_shifted(point, walk)
    w = out / out.sum()
    for k, coord in enumerate((yy, xx)):
        mean = (w * coord).sum()
        var = (w * (coord - mean) ** 2).sum()
        assert mean - c == pytest.approx(walk[:, k].mean(), abs=1e-6)
        assert var == pytest.approx(sigma**2 + walk[:, k].var(), abs=1e-5)


def test_reference_walk_variance_matches_the_random_walk():
    """Over many series, the walk's variance about its mean is s^2 (N^2 - 1) / (6N) per axis (N frames)."""
    s_nm, pixel, n = 0.3, 1.5, 50
    settings = StageSettings(enabled=True, reference_drift_step_sd_nm=s_nm)
    rng = np.random.default_rng(9)
    v = [StageMotion.draw(settings, ANGLES, anchor=1, reference_frames=n, pixel_size_nm=pixel, rng=rng)
         .reference_walk_px.var(axis=0).mean() for _ in range(400)]
    want = (s_nm / pixel) ** 2 * (n * n - 1) / (6 * n)
    assert np.mean(v) == pytest.approx(want, rel=0.08)


def test_stage_truth_recorded_and_binned():
    stage = StageSettings(enabled=True)
    ds = simulate_tilt_series(blob(GRID, (0.0, 0.0, 0.0), 8.0), None, GRID, scan(reference_frames=10, stage=stage), rng=1)
    assert "tilt_axis_rotation_deg" not in ds.attrs  # the pipeline must find the axis
    assert ds.attrs["tilt_axis_rotation_truth_deg"] == 3.0
    assert ds["true_reference_shift_y"].shape == (10,) and ds["true_reference_shift_x"].values[0] == 0.0
    b = bin_tilt_series(ds, 2)
    np.testing.assert_allclose(b["true_reference_shift_x"].values, ds["true_reference_shift_x"].values / 2)
    np.testing.assert_array_equal(b["tilt_angle_true"].values, ds["tilt_angle_true"].values)


def test_the_pipeline_finds_the_simulated_axis_direction():
    """The simulator's rotation and the estimator share one convention (a sign error would be 10 deg off).

    Six spheres at different heights at 8x the paper's dose per pixel, as in
    tests/test_pipeline_axis_direction.py. The tolerance guards the convention only: on this
    80 px series the estimator is 0.04-1.6 deg off over seeds 0-3 (the issue's 0.3 deg is not met yet;
    with the detector on see tests/test_pipeline_axis_direction.py and docs/validation.md).
    """
    from sinter4d.pipeline.axis_direction import choose_axis_rotation, fold_axis_rotation

    grid = Grid((24, 80, 80), 4.0)
    z, y, x = grid.coords_nm()
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    core = np.zeros(grid.shape, np.float32)
    for cz, cy, cx, r in [(-24, -80, -60, 20), (20, -60, 50, 18), (0, 0, -10, 24),
                          (26, 44, -76, 16), (-26, 70, 60, 20), (8, 100, -8, 18)]:
        core[(zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2] = 1.0
    angles = np.linspace(-40.0, 40.0, 25)
    stage = StageSettings(enabled=True, axis_rotation_deg=5.0)
    s = ScanSettings(angles_deg=tuple(angles), pixel_size_nm=4.0, probe_current_pA=50.0, dwell_time_ns=500.0,
                     drift_sd_px=0.5, axis_offset_px=1.5, stage=stage)
    ds = simulate_tilt_series(core, None, grid, s, film_thickness_nm=20.0, rng=3)
    found, source = choose_axis_rotation(ds["counts"].values, ds["tilt_angle"].values,
                                         recorded=ds.attrs.get("tilt_axis_rotation_deg"))
    assert source == "found"
    assert abs(fold_axis_rotation(found - ds.attrs["tilt_axis_rotation_truth_deg"])) < 2.0, found
