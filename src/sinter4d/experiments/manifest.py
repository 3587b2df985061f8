"""An experiment manifest: a real 4D experiment brought in as a run folder (``sinter4d import MANIFEST.csv``).

A manifest is a CSV table, one row per tilt series (one time step of the
heating), in time order (docs/design.md, "Experiment manifest")::

    stack,angles,pt_time_s,temperature_C,reference,pixel_size_nm
    series/t0.mrc,series/t0.rawtlt,0,25,series/ref50.mrc,1.04
    series/t1.mrc,series/t1.rawtlt,5,372,,1.04

Columns ``stack``, ``angles``, ``pt_time_s`` and ``temperature_C`` are
required; ``reference`` (a multi-frame stack, or its average, of one region
at one tilt: it tunes BM3D's noise level as the paper's 50-frame average
did), ``reference_tilt_deg`` (the tilt of the reference, default 0°),
``pixel_size_nm`` and ``tilt_axis_rotation_deg`` are optional. Paths are
relative to the CSV; ``angles`` may be empty when the stack's own metadata
holds them. Two optional columns describe the heating log as it was
measured (docs/design.md, "Heating log as measured"), for the PT step that
ended at the row's series (so not on the first row):
``pt_step_error_bound_s`` (the bound b of the logged duration's error, s:
the paper's "error of ± 1 s" of a holder logging once a second) and
``temperature_log`` (a CSV of the holder's samples of that step, columns
``time_s`` (s from the step's start) and ``temperature_C``). They go into
the run folder's ``heating_log.nc``, which the fit reads beside
``metrics.nc``.

:func:`import_manifest` reads and checks every row (every stack is read)
and writes the run folder's ``tilts/tNN.nc`` in time order, a copy of the
manifest (:attr:`RunFolder.manifest <sinter4d.runfolder.RunFolder.manifest>`,
which marks the run as imported) and the run's record, into a temporary
folder renamed into place at the end: a manifest with any problem leaves no
file. Every problem is one :class:`~sinter4d.errors.InputError` line naming
the CSV, the row (1 = the first data row) and the column.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from ..checks import TEMPERATURE_RANGE_TEXT, in_temperature_range
from ..errors import InputError
from ..io.atomic import atomic_folder, write_json_atomic
from ..io.netcdf import write_dataset_atomic
from ..io.stacks import file_sha256, read_frames, read_tilt_series
from ..runfolder import RunFolder
from .heating_log import finite_number as _number
from .heating_log import csv_rows, heating_log_dataset, read_temperature_log

__all__ = [
    "MANIFEST_COLUMNS",
    "OPTIONAL_COLUMNS",
    "ManifestRow",
    "import_manifest",
    "read_manifest",
    "read_reference",
]

#: Columns every manifest has.
MANIFEST_COLUMNS = ("stack", "angles", "pt_time_s", "temperature_C")
#: Columns a manifest may have.
OPTIONAL_COLUMNS = ("reference", "reference_tilt_deg", "pixel_size_nm", "tilt_axis_rotation_deg",
                    "pt_step_error_bound_s", "temperature_log")

#: Relative difference of pixel sizes taken as the same pixel size.
_PIXEL_RTOL = 1e-3


@dataclass(frozen=True)
class ManifestRow:
    """One row of a manifest, checked, with its paths resolved against the CSV's folder.

    Attributes
    ----------
    row : int
        1-based number of the data row (the header is not counted).
    stack : Path
    angles : Path or None
        None: the stack's metadata holds the tilt angles.
    pt_time_s : float
        Cumulative processing time, s.
    temperature_C : float
        Processing temperature, °C.
    reference : Path or None
    reference_tilt_deg : float
        Tilt of the reference, deg (0 when the column is absent or empty).
    pixel_size_nm, tilt_axis_rotation_deg : float or None
        None: from the stack's metadata.
    pt_step_error_bound_s : float or None
        Bound of the error of the logged duration of the PT step that ended
        at this series (s); None: not given (the fit spec's bound).
    temperature_log : Path or None
        The holder's temperature log of that step.
    temperature_log_samples : ((n,) ndarray, (n,) ndarray) or None
        Its times (s from the step's start) and temperatures (°C), checked.
    """

    row: int
    stack: Path
    angles: Path | None
    pt_time_s: float
    temperature_C: float
    reference: Path | None = None
    reference_tilt_deg: float = 0.0
    pixel_size_nm: float | None = None
    tilt_axis_rotation_deg: float | None = None
    pt_step_error_bound_s: float | None = None
    temperature_log: Path | None = None
    temperature_log_samples: tuple | None = field(default=None, compare=False)


# -- the reference of a row ---------------------------------------------------------------------


def read_reference(path: Path) -> tuple[np.ndarray, int]:
    """A reference: its frames averaged (or the one image of a stored average), and the number of frames.

    Returns
    -------
    image : (ny, nx) float32 ndarray
    n_frames : int
        Frames averaged (1 for a single image: an average stored by the microscope).

    Raises
    ------
    InputError
        Unknown or unreadable format, not one image or a stack of them, NaN/inf pixels.
    """
    data = np.asarray(read_frames(path))
    if data.ndim not in (2, 3) or data.dtype.kind not in "biuf":
        raise InputError(f"{path}: a reference is an image or a stack of frames; got {data.dtype} "
                         f"of shape {data.shape}")
    frames = np.asarray(data, dtype=np.float32).reshape((-1, *data.shape[-2:]))
    if not np.isfinite(frames).all():
        raise InputError(f"{path}: {int((~np.isfinite(frames)).sum())} pixel(s) are NaN or infinite")
    return frames.mean(axis=0, dtype=np.float64).astype(np.float32), frames.shape[0]


def _origin(ds: xr.Dataset, key: str, given: bool) -> str:
    """Where the reader says ``key`` came from: ``manifest`` when the row gave it, else the reader's
    ``{key}_source`` (``file`` or ``file metadata``: the stack's metadata)."""
    if given:
        return "manifest"
    source = str(ds.attrs.get(f"{key}_source", "stack metadata"))
    return "stack metadata" if source in ("file", "file metadata") else source


# -- the CSV -------------------------------------------------------------------------------------


def _parse_row(cells: dict[str, str], k: int, csv_path: Path) -> ManifestRow:
    base = csv_path.parent

    def where(column: str) -> str:
        return f"{csv_path}: row {k}, column {column}"

    def path_of(column: str, *, required: bool) -> Path | None:
        text = cells.get(column, "")
        if not text:
            if required:
                raise InputError(f"{where(column)}: missing value")
            return None
        path = (base / text).resolve()
        if not path.is_file():
            raise InputError(f"{where(column)}: no such file {text}")
        return path

    for column in ("pt_time_s", "temperature_C"):
        if not cells.get(column):
            raise InputError(f"{where(column)}: missing value")
    values = {c: _number(cells[c], where(c), positive=c in ("pixel_size_nm", "pt_step_error_bound_s"))
              if cells.get(c) else None
              for c in ("pt_time_s", "temperature_C", "reference_tilt_deg", "pixel_size_nm", "tilt_axis_rotation_deg",
                        "pt_step_error_bound_s")}
    if values["pt_time_s"] < 0:
        raise InputError(f"{where('pt_time_s')}: must be >= 0 s (got {values['pt_time_s']:g})")
    if not in_temperature_range(values["temperature_C"]):
        raise InputError(f"{where('temperature_C')}: {values['temperature_C']:g} °C is outside {TEMPERATURE_RANGE_TEXT}")
    if values["reference_tilt_deg"] is not None and abs(values["reference_tilt_deg"]) >= 90:
        raise InputError(f"{where('reference_tilt_deg')}: must lie within ±90° "
                         f"(got {values['reference_tilt_deg']:g})")
    reference = path_of("reference", required=False)
    if values["reference_tilt_deg"] is not None and reference is None:
        raise InputError(f"{where('reference_tilt_deg')}: given without a reference")
    temperature_log = path_of("temperature_log", required=False)
    samples = None
    if temperature_log is not None:
        try:
            samples = read_temperature_log(temperature_log)
        except InputError as exc:
            raise InputError(f"{where('temperature_log')}: {exc}") from None
    return ManifestRow(
        row=k,
        stack=path_of("stack", required=True),
        angles=path_of("angles", required=False),
        pt_time_s=values["pt_time_s"],
        temperature_C=values["temperature_C"],
        reference=reference,
        reference_tilt_deg=values["reference_tilt_deg"] or 0.0,
        pixel_size_nm=values["pixel_size_nm"],
        tilt_axis_rotation_deg=values["tilt_axis_rotation_deg"],
        pt_step_error_bound_s=values["pt_step_error_bound_s"],
        temperature_log=temperature_log,
        temperature_log_samples=samples,
    )


def read_manifest(path: str | Path) -> list[ManifestRow]:
    """Read and check a manifest's table (not yet its stacks).

    Parameters
    ----------
    path : str or Path
        The CSV (UTF-8, a header row; blank lines and lines starting with
        ``#`` are skipped; cells are stripped of spaces).

    Returns
    -------
    list of ManifestRow
        In the table's order, which is time order.

    Raises
    ------
    InputError
        One line naming the CSV, the row and the column: unreadable file,
        a missing or unknown or repeated column, no row, a row with too many
        cells, a missing value, a value that is not a number, a file that
        does not exist, times not strictly increasing; a step-time bound
        not below its step, a temperature log that is bad
        (:func:`~sinter4d.experiments.heating_log.read_temperature_log`) or
        starts after its step, either on the first row.
    """
    path = Path(path)
    table = csv_rows(path, "the manifest")
    if not table:
        raise InputError(f"{path}: empty manifest (a header row, then one row per tilt series)")
    header = [h.strip() for h in table[0]]
    known = MANIFEST_COLUMNS + OPTIONAL_COLUMNS
    for column in header:
        if column not in known:
            raise InputError(f"{path}: column {column or '(empty)'}: unknown column "
                             f"(the columns are {', '.join(known)})")
        if header.count(column) > 1:
            raise InputError(f"{path}: column {column}: given twice")
    for column in MANIFEST_COLUMNS:
        if column not in header:
            raise InputError(f"{path}: column {column}: missing (a manifest has columns {', '.join(MANIFEST_COLUMNS)})")
    if len(table) == 1:
        raise InputError(f"{path}: empty manifest: no row after the header")
    rows = []
    for k, cells in enumerate(table[1:], start=1):
        if len(cells) > len(header):
            raise InputError(f"{path}: row {k}: {len(cells)} cells for {len(header)} columns")
        rows.append(_parse_row(dict(zip(header, (c.strip() for c in cells))), k, path))
    for prev, row in zip(rows, rows[1:]):
        if not row.pt_time_s > prev.pt_time_s:
            raise InputError(f"{path}: row {row.row}, column pt_time_s: {row.pt_time_s:g} s is not after "
                             f"{prev.pt_time_s:g} s of row {prev.row} (times must increase strictly)")
    _check_heating_columns(rows, path)
    return rows


def _check_heating_columns(rows: list[ManifestRow], path: Path) -> None:
    """The step-time bound and temperature log of a row belong to the PT step that ended there."""
    first = rows[0]
    for column, value in (("pt_step_error_bound_s", first.pt_step_error_bound_s),
                          ("temperature_log", first.temperature_log)):
        if value is not None:
            raise InputError(f"{path}: row {first.row}, column {column}: the first series ends no PT step "
                             "(leave the cell empty)")
    for prev, row in zip(rows, rows[1:]):
        step = row.pt_time_s - prev.pt_time_s
        if row.pt_step_error_bound_s is not None and not row.pt_step_error_bound_s < step:
            raise InputError(f"{path}: row {row.row}, column pt_step_error_bound_s: {row.pt_step_error_bound_s:g} s "
                             f"is not below the step's logged {step:g} s")
        if row.temperature_log_samples is not None and not row.temperature_log_samples[0][0] < step:
            raise InputError(f"{path}: row {row.row}, column temperature_log: {row.temperature_log}: the first sample "
                             f"({row.temperature_log_samples[0][0]:g} s) is not within the step's logged {step:g} s")


# -- the run folder --------------------------------------------------------------------------------


def _step_dataset(row: ManifestRow, k: int, csv_path: Path, csv_sha: str) -> xr.Dataset:
    """The tilt series of one row, with its time, reference and provenance."""
    where = f"{csv_path}: row {row.row}"
    try:
        ds = read_tilt_series(row.stack, angles=row.angles, pixel_size_nm=row.pixel_size_nm,
                              tilt_axis_rotation_deg=row.tilt_axis_rotation_deg)
    except InputError as exc:
        raise InputError(f"{where}, column stack: {exc}") from None
    provenance = {
        "manifest": str(csv_path), "manifest_sha256": csv_sha, "row": row.row,
        "stack": {"file": str(row.stack), "sha256": ds.attrs["source_sha256"]},  # the reader hashed it
        "angles": ({"from": "manifest", "file": str(row.angles), "sha256": file_sha256(row.angles)}
                   if row.angles is not None else {"from": _origin(ds, "angles", False)}),
        "pixel_size_nm": {"value": float(ds.attrs["pixel_size_nm"]),
                          "from": _origin(ds, "pixel_size", row.pixel_size_nm is not None)},
        "pt_time_s": {"value": row.pt_time_s, "from": "manifest"},
        "temperature_C": {"value": row.temperature_C, "from": "manifest"},
    }
    if row.pt_step_error_bound_s is not None:
        provenance["pt_step_error_bound_s"] = {"value": row.pt_step_error_bound_s, "from": "manifest"}
    if row.temperature_log is not None:
        provenance["temperature_log"] = {"file": str(row.temperature_log), "sha256": file_sha256(row.temperature_log)}
    if row.tilt_axis_rotation_deg is not None or "tilt_axis_rotation_deg" in ds.attrs:
        provenance["tilt_axis_rotation_deg"] = {"value": float(ds.attrs.get("tilt_axis_rotation_deg", np.nan)),
                                             "from": _origin(ds, "tilt_axis_rotation",
                                                             row.tilt_axis_rotation_deg is not None)}
    if row.reference is not None:
        try:
            image, n_frames = read_reference(row.reference)
        except InputError as exc:
            raise InputError(f"{where}, column reference: {exc}") from None
        if image.shape != ds["counts"].shape[1:]:
            raise InputError(f"{where}, column reference: images of {image.shape[1]} x {image.shape[0]} px; "
                             f"the stack's are {ds.sizes['x']} x {ds.sizes['y']} px")
        angles = ds["tilt_angle"].values
        if not angles.min() - 1e-6 <= row.reference_tilt_deg <= angles.max() + 1e-6:
            raise InputError(f"{where}, column reference_tilt_deg: {row.reference_tilt_deg:g}° is outside the "
                             f"series' tilts ({angles.min():g}° … {angles.max():g}°)")
        ds["reference"] = (("y", "x"), image, {
            "units": ds["counts"].attrs.get("units", "1"),
            "long_name": f"mean of {n_frames} frame(s) at {row.reference_tilt_deg:g} deg tilt",
            "tilt_angle_deg": row.reference_tilt_deg, "n_frames": n_frames})
        ds.attrs["reference_tilt_deg"] = row.reference_tilt_deg
        provenance["reference"] = {"file": str(row.reference), "sha256": file_sha256(row.reference),
                                   "n_frames": n_frames, "tilt_deg": row.reference_tilt_deg}
    ds.attrs.update(
        title="sinter4d imported HAADF tilt series",
        pt_time_s=row.pt_time_s,
        temperature_C=row.temperature_C,
        time_index=k,
        manifest_file=str(csv_path),
        manifest_row=row.row,
        provenance=json.dumps(provenance),
    )
    return ds


def _check_same_grid(ds: xr.Dataset, row: ManifestRow, first: tuple[float, tuple, int], csv_path: Path) -> None:
    """Every series of a run has one pixel size and one image size (the measurement needs one grid).

    ``first``: pixel size (nm), image shape (ny, nx) and row of the first series.
    """
    pixel0, shape0, row0 = first
    pixel = float(ds.attrs["pixel_size_nm"])
    if abs(pixel - pixel0) > _PIXEL_RTOL * pixel0:
        column = "pixel_size_nm" if row.pixel_size_nm is not None else "stack"
        raise InputError(f"{csv_path}: row {row.row}, column {column}: pixel size {pixel:g} nm differs from "
                         f"{pixel0:g} nm of row {row0} (every stack of a run must have one pixel size)")
    shape = ds["counts"].shape[1:]
    if shape != shape0:
        raise InputError(f"{csv_path}: row {row.row}, column stack: images of {shape[1]} x {shape[0]} px differ "
                         f"from the {shape0[1]} x {shape0[0]} px of row {row0} (every stack of a run must have one "
                         f"image size)")


def import_manifest(path: str | Path, out_dir: str | Path) -> RunFolder:
    """Bring a real 4D experiment into a run folder: one ``tilts/tNN.nc`` per manifest row, in time order.

    Parameters
    ----------
    path : str or Path
        The manifest (:func:`read_manifest`).
    out_dir : str or Path
        The run folder to make; it must not exist, or be empty.

    Returns
    -------
    RunFolder
        Holding ``tilts/tNN.nc`` (attributes ``pt_time_s`` (s),
        ``temperature_C`` (°C), ``time_index``, ``source_file``,
        ``source_sha256``, ``manifest_file``, ``manifest_row`` and
        ``provenance``: a JSON string saying where each value came from, the
        manifest or the stack's metadata, with each file's SHA-256; a
        ``reference`` (y, x) image when the row names one), the copy of the
        manifest, ``heating_log.nc`` when a row gives ``pt_step_error_bound_s``
        or ``temperature_log`` (:func:`heating_log_dataset`) and ``run.json``
        (``kind = "imported"``).

    Raises
    ------
    InputError
        One line: a problem of the table (:func:`read_manifest`), a stack or
        reference that cannot be read, stacks of different pixel or image
        size, or a run folder that exists and is not empty. Nothing is
        written then.
    """
    from .record import code_record, package_versions, utc_timestamp

    csv_path = Path(path).resolve()
    run = RunFolder(out_dir)
    if run.path.exists() and not (run.path.is_dir() and not any(run.path.iterdir())):
        raise InputError(f"{run.path}: exists and is not empty; choose another --out or remove it")
    rows = read_manifest(csv_path)
    csv_sha = file_sha256(csv_path)
    with atomic_folder(run.path) as tmp:
        staged = RunFolder(tmp)
        first = None
        for k, row in enumerate(rows):
            ds = _step_dataset(row, k, csv_path, csv_sha)
            if first is None:
                first = (float(ds.attrs["pixel_size_nm"]), ds["counts"].shape[1:], row.row)
            _check_same_grid(ds, row, first, csv_path)
            write_dataset_atomic(ds, staged.tilt(k))
            del ds
        heating = heating_log_dataset(rows)
        if heating is not None:
            write_dataset_atomic(heating, staged.heating_log)
        shutil.copyfile(csv_path, staged.manifest)
        write_json_atomic(staged.record, {
            "kind": "imported",
            "manifest": {"file": str(csv_path), "sha256": csv_sha, "rows": len(rows)},
            "imported": utc_timestamp(),
            "versions": package_versions(),
            "code": code_record(),
            "stages": {},
        })
    return run
