"""Particles, pairs and the paper's Fig. 7 measurement, tracked over time.

Arrays in, arrays out (lengths in nm, volumes ``(z, y, x)``):

- :func:`split_particles`: binarised volume -> particle labels (watershed on
  the distance map, markers from the cores);
- :func:`particle_centres_nm`, :func:`find_pairs`: centres and neighbours;
- :func:`measure_pairs`: the Fig. 7 protocol per pair (the metrics of
  ``metrics.nc``, named in :data:`sinter4d.schema.PAIR_METRICS`), and
  :func:`neck_radius_3d` the neck measured in 3D;
- :func:`track_pairs`, :func:`measure_tracked_pairs`: pairs named P1, P2, ...
  over time, stopped when they merge with a third particle;
- :func:`measure_volumes`: all of it over a series of binarised volumes, the
  ``metrics.nc`` Dataset; :func:`pair_axis_angle_deg` a pair's angle to the
  tilt axis;
- :func:`neck_fill_nm2`, :func:`correct_neck_fill`: the widening of a neck by
  the reconstruction's resolution, and its removal.

The comparison with the truth is :mod:`sinter4d.validation`.
"""

from ._fill import HALF_HEIGHT_Z, correct_neck_fill, neck_fill_nm2
from ._pairs import DEFAULT_MAX_GAP_NM, find_pairs, neighbour_gaps
from ._particles import DEFAULT_CORE_RADIUS_NM, particle_centres_nm, split_particles
from ._protocol import (
    CENTRE_METHODS,
    DEFAULT_CENTRE,
    DEFAULT_NECK_3D,
    NECK_3D_METHODS,
    STATUS_VALUES,
    measure_pairs,
    moment_radius_along,
    neck_radius_3d,
)
from ._series import measure_tracked_pairs
from ._tracking import DEFAULT_GATE_NM, DEFAULT_MERGE_GATE_NM, TRACK_STATUS_VALUES, PairTracks, track_pairs
from ._volumes import (
    DEFAULT_DISTANCE,
    DISTANCE_METHODS,
    STATUS_MEANINGS,
    measure_volumes,
    pair_axis_angle_deg,
)

__all__ = [
    "CENTRE_METHODS",
    "DEFAULT_CENTRE",
    "DEFAULT_CORE_RADIUS_NM",
    "DEFAULT_DISTANCE",
    "DEFAULT_GATE_NM",
    "DEFAULT_MAX_GAP_NM",
    "DEFAULT_MERGE_GATE_NM",
    "DEFAULT_NECK_3D",
    "DISTANCE_METHODS",
    "HALF_HEIGHT_Z",
    "NECK_3D_METHODS",
    "STATUS_MEANINGS",
    "STATUS_VALUES",
    "TRACK_STATUS_VALUES",
    "PairTracks",
    "correct_neck_fill",
    "find_pairs",
    "measure_pairs",
    "measure_tracked_pairs",
    "measure_volumes",
    "moment_radius_along",
    "neck_fill_nm2",
    "neck_radius_3d",
    "neighbour_gaps",
    "pair_axis_angle_deg",
    "particle_centres_nm",
    "split_particles",
    "track_pairs",
]
