"""``sinter4d calibrate``: twins of a run on Dask, their reading model, ``calibration.nc``.

The edge of :mod:`sinter4d.calibration`: reads the run (its ``spec.json``, or
its tilt series when imported), runs the twins as sweep cells
(:func:`sinter4d.experiments.sweep.run_cells`: Dask tasks on a LocalCluster
or a given scheduler, resumable) into ``NAME_twins/`` beside the output,
fits the reading model on their metrics against their truth and writes
``calibration.nc`` atomically (docs/design.md, "Calibration").
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import xarray as xr

from .._cores import available_cores
from ..calibration import (
    CALIBRATION_MIN_NECK_NM,
    DEFAULT_TWINS,
    TWIN_N_SERIES,
    acquisition_of_spec,
    acquisition_of_tilts,
    calibration_dataset,
    choice_variables,
    choosing_seeds,
    reading_table,
    twin_seeds,
    twin_specs,
)
from ..calibration import ChooseCard, ChooseSpec
from ..checks import check_file, check_int
from ..errors import InputError
from ..io.atomic import check_target
from ..io.netcdf import open_dataset_checked, write_dataset_atomic
from ..runfolder import RunFolder, choose_folder, step_files, twins_folder
from ..sintering.cards import card_reference
from ..specs import load
from .spec import parse_spec, resolve_model_card
from .sweep import cells_to_run, read_cell_record, run_cells
from .sweep_spec import Cell

__all__ = ["DEFAULT_TWINS", "calibrate_run", "load_choose_card", "run_source"]

log = logging.getLogger(__name__)

def run_source(source: str | Path) -> tuple[dict, dict, Path | None]:
    """The experiment spec document the twins start from and the run's acquisition.

    ``source`` is a simulated run folder (its ``spec.json``), an imported run
    folder (its first tilt series and ``settings.json``) or one tilt-series
    file. Returns ``(spec_doc, acquisition, spec_path)``; for an imported
    series the spec is the default experiment spec (the paper's specimen and
    heating log) with the series' acquisition.
    """
    path = Path(source)
    if path.is_dir():
        run = RunFolder(path)
        if run.spec.is_file():
            doc = json.loads(run.spec.read_text())
            return doc, acquisition_of_spec(doc), run.spec
        tilts = step_files(run.tilts)
        if not tilts:
            raise InputError(f"{path}: neither a spec.json nor tilt series (tilts/tNN.nc): not a run folder")
        settings = json.loads(run.settings.read_text()) if run.settings.is_file() else {}
        return _imported_doc(tilts[0], settings.get("pipeline", settings))
    return _imported_doc(check_file(path), {})


def _imported_doc(tilts_path: Path, pipeline: dict) -> tuple[dict, dict, None]:
    with open_dataset_checked(tilts_path, ("counts",)) as ds:
        try:
            acq = acquisition_of_tilts(ds)
        except InputError as exc:
            raise InputError(f"{tilts_path}: {exc}") from None
    doc = {"name": Path(tilts_path).stem, "seed": 0, "pipeline": dict(pipeline or {})}
    return doc, acq, None


def load_choose_card(path: str | Path) -> ChooseSpec:
    """The ``[choose]`` table of a choice card (``experiments/choose_*.toml``); a bad card is one SpecError line."""
    return load(ChooseCard, check_file(path)).choose


def calibrate_run(
    source: str | Path,
    out: str | Path,
    *,
    n_twins: int = DEFAULT_TWINS,
    seeds: list[int] | None = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    force: bool = False,
    progress: bool = True,
    min_neck_nm: float = CALIBRATION_MIN_NECK_NM,
    choose: ChooseSpec | None = None,
    twin_pixels: int | None = None,
    twin_series: int = TWIN_N_SERIES,
) -> Path:
    """Calibrate the pipeline for the acquisition of ``source``: write ``out`` (``calibration.nc``).

    Parameters
    ----------
    source : str or Path
        A run folder (simulated or imported) or one tilt-series file.
    out : str or Path
        The calibration file; the twins run in ``NAME_twins/`` beside it
        (:func:`sinter4d.runfolder.twins_folder`) and a rerun skips those done.
    n_twins : int, optional
        How many twins (default :data:`DEFAULT_TWINS`).
    seeds : list of int, optional
        Their seeds (default :func:`sinter4d.calibration.twin_seeds`).
    scheduler : str, optional
        A running Dask scheduler's address; default a LocalCluster of
        ``n_workers`` (one per core) single-threaded processes.
    force : bool, optional
        Run the twins again (their folders are removed first).
    progress : bool, optional
        A progress bar over the twins.
    min_neck_nm : float, optional
        True necks below this (nm) are left out of the neck's reading model
        (default :data:`sinter4d.calibration.CALIBRATION_MIN_NECK_NM`).
    choose : ChooseSpec, optional
        Choose the pipeline settings first (:func:`load_choose_card`): every
        candidate of its grid runs on the choosing twins (seeds apart from the
        reporting twins', in ``NAME_choose/``,
        :func:`sinter4d.experiments.choose.choose_settings`), and the reporting
        twins then run at the candidate of the lowest score.
    twin_pixels : int, optional
        Every twin (choosing and reporting) on a field of this many detector
        pixels a side, cut from the run's at its pixel size, dose and tilts
        (:func:`sinter4d.calibration.twin_specs`); default the run's field.
    twin_series : int, optional
        Tilt series per twin (default :data:`sinter4d.calibration.TWIN_N_SERIES`:
        the first, middle and last; one: the middle one).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    InputError
        A bad source, a bad ``out``, or fewer than two twins that finished
        (nothing is written).
    """
    t0 = time.perf_counter()
    target = check_target(out)
    n = check_int(n_twins, "n_twins", minimum=2)
    doc, acquisition, spec_path = run_source(source)
    model = (doc.get("sintering") or {}).get("model", "cu_shell_reservoir")
    doc.setdefault("sintering", {})["model"] = card_reference(resolve_model_card(model, spec_path))
    imported = spec_path is None
    twin_acquisition = acquisition if imported else None
    shape = {"n_series": check_int(twin_series, "twin_series", minimum=1), "image_pixels": twin_pixels}
    choice = None
    if choose is not None:
        from .choose import choose_settings

        reporting = twin_seeds(n) if seeds is None else seeds
        choosing = choosing_seeds(choose, reporting)
        choice = choose_settings(twin_specs(doc, len(choosing), seeds=choosing, acquisition=twin_acquisition,
                                            **shape),
                                 dict(doc.get("pipeline") or {}), choose, choose_folder(target),
                                 spec_path=spec_path or target, scheduler=scheduler,
                                 n_workers=n_workers or available_cores(), force=force, progress=progress)
        doc = {**doc, "pipeline": {**(doc.get("pipeline") or {}), **choice["candidates"][choice["chosen"]]}}
    docs = twin_specs(doc, n, seeds=seeds, acquisition=twin_acquisition, **shape)
    folder = twins_folder(target)
    folder.path.mkdir(parents=True, exist_ok=True)
    cells = [Cell(name=f"twin-{d['seed']}", index=(k,), settings={"seed": d["seed"]}, doc=d,
                  spec=parse_spec(d, source=f"twin {d['seed']}"), error=None) for k, d in enumerate(docs)]
    todo = cells_to_run(cells, folder, force=force)
    log.info("calibrate %s: %d twins, %d to run", source, len(cells), len(todo))
    stats = run_cells(todo, cells, folder, label="calibrate", spec_path=spec_path or target,
                      scheduler=scheduler, progress=progress, n_workers=n_workers or available_cores())
    ok, seconds = [], 0.0
    for cell in cells:
        rec = read_cell_record(folder.cell(cell.name).path) or {}
        seconds += float(rec.get("run_seconds") or 0.0)
        if rec.get("status") == "ok":
            ok.append(cell)
        else:
            log.warning("twin %s failed at %s: %s", cell.name, rec.get("failed_stage"), rec.get("error"))
    if len(ok) < 2:
        raise InputError(f"{folder.path}: only {len(ok)} of {n} twins finished; need 2 (see their cell.json)")
    tables = []
    for cell in ok:
        run = folder.cell(cell.name)
        with xr.open_dataset(run.metrics) as m, xr.open_dataset(run.truth) as t, xr.open_dataset(run.validation) as v:
            tables.append(reading_table(m.load(), t.load(), v.load(), run=cell.settings["seed"]))
    provenance = {
        "source": str(Path(source).resolve()), "acquisition": acquisition,
        "twin_seeds": [c.settings["seed"] for c in ok], "twins_failed": [c.name for c in cells if c not in ok],
        "twin_spec": docs[0], "twins_folder": str(folder.path.resolve()), "twins_run": stats.get("cells_run", 0),
        "twin_seconds": seconds, "wall_seconds": time.perf_counter() - t0,
    }
    if choice is not None:
        provenance.update(
            chosen_settings=choice["candidates"][choice["chosen"]], choosing_twin_seeds=choice["seeds"],
            choose_grid={k: list(v) for k, v in choose.grid.items()}, choose_seconds=choice["seconds"],
            choose_folder=str(choose_folder(target).path.resolve()),
        )
    ds = calibration_dataset(tables, provenance, min_neck_nm=min_neck_nm)
    if choice is not None:
        ds = ds.assign(choice_variables(choice["candidates"], choice["scores"], choice["chosen"]))
    return write_dataset_atomic(ds, target)
