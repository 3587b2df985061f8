"""Pair and cluster geometry with volume conserved, against closed forms."""

import math

import numpy as np
import pytest
from scipy import integrate

from sinter4d.sintering import (
    conserving_radius_nm,
    core_volume_nm3,
    cylinder_neck_distance_ratio,
    truncated_sphere_from_xi,
    truncated_sphere_pair,
)


def cap(r, c):
    return math.pi * c**2 * (3 * r - c) / 3


def test_truncated_sphere_conserves_volume():
    xi = np.linspace(0.05, 1.0, 40)
    neck, dist, radius = truncated_sphere_from_xi(xi)
    for x, d, r in zip(neck, dist, radius, strict=False):
        h = d  # centre-to-plane distance in units of a0 (d/2a0 * 2a0 / 2)
        vol = 2 * (4 / 3 * math.pi * r**3 - cap(r, r - h))
        assert vol == pytest.approx(2 * 4 / 3 * math.pi, rel=1e-6)
        assert x == pytest.approx(math.sqrt(r**2 - h**2), rel=1e-12)


def test_truncated_sphere_known_value_and_inverse():
    assert round(float(truncated_sphere_pair(0.31)[0]), 3) == 0.951
    xi = np.linspace(0.1, 0.999, 50)
    neck, dist, _ = truncated_sphere_from_xi(xi)
    np.testing.assert_allclose(truncated_sphere_pair(neck)[0], dist, atol=1e-12)


def test_small_neck_limits():
    u = np.array([0.01, 0.03, 0.05, 0.1])
    # truncated spheres: d/2a0 ~ 1 - u^2/2; cylindrical neck: Coble's 1 - u^2/4
    assert np.all(np.abs(truncated_sphere_pair(u)[0] - (1 - u**2 / 2)) < 0.2 * u**4)
    assert np.all(np.abs(cylinder_neck_distance_ratio(u) - (1 - u**2 / 4)) < 0.2 * u**4)


@pytest.mark.parametrize("u", [0.1, 0.3, 0.5, 0.8])
def test_cylinder_neck_conserves_volume(u):
    delta = float(cylinder_neck_distance_ratio(u))  # d/2a0 with a0 = 1
    d = 2 * delta
    r_lens = math.sqrt(1 - delta**2)
    fill, _ = integrate.quad(lambda rho: 2 * math.pi * rho * (d - 2 * math.sqrt(1 - rho**2)), r_lens, u)
    assert fill == pytest.approx(2 * cap(1.0, 1 - delta), rel=1e-6)
    assert delta > float(truncated_sphere_pair(u)[0])  # the cylinder shrinks the pair less


def test_conserving_radius_pair_matches_closed_form():
    xi = np.array([0.6, 0.8, 0.95, 0.999])
    _, dist, radius = truncated_sphere_from_xi(xi)
    a0 = 75.0
    for d, r in zip(dist, radius, strict=False):
        centre = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 2 * d * a0]])
        got = conserving_radius_nm(centre, np.array([a0, a0]), [[0, 1]])
        np.testing.assert_allclose(got, r * a0, rtol=1e-9)


def test_conserving_radius_many_body_volume():
    rng = np.random.default_rng(3)
    for _ in range(10):
        a0 = rng.uniform(60, 90, 4)
        centre = np.zeros((4, 3))
        for k in range(1, 4):  # a chain with random bends, overlapping by 2-15 nm
            direction = rng.normal(size=3)
            direction /= np.linalg.norm(direction)
            centre[k] = centre[k - 1] + direction * (a0[k - 1] + a0[k] - rng.uniform(2, 15))
        contact = [[0, 1], [1, 2], [2, 3]]
        r = conserving_radius_nm(centre, a0, contact)
        np.testing.assert_allclose(core_volume_nm3(centre, r, contact), 4 / 3 * math.pi * a0**3, rtol=1e-9)
        assert np.all(r >= a0)
