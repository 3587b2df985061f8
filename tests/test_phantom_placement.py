"""Core placement helpers: drawn sizes and shapes, and the centring of a built cluster."""

import numpy as np
import pytest

from sinter4d.phantom._geometry import inverse_quadric_matrices, support_nm
from sinter4d.phantom._placement import EX, EY, EZ, centre_cluster, draw_cores


def test_draw_cores_follows_the_log_normal_and_the_ranges():
    rng = np.random.default_rng(0)
    radius, aspect, axis = draw_cores(rng, 20000, 150.0, 0.1, (0.85, 1.15))
    d = 2 * radius
    # arithmetic mean of a log-normal with median m exp(-s^2/2) is m (clipping at 3 sigma is negligible)
    assert d.mean() == pytest.approx(150.0, rel=0.005)
    assert np.log(d).std() == pytest.approx(0.1, rel=0.02)
    # clipped at +-3 sigma: 20000 draws reach both ends (about 27 beyond each)
    assert d.min() == pytest.approx(150.0 * np.exp(-0.3 - 0.005), rel=1e-12)
    assert d.max() == pytest.approx(150.0 * np.exp(0.3 - 0.005), rel=1e-12)
    assert aspect.min() >= 0.85 and aspect.max() <= 1.15
    np.testing.assert_allclose(np.linalg.norm(axis, axis=1), 1.0)
    # axes uniform on the sphere: each component's square averages to 1/3
    np.testing.assert_allclose((axis**2).mean(axis=0), 1 / 3, atol=0.01)
    r0, _, _ = draw_cores(np.random.default_rng(1), 5, 100.0, 0.0, (1.0, 1.0))
    np.testing.assert_allclose(r0, 50.0)


def test_centre_cluster_centres_the_extent_and_the_height():
    radius = np.array([10.0, 20.0, 15.0])
    aspect = np.ones(3)
    axis = np.tile(EZ, (3, 1))
    qinv = inverse_quadric_matrices(radius, aspect, axis)
    half_height = support_nm(qinv, np.broadcast_to(EZ, (3, 3)))
    np.testing.assert_allclose(half_height, radius)  # spheres
    centre = np.array([[10.0, 0.0, 0.0], [20.0, 5.0, 30.0], [15.0, -40.0, 7.0]])  # resting on z = 0
    shifted, film_top = centre_cluster(centre, qinv, half_height)
    ext_y = support_nm(qinv, np.broadcast_to(EY, (3, 3)))
    ext_x = support_nm(qinv, np.broadcast_to(EX, (3, 3)))
    assert np.min(shifted[:, 1] - ext_y) == pytest.approx(-np.max(shifted[:, 1] + ext_y))
    assert np.min(shifted[:, 2] - ext_x) == pytest.approx(-np.max(shifted[:, 2] + ext_x))
    top = np.max(shifted[:, 0] + half_height)
    assert film_top == pytest.approx(-top)  # film top and highest top symmetric about z = 0
    assert film_top == pytest.approx(-20.0)  # the highest top is 40 nm above the film
    np.testing.assert_allclose(shifted[:, 0] - half_height, film_top)  # every core still on the film
