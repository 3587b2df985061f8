"""Particles split by watershed, their centres, and neighbouring pairs."""

import numpy as np
import pytest

from sinter4d.errors import InputError
from sinter4d.measurement import find_pairs, neighbour_gaps, particle_centres_nm, split_particles

VOX = 2.0  # nm


def _spheres(shape, centres, radii):
    """Binary union of spheres (voxel units, ``(z, y, x)``) as uint8."""
    idx = np.indices(shape, dtype=np.float32)
    out = np.zeros(shape, dtype=bool)
    for c, r in zip(centres, radii, strict=True):
        out |= ((idx - np.asarray(c, dtype=np.float32).reshape(3, 1, 1, 1)) ** 2).sum(axis=0) <= r**2
    return out.astype(np.uint8)


# a chain of three sintered spheres (A-B-C), D 6 voxels (12 nm) from C, E alone,
# and a 5-voxel shell fragment
CENTRES = [(40.2, 60.1, 40.3), (41.0, 62.0, 104.6), (43.0, 58.3, 168.1), (40.0, 122.2, 168.1), (40.0, 140.0, 60.0)]
RADII = [32.0, 34.0, 31.0, 27.0, 30.0]
SHAPE = (84, 176, 206)


@pytest.fixture(scope="module")
def field():
    binary = _spheres(SHAPE, CENTRES, RADII)
    binary |= _spheres(SHAPE, [(40, 20, 190)], [5.0])
    labels = split_particles(binary, voxel_size_nm=VOX, core_radius_nm=64.0)
    centres = particle_centres_nm(labels, voxel_size_nm=VOX)
    truth = np.asarray(CENTRES) * VOX
    # true index of each label, by nearest centre
    order = np.argmin(np.linalg.norm(centres[:, None] - truth[None], axis=2), axis=1)
    return binary, labels, centres, order


def test_gap_between_c_and_d_is_six_voxels():
    c, d = np.asarray(CENTRES[2]), np.asarray(CENTRES[3])
    assert np.linalg.norm(d - c) - RADII[2] - RADII[3] == pytest.approx(6.0, abs=0.1)


def test_chain_is_split_into_its_spheres(field):
    binary, labels, centres, order = field
    assert labels.dtype == np.int32 and labels.shape == binary.shape
    assert labels.max() == 5
    assert sorted(order.tolist()) == [0, 1, 2, 3, 4]
    # every sphere's own centre carries its label; the fragment is dropped
    for k, c in enumerate(CENTRES):
        assert order[labels[tuple(np.round(c).astype(int))] - 1] == k
    assert labels[40, 20, 190] == 0
    assert np.all((labels > 0) <= (binary > 0))
    # centres of mass of the cut spheres are within a few voxels of the true ones
    err = np.linalg.norm(centres - np.asarray(CENTRES)[order] * VOX, axis=1)
    assert err.max() < 3 * VOX


def test_find_pairs_finds_necks_and_gaps_and_nothing_else(field):
    _, labels, _, order = field
    pairs = find_pairs(labels, voxel_size_nm=VOX, max_gap_nm=20.0)
    as_truth = {tuple(sorted((int(order[a - 1]), int(order[b - 1])))) for a, b in pairs}
    assert as_truth == {(0, 1), (1, 2), (2, 3)}
    assert pairs.shape == (3, 2) and np.all(pairs[:, 0] < pairs[:, 1])
    touching = find_pairs(labels, voxel_size_nm=VOX, max_gap_nm=0.0)
    assert {tuple(sorted((int(order[a - 1]), int(order[b - 1])))) for a, b in touching} == {(0, 1), (1, 2)}
    _, gaps = neighbour_gaps(labels, voxel_size_nm=VOX, max_gap_nm=20.0)
    gap_of = dict(zip(map(tuple, pairs.tolist()), gaps, strict=True))
    c, d = (int(np.flatnonzero(order == k)[0]) + 1 for k in (2, 3))
    assert gap_of[tuple(sorted((c, d)))] == pytest.approx(6.0 * VOX, abs=1.5 * VOX)
    assert find_pairs(labels, voxel_size_nm=VOX, max_gap_nm=8.0).shape == (2, 2)


def test_h_and_separation_decide_when_a_neck_splits():
    # spheres of radius 20 voxels 34 apart: neck radius 10.5, so the distance
    # map dips by about 9.5 voxels between the two cores
    binary = _spheres((60, 60, 100), [(30, 30, 33), (30.4, 30, 67)], [20.0, 20.0])
    assert split_particles(binary, voxel_size_nm=1.0, core_radius_nm=20.0).max() == 2
    assert split_particles(binary, voxel_size_nm=1.0, core_radius_nm=20.0, h_nm=12.0).max() == 1
    assert split_particles(binary, voxel_size_nm=1.0, core_radius_nm=20.0, min_separation_nm=40.0).max() == 1
    assert split_particles(binary, voxel_size_nm=1.0, core_radius_nm=20.0, min_radius_nm=25.0).max() == 0


def test_empty_and_small_volumes():
    assert split_particles(np.zeros((8, 8, 8), np.uint8), voxel_size_nm=1.0).max() == 0
    assert find_pairs(np.zeros((8, 8, 8), np.int32), voxel_size_nm=1.0).shape == (0, 2)
    assert particle_centres_nm(np.zeros((8, 8, 8), np.int32), voxel_size_nm=1.0).shape == (0, 3)


def test_centres_use_the_origin():
    labels = np.zeros((5, 5, 5), np.int32)
    labels[1, 2, 3] = 1
    labels[4, 4, 4] = 3
    c = particle_centres_nm(labels, voxel_size_nm=2.0, origin_nm=(-10.0, 0.0, 5.0))
    np.testing.assert_allclose(c[0], [-8.0, 4.0, 11.0])
    assert np.isnan(c[1]).all()
    np.testing.assert_allclose(c[2], [-2.0, 8.0, 13.0])


@pytest.mark.parametrize(
    ("binary", "kwargs", "error", "match"),
    [
        (np.zeros((4, 4)), {}, InputError, "binary must be a"),
        (np.full((4, 4, 4), 0.5), {}, InputError, "0 and 1 only"),
        (np.zeros((4, 4, 4)), {"voxel_size_nm": 0.0}, ValueError, "voxel_size_nm=0.0"),
        (np.zeros((4, 4, 4)), {"h_nm": -1}, ValueError, "h_nm=-1"),
    ],
)
def test_bad_input_is_named(binary, kwargs, error, match):
    with pytest.raises(error, match=match):
        split_particles(binary, **{"voxel_size_nm": 1.0, **kwargs})


def test_find_pairs_rejects_bad_labels():
    with pytest.raises(InputError, match="integer label volume"):
        find_pairs(np.zeros((4, 4, 4)), voxel_size_nm=1.0)
    with pytest.raises(ValueError, match="max_gap_nm=-1"):
        find_pairs(np.zeros((4, 4, 4), np.int32), voxel_size_nm=1.0, max_gap_nm=-1)
