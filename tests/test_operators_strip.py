"""The strip-area system matrix: mass conservation and the aligned case."""

import numpy as np
import pytest

from sinter4d.operators._strip import strip_system_matrix


@pytest.mark.parametrize("theta", [0.0, 17.0, 45.0, -63.0])
def test_each_voxel_adds_its_area_over_the_pixel_width(theta):
    h, d, nz, nx, n_det = 2.0, 1.5, 6, 8, 40
    mat = strip_system_matrix(nz, nx, voxel_size_nm=h, angles_deg=np.array([theta]), n_det=n_det, det_pixel_nm=d)
    assert mat.shape == (n_det, nz * nx) and mat.dtype == np.float32
    # the detector (60 nm) holds every footprint: each column sums to h^2 / d
    np.testing.assert_allclose(np.asarray(mat.sum(axis=0)).ravel(), h * h / d, rtol=1e-5)
    assert mat.has_sorted_indices


def test_aligned_grid_at_zero_degrees_is_a_column_sum():
    # d = h, no offset, n_det = nx: ray i sees exactly column i of the slice, h nm per voxel
    mat = strip_system_matrix(3, 5, voxel_size_nm=2.0, angles_deg=np.array([0.0]), n_det=5, det_pixel_nm=2.0)
    expect = np.zeros((5, 15))
    for k in range(3):
        for j in range(5):
            expect[j, k * 5 + j] = 2.0
    np.testing.assert_allclose(mat.toarray(), expect, atol=1e-6)
    # on a detector of 6 pixels the voxel centres fall on pixel edges: each voxel splits between two rays
    half = strip_system_matrix(3, 5, voxel_size_nm=2.0, angles_deg=np.array([0.0]), n_det=6, det_pixel_nm=2.0)
    np.testing.assert_allclose(half.toarray().sum(axis=0), 2.0, rtol=1e-6)
    assert np.all((half.toarray() > 0).sum(axis=0) == 2)
    np.testing.assert_allclose(half.toarray()[half.toarray() > 0], 1.0, rtol=1e-6)
