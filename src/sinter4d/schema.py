"""The metric schema: name, units and long name of every variable the run folder's datasets hold.

Declared once here; ``truth.nc``, ``metrics.nc``, ``validation.nc`` and
``sweep.nc`` are built from it with :func:`variable` and :func:`attrs`, and a
reader checks a file against it. Units follow UDUNITS (``nm``, ``s``,
``degC``, ``degree``, ``1`` for a ratio or a count).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "COORDINATES",
    "PAIR_METRICS",
    "Variable",
    "attrs",
    "coordinate",
    "variable",
]


@dataclass(frozen=True)
class Variable:
    """One variable of a dataset: its name, units and long name (its dims where fixed)."""

    name: str
    units: str | None
    long_name: str
    dims: tuple[str, ...] | None = None

    @property
    def attrs(self) -> dict[str, str]:
        out = {"long_name": self.long_name}
        if self.units is not None:
            out["units"] = self.units
        return out


def _table(*variables: Variable) -> dict[str, Variable]:
    return {v.name: v for v in variables}


# --------------------------------------------------------------------------- coordinates
#: Coordinates shared by the run folder's datasets.
COORDINATES: dict[str, Variable] = _table(
    Variable("time", None, "tilt-series index", ("time",)),
    Variable("pt_time_s", "s", "cumulative processing time", ("time",)),
    Variable("temperature_C", "degC", "median processing temperature", ("time",)),
    Variable("pair", None, "particle pair", ("pair",)),
    Variable("particle", None, "core index", ("particle",)),
    Variable("axis", None, "spatial axis", ("axis",)),
)


# --------------------------------------------------------------------------- pair metrics
#: The paper's metrics of a pair (Fig. 7 protocol), in ``truth.nc`` and ``metrics.nc``, dims ``(time, pair)``.
PAIR_METRICS: dict[str, Variable] = _table(
    Variable("neck_radius_nm", "nm", "neck radius r_n = W_n/2", ("time", "pair")),
    Variable("distance_nm", "nm", "centre-to-centre distance d", ("time", "pair")),
    Variable("distance_xy_nm", "nm", "centre distance in the x-y plane d_xy", ("time", "pair")),
    Variable("distance_z_nm", "nm", "centre distance along z d_z", ("time", "pair")),
    Variable("particle_radius_nm", "nm", "particle radius r_p (mean of the pair)", ("time", "pair")),
    Variable("aspect_ratio", "1", "particle aspect ratio H/W (mean of the pair)", ("time", "pair")),
    Variable("neck_ratio", "1", "neck ratio r_n/r_p", ("time", "pair")),
    Variable("distance_ratio", "1", "distance ratio d/2r_p", ("time", "pair")),
    Variable("neck_radius_3d_nm", "nm", "neck radius at the narrowest 3D cross-section", ("time", "pair")),
    Variable("surface_gap_nm", "nm",
             "gap between the two particles' surfaces along the line of centres (moment ellipsoids)", ("time", "pair")),
)


# --------------------------------------------------------------------------- truth.nc
#: Variables of ``truth.nc`` beyond the pair metrics.
TRUTH: dict[str, Variable] = _table()


# --------------------------------------------------------------------------- metrics.nc
#: Variables of ``metrics.nc`` beyond the pair metrics.
METRICS: dict[str, Variable] = _table()


# --------------------------------------------------------------------------- validation.nc
#: Variables of ``validation.nc``.
VALIDATION: dict[str, Variable] = _table()


# --------------------------------------------------------------------------- sweep.nc
#: Variables of ``sweep.nc``.
SWEEP: dict[str, Variable] = _table()


# --------------------------------------------------------------------------- access
_ALL: dict[str, Variable] = {}
for _table_of in (COORDINATES, PAIR_METRICS, TRUTH, METRICS, VALIDATION, SWEEP):
    _ALL.update(_table_of)


def attrs(name: str) -> dict[str, str]:
    """``{"units", "long_name"}`` of the variable ``name``."""
    try:
        return dict(_ALL[name].attrs)
    except KeyError:
        raise KeyError(f"{name!r} is not in the metric schema (sinter4d.schema)") from None


def variable(name: str, values, dims: tuple[str, ...] | None = None) -> tuple:
    """``(dims, values, attrs)`` of ``name`` for an ``xr.Dataset`` constructor."""
    known = _ALL[name] if name in _ALL else None
    if known is None:
        raise KeyError(f"{name!r} is not in the metric schema (sinter4d.schema)")
    dims = dims if dims is not None else known.dims
    if dims is None:
        raise ValueError(f"{name!r} has no fixed dims; pass them")
    return dims, np.asarray(values), known.attrs


def coordinate(name: str, values) -> tuple:
    """``(dims, values, attrs)`` of the coordinate ``name``."""
    return variable(name, values)
