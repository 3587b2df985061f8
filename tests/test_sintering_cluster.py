"""Sintering a whole cluster: approach, new contacts, volume, film."""

import math

import numpy as np
import pytest

from sinter4d.phantom._cluster import Cluster
from sinter4d.sintering import (
    HeatingLog,
    core_volume_nm3,
    load_model_card,
    neck_growth,
    parse_model_card,
    sinter_cluster,
    truncated_sphere_pair,
)

LOG = HeatingLog.paper()


def cluster(centres, radii, contact):
    centres = np.asarray(centres, dtype=float)
    radii = np.asarray(radii, dtype=float)
    n = len(radii)
    contact = np.asarray(contact, dtype=int).reshape(-1, 2)
    rng = np.random.default_rng(5)
    owner = np.repeat(np.arange(n), 20)
    direction = rng.normal(size=(owner.size, 3))
    direction /= np.linalg.norm(direction, axis=1)[:, None]
    return Cluster(
        centre_nm=centres,
        radius_nm=radii.copy(),
        initial_radius_nm=radii.copy(),
        aspect_ratio=np.ones(n),
        axis=np.tile([1.0, 0.0, 0.0], (n, 1)),
        contact=contact,
        neck_radius_nm=np.zeros(len(contact)),
        shell_centre_nm=centres[owner] + direction * (radii[owner, None] + 3.0),
        shell_radius_nm=np.full(owner.size, 3.0),
        shell_owner=owner,
        film_top_nm=0.0,
        film_thickness_nm=30.0,
    )


@pytest.fixture(scope="module")
def card(root):
    return load_model_card(root / "models" / "cu_shell_reservoir.toml")


@pytest.fixture(scope="module")
def surface_only():
    def q(v, u):
        return {"value": v, "unit": u, "source": "test"}

    return parse_model_card(
        {
            "name": "surface_only",
            "mechanisms": ["surface_diffusion"],
            "material": {
                "atomic_volume": q(1.18e-29, "m^3"),
                "surface_energy": q(1.72, "J/m^2"),
                "melting_point": q(1356, "K"),
            },
            "transport": {"surface": {"prefactor": q(6e-10, "m^3/s"), "activation_energy": q(205, "kJ/mol")}},
            "contact": {"initial_neck": q(2.5, "nm")},
            "parameters": {},
        },
        source="surface_only.toml",
    )


def distance(c, i, j):
    return float(np.linalg.norm(c.centre_nm[j] - c.centre_nm[i]))


def test_densifying_pair_follows_truncated_spheres(card):
    a = 75.0
    c0 = cluster([[a, 0, -a], [a, 0, a]], [a, a], [[0, 1]])
    out = sinter_cluster(c0, card, None, LOG)
    assert len(out) == LOG.n_series
    d = np.array([distance(c, 0, 1) for c in out])
    assert np.all(np.diff(d) <= 1e-9) and d[-1] < 2 * a - 5.0  # ~9 nm closer
    # the isolated pair sits where the truncated-sphere relation puts its densifying neck
    x, xd = neck_growth(card, None, radius_nm=[a], neck0_nm=[2.5], log=LOG)
    ratio, radius = truncated_sphere_pair(xd[:, 0] / a)
    np.testing.assert_allclose(d, 2 * a * ratio, rtol=1e-9)
    np.testing.assert_allclose([c.radius_nm[0] for c in out], a * radius, rtol=1e-9)
    np.testing.assert_allclose([c.neck_radius_nm[0] for c in out], x[:, 0], rtol=1e-9)
    # equal cores: the midpoint stays in the film plane; growing cores are lifted to stay on the film
    np.testing.assert_allclose(out[-1].centre_nm.mean(axis=0)[1:], [0, 0], atol=1e-9)
    np.testing.assert_allclose(out[-1].centre_nm[:, 0], out[-1].radius_nm, rtol=1e-12)


def test_non_densifying_pair_keeps_its_centres(surface_only):
    a = 75.0
    c0 = cluster([[a, 0, -a], [a, 0, a + 3.0]], [a, a], [[0, 1]])
    out = sinter_cluster(c0, surface_only, None, LOG)
    for c in out:
        np.testing.assert_array_equal(c.centre_nm, c0.centre_nm)
        np.testing.assert_allclose(c.radius_nm, a)
    assert out[-1].neck_radius_nm[0] > 10.0


def test_third_core_joins_and_volumes_are_conserved(card):
    a = 75.0
    theta = 2 * math.asin((2 * a + 21.0) / (4 * a))  # A-C surface gap 21 nm > 20 nm bridging
    b = np.array([a, 0.0, 0.0])
    ca = b + 2 * a * np.array([0, 0, -1.0])
    cc = b + 2 * a * np.array([0, math.sin(theta), -math.cos(theta)])
    c0 = cluster([ca, b, cc], [a, a, a], [[0, 1], [1, 2]])
    out = sinter_cluster(c0, card, None, LOG, shell_thickness_nm=10.0)
    assert out[0].contact.tolist() == [[0, 1], [1, 2]]
    assert out[-1].contact.tolist() == [[0, 1], [1, 2], [0, 2]]  # appended, order kept
    joined = next(k for k, c in enumerate(out) if c.n_contacts == 3)
    assert joined >= 1
    assert out[-1].neck_radius_nm[2] > out[joined].neck_radius_nm[2] >= 2.5
    for c in out:
        vol = core_volume_nm3(c.centre_nm, c.radius_nm, c.contact)
        np.testing.assert_allclose(vol, 4 / 3 * math.pi * a**3, rtol=1e-9)
    for k in range(1, len(out)):  # necks never shrink
        m = out[k - 1].n_contacts
        assert np.all(out[k].neck_radius_nm[:m] >= out[k - 1].neck_radius_nm - 1e-12)


def test_many_body_pulls_compete(card):
    """In a straight chain the middle core is pulled both ways: each pair approaches half as much."""
    a = 75.0
    chain = cluster([[a, 0, -2 * a], [a, 0, 0], [a, 0, 2 * a]], [a, a, a], [[0, 1], [1, 2]])
    pair = cluster([[a, 0, -2 * a], [a, 0, 0]], [a, a], [[0, 1]])
    out_chain = sinter_cluster(chain, card, None, LOG)
    out_pair = sinter_cluster(pair, card, None, LOG)
    approach_chain = 2 * a - distance(out_chain[-1], 0, 1)
    approach_pair = 2 * a - distance(out_pair[-1], 0, 1)
    assert approach_chain == pytest.approx(0.5 * approach_pair, rel=1e-6)
    np.testing.assert_allclose(out_chain[-1].centre_nm[1, 1:], [0, 0], atol=1e-9)


def test_cores_never_enter_the_film(card):
    big, small = 75.0, 45.0
    # both rest on the film; the big core is pulled down towards the small one
    c0 = cluster([[big, 0, 0], [small, 0, math.sqrt((big + small) ** 2 - (big - small) ** 2)]], [big, small], [[0, 1]])
    out = sinter_cluster(c0, card, None, LOG)
    for c in out:
        assert np.all(c.centre_nm[:, 0] - c.radius_nm >= c.film_top_nm - 1e-9)
    assert distance(out[-1], 0, 1) < distance(out[0], 0, 1) - 3.0


def test_shell_moves_with_cores_and_is_drawn_on(card):
    a = 75.0
    c0 = cluster([[a, 0, -a], [a, 0, a]], [a, a], [[0, 1]])
    out = sinter_cluster(c0, card, None, LOG)
    last = out[-1]
    offset = np.linalg.norm(last.shell_centre_nm - last.centre_nm[last.shell_owner], axis=1)
    np.testing.assert_allclose(offset, (a + 3.0) * last.radius_nm[last.shell_owner] / a, rtol=1e-9)
    assert np.all(last.shell_radius_nm <= 3.0) and np.any(last.shell_radius_nm < 3.0)
    assert last.shell_radius_nm.shape == c0.shell_radius_nm.shape
