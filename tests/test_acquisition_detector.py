"""The HAADF detector's read-out against the closed forms of a Poisson–Gaussian signal; off = no change."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sinter4d.acquisition import AcquisitionSpec, DetectorSettings, ScanSettings, simulate_tilt_series
from sinter4d.acquisition._detector import detector_readout
from sinter4d.errors import SpecError
from sinter4d.operators import ParallelProjector
from sinter4d.phantom import Grid
from sinter4d.specs import parse

#: A detector with every part switched on and no saturation (uint16 leaves room above).
NOISY = DetectorSettings(enabled=True, efficiency=0.6, gain=3.0, dark_level=1000.0, read_noise_sd=2.0,
                         row_noise_sd=1.5, dtype="uint16")
LAMBDA = 4.0  # expected electrons per pixel
SHAPE = (4, 500, 500)  # 10^6 pixels in 2000 rows


def closed_form(d: DetectorSettings, lam: float) -> tuple[float, float]:
    """Mean and variance of dark + g Poisson(eta lam) + N(0, read²) + N(0, row²), rounded to integers.

    Rounding adds the uniform quantisation variance 1/12 (Sheppard).
    """
    mean = d.dark_level + d.gain * d.efficiency * lam
    var = d.gain**2 * d.efficiency * lam + d.read_noise_sd**2 + d.row_noise_sd**2 + 1 / 12
    return mean, var


def test_flat_field_mean_and_variance_match_the_poisson_gaussian_closed_form():
    values = detector_readout(np.full(SHAPE, LAMBDA), NOISY, np.random.default_rng(1))
    mean, var = closed_form(NOISY, LAMBDA)
    n, rows = values.size, SHAPE[0] * SHAPE[1]
    # s.e. of the mean: pixel noise over n pixels, row offsets over the rows
    se_mean = np.sqrt((var - NOISY.row_noise_sd**2) / n + NOISY.row_noise_sd**2 / rows)
    assert abs(values.mean() - mean) < 5 * se_mean
    # s.e. of the variance: (mu4 - var²)/n for the pixels (Poisson part: g⁴(eta lam + 3 (eta lam)²)), 2 row⁴/rows
    m = NOISY.efficiency * LAMBDA
    shot, gauss = NOISY.gain**2 * m, var - NOISY.gain**2 * m  # the two parts of the variance
    mu4 = NOISY.gain**4 * (m + 3 * m**2) + 6 * shot * gauss + 3 * gauss**2
    se_var = np.sqrt((mu4 - var**2) / n + 2 * NOISY.row_noise_sd**4 / rows)
    assert abs(values.var() - var) < 5 * se_var
    assert np.array_equal(values, np.rint(values))


def test_efficiency_thins_the_poisson_counts():
    """With no read noise and unit gain the detected electrons are Poisson(eta lam): mean = variance."""
    d = DetectorSettings(enabled=True, efficiency=0.25, gain=1.0, dark_level=0.0, read_noise_sd=0.0,
                         row_noise_sd=0.0, dtype="uint16")
    values = detector_readout(np.full(SHAPE, LAMBDA), d, np.random.default_rng(2))
    counts = np.bincount(values.astype(np.int64).ravel(), minlength=12)[:12] / values.size
    np.testing.assert_allclose(counts, stats.poisson.pmf(np.arange(12), 0.25 * LAMBDA), atol=2e-3)


def test_scan_line_noise_is_correlated_along_x_not_y():
    """Neighbours in a row share its offset: corr_x = row² / var, corr_y = 0."""
    values = detector_readout(np.full(SHAPE, LAMBDA), NOISY, np.random.default_rng(3))
    z = values - values.mean()
    corr_x = np.mean(z[..., 1:] * z[..., :-1]) / z.var()
    corr_y = np.mean(z[:, 1:] * z[:, :-1]) / z.var()
    _, var = closed_form(NOISY, LAMBDA)
    assert corr_x == pytest.approx(NOISY.row_noise_sd**2 / var, abs=0.01)
    assert abs(corr_y) < 0.01
    rows = values.mean(axis=-1)  # each row's mean: its offset plus pixel noise over 500 pixels
    assert rows.var() == pytest.approx(NOISY.row_noise_sd**2 + (var - NOISY.row_noise_sd**2) / SHAPE[2], rel=0.1)


def test_reference_frames_each_get_their_own_noise():
    """The mean of N frames: the single frame's mean, variance / N (row offsets averaged too)."""
    frames = 50
    values = detector_readout(np.full((200, 200), LAMBDA), NOISY, np.random.default_rng(4), frames=frames)
    mean, var = closed_form(NOISY, LAMBDA)
    assert values.mean() == pytest.approx(mean, abs=5 * np.sqrt(var / frames / 200))
    assert values.var() == pytest.approx(var / frames, rel=0.05)
    rows = values.mean(axis=1)
    assert rows.var() == pytest.approx((NOISY.row_noise_sd**2 + (var - NOISY.row_noise_sd**2) / 200) / frames, rel=0.35)


def test_saturation_clips_at_the_level_with_the_poisson_tail():
    """Noise-free gain 1000 and a level 5.5 electrons up: a pixel saturates iff it detects >= 6 electrons."""
    d = DetectorSettings(enabled=True, gain=1000.0, dark_level=-30000.0, read_noise_sd=0.0, row_noise_sd=0.0,
                         saturation_level=-30000.0 + 5500.0)
    values = detector_readout(np.full(SHAPE, LAMBDA), d, np.random.default_rng(5))
    assert values.max() == -24500.0
    tail = stats.poisson.sf(5, LAMBDA)
    assert np.mean(values == -24500.0) == pytest.approx(tail, abs=5 * np.sqrt(tail * (1 - tail) / values.size))


@pytest.mark.parametrize("dtype", ["int16", "uint16"])
def test_values_are_integers_within_the_file_type(dtype):
    d = DetectorSettings(enabled=True, dtype=dtype, gain=8000.0, dark_level=0.0 if dtype == "uint16" else -31890.0)
    values = detector_readout(np.full((64, 64), 5.0), d, np.random.default_rng(6))  # 8000 per electron: many saturate
    info = np.iinfo(dtype)
    assert values.min() >= info.min and values.max() == info.max
    assert np.array_equal(values.astype(dtype).astype(np.float64), values)


GRID = Grid((16, 32, 32), 4.0)
ANGLES = (-30.0, -10.0, 10.0, 30.0)


def _simulate(detector=None, rng=7):
    core = np.zeros(GRID.shape, np.float32)
    core[4:12, 8:24, 10:22] = 1.0
    args = dict(angles_deg=ANGLES, pixel_size_nm=4.0, probe_current_pA=2.0, dwell_time_ns=500.0,
                drift_sd_px=0.5, axis_offset_px=1.0, reference_frames=20, reference_tilt_deg=10.0)
    scan = ScanSettings(**args) if detector is None else ScanSettings(**args, detector=detector)
    return simulate_tilt_series(core, None, GRID, scan, film_thickness_nm=30.0, rng=rng,
                                projector=ParallelProjector.from_grid(GRID, ANGLES))


def test_switched_off_the_simulation_is_bit_identical():
    plain = _simulate()
    off = _simulate(DetectorSettings(enabled=False, gain=3.0, efficiency=0.5, read_noise_sd=9.0))
    for name in ("counts", "reference", "true_shift_x", "true_shift_y"):
        assert np.array_equal(plain[name].values, off[name].values), name
    assert plain.attrs == off.attrs
    assert not any(k.startswith("detector_") or k == "dark_level" for k in off.attrs)


def test_switched_on_the_file_records_the_truth_and_an_estimated_dark_level():
    d = DetectorSettings(enabled=True)
    ds = _simulate(d)
    counts = ds["counts"].values
    assert counts.dtype == np.float32 and np.array_equal(counts, np.rint(counts))
    assert ds.attrs["detector_dark_level"] == -31890.0 and ds.attrs["detector_gain"] == 2.5
    assert ds.attrs["detector_fast_scan_axis"] == "x"
    # the film-only pixels mostly detect no electron: the estimate is the dark level within the read noise
    assert abs(ds.attrs["dark_level"] - d.dark_level) < d.read_noise_sd
    assert ds["reference"].values.mean() > d.dark_level


def test_the_spec_carries_the_table_into_the_scan():
    acq = parse(AcquisitionSpec, {"axis_offset_px": 0.0, "detector": {"enabled": True, "gain": 500.0}})
    assert acq.scan_settings().detector == DetectorSettings(enabled=True, gain=500.0)
    assert AcquisitionSpec(axis_offset_px=0.0).scan_settings().detector.enabled is True  # on by default in a spec
    assert ScanSettings(angles_deg=(0.0, 10.0, 20.0), pixel_size_nm=1.0, probe_current_pA=1.0, dwell_time_ns=1.0).detector.enabled is False


@pytest.mark.parametrize(
    ("doc", "match"),
    [({"efficiency": 1.5}, r"a\.toml: detector\.efficiency: "), ({"gain": 0.0}, r"detector\.gain: "),
     ({"dark_level": -40000.0}, "dark_level .* must lie within the int16 range"),
     ({"dark_level": -5.0, "dtype": "uint16"}, "within the uint16 range"),
     ({"saturation_level": -32000.0}, "must exceed dark_level"), ({"dtype": "float32"}, r"detector\.dtype: "),
     ({"read_noise_sd": -1.0}, r"detector\.read_noise_sd: "), ({"shot": 1}, r"detector\.shot: unknown key")],
)
def test_bad_detector_keys_are_one_line(doc, match):
    with pytest.raises(SpecError, match=match):
        parse(AcquisitionSpec, {"detector": doc}, source="a.toml")


def test_a_dark_level_and_gain_leave_the_binary_unchanged():
    """Gain and offset alone (integer gain, no read noise) draw the same electrons: the pipeline's binary is the same.

    The dark level is the estimate the file records (the field is film, not
    vacuum, but at this dose most film pixels detect no electron), and the
    BM3D level is chosen against each series' own reference.
    """
    from sinter4d.pipeline import PipelineSpec, process_tilt_series

    grid = Grid((24, 48, 48), 4.0)
    z, y, x = grid.coords_nm()
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    core = (((xx - 22) ** 2 + yy**2 + zz**2 <= 24**2) | ((xx + 22) ** 2 + yy**2 + zz**2 <= 24**2)).astype(np.float32)
    angles = tuple(np.arange(-40.0, 41.0, 10.0))
    spec = PipelineSpec(method="sirt", iterations=20, slab_thickness_nm=96.0, bm3d_profile="lc", bm3d_stages="hard")
    binaries = []
    for detector in (DetectorSettings(enabled=False), DetectorSettings(enabled=True, gain=7.0, read_noise_sd=0.0, row_noise_sd=0.0)):
        scan = ScanSettings(angles_deg=angles, pixel_size_nm=4.0, probe_current_pA=2.0, dwell_time_ns=2000.0,
                            drift_sd_px=0.5, axis_offset_px=1.0, reference_frames=50, detector=detector)
        ds = simulate_tilt_series(core, None, grid, scan, film_thickness_nm=30.0, rng=11)
        binaries.append(process_tilt_series(ds, spec, n_jobs=1)["binary"].values > 0)
    assert ds.attrs["dark_level"] == detector.dark_level
    a, b = binaries
    assert 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b)) >= 0.99
