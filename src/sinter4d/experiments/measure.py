"""Measurement of reconstructions (metrics.nc) and its validation against the truth (validation.nc).

Layout of a run folder (beside those of :mod:`.simulate` and :mod:`.reconstruct`)::

    RUNDIR/metrics.nc               pair metrics over (time, pair), DESIGN.md "Metrics file"
    RUNDIR/metrics_fig8.png         r_n/r_p and d/2r_p against processing time (paper, Fig. 8)
    RUNDIR/metrics_fig9a.png        r_n against d, coloured by H/W (paper, Fig. 9a)
    RUNDIR/validation.nc            metrics - truth per true pair and time, with a summary
    RUNDIR/validation_fig8.png      Fig. 8 with the truth dashed (matched pairs only)

The computing functions take arrays or Datasets and return a Dataset
(:func:`measure_volumes`, :func:`compare_to_truth`); only :func:`measure_run`
and :func:`validate_run` touch files, which are written atomically and
skipped when newer than every file they are made from.

Choices (measured on simulated series, see the docstring of
:func:`measure_volumes`):

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
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from .. import __version__
from ..errors import InputError
from ..io.netcdf import open_dataset_checked, write_dataset_atomic
from ..measurement import (
    CENTRE_METHODS,
    METRIC_NAMES,
    NECK_3D_METHODS,
    NECK_READING_REFERENCE_NM,
    find_pairs,
    fit_neck_fill,
    match_pairs_to_truth,
    measure_tracked_pairs,
    neck_fill_nm2,
    neck_reading_curve,
    particle_centres_nm,
    split_particles,
    track_pairs,
)
from ..measurement._checks import check_choice, check_positive
from ..pipeline.quality import registered_dice, truth_on_grid
from .simulate import PAIR_METRICS

log = logging.getLogger(__name__)

DEFAULT_CENTRE = "com"
"""x-y centre of the projection protocol (r_n's waist line, H/W): the paper's."""

DISTANCE_METHODS = ("com3d", "protocol")
"""How d is measured: between 3D centres of mass, or by the paper's protocol."""

DEFAULT_NECK_3D = "in_plane"
"""Estimator of ``neck_radius_3d_nm``: the least biased on reconstructions.

On the quick spec's reconstructions (TV, 4.16 nm voxels, 18 steps x 9 pairs)
the error against the true neck has median +3.3 nm with ``"in_plane"``,
+5.4 nm with ``"stretch_corrected"`` and +8.8 nm with ``"equal_area"`` (the
missing wedge stretches the section along z and fills the concave neck).
On noiseless voxelised phantoms ``"equal_area"`` is the better one (median
|error| 0.13 voxel against 0.27; half the in-plane extent of a spheroid
pair's elliptic contact is not its equal-area radius), but it is the
reconstructions that are measured."""

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


# --------------------------------------------------------------------------- computing functions


def measure_volumes(
    binaries: Sequence[np.ndarray],
    z_nm: np.ndarray,
    y_nm: np.ndarray,
    x_nm: np.ndarray,
    pt_time_s: np.ndarray,
    temperature_C: np.ndarray,
    *,
    voxel_size_nm: float,
    core_radius_nm: float = 75.0,
    max_gap_nm: float = 20.0,
    centre: str = DEFAULT_CENTRE,
    distance: str = "com3d",
    neck_3d_method: str = DEFAULT_NECK_3D,
    gate_nm: float = 40.0,
    merge_gate_nm: float = 150.0,
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
        Largest surface gap for two particles to be a pair, nm (default 20,
        two shell thicknesses).
    centre : {'com', 'inscribed'}, optional
        x-y centre of each particle's projection in the paper's protocol
        (:func:`~sinter4d.measurement.measure_pairs`): it sets the line
        across which the waist r_n is read and the direction of H; with
        ``distance="protocol"`` also d_xy. Default ``'com'`` (the paper's).
    distance : {'com3d', 'protocol'}, optional
        ``'com3d'`` (default): d, d_xy and d_z between the 3D centres of mass
        of the two watershed particles. ``'protocol'``: the paper's d_xy from
        the projection centres (``centre``) and d_z from the mean of each
        particle's lowest and highest voxel. On noiseless phantoms of the
        quick spec at 4.16 nm voxels (9 pairs, 9 of the 18 steps),
        |d - d_true| has median 0.08 and max 0.24 voxel with ``'com3d'``,
        median 0.16 and max 0.70 voxel with the protocol and ``'com'`` (0.66
        with ``'inscribed'``): the watershed cut at the neck takes a circular
        segment off a particle's projection and shifts its x-y centre away
        from the neck, and the paper's d_z moves in half voxels (median error
        0.49 voxel). On the quick spec's reconstructions (18 steps x 9
        pairs) median |d - d_true| is 0.63 nm with ``'com3d'``, 1.5 nm with
        the protocol and ``'com'``, 2.1 nm with ``'inscribed'``.
    neck_3d_method : {'in_plane', 'equal_area', 'stretch_corrected'}, optional
        Estimator of ``neck_radius_3d_nm`` (default ``'in_plane'``, the least
        biased on reconstructions: :data:`DEFAULT_NECK_3D`), see
        :func:`~sinter4d.measurement.neck_radius_3d`.
    gate_nm, merge_gate_nm : float, optional
        Largest move of a particle between two steps, and largest distance to
        the particle it merged into, nm (:func:`~sinter4d.measurement.track_pairs`).
    progress : bool, optional
        Show a progress bar over the volumes.

    Returns
    -------
    xarray.Dataset
        Dims ``(time, pair)`` with coordinates ``pt_time_s``,
        ``temperature_C`` on ``time`` and ``pair`` labels ``P1, P2, ...`` (in
        order of first appearance); the nine metrics of DESIGN.md (NaN where
        not measured) and ``status`` (:data:`STATUS_MEANINGS`);
        ``tilt_axis_angle_deg``, the angle of each pair's axis to the tilt
        axis (the neck's error depends on it, see :func:`compare_to_truth`).
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
    vox = check_positive("voxel_size_nm", voxel_size_nm)
    check_choice("centre", centre, CENTRE_METHODS)
    check_choice("distance", distance, DISTANCE_METHODS)
    check_choice("neck_3d_method", neck_3d_method, NECK_3D_METHODS)
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

    data = {
        name: (("time", "pair"), metrics[name], {"units": u, "long_name": ln})
        for name, (u, ln) in PAIR_METRICS.items()
    }
    data["status"] = (
        ("time", "pair"),
        metrics["status"].astype(str),
        {"long_name": "measurement status", "meanings": json.dumps(STATUS_MEANINGS)},
    )
    data.update(
        particle_label=(("time", "pair", "end"), lab, {"units": "1", "long_name": "watershed labels of the pair's particles (0 = not present)"}),
        pair_centre_nm=(("time", "pair", "end", "axis"), pair_centre, {"units": "nm", "long_name": "3D centre of mass of the pair's particles"}),
        pair_track=(("pair", "end"), pair_track, {"units": "1", "long_name": "particle tracks the pair joins"}),
        tilt_axis_angle_deg=(("time", "pair"), pair_axis_angle_deg(pair_centre[:, :, 0], pair_centre[:, :, 1]),
                             {"units": "degree", "long_name": "angle of the pair's axis (3D centres of mass) to the tilt axis"}),
        particle_centre_nm=(("time", "particle", "axis"), part_centre, {"units": "nm", "long_name": "3D centre of mass of each labelled particle"}),
        particle_volume_nm3=(("time", "particle"), part_volume, {"units": "nm3", "long_name": "volume of each labelled particle"}),
        particle_track=(("time", "particle"), part_track, {"units": "1", "long_name": "track id of each labelled particle (-1 = none)"}),
        n_particles=(("time",), np.array([len(c) for c in centres], dtype=np.int32), {"units": "1", "long_name": "particles found"}),
    )
    coords = {
        "time": ("time", np.arange(n_t), {"long_name": "tilt-series index"}),
        "pt_time_s": ("time", times, {"units": "s", "long_name": "cumulative processing time"}),
        "temperature_C": ("time", temps, {"units": "degC", "long_name": "median processing temperature"}),
        "pair": ("pair", list(tracks.names), {"long_name": "particle pair"}),
        "particle": ("particle", np.arange(1, n_p + 1), {"long_name": "watershed label value"}),
        "axis": ("axis", list(_AXES), {"long_name": "spatial axis"}),
    }
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


def compare_to_truth(
    metrics: xr.Dataset,
    truth: xr.Dataset,
    *,
    dice: np.ndarray | None = None,
    gate_nm: float = 40.0,
) -> xr.Dataset:
    """Errors of measured pair metrics against the truth (the ``validation.nc`` Dataset).

    At each time the measured particles are registered to the true cores
    (the reconstruction is known only up to a rigid translation: the
    translation that brings most measured centres within ``gate_nm`` of a
    true one, refined to the mean offset of the matched particles), then
    matched (:func:`~sinter4d.measurement.match_pairs_to_truth`); a measured
    pair present at that time is found when its two particles match the two
    cores of a true pair.

    Parameters
    ----------
    metrics : xarray.Dataset
        From :func:`measure_volumes` (needs ``particle_centre_nm`` and
        ``particle_label``).
    truth : xarray.Dataset
        ``truth.nc`` of a simulated run: the metrics over ``(time, pair)``,
        ``pair_particles`` ``(pair, end)`` and ``centre_nm`` ``(time,
        particle, axis)``; the same times as ``metrics``.
    dice : (T,) ndarray, optional
        Dice of each time's binary against the truth, stored as is.
    gate_nm : float, optional
        Largest distance between a registered measured centre and a true one
        for a match, nm.

    Returns
    -------
    xarray.Dataset
        Over ``(time, pair)`` with the truth's pair labels: each metric under
        its own name (as in ``truth.nc``) holding measured - true (NaN where
        the true pair was not found or not measured), ``measured_pair`` (label of the matching measured pair,
        ``""`` if none); per time ``found``, ``missed``, ``spurious``,
        ``registration_offset_nm`` (added to the measured centres) and
        ``dice``; 0-d ``<metric>_median_abs_error`` and
        ``<metric>_max_abs_error``. The neck's error depends on how the pair
        lies against the tilt axis (the missing wedge), so
        ``tilt_axis_angle_deg`` ``(time, pair)`` holds the angle of each true
        pair's axis to the tilt axis, and over ``orientation``
        (:data:`ORIENTATIONS`: within 45° of it, beyond, all pairs)
        ``neck_radius_nm_median_error`` (signed median of measured - true),
        ``neck_fill_nm2`` (median of r_meas² - r_true² over ``neck_fill_necks``
        necks: the fill K of :func:`~sinter4d.measurement.neck_fill_nm2`) and
        ``neck_fill_resolution_nm`` (the Gaussian blur along the pair axis
        that gives that K at the median r_p). Attributes repeat the summary of
        ``neck_ratio`` and ``distance_ratio`` and hold the pair counts over
        the run: ``pairs_found`` (true pairs matched at some time),
        ``pairs_missed`` (never matched), ``pairs_spurious`` (measured pairs
        never matching a true pair).
    """
    gate = check_positive("gate_nm", gate_nm)
    for name, ds, need in (
        ("metrics", metrics, ("particle_centre_nm", "particle_label", *METRIC_NAMES)),
        ("truth", truth, ("pair_particles", "centre_nm", *METRIC_NAMES)),
    ):
        missing = [v for v in need if v not in ds.variables]
        if missing:
            raise InputError(f"{name} lacks variable(s) {', '.join(missing)}")
    n_t = metrics.sizes["time"]
    if truth.sizes["time"] != n_t:
        raise InputError(f"metrics has {n_t} times but the truth has {truth.sizes['time']}")
    true_pairs = truth["pair_particles"].values.astype(np.int64)
    n_true, m_names = len(true_pairs), [str(p) for p in metrics["pair"].values]
    labels = metrics["particle_label"].values
    meas_centres = metrics["particle_centre_nm"].values
    true_centres = truth["centre_nm"].values

    match = np.full((n_t, n_true), -1, dtype=np.int64)
    counts = np.zeros((n_t, 3), dtype=np.int64)
    offsets = np.full((n_t, 3), np.nan)
    ever_true = np.zeros(n_true, dtype=bool)
    ever_meas = np.zeros(len(m_names), dtype=bool)
    seen_meas = np.zeros(len(m_names), dtype=bool)
    for t in range(n_t):
        n_lab = int(labels[t].max(initial=0))
        rows = meas_centres[t].reshape(-1, 3)
        n_rows = max(n_lab, int(np.flatnonzero(np.isfinite(rows).all(axis=1)).max(initial=-1)) + 1)
        cen = rows[:n_rows]
        offsets[t] = _register_centres(cen[np.isfinite(cen).all(axis=1)], true_centres[t], gate=gate)
        present = np.flatnonzero(labels[t, :, 0] > 0)
        seen_meas[present] |= True
        tm = match_pairs_to_truth(
            cen + np.nan_to_num(offsets[t]),
            true_centres[t],
            measured_pairs=labels[t, present].astype(np.int64),
            true_pairs=true_pairs,
            gate_nm=gate,
        )
        for k, j in zip(present, tm.pair_match, strict=True):
            if j >= 0 and match[t, j] < 0:
                match[t, j] = k
                ever_true[j] = True
                ever_meas[k] = True
        counts[t] = (tm.found, tm.missed, tm.spurious)

    data = {}
    summary = {}
    on_true = {}
    for name in METRIC_NAMES:
        on_true[name] = _on_true_pairs(metrics[name].values, match)
        err = on_true[name] - truth[name].values
        units, long_name = PAIR_METRICS[name]
        data[name] = (("time", "pair"), err, {"units": units, "long_name": f"error of the {long_name} (measured - true)"})
        finite = np.abs(err[np.isfinite(err)])
        med = float(np.median(finite)) if finite.size else float("nan")
        top = float(finite.max()) if finite.size else float("nan")
        data[f"{name}_median_abs_error"] = ((), med, {"units": units, "long_name": f"median |error| of the {long_name}"})
        data[f"{name}_max_abs_error"] = ((), top, {"units": units, "long_name": f"largest |error| of the {long_name}"})
        summary[name] = (med, top, int(finite.size))
    angle = pair_axis_angle_deg(true_centres[:, true_pairs[:, 0]], true_centres[:, true_pairs[:, 1]])
    data.update(_orientation_summary(on_true["neck_radius_nm"], truth, angle))
    measured_pair = np.where(match >= 0, np.asarray(m_names + [""], dtype=object)[match], "").astype(str)
    data.update(
        measured_pair=(("time", "pair"), measured_pair, {"long_name": "measured pair matched to the true pair (empty: not found)"}),
        found=(("time",), counts[:, 0], {"units": "1", "long_name": "true pairs found"}),
        missed=(("time",), counts[:, 1], {"units": "1", "long_name": "true pairs not found"}),
        spurious=(("time",), counts[:, 2], {"units": "1", "long_name": "measured pairs matching no true pair"}),
        registration_offset_nm=(("time", "axis"), offsets, {"units": "nm", "long_name": "translation added to the measured centres to register them to the truth"}),
    )
    if dice is not None:
        dice_arr = np.asarray(dice, dtype=float).reshape(-1)
        if dice_arr.size != n_t:
            raise InputError(f"dice has {dice_arr.size} values but there are {n_t} times")
        data["dice"] = (("time",), dice_arr, {"units": "1", "long_name": "Dice of the binary against the true cores (registered)"})
    coords = {
        "time": ("time", metrics["time"].values, {"long_name": "tilt-series index"}),
        "pt_time_s": ("time", metrics["pt_time_s"].values, dict(metrics["pt_time_s"].attrs)),
        "temperature_C": ("time", metrics["temperature_C"].values, dict(metrics["temperature_C"].attrs)),
        "pair": ("pair", [str(p) for p in truth["pair"].values], {"long_name": "true particle pair"}),
        "axis": ("axis", list(_AXES), {"long_name": "spatial axis"}),
        "orientation": ("orientation", list(ORIENTATIONS), {"long_name": "pairs by the angle of their axis to the tilt axis (< 45 deg, >= 45 deg, all)"}),
    }
    attrs = {
        "title": "sinter4d validation: measured pair metrics minus the truth",
        "pairs_true": n_true,
        "pairs_found": int(ever_true.sum()),
        "pairs_missed": int(n_true - ever_true.sum()),
        "pairs_spurious": int((seen_meas & ~ever_meas).sum()),
        "gate_nm": gate,
        "sinter4d_version": __version__,
    }
    for name in ("neck_ratio", "distance_ratio", "neck_radius_nm", "distance_nm", "neck_radius_3d_nm",
                 "surface_gap_nm"):
        attrs[f"median_abs_error_{name}"] = summary[name][0]
        attrs[f"max_abs_error_{name}"] = summary[name][1]
    for k, name in enumerate(ORIENTATIONS):
        attrs[f"median_error_neck_radius_nm_{name}"] = float(data["neck_radius_nm_median_error"][1][k])
    attrs.update(_reading_curve_attrs(on_true["neck_radius_nm"], truth))
    if dice is not None:
        attrs["median_dice"] = float(np.nanmedian(dice_arr)) if np.isfinite(dice_arr).any() else float("nan")
    return xr.Dataset(data, coords=coords, attrs=attrs)


ORIENTATIONS = ("along_tilt_axis", "across_tilt_axis", "all")
"""Classes of pairs by the angle of their axis to the tilt axis: < 45°, >= 45°, any."""


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


def _on_true_pairs(values: np.ndarray, match: np.ndarray) -> np.ndarray:
    """A measured (time, measured pair) array on the truth's (time, pair) grid; NaN where not found.

    ``match[t, j]`` is the measured pair matched to true pair j at time t (-1: none).
    """
    out = np.full(match.shape, np.nan)
    ok = match >= 0
    t_idx = np.broadcast_to(np.arange(match.shape[0])[:, None], match.shape)
    out[ok] = values[t_idx[ok], match[ok]]
    return out


READING_CURVE_MIN_NECK_NM = 10.0
"""True necks below this (nm) are left out of the reading curve: below ~2 voxels
the reading is the crevice's shell particles, not the neck."""
READING_CURVE_MAX_GAP_NM = 5.0
"""Pairs whose true surface gap exceeds this (nm) are left out of the reading curve:
their bridges read far narrower (validation.nc) and a fit gives them their own offsets."""


def _reading_curve_attrs(measured_on_true: np.ndarray, truth: xr.Dataset) -> dict:
    """Gain and bias (at the reference neck) of the measured against the true necks of contacts (attributes)."""
    true = truth["neck_radius_nm"].values
    gap = truth["surface_gap_nm"].values
    use = (true >= READING_CURVE_MIN_NECK_NM) & (gap <= READING_CURVE_MAX_GAP_NM) & (measured_on_true > 0)
    try:
        gain, bias = neck_reading_curve(true[use], measured_on_true[use])
    except ValueError:
        gain = bias = float("nan")
    return {"neck_reading_gain": gain, "neck_reading_bias_nm": bias, "neck_reading_reference_nm": NECK_READING_REFERENCE_NM,
            "neck_reading_points": int(use.sum())}


def _orientation_summary(read: np.ndarray, truth: xr.Dataset, angle: np.ndarray) -> dict:
    """Signed neck error and neck fill of the found pairs, along / across the tilt axis and overall.

    ``read`` is the measured neck radius on the truth's (time, pair) grid (NaN where not found).
    """
    true = truth["neck_radius_nm"].values
    r_p = truth["particle_radius_nm"].values
    classes = (angle < 45.0, angle >= 45.0, np.isfinite(angle))
    med_err, fill, n_necks, blur = [], [], [], []
    for sel in classes:
        err = (read - true)[sel]
        err = err[np.isfinite(err)]
        med_err.append(float(np.median(err)) if err.size else float("nan"))
        k, n = fit_neck_fill(read[sel], true[sel])
        fill.append(k)
        n_necks.append(n)
        rp = np.nanmedian(r_p[sel]) if np.isfinite(r_p[sel]).any() else float("nan")
        blur.append(k / neck_fill_nm2(rp, 1.0) if k > 0 and rp > 0 else float("nan"))  # K is linear in the blur
    return {
        "tilt_axis_angle_deg": (("time", "pair"), angle, {"units": "degree", "long_name": "angle of the true pair axis to the tilt axis"}),
        "neck_radius_nm_median_error": (("orientation",), np.array(med_err), {
            "units": "nm", "long_name": "median of measured - true neck radius over the found pairs"}),
        "neck_fill_nm2": (("orientation",), np.array(fill), {
            "units": "nm2", "long_name": "median of r_n,measured^2 - r_n,true^2 over the necks seen in both (the fill K)"}),
        "neck_fill_necks": (("orientation",), np.array(n_necks), {"units": "1", "long_name": "necks neck_fill_nm2 is the median of"}),
        "neck_fill_resolution_nm": (("orientation",), np.array(blur), {
            "units": "nm", "long_name": "Gaussian blur along the pair axis that gives neck_fill_nm2 at the median r_p (NaN if K <= 0)"}),
    }


def _register_centres(measured: np.ndarray, true: np.ndarray, *, gate: float) -> np.ndarray:
    """Translation (nm) taking measured centres onto true ones.

    Every offset ``true_j - measured_i`` is a candidate; the one under which
    most measured centres lie within ``gate`` of a true centre wins (ties: the
    least summed distance), and is refined twice to the mean offset of the
    centres then within ``gate``. NaN if either set is empty.
    """
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


# --------------------------------------------------------------------------- files


class _BinarySeries(Sequence):
    """The ``binary`` of each reconstruction file, read when indexed."""

    def __init__(self, files: list[Path]):
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, t):
        return open_dataset_checked(self.files[t], ["binary"])["binary"].values


def _recon_header(path: Path) -> dict:
    """Grid and time of a reconstruction file, checked (the binary is read later)."""
    ds = open_dataset_checked(path, ["binary", "z", "y", "x"], load=False)
    try:
        dims = ds["binary"].dims
        if dims != _AXES:
            raise InputError(f"{path}: variable binary has dims {dims}; expected (z, y, x)")
        missing = [a for a in ("pt_time_s", "temperature_C") if a not in ds.attrs]
        if missing:
            raise InputError(f"{path}: missing attribute(s) {', '.join(missing)}")
        head = {a: ds[a].values.astype(float) for a in _AXES}
        head["pt_time_s"] = float(ds.attrs["pt_time_s"])
        head["temperature_C"] = float(ds.attrs["temperature_C"])
        head["pixel_size_nm"] = float(ds.attrs.get("pixel_size_nm", np.nan))
    finally:
        ds.close()
    if not np.isfinite(head["pixel_size_nm"]):
        head["pixel_size_nm"] = float(np.diff(head["x"]).mean()) if len(head["x"]) > 1 else np.nan
    return head


def _is_fresh(target: Path, sources: Sequence[Path]) -> bool:
    """Whether ``target`` exists and is newer than every source file."""
    if not target.is_file():
        return False
    stamp = target.stat().st_mtime
    return all(s.stat().st_mtime < stamp for s in sources if s.is_file())


def figure_paths(metrics_path: str | Path) -> tuple[Path, Path]:
    """Paths of the Fig. 8 and Fig. 9(a) PNGs written beside a metrics file."""
    p = Path(metrics_path)
    return p.with_name(f"{p.stem}_fig8.png"), p.with_name(f"{p.stem}_fig9a.png")


def measure_run(
    path: str | Path,
    *,
    out: str | Path | None = None,
    progress: bool = True,
    **options,
) -> Path:
    """Measure a run folder's reconstructions, or one reconstruction file.

    Parameters
    ----------
    path : str or Path
        A run folder (every ``recon/tNN.nc``, written to ``RUNDIR/metrics.nc``)
        or one reconstruction file (its single time, written to ``out``,
        default ``NAME_metrics.nc`` beside it).
    out : str or Path, optional
        Metrics file to write (default as above).
    progress : bool, optional
        Show a progress bar.
    **options
        Passed to :func:`measure_volumes` (``centre``, ``neck_3d_method``,
        ``max_gap_nm``, ``core_radius_nm``, ...).

    Returns
    -------
    Path
        The metrics file. Skipped (not recomputed) when it exists and is newer
        than every reconstruction file; the Fig. 8 and Fig. 9(a) PNGs
        (:func:`figure_paths`) are written beside it when missing or older.

    Raises
    ------
    InputError
        No reconstruction, a file lacking ``binary`` or its time attributes,
        or reconstructions on different grids (one line).
    """
    from ..plots.metrics import plot_neck_vs_distance, plot_trajectories

    path = Path(path)
    if path.is_dir():
        files = sorted((path / "recon").glob("t[0-9][0-9].nc"))
        if not files:
            raise InputError(f"{path}: no reconstruction (recon/tNN.nc) in this folder; run `sinter4d reconstruct` first")
        target = Path(out) if out is not None else path / "metrics.nc"
    elif path.is_file():
        files = [path]
        target = Path(out) if out is not None else path.with_name(f"{path.stem}_metrics.nc")
    else:
        raise InputError(f"{path}: no such file or folder")

    if not _is_fresh(target, files):
        heads = [_recon_header(f) for f in files]
        for f, h in zip(files[1:], heads[1:]):
            for a in _AXES:
                if h[a].shape != heads[0][a].shape or not np.allclose(h[a], heads[0][a]):
                    raise InputError(f"{f}: its {a} grid differs from that of {files[0]}; all reconstructions must share one grid")
        vox = heads[0]["pixel_size_nm"]
        ds = measure_volumes(
            _BinarySeries(files),
            heads[0]["z"],
            heads[0]["y"],
            heads[0]["x"],
            [h["pt_time_s"] for h in heads],
            [h["temperature_C"] for h in heads],
            voxel_size_nm=vox,
            progress=progress,
            **options,
        )
        if path.is_dir():  # time = the step of recon/tNN.nc (NN - 1), as in truth.nc
            ds = ds.assign_coords(time=("time", [int(f.stem[1:]) - 1 for f in files], dict(ds["time"].attrs)))
        ds.attrs["sources"] = json.dumps([str(f) for f in files])
        write_dataset_atomic(ds, target)
    fig8, fig9 = figure_paths(target)
    if not (_is_fresh(fig8, [target]) and _is_fresh(fig9, [target])):
        ds = open_dataset_checked(target, METRIC_NAMES)
        plot_trajectories(ds, fig8)
        plot_neck_vs_distance(ds, fig9)
    return target


def validate_run(run_dir: str | Path, *, progress: bool = True, **options) -> Path:
    """Validate a simulated run: ``RUNDIR/validation.nc`` = metrics - truth.

    Measures the run first when ``metrics.nc`` is missing or older than the
    reconstructions (:func:`measure_run`, with ``options``), computes each
    time's Dice of ``recon/tNN.nc`` ``binary`` against ``tilts/tNN.nc``
    ``true_label`` (registered, :func:`~sinter4d.pipeline.quality.registered_dice`)
    and compares the metrics with ``truth.nc`` (:func:`compare_to_truth`).
    Also writes ``validation_fig8.png``: Fig. 8 of the found pairs with their
    truth dashed.

    Parameters
    ----------
    run_dir : str or Path
        A run folder made by ``sinter4d simulate`` and ``sinter4d reconstruct``.
    progress : bool, optional
        Show progress bars.

    Returns
    -------
    Path
        ``RUNDIR/validation.nc`` (skipped when newer than the metrics, the
        truth and every reconstruction).

    Raises
    ------
    InputError
        Not a run folder, or a file lacking a variable (one line).
    """
    from ..plots.metrics import plot_trajectories

    run = Path(run_dir)
    if not run.is_dir():
        raise InputError(f"{run}: not a run folder")
    truth_file = run / "truth.nc"
    if not truth_file.is_file():
        raise InputError(f"{run}: no truth.nc; validation needs a simulated run")
    metrics_file = measure_run(run, progress=progress, **options)
    recon_files = sorted((run / "recon").glob("t[0-9][0-9].nc"))
    target = run / "validation.nc"
    if _is_fresh(target, [metrics_file, truth_file, *recon_files]):
        return target
    metrics = open_dataset_checked(metrics_file, ["particle_centre_nm", "particle_label", *METRIC_NAMES])
    truth = open_dataset_checked(truth_file, ["pair_particles", "centre_nm", *METRIC_NAMES])
    steps = metrics["time"].values.astype(int)
    if steps.max(initial=-1) >= truth.sizes["time"]:
        raise InputError(f"{metrics_file}: time step {steps.max() + 1} is not in {truth_file}")
    truth = truth.isel(time=steps)
    dice = np.full(len(recon_files), np.nan)
    for t, f in enumerate(tqdm(recon_files, desc="dice", unit="step", disable=not progress)):
        tilt_file = run / "tilts" / f.name
        recon = open_dataset_checked(f, ["binary", "z"])
        tilts = open_dataset_checked(tilt_file, ["true_label", "z"])
        mask = truth_on_grid(tilts["true_label"].values, tilts["z"].values, recon["z"].values)
        dice[t], _ = registered_dice(recon["binary"].values.astype(bool), mask)
    ds = compare_to_truth(metrics, truth, dice=dice)
    ds.attrs["metrics"] = str(metrics_file)
    write_dataset_atomic(ds, target)
    plot_trajectories(metrics_on_true_pairs(metrics, ds), run / "validation_fig8.png", truth=truth)
    return target


def metrics_on_true_pairs(metrics: xr.Dataset, validation: xr.Dataset) -> xr.Dataset:
    """The measured metrics rearranged onto the truth's pairs (NaN where not found).

    Parameters
    ----------
    metrics : xarray.Dataset
        From :func:`measure_volumes`.
    validation : xarray.Dataset
        From :func:`compare_to_truth` on the same metrics (its
        ``measured_pair``).

    Returns
    -------
    xarray.Dataset
        The nine metrics over ``(time, pair)`` with the truth's pair labels,
        so that they can be drawn over, or subtracted from, ``truth.nc``.
    """
    index = {str(p): k for k, p in enumerate(metrics["pair"].values)}
    which = validation["measured_pair"].values
    n_t, n_true = which.shape
    data = {}
    for name in METRIC_NAMES:
        values = metrics[name].values
        out = np.full((n_t, n_true), np.nan)
        for t in range(n_t):
            for j in range(n_true):
                k = index.get(str(which[t, j]))
                if k is not None:
                    out[t, j] = values[t, k]
        data[name] = (("time", "pair"), out, dict(metrics[name].attrs))
    coords = {c: validation[c] for c in ("time", "pt_time_s", "temperature_C", "pair")}
    return xr.Dataset(data, coords=coords)
