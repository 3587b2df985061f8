"""What-if sweeps: one full run per cell of a grid of settings, on Dask (``sinter4d sweep``).

A sweep spec (``experiments/*_sweep.toml``, layout in ``experiments/README.md``)::

    name = "tilt_sweep"
    description = "..."
    base = "sweep_base.toml"                      # an experiment spec, relative to this file

    [sweep]
    "acquisition.tilt_range_deg" = [30, 50, 70]   # derived: tilt_min_deg = -v, tilt_max_deg = +v
    "acquisition.tilt_step_deg" = [1, 2, 5]

Each ``[sweep]`` key is a dotted key of the experiment spec (``section.key``,
``sintering.parameters.NAME``, ``seed``) or a derived key
(:data:`DERIVED_KEYS`); the grid is the Cartesian product of the lists, one
dimension per key, named by the key's last part. A cell's spec is the base
spec with the cell's values put in, validated like any experiment spec. Every
cell keeps the base seed: the same specimen and sintering truth in every
cell, so that cells differ only in the swept settings.

Each value is checked on its own when the sweep spec is read (a wrong type or
a value out of range is a :class:`~sinter4d.errors.SpecError` and nothing is
written); a combination that is invalid (a tilt step not dividing the tilt
range) fails its cell only.

The sweep folder::

    DIR/sweep.json              sweep spec, base spec, grid, versions, timings
    DIR/sweep.log               what the sweep did (cells submitted, finished, failed)
    DIR/cells/<cell>/           one run folder per cell (simulate to fit; no report)
    DIR/cells/<cell>/cell.json  the cell's status, stage timings, error and results
    DIR/sweep.nc                the results on the grid (:func:`sweep_dataset`)
    DIR/heatmap_<var>.png       2D sweeps; DIR/sweep_<dim>.png for 1D sweeps

A cell whose ``cell.json`` says ``ok`` (for the same spec) is skipped on a
rerun; a failed cell is retried and resumes at the stage that failed.
"""

from __future__ import annotations

import copy
import csv
import itertools
import json
import logging
import math
import os
import re
import shutil
import socket
import time
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import xarray as xr
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from tqdm.auto import tqdm

from .._cores import available_cores
from ..errors import SpecError
from ..io.atomic import write_json_atomic
from ..io.netcdf import open_dataset_checked, write_dataset_atomic
from ..io.toml import read_toml
from ..sintering.cards import SpecReader
from .run import utc_timestamp
from .spec import ExperimentSpec, parse_spec

log = logging.getLogger(__name__)

#: The stages every cell runs (the report is left out).
CELL_STAGES = ("simulate", "reconstruct", "measure", "validate", "fit")

#: Keys a sweep may set that are not spec keys: key -> what it means.
DERIVED_KEYS = {
    "acquisition.tilt_range_deg": "symmetric tilt range: tilt_min_deg = -v, tilt_max_deg = +v (0 < v <= 90)",
}

#: Environment of the worker processes: one thread per cell, so that n cells on n cores
#: do not oversubscribe them (numba reads NUMBA_NUM_THREADS when it is first imported).
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

#: Seconds without any Dask worker after which the cells still pending are failed.
NO_WORKER_TIMEOUT_S = 120.0

_TOP_KEYS = ("name", "description", "base", "sweep")
_NOT_SWEPT = ("name", "description")

# units and long names of the settings most often swept (others: units from the key's suffix)
_SETTINGS = {
    "dose_e_per_nm2": ("e/nm^2", "electron dose per tilt series"),
    "tilt_range_deg": ("degree", "maximum tilt angle (tilts from -v to +v)"),
    "tilt_step_deg": ("degree", "tilt step"),
    "tilt_min_deg": ("degree", "lowest tilt angle"),
    "tilt_max_deg": ("degree", "highest tilt angle"),
    "pixel_size_nm": ("nm", "microscope pixel size (before binning)"),
    "bin": ("1", "binning (bin x bin microscope pixels per stored pixel)"),
    "image_pixels": ("1", "image edge before binning (pixels)"),
    "probe_current_pA": ("pA", "probe current"),
    "dwell_time_ns": ("ns", "dwell time per pixel"),
    "iterations": ("1", "reconstruction iterations"),
    "seed": ("1", "seed of the experiment"),
}
_SUFFIX_UNITS = (("_e_per_nm2", "e/nm^2"), ("_deg", "degree"), ("_nm", "nm"), ("_pA", "pA"), ("_ns", "ns"),
                 ("_kV", "kV"), ("_px", "pixel"), ("_s", "s"), ("_C", "degC"))

_PAIR_NAMES = {
    "pairs_true": "true pairs in the specimen",
    "pairs_found": "true pairs matched by a measured pair at some time step",
    "pairs_missed": "true pairs never matched",
    "pairs_spurious": "measured pairs never matching a true pair",
}


# ---------------------------------------------------------------------------------------------
# the sweep spec


@dataclass(frozen=True)
class Cell:
    """One cell of a sweep grid.

    Attributes
    ----------
    name : str
        Folder name under ``DIR/cells`` (``dim-value`` joined by ``__``).
    index : tuple of int
        Position on the grid.
    settings : dict
        Swept key -> value.
    doc : dict
        The cell's experiment spec document (base with the values put in).
    spec : ExperimentSpec or None
        The validated spec; None when the combination is invalid.
    error : str or None
        Why the spec is invalid.
    """

    name: str
    index: tuple[int, ...]
    settings: dict
    doc: dict
    spec: ExperimentSpec | None
    error: str | None


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec (:func:`load_sweep_spec`)."""

    source: Path
    name: str
    description: str
    base_path: Path
    base_doc: dict
    base_spec: ExperimentSpec
    keys: tuple[str, ...]
    values: tuple[tuple, ...]

    @property
    def dims(self) -> tuple[str, ...]:
        """Dimension names of the grid (last part of each key)."""
        return tuple(k.rsplit(".", 1)[-1] for k in self.keys)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.values)

    def cells(self) -> list[Cell]:
        """The grid's cells in C order, each with its spec validated (or its error)."""
        out = []
        for index in itertools.product(*(range(n) for n in self.shape)):
            settings = {k: self.values[d][i] for d, (k, i) in enumerate(zip(self.keys, index))}
            name = "__".join(f"{dim}-{_format_value(v)}" for dim, v in zip(self.dims, settings.values()))
            doc = copy.deepcopy(self.base_doc)
            for key, value in settings.items():
                _put(doc, key, value)
            doc["name"] = f"{self.base_spec.name}[{name}]"
            try:
                spec, error = parse_spec(doc, source=f"{self.source} [cell {name}]"), None
            except SpecError as exc:
                spec, error = None, str(exc)
            out.append(Cell(name, index, settings, doc, spec, error))
        return out


def _format_value(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    return re.sub(r"[^A-Za-z0-9.+-]", "_", value)


def _put(doc: dict, key: str, value) -> None:
    """Set a dotted key (or a derived key) in a spec document."""
    if key == "acquisition.tilt_range_deg":
        acq = doc.setdefault("acquisition", {})
        acq["tilt_min_deg"], acq["tilt_max_deg"] = -float(value), float(value)
        return
    *parents, last = key.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[last] = value


def _flatten(table: dict, prefix: str = "") -> dict:
    """``{"a": {"b": [..]}}`` -> ``{"a.b": [..]}`` (TOML's unquoted dotted keys make tables)."""
    out = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def _field_type(info) -> TypeAdapter:
    """A validator of one pydantic field's values (its type and constraints)."""
    return TypeAdapter(Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation)


def _setting_type(key: str) -> TypeAdapter | str:
    """A validator of one value of ``key``, or a message saying why ``key`` cannot be swept."""
    if key in DERIVED_KEYS:
        return TypeAdapter(Annotated[float, Field(gt=0.0, le=90.0)])
    parts = key.split(".")
    if len(parts) == 3 and parts[:2] == ["sintering", "parameters"]:
        return TypeAdapter(float)
    fields = ExperimentSpec.model_fields
    first = fields.get(parts[0])
    if first is None or parts[0] in _NOT_SWEPT:
        return "unknown setting (a dotted experiment-spec key such as acquisition.dose_e_per_nm2)"
    section = first.annotation
    is_section = isinstance(section, type) and issubclass(section, BaseModel)
    if len(parts) == 1:
        if is_section:
            return f"is a section; name one of its keys ({parts[0]}.{next(iter(section.model_fields))}, ...)"
        return _field_type(first)
    if len(parts) == 2 and is_section and parts[1] in section.model_fields:
        return _field_type(section.model_fields[parts[1]])
    return "unknown setting (a dotted experiment-spec key such as acquisition.dose_e_per_nm2)"


def parse_sweep_spec(doc: dict, *, source: str | Path) -> SweepSpec:
    """Validate a sweep spec given as a dict (its ``base`` is read relative to ``source``).

    Raises
    ------
    SpecError
        One line ``"<source>: <key>: <what is wrong>"``; also the base spec's
        and its fit spec's errors.
    """
    from .run import fit_spec_for_run

    source = Path(source)
    r = SpecReader(source)
    r.table(doc, "", _TOP_KEYS)
    for key in ("base", "sweep"):
        if key not in doc:
            r.fail(key, "missing key")
    for key in ("name", "description", "base"):
        if key in doc and not isinstance(doc[key], str):
            r.fail(key, f"must be a string (got {doc[key]!r})")
    if not doc["base"].strip():
        r.fail("base", "must name an experiment spec (e.g. \"sweep_base.toml\")")
    base_path = (source.resolve().parent / doc["base"]).resolve()
    if not base_path.is_file():
        r.fail("base", f"no such experiment spec {base_path}")
    base_doc = read_toml(base_path)
    base_spec = parse_spec(base_doc, source=base_path)
    if not isinstance(doc["sweep"], dict):
        r.fail("sweep", f"must be a table of setting = [values], got {type(doc['sweep']).__name__}")
    table = _flatten(doc["sweep"])
    if not table:
        r.fail("sweep", "names no setting (add e.g. \"acquisition.dose_e_per_nm2\" = [25, 250, 2500])")
    keys, values, dims = [], [], {}
    for key, vals in table.items():
        where = f"sweep.{key}"
        check = _setting_type(key)
        if isinstance(check, str):
            r.fail(where, check)
        if not isinstance(vals, list) or not vals:
            r.fail(where, f"must be a non-empty list of values (got {vals!r})")
        kinds = set()
        for i, v in enumerate(vals):
            if not isinstance(v, (bool, int, float, str)):
                r.fail(f"{where}[{i}]", f"must be a number, a string or a boolean (got {v!r})")
            if isinstance(v, float) and not math.isfinite(v):
                r.fail(f"{where}[{i}]", f"must be finite (got {v})")
            try:
                check.validate_python(v, strict=True)  # strict: "25" is not a dose, true is not a count
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                r.fail(f"{where}[{i}]", f"{err['msg'].removeprefix('Value error, ')} (got {v!r})")
            kinds.add("bool" if isinstance(v, bool) else "number" if isinstance(v, (int, float)) else "str")
        if len(kinds) > 1:
            r.fail(where, f"values must all be of one kind (got {', '.join(sorted(kinds))})")
        if len({_format_value(v) for v in vals}) != len(vals):
            r.fail(where, f"values repeat (got {vals!r})")
        dim = key.rsplit(".", 1)[-1]
        if dim in dims:
            r.fail(where, f"sweeps the same name {dim!r} as {dims[dim]} (one dimension per name)")
        dims[dim] = where
        keys.append(key)
        values.append(tuple(vals))
    if "acquisition.tilt_range_deg" in keys:
        clash = [k for k in ("acquisition.tilt_min_deg", "acquisition.tilt_max_deg") if k in keys]
        if clash:
            r.fail(f"sweep.{clash[0]}", "cannot be swept with acquisition.tilt_range_deg, which sets it")
    fit_spec_for_run(base_spec, base_path)  # a bad [fit] section fails the sweep now, not every cell
    return SweepSpec(source, doc.get("name", source.stem), doc.get("description", ""), base_path, base_doc,
                     base_spec, tuple(keys), tuple(values))


def load_sweep_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec file (see :func:`parse_sweep_spec`)."""
    return parse_sweep_spec(read_toml(path), source=path)


# ---------------------------------------------------------------------------------------------
# one cell (runs in a Dask worker)


def read_cell_record(cell_dir: str | Path) -> dict | None:
    """A cell's ``cell.json``, or None when missing or unreadable."""
    path = Path(cell_dir) / "cell.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _limit_threads() -> dict:
    """One thread per cell in this worker; what numba ended up with (recorded in cell.json).

    The environment only reaches libraries not loaded yet: a LocalCluster sets
    it before the worker starts (:data:`WORKER_ENV`); on a cluster of your own,
    ``numba.set_num_threads(1)`` still caps numba's parallel loops.
    """
    os.environ.update(WORKER_ENV)
    import numba

    numba.set_num_threads(1)
    return {"numba_pool_threads": int(numba.config.NUMBA_NUM_THREADS), "numba_threads": int(numba.get_num_threads())}


@contextmanager
def _cell_logging(cell_dir: Path):
    """Keep a cell's logging off the worker's console: the package's records go to the
    cell's ``run.log`` only (run_experiment's handler), other libraries' warnings (emcee,
    corner, numpy) to ``worker.log``."""
    cell_dir.mkdir(parents=True, exist_ok=True)
    root, pkg = logging.getLogger(), logging.getLogger("sinter4d")
    handler = logging.FileHandler(cell_dir / "worker.log")
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
    """Run one cell (simulate to fit) and write its ``cell.json``; never raises.

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
        The record written to ``cell.json``: ``status`` (``ok``/``failed``),
        ``failed_stage``, ``error``, ``stages`` (status, seconds, error),
        ``run_seconds`` (sum of the stages' wall times, earlier invocations
        included), ``results`` (:func:`cell_results`) and ``worker``.
    """
    from .run import run_experiment

    t0 = time.perf_counter()
    cell_dir = Path(cell_dir)
    earlier = _earlier_stages(cell_dir)
    record = {"cell": name, "settings": settings, "status": "failed", "failed_stage": "setup", "error": None,
              "started": utc_timestamp(), "stages": {}, "results": None}
    try:
        record["worker"] = {"host": socket.gethostname(), "pid": os.getpid(), **_limit_threads()}
        spec = parse_spec(spec_doc, source=f"cell {name}")
        record["spec"] = spec.to_json()
        with _cell_logging(cell_dir):
            result = run_experiment(spec, cell_dir, spec_path=spec_path, stages=CELL_STAGES, progress=False,
                                    raise_errors=False, n_jobs=1)
        record["stages"] = _carry_seconds(result.stages, earlier)
        if result.failed:
            record.update(failed_stage=result.failed, error=result.stages[result.failed]["error"])
        else:
            record["failed_stage"] = "results"
            record["results"] = cell_results(cell_dir)
            record.update(status="ok", failed_stage=None)
    except Exception as exc:  # recorded in cell.json; the sweep goes on with the other cells
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()
    record["run_seconds"] = round(sum(s.get("seconds", 0.0) for s in record["stages"].values()), 2)
    record["wall_seconds"] = round(time.perf_counter() - t0, 2)
    record["finished"] = utc_timestamp()
    write_json_atomic(cell_dir / "cell.json", record)
    return record


def _earlier_stages(cell_dir: Path) -> dict:
    """Stage entries of earlier invocations: the cell's ``cell.json``, else its ``run.json``."""
    stages = dict((read_cell_record(cell_dir) or {}).get("stages") or {})
    try:
        run = json.loads((cell_dir / "run.json").read_text()).get("stages", {})
    except (OSError, ValueError):
        run = {}
    for stage, entry in run.items():
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


def cell_results(run_dir: str | Path) -> dict:
    """The figures of a finished cell: validation summary and posterior widths.

    Returns
    -------
    dict
        ``metrics``: name -> ``{"value", "units", "long_name"}`` (the
        ``median_abs_error_*``/``max_abs_error_*`` summaries, ``dice`` and
        ``pairs_*`` of ``validation.nc``); ``posterior``: parameter ->
        ``{"mean", "sd", "hdi_low", "hdi_high", "hdi_width", "r_hat",
        "ess_bulk", "truth", "units"}`` (``fit/summary.csv``, 94 % HDI;
        ``truth`` from ``truth.nc``); ``fit``: ``n_over_tau`` and
        ``acceptance_fraction`` (``fit/posterior.nc``). Empty when the cell
        has no fit.
    """
    run_dir = Path(run_dir)
    val = open_dataset_checked(run_dir / "validation.nc")
    metrics = {}
    for key, value in val.attrs.items():
        if key.startswith(("median_abs_error_", "max_abs_error_")):
            stat, metric = key.split("_abs_error_", 1)
            attrs = val[f"{metric}_{stat}_abs_error"].attrs if f"{metric}_{stat}_abs_error" in val else {}
            what = attrs.get("long_name", f"{stat} |error| of {metric}")
            metrics[key] = {"value": float(value), "units": attrs.get("units", "1"),
                            "long_name": f"{what}, over pairs and time steps"}
        elif key in _PAIR_NAMES:
            metrics[key] = {"value": int(value), "units": "1", "long_name": _PAIR_NAMES[key]}
    if "dice" in val:
        metrics["dice"] = {"value": float(np.nanmedian(val["dice"].values)) if val["dice"].size else math.nan,
                           "units": "1", "long_name": "median over time steps of the Dice of the binary volume "
                                                      "against the true cores"}
    out = {"metrics": metrics, "posterior": {}, "fit": {}}
    summary = run_dir / "fit" / "summary.csv"
    if summary.is_file():
        truth = open_dataset_checked(run_dir / "truth.nc") if (run_dir / "truth.nc").is_file() else None
        with summary.open(newline="") as fh:
            for row in csv.DictReader(fh):
                param = row[""]
                f = {k: _float(row.get(k)) for k in ("mean", "sd", "hdi_3%", "hdi_97%", "r_hat", "ess_bulk")}
                out["posterior"][param] = {
                    "mean": f["mean"], "sd": f["sd"], "hdi_low": f["hdi_3%"], "hdi_high": f["hdi_97%"],
                    "hdi_width": f["hdi_97%"] - f["hdi_3%"], "r_hat": f["r_hat"], "ess_bulk": f["ess_bulk"],
                    "truth": float(truth[param].values) if truth is not None and param in truth.data_vars
                    and truth[param].ndim == 0 else None,
                    "units": "nm" if param.endswith("_nm") else "1",
                }
        posterior = run_dir / "fit" / "posterior.nc"
        if posterior.is_file():
            with xr.open_dataset(posterior, group="posterior", engine="netcdf4") as ds:
                out["fit"] = {"n_over_tau": _float(ds.attrs.get("n_over_tau")),
                              "acceptance_fraction": _float(ds.attrs.get("acceptance_fraction_mean"))}
    return out


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# ---------------------------------------------------------------------------------------------
# the sweep


def _cost(spec: ExperimentSpec) -> float:
    """Relative cost of a cell (images x pixels), to start the longest cells first."""
    acq = spec.acquisition
    return len(acq.angles_deg) * acq.output_pixels**2 * len(spec.heating.pt_time_s)


def _start_client(scheduler: str | None, n_workers: int):
    """A Dask client: on ``scheduler``, or on a new LocalCluster of ``n_workers`` one-thread processes."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        return Client(scheduler), None
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, env=dict(WORKER_ENV),
                           dashboard_address=None, silence_logs=logging.ERROR)
    return Client(cluster), cluster


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
        Sweep folder: ``cells/<cell>/`` run folders, ``sweep.nc``, PNGs.
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
        ``out_dir/sweep.nc``.

    Raises
    ------
    SpecError
        Invalid sweep spec, base spec or fit spec (one line; nothing written).
    """
    t_start = time.perf_counter()
    sweep = load_sweep_spec(spec_path)
    cells = sweep.cells()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with _sweep_logging(out / "sweep.log"):
        record = _sweep_record(sweep, cells)
        write_json_atomic(out / "sweep.json", record)
        todo = _cells_to_run(cells, out, force=force)
        log.info("sweep %s (%s): %d cells, %d to run, %d done before%s", sweep.name, spec_path, len(cells),
                 len(todo), len(cells) - len(todo) - sum(c.spec is None for c in cells), " (force)" if force else "")
        stats = _run_cells(todo, cells, sweep, out, scheduler=scheduler, progress=progress,
                           n_workers=n_workers or available_cores())
        ds = sweep_dataset(sweep, cells, out)
        target = write_dataset_atomic(ds, out / "sweep.nc")
        from ..plots.sweep import plot_sweep

        pngs = plot_sweep(ds, out)
        record.update(finished=utc_timestamp(), seconds=round(time.perf_counter() - t_start, 1), **stats,
                      status={s: int((ds["status"].values == s).sum()) for s in ("ok", "failed")},
                      figures=[p.name for p in pngs])
        write_json_atomic(out / "sweep.json", record)
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
    from .run import package_versions

    return {
        "spec_file": str(sweep.source.resolve()), "name": sweep.name, "description": sweep.description,
        "base": str(sweep.base_path), "base_spec": json.loads(sweep.base_spec.to_json()),
        "grid": {k: list(v) for k, v in zip(sweep.keys, sweep.values)}, "dims": list(sweep.dims),
        "cells": [c.name for c in cells], "stages": list(CELL_STAGES), "started": utc_timestamp(), "finished": None,
        "versions": package_versions(), "host": {"hostname": socket.gethostname(), "cpus": available_cores()},
    }


def _cells_to_run(cells: list[Cell], out: Path, *, force: bool) -> list[Cell]:
    """Cells to submit; invalid cells (or folders holding a run of another spec) get a failed
    ``cell.json`` here; finished ones are skipped."""
    from .simulate import same_spec

    todo = []
    for cell in cells:
        cell_dir = out / "cells" / cell.name
        if force and cell_dir.exists():
            shutil.rmtree(cell_dir)
        error = cell.error
        if error is None and not same_spec(cell_dir / "spec.json", cell.spec):
            error = (f"{cell_dir}: holds a run of another spec (the base or the sweep spec changed); "
                     "rerun with --force to redo the cell, or sweep into another --out")
        if error is not None:
            log.warning("cell %s: %s", cell.name, error)
            write_json_atomic(cell_dir / "cell.json", {
                "cell": cell.name, "settings": cell.settings, "status": "failed", "failed_stage": "spec",
                "error": error, "stages": {}, "results": None, "run_seconds": 0.0, "finished": utc_timestamp(),
            })
            continue
        done = read_cell_record(cell_dir)
        if done and done.get("status") == "ok" and done.get("spec") == cell.spec.to_json():
            continue
        todo.append(cell)
    return todo


def _run_cells(todo: list[Cell], cells: list[Cell], sweep: SweepSpec, out: Path, *, scheduler: str | None,
               progress: bool, n_workers: int) -> dict:
    """Submit one task per cell, gather them as they finish, keep the bar and the log."""
    n_done = len(cells) - len(todo)
    counts = {"ok": 0, "failed": 0}
    names = {c.name for c in todo}
    for cell in cells:
        if cell.name not in names:
            counts["ok" if (read_cell_record(out / "cells" / cell.name) or {}).get("status") == "ok" else "failed"] += 1
    stats = {"cells_run": len(todo), "cells_skipped": n_done}
    bar = tqdm(total=len(cells), initial=n_done, desc=f"sweep {sweep.name}", unit="cell", disable=not progress)
    bar.set_postfix(counts)
    if not todo:
        bar.close()
        return stats
    from distributed import as_completed  # its first import configures the "distributed" logger

    dask_logger = logging.getLogger("distributed")
    dask_level = dask_logger.level
    if logging.getLogger("sinter4d").getEffectiveLevel() > logging.INFO:
        dask_logger.setLevel(logging.ERROR)  # Dask's INFO chatter only with -v
    client, cluster = _start_client(scheduler, min(n_workers, len(todo)))
    stats["workers"] = len(client.scheduler_info().get("workers", {}))
    log.info("dask: %s, %d workers", "scheduler " + scheduler if scheduler else "LocalCluster", stats["workers"])
    futures = {}
    try:
        # longest cells first (submission order: Dask hands the first tasks to workers at once)
        for rank, cell in enumerate(sorted(todo, key=lambda c: -_cost(c.spec))):
            fut = client.submit(run_cell, cell.spec.model_dump(mode="json"), str(out / "cells" / cell.name),
                                str(sweep.base_path), cell.name, cell.settings, pure=False, priority=-rank,
                                key=f"sweep-cell-{cell.name}-{os.urandom(4).hex()}")
            futures[fut] = cell
        pending = as_completed(futures)
        no_worker_since = None
        while not pending.is_empty():
            if not pending.has_ready():
                # a cluster whose workers all died (e.g. they cannot import the package) never finishes
                if client.scheduler_info()["workers"]:
                    no_worker_since = None
                elif no_worker_since is None:
                    no_worker_since = time.monotonic()
                elif time.monotonic() - no_worker_since > NO_WORKER_TIMEOUT_S:
                    lost = [f for f in futures if not f.done()]
                    for fut in lost:
                        _record_lost(futures[fut], out, counts, bar,
                                     RuntimeError(f"no Dask worker for {NO_WORKER_TIMEOUT_S:.0f} s "
                                                  "(the workers died; see their errors on the console)"))
                    break
                time.sleep(1.0)
                continue
            for fut in pending.next_batch(block=False):
                try:
                    rec = fut.result()
                except Exception as exc:  # the worker died (or the task could not run): record it
                    _record_lost(futures[fut], out, counts, bar, exc)
                    continue
                _count(rec, counts, bar)
    finally:
        bar.close()
        client.cancel(list(futures))
        client.close()
        if cluster is not None:
            cluster.close()
        dask_logger.setLevel(dask_level)
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


def _record_lost(cell: Cell, out: Path, counts: dict, bar, exc: BaseException) -> None:
    """A cell whose task did not return: failed at stage ``worker`` with ``exc``."""
    rec = {"cell": cell.name, "settings": cell.settings, "status": "failed", "failed_stage": "worker",
           "error": f"{type(exc).__name__}: {exc}", "stages": {}, "results": None, "run_seconds": 0.0,
           "finished": utc_timestamp()}
    write_json_atomic(out / "cells" / cell.name / "cell.json", rec)
    _count(rec, counts, bar)


# ---------------------------------------------------------------------------------------------
# sweep.nc


def _coord(key: str, values: tuple) -> tuple[np.ndarray, dict]:
    dim = key.rsplit(".", 1)[-1]
    if all(isinstance(v, bool) for v in values):
        data = np.array([str(v).lower() for v in values])
    elif all(isinstance(v, str) for v in values):
        data = np.array(values)
    elif all(isinstance(v, int) for v in values):
        data = np.array(values, dtype=np.int64)
    else:
        data = np.array(values, dtype=np.float64)
    units, long_name = _SETTINGS.get(dim, (None, None))
    if units is None:
        units = next((u for suffix, u in _SUFFIX_UNITS if dim.endswith(suffix)), "1")
        long_name = key.replace("_", " ")
    attrs = {"units": units, "long_name": long_name, "spec_key": key}
    if key in DERIVED_KEYS:
        attrs["comment"] = DERIVED_KEYS[key]
    return data, attrs


def sweep_dataset(sweep: SweepSpec, cells: list[Cell], out_dir: str | Path) -> xr.Dataset:
    """The sweep's results on its grid, from the cells' ``cell.json``.

    Dimensions: one per swept key (named by its last part, with ``units``,
    ``long_name`` and the ``spec_key``). Variables: the validation summaries
    (``median_abs_error_neck_ratio``, ``max_abs_error_neck_ratio``,
    ``median_abs_error_distance_ratio``, ... in the units of the metric),
    ``dice`` (median over time steps), ``pairs_true``/``pairs_found``/
    ``pairs_missed``/``pairs_spurious``, ``posterior_width_<param>`` (94 %
    HDI), ``posterior_mean_<param>``, ``posterior_sd_<param>``,
    ``fit_n_over_tau``, ``run_seconds``, ``stage_seconds`` (extra dimension
    ``stage``), ``status`` (``ok``/``failed``/``not run``), ``failed_stage``,
    ``error`` and ``cell`` (folder under ``cells/``). NaN where a cell
    failed.
    """
    out = Path(out_dir)
    dims, shape = list(sweep.dims), sweep.shape
    records = {c.name: read_cell_record(out / "cells" / c.name) or {} for c in cells}
    num: dict[str, tuple[np.ndarray, dict]] = {}
    text = {name: np.full(shape, "", dtype=object) for name in ("status", "failed_stage", "error", "cell")}
    stage_seconds = np.full((*shape, len(CELL_STAGES)), np.nan)
    truths: dict[str, set] = {}

    def put(name, index, value, units, long_name):
        if name not in num:
            num[name] = (np.full(shape, np.nan), {"units": units, "long_name": long_name})
        num[name][0][index] = np.nan if value is None else value

    for cell in cells:
        rec, i = records[cell.name], cell.index
        text["cell"][i] = cell.name
        text["status"][i] = rec.get("status", "not run")
        text["failed_stage"][i] = rec.get("failed_stage") or ""
        text["error"][i] = rec.get("error") or ""
        if rec:
            put("run_seconds", i, rec.get("run_seconds"), "s", "wall time of the cell's stages (sum over stages)")
        for k, stage in enumerate(CELL_STAGES):
            entry = rec.get("stages", {}).get(stage)
            if entry and entry.get("status") in ("done", "skipped"):
                stage_seconds[(*i, k)] = entry.get("seconds", np.nan)
        if rec.get("status") != "ok":
            continue
        res = rec.get("results") or {}
        for name, m in res.get("metrics", {}).items():
            put("dice" if name == "median_dice" else name, i, m["value"], m["units"], m["long_name"])
        for param, p in res.get("posterior", {}).items():
            put(f"posterior_width_{param}", i, p["hdi_width"], p["units"], f"width of the 94 % HDI of {param}")
            put(f"posterior_mean_{param}", i, p["mean"], p["units"], f"posterior mean of {param}")
            put(f"posterior_sd_{param}", i, p["sd"], p["units"], f"posterior standard deviation of {param}")
            if p.get("truth") is not None:
                truths.setdefault(param, set()).add(p["truth"])
        fit = res.get("fit", {})
        if "n_over_tau" in fit:
            put("fit_n_over_tau", i, fit["n_over_tau"], "1",
                "chain length after burn-in over the autocorrelation time (want >= 50)")
    order = ("median_abs_error_neck_ratio", "median_abs_error_distance_ratio", "max_abs_error_neck_ratio",
             "max_abs_error_distance_ratio", "median_abs_error", "max_abs_error", "dice", "pairs_",
             "posterior_width_", "posterior_mean_", "posterior_sd_", "fit_", "run_seconds")
    rank = {name: next((k for k, prefix in enumerate(order) if name.startswith(prefix)), len(order)) for name in num}
    data_vars = {name: (dims, *num[name]) for name in sorted(num, key=lambda n: rank[n])}
    for param, values in truths.items():
        if len(values) == 1:
            data_vars[f"posterior_mean_{param}"][2]["truth"] = values.pop()
    data_vars["stage_seconds"] = ([*dims, "stage"], stage_seconds,
                                  {"units": "s", "long_name": "wall time of each stage of the cell"})
    long_names = {"status": "cell status (ok, failed, not run)", "failed_stage": "stage at which the cell failed",
                  "error": "error of a failed cell", "cell": "cell folder under cells/"}
    for name, values in text.items():
        data_vars[name] = (dims, values.astype(str), {"units": "1", "long_name": long_names[name]})
    coords = {}
    for key, values in zip(sweep.keys, sweep.values):
        data, attrs = _coord(key, values)
        coords[key.rsplit(".", 1)[-1]] = (key.rsplit(".", 1)[-1], data, attrs)
    coords["stage"] = ("stage", np.array(CELL_STAGES), {"units": "1", "long_name": "stage of the run"})
    from .. import __version__

    return xr.Dataset(data_vars, coords=coords, attrs={
        "title": f"sinter4d sweep {sweep.name}", "description": sweep.description,
        "sweep_spec": str(sweep.source.resolve()), "base_spec_file": str(sweep.base_path),
        "base_spec": sweep.base_spec.to_json(),
        "seed": sweep.base_spec.seed, "sinter4d_version": __version__,
        "comment": "every cell keeps the base seed (same specimen and sintering truth); NaN where a cell failed",
    })
