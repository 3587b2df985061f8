"""Figures of pair metrics: the paper's Fig. 8 and Fig. 9(a).

Pure functions of a metrics Dataset (the layout of :data:`sinter4d.schema.METRICS`)
and a PNG path. They draw on a :class:`matplotlib.figure.Figure` with the Agg
canvas (no global backend, no display) and write the PNG atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from ..errors import InputError
from ..io.atomic import save_figure_atomic
from ..sintering import cylinder_neck_distance_ratio, truncated_sphere_pair


def _check(ds: xr.Dataset, names: tuple[str, ...], what: str) -> None:
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise InputError(f"{what} lacks variable(s) {', '.join(missing)} (a metrics dataset expected)")


def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(k % cmap.N) for k in range(n)]


def plot_trajectories(
    metrics: xr.Dataset,
    path: str | Path,
    *,
    truth: xr.Dataset | None = None,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Fig. 8: neck ratio r_n/r_p and distance ratio d/2r_p against processing time.

    One colour per pair; measured values as markers joined by solid lines
    (a trajectory stops where the pair is NaN: merged or lost), the truth of
    the same pair dashed in the same colour.

    Parameters
    ----------
    metrics : xarray.Dataset
        ``neck_ratio`` and ``distance_ratio`` over ``(time, pair)`` with the
        coordinate ``pt_time_s`` (s) on ``time``.
    path : str or Path
        PNG to write.
    truth : xarray.Dataset, optional
        The same variables for the true geometry; drawn for the pairs whose
        label appears in ``metrics`` (so pass a truth whose ``pair`` labels
        are those of the measured pairs, e.g. after matching).
    title : str, optional
        Figure title.
    dpi : int, optional

    Returns
    -------
    Path
        ``path``.
    """
    _check(metrics, ("neck_ratio", "distance_ratio", "pt_time_s"), "metrics")
    if truth is not None:
        _check(truth, ("neck_ratio", "distance_ratio", "pt_time_s"), "truth")
    pairs = [str(p) for p in metrics["pair"].values]
    colours = _colours(len(pairs))
    fig = Figure(figsize=(10.0, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    panels = (("neck_ratio", "neck ratio $r_n/r_p$", "(a)"), ("distance_ratio", "distance ratio $d/2r_p$", "(b)"))
    t = metrics["pt_time_s"].values
    true_pairs = [] if truth is None else [str(p) for p in truth["pair"].values]
    for ax, (name, label, tag) in zip(axes, panels, strict=True):
        for k, pair in enumerate(pairs):
            y = metrics[name].values[:, k]
            if np.isfinite(y).any():
                ax.plot(t, y, "-o", color=colours[k], ms=3.5, lw=1.2, label=pair)
            if pair in true_pairs:
                j = true_pairs.index(pair)
                ax.plot(truth["pt_time_s"].values, truth[name].values[:, j], "--", color=colours[k], lw=1.0)
        ax.set_xlabel("processing time (s)")
        ax.set_ylabel(f"{label} (1)")
        ax.set_title(tag, loc="left")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if truth is not None:
        from matplotlib.lines import Line2D

        handles += [Line2D([], [], color="k", marker="o", ms=3.5, lw=1.2), Line2D([], [], color="k", ls="--", lw=1.0)]
        labels += ["measured", "truth"]
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=8, ncols=1 + len(handles) // 22)
    if title:
        fig.suptitle(title)
    return save_figure_atomic(fig, path, dpi=dpi)


def plot_neck_vs_distance(
    metrics: xr.Dataset,
    path: str | Path,
    *,
    aspect_range: tuple[float, float] = (0.8, 1.2),
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Fig. 9(a): neck radius r_n against centre distance d, coloured by H/W.

    Each pair's points (r_n > 0 only, as in the paper: before a neck forms
    the distance is arbitrary) are joined by a thin grey line and coloured by
    their aspect ratio H/W. The volume-conserving models of two equal spheres
    of radius r_p are drawn for the median r_p of the points: truncated
    spheres (:func:`~sinter4d.sintering.truncated_sphere_pair`, solid) and
    the paper's cylindrical neck
    (:func:`~sinter4d.sintering.cylinder_neck_distance_ratio`, dashed), as
    ``d = 2 r_p (d/2a0)``, ``r_n = r_p (x/a0)``.

    Parameters
    ----------
    metrics : xarray.Dataset
        ``neck_radius_nm``, ``distance_nm``, ``particle_radius_nm`` and
        ``aspect_ratio`` over ``(time, pair)``.
    path : str or Path
        PNG to write.
    aspect_range : (float, float), optional
        H/W at the two ends of the colour scale.
    title : str, optional
    dpi : int, optional

    Returns
    -------
    Path
        ``path``.
    """
    _check(metrics, ("neck_radius_nm", "distance_nm", "particle_radius_nm", "aspect_ratio"), "metrics")
    rn = metrics["neck_radius_nm"].values
    d = metrics["distance_nm"].values
    rp = metrics["particle_radius_nm"].values
    ar = metrics["aspect_ratio"].values
    keep = np.isfinite(rn) & np.isfinite(d) & (rn > 0)
    fig = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = fig.subplots()
    norm = Normalize(*aspect_range)
    cmap = "coolwarm"
    for k in range(rn.shape[1]):
        sel = keep[:, k]
        if sel.sum() > 1:
            ax.plot(d[sel, k], rn[sel, k], "-", color="0.7", lw=0.8, zorder=1)
    ax.scatter(d[keep], rn[keep], c=ar[keep], cmap=cmap, norm=norm, s=22, edgecolors="k", linewidths=0.4, zorder=2)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="aspect ratio H/W (1)")
    rp_ok = rp[keep & np.isfinite(rp)]
    if rp_ok.size:
        r = float(np.median(rp_ok))
        u = np.linspace(0.0, 0.8, 161)
        ax.plot(2 * r * truncated_sphere_pair(u)[0], r * u, "k-", lw=1.0, label=f"truncated spheres, $r_p$ = {r:.0f} nm")
        uc = u[u <= 1.0]
        ax.plot(2 * r * cylinder_neck_distance_ratio(uc), r * uc, "k--", lw=1.0, label="cylindrical neck (paper)")
        ax.legend(fontsize=8, loc="upper right")
    if keep.any():
        pad_d = 0.1 * max(np.ptp(d[keep]), 10.0)
        ax.set_xlim(d[keep].min() - pad_d, d[keep].max() + pad_d)
        ax.set_ylim(0.0, 1.15 * rn[keep].max() + 5.0)
    ax.set_xlabel("centre distance $d$ (nm)")
    ax.set_ylabel("neck radius $r_n$ (nm)")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return save_figure_atomic(fig, path, dpi=dpi)
