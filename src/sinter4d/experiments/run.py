"""The main job: every stage of one experiment, resumable (``sinter4d run``).

The stages of :data:`sinter4d.runfolder.STAGES` (simulate -> calibrate ->
reconstruct -> measure -> validate -> fit -> report) run in order into one run folder, laid
out by :class:`sinter4d.runfolder.RunFolder` (docs/design.md): every stage
for an experiment spec (:func:`run_experiment`); for an imported run folder
(``sinter4d import MANIFEST.csv``, :func:`run_imported`) every stage that
needs no truth (:attr:`Stage.needs_truth <sinter4d.runfolder.Stage>`). Beside
the stages' outputs the runner keeps the run's record (spec or settings
file, package versions, the code that made the run, status, time and the
reason of a stage not run, of each stage) and the log of every invocation.

A stage whose outputs exist is skipped (``force`` redoes them), and every
stage resumes its own partial work, so a run killed at any point loses at
most the file being written.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from .._cores import available_cores
from ..errors import InputError
from ..io.atomic import write_json_atomic
from ..io.netcdf import open_dataset_checked
from ..io.toml import read_toml
from ..pipeline.settings import PipelineSpec
from ..runfolder import STAGE_NAMES, RunFolder, stage
from .measure import measure_run
from .record import code_record, package_versions, utc_timestamp
from .validate import validate_run
from .reconstruct import reconstruct_path
from .simulate import same_spec, simulate_run
from .spec import CalibrationStageSpec, ExperimentSpec, RunSettings, load_run_settings, load_spec

if TYPE_CHECKING:
    from ..calibration import ChooseSpec

log = logging.getLogger(__name__)

@dataclass
class RunResult:
    """What :func:`run_experiment` did.

    Attributes
    ----------
    run_dir : Path
    stages : dict
        Per stage: ``{"status": "done" | "skipped" | "failed" | "not run", "seconds": float, "error": str | None,
        "reason": str | None}`` (``reason``: why a stage was skipped or not run).
    seconds : float
        Wall time of this invocation.
    """

    run_dir: Path
    stages: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failed(self) -> str | None:
        """The stage that failed, or None."""
        return next((k for k, v in self.stages.items() if v["status"] == "failed"), None)


def beside_spec(name: str | Path, spec_path: str | Path | None) -> Path:
    """A file a spec or settings card names (``[fit] spec``, ``[calibration] choose``): relative to the card
    ``spec_path`` (the working directory without one), made absolute."""
    base = Path(spec_path).resolve().parent if spec_path is not None else Path.cwd()
    return (base / name).resolve()


def fit_spec_for_run(spec: ExperimentSpec | RunSettings, spec_path: str | Path | None):
    """The run's fit spec (the ``[fit]`` section of its spec or settings card), or None when it names none.

    The fit spec's ``data`` is dropped (the run's own metrics are
    fitted) and the section's sampler settings replace the fit spec's.
    """
    from ..assimilation.specs import parse_fit_spec

    if spec.fit.spec is None:
        return None
    path = beside_spec(spec.fit.spec, spec_path)
    doc = read_toml(path)
    doc.pop("data", None)
    doc["sampler"] = {**doc.get("sampler", {}), **spec.fit.sampler_overrides()}
    return parse_fit_spec(doc, source=path)


def choose_card_for_run(section: CalibrationStageSpec, spec_path: str | Path | None) -> ChooseSpec | None:
    """The choice card a ``[calibration]`` table names (``choose``, relative to ``spec_path``), or None.

    None also when the calibration is off: only the calibrate stage chooses.

    Raises
    ------
    SpecError
        A missing or invalid card (one line naming it).
    """
    if not section.enabled or section.choose is None:
        return None
    from .calibrate import load_choose_card

    return load_choose_card(beside_spec(section.choose, spec_path))


def run_experiment(
    spec: str | Path | ExperimentSpec,
    out_dir: str | Path,
    *,
    spec_path: str | Path | None = None,
    force: bool = False,
    stages: tuple[str, ...] = STAGE_NAMES,
    progress: bool = True,
    raise_errors: bool = True,
    n_jobs: int = -1,
    mrc: tuple[str, ...] = ("volume",),
    scheduler: str | None = None,
    n_workers: int | None = None,
) -> RunResult:
    """Run every stage of an experiment spec into one run folder.

    Parameters
    ----------
    spec : str or Path or ExperimentSpec
        Experiment spec (TOML file, or already validated).
    out_dir : str or Path
        Run folder (created; a folder holding a run of another spec is refused).
    spec_path : str or Path, optional
        Where a validated ``spec``'s relative names (model card, fit spec)
        are looked up; default ``spec`` itself when it is a file.
    force : bool, optional
        Redo every stage in ``stages``, removing its outputs first.
    stages : tuple of str, optional
        The stages to run, in data-flow order (default every stage of
        :data:`sinter4d.runfolder.STAGES`).
    progress : bool, optional
        Show the run's progress display.
    raise_errors : bool, optional
        Re-raise a stage's exception after recording it (default); else
        return with the failed stage marked (sweeps go on with other cells).
    n_jobs : int, optional
        Time steps simulated at once, images denoised at once, and the fit's
        worker processes (-1: every core this process may use; a sweep
        running one cell per core passes 1).
    mrc : tuple of str, optional
        Variables of each reconstruction also written as MRC beside it
        (``recon/tNN.mrc``; a sweep's cells pass ``()``).
    scheduler : str, optional
        A running Dask scheduler's address: the reconstruct stage sends the
        series to its workers, and the calibrate stage its twins (the other
        stages run here). Default: the reconstruction runs in this process.
    n_workers : int, optional
        Without ``scheduler``: a LocalCluster of that many single-threaded
        workers for the same stages (docs/design.md, "On a cluster").

    Returns
    -------
    RunResult

    Raises
    ------
    SpecError, InputError
        Invalid spec or input (nothing is written for an invalid spec).
    """
    if not isinstance(spec, ExperimentSpec):
        spec_path = spec
        spec = load_spec(spec)
    _check_stages(stages)
    fit_spec = fit_spec_for_run(spec, spec_path) if "fit" in stages else None
    choose = choose_card_for_run(spec.calibration, spec_path) if "calibrate" in stages else None
    run = RunFolder(out_dir)
    if run.manifest.is_file():
        raise InputError(f"{run.path}: holds an imported experiment; run it with `sinter4d run {run.path}`")
    if not same_spec(run.spec, spec):
        raise InputError(f"{run.path}: holds a run of a different spec; choose another --out or remove it")
    run.path.mkdir(parents=True, exist_ok=True)
    job = StageJob(spec, spec_path, fit_spec, run, progress=progress, n_jobs=n_jobs,
                   n_steps=len(spec.heating.imaged), pipeline=spec.pipeline, mrc=mrc,
                   calibration=spec.calibration, choose=choose, scheduler=scheduler, n_workers=n_workers)
    header = {"spec_file": str(spec_path) if spec_path is not None else None, "spec_name": spec.name}
    return _run_stages(job, stages, header, label=spec.name, force=force, progress=progress,
                       raise_errors=raise_errors)


def run_imported(
    run_dir: str | Path,
    *,
    settings: str | Path | None = None,
    fit: str | Path | None = None,
    force: bool = False,
    stages: tuple[str, ...] = STAGE_NAMES,
    progress: bool = True,
    raise_errors: bool = True,
    n_jobs: int = -1,
    scheduler: str | None = None,
    n_workers: int | None = None,
) -> RunResult:
    """Run the stages of an imported run folder (``sinter4d run RUNDIR``): every one that needs no truth.

    Calibrate (when the settings turn it on) -> reconstruct -> measure ->
    fit (when a fit spec is named) -> report; the
    stages that make or read a truth (simulate, validate:
    :attr:`Stage.needs_truth <sinter4d.runfolder.Stage>`) are recorded as
    not run, with the reason. Resumable as :func:`run_experiment`.

    Parameters
    ----------
    run_dir : str or Path
        A run folder made by ``sinter4d import MANIFEST.csv``
        (:attr:`RunFolder.imported <sinter4d.runfolder.RunFolder.imported>`).
    settings : str or Path, optional
        Settings card (TOML, :class:`~sinter4d.experiments.spec.RunSettings`:
        ``[pipeline]``, ``[fit]`` and ``[calibration]`` tables). Default: the
        settings the run was made with (``settings.json``), else the
        defaults. Pipeline settings other than those recorded are refused
        (unless ``force`` redoes the reconstruction).
    fit : str or Path, optional
        Fit spec (TOML) fitted to the run's metrics; replaces the settings
        card's ``[fit] spec``. Without either the fit is not run.
    force, stages, progress, raise_errors, n_jobs, scheduler, n_workers
        As :func:`run_experiment`.

    Returns
    -------
    RunResult

    Raises
    ------
    SpecError, InputError
        Invalid settings or fit spec, not an imported run folder, other
        pipeline settings than those the run was made with (nothing is
        written then).
    """
    run = RunFolder(run_dir)
    if not run.path.is_dir():
        raise InputError(f"{run.path}: not a run folder (no such directory)")
    if not run.imported:
        raise InputError(f"{run.path}: not an imported run folder (no {run.manifest.name}; a simulated run is run "
                         f"from its spec: sinter4d run SPEC.toml --out RUNDIR)")
    tilts = run.tilt_files()
    if not tilts:
        raise InputError(f"{run.path}: holds no tilt series; import a manifest into it first")
    _check_stages(stages)
    card = load_run_settings(settings) if settings is not None else None
    pipeline = _imported_pipeline(run, card, force=force and "reconstruct" in stages)
    section = card.fit if card is not None else RunSettings().fit
    base = settings
    if fit is not None:
        section, base = section.model_copy(update={"spec": str(Path(fit).resolve())}), None
    fit_spec = fit_spec_for_run(RunSettings(fit=section), base) if "fit" in stages else None
    calibration = card.calibration if card is not None else _recorded_calibration(run)
    if card is not None and calibration.choose is not None:  # recorded absolute: a rerun has no card to be relative to
        calibration = calibration.model_copy(update={"choose": str(beside_spec(calibration.choose, settings))})
    choose = choose_card_for_run(calibration, settings) if "calibrate" in stages else None
    write_json_atomic(run.settings, {"pipeline": pipeline.model_dump(mode="json"),
                                     "calibration": calibration.model_dump(mode="json"),
                                     "settings_file": str(settings) if settings is not None else None})
    job = StageJob(None, settings, fit_spec, run, progress=progress, n_jobs=n_jobs, n_steps=len(tilts),
                   pipeline=pipeline, calibration=calibration, choose=choose, scheduler=scheduler,
                   n_workers=n_workers)
    header = {"kind": "imported", "settings_file": str(settings) if settings is not None else None,
              "fit_spec_file": str(fit_spec.path) if fit_spec is not None else None}
    return _run_stages(job, stages, header, label=run.path.name, force=force, progress=progress,
                       raise_errors=raise_errors)


def _check_stages(stages: tuple[str, ...]) -> None:
    unknown = [s for s in stages if s not in STAGE_NAMES]
    if unknown:
        raise InputError(f"unknown stage {unknown[0]!r}; stages are {', '.join(STAGE_NAMES)}")


def _imported_pipeline(run: RunFolder, card: RunSettings | None, *, force: bool) -> PipelineSpec:
    """The pipeline settings of an imported run: the card's, else those recorded, else the defaults."""
    recorded = None
    if run.settings.is_file():
        recorded = PipelineSpec.model_validate(json.loads(run.settings.read_text()).get("pipeline") or {})
    if card is None:
        return recorded if recorded is not None else PipelineSpec()
    if recorded is not None and recorded != card.pipeline and run.recon_files() and not force:
        changed = [k for k in PipelineSpec.model_fields if getattr(recorded, k) != getattr(card.pipeline, k)]
        raise InputError(f"{run.path}: was reconstructed with other pipeline settings ({', '.join(changed)} differ "
                         f"from {run.settings.name}); pass --force to redo it, or import into another folder")
    return card.pipeline


def _recorded_calibration(run: RunFolder) -> CalibrationStageSpec:
    """The ``[calibration]`` table an imported run's ``settings.json`` records, else the default (off)."""
    doc = json.loads(run.settings.read_text()).get("calibration") if run.settings.is_file() else None
    return CalibrationStageSpec.model_validate(doc or {})


def _run_stages(job: "StageJob", stages: tuple[str, ...], header: dict, *, label: str, force: bool,
                progress: bool, raise_errors: bool) -> RunResult:
    """Run ``stages`` of ``job`` in order, keeping the run's record and log (both runners' loop)."""
    t_start = time.perf_counter()
    run = job.run
    handler = logging.FileHandler(run.log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    pkg_logger = logging.getLogger("sinter4d")
    old_level = pkg_logger.level
    pkg_logger.addHandler(handler)
    if pkg_logger.getEffectiveLevel() > logging.INFO:
        pkg_logger.setLevel(logging.INFO)

    record_path = run.record
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    record.update({
        **header,
        "started": utc_timestamp(),
        "finished": None,
        "versions": package_versions(),
        "code": code_record(),
        "host": {"platform": platform.platform(), "machine": platform.machine(), "cpus": available_cores()},
    })
    record.setdefault("stages", {})
    result = RunResult(run.path)
    log.info("run %s (%s) into %s; stages %s%s", label, job.spec_path, run.path, ", ".join(stages),
             " (force)" if force else "")
    bar = tqdm(total=len(stages), desc=f"run {label}", unit="stage", disable=not progress, position=0)
    try:
        for name in stages:
            bar.set_postfix_str(name)
            entry = _run_stage(name, job, force=force)
            result.stages[name] = entry
            record["stages"][name] = entry
            write_json_atomic(record_path, record)
            bar.update(1)
            if entry["status"] == "failed":
                if raise_errors:
                    raise entry.pop("exception")
                entry.pop("exception", None)
                break
    finally:
        bar.close()
        for entry in result.stages.values():
            entry.pop("exception", None)
        result.seconds = time.perf_counter() - t_start
        record["finished"] = utc_timestamp()
        record["seconds_last_invocation"] = round(result.seconds, 1)
        write_json_atomic(record_path, record)
        log.info("run %s: %s in %.1f s", label,
                 f"failed at {result.failed}" if result.failed else "finished", result.seconds)
        pkg_logger.removeHandler(handler)
        pkg_logger.setLevel(old_level)
        handler.close()
    return result


@dataclass(frozen=True)
class StageJob:
    """What a stage's runner needs: the validated spec (None for an imported run), where it came from, the fit
    spec, the run folder, its number of steps, its pipeline settings, its ``[calibration]`` table and the Dask
    cluster of the reconstruct and calibrate stages (``scheduler`` or ``n_workers``; neither: reconstruct here)."""

    spec: ExperimentSpec | None
    spec_path: str | Path | None
    fit_spec: object | None
    run: RunFolder
    progress: bool = True
    n_jobs: int = -1
    n_steps: int = 0
    pipeline: PipelineSpec = PipelineSpec()
    mrc: tuple[str, ...] = ("volume",)
    calibration: CalibrationStageSpec = CalibrationStageSpec()
    choose: ChooseSpec | None = None
    scheduler: str | None = None
    n_workers: int | None = None


def _simulate(job: StageJob) -> None:
    simulate_run(job.spec, job.run.path, spec_path=job.spec_path, progress=job.progress, n_jobs=job.n_jobs)


def _reconstruct(job: StageJob) -> None:
    reconstruct_path(job.run.path, overrides=chosen_settings(job), progress=job.progress, n_jobs=job.n_jobs,
                     mrc=job.mrc, scheduler=job.scheduler, n_workers=job.n_workers)


def chosen_settings(job: StageJob) -> dict | None:
    """The pipeline settings the run's calibration chose (``chosen_settings`` of ``calibration.nc``), or None.

    Read only when the run's ``[calibration]`` names a choice card; a
    missing calibration is warned about and the spec's settings are used.
    """
    if not (job.calibration.enabled and job.calibration.choose is not None):
        return None
    if not job.run.calibration.is_file():
        log.warning("reconstruct: [calibration] choose is set but %s is missing (the calibrate stage did not run): "
                    "reconstructed with the spec's settings", job.run.calibration.name)
        return None
    with open_dataset_checked(job.run.calibration) as cal:
        chosen = cal.attrs.get("chosen_settings")
    if chosen is None:
        raise InputError(f"{job.run.calibration}: holds no chosen settings (made without a choice card); "
                         f"run the calibrate stage again with --force")
    return json.loads(chosen)


def _calibrate(job: StageJob) -> None:
    from .calibrate import calibrate_run

    n_workers = job.n_workers if job.n_workers is not None else None if job.n_jobs == -1 else job.n_jobs
    calibrate_run(job.run.path, job.run.calibration, n_twins=job.calibration.twins, progress=job.progress,
                  scheduler=job.scheduler, n_workers=n_workers, choose=job.choose,
                  twin_pixels=job.calibration.twin_pixels, twin_series=job.calibration.twin_series)


def _measure(job: StageJob) -> None:
    calibration = job.run.calibration if job.calibration.enabled else None
    if calibration is not None and not calibration.is_file():
        log.warning("measure: [calibration] is on but %s is missing (the calibrate stage did not run): "
                    "measured without it", calibration.name)
        calibration = None
    measure_run(job.run.path, progress=job.progress, calibration=calibration)


def _validate(job: StageJob) -> None:
    validate_run(job.run.path, progress=job.progress)


def _fit(job: StageJob) -> None:
    from ..assimilation import fit

    fit(job.run.metrics, job.fit_spec, job.run.fit.path, progress=job.progress, n_jobs=job.n_jobs)


def _report(job: StageJob) -> None:
    from ..report import build_report

    build_report(job.run.path, progress=job.progress)


#: What runs each stage of :data:`sinter4d.runfolder.STAGES`, by stage name.
RUNNERS: dict[str, Callable[[StageJob], None]] = {
    "simulate": _simulate,
    "calibrate": _calibrate,
    "reconstruct": _reconstruct,
    "measure": _measure,
    "validate": _validate,
    "fit": _fit,
    "report": _report,
}


def _not_run_reason(name: str, job: StageJob) -> str | None:
    """Why stage ``name`` cannot run in this job (None: it can)."""
    if stage(name).needs_truth and job.spec is None:
        return "no truth is available: this is an imported experiment"
    if name == "calibrate" and not job.calibration.enabled:
        return "the calibration is off ([calibration] enabled = false)"
    if name == "fit" and job.fit_spec is None:
        return ("the experiment spec names no fit spec ([fit] spec)" if job.spec is not None
                else "no fit spec named (--fit FIT.toml, or [fit] spec in the settings)")
    return None


def _uncalibrated(name: str, job: StageJob) -> bool:
    """Whether a stage's outputs predate the calibration the run applies (then the stage is redone).

    The measure stage's metrics, when the run is calibrated (cheap); the
    reconstructions, when the calibration chose their settings.
    """
    run = job.run
    if not (job.calibration.enabled and run.calibration.is_file()):
        return False
    made = run.calibration.stat().st_mtime
    if name == "measure":
        return run.metrics.is_file() and run.metrics.stat().st_mtime < made
    if name == "reconstruct" and job.calibration.choose is not None:
        return any(f.stat().st_mtime < made for f in run.recon_files())
    return False


def _run_stage(name: str, job: StageJob, *, force: bool) -> dict:
    """Run (or skip) one stage; its status, wall time, error and the reason it was not run (never raises)."""
    reason = _not_run_reason(name, job)
    table = stage(name)
    if reason is not None and (force or table.needs_truth or not table.complete(job.run, job.n_steps)):
        log.info("%s: not run, %s", name, reason)
        return {"status": "not run", "seconds": 0.0, "error": None, "reason": reason}
    stale = _uncalibrated(name, job)
    if force or (stale and name == "reconstruct"):  # a reconstruction is kept where it exists: remove it to redo it
        _remove(table.output_paths(job.run))
    if table.complete(job.run, job.n_steps) and not stale:
        log.info("%s: outputs exist, skipped", name)
        return {"status": "skipped", "seconds": 0.0, "error": None, "reason": "its outputs exist"}
    log.info("%s: started", name)
    t0 = time.perf_counter()
    try:
        RUNNERS[name](job)
    except (Exception, KeyboardInterrupt) as exc:
        seconds = time.perf_counter() - t0
        if isinstance(exc, KeyboardInterrupt):
            log.warning("%s: interrupted after %.1f s", name, seconds)
            raise
        log.error("%s: failed after %.1f s: %s\n%s", name, seconds, exc, traceback.format_exc())
        return {"status": "failed", "seconds": round(seconds, 2), "error": f"{type(exc).__name__}: {exc}",
                "reason": None, "exception": exc}
    seconds = time.perf_counter() - t0
    log.info("%s: done in %.1f s", name, seconds)
    return {"status": "done", "seconds": round(seconds, 2), "error": None, "reason": None}


def _remove(paths: list[Path]) -> None:
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
