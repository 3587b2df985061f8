"""The measure stage at the edge: a run folder's reconstructions -> ``metrics.nc`` and its figures.

The computing is :func:`sinter4d.measurement.measure_volumes` (arrays in, a
Dataset out); this module reads the reconstructions and writes the metrics
file and Fig. 8 and 9(a) beside it (file names from
:class:`sinter4d.runfolder.RunFolder`), atomically, and skips them when newer
than every file they are made from. The validate stage is
:mod:`sinter4d.experiments.validate`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..checks import check_file
from ..errors import InputError
from ..io.netcdf import open_dataset_checked, write_dataset_atomic
from ..io.trajectories import write_trajectories_csv
from ..measurement import measure_volumes
from ..runfolder import RunFolder, step_index
from ..schema import PAIR_METRICS

_AXES = ("z", "y", "x")


class _BinarySeries(Sequence):
    """The ``binary`` of each reconstruction file, read when indexed."""

    def __init__(self, files: list[Path]):
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, t):
        return open_dataset_checked(self.files[t], ["binary"])["binary"].values


#: What a metrics file of one reconstruction without time attributes says of its time.
UNTIMED_NOTE = ("{name} has no pt_time_s/temperature_C (not a step of a run): measured as one step at "
                "pt_time_s = 0 s, temperature_C unknown (NaN)")


def _recon_header(path: Path, *, untimed_ok: bool = False) -> dict:
    """Grid and time of a reconstruction file, checked (the binary is read later).

    ``untimed_ok``: a file without ``pt_time_s``/``temperature_C`` is one
    step at 0 s and an unknown temperature (``head["time_note"]`` says so);
    else it is an error.
    """
    ds = open_dataset_checked(path, ["binary", "z", "y", "x"], load=False)
    try:
        dims = ds["binary"].dims
        if dims != _AXES:
            raise InputError(f"{path}: variable binary has dims {dims}; expected (z, y, x)")
        missing = [a for a in ("pt_time_s", "temperature_C") if a not in ds.attrs]
        if missing and not untimed_ok:
            raise InputError(f"{path}: missing attribute(s) {', '.join(missing)}")
        head = {a: ds[a].values.astype(float) for a in _AXES}
        head["pt_time_s"] = float(ds.attrs.get("pt_time_s", 0.0)) if not missing else 0.0
        head["temperature_C"] = float(ds.attrs.get("temperature_C", np.nan)) if not missing else np.nan
        if missing:
            head["time_note"] = UNTIMED_NOTE.format(name=path.name)
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
    """Paths of the Fig. 8 and Fig. 9(a) PNGs written beside a metrics file.

    :attr:`RunFolder.metrics_fig8` and :attr:`RunFolder.metrics_fig9a` for a
    run folder's metrics file; ``NAME_fig8.png`` and ``NAME_fig9a.png`` beside
    any other ``NAME.nc``.
    """
    p = Path(metrics_path)
    run = RunFolder(p.parent)
    if p.name == run.metrics.name:
        return run.metrics_fig8, run.metrics_fig9a
    return p.with_name(f"{p.stem}_fig8.png"), p.with_name(f"{p.stem}_fig9a.png")


def table_path(metrics_path: str | Path) -> Path:
    """Path of the trajectory table (CSV) written beside a metrics file.

    :attr:`RunFolder.metrics_csv` for a run folder's metrics file;
    ``NAME.csv`` beside any other ``NAME.nc``.
    """
    p = Path(metrics_path)
    run = RunFolder(p.parent)
    return run.metrics_csv if p.name == run.metrics.name else p.with_suffix(".csv")


def measure_run(
    path: str | Path,
    *,
    out: str | Path | None = None,
    progress: bool = True,
    calibration: str | Path | None = None,
    **options,
) -> Path:
    """Measure a run folder's reconstructions, or one reconstruction file.

    Parameters
    ----------
    path : str or Path
        A run folder (every ``recon/tNN.nc``, written to ``RUNDIR/metrics.nc``)
        or one reconstruction file (its single time, written to ``out``,
        default ``NAME_metrics.nc`` beside it). A file without time
        attributes (a lone imported series) is measured as one step at
        ``pt_time_s`` = 0 with ``temperature_C`` NaN, and the metrics file's
        attribute ``time_note`` says so.
    out : str or Path, optional
        Metrics file to write (default as above).
    progress : bool, optional
        Show a progress bar.
    calibration : str or Path, optional
        A ``calibration.nc`` (``sinter4d calibrate``): the metrics file then
        also holds the calibrated estimates of the true neck radius and
        distance with their s.d. (:func:`sinter4d.calibration.calibrate_metrics`),
        redone at every call (they are cheap).
    **options
        Passed to :func:`measure_volumes` (``centre``, ``neck_3d_method``,
        ``max_gap_nm``, ``core_radius_nm``, ...).

    Returns
    -------
    Path
        The metrics file. Skipped (not recomputed) when it exists and is newer
        than every reconstruction file; the trajectory table
        (:func:`table_path`, the layout ``sinter4d fit`` reads) and the Fig. 8
        and Fig. 9(a) PNGs (:func:`figure_paths`) are written beside it when
        missing or older.

    Raises
    ------
    InputError
        No reconstruction, a file lacking ``binary`` (or, in a run folder,
        its time attributes), or reconstructions on different grids (one
        line).
    """
    from ..figures.metrics import plot_neck_vs_distance, plot_trajectories

    path = Path(path)
    calibrated = None
    if calibration is not None:
        calibrated = open_dataset_checked(check_file(calibration), ["coefficient", "coefficient_covariance"])
    if path.is_dir():
        run = RunFolder(path)
        files = run.recon_files()
        if not files:
            raise InputError(f"{path}: no reconstruction (recon/tNN.nc) in this folder; run `sinter4d reconstruct` first")
        target = Path(out) if out is not None else run.metrics
    elif path.is_file():
        files = [path]
        target = Path(out) if out is not None else path.with_name(f"{path.stem}_{RunFolder(path.parent).metrics.name}")
    else:
        raise InputError(f"{path}: no such file or folder")

    ds = None
    if not _is_fresh(target, files):
        heads = [_recon_header(f, untimed_ok=not path.is_dir()) for f in files]
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
            ds = ds.assign_coords(time=("time", [step_index(f) for f in files], dict(ds["time"].attrs)))
        ds.attrs["sources"] = json.dumps([str(f) for f in files])
        if "time_note" in heads[0]:
            ds.attrs["time_note"] = heads[0]["time_note"]
    if calibrated is not None:  # applied to the metrics just measured, or to those already written
        from ..calibration import calibrate_metrics

        ds = calibrate_metrics(open_dataset_checked(target, list(PAIR_METRICS)) if ds is None else ds, calibrated)
    if ds is not None:
        write_dataset_atomic(ds, target)
    table = table_path(target)
    if not _is_fresh(table, [target]):
        write_trajectories_csv(open_dataset_checked(target, ["neck_radius_nm", "pt_time_s"]), table)
    fig8, fig9 = figure_paths(target)
    if not (_is_fresh(fig8, [target]) and _is_fresh(fig9, [target])):
        ds = open_dataset_checked(target, list(PAIR_METRICS))
        plot_trajectories(ds, fig8)
        plot_neck_vs_distance(ds, fig9)
    return target

