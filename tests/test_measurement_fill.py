"""The neck fill of a blurred reconstruction: closed-form law, correction, calibration."""

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage as ndi

from sinter4d.experiments.measure import compare_to_truth, measure_volumes, pair_axis_angle_deg
from sinter4d.measurement import correct_neck_fill, fit_neck_fill, measure_pairs, neck_fill_nm2

R = 30.0  # sphere radius, voxels of 1 nm


def _blurred_pair(neck_nm: float, sigma_nm: float) -> np.ndarray:
    """Labels of two spheres of radius R overlapping in a neck of radius ``neck_nm``, blurred, cut at half height."""
    d = 2.0 * np.sqrt(R * R - neck_nm * neck_nm)
    zz, yy, xx = np.ogrid[-36:37, -36:37, -68:69]
    body = ((xx + d / 2) ** 2 + yy**2 + zz**2 <= R * R) | ((xx - d / 2) ** 2 + yy**2 + zz**2 <= R * R)
    inside = ndi.gaussian_filter(body.astype(np.float32), sigma_nm) > 0.5
    return np.where(inside, np.where(xx < 0, 1, 2), 0)


@pytest.mark.parametrize("neck_nm", [0.0, 8.0, 12.0])
@pytest.mark.parametrize("sigma_nm", [1.5, 2.5, 3.5])
def test_blurred_neck_reads_as_the_closed_form_law(neck_nm, sigma_nm):
    read = measure_pairs(_blurred_pair(neck_nm, sigma_nm), np.array([[1, 2]]), voxel_size_nm=1.0)["neck_radius_nm"][0]
    law = np.sqrt(neck_nm**2 + neck_fill_nm2(R, sigma_nm, neck_nm))
    # the waist is read in whole pixels of width: within 3/4 of a voxel of the law
    assert read == pytest.approx(law, abs=0.75)
    # and the fill is real: touching spheres read a neck of several voxels
    assert read - neck_nm > 0.5 * sigma_nm


@pytest.mark.parametrize("neck_nm", [8.0, 12.0])
@pytest.mark.parametrize("sigma_nm", [2.5, 3.5])
def test_correction_recovers_the_true_neck(neck_nm, sigma_nm):
    read = measure_pairs(_blurred_pair(neck_nm, sigma_nm), np.array([[1, 2]]), voxel_size_nm=1.0)["neck_radius_nm"][0]
    corrected = correct_neck_fill(read, neck_fill_nm2(R, sigma_nm, neck_nm))
    # the correction at least halves the error, to within the reading's pixel steps
    assert abs(corrected - neck_nm) <= 0.5 * abs(read - neck_nm)
    assert corrected == pytest.approx(neck_nm, abs=1.5)


def test_law_scales_with_radius_and_resolution():
    assert neck_fill_nm2(75.0, 4.0) == pytest.approx(2 * 0.6744897501960817 * 75.0 * 4.0)
    assert neck_fill_nm2(75.0, 4.0, 45.0) == pytest.approx(neck_fill_nm2(75.0, 4.0) * 60.0 / 75.0)
    assert neck_fill_nm2(75.0, 0.0) == 0.0
    for bad in ((0.0, 1.0, 0.0), (75.0, -1.0, 0.0), (75.0, 1.0, 80.0), (np.nan, 1.0, 0.0)):
        with pytest.raises(ValueError):
            neck_fill_nm2(*bad)


def test_correction_inverts_the_fill_and_keeps_zero_and_nan():
    x = np.array([0.0, 5.0, 20.0, 35.0, np.nan])
    read = np.sqrt(x**2 + 300.0)
    read[0] = 0.0  # a pair read apart stays apart
    out = correct_neck_fill(read, 300.0)
    np.testing.assert_allclose(out, [0.0, 5.0, 20.0, 35.0, np.nan])
    assert correct_neck_fill(10.0, 300.0) == 0.0  # narrower than the fill
    np.testing.assert_array_equal(correct_neck_fill(x, 0.0), x)
    with pytest.raises(ValueError, match="fill_nm2"):
        correct_neck_fill(x, -1.0)


def test_fit_recovers_a_known_fill_from_noisy_necks():
    rng = np.random.default_rng(4)
    x = rng.uniform(10.0, 40.0, 200)
    read = np.sqrt(x**2 + 450.0) + rng.normal(0.0, 0.5, x.size)
    read[:20] = 0.0  # necks not seen: left out
    x[20:30] = np.nan
    k, n = fit_neck_fill(read, x)
    assert n == 170
    assert k == pytest.approx(450.0, rel=0.1)
    assert fit_neck_fill(np.zeros(3), np.ones(3)) == (pytest.approx(np.nan, nan_ok=True), 0)
    # necks read narrower than they are give a negative fill
    assert fit_neck_fill(np.array([8.0, 9.0, 10.0]), np.array([10.0, 10.0, 10.0]))[0] == pytest.approx(-19.0)
    with pytest.raises(ValueError, match="shape"):
        fit_neck_fill(np.ones(3), np.ones(4))


def _two_ball_series(y_axis: bool = False):
    """Two balls of radius 15 voxels, 26 apart along x (or along the tilt axis y), at two times."""
    z, y, x = np.mgrid[:40, :80, :80]
    if y_axis:
        y, x = x, y
    ball = lambda cx: (z - 20) ** 2 + (y - 40) ** 2 + (x - cx) ** 2 <= 15**2  # noqa: E731
    b = (ball(27) | ball(53)).astype(np.uint8)
    c = np.arange(80) - 39.5
    return [b, b], c[:40], c, c


def _truth_of(m, neck_nm):
    """A truth Dataset for measured metrics ``m`` (one pair) with the given true neck radii."""
    centres = m.pair_centre_nm.values[:, 0]  # (time, end, axis)
    data = {name: (("time", "pair"), m[name].values.copy()) for name in m.data_vars
            if m[name].dims == ("time", "pair") and name != "status"}
    data["pair_particles"] = (("pair", "end"), np.array([[0, 1]]))
    data["centre_nm"] = (("time", "particle", "axis"), centres)
    truth = xr.Dataset(data, coords={"time": m.time.values, "pair": ["P1"]})
    truth["neck_radius_nm"].values[:, 0] = neck_nm
    return truth


@pytest.mark.parametrize("y_axis", [False, True])
def test_validation_reports_neck_error_and_fill_by_orientation(y_axis):
    binaries, z, y, x = _two_ball_series(y_axis)
    m = measure_volumes(binaries, z, y, x, [0, 5], [370, 370], voxel_size_nm=1.0, core_radius_nm=15)
    assert np.all(m.status.values == "ok")
    np.testing.assert_allclose(m.tilt_axis_angle_deg, 0.0 if y_axis else 90.0, atol=1e-6)
    read = m.neck_radius_nm.values[:, 0]
    assert np.all(read > 6.0)
    true_neck = np.sqrt(read**2 - np.array([20.0, 30.0]))
    val = compare_to_truth(m, _truth_of(m, true_neck))
    assert list(val.orientation.values) == ["along_tilt_axis", "across_tilt_axis", "all"]
    hit, miss = (0, 1) if y_axis else (1, 0)
    np.testing.assert_allclose(val.tilt_axis_angle_deg, 0.0 if y_axis else 90.0, atol=1e-6)
    assert float(val.neck_fill_nm2[hit]) == pytest.approx(25.0) and float(val.neck_fill_nm2[2]) == pytest.approx(25.0)
    assert np.isnan(val.neck_fill_nm2[miss]) and int(val.neck_fill_necks[hit]) == 2 and int(val.neck_fill_necks[miss]) == 0
    assert float(val.neck_radius_nm_median_error[hit]) == pytest.approx(np.median(read - true_neck))
    # the blur that gives K = 25 nm^2 at r_p (closed form), back from the fill
    r_p = np.median(m.particle_radius_nm.values)
    assert float(val.neck_fill_resolution_nm[2]) == pytest.approx(25.0 / neck_fill_nm2(r_p, 1.0), rel=1e-6)
    assert val.attrs[f"median_error_neck_radius_nm_{val.orientation.values[hit]}"] == pytest.approx(
        float(val.neck_radius_nm_median_error[hit]))


def test_pair_axis_angle():
    a = np.zeros((4, 3))
    b = np.array([[0.0, 5.0, 0.0], [0.0, 0.0, 5.0], [5.0, 0.0, 0.0], [0.0, -3.0, 3.0]])
    np.testing.assert_allclose(pair_axis_angle_deg(a, b), [0.0, 90.0, 90.0, 45.0])
    assert np.isnan(pair_axis_angle_deg(a[0], a[0])) and np.isnan(pair_axis_angle_deg(a[0], np.full(3, np.nan)))


def test_reading_curve_recovers_a_known_line():
    from sinter4d.measurement import neck_reading_curve

    rng = np.random.default_rng(3)
    true = rng.uniform(12.0, 32.0, 400)
    measured = 25.0 + 0.85 * (true - 25.0) - 0.7 + 0.5 * rng.standard_normal(true.size)
    measured[::50] = np.nan
    gain, bias = neck_reading_curve(true, measured)
    assert gain == pytest.approx(0.85, abs=0.02)
    assert bias == pytest.approx(-0.7, abs=0.06)
    gain30, bias30 = neck_reading_curve(true, measured, reference_nm=30.0)
    assert gain30 == pytest.approx(gain) and bias30 == pytest.approx(bias + (gain - 1.0) * 5.0)
    with pytest.raises(ValueError, match="three points"):
        neck_reading_curve([20.0, 20.0, 20.0], [21.0, 22.0, 20.0])
