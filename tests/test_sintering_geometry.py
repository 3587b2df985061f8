"""Pair and cluster geometry with volume conserved, against closed forms."""

import math

import numpy as np
import pytest
from scipy import integrate

from sinter4d.errors import InputError

from sinter4d.sintering import (
    conserving_radius_nm,
    core_volume_nm3,
    cylinder_neck_distance_ratio,
    fillet_neck,
    fillet_neck_distance_ratio,
    fillet_volume_nm3,
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


def _fillet_fill_by_quadrature(ri, rj, d, x):
    """Volume between the fillet's profile and the spheres' sections, by numerical integration."""
    rho, t0, ta, tb = (float(v) for v in fillet_neck(ri, rj, d, x))

    def section(t):
        fillet = x + rho - math.sqrt(max(rho**2 - (t - t0) ** 2, 0.0))
        sphere = max(ri**2 - t**2, rj**2 - (d - t) ** 2, 0.0)
        return math.pi * (fillet**2 - sphere)

    return integrate.quad(section, ta, tb, limit=200, points=[t0])[0]


@pytest.mark.parametrize(
    "ri, rj, d, x",
    [(75.0, 75.0, 150.0, 15.0), (75.0, 75.0, 140.0, 40.0), (70.0, 80.0, 155.0, 25.0), (60.0, 75.0, 147.0, 20.0), (50.0, 50.0, 112.0, 15.0)],
)
def test_fillet_volume_closed_form_against_quadrature(ri, rj, d, x):
    # touching, overlapping, unequal, unequal across a gap, equal across a 12 nm gap
    assert float(fillet_volume_nm3(ri, rj, d, x)) == pytest.approx(_fillet_fill_by_quadrature(ri, rj, d, x), rel=1e-7)


@pytest.mark.parametrize("ri, rj, d, x", [(75.0, 75.0, 150.0, 15.0), (70.0, 80.0, 148.0, 30.0), (60.0, 75.0, 147.0, 20.0)])
def test_fillet_meets_both_spheres_tangentially(ri, rj, d, x):
    rho, t0, ta, tb = (float(v) for v in fillet_neck(ri, rj, d, x))
    tube = np.array([t0, x + rho])  # the tube's centre in the (axial, radial) half-plane
    for centre, radius, t in ((np.array([0.0, 0.0]), ri, ta), (np.array([d, 0.0]), rj, tb)):
        # the meeting point lies on the sphere and on the tube ...
        r = x + rho - math.sqrt(rho**2 - (t - t0) ** 2)
        point = np.array([t, r])
        assert np.linalg.norm(point - centre) == pytest.approx(radius, rel=1e-12)
        assert np.linalg.norm(point - tube) == pytest.approx(rho, rel=1e-10)
        # ... and the outward normals agree there: the sphere's points away from its centre, the fillet's toward the tube
        n_sphere = (point - centre) / radius
        n_fillet = (tube - point) / rho
        assert n_sphere @ n_fillet == pytest.approx(1.0, abs=1e-12)
    # the waist is x, at the neck plane
    t = np.linspace(ta, tb, 2001)
    profile = x + rho - np.sqrt(rho**2 - (t - t0) ** 2)
    assert profile.min() >= x - 1e-12 and profile.min() == pytest.approx(x, abs=1e-5) and ta < t0 < tb


def test_fillet_classical_radii_and_limits():
    a = 75.0
    x = np.array([1.0, 3.0, 7.5])
    # touching spheres: rho = x^2 / 2(a - x), Kuczynski's x^2 / 2a for small necks
    rho = fillet_neck(a, a, 2 * a, x).rho_nm
    np.testing.assert_allclose(rho, x**2 / (2 * (a - x)), rtol=1e-12)
    np.testing.assert_allclose(rho, x**2 / (2 * a), rtol=1.2 * float(x.max() / a))
    # on the volume-conserving path: Coble's rho = x^2 / 4a and d/2a ~ 1 - (x/a)^2 / 4
    u = np.array([0.01, 0.02])
    delta = fillet_neck_distance_ratio(u)
    np.testing.assert_allclose(fillet_neck(1.0, 1.0, 2 * delta, u).rho_nm, u**2 / 4, rtol=0.03)
    np.testing.assert_allclose((1 - delta) / u**2, 0.25, rtol=0.01)
    # no fillet inside the lens; none tangent to both once the neck is as wide as a sphere
    assert float(fillet_neck(a, a, 140.0, 20.0).rho_nm) == 0.0 and float(fillet_volume_nm3(a, a, 140.0, 20.0)) == 0.0
    assert np.isnan(fillet_neck(a, 60.0, 130.0, 60.0).rho_nm)


@pytest.mark.parametrize("u", [0.1, 0.3, 0.5, 0.6])
def test_fillet_neck_conserves_volume(u):
    delta = float(fillet_neck_distance_ratio(u))  # d/2a0 with a0 = 1
    d = 2 * delta
    rho = (delta**2 - 1 + u**2) / (2 * (1 - u))  # equal spheres: the tube radius in closed form
    assert float(fillet_neck(1.0, 1.0, d, u).rho_nm) == pytest.approx(rho, rel=1e-10)
    assert _fillet_fill_by_quadrature(1.0, 1.0, d, u) == pytest.approx(2 * cap(1.0, 1 - delta), rel=1e-6)
    # a concave neck of waist x holds more than the cylinder's crevice: the pair approaches further
    assert float(truncated_sphere_pair(u)[0]) < delta < float(cylinder_neck_distance_ratio(u))


def test_fillet_rejects_bad_input():
    with pytest.raises(InputError, match="neck radius"):
        fillet_neck(75.0, 75.0, 150.0, -1.0)
    with pytest.raises(InputError, match="positive"):
        fillet_neck(75.0, 0.0, 150.0, 10.0)
    with pytest.raises(InputError, match="neck_ratio"):
        fillet_neck_distance_ratio(1.0)


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
