"""How a pipeline reads necks: the fill K and the reading curve recovered from known lines."""

import numpy as np
import pytest

from sinter4d.schema import NECK_READING_REFERENCE_NM
from sinter4d.validation import fit_neck_fill, neck_reading_curve, reading_curve_attrs


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


def test_reading_curve_recovers_a_known_line():
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


def test_reading_curve_attrs_keep_contacts_with_resolved_necks():
    import xarray as xr

    true = np.array([[5.0, 12.0, 20.0, 30.0, 40.0]])
    gap = np.array([[0.0, 0.0, 0.0, 8.0, 0.0]])  # 5 nm neck and 8 nm gap are left out
    truth = xr.Dataset({"neck_radius_nm": (("time", "pair"), true), "surface_gap_nm": (("time", "pair"), gap)})
    attrs = reading_curve_attrs(25.0 + 0.5 * (true - 25.0) + 2.0, truth)
    assert attrs["neck_reading_points"] == 3
    assert attrs["neck_reading_gain"] == pytest.approx(0.5) and attrs["neck_reading_bias_nm"] == pytest.approx(2.0)
    assert attrs["neck_reading_reference_nm"] == NECK_READING_REFERENCE_NM
    assert np.isnan(reading_curve_attrs(true[:, :2], truth.isel(pair=slice(0, 2)))["neck_reading_gain"])
