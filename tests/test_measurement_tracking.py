"""Pairs followed over time (stopped when they merge)."""

import numpy as np
import pytest

from sinter4d import schema
from sinter4d.errors import InputError
from sinter4d.measurement import (
    find_pairs,
    measure_tracked_pairs,
    particle_centres_nm,
    split_particles,
    track_pairs,
)

A, B, C, D = np.array([[0.0, 0, 0], [0, 0, 150], [0, 0, 300], [0, 160, 0]])
SHIFT = np.array([0.0, 0.0, 20.0])  # nm between time steps


def _series():
    """Four particles: AB, BC and AD are pairs; at t2 B and C merge; at t3 D is gone."""
    centres = [
        np.array([A, B, C, D]),  # labels A=1 B=2 C=3 D=4
        np.array([B, D, A, C]) + SHIFT,  # A=3 B=1 C=4 D=2
        np.array([A, (B + C) / 2, D]) + 2 * SHIFT,  # A=1 BC=2 D=3
        np.array([(B + C) / 2, A]) + 2 * SHIFT,  # BC=1 A=2
    ]
    pairs = [
        np.array([[1, 2], [2, 3], [1, 4]]),
        np.array([[1, 3], [1, 4], [2, 3]]),
        np.array([[1, 2], [1, 3]]),
        np.array([[1, 2]]),
    ]
    return centres, pairs


def test_labels_kept_under_shift_and_stopped_on_merge():
    centres, pairs = _series()
    tracks = track_pairs(centres, pairs, gate_nm=40.0)
    assert tracks.names == ("P1", "P2", "P3", "P4")
    status = tracks.status.tolist()
    assert status[0] == ["ok", "ok", "ok", "absent"]
    assert status[1] == ["ok", "ok", "ok", "absent"]
    assert status[2] == ["merged", "merged", "ok", "ok"]  # P4 = (A, BC) appears
    assert status[3] == ["merged", "merged", "lost", "ok"]
    # P1 = (A, B), P2 = (B, C), P3 = (A, D) with the labels of each time
    assert tracks.labels[0].tolist() == [[1, 2], [2, 3], [1, 4], [0, 0]]
    assert tracks.labels[1].tolist() == [[3, 1], [1, 4], [3, 2], [0, 0]]
    assert tracks.labels[2].tolist() == [[0, 0], [0, 0], [1, 3], [1, 2]]
    assert sorted(tracks.labels[3, 3].tolist()) == [1, 2]
    assert tracks.particle_track[1].tolist() == [1, 3, 0, 2]


def test_a_lone_jump_beyond_the_gate_is_lost_not_merged():
    centres = [np.array([A, B]), np.array([A, B + [0, 0, 100.0]])]
    tracks = track_pairs(centres, [np.array([[1, 2]]), np.zeros((0, 2), int)], gate_nm=40.0)
    assert tracks.status[:, 0].tolist() == ["ok", "lost"]


def test_volumes_tell_a_merge_from_a_loss():
    small, big = np.array([0.0, 0, 0]), np.array([0.0, 0, 140])
    merged_at = (1 * small + 7 * big) / 8
    centres = [np.array([small, big]), np.array([merged_at])]
    pairs = [np.array([[1, 2]]), np.zeros((0, 2), int)]
    # from centres alone, a particle vanishing beside its neighbour merged into it
    assert track_pairs(centres, pairs).status[1, 0] == "merged"
    grown = track_pairs(centres, pairs, per_time_volumes=[np.array([1.0, 7.0]), np.array([8.0])])
    assert grown.status[1, 0] == "merged"
    same = track_pairs(centres, pairs, per_time_volumes=[np.array([1.0, 7.0]), np.array([7.0])])
    assert same.status[1, 0] == "lost"
    assert same.particle_track[1].tolist() == [1]


def test_bad_series_is_named():
    centres, pairs = _series()
    with pytest.raises(InputError, match="one entry per time"):
        track_pairs(centres, pairs[:2])
    with pytest.raises(InputError, match=r"holds pair \(1, 9\)"):
        track_pairs(centres[:1], [np.array([[1, 9]])])
    with pytest.raises(ValueError, match="gate_nm=0"):
        track_pairs(centres, pairs, gate_nm=0)


def _spheres(shape, centres, radius):
    idx = np.indices(shape, dtype=np.float32)
    out = np.zeros(shape, dtype=bool)
    for c in centres:
        out |= ((idx - np.asarray(c, dtype=np.float32).reshape(3, 1, 1, 1)) ** 2).sum(axis=0) <= radius**2
    return out.astype(np.uint8)


def test_end_to_end_series_with_a_merge():
    """Three 75 nm spheres at 5 nm voxels: the pair sinters, then the third one coalesces."""
    vox, r = 5.0, 15.0
    shape = (40, 40, 110)
    series = [
        [(20, 20, 20), (20, 20, 49.5), (20, 20, 81)],
        [(20, 20, 24), (20, 20, 52), (20, 20, 84)],  # moved 15-20 nm, densified
        [(20, 20, 24), (20, 20, 52), (20, 20, 61)],  # the third sits on the second
    ]
    labels, centres, pairs = [], [], []
    for spheres in series:
        lab = split_particles(_spheres(shape, spheres, r), voxel_size_nm=vox)
        labels.append(lab)
        centres.append(particle_centres_nm(lab, voxel_size_nm=vox))
        pairs.append(find_pairs(lab, voxel_size_nm=vox))
    assert [int(lab.max()) for lab in labels] == [3, 3, 2]
    tracks = track_pairs(centres, pairs)
    metrics = measure_tracked_pairs(labels, tracks, voxel_size_nm=vox)
    assert tracks.names[:2] == ("P1", "P2")
    assert metrics["status"][:, 0].tolist() == ["ok", "ok", "merged"]
    assert metrics["status"][:, 1].tolist() == ["ok", "ok", "merged"]
    assert all(metrics[name].shape == (3, len(tracks.names)) for name in schema.PAIR_METRICS)
    assert np.isnan(metrics["neck_radius_nm"][2, :2]).all()
    # P1 densifies: its centres approach by 7.5 nm (within a voxel)
    d = metrics["distance_nm"][:2, 0]
    assert d[0] - d[1] == pytest.approx((29.5 - 28.0) * vox, abs=vox)
    assert metrics["neck_radius_nm"][1, 0] > metrics["neck_radius_nm"][0, 0] > 0
    # P2 starts 7.5 nm apart (a gap the shell bridges): a pair, but no neck yet
    assert metrics["neck_radius_nm"][0, 1] == 0.0
