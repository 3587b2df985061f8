"""Figures of a calibration: the pipeline's reading curves by the pair's orientation.

A pure function of a ``calibration.nc`` Dataset (docs/design.md, "Calibration
file") that returns a :class:`matplotlib.figure.Figure` on the Agg canvas (no
pyplot, no display); the report embeds it as a PNG.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ..calibration import design_matrix, fit_domain, reading_models
from ..errors import InputError

__all__ = ["ALONG_AXIS_DEG", "OUT_OF_PLANE_DEG", "READING_CLASSES", "reading_class", "reading_curves_figure"]

ALONG_AXIS_DEG = 45.0
"""In-plane angle (degree) below which a pair lies along the tilt axis: the validation's
own split (:data:`sinter4d.validation.ORIENTATIONS`)."""
OUT_OF_PLANE_DEG = 30.0
"""Elevation (degree) beyond which a pair is out of the film's plane: between the film's
0–8° and the stacked cores' 40–65° in the twins (docs/design.md, "Calibration")."""
READING_CLASSES = (
    ("along", "in plane, along the tilt axis"),
    ("across", "in plane, across the tilt axis"),
    ("out_of_plane", "out of the film's plane"),
    ("bridged", "bridged (in plane)"),
)
"""(key, label) of the classes of readings the figure draws, in its column order."""

# (metric, what the row plots, y label)
_ROWS = (
    ("neck_radius_nm", "measured", "measured neck radius r_n (nm)"),
    ("distance_nm", "error", "measured − true distance d (nm)"),
)


def reading_class(in_plane_deg, elevation_deg, bridged) -> np.ndarray:
    """The class key (:data:`READING_CLASSES`) of each reading.

    Out of the plane first (elevation > :data:`OUT_OF_PLANE_DEG`), then
    bridged, then along (in-plane angle < :data:`ALONG_AXIS_DEG`) or across
    the tilt axis.
    """
    a = np.asarray(in_plane_deg, dtype=float)
    e = np.asarray(elevation_deg, dtype=float)
    b = np.asarray(bridged).astype(bool)
    return np.where(e > OUT_OF_PLANE_DEG, "out_of_plane",
                    np.where(b, "bridged", np.where(a < ALONG_AXIS_DEG, "along", "across")))


def _curve(model, true, in_plane, elevation, bridged, n=60):
    """The model's reading over the range of ``true`` at the class's median covariates, ± its scatter (nm)."""
    grid = np.linspace(float(np.min(true)), float(np.max(true)), n)
    ones = np.ones_like(grid)
    x = design_matrix(grid, ones * np.median(in_plane), ones * np.median(elevation), ones * bridged,
                      transform=model.transform, reference_nm=model.reference_nm)
    g = x @ model.coef
    s = model.sigma_total
    return grid, model.from_g(g), model.from_g(g - s), model.from_g(g + s)


def reading_curves_figure(calibration: xr.Dataset, *, title: str | None = None) -> Figure:
    """Measured against true neck radius and distance of the twins, by orientation, with the fitted model.

    One row per metric (neck radius: measured vs true; distance: measured −
    true vs true), one column per class of :data:`READING_CLASSES`. Dots are
    the twins' readings (hollow: left out of the fit, a true neck below the
    calibration's ``min_true_neck_nm`` or a neck read as 0), the line the
    reading model at the class's median orientation, the band ± one s.d. of a
    reading about it (σ_run, σ_pair and σ_point together), the dashed line a
    faithful reading.

    Parameters
    ----------
    calibration : xarray.Dataset
        A ``calibration.nc`` Dataset (its ``reading_*`` variables and model).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    need = ("reading_in_plane_deg", "reading_elevation_deg", "reading_bridged")
    missing = [v for v in need if v not in calibration.variables]
    if missing:
        raise InputError(f"the calibration lacks variable(s) {', '.join(missing)}")
    models = reading_models(calibration)
    in_plane = calibration["reading_in_plane_deg"].values.astype(float)
    elevation = calibration["reading_elevation_deg"].values.astype(float)
    bridged = calibration["reading_bridged"].values.astype(bool)
    classes = reading_class(in_plane, elevation, bridged)
    min_neck = float(calibration.attrs.get("min_true_neck_nm", 0.0))
    fig = Figure(figsize=(3.4 * len(READING_CLASSES), 3.2 * len(_ROWS)), layout="constrained")
    axes = fig.subplots(len(_ROWS), len(READING_CLASSES), squeeze=False)
    for r, (metric, shown, ylabel) in enumerate(_ROWS):
        name = metric.removesuffix("_nm")
        true = calibration[f"reading_true_{name}_nm"].values.astype(float)
        measured = calibration[f"reading_measured_{name}_nm"].values.astype(float)
        fitted = fit_domain(metric, measured, true, min_true_nm=min_neck if metric == "neck_radius_nm" else 0.0)
        for c, (key, label) in enumerate(READING_CLASSES):
            ax = axes[r, c]
            sel = (classes == key) & np.isfinite(true) & np.isfinite(measured)
            offset = true if shown == "error" else 0.0
            y = measured - offset
            ax.scatter(true[sel & fitted], y[sel & fitted], s=14, color="C0", label="twin reading (fitted)")
            ax.scatter(true[sel & ~fitted], y[sel & ~fitted], s=14, facecolors="none", edgecolors="C0",
                       label="twin reading (not fitted)")
            if sel.any():
                grid, line, low, high = _curve(models[metric], true[sel], in_plane[sel], elevation[sel],
                                               float(key == "bridged"))
                base = grid if shown == "error" else 0.0
                ax.fill_between(grid, low - base, high - base, color="C1", alpha=0.2, lw=0, label="model ± 1 s.d.")
                ax.plot(grid, line - base, color="C1", label="reading model")
                ax.plot(grid, grid - base if shown == "measured" else 0 * grid, ls="--", color="0.4", lw=1,
                        label="faithful reading")
            else:
                ax.text(0.5, 0.5, "no reading", transform=ax.transAxes, ha="center", va="center", color="0.4")
            ax.set_title(f"{label} ({int(sel.sum())})", fontsize=9)
            ax.set_xlabel(f"true {'neck radius' if r == 0 else 'distance'} (nm)")
            if c == 0:
                ax.set_ylabel(ylabel)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    return fig
