"""Finite-difference gradient: adjointness, exact values, bounds, input checks."""

import numpy as np
import pytest

from sinter4d.operators import dot_test
from sinter4d.errors import InputError
from sinter4d.operators.gradient import GRAD_NORM_SQ_3D, Gradient


@pytest.mark.parametrize("shape", [(7, 8, 9), (1, 16, 12), (5, 1, 3), (4, 6, 1)])
@pytest.mark.parametrize("voxel_size", [1.0, (1.0, 2.0, 0.5)])
def test_dot_test(shape, voxel_size):
    assert dot_test(Gradient(shape, voxel_size=voxel_size), seed=3) < 1e-5


def test_values_and_boundaries():
    x = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32)
    g = Gradient(x.shape).direct(x)
    np.testing.assert_allclose(g[0, :-1], np.diff(x, axis=0), atol=1e-6)
    np.testing.assert_allclose(g[1, :, :-1], np.diff(x, axis=1), atol=1e-6)
    np.testing.assert_allclose(g[2, :, :, :-1], np.diff(x, axis=2), atol=1e-6)
    assert not g[0, -1].any() and not g[1, :, -1].any() and not g[2, :, :, -1].any()
    assert not Gradient((3, 3, 3)).direct(np.full((3, 3, 3), 2.5, np.float32)).any()
    # spacing divides the differences
    g2 = Gradient(x.shape, voxel_size=(2.0, 1.0, 4.0)).direct(x)
    np.testing.assert_allclose(g2[0], g[0] / 2, atol=1e-6)
    np.testing.assert_allclose(g2[2], g[2] / 4, atol=1e-6)


def test_norm_within_bound():
    op = Gradient((6, 7, 8))
    assert op.norm(n_iter=60) <= op.norm_bound() + 1e-6
    assert op.norm(n_iter=60) > 0.9 * op.norm_bound()
    assert Gradient((2, 2, 2)).norm_bound() ** 2 == pytest.approx(GRAD_NORM_SQ_3D)


def test_bad_shape_and_spacing():
    with pytest.raises(InputError, match="shape"):
        Gradient((3, 4))
    with pytest.raises(InputError, match="voxel_size"):
        Gradient((3, 4, 5), voxel_size=0.0)
    with pytest.raises(InputError, match="shape"):
        Gradient((3, 4, 5)).direct(np.zeros((3, 4, 6), np.float32))
    with pytest.raises(InputError, match="shape"):
        Gradient((3, 4, 5)).adjoint(np.zeros((3, 3, 4, 6), np.float32))
    with pytest.raises(ValueError, match="out must be"):
        Gradient((3, 4, 5)).direct(np.zeros((3, 4, 5), np.float32), out=np.zeros((3, 3, 4, 5)))
