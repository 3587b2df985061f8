"""The run folder: the one owner of its file names, its step files and its stages.

A run of ``sinter4d run`` writes one folder; every stage reads and writes it
through :class:`RunFolder` and the stage table :data:`STAGES`, so no other
module spells a file name::

    RUNDIR/spec.json            the validated experiment spec     simulate
    RUNDIR/manifest.csv         the manifest of an imported run   (import)
    RUNDIR/heating_log.nc       its step-time bounds, holder log  (import, when the manifest has them)
    RUNDIR/settings.json        an imported run's pipeline        (runner)
    RUNDIR/truth.nc             true geometry and pair metrics    simulate
    RUNDIR/tilts/tNN.nc         one HAADF tilt series per step    simulate
    RUNDIR/calibration.nc       the pipeline's reading model      calibrate (a spec turns it on)
    RUNDIR/calibration_twins/   its twins, one run folder each    calibrate
    RUNDIR/calibration_choose/  the choosing twins (a card set)   calibrate
    RUNDIR/recon/tNN.nc         reconstruction and binary volume  reconstruct
    RUNDIR/recon/tNN.mrc        the volume as MRC (IMOD, tomviz)  reconstruct
    RUNDIR/metrics.nc           the paper's metrics per pair      measure
    RUNDIR/metrics.csv          the same as a trajectory table    measure
    RUNDIR/metrics_fig8.png, metrics_fig9a.png                    measure
    RUNDIR/validation.nc        metrics minus truth, Dice         validate
    RUNDIR/validation_fig8.png                                    validate
    RUNDIR/fit/                 chain.h5, posterior.nc, figures   fit
    RUNDIR/report.html          the whole run on one page         report
    RUNDIR/run.json, run.log    the run's record and its log      (runner)

A run folder is *simulated* (``sinter4d run SPEC.toml``: it holds
``spec.json`` and ``truth.nc``) or *imported* (``sinter4d import
MANIFEST.csv``: it holds ``manifest.csv`` and the tilt series, no truth);
:attr:`RunFolder.imported` tells them apart, and :attr:`Stage.needs_truth`
marks the stages an imported run skips (:data:`IMPORTED_STAGES` are the
others).

Step ``k`` (0-based) of a 4D experiment is the file ``t{k+1:02d}.nc``: two
digits up to the 99th step, more beyond (``t100.nc``); :func:`step_files`
finds them all and sorts them by number.

A sweep folder (``sinter4d sweep``) holds one run folder per cell under
``cells/`` (:class:`SweepFolder`); so does a calibration's twins folder
(:func:`twins_folder`). Neither a sweep's cells nor the twins calibrate
themselves (:data:`SWEEP_CELL_STAGES`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "IMPORTED_STAGES",
    "STAGES",
    "STAGE_NAMES",
    "STEP_PATTERN",
    "STEP_LABEL",
    "SWEEP_CELL_STAGES",
    "FitFolder",
    "RunFolder",
    "Stage",
    "SweepFolder",
    "mrc_beside",
    "recon_beside",
    "role_label",
    "stage",
    "step_files",
    "twins_folder",
    "ChooseFolder",
    "choose_folder",
    "step_index",
    "step_name",
]

#: A step file's name: ``t`` then the 1-based step number, at least two digits.
STEP_PATTERN = re.compile(r"^t(\d{2,})\.nc$")

#: How help texts and messages write "any step file".
STEP_LABEL = "tNN.nc"


def step_name(step: int) -> str:
    """The file name of step ``step`` (0-based): ``t01.nc``, …, ``t99.nc``, ``t100.nc``."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return f"t{step + 1:02d}.nc"


def step_index(name: str | Path) -> int | None:
    """The 0-based step of a step file's name, or None when ``name`` is not one."""
    match = STEP_PATTERN.match(Path(name).name)
    return int(match.group(1)) - 1 if match else None


def step_files(folder: str | Path) -> list[Path]:
    """The step files of ``folder`` sorted by step number (empty when the folder is missing)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(step_index(p.name), p) for p in folder.iterdir() if p.is_file()]
    return [p for k, p in sorted((k, p) for k, p in found if k is not None)]


def recon_beside(tilts: str | Path) -> Path:
    """Where the reconstruction of a lone tilt-series file goes by default: beside it, ``NAME_recon.nc``."""
    tilts = Path(tilts)
    return tilts.with_name(f"{tilts.stem}_recon.nc")


def mrc_beside(recon: str | Path, *, binary: bool = False) -> Path:
    """The MRC copy of a reconstruction file: ``NAME.mrc`` (its volume) or ``NAME_binary.mrc`` beside it."""
    recon = Path(recon)
    return recon.with_name(f"{recon.stem}_binary.mrc" if binary else f"{recon.stem}.mrc")


@dataclass(frozen=True)
class FitFolder:
    """The files of one fit (``sinter4d fit --out DIR``; ``RUNDIR/fit`` in a run)."""

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @property
    def chain(self) -> Path:
        """emcee's HDF5 backend: the chain, resumable."""
        return self.path / "chain.h5"

    @property
    def posterior(self) -> Path:
        """ArviZ InferenceData (netCDF): posterior, observed data, diagnostics."""
        return self.path / "posterior.nc"

    @property
    def summary_csv(self) -> Path:
        return self.path / "summary.csv"

    @property
    def summary_txt(self) -> Path:
        return self.path / "summary.txt"

    @property
    def corner(self) -> Path:
        return self.path / "corner.png"

    @property
    def predictive(self) -> Path:
        return self.path / "predictive.png"


@dataclass(frozen=True)
class RunFolder:
    """The files of one run folder, by role.

    Parameters
    ----------
    path : str or Path
        The run folder (it need not exist yet).
    """

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    # the runner's record
    @property
    def spec(self) -> Path:
        """The validated experiment spec as JSON (a rerun with another spec is refused)."""
        return self.path / "spec.json"

    @property
    def manifest(self) -> Path:
        """``manifest.csv``: the copy of the manifest an imported run was made from (marks the run as imported)."""
        return self.path / "manifest.csv"

    @property
    def heating_log(self) -> Path:
        """``heating_log.nc``: an imported run's step-time bounds and holder temperature log (docs/design.md)."""
        return self.path / "heating_log.nc"

    @property
    def settings(self) -> Path:
        """``settings.json``: the pipeline settings an imported run was reconstructed with (others are refused)."""
        return self.path / "settings.json"

    @property
    def imported(self) -> bool:
        """Whether this is an imported run: it holds ``manifest.csv``, or tilt series but neither spec nor truth."""
        if self.manifest.is_file():
            return True
        return bool(self.tilt_files()) and not self.spec.is_file() and not self.truth.is_file()

    @property
    def record(self) -> Path:
        """``run.json``: spec file, package versions, status and time of each stage."""
        return self.path / "run.json"

    @property
    def log(self) -> Path:
        return self.path / "run.log"

    # simulate
    @property
    def truth(self) -> Path:
        return self.path / "truth.nc"

    @property
    def tilts(self) -> Path:
        """The folder of the tilt series, one step file each."""
        return self.path / "tilts"

    # reconstruct
    @property
    def recon(self) -> Path:
        """The folder of the reconstructions, one step file each."""
        return self.path / "recon"

    # calibrate
    @property
    def calibration(self) -> Path:
        """``calibration.nc``: the pipeline's reading model at this run's acquisition (docs/design.md, "Calibration")."""
        return self.path / "calibration.nc"

    @property
    def calibration_twins(self) -> "SweepFolder":
        """The folder of the calibration's twins, ``calibration_twins/`` (:func:`twins_folder`)."""
        return twins_folder(self.calibration)

    @property
    def calibration_choose(self) -> "ChooseFolder":
        """The folder of its choice of settings, ``calibration_choose/`` (:func:`choose_folder`; a card set)."""
        return choose_folder(self.calibration)

    # measure
    @property
    def metrics(self) -> Path:
        return self.path / "metrics.nc"

    @property
    def metrics_csv(self) -> Path:
        """``metrics.csv``: the metrics as a trajectory table (docs/design.md), for ``sinter4d fit`` and spreadsheets."""
        return self.path / "metrics.csv"

    @property
    def metrics_fig8(self) -> Path:
        return self.path / "metrics_fig8.png"

    @property
    def metrics_fig9a(self) -> Path:
        return self.path / "metrics_fig9a.png"

    # validate
    @property
    def validation(self) -> Path:
        return self.path / "validation.nc"

    @property
    def validation_fig8(self) -> Path:
        return self.path / "validation_fig8.png"

    # fit
    @property
    def fit(self) -> FitFolder:
        return FitFolder(self.path / "fit")

    # report
    @property
    def report(self) -> Path:
        return self.path / "report.html"

    # step files
    def tilt(self, step: int) -> Path:
        """The tilt series of step ``step`` (0-based)."""
        return self.tilts / step_name(step)

    def recon_of(self, step: int) -> Path:
        """The reconstruction of step ``step`` (0-based)."""
        return self.recon / step_name(step)

    def recon_mrc_of(self, step: int, *, binary: bool = False) -> Path:
        """The MRC copy of the reconstruction of step ``step``: ``recon/tNN.mrc`` (or ``tNN_binary.mrc``)."""
        return mrc_beside(self.recon_of(step), binary=binary)

    def tilt_files(self) -> list[Path]:
        return step_files(self.tilts)

    def recon_files(self) -> list[Path]:
        return step_files(self.recon)


@dataclass(frozen=True)
class Stage:
    """One stage of a run: its name, the roles it reads and the roles it writes.

    Roles are attribute names of :class:`RunFolder`. A role that is a folder
    of step files (``tilts``, ``recon``) is complete when it holds one file
    per step; the fit is complete when its posterior exists; any other role
    when its file exists. ``needs_truth``: the stage makes or reads the truth
    of a simulated experiment (an experiment spec), so an imported run
    (:attr:`RunFolder.imported`) skips it. ``work``: roles of the stage's
    working files (the calibration's twins), which ``force`` removes with the
    outputs but which completeness does not ask for.
    """

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    help: str
    needs_truth: bool = False
    work: tuple[str, ...] = ()

    def output_paths(self, run: RunFolder) -> list[Path]:
        """The files and folders this stage writes, its working files included (``force`` removes them)."""
        return [_role_path(run, role) for role in (*self.outputs, *self.work)]

    def complete(self, run: RunFolder, n_steps: int) -> bool:
        """Whether every output of this stage is there (then a run skips it)."""
        return all(_role_complete(run, role, n_steps) for role in self.outputs)


_STEP_ROLES = {"tilts": RunFolder.tilt_files, "recon": RunFolder.recon_files}


def _role_path(run: RunFolder, role: str) -> Path:
    value = getattr(run, role)
    return value if isinstance(value, Path) else value.path


def role_label(role: str) -> str:
    """How a role is named to a user, relative to the run folder: ``truth.nc``, ``tilts/tNN.nc``, ``fit/``."""
    path = _role_path(RunFolder(Path()), role)
    if role in _STEP_ROLES:
        return f"{path.as_posix()}/{STEP_LABEL}"
    if not isinstance(getattr(RunFolder(Path()), role), Path):
        return f"{path.as_posix()}/"
    return path.as_posix()


def _role_complete(run: RunFolder, role: str, n_steps: int) -> bool:
    if role in _STEP_ROLES:
        return len(_STEP_ROLES[role](run)) == n_steps
    if role == "fit":
        return run.fit.posterior.is_file()
    return _role_path(run, role).is_file()


#: The stages of a run, in the order they run.
STAGES: tuple[Stage, ...] = (
    Stage("simulate", (), ("truth", "tilts"), "truth.nc and tilts/tNN.nc from an experiment spec", needs_truth=True),
    Stage("calibrate", ("tilts",), ("calibration",),
          "twins of the run's acquisition and the pipeline's reading model, and the settings a choice card "
          "chose: calibration.nc (when the spec's [calibration] enabled)", work=("calibration_twins", "calibration_choose")),
    Stage("reconstruct", ("tilts",), ("recon",), "BM3D, alignment, tilt axis, TV reconstruction, binary: recon/tNN.nc (and .mrc)"),
    Stage("measure", ("recon",), ("metrics", "metrics_csv", "metrics_fig8", "metrics_fig9a"),
          "the paper's metrics per pair and step: metrics.nc (and .csv), Fig. 8 and 9(a)"),
    Stage("validate", ("metrics", "truth", "recon", "tilts"), ("validation", "validation_fig8"),
          "metrics minus truth, pairs found and missed, Dice: validation.nc", needs_truth=True),
    Stage("fit", ("metrics",), ("fit",), "a sintering model fitted to metrics.nc: fit/"),
    Stage("report", (), ("report",), "every output of the run on one page: report.html"),
)

#: The stage names, in order.
STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)


#: The stages of an imported run (no truth): those that neither make nor read one.
IMPORTED_STAGES: tuple[str, ...] = tuple(s.name for s in STAGES if not s.needs_truth)


#: The stages a sweep runs in each cell, and a calibration in each twin: all but the calibration
#: (a cell or a twin never calibrates itself) and the report.
SWEEP_CELL_STAGES: tuple[str, ...] = tuple(name for name in STAGE_NAMES if name not in ("calibrate", "report"))


def stage(name: str) -> Stage:
    """The stage called ``name``."""
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(f"no stage {name!r}; the stages are {', '.join(STAGE_NAMES)}")


@dataclass(frozen=True)
class SweepFolder:
    """The files of a sweep folder: the sweep's record and one run folder per cell."""

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @property
    def dataset(self) -> Path:
        """``sweep.nc``: the validation summaries and the fit's widths on the sweep's grid."""
        return self.path / "sweep.nc"

    @property
    def record(self) -> Path:
        return self.path / "sweep.json"

    @property
    def log(self) -> Path:
        return self.path / "sweep.log"

    @property
    def cells(self) -> Path:
        return self.path / "cells"

    def cell(self, name: str) -> RunFolder:
        """The run folder of the cell called ``name``."""
        return RunFolder(self.cells / name)

    @staticmethod
    def cell_record(run: RunFolder) -> Path:
        """``cell.json`` of a cell's run folder: its status as the sweep saw it."""
        return run.path / "cell.json"

    @staticmethod
    def worker_log(run: RunFolder) -> Path:
        return run.path / "worker.log"


def twins_folder(calibration: str | Path) -> SweepFolder:
    """The folder of a calibration's twin runs, beside its file: ``NAME.nc`` -> ``NAME_twins/``.

    Laid out as a sweep folder (``cells/twin-<seed>/`` is one run folder per
    twin), so a rerun skips the twins that finished (docs/design.md,
    "Calibration").
    """
    path = Path(calibration)
    return SweepFolder(path.with_name(f"{path.stem}_twins"))


class ChooseFolder:
    """The work folder of a choice of pipeline settings (docs/design.md, "Calibration")::

        NAME_choose/twin-<seed>/                       a choosing twin's run folder (spec.json, truth.nc, tilts/)
        NAME_choose/twin-<seed>/candidates/<name>/     one candidate's run folder: recon/, metrics.nc,
                                                       validation.nc, candidate.json; truth.nc, tilts/ and
                                                       spec.json are links to the twin's

    ``<name>`` is the candidate's settings, ``key-value`` joined by ``__``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def twin(self, seed: int) -> RunFolder:
        """The run folder of the choosing twin of ``seed``."""
        return RunFolder(self.path / f"twin-{int(seed)}")

    def candidate(self, seed: int, name: str) -> RunFolder:
        """The run folder of candidate ``name`` on the twin of ``seed``."""
        return RunFolder(self.twin(seed).path / "candidates" / name)

    @staticmethod
    def candidate_record(run: RunFolder) -> Path:
        """A candidate's record: the full pipeline settings it ran (JSON)."""
        return run.path / "candidate.json"

    #: What a candidate's run folder links to in its twin's.
    SHARED = ("spec.json", "truth.nc", "tilts")


def choose_folder(calibration: str | Path) -> ChooseFolder:
    """The work folder of a calibration's choice of settings, beside its file: ``NAME.nc`` -> ``NAME_choose/``."""
    path = Path(calibration)
    return ChooseFolder(path.with_name(f"{path.stem}_choose"))
