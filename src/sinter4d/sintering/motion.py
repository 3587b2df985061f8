"""Rigid-body motion of the cores between tilt series (docs/design.md, "Rigid motion between series").

Between two series the specimen is heated and cooled again; besides
sintering, groups of cores slide on the film as a whole (the paper's P1,
"moved toward the neighbouring NP"). The model:

* A **rigid body** is a connected group of cores joined by *touching*
  contacts: contacts whose surface gap along the line of centres is at most
  ``joint_gap_nm`` (cores placed in contact, or overlapping at a sintered
  neck). Cores bridged only by the porous shell across a visible gap (the
  paper's "apparently separated" pairs) and cores with no contact are bodies
  of their own.
* After each series but the last, every body, in turn, slides on the film by
  a translation drawn from N(0, ``translation_sd_nm``²) along y and along x
  (none along z: the body rests on the film) and turns about the film normal
  (z) through its centre of volume by an angle drawn from N(0,
  ``rotation_sd_deg``²). The moves add up from series to series: a random
  walk.
* A move may not bring a core of the body closer to a core of another body
  than ``min(gap before, joint_gap_nm)``: no core overlaps another. Nor may
  it stretch a contact to another body (a shell bridge) beyond
  ``max(gap before, bridging distance)``: the bridge tethers the two. A move
  that would is drawn again (up to ``max_draws`` times in all), and the last
  draw is then halved until it fits (a zero move always fits).

Core axes and shell particles turn and move with their body; heights,
radii and necks are untouched, so every distance inside a body is kept.
:class:`RigidMotion` is the hook :func:`~sinter4d.sintering.sinter_cluster`
calls after each series; it records the moves it made.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated

import numpy as np
from pydantic import Field
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..specs import Flag, NonNegative, Spec

if TYPE_CHECKING:  # the phantom package may import this one
    from ..phantom import Cluster

__all__ = ["RigidMotion", "RigidMotionSettings", "rigid_bodies"]


class RigidMotionSettings(Spec):
    """``[sintering.rigid_motion]``: cores that move as rigid bodies between series.

    Attributes
    ----------
    enabled : bool
        Switch (default True). False: nothing is drawn, the cores move by
        sintering alone.
    translation_sd_nm : float
        S.d. (nm) of a body's slide between two series, along y and along x
        each. Default 5 nm (docs/design.md, "Rigid motion between series":
        the paper's P1).
    rotation_sd_deg : float
        S.d. (deg) of a body's turn about the film normal between two
        series. Default 0.3 deg: below what the paper could see (it
        recognised no rotation).
    joint_gap_nm : float
        Largest surface gap (nm) of a contact that joins two cores into one
        body. Default 1 nm: the phantom places touching cores within 0.25 nm.
    max_draws : int
        Draws of a body's move before it is halved until it fits (default 20).
    """

    enabled: Flag = True
    translation_sd_nm: NonNegative = 5.0
    rotation_sd_deg: NonNegative = 0.3
    joint_gap_nm: NonNegative = 1.0
    max_draws: Annotated[int, Field(ge=1, le=1000)] = 20


def rigid_bodies(cluster: Cluster, *, joint_gap_nm: float = 1.0) -> np.ndarray:
    """Which rigid body each core belongs to.

    Parameters
    ----------
    cluster : Cluster
    joint_gap_nm : float, optional
        Largest surface gap (nm) of a contact that joins two cores.

    Returns
    -------
    (N,) int ndarray
        Body index of each core, 0 .. B-1, numbered in order of the lowest
        core index of each body.
    """
    from ..phantom._cluster import surface_gap_nm

    n = cluster.n_cores
    contact = np.asarray(cluster.contact, dtype=int).reshape(-1, 2)
    joined = contact[surface_gap_nm(cluster, contact) <= joint_gap_nm] if len(contact) else contact
    graph = coo_matrix((np.ones(len(joined)), (joined[:, 0], joined[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    _, first = np.unique(label, return_index=True)
    order = np.argsort(np.argsort(first))  # renumber by the lowest core of each body
    return order[label].astype(np.int64)


def _turn_yx(vectors: np.ndarray, angle_rad: float) -> np.ndarray:
    """``(K, 3)`` vectors ``(z, y, x)`` turned about z by ``angle_rad`` (from +y towards +x)."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    out = vectors.copy()
    out[:, 1] = c * vectors[:, 1] - s * vectors[:, 2]
    out[:, 2] = s * vectors[:, 1] + c * vectors[:, 2]
    return out


class RigidMotion:
    """Moves the rigid bodies of a cluster between series, and records the moves.

    Called with the cluster just recorded at a series, it returns the
    cluster the next interval starts from (the hook ``between_series`` of
    :func:`~sinter4d.sintering.sinter_cluster`). One instance serves one run.

    Parameters
    ----------
    settings : RigidMotionSettings
    rng : numpy.random.Generator
    bridging_distance_nm : float, optional
        Longest gap (nm) a contact between two bodies may be stretched to
        (default 20 nm: two 10 nm shells, as
        :func:`~sinter4d.sintering.sinter_cluster`'s bridging distance).

    Attributes
    ----------
    displacement_nm : list of (N, 3) ndarray
        Each call's move of every core centre ``(z, y, x)`` in nm
        (translation plus the turn about the body's centre).
    rotation_deg : list of (N,) ndarray
        Each call's turn of every core about z (deg, from +y towards +x).
    """

    def __init__(self, settings: RigidMotionSettings, rng: np.random.Generator, *, bridging_distance_nm: float = 20.0):
        self.settings = settings
        self.rng = rng
        self.bridging_distance_nm = float(bridging_distance_nm)
        self.displacement_nm: list[np.ndarray] = []
        self.rotation_deg: list[np.ndarray] = []

    def __call__(self, cluster: Cluster) -> Cluster:
        from ..phantom._cluster import surface_gap_nm

        st = self.settings
        body = rigid_bodies(cluster, joint_gap_nm=st.joint_gap_nm)
        contact = np.asarray(cluster.contact, dtype=int).reshape(-1, 2)
        key = np.array([cluster.n_cores, 1])
        state = cluster
        turn = np.zeros(cluster.n_cores)
        for b in range(int(body.max()) + 1):
            own = np.flatnonzero(body == b)
            other = np.flatnonzero(body != b)
            pairs = np.stack(np.meshgrid(own, other, indexing="ij"), axis=-1).reshape(-1, 2)
            before = surface_gap_nm(state, pairs) if len(pairs) else np.zeros(0)
            tied = np.isin(np.sort(pairs, axis=1) @ key, contact @ key)  # contacts from this body to another
            low = np.minimum(before, st.joint_gap_nm)
            high = np.where(tied, np.maximum(before, self.bridging_distance_nm), np.inf)
            weight = cluster.initial_radius_nm[own] ** 3
            pivot = (state.centre_nm[own] * weight[:, None]).sum(axis=0) / weight.sum()
            moved, angle = self._place(state, own, pivot, pairs, low, high)
            state = moved
            turn[own] = math.degrees(angle)
        self.displacement_nm.append(state.centre_nm - cluster.centre_nm)
        self.rotation_deg.append(turn)
        return state

    def _place(self, state, own, pivot, pairs, low, high) -> tuple[Cluster, float]:
        """Draw a body's move until every gap to another body stays within [low, high] (then halve the last draw)."""
        from ..phantom._cluster import surface_gap_nm

        def fits(moved):
            if not len(pairs):
                return True
            gap = surface_gap_nm(moved, pairs)
            return bool(np.all(gap >= low) and np.all(gap <= high))

        for _ in range(self.settings.max_draws):
            shift, angle = self._draw()
            moved = _move_body(state, own, pivot, shift, angle)
            if fits(moved):
                return moved, angle
        for _ in range(60):
            shift, angle = 0.5 * shift, 0.5 * angle
            moved = _move_body(state, own, pivot, shift, angle)
            if fits(moved):
                return moved, angle
        return state, 0.0

    def _draw(self) -> tuple[np.ndarray, float]:
        st = self.settings
        yx = self.rng.normal(0.0, 1.0, size=2) * st.translation_sd_nm
        angle = math.radians(float(self.rng.normal(0.0, 1.0)) * st.rotation_sd_deg)
        return np.array([0.0, yx[0], yx[1]]), angle


def _move_body(cluster: Cluster, own: np.ndarray, pivot: np.ndarray, shift: np.ndarray, angle: float) -> Cluster:
    """The cluster with the cores ``own`` (and their shell particles) turned about ``pivot`` and shifted."""
    centre = cluster.centre_nm.copy()
    centre[own] = _turn_yx(centre[own] - pivot, angle) + pivot + shift
    axis = cluster.axis.copy()
    axis[own] = _turn_yx(axis[own], angle)
    shell = np.asarray(cluster.shell_centre_nm, dtype=float).reshape(-1, 3).copy()
    carried = np.isin(np.asarray(cluster.shell_owner).reshape(-1), own)
    shell[carried] = _turn_yx(shell[carried] - pivot, angle) + pivot + shift
    return cluster.replace(centre_nm=centre, axis=axis, shell_centre_nm=shell)
