"""Pairs followed over time.

Particles are followed from one time step to the next by a Hungarian
assignment (``scipy.optimize.linear_sum_assignment``) on the distance between
centres, gated in nm. When two particles of one step become a single
particle at the next (a third particle coalesced with a pair, and the
watershed no longer cuts them apart), both particle tracks end as
``"merged"``; a particle with no match ends as ``"lost"``. A pair keeps its
name (``P1``, ``P2``, ... in order of first appearance) while both of its
particles are followed; once one of them ends, the pair stops for good with
that particle's reason, as in the paper (Fig. 8).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..errors import InputError
from ..checks import as_centres, as_pairs, check_positive

TRACK_STATUS_VALUES = ("ok", "merged", "lost", "absent")
"""Status of a tracked pair at one time: ``"ok"`` (measure it), ``"merged"``
(one of its particles coalesced with another), ``"lost"`` (one of its
particles found no match), ``"absent"`` (the pair appears only later)."""

DEFAULT_GATE_NM = 40.0
"""Largest move (nm) of a particle between two time steps: densification moves centres by tens of nm."""

DEFAULT_MERGE_GATE_NM = 150.0
"""Largest distance (nm) from an unmatched particle's last centre to the particle it merged into: a core diameter."""

_FAR = 1e12


@dataclass(frozen=True)
class PairTracks:
    """Pairs followed over T time steps.

    Attributes
    ----------
    names : tuple of str
        ``("P1", ..., "PK")`` in order of first appearance.
    labels : (T, K, 2) ndarray of int64
        Label values of the pair's two particles at each time; 0 where the
        status is not ``"ok"``.
    status : (T, K) ndarray of str
        One of :data:`TRACK_STATUS_VALUES`.
    particle_track : tuple of (N_t,) ndarray of int64
        Track id of each particle (row ``k - 1`` for label ``k``) at each time.
    """

    names: tuple[str, ...]
    labels: np.ndarray
    status: np.ndarray
    particle_track: tuple[np.ndarray, ...]


def track_pairs(
    per_time_centres: Sequence[np.ndarray],
    per_time_pairs: Sequence[np.ndarray],
    *,
    gate_nm: float = DEFAULT_GATE_NM,
    merge_gate_nm: float = DEFAULT_MERGE_GATE_NM,
    per_time_volumes: Sequence[np.ndarray] | None = None,
) -> PairTracks:
    """Follow pairs of particles over time.

    Parameters
    ----------
    per_time_centres : sequence of T (N_t, 3) ndarrays
        Particle centres ``(z, y, x)`` in nm at each time; row ``k - 1`` is
        label ``k`` (as from :func:`~sinter4d.measurement.particle_centres_nm`).
    per_time_pairs : sequence of T (M_t, 2) int ndarrays
        Pairs of label values at each time (as from
        :func:`~sinter4d.measurement.find_pairs`).
    gate_nm : float, optional
        Largest move of a particle between two time steps, nm (default
        :data:`DEFAULT_GATE_NM`).
    merge_gate_nm : float, optional
        Largest distance, nm, from an unmatched particle's last centre to the
        particle it merged into (default :data:`DEFAULT_MERGE_GATE_NM`).
    per_time_volumes : sequence of T (N_t,) ndarrays, optional
        Particle volumes (any unit, e.g. voxel counts
        ``np.bincount(labels.ravel())[1:]``). With them a merge must also
        conserve volume, which tells a particle that merged from one that
        was merely lost beside a neighbour.

    Returns
    -------
    PairTracks
        A merge is recognised when two or more particles of one step go to
        the same particle of the next (one by assignment, the others as their
        nearest within ``merge_gate_nm``), that particle lies within
        ``gate_nm`` of the segment joining two of their centres and, when
        volumes are given, it holds the largest of them plus at least half of
        the rest; all of them end as ``"merged"`` and the merged particle
        starts a new track. Without volumes a particle that vanishes next to
        a neighbour is read as merged into it (the conservative reading: both
        tracks stop).
    """
    gate = check_positive(gate_nm, "gate_nm")
    reach = check_positive(merge_gate_nm, "merge_gate_nm")
    if len(per_time_centres) != len(per_time_pairs):
        raise InputError(
            "per_time_centres and per_time_pairs must have one entry per time; "
            f"got {len(per_time_centres)} and {len(per_time_pairs)}"
        )
    if per_time_volumes is not None and len(per_time_volumes) != len(per_time_centres):
        raise InputError(f"per_time_volumes must have {len(per_time_centres)} entries; got {len(per_time_volumes)}")
    centres = [as_centres(c, f"per_time_centres[{t}]") for t, c in enumerate(per_time_centres)]
    volumes = [
        np.ones(len(c)) if per_time_volumes is None else np.asarray(per_time_volumes[t], dtype=float)
        for t, c in enumerate(centres)
    ]
    tracks: list[np.ndarray] = []
    ended: dict[int, str] = {}
    n_tracks = 0
    for t, pos in enumerate(centres):
        if t == 0:
            ids = np.arange(len(pos), dtype=np.int64)
            n_tracks = len(pos)
        else:
            ids, reasons, n_tracks = _link(
                centres[t - 1], pos, tracks[-1], volumes[t - 1], volumes[t], n_tracks, gate=gate, reach=reach
            )
            ended.update(reasons)
        tracks.append(ids)
    return _pair_tracks(tracks, ended, per_time_pairs)


def _link(
    old: np.ndarray,
    new: np.ndarray,
    old_ids: np.ndarray,
    old_vol: np.ndarray,
    new_vol: np.ndarray,
    n_tracks: int,
    *,
    gate: float,
    reach: float,
) -> tuple[np.ndarray, dict[int, str], int]:
    """Track ids of ``new`` particles from ``old`` ones, and the tracks that ended."""
    new_ids = np.full(len(new), -1, dtype=np.int64)
    reasons: dict[int, str] = {}
    alive_old = np.flatnonzero(np.isfinite(old).all(axis=1))
    alive_new = np.flatnonzero(np.isfinite(new).all(axis=1))
    dist = np.full((len(old), len(new)), np.inf)
    if alive_old.size and alive_new.size:
        dist[np.ix_(alive_old, alive_new)] = np.linalg.norm(old[alive_old, None, :] - new[None, alive_new, :], axis=2)
    match_of_new = np.full(len(new), -1, dtype=np.int64)
    if alive_old.size and alive_new.size:
        cost = np.where(dist <= gate, dist, _FAR)
        rows, cols = linear_sum_assignment(cost)
        ok = cost[rows, cols] <= gate
        match_of_new[cols[ok]] = rows[ok]
    matched_old = set(match_of_new[match_of_new >= 0].tolist())
    groups: dict[int, list[int]] = {j: [int(i)] for j, i in enumerate(match_of_new) if i >= 0}
    for i in alive_old:
        if int(i) in matched_old:
            continue
        j = int(np.argmin(dist[i])) if alive_new.size else -1
        if j >= 0 and dist[i, j] <= reach:
            groups.setdefault(j, []).append(int(i))
        else:
            reasons[int(old_ids[i])] = "lost"
    for j, members in groups.items():
        if len(members) == 1 and match_of_new[j] >= 0:
            new_ids[j] = old_ids[members[0]]
            continue
        merged = len(members) >= 2 and _is_merge(old[members], old_vol[members], new[j], new_vol[j], gate=gate)
        for i in members:
            if merged:
                reasons[int(old_ids[i])] = "merged"
            elif i == match_of_new[j]:
                new_ids[j] = old_ids[i]
            else:
                reasons[int(old_ids[i])] = "lost"
    for j in np.flatnonzero(new_ids < 0):
        new_ids[j] = n_tracks
        n_tracks += 1
    return new_ids, reasons, n_tracks


def _is_merge(old: np.ndarray, old_vol: np.ndarray, new: np.ndarray, new_vol: float, *, gate: float) -> bool:
    """Whether particles at ``old`` (K, 3) became one particle at ``new``.

    The new centre must lie within ``gate`` of a segment joining two of the
    old centres, and the new volume must hold the largest old particle plus
    at least half of the others (volumes all 1 when unknown pass this test).
    """
    if np.isfinite(new_vol) and np.all(np.isfinite(old_vol)) and np.ptp(np.append(old_vol, new_vol)) > 0:
        if new_vol < old_vol.max() + 0.5 * (old_vol.sum() - old_vol.max()):
            return False
    best = np.inf
    for a in range(len(old)):
        for b in range(a + 1, len(old)):
            seg = old[b] - old[a]
            t = np.clip(np.dot(new - old[a], seg) / max(np.dot(seg, seg), 1e-12), 0.0, 1.0)
            best = min(best, float(np.linalg.norm(new - old[a] - t * seg)))
    return best <= gate


def _pair_tracks(tracks: list[np.ndarray], ended: dict[int, str], per_time_pairs: Sequence[np.ndarray]) -> PairTracks:
    """Name pairs of particle tracks and give their labels and status at every time."""
    keys: dict[tuple[int, int], int] = {}
    first_seen: list[int] = []
    for t, ids in enumerate(tracks):
        for a, b in as_pairs(per_time_pairs[t], f"per_time_pairs[{t}]"):
            if not (0 < a <= len(ids) and 0 < b <= len(ids)) or a == b:
                raise InputError(f"per_time_pairs[{t}] holds pair ({a}, {b}) but time {t} has labels 1..{len(ids)}")
            key = tuple(sorted((int(ids[a - 1]), int(ids[b - 1]))))
            if key not in keys:
                keys[key] = len(keys)
                first_seen.append(t)
    n_t, n_k = len(tracks), len(keys)
    labels = np.zeros((n_t, n_k, 2), dtype=np.int64)
    status = np.full((n_t, n_k), "absent", dtype="<U6")
    for t, ids in enumerate(tracks):
        where = {int(tr): k + 1 for k, tr in enumerate(ids)}
        for (ta, tb), k in keys.items():
            if t < first_seen[k]:
                continue
            if ta in where and tb in where:
                labels[t, k] = (where[ta], where[tb])
                status[t, k] = "ok"
            else:
                gone = [ended.get(ta), ended.get(tb)]
                status[t, k] = "merged" if "merged" in gone else "lost"
    names = tuple(f"P{k + 1}" for k in range(n_k))
    return PairTracks(names=names, labels=labels, status=status, particle_track=tuple(tracks))
