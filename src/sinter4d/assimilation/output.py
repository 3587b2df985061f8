"""What a fit leaves behind: ``posterior.nc`` (ArviZ InferenceData), summary table, model comparison.

``posterior.nc`` (docs/design.md, "Fit output"): an ArviZ InferenceData in netCDF
with groups

* ``posterior``: one variable per sampled parameter, named as in the model
  card (plus ``sigma_<variable>`` for fitted noise and ``initial_neck_nm``
  when fitted), over ``(chain, draw)``; emcee's walkers are the chains;
* ``posterior_predictive``: ``neck_radius_nm``, ``distance_nm`` (model plus
  noise) and ``neck_radius_nm_model``, ``distance_nm_model`` (noise-free
  model) over ``(chain, draw, time, pair)``;
* ``observed_data``: ``neck_radius_nm``, ``distance_nm`` over ``(time, pair)``;
* ``log_likelihood``: the pointwise log-likelihood of each fitted variable
  over ``(chain, draw, time, pair)``, 0 where nothing was measured;
* ``sample_stats``: ``lp``, the log posterior density.

Coordinates ``pt_time_s`` (s) and ``temperature_C`` (°C) ride on ``time``.
The posterior's attributes hold the fit spec (JSON), the model card, the data
file, the convergence figures and, for simulated data, the true values
(``truth_<name>``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from ..errors import InputError
from ..io.atomic import atomic_path, write_text_atomic

_UNITS = {"neck_radius_nm": "nm", "distance_nm": "nm", "initial_neck_nm": "nm"}
_LONG = {"neck_radius_nm": "neck radius r_n", "distance_nm": "centre-to-centre distance d"}


def _param_units(name: str) -> str:
    return "nm" if name.endswith("_nm") else "1"


def build_inference_data(logpost, samples: np.ndarray, log_prob: np.ndarray, data: xr.Dataset,
                         rng: np.random.Generator, *, attrs: Mapping | None = None):
    """Assemble the InferenceData of a fit.

    Parameters
    ----------
    logpost : LogPosterior
        The fitted posterior (its ``pointwise`` gives the per-draw quantities).
    samples : (C, N, D) ndarray
        Posterior draws (C chains = walkers, N draws, D parameters).
    log_prob : (C, N) ndarray
        Log posterior of each draw.
    data : xarray.Dataset
        The fitted trajectories (:func:`~sinter4d.io.trajectories.read_trajectories`),
        restricted to the fitted pairs.
    rng : numpy.random.Generator
        For the initial distances and the predictive noise.
    attrs : mapping, optional
        Attributes of the posterior group.

    Returns
    -------
    arviz.InferenceData
    """
    import arviz as az

    c, n, d = samples.shape
    names = logpost.names
    t, p = logpost.model.n_times, logpost.model.n_pairs
    variables = logpost.variables
    ll = {v: np.empty((c, n, t, p)) for v in variables}
    # float32 keeps trajectories to ~1e-5 nm at half the size
    pred = {v: np.empty((c, n, t, p), dtype=np.float32) for v in variables}
    model = {v: np.empty((c, n, t, p), dtype=np.float32) for v in variables}
    for i in range(c):
        necks, approaches = logpost.predict_batch(samples[i])  # one call of the kinetics per walker
        for j in range(n):
            res = logpost.pointwise(samples[i, j], rng, (necks[j], approaches[j]))
            for v in variables:
                ll[v][i, j] = res[f"log_likelihood/{v}"]
                pred[v][i, j] = res[f"predictive/{v}"]
                model[v][i, j] = res[f"model/{v}"]
    dims = {v: ["time", "pair"] for v in variables}
    dims.update({f"{v}_model": ["time", "pair"] for v in variables})
    coords = {"time": data["time"].values, "pair": [str(x) for x in data["pair"].values]}
    idata = az.from_dict(
        posterior={k: samples[:, :, i] for i, k in enumerate(names)},
        posterior_predictive={**pred, **{f"{v}_model": model[v] for v in variables}},
        log_likelihood=ll,
        observed_data={v: data[v].values for v in variables},
        sample_stats={"lp": log_prob},
        coords=coords,
        dims=dims,
    )
    for group in ("posterior_predictive", "log_likelihood", "observed_data"):
        ds = idata[group]
        for name in ("pt_time_s", "temperature_C"):
            ds.coords[name] = ("time", data[name].values, dict(data[name].attrs))
        for var in ds.data_vars:
            base = var.removesuffix("_model")
            if group == "log_likelihood":
                ds[var].attrs.update(units="1", long_name=f"pointwise log-likelihood of {base}")
            else:
                what = "noise-free model of " if var.endswith("_model") else ""
                ds[var].attrs.update(units=_UNITS.get(base, "nm"), long_name=what + _LONG.get(base, base))
    for k in names:
        idata.posterior[k].attrs.update(units=_param_units(k), long_name=f"parameter {k}")
    idata.sample_stats["lp"].attrs.update(units="1", long_name="log posterior density")
    if attrs:
        idata.posterior.attrs.update({k: _attr(v) for k, v in attrs.items()})
    return idata


def _attr(value):
    if isinstance(value, (str, int, float, np.integer, np.floating)):
        return value
    return json.dumps(value)


def write_inference_data_atomic(idata, path: str | Path) -> Path:
    """Write an InferenceData to netCDF atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        idata.to_netcdf(tmp)
    return path


def summary_table(idata, names: Sequence[str], truth: Mapping[str, float] | None = None):
    """Posterior summary: mean, sd, 94 % HDI, MCSE, ESS and R-hat per parameter (``arviz.summary``).

    Parameters
    ----------
    idata : arviz.InferenceData
    names : sequence of str
        Parameters to summarise.
    truth : mapping, optional
        True values (simulated data): added as a ``truth`` column.

    Returns
    -------
    pandas.DataFrame
        One row per parameter.
    """
    import arviz as az

    table = az.summary(idata, var_names=list(names), hdi_prob=0.94)
    if truth:
        table["truth"] = [truth.get(k, np.nan) for k in table.index]
    return table


def write_summary(table, csv_path: str | Path, txt_path: str | Path, *,
                  header: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write the summary as CSV and as text (with ``header`` lines), atomically.

    The fit's file names are :class:`sinter4d.runfolder.FitFolder`'s
    (``summary_csv``, ``summary_txt``).
    """
    csv_path, txt_path = Path(csv_path), Path(txt_path)
    write_text_atomic(csv_path, table.to_csv())
    write_text_atomic(txt_path, "\n".join([*header, "", table.to_string(), ""]))
    return csv_path, txt_path


def compare_fits(posterior_paths: Sequence[str | Path] | Mapping[str, str | Path], *, ic: str = "loo"):
    """Compare fits of the same data by LOO or WAIC from their pointwise log-likelihood.

    The pointwise terms of all fitted variables at a (time, pair) are added
    (one observation = the neck and distance measured together) and only
    measured points are kept. A variable's term enters only at the points
    that every fit has in its likelihood (a point a fit leaves out, e.g. a
    neck read as 0 under a calibrated observation model, has a term of 0
    in every draw), so that all fits are scored on the same readings.

    Parameters
    ----------
    posterior_paths : sequence of path, or mapping name -> path
        ``posterior.nc`` files. Without names, each fit is named by its model
        card (the file's folder when two share a card).
    ic : {'loo', 'waic'}
        Information criterion.

    Returns
    -------
    pandas.DataFrame
        ``arviz.compare``'s table, best model first: ``rank``, ``elpd_<ic>``,
        ``p_<ic>``, ``elpd_diff``, ``weight``, ``se``, ``dse``, ``warning``, ``scale``.

    Raises
    ------
    InputError
        Fewer than two files, a missing file or group, or fits of different
        data or variables.
    """
    import arviz as az

    if ic not in ("loo", "waic"):
        raise InputError(f"ic must be 'loo' or 'waic', got {ic!r}")
    if isinstance(posterior_paths, Mapping):
        items = [(str(k), Path(v)) for k, v in posterior_paths.items()]
    else:
        items = [(None, Path(v)) for v in posterior_paths]
    if len(items) < 2:
        raise InputError("compare_fits: give at least two posterior.nc files")
    loaded, reference = [], None
    for name, path in items:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        try:
            idata = az.from_netcdf(path)
        except Exception as exc:  # netCDF/HDF errors of several kinds
            raise InputError(f"{path}: not a readable posterior.nc ({exc})") from None
        for group in ("log_likelihood", "observed_data", "posterior"):
            if group not in idata.groups():
                raise InputError(f"{path}: no {group} group (not a sinter4d fit)")
        obs = idata.observed_data
        key = (tuple(sorted(obs.data_vars)), {v: obs[v].values for v in obs.data_vars})
        if reference is None:
            reference = (path, key)
        else:
            same = key[0] == reference[1][0] and all(
                np.array_equal(key[1][v], reference[1][1][v], equal_nan=True) for v in key[0])
            if not same:
                raise InputError(f"{path}: fits other data or variables than {reference[0]}; "
                                 "only fits of the same data can be compared")
        loaded.append((name, path, idata))
    ll_vars = sorted(loaded[0][2].log_likelihood.data_vars)
    common = {v: np.logical_and.reduce([(idata.log_likelihood[v].values != 0).any(axis=(0, 1))
                                        for _, _, idata in loaded]) for v in ll_vars}
    fits = {}
    for name, path, idata in loaded:
        ll, obs = idata.log_likelihood, idata.observed_data
        total = sum(ll[v].where(xr.DataArray(common[v], dims=("time", "pair")), 0.0) for v in ll_vars)
        measured = np.zeros(total.shape[-2:], dtype=bool)
        for v in obs.data_vars:
            measured |= np.isfinite(obs[v].values)
        measured &= np.logical_or.reduce([common[v] for v in ll_vars])
        flat = total.stack(observation=("time", "pair"))
        keep = measured.reshape(-1)
        flat = flat.isel(observation=np.flatnonzero(keep)).drop_vars(["observation", "time", "pair",
                                                                       "pt_time_s", "temperature_C"],
                                                                      errors="ignore")
        slim = az.InferenceData(posterior=idata.posterior, log_likelihood=xr.Dataset({"total": flat}))
        label = name or str(idata.posterior.attrs.get("model_card", path.parent.name))
        if label in fits:
            label = f"{label} ({path.parent.name})"
        fits[label] = slim
    return az.compare(fits, ic=ic, var_name="total")
