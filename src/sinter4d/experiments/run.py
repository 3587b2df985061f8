"""The main job: every stage of one experiment spec, resumable (``sinter4d run``).

The stages of :data:`sinter4d.runfolder.STAGES` (simulate -> reconstruct ->
measure -> validate -> fit -> report) run in order into one run folder, laid
out by :class:`sinter4d.runfolder.RunFolder` (docs/design.md). Beside the
stages' outputs the runner keeps the run's record (spec file, package
versions, the code that made the run, status and time of each stage) and the
log of every invocation.

A stage whose outputs exist is skipped (``force`` redoes them), and every
stage resumes its own partial work, so a run killed at any point loses at
most the file being written.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import platform
import shutil
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from tqdm.auto import tqdm

from .._cores import available_cores
from ..errors import InputError
from ..io.atomic import write_json_atomic
from ..io.toml import read_toml
from ..runfolder import STAGE_NAMES, RunFolder, stage
from .measure import measure_run
from .validate import validate_run
from .reconstruct import reconstruct_path
from .simulate import same_spec, simulate_run
from .spec import ExperimentSpec, load_spec

log = logging.getLogger(__name__)

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


def code_fingerprint() -> str:
    """A SHA-256 of the installed sinter4d source: every file of the package, by path and content.

    Two runs made by the same code have the same fingerprint, whether or not
    the source is a git checkout, and an uncommitted edit changes it; a test
    (or a user) compares the run record's ``code.fingerprint`` with this to
    tell whether a run folder was made by the code installed now.
    """
    return _fingerprint(Path(__file__).resolve().parents[1])


@lru_cache(maxsize=None)
def _fingerprint(package: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                   and p.suffix not in (".pyc", ".pyo"))
    for path in files:
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def git_commit() -> dict | None:
    """``{"commit", "dirty"}`` of the git checkout the package is imported from, or None (no git, not a checkout).

    ``dirty``: the package's source differs from the commit (then only
    :func:`code_fingerprint` tells the code apart).
    """
    package = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=package, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        if not git("ls-files", "__init__.py"):  # an installed copy inside some other checkout
            return None
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--", "."))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def code_record() -> dict:
    """What made a run: the package's :func:`code_fingerprint` and its git commit (None outside a checkout)."""
    return {"fingerprint": code_fingerprint(), "git": git_commit()}


def fit_spec_for_run(spec: ExperimentSpec, spec_path: str | Path | None):
    """The run's fit spec (its ``[fit]`` section), or None when it names none.

    The fit spec's ``data`` is dropped (the run's own metrics are
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
    stages: tuple[str, ...] = STAGE_NAMES,
    progress: bool = True,
    raise_errors: bool = True,
    n_jobs: int = -1,
    mrc: tuple[str, ...] = ("volume",),
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
        Images denoised at once (-1: every core this process may use; a
        sweep running one cell per core passes 1).
    mrc : tuple of str, optional
        Variables of each reconstruction also written as MRC beside it
        (``recon/tNN.mrc``; a sweep's cells pass ``()``).

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
    unknown = [s for s in stages if s not in STAGE_NAMES]
    if unknown:
        raise InputError(f"unknown stage {unknown[0]!r}; stages are {', '.join(STAGE_NAMES)}")
    fit_spec = fit_spec_for_run(spec, spec_path) if "fit" in stages else None
    run = RunFolder(out_dir)
    if not same_spec(run.spec, spec):
        raise InputError(f"{run.path}: holds a run of a different spec; choose another --out or remove it")
    run.path.mkdir(parents=True, exist_ok=True)

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
        "spec_file": str(spec_path) if spec_path is not None else None,
        "spec_name": spec.name,
        "started": utc_timestamp(),
        "finished": None,
        "versions": package_versions(),
        "code": code_record(),
        "host": {"platform": platform.platform(), "machine": platform.machine(), "cpus": available_cores()},
    })
    record.setdefault("stages", {})
    result = RunResult(run.path)
    job = StageJob(spec, spec_path, fit_spec, run, progress=progress, n_jobs=n_jobs, mrc=mrc)
    log.info("run %s (%s) into %s; stages %s%s", spec.name, spec_path, run.path, ", ".join(stages),
             " (force)" if force else "")
    bar = tqdm(total=len(stages), desc=f"run {spec.name}", unit="stage", disable=not progress, position=0)
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
        log.info("run %s: %s in %.1f s", spec.name,
                 f"failed at {result.failed}" if result.failed else "finished", result.seconds)
        pkg_logger.removeHandler(handler)
        pkg_logger.setLevel(old_level)
        handler.close()
    return result


@dataclass(frozen=True)
class StageJob:
    """What a stage's runner needs: the validated spec, where it came from, the fit spec and the run folder."""

    spec: ExperimentSpec
    spec_path: str | Path | None
    fit_spec: object | None
    run: RunFolder
    progress: bool = True
    n_jobs: int = -1
    mrc: tuple[str, ...] = ("volume",)


def _simulate(job: StageJob) -> None:
    simulate_run(job.spec, job.run.path, spec_path=job.spec_path, progress=job.progress)


def _reconstruct(job: StageJob) -> None:
    reconstruct_path(job.run.path, progress=job.progress, n_jobs=job.n_jobs, mrc=job.mrc)


def _measure(job: StageJob) -> None:
    measure_run(job.run.path, progress=job.progress)


def _validate(job: StageJob) -> None:
    validate_run(job.run.path, progress=job.progress)


def _fit(job: StageJob) -> None:
    from ..assimilation import fit

    fit(job.run.metrics, job.fit_spec, job.run.fit.path, progress=job.progress)


def _report(job: StageJob) -> None:
    from ..report import build_report

    build_report(job.run.path, progress=job.progress)


#: What runs each stage of :data:`sinter4d.runfolder.STAGES`, by stage name.
RUNNERS: dict[str, Callable[[StageJob], None]] = {
    "simulate": _simulate,
    "reconstruct": _reconstruct,
    "measure": _measure,
    "validate": _validate,
    "fit": _fit,
    "report": _report,
}


def _run_stage(name: str, job: StageJob, *, force: bool) -> dict:
    """Run (or skip) one stage; its status, wall time and error (never raises)."""
    if name == "fit" and job.fit_spec is None:
        log.info("fit: skipped, the spec names no fit spec ([fit] spec)")
        return {"status": "not run", "seconds": 0.0, "error": "the experiment spec names no fit spec"}
    table = stage(name)
    if force:
        _remove(table.output_paths(job.run))
    if table.complete(job.run, len(job.spec.heating.pt_time_s)):
        log.info("%s: outputs exist, skipped", name)
        return {"status": "skipped", "seconds": 0.0, "error": None}
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
                "exception": exc}
    seconds = time.perf_counter() - t0
    log.info("%s: done in %.1f s", name, seconds)
    return {"status": "done", "seconds": round(seconds, 2), "error": None}


def _remove(paths: list[Path]) -> None:
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
