"""simulate_tilt_series / bin_tilt_series: counts statistics, dose, shifts, reference, schema."""

from __future__ import annotations

import numpy as np
import pytest

from sinter4d.acquisition import (
    HaadfModel,
    ScanSettings,
    bin_tilt_series,
    electrons_per_pixel,
    shift_image,
    simulate_tilt_series,
)
from sinter4d.errors import InputError
from sinter4d.operators import ParallelProjector
from sinter4d.phantom import Grid

GRID = Grid((24, 64, 64), 2.0)  # 48 x 128 x 128 nm
ANGLES = np.array([-40.0, -20.0, 0.0, 20.0, 40.0])


def sphere(grid: Grid, centre_zyx, radius, sub: int = 3) -> np.ndarray:
    """Volume fraction of a sphere in each voxel (supersampled)."""
    z, y, x = grid.coords_nm()
    h = grid.voxel_size_nm
    off = ((np.arange(sub) + 0.5) / sub - 0.5) * h
    zf, yf, xf = ((c[:, None] + off[None, :]).ravel() for c in (z, y, x))
    inside = (
        (zf[:, None, None] - centre_zyx[0]) ** 2
        + (yf[None, :, None] - centre_zyx[1]) ** 2
        + (xf[None, None, :] - centre_zyx[2]) ** 2
    ) <= radius**2
    nz, ny, nx = grid.shape
    return inside.reshape(nz, sub, ny, sub, nx, sub).mean(axis=(1, 3, 5)).astype(np.float32)


@pytest.fixture(scope="module")
def projector():
    return ParallelProjector.from_grid(GRID, ANGLES)


@pytest.fixture(scope="module")
def ball():
    return sphere(GRID, (0.0, 10.0, -8.0), 20.0)


def simulate(core, projector=None, **kw):
    args = dict(
        angles_deg=ANGLES,
        pixel_size_nm=GRID.voxel_size_nm,
        probe_current_pA=2.0,
        dwell_time_ns=500.0,
        film_thickness_nm=30.0,
        rng=0,
        reference_frames=0,
        projector=projector,
    )
    args.update(kw)
    scan = ScanSettings(**{k: args.pop(k) for k in list(args) if k in ScanSettings.model_fields})
    return simulate_tilt_series(core, None, GRID, scan, **args)


def test_film_only_mean_and_poisson_variance(projector):
    empty = np.zeros(GRID.shape, np.float32)
    film, current = 50.0, 100.0
    ds = simulate(empty, projector, probe_current_pA=current, film_thickness_nm=film)
    m = HaadfModel()
    e = electrons_per_pixel(current, 500.0)
    counts = ds["counts"].values
    n = counts[0].size
    for i, theta in enumerate(ANGLES):
        expected = e * (1 - np.exp(-m.mu_film_per_nm * film / np.cos(np.deg2rad(theta))))
        mean = counts[i].mean()
        assert abs(mean - expected) < 4 * np.sqrt(expected / n), (theta, mean, expected)
        var = counts[i].var(ddof=1)
        # s.d. of a Poisson sample variance: sqrt((m + 2 m^2) / n)
        assert abs(var - mean) < 4 * np.sqrt((expected + 2 * expected**2) / n)
    assert np.array_equal(counts, np.round(counts)) and counts.min() >= 0


def test_sphere_signal_at_centre(projector):
    core = sphere(GRID, (0.0, 0.0, 0.0), 20.0)
    ds = simulate(core, projector, film_thickness_nm=0.0, store_expected=True)
    e = electrons_per_pixel(2.0, 500.0)
    mu = HaadfModel().mu_cu_per_nm
    centre = ds["expected_counts"].values[2, 31:33, 31:33].mean()  # 0 deg, 4 central pixels
    # chord at the centre of those pixels (1.41 nm off-axis) is ~ 2 R
    assert centre == pytest.approx(e * (1 - np.exp(-mu * 2 * np.sqrt(20.0**2 - 2 * 1.0**2))), rel=0.01)


def test_counts_scale_with_dose(projector, ball):
    lo = simulate(ball, projector, probe_current_pA=2.0, store_expected=True, rng=1)
    hi = simulate(ball, projector, probe_current_pA=8.0, store_expected=True, rng=2)
    np.testing.assert_allclose(hi["expected_counts"], 4 * lo["expected_counts"], rtol=1e-5)
    assert hi.attrs["dose_e_per_nm2"] == pytest.approx(4 * lo.attrs["dose_e_per_nm2"])
    tot_lo, tot_hi = float(lo["counts"].values.sum()), float(hi["counts"].values.sum())
    assert tot_hi / tot_lo == pytest.approx(4.0, rel=5 * np.sqrt(1 / tot_lo + 1 / tot_hi))
    # dose attribute: electrons per pixel per frame over the pixel area, times the tilts
    assert lo.attrs["dose_e_per_nm2"] == pytest.approx(electrons_per_pixel(2.0, 500.0) * 5 / 2.0**2)


def test_true_shifts_undo_drift_and_axis_offset(projector, ball):
    offset = 2.3
    ds = simulate(ball, projector, drift_sd_px=1.5, axis_offset_px=offset, store_expected=True, rng=5)
    ref = simulate(ball, projector, drift_sd_px=0.0, axis_offset_px=0.0, store_expected=True, rng=5)
    sy, sx = ds["true_shift_y"].values, ds["true_shift_x"].values
    assert sy[2] == 0 and sx[2] == 0  # anchored at the 0 deg image
    assert np.abs(np.r_[sy, sx]).max() > 1.0
    assert ds.attrs["true_axis_offset_px"] == offset
    film = ref["expected_counts"].values[0, 0, 0]  # film-only corner
    inner = (slice(10, -10), slice(10, -10))
    for i in range(ANGLES.size):
        moved = ds["expected_counts"].values[i] - film
        truth = ref["expected_counts"].values[i] - film
        back = shift_image(moved, (-sy[i], -sx[i] - offset))
        wrong = shift_image(moved, (sy[i], sx[i] + offset))
        norm = np.linalg.norm(truth[inner])
        # two cubic-spline shifts of a sharp-edged sphere blur it by ~1 %
        assert np.linalg.norm((back - truth)[inner]) < 0.02 * norm
        assert np.linalg.norm((wrong - truth)[inner]) > 0.2 * norm


def test_point_above_axis_moves_to_plus_x(projector):
    """u = x cos(theta) + z sin(theta), axis at +axis_offset_px from the centre."""
    z0, x0, offset = 12.0, -6.0, 3.0
    core = sphere(GRID, (z0, 0.0, x0), 5.0)
    ds = simulate(core, projector, film_thickness_nm=0.0, axis_offset_px=offset, store_expected=True)
    img = ds["expected_counts"].values.sum(axis=1)  # (tilt, x)
    x_nm = ds["x"].values
    for i, theta in enumerate(np.deg2rad(ANGLES)):
        centroid_px = (img[i] * x_nm).sum() / img[i].sum() / ds.attrs["pixel_size_nm"]
        want = (x0 * np.cos(theta) + z0 * np.sin(theta)) / GRID.voxel_size_nm + offset
        assert centroid_px == pytest.approx(want, abs=0.1)


def test_reference_is_mean_of_frames(projector, ball):
    ds = simulate(ball, projector, probe_current_pA=20.0, reference_frames=50, store_expected=True)
    ref = ds["reference"].values
    mean = ds["expected_counts"].values[2]  # the 0 deg image
    assert ds["reference"].attrs["n_frames"] == 50
    resid = ref - mean
    assert abs(resid.mean()) < 4 * np.sqrt(mean.mean() / 50 / mean.size)
    ratio = (resid**2).mean() / (mean.mean() / 50)  # variance of a 50-frame mean = m / 50
    assert ratio == pytest.approx(1.0, abs=0.1)
    # a single frame is 50x noisier
    single = ((ds["counts"].values[2] - mean) ** 2).mean() / mean.mean()
    assert single == pytest.approx(1.0, abs=0.1)


def test_reference_at_tilt_outside_series(ball):
    ds = simulate(ball, None, angles_deg=[-20.0, 20.0], reference_frames=10, reference_tilt_deg=0.0)
    assert ds["reference"].shape == (64, 64)
    assert np.isfinite(ds["reference"].values).all()


def test_binning_keeps_dose_and_total(projector, ball):
    ds = simulate(ball, projector, reference_frames=5, store_expected=True, drift_sd_px=1.0, axis_offset_px=1.0)
    b = bin_tilt_series(ds, 2)
    assert b["counts"].shape == (5, 32, 32)
    assert b["counts"].values.sum() == ds["counts"].values.sum()
    assert b["reference"].values.sum() == pytest.approx(ds["reference"].values.sum(), rel=1e-6)
    assert b.attrs["dose_e_per_nm2"] == ds.attrs["dose_e_per_nm2"]
    assert b.attrs["pixel_size_nm"] == 2 * ds.attrs["pixel_size_nm"]
    assert b.attrs["dwell_time_ns"] == 4 * ds.attrs["dwell_time_ns"]
    assert b.attrs["true_axis_offset_px"] == ds.attrs["true_axis_offset_px"] / 2
    np.testing.assert_allclose(b["true_shift_x"], ds["true_shift_x"] / 2)
    np.testing.assert_allclose(b["x"], ds["x"].values.reshape(-1, 2).mean(axis=1))
    assert b["counts"].attrs["units"] == "counts" and b["x"].attrs["units"] == "nm"
    assert ds["counts"].shape == (5, 64, 64)  # input untouched
    # simulating at bin 2 with the same dose per nm^2 gives the same expected counts
    sim2 = simulate(ball, projector, pixel_size_nm=4.0, bin_factor=2, dwell_time_ns=2000.0, store_expected=True)
    plain = simulate(ball, projector, store_expected=True)
    np.testing.assert_allclose(sim2["expected_counts"], bin_tilt_series(plain, 2)["expected_counts"], rtol=1e-5)
    assert sim2.attrs["dose_e_per_nm2"] == pytest.approx(plain.attrs["dose_e_per_nm2"])
    with pytest.raises(ValueError, match="divide"):
        bin_tilt_series(ds, 3)


def test_dataset_schema_and_netcdf_roundtrip(projector, ball, tmp_path):
    from sinter4d.io import open_dataset_checked, write_dataset_atomic

    ds = simulate(ball, projector, reference_frames=50, drift_sd_px=1.0, axis_offset_px=-1.2,
                  pt_time_s=12.0, temperature_C=370.0)
    for name in ("counts", "tilt_angle", "y", "x", "reference", "true_shift_y", "true_shift_x"):
        assert name in ds.variables
        assert ds[name].attrs.get("units") and ds[name].attrs.get("long_name"), name
    assert ds["counts"].dims == ("tilt", "y", "x")
    assert ds["reference"].dims == ("y", "x")
    assert ds["tilt_angle"].attrs["units"] == "degree"
    for key in ("pixel_size_nm", "dose_e_per_nm2", "probe_current_pA", "dwell_time_ns", "pt_time_s",
                "temperature_C", "true_axis_offset_px"):
        assert key in ds.attrs, key
    assert ds.attrs["pt_time_s"] == 12.0 and ds.attrs["temperature_C"] == 370.0
    np.testing.assert_allclose(ds["x"].values, (np.arange(64) - 31.5) * 2.0)
    path = write_dataset_atomic(ds, tmp_path / "t00.nc")
    back = open_dataset_checked(path, ["counts", "tilt_angle", "reference", "true_shift_x"])
    np.testing.assert_array_equal(back["counts"].values, ds["counts"].values)
    assert back.attrs["true_axis_offset_px"] == -1.2


def test_reproducible_with_seed(projector, ball):
    a = simulate(ball, projector, drift_sd_px=1.0, rng=7)
    b = simulate(ball, projector, drift_sd_px=1.0, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a["counts"], b["counts"])
    np.testing.assert_array_equal(a["true_shift_x"], b["true_shift_x"])


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(probe_current_pA=-2.0), ValueError, "(?s)probe_current_pA.*-2.0"),
        (dict(dwell_time_ns=0.0), ValueError, "dwell_time_ns"),
        (dict(angles_deg=[0.0, 95.0]), ValueError, "95"),
        (dict(angles_deg=[0.0, np.nan]), ValueError, "nan"),
        (dict(film_thickness_nm=-5.0), InputError, "film_thickness_nm"),
        (dict(pixel_size_nm=3.0), InputError, "pixel_size_nm"),
        (dict(bin_factor=3), InputError, "bin_factor"),
        (dict(drift_sd_px=np.inf), ValueError, "drift_sd_px"),
    ],
)
def test_bad_parameters_raise(ball, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        simulate(ball, None, **kwargs)


def test_bad_volumes_raise(ball, projector):
    bad = ball.copy()
    bad[3, 3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        simulate(bad, projector)
    with pytest.raises(InputError, match="shape"):
        simulate(ball[:-1], projector)
    other = ParallelProjector.from_grid(GRID, [0.0, 10.0])
    with pytest.raises(InputError, match="angles"):
        simulate(ball, other)


def test_a_series_drawn_by_blocks_of_rows_is_the_series_of_the_whole_volume(ball, projector):
    """A volume handed over as ``rows(start, stop)`` and projected by blocks (a grid too large to
    hold whole) gives the same counts as the whole array, reference frames included."""
    whole = simulate(ball, projector, rng=3, reference_frames=4, reference_tilt_deg=5.0)
    calls = []

    def rows(start, stop):
        calls.append(stop - start)
        return ball[:, start:stop]

    blocks = simulate(rows, None, rng=3, reference_frames=4, reference_tilt_deg=5.0, max_voxels=24 * 64 * 16)
    assert max(calls) == 16 and len(calls) == 8  # 4 blocks for the series, 4 for the reference at 5 deg
    np.testing.assert_array_equal(blocks["counts"], whole["counts"])
    np.testing.assert_array_equal(blocks["reference"], whole["reference"])
    with pytest.raises(InputError, match="shell must be None"):
        simulate_tilt_series(
            rows, ball, GRID, ScanSettings(angles_deg=ANGLES, pixel_size_nm=2.0, probe_current_pA=2.0, dwell_time_ns=500.0)
        )
