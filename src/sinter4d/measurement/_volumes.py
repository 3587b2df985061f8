"""The metrics of a series of binarised volumes: the ``metrics.nc`` Dataset.

:func:`measure_volumes` splits each volume into particles, finds their pairs,
follows them over time and measures every tracked pair by the paper's Fig. 7
protocol. Arrays in, a Dataset out; no file is touched.

Choices (docs/validation.md holds the measured comparisons):

- d, d_xy and d_z join the particles' 3D centres of mass (``distance=
  "com3d"``). The paper's x-y centre of mass of the projection (and the
  inscribed-circle alternative) lose a whole circular segment to the
  watershed cut at the neck, the 3D centre of mass only a thin cap, and the
  paper's d_z (mean of the lowest and highest voxel) moves in half voxels;
- r_n, r_p and H/W follow the paper's projection protocol with its x-y
  centre of mass (``centre="com"``);
- ``neck_radius_3d_nm`` uses the ``"in_plane"`` estimator, the least biased
  on reconstructions (:data:`DEFAULT_NECK_3D`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from .. import __version__, schema
from ..checks import check_choice, check_positive
from ..errors import InputError
from ._pairs import DEFAULT_MAX_GAP_NM, find_pairs
from ._particles import DEFAULT_CORE_RADIUS_NM, particle_centres_nm, split_particles
from ._protocol import CENTRE_METHODS, DEFAULT_CENTRE, DEFAULT_NECK_3D, NECK_3D_METHODS
from ._series import measure_tracked_pairs
from ._tracking import DEFAULT_GATE_NM, DEFAULT_MERGE_GATE_NM, track_pairs

DISTANCE_METHODS = ("com3d", "protocol")
"""How d is measured: between 3D centres of mass, or by the paper's protocol."""

DEFAULT_DISTANCE = "com3d"
"""d between the 3D centres of mass: the watershed's cut at the neck moves them least."""

STATUS_MEANINGS = {
    "ok": "measured",
    "absent": "pair not found yet at this time (it appears later)",
    "merged": "one particle coalesced with another; the pair can no longer be told apart (trajectory stopped)",
    "lost": "one particle could not be followed to this time (trajectory stopped)",
    "stacked": "centres less than 2 px apart in x-y: the projection cannot show the neck",
    "missing": "a particle of the pair has no voxel",
}
"""Values of the ``status`` variable of ``metrics.nc`` and why a pair is NaN."""

_AXES = ("z", "y", "x")


def measure_volumes(
    binaries: Sequence[np.ndarray],
    z_nm: np.ndarray,
    y_nm: np.ndarray,
    x_nm: np.ndarray,
    pt_time_s: np.ndarray,
    temperature_C: np.ndarray,
    *,
    voxel_size_nm: float,
    core_radius_nm: float = DEFAULT_CORE_RADIUS_NM,
    max_gap_nm: float = DEFAULT_MAX_GAP_NM,
    centre: str = DEFAULT_CENTRE,
    distance: str = DEFAULT_DISTANCE,
    neck_3d_method: str = DEFAULT_NECK_3D,
    gate_nm: float = DEFAULT_GATE_NM,
    merge_gate_nm: float = DEFAULT_MERGE_GATE_NM,
    progress: bool = False,
) -> xr.Dataset:
    """Pair metrics of a series of binarised volumes (the ``metrics.nc`` Dataset).

    Each volume is split into particles
    (:func:`~sinter4d.measurement.split_particles`), its neighbouring pairs
    are found (:func:`~sinter4d.measurement.find_pairs`), particles and pairs
    are followed over time (:func:`~sinter4d.measurement.track_pairs`, with
    particle volumes so that a merge is told from a loss) and every tracked
    pair is measured by the paper's Fig. 7 protocol
    (:func:`~sinter4d.measurement.measure_tracked_pairs`).

    Parameters
    ----------
    binaries : sequence of T (Z, Y, X) ndarrays of 0/1
        Binarised volumes, one per time, on the grid of ``z_nm, y_nm, x_nm``.
        Read once each, in order (a lazy sequence keeps one in memory).
    z_nm, y_nm, x_nm : (Z,), (Y,), (X,) ndarray
        Voxel-centre coordinates in nm (the tilt axis at x = 0).
    pt_time_s : (T,) ndarray
        Cumulative processing time of each volume, s.
    temperature_C : (T,) ndarray
        Processing temperature of each volume, °C.
    voxel_size_nm : float
        Edge of a cubic voxel, nm; must match the coordinates' spacing.
    core_radius_nm : float, optional
        Expected core radius, nm (sets the watershed's defaults).
    max_gap_nm : float, optional
        Largest surface gap for two particles to be a pair, nm
        (:data:`~sinter4d.measurement.DEFAULT_MAX_GAP_NM`).
    centre : {'com', 'inscribed'}, optional
        x-y centre of each particle's projection in the paper's protocol
        (:func:`~sinter4d.measurement.measure_pairs`): it sets the line
        across which the waist r_n is read and the direction of H; with
        ``distance="protocol"`` also d_xy. Default ``'com'`` (the paper's).
    distance : {'com3d', 'protocol'}, optional
        ``'com3d'`` (default): d, d_xy and d_z between the 3D centres of mass
        of the two watershed particles. ``'protocol'``: the paper's d_xy from
        the projection centres (``centre``) and d_z from the mean of each
        particle's lowest and highest voxel. The watershed cut at the neck
        takes a circular segment off a particle's projection and shifts its
        x-y centre away from the neck, and the paper's d_z moves in half
        voxels, so ``'com3d'`` reads d closer to the truth
        (docs/validation.md).
    neck_3d_method : {'in_plane', 'equal_area', 'stretch_corrected'}, optional
        Estimator of ``neck_radius_3d_nm`` (default ``'in_plane'``, the least
        biased on reconstructions: :data:`DEFAULT_NECK_3D`), see
        :func:`~sinter4d.measurement.neck_radius_3d`.
    gate_nm, merge_gate_nm : float, optional
        Largest move of a particle between two steps, and largest distance to
        the particle it merged into, nm (:func:`~sinter4d.measurement.track_pairs`;
        defaults :data:`~sinter4d.measurement.DEFAULT_GATE_NM` and
        :data:`~sinter4d.measurement.DEFAULT_MERGE_GATE_NM`).
    progress : bool, optional
        Show a progress bar over the volumes.

    Returns
    -------
    xarray.Dataset
        Dims ``(time, pair)`` with coordinates ``pt_time_s``,
        ``temperature_C`` on ``time`` and ``pair`` labels ``P1, P2, ...`` (in
        order of first appearance); the metrics of
        :data:`sinter4d.schema.PAIR_METRICS` (NaN where not measured) and
        ``status`` (:data:`STATUS_MEANINGS`);
        ``tilt_axis_angle_deg``, the angle of each pair's axis to the tilt
        axis (the neck's error depends on it, see
        :func:`sinter4d.validation.compare_to_truth`).
        For traceability: ``particle_label`` ``(time, pair, end)`` (the pair's two
        watershed labels, 0 where absent), ``pair_centre_nm`` ``(time, pair,
        end, axis)`` (their 3D centres of mass), ``particle_centre_nm``
        ``(time, particle, axis)`` and ``particle_volume_nm3`` of every
        particle (``particle`` = label value, NaN padding), ``particle_track``
        and ``n_particles``.

    Examples
    --------
    >>> import numpy as np
    >>> z, y, x = np.mgrid[:40, :40, :80]
    >>> ball = lambda cx: (z - 20) ** 2 + (y - 20) ** 2 + (x - cx) ** 2 <= 15**2
    >>> b = (ball(22) | ball(50)).astype(np.uint8)
    >>> c = np.arange(80) - 39.5
    >>> ds = measure_volumes([b, b], c[:40], c[:40], c, [0, 5], [370, 370], voxel_size_nm=1.0, core_radius_nm=15)
    >>> ds.sizes["pair"], str(ds.status.values[0, 0])
    (1, 'ok')
    """
    vox = check_positive(voxel_size_nm, "voxel_size_nm")
    check_choice(centre, "centre", CENTRE_METHODS)
    check_choice(distance, "distance", DISTANCE_METHODS)
    check_choice(neck_3d_method, "neck_3d_method", NECK_3D_METHODS)
    coords = [_check_axis(name, c, vox) for name, c in zip(_AXES, (z_nm, y_nm, x_nm), strict=True)]
    shape = tuple(len(c) for c in coords)
    n_t = len(binaries)
    times = _check_series("pt_time_s", pt_time_s, n_t)
    temps = _check_series("temperature_C", temperature_C, n_t)
    origin = tuple(float(c[0]) for c in coords)

    labels, centres, pairs, volumes = [], [], [], []
    for t in tqdm(range(n_t), desc="measure", unit="step", disable=not progress):
        binary = np.asarray(binaries[t])
        if binary.shape != shape:
            raise InputError(f"binaries[{t}] has shape {binary.shape} but the coordinates give {shape}")
        lab = split_particles(binary, voxel_size_nm=vox, core_radius_nm=core_radius_nm)
        lab = lab.astype(np.uint16) if lab.max(initial=0) < 2**16 else lab
        labels.append(lab)
        centres.append(particle_centres_nm(lab, voxel_size_nm=vox, origin_nm=origin))
        pairs.append(find_pairs(lab, voxel_size_nm=vox, max_gap_nm=max_gap_nm))
        volumes.append(np.bincount(lab.ravel(), minlength=len(centres[-1]) + 1)[1:] * vox**3)
    tracks = track_pairs(centres, pairs, gate_nm=gate_nm, merge_gate_nm=merge_gate_nm, per_time_volumes=volumes)
    metrics = measure_tracked_pairs(labels, tracks, voxel_size_nm=vox, centre=centre, neck_3d_method=neck_3d_method)

    ds = _metrics_dataset(metrics, tracks, centres, volumes, times, temps)
    if distance == "com3d":
        ds = _distances_from_centres(ds)
    ds.attrs.update(
        title="sinter4d pair metrics (paper's Fig. 7 protocol)",
        voxel_size_nm=vox,
        core_radius_nm=float(core_radius_nm),
        max_gap_nm=float(max_gap_nm),
        centre=centre,
        distance=distance,
        neck_3d_method=neck_3d_method,
        gate_nm=float(gate_nm),
        merge_gate_nm=float(merge_gate_nm),
        sinter4d_version=__version__,
    )
    return ds


def _check_axis(name: str, values: np.ndarray, vox: float) -> np.ndarray:
    """A uniform coordinate axis (nm) whose spacing is the voxel size."""
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        raise InputError(f"{name} coordinates must be a non-empty array of finite nm values")
    if arr.size > 1 and not np.allclose(np.diff(arr), vox, rtol=1e-3, atol=0):
        raise InputError(
            f"{name} coordinates are spaced {np.diff(arr).mean():.4g} nm but voxel_size_nm is {vox:.4g}: "
            "the voxels must be cubic and the grid uniform"
        )
    return arr


def _check_series(name: str, values: np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.size != n:
        raise InputError(f"{name} has {arr.size} values but there are {n} volumes")
    return arr


def _metrics_dataset(metrics, tracks, centres, volumes, times, temps) -> xr.Dataset:
    """Assemble the metrics Dataset from the tracked measurements."""
    n_t, n_k = tracks.status.shape
    n_p = max((len(c) for c in centres), default=0)
    part_centre = np.full((n_t, n_p, 3), np.nan)
    part_volume = np.full((n_t, n_p), np.nan)
    part_track = np.full((n_t, n_p), -1, dtype=np.int64)
    for t, (c, v) in enumerate(zip(centres, volumes, strict=True)):
        part_centre[t, : len(c)] = c
        part_volume[t, : len(v)] = v
        part_track[t, : len(c)] = tracks.particle_track[t]
    lab = tracks.labels.astype(np.int32)
    pair_centre = np.full((n_t, n_k, 2, 3), np.nan)
    present = lab > 0
    t_idx = np.broadcast_to(np.arange(n_t)[:, None, None], lab.shape)
    pair_centre[present] = part_centre[t_idx[present], lab[present] - 1]
    pair_track = np.full((n_k, 2), -1, dtype=np.int64)
    for k in range(n_k):
        first = np.flatnonzero(present[:, k, 0])
        if first.size:
            t0 = first[0]
            pair_track[k] = part_track[t0, lab[t0, k] - 1]

    values = {name: metrics[name] for name in schema.PAIR_METRICS}
    values.update(
        status=metrics["status"].astype(str),
        particle_label=lab,
        pair_centre_nm=pair_centre,
        pair_track=pair_track,
        tilt_axis_angle_deg=pair_axis_angle_deg(pair_centre[:, :, 0], pair_centre[:, :, 1]),
        particle_centre_nm=part_centre,
        particle_volume_nm3=part_volume,
        particle_track=part_track,
        n_particles=np.array([len(c) for c in centres], dtype=np.int32),
    )
    data = {name: schema.variable(name, v, table=schema.METRICS) for name, v in values.items()}
    dims, status, attrs = data["status"]
    data["status"] = (dims, status, {**attrs, "meanings": json.dumps(STATUS_MEANINGS)})
    coords = {
        "time": np.arange(n_t),
        "pt_time_s": times,
        "temperature_C": temps,
        "pair": list(tracks.names),
        "particle": np.arange(1, n_p + 1),
        "axis": list(_AXES),
    }
    coords = {name: schema.coordinate(name, v, table=schema.METRICS) for name, v in coords.items()}
    return xr.Dataset(data, coords=coords)


def _distances_from_centres(ds: xr.Dataset) -> xr.Dataset:
    """d, d_xy, d_z and d/2r_p from the pair's 3D centres of mass, where the protocol measured d."""
    sep = ds["pair_centre_nm"].values[:, :, 1, :] - ds["pair_centre_nm"].values[:, :, 0, :]
    measured = np.isfinite(ds["distance_nm"].values)
    values = {
        "distance_nm": np.linalg.norm(sep, axis=-1),
        "distance_xy_nm": np.hypot(sep[..., 1], sep[..., 2]),
        "distance_z_nm": np.abs(sep[..., 0]),
    }
    values["distance_ratio"] = values["distance_nm"] / (2.0 * ds["particle_radius_nm"].values)
    out = ds.copy()
    for name, v in values.items():
        out[name] = (ds[name].dims, np.where(measured, v, np.nan), dict(ds[name].attrs))
    for name in ("distance_nm", "distance_xy_nm", "distance_z_nm"):
        out[name].attrs["method"] = "between the 3D centres of mass of the two particles"
    return out


def pair_axis_angle_deg(centre_a_nm: np.ndarray, centre_b_nm: np.ndarray) -> np.ndarray:
    """Angle (degrees, 0–90) between the line joining two centres and the tilt axis (y).

    Parameters
    ----------
    centre_a_nm, centre_b_nm : (..., 3) ndarray
        ``(z, y, x)`` centres of the two particles, nm.

    Returns
    -------
    (...) ndarray
        0 for a pair lying along the tilt axis, 90 across it; NaN where a
        centre is missing or the two coincide.

    Examples
    --------
    >>> pair_axis_angle_deg(np.array([0.0, 0.0, 0.0]), np.array([0.0, 10.0, 10.0])).round(1)
    np.float64(45.0)
    """
    sep = np.asarray(centre_b_nm, dtype=float) - np.asarray(centre_a_nm, dtype=float)
    length = np.linalg.norm(sep, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.abs(sep[..., 1]) / length
    return np.degrees(np.arccos(np.clip(cos, 0.0, 1.0)))
