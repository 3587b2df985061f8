"""The neck's error and fill along and across the tilt axis, in the validation Dataset."""

import numpy as np
import pytest
import xarray as xr

from sinter4d.measurement import measure_volumes, neck_fill_nm2
from sinter4d.validation import compare_to_truth


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
