"""Validation of a measurement against the simulator's truth (the ``validation.nc`` stage).

Arrays or Datasets in, arrays or Datasets out; no file is touched:

- :func:`match_pairs_to_truth`, :func:`register_centres`,
  :func:`match_series`: measured particles and pairs matched to the true
  ones, after a rigid registration of their centres;
- :func:`compare_to_truth`: the errors of the pair metrics, pairs found,
  missed and spurious (the ``validation.nc`` Dataset), and
  :func:`metrics_on_true_pairs` the measurement on the truth's pairs,
  :func:`truth_at_metrics` the truth at the steps measured;
- :func:`neck_reading_curve`, :func:`fit_neck_fill`: how the pipeline reads
  necks against the true ones;
- :func:`orientation_summary`: the neck's error along and across the tilt axis;
- :func:`truth_on_grid`, :func:`registered_dice`, :func:`validation_dice`, :func:`rigid_residual`: the
  reconstruction and the alignment against the truth.
"""

from ..schema import NECK_READING_REFERENCE_NM
from ._compare import compare_to_truth, metrics_on_true_pairs, truth_at_metrics
from ._matching import (
    DEFAULT_MATCH_GATE_NM,
    SeriesMatch,
    TruthMatch,
    match_pairs_to_truth,
    match_series,
    on_true_pairs,
    register_centres,
)
from ._orientation import ORIENTATIONS, orientation_summary
from ._quality import DICE_MAX_SHIFT_NM, registered_dice, rigid_residual, truth_on_grid, validation_dice
from ._reading import (
    READING_CURVE_MAX_GAP_NM,
    READING_CURVE_MIN_NECK_NM,
    fit_neck_fill,
    neck_reading_curve,
    reading_curve_attrs,
)

__all__ = [
    "DEFAULT_MATCH_GATE_NM",
    "DICE_MAX_SHIFT_NM",
    "NECK_READING_REFERENCE_NM",
    "ORIENTATIONS",
    "READING_CURVE_MAX_GAP_NM",
    "READING_CURVE_MIN_NECK_NM",
    "SeriesMatch",
    "TruthMatch",
    "compare_to_truth",
    "fit_neck_fill",
    "match_pairs_to_truth",
    "match_series",
    "metrics_on_true_pairs",
    "neck_reading_curve",
    "on_true_pairs",
    "orientation_summary",
    "reading_curve_attrs",
    "register_centres",
    "registered_dice",
    "rigid_residual",
    "truth_at_metrics",
    "truth_on_grid",
    "validation_dice",
]
