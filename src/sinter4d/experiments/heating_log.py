"""The heating log as measured, from a manifest: the holder's temperature log of a step and ``heating_log.nc``.

A manifest row may name a CSV of the holder's temperature samples of the PT
step that ended at its series (:func:`read_temperature_log`) and give the
bound of the step's logged duration; :func:`heating_log_dataset` gathers
them for the run folder's ``heating_log.nc`` (docs/design.md, "Heating log
as measured"), which the fit reads beside ``metrics.nc``.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import xarray as xr

from .. import schema
from ..checks import TEMPERATURE_RANGE_TEXT, in_temperature_range
from ..errors import InputError

__all__ = ["TEMPERATURE_LOG_COLUMNS", "csv_rows", "finite_number", "heating_log_dataset", "read_temperature_log"]

#: Columns of a temperature log (one per PT step: the holder's samples).
TEMPERATURE_LOG_COLUMNS = ("time_s", "temperature_C")


def finite_number(text: str, where: str, *, positive: bool = False) -> float:
    """``text`` as a finite float (positive when asked); ``where`` starts the error line."""
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: {text!r} is not a finite number")
    if positive and value <= 0:
        raise InputError(f"{where}: must be positive (got {value:g})")
    return value


def csv_rows(path: Path, what: str) -> list[list[str]]:
    """The rows of a small CSV (UTF-8, BOM allowed), blank lines and ``#`` lines skipped.

    Raises
    ------
    InputError
        One line: ``{path}: cannot read {what} (...)``.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read {what} ({exc.__class__.__name__}: {exc})") from None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return list(csv.reader(lines, skipinitialspace=True))


def read_temperature_log(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The holder's temperature samples of one PT step, checked.

    Parameters
    ----------
    path : Path
        A CSV with a header row and columns ``time_s`` (s from the start of
        the PT step, >= 0, strictly increasing) and ``temperature_C`` (°C);
        blank lines and lines starting with ``#`` are skipped.

    Returns
    -------
    time_s, temperature_C : (n,) ndarray

    Raises
    ------
    InputError
        One line naming the file, the row (1 = the first data row) and the
        column: unreadable, a missing column, no sample, a value that is not
        a finite number, times not increasing or negative, a temperature
        outside (-273.15, 1083) °C.
    """
    table = csv_rows(path, "the temperature log")
    header = [h.strip() for h in table[0]] if table else []
    if sorted(header) != sorted(TEMPERATURE_LOG_COLUMNS):
        raise InputError(f"{path}: the header must name the columns {', '.join(TEMPERATURE_LOG_COLUMNS)} "
                         f"(got {', '.join(header) or 'none'})")
    if len(table) == 1:
        raise InputError(f"{path}: no sample after the header")
    samples = np.empty((len(table) - 1, 2))
    for k, cells in enumerate(table[1:], start=1):
        if len(cells) != len(header):
            raise InputError(f"{path}: row {k}: {len(cells)} cells for {len(header)} columns")
        row = dict(zip(header, (c.strip() for c in cells)))
        for j, column in enumerate(TEMPERATURE_LOG_COLUMNS):
            samples[k - 1, j] = finite_number(row[column], f"{path}: row {k}, column {column}")
        time, temp = samples[k - 1]
        if time < 0:
            raise InputError(f"{path}: row {k}, column time_s: must be >= 0 s from the step's start (got {time:g})")
        if k > 1 and not time > samples[k - 2, 0]:
            raise InputError(f"{path}: row {k}, column time_s: {time:g} s is not after {samples[k - 2, 0]:g} s "
                             f"of row {k - 1} (times must increase strictly)")
        if not in_temperature_range(temp):
            raise InputError(f"{path}: row {k}, column temperature_C: {temp:g} °C is outside {TEMPERATURE_RANGE_TEXT}")
    return samples[:, 0].copy(), samples[:, 1].copy()


def heating_log_dataset(rows) -> xr.Dataset | None:
    """``heating_log.nc`` of manifest rows: step-time bounds and holder samples (:data:`~sinter4d.schema.HEATING_LOG`).

    ``rows``: the checked :class:`~sinter4d.experiments.manifest.ManifestRow` of a manifest, in time order.

    None when no row gives either.
    """
    logged = [(k, row) for k, row in enumerate(rows) if row.temperature_log_samples is not None]
    bounds = [np.nan if row.pt_step_error_bound_s is None else row.pt_step_error_bound_s for row in rows]
    if not logged and np.all(np.isnan(bounds)):
        return None
    cat = (lambda i: np.concatenate([row.temperature_log_samples[i] for _, row in logged]) if logged else np.zeros(0))
    series = np.concatenate([np.full(row.temperature_log_samples[0].size, k) for k, row in logged]) if logged else []
    data = {
        "pt_step_error_bound_s": schema.variable("pt_step_error_bound_s", bounds, table=schema.HEATING_LOG),
        "holder_log_time_s": schema.variable("holder_log_time_s", cat(0), table=schema.HEATING_LOG),
        "holder_log_temperature_C": schema.variable("holder_log_temperature_C", cat(1), table=schema.HEATING_LOG),
        "holder_log_series": schema.variable("holder_log_series", np.asarray(series, dtype=np.int64),
                                             table=schema.HEATING_LOG),
    }
    coords = {"time": schema.coordinate("time", np.arange(len(rows))),
              "pt_time_s": schema.coordinate("pt_time_s", [row.pt_time_s for row in rows]),
              "temperature_C": schema.coordinate("temperature_C", [row.temperature_C for row in rows])}
    files = {str(row.row): str(row.temperature_log) for _, row in logged}
    return xr.Dataset(data, coords=coords, attrs={"title": "sinter4d heating log as measured",
                                                  "temperature_log_files": json.dumps(files)})
