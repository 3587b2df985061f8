"""The main job: every stage of one experiment spec, resumable (``sinter4d run``).

simulate -> reconstruct -> measure -> validate -> fit -> report, into one run
folder (DESIGN.md):

    RUNDIR/spec.json, truth.nc, tilts/    simulate
    RUNDIR/recon/                         reconstruct
    RUNDIR/metrics.nc (+ Fig. 8, 9a)      measure
    RUNDIR/validation.nc                  validate
    RUNDIR/fit/                           fit (posterior.nc, chain.h5, plots)
    RUNDIR/report.html                    report
    RUNDIR/run.json                       spec file, package versions, stage status and timings
    RUNDIR/run.log                        the log of every invocation

A stage whose outputs exist is skipped (``force`` redoes them), and every
stage resumes its own partial work, so a run killed at any point loses at
most the file being written.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import platform
import shutil
import time
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from tqdm.auto import tqdm

from .._cores import available_cores
from ..errors import InputError
from ..io.atomic import write_json_atomic
from ..io.toml import read_toml
from .measure import measure_run, validate_run
from .reconstruct import reconstruct_path
from .simulate import same_spec, simulate_run
from .spec import ExperimentSpec, load_spec

log = logging.getLogger(__name__)

STAGES = ("simulate", "reconstruct", "measure", "validate", "fit", "report")

#: Packages whose versions a run records (the ones that shape its numbers).
RECORDED_PACKAGES = (
    "sinter4d", "numpy", "scipy", "numba", "scikit-image", "xarray", "netCDF4", "bm3d", "SimpleITK",
    "emcee", "arviz", "matplotlib", "pydantic", "dask", "distributed",
)


@dataclass
class RunResult:
    """What :func:`run_experiment` did.

    Attributes
    ----------
    run_dir : Path
    stages : dict
        Per stage: ``{"status": "done" | "skipped" | "failed" | "not run", "seconds": float, "error": str | None}``.
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


def package_versions(names: tuple[str, ...] = RECORDED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (``"not installed"`` when missing), and Python's."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def stage_outputs(run_dir: Path, stage: str) -> list[Path]:
    """The files or folders a stage writes (removed by ``force``)."""
    run_dir = Path(run_dir)
    return {
        "simulate": [run_dir / "truth.nc", run_dir / "tilts"],
        "reconstruct": [run_dir / "recon"],
        "measure": [run_dir / "metrics.nc", run_dir / "metrics_fig8.png", run_dir / "metrics_fig9a.png"],
        "validate": [run_dir / "validation.nc", run_dir / "validation_fig8.png"],
        "fit": [run_dir / "fit"],
        "report": [run_dir / "report.html"],
    }[stage]


def stage_complete(run_dir: Path, stage: str, spec: ExperimentSpec) -> bool:
    """Whether a stage's outputs are all there (then it is skipped)."""
    run_dir = Path(run_dir)
    n_steps = len(spec.heating.pt_time_s)
    if stage == "simulate":
        return (run_dir / "truth.nc").is_file() and len(list((run_dir / "tilts").glob("t[0-9][0-9].nc"))) == n_steps
    if stage == "reconstruct":
        return len(list((run_dir / "recon").glob("t[0-9][0-9].nc"))) == n_steps
    if stage == "measure":
        return (run_dir / "metrics.nc").is_file()
    if stage == "validate":
        return (run_dir / "validation.nc").is_file()
    if stage == "fit":
        return (run_dir / "fit" / "posterior.nc").is_file()
    return (run_dir / "report.html").is_file()


def fit_spec_for_run(spec: ExperimentSpec, spec_path: str | Path | None):
    """The run's fit spec (its ``[fit]`` section), or None when it names none.

    The fit spec's ``data`` is dropped (the run's own ``metrics.nc`` is
    fitted) and the section's sampler settings replace the fit spec's.
    """
    from ..assimilation.specs import parse_fit_spec

    if spec.fit.spec is None:
        return None
    base = Path(spec_path).resolve().parent if spec_path is not None else Path.cwd()
    path = (base / spec.fit.spec).resolve()
    doc = read_toml(path)
    doc.pop("data", None)
    doc["sampler"] = {**doc.get("sampler", {}), **spec.fit.sampler_overrides()}
    return parse_fit_spec(doc, source=path)


def utc_timestamp() -> str:
    """The time now in UTC, ISO 8601 to the second (``2026-11-23T22:26:45+00:00``)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def run_experiment(
    spec: str | Path | ExperimentSpec,
    out_dir: str | Path,
    *,
    spec_path: str | Path | None = None,
    force: bool = False,
    stages: tuple[str, ...] = STAGES,
    progress: bool = True,
    raise_errors: bool = True,
    n_jobs: int = -1,
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
        The stages to run, in data-flow order (default all of :data:`STAGES`).
    progress : bool, optional
        Show the run's progress display.
    raise_errors : bool, optional
        Re-raise a stage's exception after recording it (default); else
        return with the failed stage marked (sweeps go on with other cells).
    n_jobs : int, optional
        Images denoised at once (-1: every core this process may use; a
        sweep running one cell per core passes 1).

    Returns
    -------
    RunResult

    Raises
    ------
    SpecError, InputError
        Invalid spec or input (nothing is written for an invalid spec).
    """
    t_start = time.perf_counter()
    if not isinstance(spec, ExperimentSpec):
        spec_path = spec
        spec = load_spec(spec)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise InputError(f"unknown stage {unknown[0]!r}; stages are {', '.join(STAGES)}")
    fit_spec = fit_spec_for_run(spec, spec_path) if "fit" in stages else None
    run_dir = Path(out_dir)
    if not same_spec(run_dir / "spec.json", spec):
        raise InputError(f"{run_dir}: holds a run of a different spec; choose another --out or remove it")
    run_dir.mkdir(parents=True, exist_ok=True)

    handler = logging.FileHandler(run_dir / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    pkg_logger = logging.getLogger("sinter4d")
    old_level = pkg_logger.level
    pkg_logger.addHandler(handler)
    if pkg_logger.getEffectiveLevel() > logging.INFO:
        pkg_logger.setLevel(logging.INFO)

    record_path = run_dir / "run.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    record.update({
        "spec_file": str(spec_path) if spec_path is not None else None,
        "spec_name": spec.name,
        "started": utc_timestamp(),
        "finished": None,
        "versions": package_versions(),
        "host": {"platform": platform.platform(), "machine": platform.machine(), "cpus": available_cores()},
    })
    record.setdefault("stages", {})
    result = RunResult(run_dir)
    log.info("run %s (%s) into %s; stages %s%s", spec.name, spec_path, run_dir, ", ".join(stages),
             " (force)" if force else "")
    bar = tqdm(total=len(stages), desc=f"run {spec.name}", unit="stage", disable=not progress, position=0)
    try:
        for stage in stages:
            bar.set_postfix_str(stage)
            entry = _run_stage(stage, spec, spec_path, fit_spec, run_dir, force=force, progress=progress,
                               n_jobs=n_jobs)
            result.stages[stage] = entry
            record["stages"][stage] = entry
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
        log.info("run %s: %s in %.1f s", spec.name,
                 f"failed at {result.failed}" if result.failed else "finished", result.seconds)
        pkg_logger.removeHandler(handler)
        pkg_logger.setLevel(old_level)
        handler.close()
    return result


def _run_stage(stage: str, spec: ExperimentSpec, spec_path, fit_spec, run_dir: Path, *, force: bool,
               progress: bool, n_jobs: int) -> dict:
    """Run (or skip) one stage; its status, wall time and error (never raises)."""
    if stage == "fit" and fit_spec is None:
        log.info("fit: skipped, the spec names no fit spec ([fit] spec)")
        return {"status": "not run", "seconds": 0.0, "error": "the experiment spec names no fit spec"}
    if force:
        _remove(stage_outputs(run_dir, stage))
    if stage_complete(run_dir, stage, spec):
        log.info("%s: outputs exist, skipped", stage)
        return {"status": "skipped", "seconds": 0.0, "error": None}
    log.info("%s: started", stage)
    t0 = time.perf_counter()
    try:
        if stage == "simulate":
            simulate_run(spec, run_dir, spec_path=spec_path, progress=progress)
        elif stage == "reconstruct":
            reconstruct_path(run_dir, progress=progress, n_jobs=n_jobs)
        elif stage == "measure":
            measure_run(run_dir, progress=progress)
        elif stage == "validate":
            validate_run(run_dir, progress=progress)
        elif stage == "fit":
            from ..assimilation import fit

            fit(run_dir / "metrics.nc", fit_spec, run_dir / "fit", progress=progress)
        else:
            from ..report import build_report

            build_report(run_dir, progress=progress)
    except (Exception, KeyboardInterrupt) as exc:
        seconds = time.perf_counter() - t0
        if isinstance(exc, KeyboardInterrupt):
            log.warning("%s: interrupted after %.1f s", stage, seconds)
            raise
        log.error("%s: failed after %.1f s: %s\n%s", stage, seconds, exc, traceback.format_exc())
        return {"status": "failed", "seconds": round(seconds, 2), "error": f"{type(exc).__name__}: {exc}",
                "exception": exc}
    seconds = time.perf_counter() - t0
    log.info("%s: done in %.1f s", stage, seconds)
    return {"status": "done", "seconds": round(seconds, 2), "error": None}


def _remove(paths: list[Path]) -> None:
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
