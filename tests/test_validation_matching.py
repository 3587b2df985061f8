"""Measured particles and pairs matched to the true ones, after a rigid registration."""

import numpy as np
import pytest

from sinter4d.validation import match_pairs_to_truth, match_series, register_centres

A, B, C, D = np.array([[0.0, 0, 0], [0, 0, 150], [0, 0, 300], [0, 160, 0]])


def test_match_pairs_to_truth_counts():
    rng = np.random.default_rng(3)
    true = np.array([A, B, C, D, [0, 300, 300]])
    true_pairs = np.array([[0, 1], [1, 2], [0, 3], [2, 4]])
    # measured: all but the last core (missed), plus a spurious particle; label order shuffled
    measured = np.array([C, A, D, B, [0, -200, 0]]) + rng.normal(0, 5, (5, 3))
    measured_pairs = np.array([[2, 4], [3, 4], [1, 4], [2, 5]])  # AB, DB (spurious), CB, A-extra
    m = match_pairs_to_truth(measured, true, measured_pairs=measured_pairs, true_pairs=true_pairs, gate_nm=30.0)
    assert m.particle_match.tolist() == [2, 0, 3, 1, -1]
    assert m.pair_match.tolist() == [0, -1, 1, -1]
    assert (m.found, m.missed, m.spurious) == (2, 2, 2)


def test_register_centres_finds_a_rigid_shift_despite_a_stray_and_a_missing_centre():
    rng = np.random.default_rng(5)
    true = np.array([A, B, C, D])
    shift = np.array([12.0, -7.0, 25.0])
    measured = np.vstack([true[:3] - shift + rng.normal(0, 1.0, (3, 3)), [[0.0, -400.0, 0.0]]])
    offset = register_centres(measured, true, gate_nm=20.0)
    np.testing.assert_allclose(offset, shift, atol=2.0)
    assert np.isnan(register_centres(np.zeros((0, 3)), true, gate_nm=20.0)).all()


def test_match_series_registers_each_step_and_counts():
    shift = np.array([0.0, 10.0, -30.0])  # more than the gate: found only after registration
    true = np.stack([np.array([A, B, C])] * 2)
    measured = np.full((2, 4, 3), np.nan)
    measured[:, :3] = true - shift
    labels = np.array([[[1, 2], [2, 3]], [[1, 2], [0, 0]]])  # P2 absent at the second step
    found = match_series(labels, measured, true, np.array([[0, 1], [1, 2]]), gate_nm=20.0)
    np.testing.assert_allclose(found.offset_nm, [shift, shift])
    assert found.match.tolist() == [[0, 1], [0, -1]]
    assert found.counts.tolist() == [[2, 0, 0], [1, 1, 0]]
    assert found.true_found.all() and found.measured_matched.all() and found.measured_seen.all()


def test_bad_gate_is_named():
    with pytest.raises(ValueError, match="gate_nm=0"):
        match_pairs_to_truth(np.zeros((1, 3)), np.zeros((1, 3)), measured_pairs=[], true_pairs=[], gate_nm=0)
