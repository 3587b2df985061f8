"""What the report reads from a run folder: small helpers over :class:`~sinter4d.runfolder.RunFolder`.

Every file is found through :class:`~sinter4d.runfolder.RunFolder` (no file
name is spelled here); these helpers read one file each and say ``None``
when it is absent. A part that cannot be shown raises :class:`Missing`, which
the page turns into one line ``not available: <why>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from ..pipeline.settings import PipelineSpec
from ..validation import truth_on_grid
from ..runfolder import RunFolder
from ..specs import parse

__all__ = [
    "NO_TRUTH",
    "Missing",
    "Step",
    "duration",
    "first_last",
    "load_dataset",
    "netcdf_attrs",
    "pipeline_settings",
    "read_json",
    "read_step",
    "relative",
    "step_label",
]


#: What the report says of an imported run (:attr:`RunFolder.imported`) wherever a truth would be shown.
NO_TRUTH = "no truth is available: this is an imported experiment"


class Missing(Exception):
    """An input of a section is absent: the section shows ``not available: <message>``."""


def relative(run: RunFolder, path: Path) -> str:
    """``path`` as written inside the run folder (``tilts/t02.nc``), for messages."""
    try:
        return Path(path).relative_to(run.path).as_posix()
    except ValueError:
        return str(path)


def read_json(path: Path) -> dict | None:
    """``path`` parsed, or None when absent (a broken file raises)."""
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def netcdf_attrs(path: Path) -> dict:
    """Global attributes of a netCDF file (its data are not read)."""
    with xr.open_dataset(path) as ds:
        return dict(ds.attrs)


def load_dataset(path: Path) -> xr.Dataset | None:
    """``path`` loaded into memory, or None when absent."""
    if not path.is_file():
        return None
    with xr.open_dataset(path) as ds:
        return ds.load()


def pipeline_settings(run: RunFolder) -> PipelineSpec | None:
    """The run's pipeline settings: those its spec or settings record, validated; None without either.

    Raises
    ------
    SpecError
        The recorded settings are not valid pipeline settings.
    """
    from ..experiments.reconstruct import recorded_pipeline

    doc, source = recorded_pipeline(run.path)
    return None if doc is None else parse(PipelineSpec, doc, source=source)


def duration(seconds) -> str:
    """A wall time for people: ``12.3 s``, ``4:05 min``, ``1:02:03``; '–' when unknown."""
    if seconds is None or not np.isfinite(float(seconds)):
        return "–"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    h, rem = divmod(round(s), 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d} min"


def step_label(attrs: dict, path: Path) -> str:
    """``t01, processing time 5 s, 370 °C`` from a step file's name and attributes."""
    parts = [Path(path).stem]
    if "pt_time_s" in attrs:
        parts.append(f"processing time {float(attrs['pt_time_s']):g} s")
    if "temperature_C" in attrs:
        parts.append(f"{float(attrs['temperature_C']):g} °C")
    return ", ".join(parts)


def first_last(run: RunFolder) -> list[Path]:
    """The first and the last reconstruction (one when there is one)."""
    recons = run.recon_files()
    if not recons:
        raise Missing(f"no reconstruction in {relative(run, run.recon)}/ (run `sinter4d reconstruct RUNDIR`)")
    return list(dict.fromkeys([recons[0], recons[-1]]))


@dataclass(frozen=True)
class Step:
    """A reconstruction and its truth on the same grid.

    Attributes
    ----------
    path : Path
        The reconstruction file.
    volume, binary : (nz, ny, nx) ndarray
        Grey values and the binary volume (bool).
    coords : (z, y, x) tuple of 1D ndarray
        Coordinates of the grid (nm).
    attrs : dict
        The reconstruction's attributes.
    truth : (nz, ny, nx) bool ndarray or None
        The true cores on the reconstruction's grid, registered when the
        validation gives an offset; None when there is no truth.
    truth_note : str
        How the truth was placed, or why there is none.
    """

    path: Path
    volume: np.ndarray
    binary: np.ndarray
    coords: tuple[np.ndarray, np.ndarray, np.ndarray]
    attrs: dict
    truth: np.ndarray | None
    truth_note: str


def read_step(run: RunFolder, recon: Path) -> Step:
    """The reconstruction ``recon`` and the true cores of its tilt series on its grid."""
    with xr.open_dataset(recon) as ds:
        missing = [v for v in ("volume", "binary", "z", "y", "x") if v not in ds.variables]
        if missing:
            raise Missing(f"{recon.name} lacks {', '.join(missing)}")
        volume, binary = ds["volume"].values, ds["binary"].values != 0
        coords = tuple(ds[c].values.astype(float) for c in ("z", "y", "x"))
        attrs = dict(ds.attrs)
    if run.imported:
        return Step(recon, volume, binary, coords, attrs, None, NO_TRUTH)
    tilts = run.tilts / recon.name
    if not tilts.is_file():
        note = f"no {relative(run, tilts)} (which holds the true volume)"
        return Step(recon, volume, binary, coords, attrs, None, note)
    with xr.open_dataset(tilts) as ds:
        if "true_label" not in ds or "z" not in ds.variables:
            note = f"{relative(run, tilts)} holds no true_label volume (not a simulated series)"
            return Step(recon, volume, binary, coords, attrs, None, note)
        label = ds["true_label"].values
        true_coords = tuple(ds[c].values.astype(float) for c in ("z", "y", "x"))
    offset, note = registration_offset(run, attrs)
    return Step(recon, volume, binary, coords, attrs, truth_on_recon_grid(label, true_coords, coords, offset), note)


def truth_on_recon_grid(label: np.ndarray, true_coords, coords, offset_nm) -> np.ndarray:
    """The true cores sampled (nearest voxel) at the reconstruction's grid shifted by ``offset_nm``.

    The value at a point ``p`` of the reconstruction's grid is the truth's at
    ``p + offset_nm``, outside the truth's grid False: one axis at a time,
    each by :func:`~sinter4d.validation.truth_on_grid`.
    """
    mask = np.asarray(label)
    for axis, (c_true, c, off) in enumerate(zip(true_coords, coords, offset_nm, strict=True)):
        moved = np.moveaxis(mask, axis, 0)
        mask = np.moveaxis(truth_on_grid(moved, c_true, np.asarray(c, dtype=float) + float(off)), 0, axis)
    return mask


def registration_offset(run: RunFolder, recon_attrs: dict) -> tuple[np.ndarray, str]:
    """Offset (z, y, x nm) that takes reconstruction coordinates to true ones, from the validation."""
    try:
        val = load_dataset(run.validation)
    except (OSError, ValueError, RuntimeError) as exc:  # what xarray/netCDF4 raise on a bad file
        return np.zeros(3), f"not registered ({relative(run, run.validation)} unreadable: {exc})"
    if val is None or "registration_offset_nm" not in val:
        return np.zeros(3), f"not registered (no {relative(run, run.validation)})"
    k = int(recon_attrs.get("time_index", 0))
    off = val["registration_offset_nm"]
    if "time" not in off.dims or k >= off.sizes["time"]:
        return np.zeros(3), "not registered"
    values = np.nan_to_num(off.isel(time=k).values.astype(float))
    where = ", ".join(f"{v:+.1f}" for v in values)
    return values, f"registered by the offset of {relative(run, run.validation)} (z, y, x = {where} nm)"
