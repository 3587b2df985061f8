"""Experiment specs and the runs made from them: simulate, reconstruct, measure, validate, run."""

from .measure import measure_run
from .validate import validate_run
from .reconstruct import reconstruct_path
from .run import RunResult, code_fingerprint, run_experiment
from .simulate import plan_simulation, simulate_run, tilt_path, truth_dataset
from .spec import ExperimentSpec, load_spec, parse_spec, resolve_model_card

__all__ = [
    "ExperimentSpec",
    "RunResult",
    "code_fingerprint",
    "load_spec",
    "measure_run",
    "parse_spec",
    "plan_simulation",
    "reconstruct_path",
    "resolve_model_card",
    "run_experiment",
    "simulate_run",
    "tilt_path",
    "truth_dataset",
    "validate_run",
]
