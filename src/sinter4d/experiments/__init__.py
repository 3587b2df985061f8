"""Experiment specs and the runs made from them: simulate, import, reconstruct, measure, validate, run."""

from .manifest import import_manifest, read_manifest
from .measure import measure_run
from .validate import validate_run
from .reconstruct import reconstruct_path
from .record import code_fingerprint
from .run import RunResult, run_experiment, run_imported
from .simulate import plan_simulation, simulate_run, tilt_path, truth_dataset
from .spec import ExperimentSpec, RunSettings, load_run_settings, load_spec, parse_spec, resolve_model_card

__all__ = [
    "ExperimentSpec",
    "RunResult",
    "RunSettings",
    "code_fingerprint",
    "import_manifest",
    "load_run_settings",
    "load_spec",
    "measure_run",
    "parse_spec",
    "plan_simulation",
    "read_manifest",
    "reconstruct_path",
    "resolve_model_card",
    "run_experiment",
    "run_imported",
    "simulate_run",
    "tilt_path",
    "truth_dataset",
    "validate_run",
]
