"""Assimilation: emcee fits of sintering-model cards to neck/distance trajectories.

A fit spec (``assimilation/*.toml``, :func:`load_fit_spec`) names a model
card, its free parameters and priors, the noise model and the sampler
settings. :func:`fit` reads a ``metrics.nc`` (or ``truth.nc``, or a
trajectory CSV), runs the card's own kinetics (:mod:`sinter4d.sintering`)
for every pair (:class:`TrajectoryModel`), samples the posterior
(:class:`LogPosterior`) with emcee into a resumable ``chain.h5`` and writes
``posterior.nc`` (ArviZ), a summary table and figures. :func:`compare_fits`
ranks fits of different cards to the same data by LOO or WAIC.
"""

from .fitting import FitResult, fit
from .likelihood import LogPosterior, PriorVector
from .model import TrajectoryModel, approach_nm
from .noise import NoiseSpec
from .output import build_inference_data, compare_fits, summary_table, write_inference_data_atomic
from .sampler import BatchedHDFBackend, Convergence, convergence, initial_positions, run_chain, spawn_generators
from .priors import Prior, card_priors
from .problem import FitProblem, build_problem
from .specs import FitSpec, ForwardSpec, SamplerSpec, load_fit_spec, parse_fit_spec
from .synthetic import read_through_calibration, synthetic_trajectories

__all__ = [
    "BatchedHDFBackend",
    "Convergence",
    "FitProblem",
    "FitResult",
    "FitSpec",
    "ForwardSpec",
    "LogPosterior",
    "NoiseSpec",
    "Prior",
    "PriorVector",
    "SamplerSpec",
    "TrajectoryModel",
    "approach_nm",
    "build_inference_data",
    "build_problem",
    "card_priors",
    "compare_fits",
    "convergence",
    "fit",
    "initial_positions",
    "load_fit_spec",
    "parse_fit_spec",
    "run_chain",
    "spawn_generators",
    "summary_table",
    "read_through_calibration",
    "synthetic_trajectories",
    "write_inference_data_atomic",
]
