"""Particles, pairs and the paper's Fig. 7 measurement, tracked over time.

Arrays in, arrays out (lengths in nm, volumes ``(z, y, x)``):

- :func:`split_particles`: binarised volume -> particle labels (watershed on
  the distance map, markers from the cores);
- :func:`particle_centres_nm`, :func:`find_pairs`: centres and neighbours;
- :func:`measure_pairs`: the Fig. 7 protocol per pair (the metrics of
  ``metrics.nc``), and :func:`neck_radius_3d` the neck measured in 3D;
- :func:`track_pairs`, :func:`measure_tracked_pairs`: pairs named P1, P2, ...
  over time, stopped when they merge with a third particle;
- :func:`match_pairs_to_truth`: found / missed / spurious pairs for validation;
- :func:`neck_fill_nm2`, :func:`fit_neck_fill`, :func:`correct_neck_fill`: the
  widening of a neck by the reconstruction's resolution, and its removal;
  :func:`neck_reading_curve`: the straight line of measured against true necks.
"""

from ._fill import (
    HALF_HEIGHT_Z,
    NECK_READING_REFERENCE_NM,
    correct_neck_fill,
    fit_neck_fill,
    neck_fill_nm2,
    neck_reading_curve,
)
from ._pairs import find_pairs, neighbour_gaps
from ._particles import particle_centres_nm, split_particles
from ._protocol import (
    CENTRE_METHODS,
    METRIC_NAMES,
    NECK_3D_METHODS,
    STATUS_VALUES,
    measure_pairs,
    moment_radius_along,
    neck_radius_3d,
)
from ._series import measure_tracked_pairs
from ._tracking import TRACK_STATUS_VALUES, PairTracks, TruthMatch, match_pairs_to_truth, track_pairs

__all__ = [
    "CENTRE_METHODS",
    "HALF_HEIGHT_Z",
    "METRIC_NAMES",
    "NECK_3D_METHODS",
    "NECK_READING_REFERENCE_NM",
    "STATUS_VALUES",
    "TRACK_STATUS_VALUES",
    "PairTracks",
    "TruthMatch",
    "correct_neck_fill",
    "find_pairs",
    "fit_neck_fill",
    "match_pairs_to_truth",
    "measure_pairs",
    "moment_radius_along",
    "measure_tracked_pairs",
    "neck_fill_nm2",
    "neck_reading_curve",
    "neck_radius_3d",
    "neighbour_gaps",
    "particle_centres_nm",
    "split_particles",
    "track_pairs",
]
