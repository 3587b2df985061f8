"""compare_to_truth: the validation.nc Dataset of measured metrics against a known truth."""

import numpy as np
import pytest
import xarray as xr

from sinter4d import schema
from sinter4d.errors import InputError
from sinter4d.measurement import measure_volumes
from sinter4d.validation import compare_to_truth, metrics_on_true_pairs, truth_at_metrics

SHIFT = np.array([3.0, -5.0, 8.0])  # nm: the truth lies here against the reconstruction


@pytest.fixture(scope="module")
def metrics():
    z, y, x = np.mgrid[:40, :40, :90]
    ball = lambda cx: (z - 20) ** 2 + (y - 20) ** 2 + (x - cx) ** 2 <= 15**2  # noqa: E731
    b = (ball(32) | ball(58)).astype(np.uint8)
    c = np.arange(90) - 44.5
    return measure_volumes([b, b, b], c[:40], c[:40], c, [0, 5, 9], [370, 370, 360], voxel_size_nm=1.0,
                           core_radius_nm=15)


def _truth(metrics, errors):
    """A truth of one pair (plus a second true pair never measured) made from the measurement."""
    data = {name: (("time", "pair"), np.column_stack([metrics[name].values[:, 0] - errors.get(name, 0.0),
                                                     np.ones(3)]))
            for name in schema.PAIR_METRICS}
    centres = metrics.pair_centre_nm.values[:, 0] + SHIFT  # (time, end, axis)
    far = np.full((3, 1, 3), 400.0)
    data["pair_particles"] = (("pair", "end"), np.array([[0, 1], [1, 2]]))
    data["centre_nm"] = (("time", "particle", "axis"), np.concatenate([centres, far], axis=1))
    return xr.Dataset(data, coords={"time": metrics.time.values, "pair": ["P1", "P2"]})


def test_errors_counts_and_registration(metrics):
    errors = {"neck_radius_nm": 1.5, "distance_nm": -0.5}
    val = compare_to_truth(metrics, _truth(metrics, errors), dice=[0.9, 0.8, 1.0])
    np.testing.assert_allclose(val.registration_offset_nm.values, np.tile(SHIFT, (3, 1)), atol=1e-9)
    assert val.measured_pair.values.tolist() == [["P1", ""]] * 3
    assert val.found.values.tolist() == [1, 1, 1] and val.missed.values.tolist() == [1, 1, 1]
    assert (val.attrs["pairs_found"], val.attrs["pairs_missed"], val.attrs["pairs_spurious"]) == (1, 1, 0)
    for name in schema.PAIR_METRICS:
        want = errors.get(name, 0.0)
        np.testing.assert_allclose(val[name].values[:, 0], want, atol=1e-9)
        assert np.isnan(val[name].values[:, 1]).all()
        assert float(val[f"{name}_median_abs_error"]) == pytest.approx(abs(want), abs=1e-9)
    assert val.attrs["median_abs_error_neck_radius_nm"] == pytest.approx(1.5)
    assert val.attrs["median_dice"] == pytest.approx(0.9)
    for name in val.variables:  # as the schema declares them (the time coordinates come from the metrics)
        if name not in ("pt_time_s", "temperature_C"):
            assert val[name].attrs == schema.attrs(name, schema.VALIDATION)
    on_true = metrics_on_true_pairs(metrics, val)
    np.testing.assert_array_equal(on_true.neck_radius_nm.values[:, 0], metrics.neck_radius_nm.values[:, 0])
    assert np.isnan(on_true.neck_radius_nm.values[:, 1]).all()


def test_missing_variables_and_times_are_named(metrics):
    truth = _truth(metrics, {})
    with pytest.raises(InputError, match="truth lacks variable.*centre_nm"):
        compare_to_truth(metrics, truth.drop_vars("centre_nm"))
    with pytest.raises(InputError, match="3 times but the truth has 2"):
        compare_to_truth(metrics, truth.isel(time=slice(0, 2)))
    with pytest.raises(InputError, match="dice has 2 values"):
        compare_to_truth(metrics, truth, dice=[1.0, 1.0])


def test_calibrated_metrics_get_their_errors_beside_the_measured_ones(metrics):
    errors = {"neck_radius_nm": 4.0, "neck_ratio": 0.05}
    truth = _truth(metrics, errors)
    calibrated = metrics.copy()
    table = schema.CALIBRATED_METRICS
    for name, of in schema.CALIBRATED_OF.items():  # calibrated = true + 0.5 (nm or ratio)
        values = metrics[of].values.copy()
        values[:, 0] = truth[of].values[:, 0] + 0.5
        calibrated[name] = schema.variable(name, values, table=table)
    val = compare_to_truth(calibrated, truth)
    for name in schema.CALIBRATED_OF:
        np.testing.assert_allclose(val[name].values[:, 0], 0.5, atol=1e-9)
        assert val.attrs[f"median_abs_error_{name}"] == pytest.approx(0.5)
        assert val[name].attrs == schema.attrs(name, schema.VALIDATION)
    assert val.attrs["median_abs_error_neck_radius_nm"] == pytest.approx(4.0)  # before correction, unchanged
    assert "neck_radius_calibrated_nm" not in compare_to_truth(metrics, truth)


def test_truth_at_metrics_takes_the_steps_measured_in_their_order():
    truth = xr.Dataset({"neck_radius_nm": (("time", "pair"), np.arange(12.0).reshape(4, 3))})
    metrics = xr.Dataset(coords={"time": [0, 2, 3]})  # a run that imaged series 0, 2 and 3 of 4
    picked = truth_at_metrics(truth, metrics)
    np.testing.assert_array_equal(picked["neck_radius_nm"].values[:, 0], [0.0, 6.0, 9.0])
    with pytest.raises(InputError, match="time step 5 is not in the truth"):
        truth_at_metrics(truth, xr.Dataset(coords={"time": [0, 4]}))
