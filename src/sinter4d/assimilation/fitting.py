"""``fit``: a model card fitted to neck/distance trajectories with emcee, end to end.

Layout of the output folder::

    OUT/chain.h5        emcee's HDF5 chain (resumable; written in batches)
    OUT/posterior.nc    ArviZ InferenceData (see :mod:`.output`)
    OUT/summary.csv     mean, sd, 94 % HDI, ESS, R-hat per parameter (+ truth)
    OUT/summary.txt     the same as text, with the convergence figures
    OUT/corner.png      corner plot of the posterior
    OUT/predictive.png  posterior predictive of each pair's trajectories

A fit interrupted at any point is resumed by running it again with the same
spec and data; raising ``sampler.steps`` continues a finished chain.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._cores import worker_count
from ..errors import InputError
from ..runfolder import FitFolder
from .likelihood import STEP_ERROR_PREFIX
from .output import build_inference_data, summary_table, write_inference_data_atomic, write_summary
from .problem import FitProblem, build_problem
from .sampler import Convergence, PosteriorPool, convergence, initial_positions, run_chain, spawn_generators
from .specs import FitSpec, load_fit_spec

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """What :func:`fit` produced.

    Attributes
    ----------
    out_dir, posterior_path, chain_path, summary_path, corner_path, predictive_path : Path
    summary : pandas.DataFrame
        Mean, sd, 94 % HDI, MCSE, ESS, R-hat (and truth) per parameter.
    convergence : Convergence
    parameter_names : tuple of str
    truth : dict
        True values found in the data (simulated runs), else empty.
    idata : arviz.InferenceData
    """

    out_dir: Path
    posterior_path: Path
    chain_path: Path
    summary_path: Path
    corner_path: Path | None
    predictive_path: Path | None
    summary: object
    convergence: Convergence
    parameter_names: tuple
    truth: dict
    idata: object = field(repr=False, default=None)


def fit(data_path: str | Path | None, spec_path: FitSpec | str | Path, out_dir: str | Path, *,
        progress: bool = True, pool=None, callback=None, calibration: str | Path | None = None,
        n_jobs: int = 1) -> FitResult:
    """Fit a sintering model card to measured neck/distance trajectories with emcee.

    Parameters
    ----------
    data_path : str or Path or None
        ``metrics.nc`` (or ``truth.nc``) or a trajectory CSV (docs/design.md);
        None: the ``data`` the spec names.
    spec_path : str or Path or FitSpec
        Fit spec (``assimilation/*.toml``).
    out_dir : str or Path
        Output folder (created). A ``chain.h5`` there from the same spec and
        data is resumed; one from another is refused.
    progress : bool, optional
        Show emcee's progress bar.
    pool : object with ``map``, optional
        Evaluates the walkers' log posteriors in parallel (e.g.
        ``multiprocessing.Pool(2)``); results are identical to serial ones.
    n_jobs : int, optional
        Without ``pool``: evaluate the walkers on this many worker processes
        (:class:`~.sampler.PosteriorPool`; -1: one per available core; default
        1, this process). The chain is the serial one.
    callback : callable, optional
        ``callback(iteration, state)`` after every sampler step (may raise to stop).
    calibration : str or Path, optional
        A ``calibration.nc`` whose reading model replaces the spec's
        observation model of every fitted variable (:func:`load_fit_spec`);
        with a spec file only.

    Returns
    -------
    FitResult

    Raises
    ------
    SpecError
        Invalid fit spec (nothing is written).
    InputError
        Unreadable or unusable data, or an ``out_dir`` holding another fit.

    Examples
    --------
    >>> result = fit("runs/quick/metrics.nc", "assimilation/quick.toml", "runs/quick/fit")  # doctest: +SKIP
    >>> result.summary[["mean", "hdi_3%", "hdi_97%", "r_hat"]]  # doctest: +SKIP
    """
    import arviz  # noqa: F401 - fail before sampling when it is missing

    n_jobs = worker_count(n_jobs)

    from ..figures.assimilation import corner_plot, predictive_plot

    if calibration is not None:
        if isinstance(spec_path, FitSpec):
            raise InputError("calibration: give the fit spec as a file (or name the calibration in its [noise] tables)")
        spec_path = load_fit_spec(spec_path, calibration=calibration)
    problem = build_problem(data_path, spec_path)
    spec, logpost = problem.spec, problem.logpost
    sam = spec.sampler
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = FitFolder(out)
    chain_path = files.chain
    seeds = spawn_generators(sam.seed)
    names = logpost.names
    log.info("fitting %s to %s: %d pairs x %d times, parameters %s", spec.card.name, problem.data.attrs["source"],
             logpost.model.n_pairs, logpost.model.n_times, ", ".join(names))

    def p0():
        return initial_positions(logpost, logpost.prior, sam.walkers, np.random.default_rng(seeds["init"]),
                                 start=problem.start, init=sam.init)

    own_pool = PosteriorPool(logpost, n_jobs) if pool is None and n_jobs > 1 else None
    try:
        backend = run_chain(logpost, p0, chain_path=chain_path, key=problem.resume_key(), walkers=sam.walkers,
                            steps=sam.steps, seed=sam.seed, checkpoint_steps=sam.checkpoint_steps,
                            pool=pool if own_pool is None else own_pool, progress=progress, callback=callback,
                            moves=sam.moves)
    finally:
        if own_pool is not None:
            own_pool.close()
    conv = convergence(backend, burn_in=sam.burn_in, steps=sam.steps, names=names)
    log.info("N/tau = %.1f, mean acceptance %.2f, tau = %s", conv.n_over_tau, float(np.mean(conv.acceptance)),
             np.array2string(conv.tau, precision=1))
    chain = backend.get_chain()[sam.burn_in:sam.steps:sam.thin]
    lp = backend.get_log_prob()[sam.burn_in:sam.steps:sam.thin]
    idata = build_inference_data(logpost, np.swapaxes(chain, 0, 1), np.swapaxes(lp, 0, 1), problem.data,
                                 np.random.default_rng(seeds["draws"]), attrs=_posterior_attrs(problem, conv))
    posterior_path = write_inference_data_atomic(idata, files.posterior)
    table = summary_table(idata, names, problem.truth)
    header = _summary_header(problem, conv)
    summary_path, _ = write_summary(table, files.summary_csv, files.summary_txt, header=header)
    truths = {k: v for k, v in problem.truth.items() if k in names}
    shown = [k for k in names if not k.startswith(STEP_ERROR_PREFIX)]  # the step-time latents: summary only
    corner_path = corner_plot(idata, files.corner, var_names=shown, truths=truths)
    predictive_path = predictive_plot(idata, files.predictive)
    return FitResult(out_dir=out, posterior_path=posterior_path, chain_path=chain_path, summary_path=summary_path,
                     corner_path=corner_path, predictive_path=predictive_path, summary=table, convergence=conv,
                     parameter_names=names, truth=dict(problem.truth), idata=idata)


def _posterior_attrs(problem: FitProblem, conv: Convergence) -> dict:
    """Provenance and convergence figures stored on the posterior group."""
    spec, sam, names = problem.spec, problem.spec.sampler, problem.logpost.names
    return {
        "model_card": spec.card.name,
        "data_source": str(problem.data.attrs["source"]),
        "fit_spec": spec.to_json(),
        "settings": json.dumps(problem.settings, default=float),
        "parameter_names": json.dumps(list(names)),
        "walkers": sam.walkers,
        "steps": sam.steps,
        "burn_in": sam.burn_in,
        "thin": sam.thin,
        **conv.as_dict(names),
        **{f"truth_{k}": v for k, v in problem.truth.items()},
    }


def _summary_header(problem: FitProblem, conv: Convergence) -> list[str]:
    """Lines above the summary table: what was fitted, how, and how well the chain mixed."""
    spec, sam, names = problem.spec, problem.spec.sampler, problem.logpost.names
    return [
        f"model card: {spec.card.name}   data: {problem.data.attrs['source']}   spec: {spec.path}",
        f"walkers {sam.walkers}, steps {sam.steps}, burn-in {sam.burn_in}, thin {sam.thin}, seed {sam.seed}",
        f"N/tau = {conv.n_over_tau:.1f} (N = {conv.n_steps} steps after burn-in; want >= 50), "
        f"acceptance fraction {np.mean(conv.acceptance):.3f} (min {np.min(conv.acceptance):.3f})",
        "tau (steps): " + ", ".join(f"{k} {t:.1f}" for k, t in zip(names, conv.tau)),
    ]
