"""Experiment specs and the runs made from them (simulation; later the full job and sweeps)."""

from .simulate import plan_simulation, simulate_run, tilt_path, truth_dataset
from .spec import ExperimentSpec, load_spec, parse_spec, resolve_model_card

__all__ = [
    "ExperimentSpec",
    "load_spec",
    "parse_spec",
    "plan_simulation",
    "resolve_model_card",
    "simulate_run",
    "tilt_path",
    "truth_dataset",
]
