"""pair_truth and pair_silhouette_waist_nm on analytic pairs."""

import numpy as np
import pytest

from sinter4d.phantom import Cluster, make_cluster, pair_silhouette_waist_nm, pair_truth

P = np.array([[0, 1]])


def _pair(d, *, radius=(75.0, 75.0), aspect=(1.0, 1.0), axis=((0, 0, 1), (0, 0, 1)), neck=0.0, tilt_deg=0.0) -> Cluster:
    """Two cores along x, the second raised out of the x-y plane by ``tilt_deg``."""
    t = np.deg2rad(tilt_deg)
    centre = np.array([[0.0, 0.0, 0.0], [d * np.sin(t), 0.0, d * np.cos(t)]])
    radius = np.asarray(radius, dtype=float)
    return Cluster(
        centre_nm=centre,
        radius_nm=radius,
        initial_radius_nm=radius.copy(),
        aspect_ratio=np.asarray(aspect, dtype=float),
        axis=np.asarray(axis, dtype=float),
        contact=np.array([[0, 1]]),
        neck_radius_nm=np.array([neck]),
        shell_centre_nm=np.zeros((0, 3)),
        shell_radius_nm=np.zeros(0),
        shell_owner=np.zeros(0, dtype=int),
        film_top_nm=-100.0,
        film_thickness_nm=30.0,
    )


@pytest.mark.parametrize("neck", ["joint", "section"])
@pytest.mark.parametrize("d", [149.0, 140.0, 120.0, 100.0])
def test_neck_of_overlapping_spheres_is_the_intersection_circle(d, neck):
    truth = pair_truth(_pair(d, tilt_deg=20.0), P, neck=neck)
    exact = np.sqrt(75.0**2 - (d / 2) ** 2)
    assert abs(truth["neck_radius_nm"][0] / exact - 1) < 0.005
    assert truth["neck_radius_3d_nm"][0] == truth["neck_radius_nm"][0]


def test_neck_of_unequal_spheres():
    d, r1, r2 = 120.0, 75.0, 60.0
    h = (d**2 + r1**2 - r2**2) / (2 * d)
    truth = pair_truth(_pair(d, radius=(r1, r2)), P)
    assert abs(truth["neck_radius_nm"][0] / np.sqrt(r1**2 - h**2) - 1) < 0.005


@pytest.mark.parametrize(("d", "x", "expected"), [(160.0, 12.0, 12.0), (145.0, 30.0, 30.0), (140.0, 10.0, np.sqrt(75**2 - 70**2))])
def test_neck_with_a_bridge_is_the_larger_of_bridge_and_circle(d, x, expected):
    for neck in ("joint", "section"):
        truth = pair_truth(_pair(d, neck=x), P, neck=neck)
        assert abs(truth["neck_radius_nm"][0] / expected - 1) < 0.005


def test_separated_pair_has_no_neck():
    truth = pair_truth(_pair(160.0), P)
    assert truth["neck_radius_nm"][0] == 0.0


def test_distances_and_ratios():
    truth = pair_truth(_pair(140.0, radius=(70.0, 80.0), tilt_deg=15.0), P)
    assert truth["distance_nm"][0] == pytest.approx(140.0)
    assert truth["distance_xy_nm"][0] == pytest.approx(140.0 * np.cos(np.deg2rad(15)))
    assert truth["distance_z_nm"][0] == pytest.approx(140.0 * np.sin(np.deg2rad(15)))
    assert truth["particle_radius_nm"][0] == pytest.approx(75.0)
    assert truth["distance_ratio"][0] == pytest.approx(140.0 / 150.0)
    assert truth["neck_ratio"][0] == pytest.approx(truth["neck_radius_nm"][0] / 75.0)


def test_aspect_ratio_is_read_along_the_pair_in_projection():
    ar = 1.2
    along = pair_truth(_pair(200.0, aspect=(ar, ar), axis=((0, 0, 1), (0, 0, 1))), P)["aspect_ratio"][0]
    across = pair_truth(_pair(200.0, aspect=(ar, ar), axis=((0, 1, 0), (0, 1, 0))), P)["aspect_ratio"][0]
    vertical = pair_truth(_pair(200.0, aspect=(ar, ar), axis=((1, 0, 0), (1, 0, 0))), P)["aspect_ratio"][0]
    assert along == pytest.approx(ar)
    assert across == pytest.approx(1 / ar)
    assert vertical == pytest.approx(1.0)
    # two spheres cut at their common plane: H = R + d/2, W = 2R
    cut = pair_truth(_pair(120.0), P)["aspect_ratio"][0]
    assert cut == pytest.approx((75.0 + 60.0) / 150.0)


def test_silhouette_waist_of_a_tilted_pair():
    # 75 nm spheres 140 nm apart tilted 15 degrees: the waist is wider than the neck (docs/design.md)
    c = _pair(140.0, tilt_deg=15.0)
    waist = pair_silhouette_waist_nm(c, P)[0]
    assert waist == pytest.approx(np.sqrt(75**2 - (70 * np.cos(np.deg2rad(15))) ** 2), rel=1e-4)
    assert pair_truth(c, P)["neck_radius_nm"][0] == pytest.approx(np.sqrt(75**2 - 70**2), abs=0.05)
    assert pair_silhouette_waist_nm(_pair(140.0), P)[0] == pytest.approx(np.sqrt(75**2 - 70**2), rel=1e-4)
    assert pair_silhouette_waist_nm(_pair(160.0, neck=9.0), P)[0] == pytest.approx(9.0, rel=1e-4)


def test_cluster_pairs_in_either_order():
    c = make_cluster(n_cores=6, rng=2)
    c = c.replace(neck_radius_nm=np.full(c.n_contacts, 20.0))
    a = pair_truth(c, c.contact)
    b = pair_truth(c, c.contact[:, ::-1])
    np.testing.assert_allclose(a["neck_radius_nm"], b["neck_radius_nm"], rtol=1e-3)
    assert np.all(a["neck_radius_nm"] >= 20.0 * 0.999)
    assert set(a) == {
        "neck_radius_nm", "distance_nm", "distance_xy_nm", "distance_z_nm", "particle_radius_nm",
        "aspect_ratio", "neck_ratio", "distance_ratio", "neck_radius_3d_nm", "surface_gap_nm",
    }
    assert all(v.shape == (c.n_contacts,) for v in a.values())
    np.testing.assert_allclose(a["surface_gap_nm"], b["surface_gap_nm"], atol=1e-9)


def test_surface_gap_of_spheres_is_d_minus_the_radii():
    c = make_cluster(n_cores=5, rng=4, aspect_ratio_range=(1.0, 1.0))
    g = pair_truth(c, c.contact)["surface_gap_nm"]
    i, j = c.contact[:, 0], c.contact[:, 1]
    d = np.linalg.norm(c.centre_nm[j] - c.centre_nm[i], axis=1)
    np.testing.assert_allclose(g, d - c.radius_nm[i] - c.radius_nm[j], atol=1e-9)


def test_bad_input_raises():
    c = _pair(140.0)
    with pytest.raises(ValueError, match="'bogus'"):
        pair_truth(c, P, neck="bogus")
    with pytest.raises(ValueError, match="outside"):
        pair_truth(c, np.array([[0, 2]]))
    with pytest.raises(ValueError, match="integer"):
        pair_truth(c, np.array([[0.0, 1.0]]))
