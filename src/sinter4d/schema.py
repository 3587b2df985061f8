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
#: Variables of ``sweep.nc`` whose names are fixed (dims: the sweep's grid, ``stage`` where named).
#: Beside them: the validation summaries (``median_abs_error_<metric>``, ``max_abs_error_<metric>``,
#: units and long name from ``validation.nc``) and the posterior of each fitted parameter
#: (:data:`SWEEP_POSTERIOR`).
SWEEP: dict[str, Variable] = _table(
    Variable("stage", "1", "stage of the run", ("stage",)),
    Variable("pairs_true", "1", "true pairs in the specimen"),
    Variable("pairs_found", "1", "true pairs matched by a measured pair at some time step"),
    Variable("pairs_missed", "1", "true pairs never matched"),
    Variable("pairs_spurious", "1", "measured pairs never matching a true pair"),
    Variable("dice", "1", "median over time steps of the Dice of the binary volume against the true cores"),
    Variable("fit_n_over_tau", "1", "chain length after burn-in over the autocorrelation time (want >= 50)"),
    Variable("run_seconds", "s", "wall time of the cell's stages (sum over stages)"),
    Variable("stage_seconds", "s", "wall time of each stage of the cell"),
    Variable("status", "1", "cell status (ok, failed, not run)"),
    Variable("failed_stage", "1", "stage at which the cell failed"),
    Variable("error", "1", "error of a failed cell"),
    Variable("cell", "1", "cell folder under cells/"),
)

#: Posterior summaries of a fitted parameter in ``sweep.nc``: name and long name templates
#: (``{param}``; units those of the parameter).
SWEEP_POSTERIOR: dict[str, str] = {
    "posterior_width_{param}": "width of the 94 % HDI of {param}",
    "posterior_mean_{param}": "posterior mean of {param}",
    "posterior_sd_{param}": "posterior standard deviation of {param}",
}

#: The settings most often swept, coordinates of ``sweep.nc``: units and long name by the key's
#: last part (any other setting: units from the key's suffix, :data:`SWEEP_SUFFIX_UNITS`).
SWEEP_SETTINGS: dict[str, Variable] = _table(
    Variable("dose_e_per_nm2", "e/nm^2", "electron dose per tilt series"),
    Variable("tilt_range_deg", "degree", "maximum tilt angle (tilts from -v to +v)"),
    Variable("tilt_step_deg", "degree", "tilt step"),
    Variable("tilt_min_deg", "degree", "lowest tilt angle"),
    Variable("tilt_max_deg", "degree", "highest tilt angle"),
    Variable("pixel_size_nm", "nm", "microscope pixel size (before binning)"),
    Variable("bin", "1", "binning (bin x bin microscope pixels per stored pixel)"),
    Variable("image_pixels", "1", "image edge before binning (pixels)"),
    Variable("probe_current_pA", "pA", "probe current"),
    Variable("dwell_time_ns", "ns", "dwell time per pixel"),
    Variable("iterations", "1", "reconstruction iterations"),
    Variable("seed", "1", "seed of the experiment"),
)

#: Units of a swept setting from the suffix of its name (first match; none: ``1``).
SWEEP_SUFFIX_UNITS: tuple[tuple[str, str], ...] = (
    ("_e_per_nm2", "e/nm^2"), ("_deg", "degree"), ("_nm", "nm"), ("_pA", "pA"), ("_ns", "ns"),
    ("_kV", "kV"), ("_px", "pixel"), ("_s", "s"), ("_C", "degC"),
)


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
