"""What-if sweeps: one full run per cell of a grid of settings, on Dask (``sinter4d sweep``).

The sweep spec and its grid are :mod:`sinter4d.experiments.sweep_spec`; the
results on the grid are :mod:`sinter4d.experiments.sweep_dataset`. Here:
each cell runs the stages of :data:`sinter4d.runfolder.SWEEP_CELL_STAGES` in
a Dask task, into its own run folder of the sweep folder
(:class:`sinter4d.runfolder.SweepFolder`): the sweep's record and log, one
run folder per cell with the cell's record (status, stage timings, error and
results) and the worker's log, the results on the grid and their figures
(heatmaps of 2D sweeps, line plots of 1D sweeps).

A cell whose record says ``ok`` (for the same spec) is skipped on a rerun; a
failed cell is retried and resumes at the stage that failed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path

from tqdm.auto import tqdm

from .._cores import available_cores
from ..io.atomic import write_json_atomic
from ..io.netcdf import write_dataset_atomic
from ..runfolder import SWEEP_CELL_STAGES, RunFolder, SweepFolder
from .cluster import NO_WORKER_TIMEOUT_S, WORKER_ENV, as_finished, dask_client, limit_threads, start_client
from .record import utc_timestamp
from .spec import ExperimentSpec, parse_spec
from .sweep_dataset import cell_results, read_cell_record, sweep_dataset
from .sweep_spec import DERIVED_KEYS, Cell, SweepSpec, load_sweep_spec, parse_sweep_spec

__all__ = [
    "CELL_STAGES",
    "DERIVED_KEYS",
    "NO_WORKER_TIMEOUT_S",
    "WORKER_ENV",
    "Cell",
    "SweepSpec",
    "cell_results",
    "load_sweep_spec",
    "parse_sweep_spec",
    "read_cell_record",
    "cells_to_run",
    "limit_threads",
    "run_cell",
    "run_cells",
    "run_sweep",
    "start_client",
    "sweep_dataset",
]

log = logging.getLogger(__name__)

#: The stages every cell runs (the report is left out).
CELL_STAGES = SWEEP_CELL_STAGES

# ---------------------------------------------------------------------------------------------
# one cell (runs in a Dask worker)


@contextmanager
def _cell_logging(run: RunFolder):
    """Keep a cell's logging off the worker's console: the package's records go to the
    cell's run log only (run_experiment's handler), other libraries' warnings (emcee,
    corner, numpy) to the cell's worker log."""
    run.path.mkdir(parents=True, exist_ok=True)
    root, pkg = logging.getLogger(), logging.getLogger("sinter4d")
    handler = logging.FileHandler(SweepFolder.worker_log(run))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.WARNING)
    saved = (root.handlers[:], pkg.propagate)
    root.handlers[:] = [handler]
    pkg.propagate = False
    logging.captureWarnings(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            yield
    finally:
        logging.captureWarnings(False)
        root.handlers[:], pkg.propagate = saved
        handler.close()


def run_cell(spec_doc: dict, cell_dir: str, spec_path: str, name: str, settings: dict) -> dict:
    """Run one cell (simulate to fit) and write its record; never raises.

    Parameters
    ----------
    spec_doc : dict
        The cell's experiment spec document.
    cell_dir : str
        The cell's run folder.
    spec_path : str
        The base experiment spec (its relative names: model card, fit spec).
    name : str
        The cell's name.
    settings : dict
        Swept key -> value.

    Returns
    -------
    dict
        The cell's record: ``status`` (``ok``/``failed``),
        ``failed_stage``, ``error``, ``stages`` (status, seconds, error),
        ``run_seconds`` (sum of the stages' wall times, earlier invocations
        included), ``results`` (:func:`cell_results`) and ``worker``.
    """
    from .run import run_experiment

    t0 = time.perf_counter()
    run = RunFolder(cell_dir)
    earlier = _earlier_stages(run)
    record = {"cell": name, "settings": settings, "status": "failed", "failed_stage": "setup", "error": None,
              "started": utc_timestamp(), "stages": {}, "results": None}
    try:
        record["worker"] = {"host": socket.gethostname(), "pid": os.getpid(), **limit_threads()}
        spec = parse_spec(spec_doc, source=f"cell {name}")
        record["spec"] = spec.to_json()
        with _cell_logging(run):
            result = run_experiment(spec, run.path, spec_path=spec_path, stages=CELL_STAGES, progress=False,
                                    raise_errors=False, n_jobs=1, mrc=())
        record["stages"] = _carry_seconds(result.stages, earlier)
        if result.failed:
            record.update(failed_stage=result.failed, error=result.stages[result.failed]["error"])
        else:
            record["failed_stage"] = "results"
            record["results"] = cell_results(run.path)
            record.update(status="ok", failed_stage=None)
    except Exception as exc:  # recorded in the cell's record; the sweep goes on with the other cells
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()
    record["run_seconds"] = round(sum(s.get("seconds", 0.0) for s in record["stages"].values()), 2)
    record["wall_seconds"] = round(time.perf_counter() - t0, 2)
    record["finished"] = utc_timestamp()
    write_json_atomic(SweepFolder.cell_record(run), record)
    return record


def _earlier_stages(run: RunFolder) -> dict:
    """Stage entries of earlier invocations: the cell's record, else its run's record."""
    stages = dict((read_cell_record(run.path) or {}).get("stages") or {})
    try:
        recorded = json.loads(run.record.read_text()).get("stages", {})
    except (OSError, ValueError):
        recorded = {}
    for stage, entry in recorded.items():
        if stages.get(stage, {}).get("status") != "done":
            stages[stage] = entry
    return stages


def _carry_seconds(stages: dict, earlier: dict) -> dict:
    """A skipped stage keeps the wall time of the invocation that did it."""
    out = {}
    for stage, entry in stages.items():
        entry = dict(entry)
        before = earlier.get(stage, {})
        if entry["status"] == "skipped" and before.get("status") in ("done", "skipped"):
            entry["seconds"] = before.get("seconds", 0.0)
        out[stage] = entry
    return out


# ---------------------------------------------------------------------------------------------
# the sweep


def _cost(spec: ExperimentSpec) -> float:
    """Relative cost of a cell (images x pixels), to start the longest cells first."""
    acq = spec.acquisition
    return len(acq.angles_deg) * acq.output_pixels**2 * len(spec.heating.imaged)


def run_sweep(
    spec_path: str | Path,
    out_dir: str | Path,
    *,
    scheduler: str | None = None,
    force: bool = False,
    progress: bool = True,
    n_workers: int | None = None,
) -> Path:
    """Run every cell of a sweep spec on Dask and collect the results.

    Parameters
    ----------
    spec_path : str or Path
        Sweep spec (TOML; layout in the module docstring and ``experiments/README.md``).
    out_dir : str or Path
        Sweep folder (:class:`~sinter4d.runfolder.SweepFolder`): one run
        folder per cell, the results on the grid, their figures.
    scheduler : str, optional
        Address of a running Dask scheduler (its workers must see ``out_dir``;
        start them with one thread each and ``NUMBA_NUM_THREADS=1``). Default:
        a LocalCluster of one single-threaded process per core.
    force : bool, optional
        Rerun cells that already finished (their folders are removed first).
    progress : bool, optional
        Show a progress bar over cells.
    n_workers : int, optional
        Worker processes of the LocalCluster (default: one per core, at most
        one per cell to run); ignored with ``scheduler``.

    Returns
    -------
    Path
        The results on the grid (``SweepFolder(out_dir).dataset``).

    Raises
    ------
    SpecError
        Invalid sweep spec, base spec or fit spec (one line; nothing written).
    """
    t_start = time.perf_counter()
    sweep = load_sweep_spec(spec_path)
    cells = sweep.cells()
    folder = SweepFolder(out_dir)
    folder.path.mkdir(parents=True, exist_ok=True)
    with _sweep_logging(folder.log):
        record = _sweep_record(sweep, cells)
        write_json_atomic(folder.record, record)
        todo = cells_to_run(cells, folder, force=force)
        log.info("sweep %s (%s): %d cells, %d to run, %d done before%s", sweep.name, spec_path, len(cells),
                 len(todo), len(cells) - len(todo) - sum(c.spec is None for c in cells), " (force)" if force else "")
        stats = run_cells(todo, cells, folder, label=f"sweep {sweep.name}", spec_path=sweep.base_path,
                          scheduler=scheduler, progress=progress, n_workers=n_workers or available_cores())
        ds = sweep_dataset(sweep, cells, folder.path)
        target = write_dataset_atomic(ds, folder.dataset)
        from ..figures.sweep import plot_sweep

        pngs = plot_sweep(ds, folder.path)
        record.update(finished=utc_timestamp(), seconds=round(time.perf_counter() - t_start, 1), **stats,
                      status={s: int((ds["status"].values == s).sum()) for s in ("ok", "failed")},
                      figures=[p.name for p in pngs])
        write_json_atomic(folder.record, record)
        log.info("sweep %s: %d ok, %d failed in %.1f s; %s", sweep.name, record["status"]["ok"],
                 record["status"]["failed"], record["seconds"], target)
        return target


class _Forward(logging.Handler):
    """Pass records at or above ``threshold`` on to the package logger's handlers (the console)."""

    def __init__(self, threshold: int):
        super().__init__()
        self.threshold = threshold

    def emit(self, record):
        if record.levelno >= self.threshold:
            logging.getLogger("sinter4d").handle(record)


@contextmanager
def _sweep_logging(path: Path):
    """Everything the sweep logs goes to ``path``; the console shows what it showed before
    (warnings, or INFO with ``-v``)."""
    logger = logging.getLogger(__name__)
    console = logger.getEffectiveLevel()
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    forward = _Forward(console)
    saved = (logger.level, logger.propagate)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    logger.addHandler(forward)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(forward)
        logger.level, logger.propagate = saved
        handler.close()


def _sweep_record(sweep: SweepSpec, cells: list[Cell]) -> dict:
    from .record import code_record, package_versions

    return {
        "spec_file": str(sweep.source.resolve()), "name": sweep.name, "description": sweep.description,
        "base": str(sweep.base_path), "base_spec": json.loads(sweep.base_spec.to_json()),
        "grid": {k: list(v) for k, v in zip(sweep.keys, sweep.values)}, "dims": list(sweep.dims),
        "cells": [c.name for c in cells], "stages": list(CELL_STAGES), "started": utc_timestamp(), "finished": None,
        "versions": package_versions(), "code": code_record(),
        "host": {"hostname": socket.gethostname(), "cpus": available_cores()},
    }


def cells_to_run(cells: list[Cell], folder: SweepFolder, *, force: bool) -> list[Cell]:
    """Cells to submit; invalid cells (or folders holding a run of another spec) get a failed
    record here; finished ones (record ``ok`` for the same spec) are skipped."""
    from .simulate import same_spec

    todo = []
    for cell in cells:
        run = folder.cell(cell.name)
        if force and run.path.exists():
            shutil.rmtree(run.path)
        error = cell.error
        if error is None and not same_spec(run.spec, cell.spec):
            error = (f"{run.path}: holds a run of another spec (the base or the sweep spec changed); "
                     "rerun with --force to redo the cell, or sweep into another --out")
        if error is not None:
            log.warning("cell %s: %s", cell.name, error)
            write_json_atomic(SweepFolder.cell_record(run), {
                "cell": cell.name, "settings": cell.settings, "status": "failed", "failed_stage": "spec",
                "error": error, "stages": {}, "results": None, "run_seconds": 0.0, "finished": utc_timestamp(),
            })
            continue
        done = read_cell_record(run.path)
        if done and done.get("status") == "ok" and done.get("spec") == cell.spec.to_json():
            continue
        todo.append(cell)
    return todo


def run_cells(todo: list[Cell], cells: list[Cell], folder: SweepFolder, *, label: str, spec_path: str | Path,
              scheduler: str | None, progress: bool, n_workers: int) -> dict:
    """Run cells as Dask tasks (:func:`run_cell`) into ``folder``; gather them as they finish.

    ``todo`` are the cells to run (:func:`cells_to_run`), ``cells`` all of
    them (the bar counts the others as done); ``label`` names the bar,
    ``spec_path`` resolves the cells' relative names (model card). On
    ``scheduler``, or on a LocalCluster of ``n_workers`` one-thread processes.
    Returns the counts ``cells_run``, ``cells_skipped`` and ``workers``.
    """
    n_done = len(cells) - len(todo)
    counts = {"ok": 0, "failed": 0}
    names = {c.name for c in todo}
    for cell in cells:
        if cell.name not in names:
            ok = (read_cell_record(folder.cell(cell.name).path) or {}).get("status") == "ok"
            counts["ok" if ok else "failed"] += 1
    stats = {"cells_run": len(todo), "cells_skipped": n_done}
    bar = tqdm(total=len(cells), initial=n_done, desc=label, unit="cell", disable=not progress)
    bar.set_postfix(counts)
    if not todo:
        bar.close()
        return stats
    futures = {}
    try:
        with dask_client(scheduler, min(n_workers, len(todo))) as client:
            stats["workers"] = len(client.scheduler_info().get("workers", {}))
            log.info("dask: %s, %d workers", "scheduler " + scheduler if scheduler else "LocalCluster", stats["workers"])
            # longest cells first (submission order: Dask hands the first tasks to workers at once)
            for rank, cell in enumerate(sorted(todo, key=lambda c: -_cost(c.spec))):
                fut = client.submit(run_cell, cell.spec.model_dump(mode="json"), str(folder.cell(cell.name).path),
                                    str(spec_path), cell.name, cell.settings, pure=False, priority=-rank,
                                    key=f"sweep-cell-{cell.name}-{os.urandom(4).hex()}")
                futures[fut] = cell
            try:
                for fut, lost in as_finished(client, futures):
                    if lost is not None:  # no worker left to run it
                        _record_lost(futures[fut], folder, counts, bar, lost)
                        continue
                    try:
                        rec = fut.result()
                    except Exception as exc:  # the worker died (or the task could not run): record it
                        _record_lost(futures[fut], folder, counts, bar, exc)
                        continue
                    _count(rec, counts, bar)
            finally:
                client.cancel(list(futures))
    finally:
        bar.close()
    return stats


def _count(rec: dict, counts: dict, bar) -> None:
    counts[rec["status"]] += 1
    if rec["status"] == "ok":
        log.info("cell %s: ok in %.1f s (stages %.1f s)", rec["cell"], rec.get("wall_seconds", 0.0),
                 rec["run_seconds"])
    else:
        log.warning("cell %s: failed at %s: %s", rec["cell"], rec["failed_stage"], rec["error"])
    bar.update(1)
    bar.set_postfix(counts)


def _record_lost(cell: Cell, folder: SweepFolder, counts: dict, bar, exc: BaseException) -> None:
    """A cell whose task did not return: failed at stage ``worker`` with ``exc``."""
    rec = {"cell": cell.name, "settings": cell.settings, "status": "failed", "failed_stage": "worker",
           "error": f"{type(exc).__name__}: {exc}", "stages": {}, "results": None, "run_seconds": 0.0,
           "finished": utc_timestamp()}
    write_json_atomic(SweepFolder.cell_record(folder.cell(cell.name)), rec)
    _count(rec, counts, bar)
