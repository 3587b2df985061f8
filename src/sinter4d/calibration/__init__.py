"""Calibration of the pipeline for an acquisition: twins with known truth and the reading model.

Arrays, specs or Datasets in and out; no file is touched (the runner is
:mod:`sinter4d.experiments.calibrate`); docs/design.md, "Calibration".
"""

from ._choose import (
    CHOOSE_SEED_BASE,
    DEFAULT_CHOOSE_TWINS,
    ChooseCard,
    ChooseSpec,
    candidates,
    choice_variables,
    choosing_seeds,
    score,
    twin_errors,
)
from ._dataset import (
    CALIBRATED,
    CALIBRATION_MIN_NECK_NM,
    calibrate_metrics,
    calibration_dataset,
    orientation_deg,
    reading_models,
    reading_table,
)
from ._model import (
    BRIDGED_GAP_NM,
    DISTANCE_REFERENCE_NM,
    READING_TERMS,
    ReadingModel,
    design_matrix,
    fit_domain,
    fit_reading_model,
    invert_reading,
)
from ._twins import (
    DEFAULT_TWINS,
    TWIN_N_SERIES,
    TWIN_N_STACKED,
    TWIN_SEED_BASE,
    acquisition_of_spec,
    acquisition_of_tilts,
    estimate_dose_e_per_nm2,
    twin_seeds,
    twin_specs,
)

__all__ = [
    "CHOOSE_SEED_BASE",
    "DEFAULT_CHOOSE_TWINS",
    "ChooseCard",
    "ChooseSpec",
    "candidates",
    "choice_variables",
    "choosing_seeds",
    "score",
    "twin_errors",
    "CALIBRATED",
    "CALIBRATION_MIN_NECK_NM",
    "calibrate_metrics",
    "calibration_dataset",
    "orientation_deg",
    "reading_models",
    "reading_table",
    "BRIDGED_GAP_NM",
    "DISTANCE_REFERENCE_NM",
    "READING_TERMS",
    "ReadingModel",
    "design_matrix",
    "fit_domain",
    "fit_reading_model",
    "invert_reading",
    "DEFAULT_TWINS",
    "TWIN_N_SERIES",
    "TWIN_N_STACKED",
    "TWIN_SEED_BASE",
    "acquisition_of_spec",
    "acquisition_of_tilts",
    "estimate_dose_e_per_nm2",
    "twin_seeds",
    "twin_specs",
]
