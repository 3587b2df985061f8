"""Sintering of core–shell nanoparticle clusters: neck-growth laws, model cards, integration.

The physics lives here once. Laws are registered by name in :mod:`.laws`; a
model card (``models/*.toml``) picks them and gives material data and priors
(:func:`load_model_card`); :func:`neck_growth` integrates the necks of many
contacts along a :class:`HeatingLog` (:func:`true_heating` makes the true log of a logged one:
step-time errors, overshoot); :func:`sinter_cluster` moves a whole
:class:`~sinter4d.phantom.Cluster` (neck growth, centre approach, new
contacts) and returns one cluster per tilt series; :class:`RigidMotion` moves
rigid bodies of cores between series (:func:`rigid_bodies`).
"""

from .cards import ModelCard, Parameter, load_model_card, parse_model_card
from .cluster import sinter_cluster
from .geometry import (
    FilletNeck,
    conserving_radius_nm,
    core_volume_nm3,
    cylinder_neck_distance_ratio,
    fillet_neck,
    fillet_neck_distance_ratio,
    fillet_volume_nm3,
    truncated_sphere_distance_ratio,
    truncated_sphere_from_xi,
    truncated_sphere_pair,
)
from .heating import PAPER_PT_TIME_S, PAPER_TEMPERATURE_C, HeatingLog
from .heating_trace import (
    HeatingTruth,
    OvershootSettings,
    StepTimeErrorSettings,
    logged_trace_pieces,
    overshoot_plateau_C,
    overshoot_trace,
    true_heating,
)
from .kinetics import neck_growth, neck_growth_rate, neck_growth_segments
from .laws import (
    MECHANISMS,
    SATURATIONS,
    TRANSPORTS,
    Mechanism,
    Transport,
    neck_volume_nm3,
    rate_constant,
    register_mechanism,
    register_transport,
    reservoir_limit_nm,
    reservoir_volume_nm3,
)
from .motion import RigidMotion, RigidMotionSettings, rigid_bodies

__all__ = [
    "HeatingLog",
    "HeatingTruth",
    "OvershootSettings",
    "StepTimeErrorSettings",
    "logged_trace_pieces",
    "overshoot_plateau_C",
    "overshoot_trace",
    "true_heating",
    "MECHANISMS",
    "Mechanism",
    "ModelCard",
    "PAPER_PT_TIME_S",
    "PAPER_TEMPERATURE_C",
    "Parameter",
    "RigidMotion",
    "RigidMotionSettings",
    "SATURATIONS",
    "TRANSPORTS",
    "conserving_radius_nm",
    "core_volume_nm3",
    "cylinder_neck_distance_ratio",
    "FilletNeck",
    "fillet_neck",
    "fillet_neck_distance_ratio",
    "fillet_volume_nm3",
    "Transport",
    "load_model_card",
    "neck_growth",
    "neck_growth_rate",
    "neck_growth_segments",
    "neck_volume_nm3",
    "parse_model_card",
    "rate_constant",
    "register_mechanism",
    "register_transport",
    "reservoir_limit_nm",
    "reservoir_volume_nm3",
    "rigid_bodies",
    "sinter_cluster",
    "truncated_sphere_distance_ratio",
    "truncated_sphere_from_xi",
    "truncated_sphere_pair",
]
