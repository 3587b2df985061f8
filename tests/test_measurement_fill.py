"""The neck fill of a blurred reconstruction: closed-form law and correction."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from sinter4d.measurement import correct_neck_fill, measure_pairs, neck_fill_nm2

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
