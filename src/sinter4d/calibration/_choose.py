"""Pipeline settings chosen by calibration: the choice card, its candidates, their scores.

Pure functions of cards and Datasets (no file is read; the runner is
:mod:`sinter4d.experiments.choose`): the card (:class:`ChooseCard`, its
``[choose]`` table :class:`ChooseSpec`), the candidates of its grid ordered so
that work is shared (:func:`candidates`, :func:`stage_of`), each twin's errors
(:func:`twin_errors`), the score (:func:`score`) and the candidates' table in
``calibration.nc`` (:func:`choice_variables`); docs/design.md, "Calibration",
"Settings chosen by calibration".
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Annotated

import numpy as np
import xarray as xr
from pydantic import PositiveInt, field_validator

from .. import schema
from ..errors import InputError
from ..pipeline.settings import BinarizeSettings, PipelineSpec, ReconstructionSettings
from ..specs import Spec, fail, nested

__all__ = [
    "CHOOSE_SEED_BASE",
    "DEFAULT_CHOOSE_TWINS",
    "STAGE_GROUPS",
    "ChooseCard",
    "ChooseSpec",
    "best_candidate",
    "candidates",
    "choice_variables",
    "choosing_seeds",
    "group_key",
    "score",
    "stage_of",
    "twin_errors",
]

CHOOSE_SEED_BASE = 2001
"""Choosing twin k has seed ``CHOOSE_SEED_BASE + k``: apart from the reporting twins (1001 + k,
:data:`~sinter4d.calibration.TWIN_SEED_BASE`) and from the reported quick seeds (7, 11, 19, 23)."""
DEFAULT_CHOOSE_TWINS = 2
"""Choosing twins of a choice: the fewest whose pooled readings (~50 per twin on the quick
acquisition) are not one specimen's; their cost is in docs/validation.md."""
STAGE_GROUPS = ("prepare", "reconstruct", "binarize")
"""The chain's stages a setting belongs to, outermost first: BM3D, alignment and axis
(:func:`~sinter4d.pipeline.prepare_tilt_series`), the reconstruction, the binarisation."""


def stage_of(key: str) -> str:
    """The stage group (:data:`STAGE_GROUPS`) of a pipeline setting: what must be redone when it changes."""
    if key in BinarizeSettings.model_fields:
        return "binarize"
    if key in ReconstructionSettings.model_fields:
        return "reconstruct"
    return "prepare"


class ChooseSpec(Spec):
    """The ``[choose]`` table: choosing twins and the grid of pipeline settings.

    ``grid`` maps a ``[pipeline]`` key (:class:`~sinter4d.pipeline.PipelineSpec`)
    to the list of values tried; every candidate is one point of the Cartesian
    product, with the run's other settings.
    """

    twins: PositiveInt = DEFAULT_CHOOSE_TWINS
    seed_base: PositiveInt = CHOOSE_SEED_BASE
    grid: dict

    @field_validator("grid", mode="before")
    @classmethod
    def _pipeline_keys(cls, value):
        if not isinstance(value, dict) or not value:
            raise fail("must be a table of pipeline settings -> lists of values (e.g. denoise_strength = [0.2, 0.35])")
        fields = PipelineSpec.model_fields
        out = {}
        for key, values in value.items():
            if key not in fields:
                raise fail(f"unknown pipeline setting (one of {', '.join(fields)})", key)
            if not isinstance(values, list) or not values:
                raise fail("must be a non-empty list of values", key)
            info = fields[key]
            kind = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
            checked = [nested(kind, v, key, i) for i, v in enumerate(values)]
            if len({repr(v) for v in checked}) != len(checked):
                raise fail(f"repeats a value ({values})", key)
            out[key] = checked
        return out


class ChooseCard(Spec):
    """A choice card (``experiments/choose_*.toml``): a name, a description and its ``[choose]`` table."""

    name: str | None = None
    description: str = ""
    choose: ChooseSpec


def choosing_seeds(spec: ChooseSpec, reporting: Sequence[int]) -> list[int]:
    """The choosing twins' seeds, checked apart from the reporting twins' ``reporting``.

    Raises
    ------
    InputError
        A choosing seed is also a reporting seed.
    """
    seeds = [int(spec.seed_base) + k for k in range(int(spec.twins))]
    shared = sorted(set(seeds) & {int(s) for s in reporting})
    if shared:
        raise InputError(f"choosing twin seed(s) {shared} are also reporting twins; set [choose] seed_base apart")
    return seeds


def candidates(grid: dict) -> list[dict]:
    """The candidates of a grid, each a dict setting -> value, ordered so that work is shared.

    The settings of the earlier stages vary slowest (:data:`STAGE_GROUPS`):
    candidates that share their BM3D and alignment settings are adjacent, and
    within them those that share the reconstruction's.
    """
    keys = sorted(grid, key=lambda k: STAGE_GROUPS.index(stage_of(k)))
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def group_key(candidate: dict, stage: str) -> tuple:
    """The settings of ``candidate`` up to and including ``stage``: candidates sharing it share that stage's work."""
    upto = STAGE_GROUPS[: STAGE_GROUPS.index(stage) + 1]
    return tuple((k, v) for k, v in candidate.items() if stage_of(k) in upto)


def twin_errors(validation: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """|error| of r_n/r_p and of d/2r_p at every true (time, pair) of one twin's ``validation.nc``.

    A true pair not found, or found but not measured, at a time (NaN in
    ``validation.nc``) counts as an infinite error, so a candidate that loses
    pairs scores worse rather than better.

    Returns
    -------
    neck, distance : (n,) ndarray
        One value per true (time, pair), ``inf`` where unread.
    """
    for name in ("neck_ratio", "distance_ratio"):
        if name not in validation:
            raise InputError(f"the validation lacks {name}")
    neck = np.abs(np.asarray(validation["neck_ratio"].values, dtype=float)).ravel()
    dist = np.abs(np.asarray(validation["distance_ratio"].values, dtype=float)).ravel()
    return np.where(np.isfinite(neck), neck, np.inf), np.where(np.isfinite(dist), dist, np.inf)


def score(errors: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict:
    """The objective of a candidate from its twins' errors (:func:`twin_errors`), pooled over twins.

    ``score`` = median |error| of r_n/r_p + median |error| of d/2r_p, both
    fractions of the particle size (the issue's two targets, weighted
    alike); lower is better.

    Returns
    -------
    dict
        ``score``, ``neck_ratio_error``, ``distance_ratio_error`` (the two
        medians) and ``unread`` (fraction of readings not read).
    """
    if not errors:
        raise InputError("no twin errors to score")
    neck = np.concatenate([e[0] for e in errors])
    dist = np.concatenate([e[1] for e in errors])
    if neck.size == 0:
        raise InputError("the twins hold no true pairs to score")
    n_med, d_med = float(np.median(neck)), float(np.median(dist))
    unread = float(np.mean(~np.isfinite(neck) | ~np.isfinite(dist)))
    return {"score": n_med + d_med, "neck_ratio_error": n_med, "distance_ratio_error": d_med, "unread": unread}


def best_candidate(scores: Sequence[dict]) -> int:
    """Index of the candidate with the lowest score (the first of equals).

    Raises
    ------
    InputError
        No candidate scored, or every score is infinite: each candidate left
        half or more of the true readings unread, so there is nothing to
        choose between (a pick would be the first candidate, not a choice).
    """
    if not scores:
        raise InputError("no candidates scored")
    values = [s["score"] for s in scores]
    if not np.isfinite(values).any():
        fewest = min(float(s["unread"]) for s in scores)
        raise InputError(f"no choice: every candidate left half or more of the choosing twins' true readings unread "
                         f"(the best {fewest:.0%}); choose among other settings, or on more twins")
    return int(np.argmin(values))


def choice_variables(grid_candidates: list[dict], scores: list[dict], chosen: int) -> dict:
    """The candidates' table of ``calibration.nc`` over the ``candidate`` dimension (data variables and coordinate).

    Returns
    -------
    dict
        name -> ``(dims, values, attrs)``: ``candidate``, ``candidate_<key>``
        per grid setting, ``candidate_score``, ``candidate_neck_ratio_error``,
        ``candidate_distance_ratio_error``, ``candidate_unread`` and
        ``candidate_chosen``.
    """
    table = schema.CALIBRATION
    out = {"candidate": schema.coordinate("candidate", np.arange(len(grid_candidates)), table=table)}
    for key in grid_candidates[0]:
        values = [c[key] for c in grid_candidates]
        if any(v is None for v in values):
            values = [np.nan if v is None else v for v in values]
        if any(isinstance(v, str) for v in values):
            values = [str(v) for v in values]
        out[f"candidate_{key}"] = schema.candidate_setting(key, values)
    for name in ("score", "neck_ratio_error", "distance_ratio_error", "unread"):
        out[f"candidate_{name}"] = schema.variable(f"candidate_{name}", [s[name] for s in scores], table=table)
    flags = np.zeros(len(grid_candidates), np.int8)
    flags[chosen] = 1
    out["candidate_chosen"] = schema.variable("candidate_chosen", flags, table=table)
    return out
