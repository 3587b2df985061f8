"""Metrics of tracked pairs over a time series, shaped ``(time, pair)``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from ..schema import PAIR_METRICS
from ._protocol import measure_pairs
from ._tracking import PairTracks


def measure_tracked_pairs(
    per_time_labels: Sequence[np.ndarray],
    tracks: PairTracks,
    *,
    voxel_size_nm: float,
    **options,
) -> dict[str, np.ndarray]:
    """Measure every tracked pair at every time by the Fig. 7 protocol.

    Parameters
    ----------
    per_time_labels : sequence of T (Z, Y, X) int ndarrays
        Particle labels at each time (read one at a time, so a lazy
        sequence keeps one volume in memory).
    tracks : PairTracks
        From :func:`~sinter4d.measurement.track_pairs` on the same labels.
    voxel_size_nm : float
        Edge of a cubic voxel in nm.
    **options
        Passed to :func:`~sinter4d.measurement.measure_pairs` (``centre``,
        ``neck_3d_method``, ``slab_nm``).

    Returns
    -------
    dict of str to (T, K) ndarray
        The metrics of :data:`sinter4d.schema.PAIR_METRICS` (NaN unless measured) and
        ``status``: the tracking status, or the measurement's own status
        (``"missing"``, ``"stacked"``) where tracking said ``"ok"``.
    """
    n_t, n_k = tracks.status.shape
    if len(per_time_labels) != n_t:
        raise InputError(f"per_time_labels has {len(per_time_labels)} volumes but tracks cover {n_t} times")
    out = {name: np.full((n_t, n_k), np.nan) for name in PAIR_METRICS}
    out["status"] = tracks.status.astype("<U8")
    for t in range(n_t):
        ok = np.flatnonzero(tracks.status[t] == "ok")
        if ok.size == 0:
            continue
        res = measure_pairs(per_time_labels[t], tracks.labels[t, ok], voxel_size_nm=voxel_size_nm, **options)
        for name in PAIR_METRICS:
            out[name][t, ok] = res[name]
        out["status"][t, ok] = res["status"]
    return out
