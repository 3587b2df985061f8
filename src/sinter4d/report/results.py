"""Sections 5 and 6 of the report: the measurement's figures and status, the validation against the truth."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from ..figures import png
from ..runfolder import STAGES, RunFolder, stage
from . import html as hp
from .folder import Missing, load_dataset, relative

__all__ = ["section_metrics", "section_validation"]

#: (role of the run folder, caption) of the figures section 5 shows.
_METRIC_FIGURES = (
    ("metrics_fig8",
     "Fig. 8: neck ratio r_n/r_p (a) and distance ratio d/2r_p (b) against processing time, as measured ({metrics})."),
    ("metrics_fig9a",
     ("Fig. 9(a): neck radius r_n against centre distance d, coloured by the aspect ratio H/W, with the "
      "volume-conserving two-sphere models.")),
    ("validation_fig8",
     "Fig. 8 of the pairs matched to the truth ({validation}): measured (solid) and true (dashed) trajectories."),
)


def _maker(role: str) -> str:
    """The stage that writes the run folder's ``role``."""
    return next(s.name for s in STAGES if role in s.outputs)


def _status_counts(run: RunFolder) -> str:
    metrics = load_dataset(run.metrics)
    if metrics is None or "status" not in metrics:
        return ""
    values, counts = np.unique(metrics["status"].values.astype(str), return_counts=True)
    meanings = {}
    try:
        meanings = json.loads(metrics["status"].attrs.get("meanings", "{}"))
    except ValueError:
        pass
    rows = [[v, int(c), meanings.get(v, "")] for v, c in zip(values, counts, strict=True)]
    n_time, n_pair = metrics["status"].shape
    return (hp.heading(f"Measurement status ({n_pair} pairs × {n_time} steps, {relative(run, run.metrics)})")
            + hp.table(["status", "pair-steps", "meaning"], rows))


def section_metrics(run: RunFolder) -> str:
    """The measurement's and the validation's figures, and the count of each measurement status."""
    parts = []
    for role, caption in _METRIC_FIGURES:
        if run.imported and stage(_maker(role)).needs_truth:
            continue  # an imported run has no truth to compare with: nothing is missing
        path = getattr(run, role)
        name = relative(run, path)
        if path.is_file():
            parts.append(hp.image(png.shrink_png(path.read_bytes(), max_width_px=1200), alt=name,
                                  caption=f"{name} — " + caption.format(metrics=relative(run, run.metrics),
                                                                         validation=relative(run, run.validation)),
                                  width_px=None))
        else:
            parts.append(hp.not_available(f"{name} not found (made by `sinter4d {_maker(role)} RUNDIR`)"))
    parts.append(_status_counts(run))
    return "\n".join(parts)


_PAIR_COLUMNS = (("neck_ratio", "r_n/r_p"), ("distance_ratio", "d/2r_p"))
_EXTRA_COLUMNS = (("neck_radius_nm", "r_n (nm)"), ("neck_radius_3d_nm", "r_n 3D (nm)"), ("distance_nm", "d (nm)"))


def _abs_stats(values: np.ndarray) -> tuple[float, float]:
    finite = np.abs(values[np.isfinite(values)])
    return (float(np.median(finite)), float(finite.max())) if finite.size else (np.nan, np.nan)


def _validation_pairs(val: xr.Dataset, name: str) -> str:
    names = [(v, lab) for v, lab in _PAIR_COLUMNS + _EXTRA_COLUMNS if v in val and val[v].dims == ("time", "pair")]
    if not names:
        raise Missing(f"{name} holds no (time, pair) error variable")
    header = ["true pair", "measured as", "steps"]
    groups = [("", 3)]
    for _, lab in names:
        header += ["median", "max"]
        groups.append((f"|err| {lab}", 2))
    rows = []
    first = names[0][0]
    for k, pair in enumerate(val["pair"].values):
        matched = ""
        if "measured_pair" in val:
            labels = [str(s) for s in val["measured_pair"].values[:, k] if str(s)]
            matched = ", ".join(dict.fromkeys(labels)) or "not found"
        row = [str(pair), matched, int(np.isfinite(val[first].values[:, k]).sum())]
        for v, _ in names:
            row += list(_abs_stats(val[v].values[:, k]))
        rows.append(row)
    summary = ["all pairs", "", int(np.isfinite(val[first].values).sum())]
    for v, _ in names:
        med, mx = _abs_stats(val[v].values)
        summary += [float(val[f"{v}_median_abs_error"]) if f"{v}_median_abs_error" in val else med,
                    float(val[f"{v}_max_abs_error"]) if f"{v}_max_abs_error" in val else mx]
    rows.append(summary)
    return hp.table(header, rows, row_classes=[""] * (len(rows) - 1) + ["summary"], digits=3, header_groups=groups)


def _validation_variables(val: xr.Dataset) -> str:
    rows = []
    for name, var in val.data_vars.items():
        if var.dims != ("time", "pair") or var.dtype.kind != "f" or name == "tilt_axis_angle_deg":
            continue
        med, mx = _abs_stats(var.values)
        if f"{name}_median_abs_error" in val:
            med = float(val[f"{name}_median_abs_error"])
        if f"{name}_max_abs_error" in val:
            mx = float(val[f"{name}_max_abs_error"])
        quantity = str(var.attrs.get("long_name", "")).removeprefix("error of the ")
        rows.append([name, quantity, var.attrs.get("units", ""), med, mx, int(np.isfinite(var.values).sum())])
    if not rows:
        return ""
    return (hp.heading("Every variable: |measured − true| over all pairs and steps")
            + hp.table(["variable", "quantity", "units", "median |err|", "max |err|", "values"], rows, digits=3))


def _validation_steps(val: xr.Dataset, name: str) -> str:
    cols = [c for c in ("found", "missed", "spurious", "dice") if c in val and val[c].dims == ("time",)]
    if not cols:
        return hp.not_available(f"{name} holds no per-step counts or Dice")
    header = ["step", "time (s)", "T (°C)"] + ["Dice" if c == "dice" else f"pairs {c}" for c in cols]
    has_off = "registration_offset_nm" in val and val["registration_offset_nm"].dims[0] == "time"
    if has_off:
        header += ["registration offset z, y, x (nm)"]
    rows = []
    for k in range(val.sizes["time"]):
        row = [int(val["time"].values[k]) if "time" in val.coords else k,
               float(val["pt_time_s"].values[k]) if "pt_time_s" in val.coords else np.nan,
               float(val["temperature_C"].values[k]) if "temperature_C" in val.coords else np.nan]
        row += [val[c].values[k].item() for c in cols]
        if has_off:
            row.append(", ".join(f"{v:+.1f}" for v in val["registration_offset_nm"].values[k]))
        rows.append(row)
    classes = ["bad" if any(val[c].values[k] > 0 for c in ("missed", "spurious") if c in cols) else ""
               for k in range(len(rows))]
    return hp.heading("Per step: pairs and Dice of the binary against the true cores") + hp.table(
        header, rows, row_classes=classes, digits=3)


def _validation_orientation(val: xr.Dataset) -> str:
    need = ("neck_radius_nm_median_error", "neck_fill_nm2", "neck_fill_necks", "neck_fill_resolution_nm")
    if "orientation" not in val.dims or any(v not in val for v in need):
        return ""
    rows = [[str(o).replace("_", " "), *(val[v].values[k].item() for v in need)]
            for k, o in enumerate(val["orientation"].values)]
    return (hp.heading("Neck radius by the pair's angle to the tilt axis (< 45° along, ≥ 45° across)")
            + hp.table(["pairs", "median error (nm)", "fill K (nm²)", "necks", "blur giving K (nm)"], rows, digits=3)
            + hp.paragraph("Error is measured − true (signed). K is the median of r_measured² − r_true²; a Gaussian blur "
                           "of the given SD along the pair axis widens a neck by that much at half height.",
                           css_class="caption"))


def section_validation(run: RunFolder) -> str:
    """The validation's summary, errors per true pair and per variable, counts and Dice per step."""
    val = load_dataset(run.validation)
    if val is None:
        missing = run.validation if run.truth.is_file() else run.truth
        raise Missing(f"no {relative(run, missing)} (run `sinter4d validate RUNDIR` on a simulated run)")
    name = relative(run, run.validation)
    a = val.attrs
    head = {}
    for key, label in (("pairs_true", "true pairs"), ("pairs_found", "found"), ("pairs_missed", "missed"),
                       ("pairs_spurious", "spurious"), ("gate_nm", "matching gate (nm)"), ("median_dice", "median Dice")):
        if key in a:
            head[label] = a[key].item() if hasattr(a[key], "item") else a[key]
    parts = []
    if head:
        parts.append(hp.definition_table(head))
    parts.append(hp.heading("Per true pair: |measured − true|"))
    parts.append(_validation_pairs(val, name))
    parts.append(hp.paragraph("Errors are measured − true for each true pair matched to a measured pair, over the "
                              "steps where both are finite; the summary row is over all pairs and steps "
                              f"({name}'s *_median_abs_error / *_max_abs_error).", css_class="caption"))
    parts.append(_validation_orientation(val))
    parts.append(_validation_steps(val, name))
    parts.append(_validation_variables(val))
    return "\n".join(parts)
