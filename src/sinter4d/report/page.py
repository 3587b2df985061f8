"""The run report's page: its sections, each built from the run folder, put together in one HTML file.

:func:`build_report` reads the run folder through
:class:`~sinter4d.runfolder.RunFolder` (docs/design.md, "Layout") and writes a
single HTML file with inline CSS and every figure embedded as a PNG data
URI, in the sections of :data:`SECTIONS`:

1. run metadata: spec, key settings, stage timings (the run's record), versions;
2. the tilt series of the first time step, raw and BM3D-denoised;
3. orthogonal slices of the first and last reconstructions beside the truth;
4. 3D surfaces (marching cubes) of the first and last binary volumes;
5. the paper's Fig. 8 and Fig. 9(a) made by the measurement and the validation;
6. the validation table;
7. the calibration (twins, reading model, reading curves by orientation,
   errors before and after correction), only when the run holds
   ``calibration.nc`` (:data:`SECTION_FILES`);
8. the fit (summary table and header, corner plot, posterior predictive).

A part whose inputs are missing (a partial run) or unreadable shows one line
``not available: <why>``; the report itself never fails on them. The report
of an imported run (:attr:`RunFolder.imported
<sinter4d.runfolder.RunFolder.imported>`) says plainly that no truth is
available, and leaves out the sections of the stages that need one
(:data:`SECTION_STAGES`, :attr:`Stage.needs_truth
<sinter4d.runfolder.Stage>`). Figures come
from :mod:`sinter4d.figures`, HTML from :mod:`.html`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from tqdm.auto import tqdm

from .. import __version__
from ..errors import InputError
from ..io.atomic import write_text_atomic
from ..runfolder import RunFolder, stage
from . import html as hp
from .calibration import section_calibration
from .fit import section_fit
from .folder import Missing, read_json
from .images import section_slices, section_surface, section_tilts
from .metadata import section_metadata
from .results import section_metrics, section_validation

__all__ = ["SECTIONS", "SECTION_FILES", "SECTION_STAGES", "build_report", "report_sections"]

logger = logging.getLogger(__name__)

#: (anchor, heading) of the report's sections, in order.
SECTIONS = (
    ("metadata", "1. Run metadata"),
    ("tilts", "2. Tilt series"),
    ("slices", "3. Orthogonal slices"),
    ("surface", "4. 3D surface rendering"),
    ("metrics", "5. Fig. 8 and Fig. 9(a)"),
    ("validation", "6. Validation against the truth"),
    ("calibration", "7. Calibration"),
    ("fit", "8. Fit"),
)

#: The stage whose outputs a section shows, when it shows one stage's alone.
SECTION_STAGES = {"validation": "validate", "calibration": "calibrate", "fit": "fit"}

#: Sections shown only when the run folder holds this role's file (a stage a spec turns on).
SECTION_FILES = {"calibration": "calibration"}

_BUILDERS: dict[str, Callable[[RunFolder], str]] = {
    "metadata": section_metadata,
    "tilts": section_tilts,
    "slices": section_slices,
    "surface": section_surface,
    "metrics": section_metrics,
    "validation": section_validation,
    "calibration": section_calibration,
    "fit": section_fit,
}


def report_sections(run: RunFolder) -> tuple[tuple[str, str], ...]:
    """The (anchor, heading) of the sections ``run``'s report shows, numbered in order.

    Every section of :data:`SECTIONS`, but for an imported run those of the
    stages that need a truth, and those of :data:`SECTION_FILES` whose file
    the run does not hold.
    """
    shown = [(a, title) for a, title in SECTIONS
             if not (run.imported and a in SECTION_STAGES and stage(SECTION_STAGES[a]).needs_truth)
             and (a not in SECTION_FILES or getattr(run, SECTION_FILES[a]).is_file())]
    return tuple((a, f"{k}. {title.split('. ', 1)[1]}") for k, (a, title) in enumerate(shown, start=1))


def _render(anchor: str, run: RunFolder) -> str:
    """Body of one section; a missing or unreadable input becomes a 'not available' line."""
    try:
        return _BUILDERS[anchor](run)
    except Missing as exc:
        return hp.not_available(str(exc))
    except Exception as exc:  # a partial or odd run folder must still give a report
        logger.warning("report section %r failed: %s", anchor, exc, exc_info=logger.isEnabledFor(logging.DEBUG))
        return hp.not_available(f"{type(exc).__name__}: {exc}")


def build_report(run_dir: str | Path, *, progress: bool = True) -> Path:
    """Write the run's report page (atomically) from whatever the run folder holds; return its path.

    The report is one self-contained HTML file (inline CSS, figures as PNG
    data URIs, no scripts, no external links) with the sections of
    :func:`report_sections`. A section whose inputs are missing or
    unreadable shows ``not available: <why>`` instead of failing.

    Parameters
    ----------
    run_dir : str or Path
        A run folder (:class:`~sinter4d.runfolder.RunFolder`), any of whose
        files may be missing.
    progress : bool, optional
        Show a progress bar over the sections.

    Returns
    -------
    Path
        :attr:`RunFolder.report <sinter4d.runfolder.RunFolder.report>`.

    Raises
    ------
    InputError
        ``run_dir`` is not a folder.
    """
    run = RunFolder(run_dir)
    if not run.path.is_dir():
        raise InputError(f"{run.path}: not a run folder (no such directory)")
    bodies = []
    t0 = time.perf_counter()
    for anchor, title in tqdm(report_sections(run), desc=f"report {run.path.name}", unit="section", disable=not progress):
        bodies.append((anchor, title, _render(anchor, run)))
    try:
        name = (read_json(run.spec) or {}).get("name") or run.path.name
    except ValueError:
        name = run.path.name
    subtitle = (f"{run.path.resolve()} — made {datetime.now().astimezone().isoformat(timespec='seconds')} by "
                f"sinter4d {__version__} in {time.perf_counter() - t0:.1f} s")
    text = hp.page(f"sinter4d run report: {name}", bodies, subtitle=subtitle)
    out = write_text_atomic(run.report, text)
    logger.info("report written to %s (%.1f MB)", out, out.stat().st_size / 1e6)
    return out
