"""The validate stage at the edge: a simulated run's metrics against its truth -> ``validation.nc``.

The computing is :mod:`sinter4d.validation` (Datasets in, a Dataset out);
this module reads the run folder (file names from
:class:`sinter4d.runfolder.RunFolder`), writes ``validation.nc`` and Fig. 8
with the truth dashed, atomically, and skips them when newer than every file
they are made from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..errors import InputError
from ..io.netcdf import open_dataset_checked, write_dataset_atomic
from ..runfolder import RunFolder, step_index
from ..schema import PAIR_METRICS
from ..validation import compare_to_truth, metrics_on_true_pairs, truth_at_metrics, truth_on_grid, validation_dice


def validate_run(run_dir: str | Path, *, progress: bool = True, **options) -> Path:
    """Validate a simulated run: ``RUNDIR/validation.nc`` = metrics - truth.

    Measures the run first when ``metrics.nc`` is missing or older than the
    reconstructions (:func:`~sinter4d.experiments.measure.measure_run`, with
    ``options``), computes each time's Dice of ``recon/tNN.nc`` ``binary``
    against ``tilts/tNN.nc`` ``true_label`` (registered,
    :func:`~sinter4d.validation.validation_dice`) and compares the metrics
    with ``truth.nc`` (:func:`~sinter4d.validation.compare_to_truth`). Also
    writes ``validation_fig8.png``: Fig. 8 of the found pairs with their truth
    dashed.

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
    from ..figures.metrics import plot_trajectories
    from .measure import _is_fresh, measure_run

    run = RunFolder(run_dir)
    if not run.path.is_dir():
        raise InputError(f"{run.path}: not a run folder")
    truth_file = run.truth
    if not truth_file.is_file():
        raise InputError(f"{run.path}: no {truth_file.name}; validation needs a simulated run")
    metrics_file = measure_run(run.path, progress=progress, **options)
    recon_files = run.recon_files()
    target = run.validation
    if _is_fresh(target, [metrics_file, truth_file, *recon_files]):
        return target
    metrics = open_dataset_checked(metrics_file, ["particle_centre_nm", "particle_label", *PAIR_METRICS])
    truth = open_dataset_checked(truth_file, ["pair_particles", "centre_nm", *PAIR_METRICS])
    try:
        truth = truth_at_metrics(truth, metrics)
    except InputError as exc:
        raise InputError(f"{metrics_file}: {exc} ({truth_file})") from None
    dice = np.full(len(recon_files), np.nan)
    for t, f in enumerate(tqdm(recon_files, desc="dice", unit="step", disable=not progress)):
        recon = open_dataset_checked(f, ["binary", "z"])
        tilts = open_dataset_checked(run.tilt(step_index(f)), ["true_label", "z"])
        mask = truth_on_grid(tilts["true_label"].values, tilts["z"].values, recon["z"].values)
        voxel = float(recon["z"].values[1] - recon["z"].values[0])
        dice[t] = validation_dice(recon["binary"].values.astype(bool), mask, voxel_size_nm=voxel)
    ds = compare_to_truth(metrics, truth, dice=dice)
    ds.attrs["metrics"] = str(metrics_file)
    write_dataset_atomic(ds, target)
    plot_trajectories(metrics_on_true_pairs(metrics, ds), run.validation_fig8, truth=truth)
    return target
