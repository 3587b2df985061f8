"""make_cluster: aggregation geometry, contacts, shell, reproducibility."""

import numpy as np
import pytest

from sinter4d.errors import InputError
from sinter4d.phantom import Cluster, find_contacts, make_cluster, surface_gap_nm
from sinter4d.phantom._geometry import (
    clearance_nm,
    inverse_quadric_matrices,
    quadric_matrices,
    radial_gap_nm,
    spheroid_area_nm2,
    support_nm,
)

SEEDS = [0, 1, 2, 3, 4, 5]
EZ = np.array([1.0, 0.0, 0.0])


def _clearances(c: Cluster) -> dict[tuple[int, int], float]:
    q = quadric_matrices(c.radius_nm, c.aspect_ratio, c.axis)
    out = {}
    for i in range(c.n_cores):
        for j in range(i + 1, c.n_cores):
            out[i, j] = clearance_nm(c.centre_nm[i], q[i], c.centre_nm[j], q[j])
    return out


@pytest.fixture(scope="module")
def clusters():
    return {seed: make_cluster(n_cores=6 + seed % 4, rng=np.random.default_rng(seed)) for seed in SEEDS}


def test_reproducible_from_the_generator():
    a = make_cluster(n_cores=7, rng=np.random.default_rng(11))
    b = make_cluster(n_cores=7, rng=np.random.default_rng(11))
    c = make_cluster(n_cores=7, rng=np.random.default_rng(12))
    for field in ("centre_nm", "radius_nm", "aspect_ratio", "axis", "contact", "shell_centre_nm", "shell_radius_nm"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.film_top_nm == b.film_top_nm
    assert not np.allclose(a.centre_nm, c.centre_nm)


@pytest.mark.parametrize("seed", SEEDS)
def test_pair_kinds_and_no_interpenetration(clusters, seed):
    c = clusters[seed]
    clear = _clearances(c)
    assert min(clear.values()) > -0.05  # nm: no interpenetration
    contacts = [tuple(p) for p in c.contact]
    gaps = surface_gap_nm(c, c.contact)
    touching = [p for p in contacts if abs(clear[p]) < 0.05]
    gapped = [p for p, g in zip(contacts, gaps) if clear[p] > 1.0 and g < 20.0]
    assert len(touching) >= 1
    assert len(gapped) >= 1
    degree = np.bincount(c.contact.ravel(), minlength=c.n_cores)
    assert degree.max() >= 2
    assert np.all(degree >= 1)  # aggregation: every core joins the cluster


@pytest.mark.parametrize("seed", SEEDS)
def test_contacts_are_all_pairs_within_the_bridge(clusters, seed):
    c = clusters[seed]
    i, j = np.triu_indices(c.n_cores, 1)
    every = np.stack([i, j], axis=1)
    expected = every[surface_gap_nm(c, every) < 20.0]
    np.testing.assert_array_equal(c.contact, expected)
    assert np.all(c.contact[:, 0] < c.contact[:, 1])
    np.testing.assert_array_equal(c.neck_radius_nm, np.zeros(c.n_contacts))
    np.testing.assert_array_equal(find_contacts(c, max_gap_nm=20.0), c.contact)


@pytest.mark.parametrize("seed", SEEDS)
def test_cores_rest_on_the_film_and_cluster_is_centred(clusters, seed):
    c = clusters[seed]
    qinv = inverse_quadric_matrices(c.radius_nm, c.aspect_ratio, c.axis)
    half = support_nm(qinv, np.broadcast_to(EZ, (c.n_cores, 3)))
    bottom = c.centre_nm[:, 0] - half
    np.testing.assert_allclose(bottom, c.film_top_nm, atol=1e-6)  # one layer, all on the film
    top = np.max(c.centre_nm[:, 0] + half)
    assert abs(0.5 * (top + c.film_top_nm)) < 1e-6
    ext_y = support_nm(qinv, np.broadcast_to([0.0, 1.0, 0.0], (c.n_cores, 3)))
    assert abs(np.min(c.centre_nm[:, 1] - ext_y) + np.max(c.centre_nm[:, 1] + ext_y)) < 1e-6
    assert c.film_thickness_nm == 30.0


def test_stacked_core_rests_on_the_layer():
    c = make_cluster(n_cores=8, n_stacked=1, rng=3)
    qinv = inverse_quadric_matrices(c.radius_nm, c.aspect_ratio, c.axis)
    bottom = c.centre_nm[:, 0] - support_nm(qinv, np.broadcast_to(EZ, (c.n_cores, 3)))
    assert np.sum(np.abs(bottom - c.film_top_nm) < 1e-6) == 7
    assert bottom[-1] > c.film_top_nm + 20.0
    clear = _clearances(c)
    assert min(clear.values()) > -0.05
    assert min(v for (i, j), v in clear.items() if 7 in (i, j)) < 0.05  # it touches a core below


def test_sizes_and_shapes_follow_the_arguments():
    c = make_cluster(n_cores=30, rng=5, mean_diameter_nm=100.0, diameter_sigma_log=0.05, aspect_ratio_range=(0.9, 1.1))
    assert abs(np.mean(2 * c.radius_nm) - 100.0) < 3.0
    assert np.all((c.aspect_ratio >= 0.9) & (c.aspect_ratio <= 1.1))
    np.testing.assert_allclose(np.linalg.norm(c.axis, axis=1), 1.0)
    np.testing.assert_array_equal(c.radius_nm, c.initial_radius_nm)


@pytest.mark.parametrize("seed", SEEDS[:3])
@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.35])
def test_shell_particles_sit_on_their_core(seed, fraction):
    c = make_cluster(n_cores=7, rng=seed, shell_packing_fraction=fraction)
    assert c.shell_radius_nm.max() <= 5.0 and c.shell_radius_nm.min() >= 1.5
    q = quadric_matrices(c.radius_nm, c.aspect_ratio, c.axis)
    for i in range(c.n_cores):
        mine = c.shell_owner == i
        gap = radial_gap_nm(c.shell_centre_nm[mine], c.centre_nm[i], q[i])
        np.testing.assert_allclose(gap, c.shell_radius_nm[mine], rtol=0.03)  # tangent to the surface
        others = ~mine
        gap = radial_gap_nm(c.shell_centre_nm[others], c.centre_nm[i], q[i])
        assert np.all(gap >= c.shell_radius_nm[others] * (1 - 1e-9))  # not inside another core
    assert np.all(c.shell_centre_nm[:, 0] - c.shell_radius_nm >= c.film_top_nm - 1e-9)
    covered = np.bincount(c.shell_owner, weights=np.pi * c.shell_radius_nm**2, minlength=c.n_cores)
    fraction_found = covered / spheroid_area_nm2(c.radius_nm, c.aspect_ratio)
    np.testing.assert_allclose(fraction_found, fraction, rtol=0.2)


def test_gap_range_and_count_are_honoured():
    c = make_cluster(n_cores=9, rng=8, n_gap_pairs=4, gap_range_nm=(5.0, 8.0), nest_probability=0.0)
    clear = _clearances(c)
    gapped = [v for p, v in clear.items() if 4.9 < v < 8.1]
    assert len(gapped) >= 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_cores": 0}, "n_cores"),
        ({"n_cores": 5, "aspect_ratio_range": (1.2, 0.8)}, "aspect_ratio_range"),
        ({"n_cores": 5, "shell_particle_diameter_nm": (3.0, 12.0)}, "shell_particle_diameter_nm"),
        ({"n_cores": 5, "shell_packing_fraction": 1.5}, "shell_packing_fraction"),
        ({"n_cores": 5, "n_gap_pairs": 4}, "n_gap_pairs"),
        ({"n_cores": 5, "gap_range_nm": (5.0, 25.0)}, "gap_range_nm"),
        ({"n_cores": 5, "n_stacked": 4}, "n_stacked"),
        ({"n_cores": 5, "mean_diameter_nm": -1.0}, "mean_diameter_nm"),
        ({"n_cores": 5, "nest_probability": -0.1}, "nest_probability"),
        ({"n_cores": 5, "bridge_gap_nm": 0.0}, "bridge_gap_nm"),
        ({"n_cores": 5, "diameter_sigma_log": -0.1}, "diameter_sigma_log"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(InputError, match=match):
        make_cluster(rng=0, **kwargs)
