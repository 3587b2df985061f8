"""Measured particles and pairs matched to the true ones, after registering their centres.

A reconstruction is known only up to a rigid translation (registration cannot
tell the stage's drift from the specimen's parallax), so the measured centres
of a time step are first registered to the true cores
(:func:`register_centres`), then matched to them by a Hungarian assignment
(:func:`match_pairs_to_truth`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..checks import as_centres, as_pairs, check_positive
from ..errors import InputError

DEFAULT_MATCH_GATE_NM = 40.0
"""Largest distance (nm) between a registered measured centre and a true one for a match."""

_FAR = 1e12
"""A cost no gated assignment takes."""


@dataclass(frozen=True)
class TruthMatch:
    """Measured particles and pairs matched to the true ones.

    Attributes
    ----------
    particle_match : (N,) ndarray of int64
        For each measured particle (row ``k - 1`` for label ``k``), the index
        of its true core, or -1.
    pair_match : (M,) ndarray of int64
        For each measured pair, the row of its true pair, or -1 (spurious).
    found, missed, spurious : int
        True pairs matched; true pairs not matched; measured pairs matching
        no true pair.
    """

    particle_match: np.ndarray
    pair_match: np.ndarray
    found: int
    missed: int
    spurious: int


def match_pairs_to_truth(
    measured_centres: np.ndarray,
    true_centres: np.ndarray,
    *,
    measured_pairs: np.ndarray,
    true_pairs: np.ndarray,
    gate_nm: float = DEFAULT_MATCH_GATE_NM,
) -> TruthMatch:
    """Match measured particles and pairs to the true ones, for validation.

    Particles are matched by a Hungarian assignment on centre distance,
    gated by ``gate_nm``; a measured pair is found when both its particles
    match the two cores of a true pair.

    Parameters
    ----------
    measured_centres : (N, 3) ndarray
        Measured centres ``(z, y, x)`` in nm, row ``k - 1`` for label ``k``.
    true_centres : (N_true, 3) ndarray
        True core centres in nm (``Cluster.centre_nm``).
    measured_pairs : (M, 2) int ndarray
        Measured pairs as label values (1-based, from ``find_pairs``).
    true_pairs : (M_true, 2) int ndarray
        True pairs as core indices (0-based, ``Cluster.contact``).
    gate_nm : float, optional
        Largest centre distance for a match, nm (default :data:`DEFAULT_MATCH_GATE_NM`).

    Returns
    -------
    TruthMatch
    """
    gate = check_positive(gate_nm, "gate_nm")
    meas = as_centres(measured_centres, "measured_centres")
    true = as_centres(true_centres, "true_centres")
    mp = as_pairs(measured_pairs, "measured_pairs")
    tp = as_pairs(true_pairs, "true_pairs")
    particle_match = np.full(len(meas), -1, dtype=np.int64)
    if len(meas) and len(true):
        dist = np.linalg.norm(meas[:, None, :] - true[None, :, :], axis=2)
        dist = np.where(np.isfinite(dist), dist, _FAR)
        cost = np.where(dist <= gate, dist, _FAR)
        rows, cols = linear_sum_assignment(cost)
        ok = cost[rows, cols] <= gate
        particle_match[rows[ok]] = cols[ok]
    true_index = {tuple(sorted(map(int, p))): k for k, p in enumerate(tp)}
    pair_match = np.full(len(mp), -1, dtype=np.int64)
    for k, (a, b) in enumerate(mp):
        if not (0 < a <= len(meas) and 0 < b <= len(meas)):
            raise InputError(f"measured_pairs holds label {max(a, b)} but measured_centres has {len(meas)} rows")
        ia, ib = particle_match[a - 1], particle_match[b - 1]
        if ia >= 0 and ib >= 0:
            pair_match[k] = true_index.get(tuple(sorted((int(ia), int(ib)))), -1)
    found = len(set(pair_match[pair_match >= 0].tolist()))
    return TruthMatch(
        particle_match=particle_match,
        pair_match=pair_match,
        found=found,
        missed=len(tp) - found,
        spurious=int((pair_match < 0).sum()),
    )


def register_centres(measured: np.ndarray, true: np.ndarray, *, gate_nm: float) -> np.ndarray:
    """Translation (nm) taking measured centres onto true ones.

    Every offset ``true_j - measured_i`` is a candidate; the one under which
    most measured centres lie within ``gate_nm`` of a true centre wins (ties:
    the least summed distance), and is refined twice to the mean offset of the
    centres then within ``gate_nm``.

    Parameters
    ----------
    measured : (N, 3) ndarray
        Measured centres ``(z, y, x)``, nm, all finite.
    true : (N_true, 3) ndarray
        True centres, nm (rows with NaN are left out).
    gate_nm : float
        Largest distance of a matched pair of centres, nm.

    Returns
    -------
    (3,) ndarray
        The translation to add to ``measured``; NaN if either set is empty.
    """
    gate = gate_nm
    true = true[np.isfinite(true).all(axis=1)]
    if len(measured) == 0 or len(true) == 0:
        return np.full(3, np.nan)
    candidates = (true[None, :, :] - measured[:, None, :]).reshape(-1, 3)
    best, best_key = candidates[0], (-1, np.inf)
    for off in candidates:
        near = np.linalg.norm(measured[:, None, :] + off - true[None, :, :], axis=2).min(axis=1)
        inside = near <= gate
        key = (int(inside.sum()), float(near[inside].sum()))
        if key[0] > best_key[0] or (key[0] == best_key[0] and key[1] < best_key[1]):
            best, best_key = off, key
    for _ in range(2):
        dist = np.linalg.norm(measured[:, None, :] + best - true[None, :, :], axis=2)
        nearest = dist.argmin(axis=1)
        inside = dist[np.arange(len(measured)), nearest] <= gate
        if not inside.any():
            break
        best = (true[nearest[inside]] - measured[inside]).mean(axis=0)
    return best


def on_true_pairs(values: np.ndarray, match: np.ndarray) -> np.ndarray:
    """A measured (time, measured pair) array on the truth's (time, pair) grid; NaN where not found.

    ``match[t, j]`` is the measured pair matched to true pair j at time t (-1: none).
    """
    out = np.full(match.shape, np.nan)
    ok = match >= 0
    t_idx = np.broadcast_to(np.arange(match.shape[0])[:, None], match.shape)
    out[ok] = values[t_idx[ok], match[ok]]
    return out


@dataclass(frozen=True)
class SeriesMatch:
    """Tracked measured pairs matched to the true pairs at every time step.

    Attributes
    ----------
    match : (T, P) ndarray of int64
        For each time and true pair, the index of the measured pair matched to
        it (-1: not found).
    counts : (T, 3) ndarray of int64
        ``found``, ``missed`` and ``spurious`` at each time (:class:`TruthMatch`).
    offset_nm : (T, 3) ndarray
        Translation added to the measured centres to register them to the
        truth (:func:`register_centres`).
    true_found : (P,) bool ndarray
        True pairs matched at some time.
    measured_matched, measured_seen : (K,) bool ndarray
        Measured pairs matching a true pair at some time; present at some time.
    """

    match: np.ndarray
    counts: np.ndarray
    offset_nm: np.ndarray
    true_found: np.ndarray
    measured_matched: np.ndarray
    measured_seen: np.ndarray


def match_series(
    particle_label: np.ndarray,
    particle_centre_nm: np.ndarray,
    true_centre_nm: np.ndarray,
    true_pairs: np.ndarray,
    *,
    gate_nm: float = DEFAULT_MATCH_GATE_NM,
) -> SeriesMatch:
    """Register and match a tracked measurement to the truth at every time step.

    At each time the measured particles are registered to the true cores
    (:func:`register_centres`), then matched (:func:`match_pairs_to_truth`);
    a measured pair present at that time is found when its two particles
    match the two cores of a true pair (the first measured pair to match a
    true pair keeps it).

    Parameters
    ----------
    particle_label : (T, K, 2) int ndarray
        Watershed labels of each measured pair's particles (0 = not present),
        ``metrics.nc`` ``particle_label``.
    particle_centre_nm : (T, N, 3) ndarray
        Centre of each labelled particle, row ``k - 1`` for label ``k`` (NaN
        padding), ``metrics.nc`` ``particle_centre_nm``.
    true_centre_nm : (T, N_true, 3) ndarray
        True core centres, ``truth.nc`` ``centre_nm``.
    true_pairs : (P, 2) int ndarray
        Core indices of each true pair, ``truth.nc`` ``pair_particles``.
    gate_nm : float, optional
        Largest distance between a registered measured centre and a true one, nm.

    Returns
    -------
    SeriesMatch
    """
    gate = check_positive(gate_nm, "gate_nm")
    n_t, n_meas = particle_label.shape[:2]
    n_true = len(true_pairs)
    match = np.full((n_t, n_true), -1, dtype=np.int64)
    counts = np.zeros((n_t, 3), dtype=np.int64)
    offsets = np.full((n_t, 3), np.nan)
    ever_true = np.zeros(n_true, dtype=bool)
    ever_meas = np.zeros(n_meas, dtype=bool)
    seen_meas = np.zeros(n_meas, dtype=bool)
    for t in range(n_t):
        n_lab = int(particle_label[t].max(initial=0))
        rows = particle_centre_nm[t].reshape(-1, 3)
        n_rows = max(n_lab, int(np.flatnonzero(np.isfinite(rows).all(axis=1)).max(initial=-1)) + 1)
        cen = rows[:n_rows]
        offsets[t] = register_centres(cen[np.isfinite(cen).all(axis=1)], true_centre_nm[t], gate_nm=gate)
        present = np.flatnonzero(particle_label[t, :, 0] > 0)
        seen_meas[present] |= True
        tm = match_pairs_to_truth(
            cen + np.nan_to_num(offsets[t]),
            true_centre_nm[t],
            measured_pairs=particle_label[t, present].astype(np.int64),
            true_pairs=true_pairs,
            gate_nm=gate,
        )
        for k, j in zip(present, tm.pair_match, strict=True):
            if j >= 0 and match[t, j] < 0:
                match[t, j] = k
                ever_true[j] = True
                ever_meas[k] = True
        counts[t] = (tm.found, tm.missed, tm.spurious)
    return SeriesMatch(match, counts, offsets, ever_true, ever_meas, seen_meas)
