"""Sweep specs: a grid of settings over one experiment spec (``sinter4d sweep``).

A sweep spec (``experiments/*_sweep.toml``, layout in ``experiments/README.md``)::

    name = "tilt_sweep"
    description = "..."
    base = "sweep_base.toml"                      # an experiment spec, relative to this file

    [sweep]
    "acquisition.tilt_range_deg" = [30, 50, 70]   # derived: tilt_min_deg = -v, tilt_max_deg = +v
    "acquisition.tilt_step_deg" = [1, 2, 5]

Each ``[sweep]`` key is a dotted key of the experiment spec (``section.key``,
a nested table's ``section.table.key`` such as ``acquisition.probe.enabled``,
``sintering.parameters.NAME``, ``seed``) or a derived key
(:data:`DERIVED_KEYS`); the grid is the Cartesian product of the lists, one
dimension per key, named by :func:`dim_name` (the key's last part; a switch
``TABLE.enabled`` is ``TABLE_enabled``). A cell's spec is the base
spec with the cell's values put in, validated like any experiment spec. Every
cell keeps the base seed: the same specimen and sintering truth in every
cell, so that cells differ only in the swept settings.

The card itself is a :class:`sinter4d.specs.Spec`; each swept value is checked
on its own, with the experiment spec's own field type, when the sweep spec is
read (a wrong type or a value out of range is a
:class:`~sinter4d.errors.SpecError` of one line naming the file and the key,
and nothing is written); a combination that is invalid (a tilt step not
dividing the tilt range) fails its cell only.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, TypeAdapter, ValidationError, field_validator

from ..errors import SpecError
from ..io.toml import read_toml
from ..schema import SWEEP
from ..specs import Spec, parse
from .spec import ExperimentSpec, parse_spec

__all__ = ["DERIVED_KEYS", "Cell", "SweepSpec", "dim_name", "load_sweep_spec", "parse_sweep_spec"]

#: Keys a sweep may set that are not spec keys: key -> what it means.
DERIVED_KEYS = {
    "acquisition.tilt_range_deg": "symmetric tilt range: tilt_min_deg = -v, tilt_max_deg = +v (0 < v <= 90)",
}

_NOT_SWEPT = ("name", "description")


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
        """Dimension names of the grid (:func:`dim_name` of each key)."""
        return tuple(dim_name(k) for k in self.keys)

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


def dim_name(key: str) -> str:
    """The grid dimension a swept key makes: its last part, with its table's name for a switch.

    ``acquisition.dose_e_per_nm2`` -> ``dose_e_per_nm2``; a switch of a nested
    table, ``acquisition.probe.enabled``, -> ``probe_enabled``.
    """
    parts = key.split(".")
    return f"{parts[-2]}_enabled" if len(parts) > 2 and parts[-1] == "enabled" else parts[-1]


def _setting_type(key: str) -> TypeAdapter | str:
    """A validator of one value of ``key``, or a message saying why ``key`` cannot be swept."""
    unknown = "unknown setting (a dotted experiment-spec key such as acquisition.dose_e_per_nm2)"
    if key in DERIVED_KEYS:
        return TypeAdapter(Annotated[float, Field(gt=0.0, le=90.0)])
    parts = key.split(".")
    if len(parts) == 3 and parts[:2] == ["sintering", "parameters"]:
        return TypeAdapter(float)
    if parts[0] in _NOT_SWEPT:
        return unknown
    model = ExperimentSpec
    for depth, part in enumerate(parts):  # down the nested tables: acquisition.probe.enabled
        info = model.model_fields.get(part)
        if info is None:
            return unknown
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            if depth == len(parts) - 1:
                return f"is a section; name one of its keys ({key}.{next(iter(ann.model_fields))}, ...)"
            model = ann
            continue
        return _field_type(info) if depth == len(parts) - 1 else unknown
    return unknown


class SweepCard(Spec):
    """The sweep spec as written: its keys and their types (the grid is checked by :func:`parse_sweep_spec`)."""

    name: str | None = None
    description: str = ""
    base: str
    sweep: dict

    @field_validator("base")
    @classmethod
    def _names_a_spec(cls, value: str) -> str:
        if not value.strip():
            raise ValueError('must name an experiment spec (e.g. "sweep_base.toml")')
        return value

    @field_validator("sweep", mode="before")
    @classmethod
    def _is_a_table(cls, value):
        if not isinstance(value, dict):
            raise ValueError(f"must be a table of setting = [values], got {type(value).__name__}")
        return value


def _fail(source: Path, key: str, what: str):
    """One line naming the file and the key, as :func:`sinter4d.specs.format_validation_error` writes them."""
    raise SpecError(f"{source}: {key}: {what}")


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
    card = parse(SweepCard, doc, source=source)
    base_path = (source.resolve().parent / card.base).resolve()
    if not base_path.is_file():
        _fail(source, "base", f"no such experiment spec {base_path}")
    base_doc = read_toml(base_path)
    base_spec = parse_spec(base_doc, source=base_path)
    table = _flatten(card.sweep)
    if not table:
        _fail(source, "sweep", "names no setting (add e.g. \"acquisition.dose_e_per_nm2\" = [25, 250, 2500])")
    keys, values, dims = [], [], {}
    for key, vals in table.items():
        where = f"sweep.{key}"
        _check_values(source, where, _setting_type(key), vals)
        dim = dim_name(key)
        if dim in SWEEP:
            _fail(source, where, f"makes a dimension {dim!r}, a name sweep.nc uses for its own variable")
        if dim in dims:
            _fail(source, where, f"sweeps the same name {dim!r} as {dims[dim]} (one dimension per name)")
        dims[dim] = where
        keys.append(key)
        values.append(tuple(vals))
    if "acquisition.tilt_range_deg" in keys:
        clash = [k for k in ("acquisition.tilt_min_deg", "acquisition.tilt_max_deg") if k in keys]
        if clash:
            _fail(source, f"sweep.{clash[0]}", "cannot be swept with acquisition.tilt_range_deg, which sets it")
    fit_spec_for_run(base_spec, base_path)  # a bad [fit] section fails the sweep now, not every cell
    return SweepSpec(source, card.name if card.name is not None else source.stem, card.description, base_path,
                     base_doc, base_spec, tuple(keys), tuple(values))


def _check_values(source: Path, where: str, check: TypeAdapter | str, vals) -> None:
    """The values of one swept key: a non-empty list of one kind, each valid for the key, none repeated."""
    if isinstance(check, str):
        _fail(source, where, check)
    if not isinstance(vals, list) or not vals:
        _fail(source, where, f"must be a non-empty list of values (got {vals!r})")
    kinds = set()
    for i, v in enumerate(vals):
        if not isinstance(v, (bool, int, float, str)):
            _fail(source, f"{where}[{i}]", f"must be a number, a string or a boolean (got {v!r})")
        if isinstance(v, float) and not math.isfinite(v):
            _fail(source, f"{where}[{i}]", f"must be finite (got {v})")
        try:
            check.validate_python(v, strict=True)  # strict: "25" is not a dose, true is not a count
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            _fail(source, f"{where}[{i}]", f"{err['msg'].removeprefix('Value error, ')} (got {v!r})")
        kinds.add("bool" if isinstance(v, bool) else "number" if isinstance(v, (int, float)) else "str")
    if len(kinds) > 1:
        _fail(source, where, f"values must all be of one kind (got {', '.join(sorted(kinds))})")
    if len({_format_value(v) for v in vals}) != len(vals):
        _fail(source, where, f"values repeat (got {vals!r})")


def load_sweep_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec file (see :func:`parse_sweep_spec`)."""
    return parse_sweep_spec(read_toml(path), source=path)
