"""The report's calibration section: shown when the run holds ``calibration.nc`` (the calibrate stage ran).

The twins (how many, their seeds, how long), the acquisition they matched,
the settings a choice picked with its candidates' scores (``--choose``),
the reading model of each metric with its scatter, the reading curves by
orientation (:func:`sinter4d.figures.calibration.reading_curves_figure`) and,
when ``validation.nc`` holds them, the errors before and after correction
(docs/design.md, "Calibration").
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from ..calibration import READING_TERMS
from ..experiments.spec import HeatingSpec
from ..figures import png
from ..figures.calibration import reading_curves_figure
from ..runfolder import RunFolder
from ..schema import CALIBRATED_OF, CALIBRATION
from . import html as hp
from .folder import Missing, duration, load_dataset, relative

__all__ = ["section_calibration"]


def _json_attr(attrs: dict, key: str, default):
    try:
        return json.loads(attrs[key]) if key in attrs else default
    except (TypeError, ValueError):
        return default


def _summary(cal: xr.Dataset) -> str:
    a = cal.attrs
    seeds = _json_attr(a, "twin_seeds", [])
    failed = _json_attr(a, "twins_failed", [])
    acq = _json_attr(a, "acquisition", {})
    items = {
        "calibrated run": a.get("source", "–"),
        "twins": f"{len(seeds)} (seeds {', '.join(map(str, seeds))})" if seeds else "–",
        "twins failed": ", ".join(map(str, failed)) or "none",
        "twins' stage time, summed": duration(a.get("twin_seconds")),
        "wall time of the last calibrate": duration(a.get("wall_seconds")),
        "twins folder": a.get("twins_folder", "–"),
    }
    if acq:
        items["dose per series (e⁻/nm²)"] = acq.get("dose_e_per_nm2")
        items["pixel size (nm), bin"] = f"{acq.get('pixel_size_nm')}, {acq.get('bin', 1)}"
        items["tilts (°)"] = f"{acq.get('tilt_min_deg')} to {acq.get('tilt_max_deg')} by {acq.get('tilt_step_deg')}"
    twin = _json_attr(a, "twin_spec", {})
    if twin:
        field = (twin.get("acquisition") or {}).get("image_pixels")
        cut = f" (cut from {acq['image_pixels']})" if acq.get("image_pixels") not in (None, field) else ""
        heating = HeatingSpec.model_validate(twin.get("heating") or {})
        imaged = [heating.pt_time_s[k] for k in heating.imaged]
        items["each twin"] = (f"{field} px a side{cut}, {(twin.get('phantom') or {}).get('n_cores')} cores, "
                              f"series at {', '.join(f'{t:g}' for t in imaged)} s")
    chosen = _json_attr(a, "chosen_settings", {})
    if chosen:
        choosing = _json_attr(a, "choosing_twin_seeds", [])
        items["settings chosen"] = ", ".join(f"{k} = {v}" for k, v in chosen.items())
        items["choosing twins (apart from the twins above)"] = (f"{len(choosing)} (seeds "
                                                               f"{', '.join(map(str, choosing))})")
    items["neck fit: true necks from (nm)"] = float(a.get("min_true_neck_nm", np.nan))
    items["bridged: measured gap beyond (nm)"] = float(a.get("bridged_gap_nm", np.nan))
    return hp.definition_table(items)


def _model_table(cal: xr.Dataset) -> str:
    header = ["metric", "g", *READING_TERMS, "σ_run", "σ_pair", "σ_point", "readings", "pairs", "twins"]
    rows = []
    for k, metric in enumerate(str(m) for m in cal["metric"].values):
        coef = cal["coefficient"].values[k]
        sd = np.sqrt(np.clip(np.diag(cal["coefficient_covariance"].values[k]), 0.0, None))
        rows.append([metric, str(cal["transform"].values[k]),
                     *(f"{c:.4g} ± {s:.2g}" for c, s in zip(coef, sd, strict=True)),
                     *(float(cal[v].values[k]) for v in ("sigma_run", "sigma_pair", "sigma_point")),
                     *(int(cal[v].values[k]) for v in ("n_points", "n_pairs", "n_runs"))])
    return hp.table(header, rows, digits=4)


def _choice_table(cal: xr.Dataset) -> str:
    """The candidates of a choice of settings and their scores on the choosing twins (chosen first)."""
    keys = [str(v)[len("candidate_"):] for v in cal.data_vars if str(v).startswith("candidate_")
            and v not in CALIBRATION]  # the settings' own variables (the scores' are the schema's)
    order = np.argsort(cal["candidate_score"].values, kind="stable")
    rows = [[*(cal[f"candidate_{k}"].values[i].item() for k in keys),
             *(float(cal[v].values[i]) for v in ("candidate_score", "candidate_neck_ratio_error",
                                                   "candidate_distance_ratio_error", "candidate_unread")),
             "chosen" if int(cal["candidate_chosen"].values[i]) else ""] for i in order]
    return hp.table([*keys, "score", "|err| r_n/r_p", "|err| d/2r_p", "unread", ""], rows, digits=3)


def _before_after(run: RunFolder) -> str:
    """The validation's median and largest |error| of each metric before and after the correction."""
    val = load_dataset(run.validation)
    if val is None:
        why = "no truth: this is an imported experiment" if run.imported else f"no {relative(run, run.validation)}"
        return hp.not_available(f"errors before and after correction ({why})")
    rows = []
    for name, of in CALIBRATED_OF.items():
        after = [f"{name}_{s}_abs_error" for s in ("median", "max")]
        before = [f"{of}_{s}_abs_error" for s in ("median", "max")]
        if all(v in val for v in (*after, *before)):
            rows.append([of, str(val[of].attrs.get("units", "")), *(float(val[v]) for v in (*before, *after))])
    if not rows:
        return hp.not_available(f"{relative(run, run.validation)} holds no calibrated errors (measure with the "
                                f"calibration, then validate)")
    return hp.table(["metric", "units", "median", "max", "median", "max"], rows, digits=3,
                    header_groups=[("", 2), ("|error| before", 2), ("|error| after correction", 2)])


def section_calibration(run: RunFolder) -> str:
    """The calibration's twins, model, reading curves and (with a truth) errors before and after correction."""
    cal = load_dataset(run.calibration)
    if cal is None:
        raise Missing(f"no {relative(run, run.calibration)} (turn on [calibration] in the spec)")
    name = relative(run, run.calibration)
    parts = [_summary(cal), hp.heading(f"Reading model ({name})"), _model_table(cal),
             hp.paragraph("g(measured) = b0 + b1 (g(true) − g(ref)) + b2 cos 2α + b3 sin² ε + b4 bridged + u_run + "
                          "u_pair + e, in units of g (nm² for the neck's square, nm for the distance); ± is one s.d. "
                          "of the coefficient, σ the s.d. between twins, between pairs and of one reading.",
                          css_class="caption")]
    if "candidate" in cal.dims:
        parts += [hp.heading("Settings chosen on the choosing twins"), _choice_table(cal),
                  hp.paragraph("score = median |error| of r_n/r_p + median |error| of d/2r_p over the choosing twins' "
                               "true readings (an unread reading counts as infinite); lowest first.",
                               css_class="caption")]
    parts.append(hp.heading("Reading curves by orientation to the tilt axis"))
    fig = reading_curves_figure(cal)
    parts.append(hp.image(png.shrink_png(png.figure_png(fig), max_width_px=1240), alt="reading curves",
                          caption=f"{name}: the twins' readings and the fitted reading model by class of pair "
                                  f"(α = in-plane angle to the tilt axis, ε = elevation out of the film).",
                          width_px=None))
    parts.append(hp.heading("Errors before and after correction (validation.nc)"))
    parts.append(_before_after(run))
    return "\n".join(parts)
