"""Figures of a what-if sweep (its dataset): heatmaps for 2D sweeps, line plots for 1D sweeps.

Pure functions of the sweep Dataset (:func:`sinter4d.experiments.sweep.sweep_dataset`)
and a folder. They draw on :class:`matplotlib.figure.Figure` with the Agg
canvas (no global backend, no display) and write each PNG atomically.
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..io.atomic import save_figure_atomic

log = logging.getLogger(__name__)

#: Variables drawn by default (those present), then every ``posterior_width_*`` of a model
#: parameter (not of the noise, ``sigma_*``), then ``run_seconds``.
KEY_VARIABLES = (
    "median_abs_error_neck_ratio",
    "median_abs_error_distance_ratio",
    "max_abs_error_neck_ratio",
    "dice",
    "pairs_found",
)


def key_variables(ds: xr.Dataset) -> list[str]:
    """The variables :func:`plot_sweep` draws by default."""
    names = [v for v in KEY_VARIABLES if v in ds.data_vars]
    names += [v for v in ds.data_vars
              if v.startswith("posterior_width_") and not v.startswith("posterior_width_sigma_")]
    if "run_seconds" in ds.data_vars:
        names.append("run_seconds")
    return names


def _label(da: xr.DataArray, width: int = 40) -> str:
    units = da.attrs.get("units", "")
    text = da.attrs.get("long_name", da.name)
    if units and units != "1":
        text = f"{text} ({units})"
    return "\n".join(textwrap.wrap(text, width))


def _ticks(coord: xr.DataArray) -> list[str]:
    return [f"{v:g}" if isinstance(v, (int, float, np.integer, np.floating)) else str(v) for v in coord.values]


def _fmt(value: float) -> str:
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        return f"{value:.3g}"
    return f"{value:.2e}"


def plot_heatmap(ds: xr.Dataset, name: str, path: str | Path, *, dpi: int = 120) -> Path:
    """A heatmap of one variable of a 2D sweep, cell values written in; failed cells hatched grey.

    Parameters
    ----------
    ds : xarray.Dataset
        A 2D sweep dataset: rows are its first dimension, columns its second.
    name : str
        The variable.
    path : str or Path
        PNG to write.
    dpi : int, optional

    Returns
    -------
    Path
    """
    da = ds[name]
    status = ds["status"].transpose(*da.dims).values
    ydim, xdim = da.dims
    values = np.asarray(da.values, dtype=float)
    ny, nx = values.shape
    fig = Figure(figsize=(2.2 + 1.1 * nx, 1.6 + 0.75 * ny), layout="constrained")
    ax = fig.add_subplot()
    from matplotlib import colormaps

    cmap = colormaps["viridis"].with_extremes(bad="white")
    finite = np.isfinite(values)
    vmin, vmax = (np.min(values[finite]), np.max(values[finite])) if finite.any() else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 0.5 * abs(vmin or 1), vmax + 0.5 * abs(vmax or 1)
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax, origin="lower", aspect="auto")
    for i in range(ny):
        for j in range(nx):
            if status[i, j] != "ok":
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="0.85", edgecolor="0.5", hatch="///",
                                       linewidth=0.5))
                ax.text(j, i, str(status[i, j]), ha="center", va="center", fontsize=8, color="0.2",
                        bbox={"facecolor": "0.85", "edgecolor": "none", "pad": 1})
            elif not finite[i, j]:
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=8, color="0.3")
            else:
                r, g, b, _ = cmap((values[i, j] - vmin) / (vmax - vmin))
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                ax.text(j, i, _fmt(values[i, j]), ha="center", va="center", fontsize=9,
                        color="white" if dark else "black")
    ax.set_xticks(range(nx), _ticks(ds[xdim]))
    ax.set_yticks(range(ny), _ticks(ds[ydim]))
    ax.set_xlabel(_label(ds[xdim]))
    ax.set_ylabel(_label(ds[ydim]))
    ax.set_title(name, fontsize=10)
    fig.colorbar(im, ax=ax, label=_label(da, 32))
    return save_figure_atomic(fig, path, dpi=dpi)


def _log_axis(coord: xr.DataArray) -> bool:
    v = coord.values
    if v.dtype.kind not in "iuf" or len(v) < 2 or np.any(v <= 0):
        return False
    return v.max() / v.min() >= 20


def plot_lines(ds: xr.Dataset, names: list[str], path: str | Path, *, dpi: int = 120) -> Path:
    """Line plots of a 1D sweep: one panel per variable against the swept setting; failed cells marked.

    The x axis is logarithmic when the setting spans a factor of 20 or more
    (a dose sweep).

    Parameters
    ----------
    ds : xarray.Dataset
        A 1D sweep dataset.
    names : list of str
        Variables, one panel each.
    path : str or Path
        PNG to write.
    dpi : int, optional

    Returns
    -------
    Path
    """
    (dim,) = ds["status"].dims
    coord = ds[dim]
    numeric = coord.values.dtype.kind in "iuf"
    x = coord.values.astype(float) if numeric else np.arange(coord.size, dtype=float)
    failed = ds["status"].values != "ok"
    ncol = min(3, len(names))
    nrow = -(-len(names) // ncol)
    fig = Figure(figsize=(4.2 * ncol, 3.2 * nrow), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for ax, name in zip(axes, names):
        y = np.asarray(ds[name].values, dtype=float)
        ax.plot(x, y, "o-", color="C0")
        for xi in x[failed]:
            ax.axvline(xi, color="0.6", linestyle=":", linewidth=1.5)
            ax.annotate("failed", (xi, 0.02), xycoords=("data", "axes fraction"), rotation=90, fontsize=8,
                        color="0.4", ha="right", va="bottom")
        if _log_axis(coord):
            ax.set_xscale("log")
        if numeric:
            ax.set_xticks(x, _ticks(coord))
            ax.minorticks_off()
        else:
            ax.set_xticks(x, _ticks(coord))
        ax.set_xlabel(_label(coord))
        ax.set_ylabel(_label(ds[name], 34), fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.suptitle(ds.attrs.get("title", "sweep"), fontsize=10)
    return save_figure_atomic(fig, path, dpi=dpi)


def plot_sweep(ds: xr.Dataset, out_dir: str | Path, *, names: list[str] | None = None, dpi: int = 120) -> list[Path]:
    """The figures of a sweep, written into ``out_dir``.

    A 2D sweep gets ``heatmap_<var>.png`` per variable; a 1D sweep one
    ``sweep_<dim>.png`` with a panel per variable. Sweeps of three or more
    dimensions get no figure (slice the dataset and call these functions).

    Parameters
    ----------
    ds : xarray.Dataset
        The sweep dataset.
    out_dir : str or Path
        Folder of the PNGs.
    names : list of str, optional
        Variables to draw (default :func:`key_variables`).
    dpi : int, optional

    Returns
    -------
    list of Path
        The PNGs written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = key_variables(ds) if names is None else list(names)
    dims = ds["status"].dims
    if not names:
        return []
    if len(dims) == 1:
        return [plot_lines(ds, names, out / f"sweep_{dims[0]}.png", dpi=dpi)]
    if len(dims) == 2:
        return [plot_heatmap(ds, name, out / f"heatmap_{name}.png", dpi=dpi) for name in names]
    log.info("no figures for a sweep of %d dimensions; slice the sweep dataset and use plot_heatmap or plot_lines",
             len(dims))
    return []
