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
    "CALIBRATED_METRICS",
    "CALIBRATED_OF",
    "CALIBRATION",
    "CANDIDATE_SETTING_LONG_NAME",
    "COORDINATES",
    "HEATING_LOG",
    "METRICS",
    "MODEL_PARAMETER_LONG_NAME",
    "NECK_READING_REFERENCE_NM",
    "PAIR_METRICS",
    "SWEEP",
    "TRUTH",
    "VALIDATION",
    "Variable",
    "attrs",
    "candidate_setting",
    "coordinate",
    "suffix_units",
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
        """``{"units", "long_name"}`` in the order the files hold them (no units: long name only)."""
        out = {} if self.units is None else {"units": self.units}
        out["long_name"] = self.long_name
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
#: Long name of a model parameter of ``truth.nc``: a 0-d variable named as in the model card, units ``1``.
MODEL_PARAMETER_LONG_NAME = "model parameter {name} of card {card}"

#: Variables of ``truth.nc`` beyond the pair metrics (and one 0-d variable per model parameter,
#: :data:`MODEL_PARAMETER_LONG_NAME`).
TRUTH: dict[str, Variable] = _table(
    Variable("status", None, "measurement status", ("time", "pair")),
    Variable("n_third_contacts", "1", "cores necked to the pair other than its own two", ("time", "pair")),
    Variable("pair_particles", None, "core indices of the pair", ("pair", "end")),
    Variable("centre_nm", "nm", "core centre", ("time", "particle", "axis")),
    Variable("radius_nm", "nm", "volume-conserving core radius R", ("time", "particle")),
    Variable("initial_radius_nm", "nm", "free core radius a0", ("particle",)),
    Variable("core_aspect_ratio", "1", "spheroid polar/equatorial semi-axis ratio", ("particle",)),
    Variable("core_axis", "1", "spheroid symmetry axis", ("time", "particle", "axis")),
    Variable("rigid_body", "1", "rigid body of each core (cores joined by touching contacts)", ("time", "particle")),
    Variable("rigid_displacement_nm", "nm", "displacement of the core centre by rigid-body motion since time 0",
             ("time", "particle", "axis")),
    Variable("rigid_rotation_deg", "degree", "turn of the core about z by rigid-body motion since time 0",
             ("time", "particle")),
    Variable("contact_particles", None, "core indices of each contact", ("contact", "end")),
    Variable("contact_neck_radius_nm", "nm", "neck radius of every contact (NaN before it forms)", ("time", "contact")),
    Variable("true_pt_time_s", "s", "true cumulative processing time (the logged one is pt_time_s)", ("time",)),
    Variable("pt_step_error_s", "s", "true minus logged duration of the PT step that ended at the series", ("time",)),
    Variable("heating_trace_time_s", "s", "true cumulative processing time at the start of the trace piece",
             ("trace",)),
    Variable("heating_trace_duration_s", "s", "duration of the trace piece", ("trace",)),
    Variable("heating_trace_temperature_C", "degC", "true temperature of the trace piece", ("trace",)),
    Variable("heating_trace_series", "1", "series at which the PT step of the trace piece ended", ("trace",)),
)


# --------------------------------------------------------------------------- heating_log.nc
#: Variables of an imported run's ``heating_log.nc`` (the manifest's optional heating columns).
HEATING_LOG: dict[str, Variable] = _table(
    Variable("pt_step_error_bound_s", "s",
             "bound of the logged duration's error of the PT step that ended at the series (NaN: not given)",
             ("time",)),
    Variable("holder_log_time_s", "s", "time of the holder's temperature sample from the start of its PT step",
             ("sample",)),
    Variable("holder_log_temperature_C", "degC", "temperature the holder logged", ("sample",)),
    Variable("holder_log_series", "1", "series at which the PT step of the sample ended", ("sample",)),
)


# --------------------------------------------------------------------------- metrics.nc
#: Variables of ``metrics.nc`` beyond the pair metrics (``particle`` is a watershed label here).
METRICS: dict[str, Variable] = _table(
    Variable("particle", None, "watershed label value", ("particle",)),
    Variable("status", None, "measurement status", ("time", "pair")),
    Variable("particle_label", "1", "watershed labels of the pair's particles (0 = not present)",
             ("time", "pair", "end")),
    Variable("pair_centre_nm", "nm", "3D centre of mass of the pair's particles", ("time", "pair", "end", "axis")),
    Variable("pair_track", "1", "particle tracks the pair joins", ("pair", "end")),
    Variable("tilt_axis_angle_deg", "degree", "angle of the pair's axis (3D centres of mass) to the tilt axis",
             ("time", "pair")),
    Variable("particle_centre_nm", "nm", "3D centre of mass of each labelled particle", ("time", "particle", "axis")),
    Variable("particle_volume_nm3", "nm3", "volume of each labelled particle", ("time", "particle")),
    Variable("particle_track", "1", "track id of each labelled particle (-1 = none)", ("time", "particle")),
    Variable("n_particles", "1", "particles found", ("time",)),
)


# --------------------------------------------------------------------------- calibrated metrics
#: Calibrated estimates of the true pair metrics, added to ``metrics.nc`` by ``sinter4d measure
#: --calibration`` (docs/design.md, "Calibration"): name -> the pair metric it estimates.
CALIBRATED_OF: dict[str, str] = {
    "neck_radius_calibrated_nm": "neck_radius_nm",
    "distance_calibrated_nm": "distance_nm",
    "neck_ratio_calibrated": "neck_ratio",
    "distance_ratio_calibrated": "distance_ratio",
}
CALIBRATED_METRICS: dict[str, Variable] = _table(
    Variable("neck_radius_calibrated_nm", "nm", "calibrated neck radius (the reading model inverted)", ("time", "pair")),
    Variable("neck_radius_calibrated_sd_nm", "nm", "s.d. of the calibrated neck radius", ("time", "pair")),
    Variable("distance_calibrated_nm", "nm", "calibrated centre-to-centre distance (the reading model inverted)",
             ("time", "pair")),
    Variable("distance_calibrated_sd_nm", "nm", "s.d. of the calibrated centre-to-centre distance", ("time", "pair")),
    Variable("neck_ratio_calibrated", "1", "calibrated neck radius over the measured particle radius",
             ("time", "pair")),
    Variable("distance_ratio_calibrated", "1", "calibrated distance over twice the measured particle radius",
             ("time", "pair")),
)


# --------------------------------------------------------------------------- calibration.nc
#: Variables of ``calibration.nc`` (docs/design.md, "Calibration"); ``metric`` is the calibrated pair
#: metric, ``term`` a term of the reading model, ``reading`` one twin reading (time and pair of a twin).
CALIBRATION: dict[str, Variable] = _table(
    Variable("metric", None, "calibrated pair metric", ("metric",)),
    Variable("term", None, "term of the reading model", ("term",)),
    Variable("term_other", None, "term of the reading model (second index of a covariance)", ("term_other",)),
    Variable("transform", None, "transform g of the metric in the reading model (square or identity)", ("metric",)),
    Variable("reference_nm", "nm", "reference value of the metric", ("metric",)),
    Variable("coefficient", None, "reading model coefficient (units of g: nm2 for square, nm for identity; "
             "the true term's is a gain, 1)", ("metric", "term")),
    Variable("coefficient_covariance", None, "covariance of the reading model coefficients",
             ("metric", "term", "term_other")),
    Variable("sigma_run", None, "s.d. of the reading between runs (twins), units of g", ("metric",)),
    Variable("sigma_pair", None, "s.d. of the reading between pairs of a run, units of g", ("metric",)),
    Variable("sigma_point", None, "s.d. of a pair's readings about its offset, units of g", ("metric",)),
    Variable("n_points", "1", "readings fitted", ("metric",)),
    Variable("n_pairs", "1", "pairs fitted", ("metric",)),
    Variable("n_runs", "1", "twins fitted", ("metric",)),
    Variable("reading", None, "one twin reading", ("reading",)),
    Variable("reading_twin_seed", "1", "seed of the twin of the reading", ("reading",)),
    Variable("reading_pair", None, "true pair label of the reading", ("reading",)),
    Variable("reading_time", "1", "tilt-series index of the reading in its twin", ("reading",)),
    Variable("reading_true_neck_radius_nm", "nm", "true neck radius", ("reading",)),
    Variable("reading_measured_neck_radius_nm", "nm", "measured neck radius", ("reading",)),
    Variable("reading_true_distance_nm", "nm", "true centre-to-centre distance", ("reading",)),
    Variable("reading_measured_distance_nm", "nm", "measured centre-to-centre distance", ("reading",)),
    Variable("reading_particle_radius_nm", "nm", "measured particle radius", ("reading",)),
    Variable("reading_true_particle_radius_nm", "nm", "true particle radius", ("reading",)),
    Variable("reading_in_plane_deg", "degree", "in-plane angle of the true pair axis from the tilt axis",
             ("reading",)),
    Variable("reading_elevation_deg", "degree", "elevation of the true pair axis out of the film plane",
             ("reading",)),
    Variable("reading_bridged", "1", "1 where the measured surface gap exceeds the bridged cut", ("reading",)),
    Variable("candidate", "1", "candidate pipeline settings of the choice (index)", ("candidate",)),
    Variable("candidate_score", "1", "objective of the candidate on the choosing twins: median |error| of "
             "r_n/r_p plus median |error| of d/2r_p (an unread true pair counts as an infinite error)",
             ("candidate",)),
    Variable("candidate_neck_ratio_error", "1", "median |error| of r_n/r_p over the choosing twins' true pairs",
             ("candidate",)),
    Variable("candidate_distance_ratio_error", "1", "median |error| of d/2r_p over the choosing twins' true pairs",
             ("candidate",)),
    Variable("candidate_unread", "1", "fraction of the choosing twins' true (time, pair) readings not read",
             ("candidate",)),
    Variable("candidate_chosen", "1", "1 for the candidate chosen (the lowest score)", ("candidate",)),
)

#: Long name of ``candidate_<key>`` in ``calibration.nc``: the value of a chosen pipeline setting per candidate
#: (units from the key's suffix, :data:`SWEEP_SUFFIX_UNITS`; :func:`candidate_setting`).
CANDIDATE_SETTING_LONG_NAME = "pipeline setting {key} of the candidate"


# --------------------------------------------------------------------------- validation.nc
#: Neck (nm) at which ``validation.nc``'s reading curve reads its bias (``neck_reading_bias_nm``),
#: and a fit spec's reading curve its own: mid-way between the quick run's early and plateau necks.
NECK_READING_REFERENCE_NM = 25.0


def _errors_of_pair_metrics() -> tuple[Variable, ...]:
    """Each pair metric's error (measured - true) over (time, pair), and its median and largest |error|."""
    out = []
    for v in PAIR_METRICS.values():
        out += [
            Variable(v.name, v.units, f"error of the {v.long_name} (measured - true)", ("time", "pair")),
            Variable(f"{v.name}_median_abs_error", v.units, f"median |error| of the {v.long_name}", ()),
            Variable(f"{v.name}_max_abs_error", v.units, f"largest |error| of the {v.long_name}", ()),
        ]
    return tuple(out)


def _errors_of_calibrated_metrics() -> tuple[Variable, ...]:
    """The error of each calibrated metric against the truth (when ``metrics.nc`` carries it)."""
    out = []
    for name, of in CALIBRATED_OF.items():
        v = CALIBRATED_METRICS[name]
        out += [
            Variable(name, v.units, f"error of the {v.long_name} (calibrated - true {of})", ("time", "pair")),
            Variable(f"{name}_median_abs_error", v.units, f"median |error| of the {v.long_name}", ()),
            Variable(f"{name}_max_abs_error", v.units, f"largest |error| of the {v.long_name}", ()),
        ]
    return tuple(out)


#: Variables of ``validation.nc`` (each pair metric holds measured - true there).
VALIDATION: dict[str, Variable] = _table(
    Variable("pair", None, "true particle pair", ("pair",)),
    *_errors_of_calibrated_metrics(),
    Variable("orientation", None,
             "pairs by the angle of their axis to the tilt axis (< 45 deg, >= 45 deg, all)", ("orientation",)),
    *_errors_of_pair_metrics(),
    Variable("tilt_axis_angle_deg", "degree", "angle of the true pair axis to the tilt axis", ("time", "pair")),
    Variable("neck_radius_nm_median_error", "nm", "median of measured - true neck radius over the found pairs",
             ("orientation",)),
    Variable("neck_fill_nm2", "nm2",
             "median of r_n,measured^2 - r_n,true^2 over the necks seen in both (the fill K)", ("orientation",)),
    Variable("neck_fill_necks", "1", "necks neck_fill_nm2 is the median of", ("orientation",)),
    Variable("neck_fill_resolution_nm", "nm",
             "Gaussian blur along the pair axis that gives neck_fill_nm2 at the median r_p (NaN if K <= 0)",
             ("orientation",)),
    Variable("measured_pair", None, "measured pair matched to the true pair (empty: not found)", ("time", "pair")),
    Variable("found", "1", "true pairs found", ("time",)),
    Variable("missed", "1", "true pairs not found", ("time",)),
    Variable("spurious", "1", "measured pairs matching no true pair", ("time",)),
    Variable("registration_offset_nm", "nm",
             "translation added to the measured centres to register them to the truth", ("time", "axis")),
    Variable("dice", "1", "Dice of the binary against the true cores (registered)", ("time",)),
)


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
    Variable("oversample", "1", "projection grid this many times finer than the pixels (1: the reconstruction's own)"),
    Variable("probe_enabled", "1", "focused probe and beam broadening simulated ([acquisition.probe] enabled)"),
    Variable("stage_enabled", "1", "stage errors simulated ([acquisition.stage] enabled)"),
    Variable("detector_enabled", "1", "detector read-out simulated ([acquisition.detector] enabled)"),
    Variable("rigid_motion_enabled", "1", "rigid bodies moved between series ([sintering.rigid_motion] enabled)"),
)

#: Units of a swept setting from the suffix of its name (first match; none: ``1``).
SWEEP_SUFFIX_UNITS: tuple[tuple[str, str], ...] = (
    ("_e_per_nm2", "e/nm^2"), ("_deg", "degree"), ("_nm", "nm"), ("_pA", "pA"), ("_ns", "ns"),
    ("_kV", "kV"), ("_px", "pixel"), ("_s", "s"), ("_C", "degC"),
)


# --------------------------------------------------------------------------- access
_TABLES = (COORDINATES, PAIR_METRICS, TRUTH, HEATING_LOG, METRICS, VALIDATION, SWEEP, CALIBRATED_METRICS, CALIBRATION)

#: Every name of the schema. A coordinate or pair metric means what the shared tables say; a name
#: that two files define differently (``tilt_axis_angle_deg`` of ``metrics.nc`` and of
#: ``validation.nc``) maps to None and needs its table.
_ALL: dict[str, Variable | None] = {}
for _table_of in _TABLES[2:]:
    for _name, _var in _table_of.items():
        _ALL[_name] = _var if _ALL.get(_name, _var) == _var else None
_ALL.update(COORDINATES)
_ALL.update(PAIR_METRICS)


def _lookup(name: str, table: dict[str, Variable] | None) -> Variable:
    """``name`` in ``table`` (then in the coordinates and pair metrics it shares), or in the whole schema."""
    if table is not None:
        for where in (table, COORDINATES, PAIR_METRICS):
            if name in where:
                return where[name]
        raise KeyError(f"{name!r} is not in that table of the metric schema (sinter4d.schema)")
    if name not in _ALL:
        raise KeyError(f"{name!r} is not in the metric schema (sinter4d.schema)")
    known = _ALL[name]
    if known is None:
        raise KeyError(f"{name!r} means different things in different files; pass its table (sinter4d.schema)")
    return known


def attrs(name: str, table: dict[str, Variable] | None = None) -> dict[str, str]:
    """``{"units", "long_name"}`` of the variable ``name`` (of ``table``, e.g. :data:`VALIDATION`)."""
    return dict(_lookup(name, table).attrs)


def variable(name: str, values, dims: tuple[str, ...] | None = None, table: dict[str, Variable] | None = None) -> tuple:
    """``(dims, values, attrs)`` of ``name`` (of ``table``) for an ``xr.Dataset`` constructor."""
    known = _lookup(name, table)
    dims = dims if dims is not None else known.dims
    if dims is None:
        raise ValueError(f"{name!r} has no fixed dims; pass them")
    return dims, np.asarray(values), known.attrs


def suffix_units(key: str) -> str:
    """Units of a setting from the suffix of its name (:data:`SWEEP_SUFFIX_UNITS`; none: ``1``)."""
    return next((u for suffix, u in SWEEP_SUFFIX_UNITS if key.endswith(suffix)), "1")


def candidate_setting(key: str, values) -> tuple:
    """``(dims, values, attrs)`` of ``candidate_<key>``: a pipeline setting's value per candidate of a choice."""
    var = Variable(f"candidate_{key}", suffix_units(key), CANDIDATE_SETTING_LONG_NAME.format(key=key))
    return ("candidate",), np.asarray(values), var.attrs


def coordinate(name: str, values, table: dict[str, Variable] | None = None) -> tuple:
    """``(dims, values, attrs)`` of the coordinate ``name`` (of ``table``)."""
    return variable(name, values, table=table)
