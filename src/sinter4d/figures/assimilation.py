"""Figures of a fit: corner plot of the posterior, posterior predictive of the trajectories.

Both draw on a :class:`matplotlib.figure.Figure` with the Agg canvas (no
global backend, no display) and write a PNG atomically.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..io.atomic import save_figure_atomic

_LABEL = {"neck_radius_nm": "neck radius r_n (nm)", "distance_nm": "distance d (nm)"}


def corner_plot(idata, path: str | Path, *, var_names: Sequence[str] | None = None,
                truths: Mapping[str, float] | None = None, dpi: int = 100) -> Path:
    """Corner plot (pairwise and marginal histograms) of the posterior.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit's InferenceData (``posterior`` group).
    path : str or Path
        PNG to write.
    var_names : sequence of str, optional
        Parameters to show (default: every posterior variable).
    truths : mapping, optional
        True values, drawn as lines (simulated data).
    dpi : int

    Returns
    -------
    Path
    """
    import corner

    post = idata.posterior
    names = list(var_names) if var_names is not None else list(post.data_vars)
    samples = np.column_stack([post[k].values.reshape(-1) for k in names])
    k = len(names)
    truth_values = None
    if truths:
        truth_values = [truths.get(n) for n in names]
        if all(v is None for v in truth_values):
            truth_values = None
    if k == 1:  # corner's truth lines need a 2-D axes grid: draw the single marginal here
        fig = Figure(figsize=(4.0, 3.0), layout="constrained")
        ax = fig.subplots()
        ax.hist(samples[:, 0], bins=40, histtype="step", color="k")
        for q in np.quantile(samples[:, 0], (0.05, 0.5, 0.95)):
            ax.axvline(q, ls="--", color="k", lw=0.8)
        if truth_values is not None:
            ax.axvline(truth_values[0], color="#4682b4")
        ax.set_xlabel(names[0])
        ax.set_yticks([])
        return save_figure_atomic(fig, path, dpi=dpi)
    size = max(3.0, 2.4 * k)
    fig = Figure(figsize=(size, size))
    fig.subplots(k, k)
    # a constant column (e.g. a parameter pinned at a bound) breaks histogram ranges
    ranges = []
    for i, col in enumerate(samples.T):
        lo, hi = float(np.min(col)), float(np.max(col))
        if truth_values is not None and truth_values[i] is not None:  # keep the truth line in view
            span = hi - lo
            lo, hi = min(lo, truth_values[i] - 0.05 * span), max(hi, truth_values[i] + 0.05 * span)
        pad = 1e-6 * max(abs(lo), 1.0) if hi <= lo else 0.0
        ranges.append((lo - pad, hi + pad))
    corner.corner(samples, labels=names, truths=truth_values, fig=fig, range=ranges,
                  quantiles=(0.05, 0.5, 0.95), show_titles=True, title_fmt=".3g",
                  title_kwargs={"fontsize": 7}, label_kwargs={"fontsize": 8})
    return save_figure_atomic(fig, path, dpi=dpi)


def predictive_plot(idata, path: str | Path, *, interval: float = 0.9, dpi: int = 100, max_pairs: int = 12) -> Path:
    """Posterior predictive of the trajectories against the data, one panel per pair and variable.

    Each panel shows the measured points, the median noise-free model, its
    ``interval`` band, and the same band of the posterior predictive (model
    plus noise), against the processing time.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit's InferenceData (``posterior_predictive``, ``observed_data``).
    path : str or Path
        PNG to write.
    interval : float
        Central probability of the bands.
    dpi : int
    max_pairs : int
        At most this many pairs (the first ones) are drawn.

    Returns
    -------
    Path
    """
    obs = idata.observed_data
    pp = idata.posterior_predictive
    variables = [v for v in ("neck_radius_nm", "distance_nm") if v in obs]
    pairs = [str(p) for p in obs["pair"].values][:max_pairs]
    t = obs["pt_time_s"].values
    lo_q, hi_q = 0.5 - interval / 2, 0.5 + interval / 2
    width, height = 2.2 * len(pairs) + 0.9, 2.1 * len(variables) + 0.9
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(len(variables), len(pairs), sharex=True, squeeze=False)
    fig.subplots_adjust(left=0.75 / width, right=1 - 0.15 / width, bottom=0.6 / height, top=1 - 0.35 / height,
                        wspace=0.35, hspace=0.15)
    for r, v in enumerate(variables):
        model = pp[f"{v}_model"].values if f"{v}_model" in pp else pp[v].values
        model = model.reshape(-1, *model.shape[-2:])
        pred = pp[v].values.reshape(-1, *pp[v].shape[-2:])
        with warnings.catch_warnings():  # the times before a pair's start are all NaN: left blank
            warnings.simplefilter("ignore", RuntimeWarning)
            q_model = np.nanquantile(model, [lo_q, 0.5, hi_q], axis=0)
            q_pred = np.nanquantile(pred, [lo_q, hi_q], axis=0)
        for c, label in enumerate(pairs):
            ax = axes[r, c]
            ax.fill_between(t, q_pred[0][:, c], q_pred[1][:, c], color="C0", alpha=0.15, lw=0,
                            label=f"{interval:.0%} predictive")
            ax.fill_between(t, q_model[0][:, c], q_model[2][:, c], color="C0", alpha=0.35, lw=0,
                            label=f"{interval:.0%} model")
            ax.plot(t, q_model[1][:, c], color="C0", lw=1.2, label="median model")
            ax.plot(t, obs[v].values[:, c], "o", color="k", ms=3, label="data")
            if r == 0:
                ax.set_title(label, fontsize=9)
            if c == 0:
                ax.set_ylabel(_LABEL.get(v, v), fontsize=8)
            if r == len(variables) - 1:
                ax.set_xlabel("processing time (s)", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=6, loc="lower right")
    return save_figure_atomic(fig, path, dpi=dpi)
