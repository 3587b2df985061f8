"""Sintering of a whole cluster: every neck at once, centre approach, new contacts.

Model (one step of the heating log, split into sub-steps):

1. Necks. Each contact's neck x and its densifying part x_d follow the card's
   laws (:func:`~sinter4d.sintering.neck_growth_segments`) with the pair's
   mean free radius a = (a0_i + a0_j)/2. A contact's kinetics does not depend
   on the others, so the whole history of a contact is integrated in one call
   when it forms. The shell reservoir sees the gap the bridge spanned when the
   contact formed (clipped at 0).
2. Approach. Densifying necks pull the centres together so that an isolated
   pair follows the truncated-sphere relation for its densifying neck:
   approach ``A = 2a - d_ts(x_d)`` (:mod:`.geometry`). In each sub-step the
   increment of A moves both cores along the line of their centres, split by
   inverse volume (the heavier core moves less), and the moves of a core's
   contacts are summed: pulls of several neighbours compete (the paper's P2),
   so a pair in a cluster may approach less than an isolated one. A core never
   moves into the film (it may slide along it).
3. Radii. Each core's radius is the volume-conserving one of its truncated
   sphere (:func:`~sinter4d.sintering.geometry.conserving_radius_nm`).
4. New contacts. When the surface gap of two cores not yet in contact falls
   below the shell bridging distance (default: two shell thicknesses, where
   the two shells touch), a contact is appended with the card's initial neck
   (of the order of a shell particle's radius), so a third core can join a pair.
5. Shell. Shell particles move with their core (kept on its surface); with a
   shell-reservoir card, those within the capture radius of a neck shrink as
   the reservoir is used (radius times ``(1 - V_neck/V_reservoir)^(1/3)``).
6. Between series (optional). A hook such as :class:`~.motion.RigidMotion`
   moves the cluster just recorded (rigid bodies sliding on the film); the
   next interval starts from where it put the cores.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from .cards import ModelCard
from .geometry import conserving_radius_nm, truncated_sphere_distance_ratio
from .heating import HeatingLog
from .kinetics import neck_growth_segments
from .laws import neck_volume_nm3, reservoir_volume_nm3

if TYPE_CHECKING:  # the phantom package may import this one
    from ..phantom import Cluster

log_ = logging.getLogger(__name__)


def _substeps(log: HeatingLog, include_standby: bool, max_step_s: float, max_substeps: int):
    """Fine segments (temperature_C, duration_s) and the fine index of each series."""
    temp, dur, ends = log.segments(include_standby=include_standby)
    counts = np.clip(np.ceil(dur / max_step_s), 1, max_substeps).astype(np.int64)
    fine_temp = np.repeat(temp, counts)
    fine_dur = np.repeat(dur / counts, counts)
    fine_end = np.concatenate([[0], np.cumsum(counts)])[ends]
    return fine_temp, fine_dur, fine_end


def _approach_nm(xd_nm, a_nm):
    """Centre approach (nm) of an isolated truncated-sphere pair with densifying neck x_d."""
    u = np.clip(xd_nm / a_nm, 0.0, 1.0)
    return 2.0 * a_nm * (1.0 - truncated_sphere_distance_ratio(u))


def _all_pairs(n):
    i, j = np.triu_indices(n, k=1)
    return np.stack([i, j], axis=1)


def sinter_cluster(
    cluster0: Cluster,
    card: ModelCard,
    params: Mapping[str, float] | None,
    log: HeatingLog,
    *,
    shell_thickness_nm: float = 10.0,
    shell_packing_fraction: float | None = None,
    bridging_distance_nm: float | None = None,
    initial_neck_nm: float | None = None,
    include_standby: bool = True,
    max_step_s: float = 1.0,
    max_substeps: int = 32,
    grid_points: int = 128,
    between_series: Callable[[Cluster], Cluster] | None = None,
) -> list[Cluster]:
    """Sinter a cluster along a heating log; one :class:`Cluster` per tilt series.

    Parameters
    ----------
    cluster0 : Cluster
        The cluster at series 0 (its contacts' necks may be 0).
    card : ModelCard
    params : mapping or None
        Free parameters of the card (missing ones take its defaults).
    log : HeatingLog
    shell_thickness_nm : float
        Shell thickness (nm): sets the reservoir and the default bridging distance.
    shell_packing_fraction : float, optional
        Shell-reservoir packing (default: the card's).
    bridging_distance_nm : float, optional
        Surface gap below which two cores form a contact (default
        ``2 * shell_thickness_nm``).
    initial_neck_nm : float, optional
        Neck radius a contact starts with (default: the card's
        ``contact.initial_neck``); existing necks below it are raised to it.
    include_standby : bool
        Integrate the standby waits (default).
    max_step_s : float
        Longest sub-step (s) for the many-body coupling.
    max_substeps : int
        Most sub-steps per segment of the log (long standby waits).
    grid_points : int
        Tabulation points of the neck kinetics.
    between_series : callable, optional
        Called with the cluster recorded at each series but the last; the
        next interval starts from the cluster it returns, whose centres,
        core axes and shell centres may differ (radii, contacts and necks
        are kept). Default: none, the cores move by sintering alone. See
        :class:`~sinter4d.sintering.motion.RigidMotion`.

    Returns
    -------
    list of Cluster
        ``len(log.pt_time_s)`` clusters with updated ``centre_nm``,
        ``radius_nm``, ``contact`` (new contacts appended, earlier order kept),
        ``neck_radius_nm``, ``shell_centre_nm`` and ``shell_radius_nm`` (and
        ``axis`` when ``between_series`` turns cores).
    """
    from ..phantom._cluster import radius_along, surface_gap_nm

    params = card.resolve_parameters(params)
    if not shell_thickness_nm > 0:
        raise InputError(f"shell_thickness_nm must be positive, got {shell_thickness_nm}")
    if not max_step_s > 0 or max_substeps < 1:
        raise InputError("max_step_s must be positive and max_substeps at least 1")
    bridge = 2.0 * shell_thickness_nm if bridging_distance_nm is None else float(bridging_distance_nm)
    x_init = card.initial_neck_nm if initial_neck_nm is None else float(initial_neck_nm)
    if not x_init > 0:
        raise InputError(f"initial_neck_nm must be positive, got {x_init}")
    kin = dict(
        shell_thickness_nm=shell_thickness_nm, shell_packing_fraction=shell_packing_fraction, grid_points=grid_points
    )

    a0 = np.asarray(cluster0.initial_radius_nm, dtype=float)
    n_cores = a0.size
    volume0 = a0**3
    centre = np.array(cluster0.centre_nm, dtype=float)
    radius = np.array(cluster0.radius_nm, dtype=float)
    contact = np.asarray(cluster0.contact, dtype=np.int64).reshape(-1, 2)
    if contact.size and (np.any(contact[:, 0] >= contact[:, 1]) or contact.max() >= n_cores):
        raise InputError("cluster0.contact must hold index pairs i < j of existing cores")
    neck = np.maximum(np.asarray(cluster0.neck_radius_nm, dtype=float), x_init)

    fine_temp, fine_dur, fine_end = _substeps(log, include_standby, max_step_s, max_substeps)
    n_fine = fine_temp.size
    probe = cluster0.replace(centre_nm=centre, radius_nm=radius)
    gap0 = surface_gap_nm(probe, contact) if contact.size else np.zeros(0)

    # per-contact state; histories x[s], xd[s] on the fine time grid (row s = after s sub-steps)
    hist_x = np.empty((n_fine + 1, 0))
    hist_xd = np.empty((n_fine + 1, 0))
    hist_approach = np.empty((n_fine + 1, 0))
    a_pair = np.zeros(0)
    bridge_gap = np.zeros(0)
    applied = np.zeros(0)

    def add_contacts(new, x0, gap, start):
        nonlocal hist_x, hist_xd, hist_approach, a_pair, bridge_gap, applied
        a_new = 0.5 * (a0[new[:, 0]] + a0[new[:, 1]])
        g_new = np.maximum(gap, 0.0)
        x, xd = neck_growth_segments(
            card,
            params,
            radius_nm=a_new,
            neck0_nm=x0,
            gap_nm=g_new,
            temperature_C=fine_temp[start:],
            duration_s=fine_dur[start:],
            **kin,
        )
        pad = np.repeat(x[:1], start, axis=0), np.repeat(xd[:1], start, axis=0)
        hist_x = np.concatenate([hist_x, np.concatenate([pad[0], x])], axis=1)
        hist_xd = np.concatenate([hist_xd, np.concatenate([pad[1], xd])], axis=1)
        hist_approach = np.concatenate([hist_approach, _approach_nm(hist_xd[:, -len(new) :], a_new)], axis=1)
        a_pair = np.concatenate([a_pair, a_new])
        bridge_gap = np.concatenate([bridge_gap, g_new])
        applied = np.concatenate([applied, np.zeros(len(new))])

    if contact.size:
        add_contacts(contact, neck, gap0, 0)
    else:
        contact = np.zeros((0, 2), dtype=np.int64)

    film_floor = _film_floor(cluster0, centre, radius, radius_along)
    ez = np.tile([1.0, 0.0, 0.0], (n_cores, 1))
    shell_c0 = np.asarray(cluster0.shell_centre_nm, dtype=float).reshape(-1, 3)
    shell_r0 = np.asarray(cluster0.shell_radius_nm, dtype=float).reshape(-1)
    owner = np.asarray(cluster0.shell_owner, dtype=np.int64).reshape(-1)
    shell_offset = (shell_c0 - centre[owner]) / radius[owner, None] if owner.size else np.zeros((0, 3))
    capture = params.get("capture_radius_nm") if card.saturation == "shell_reservoir" else None
    packing = card.shell_packing_fraction if shell_packing_fraction is None else shell_packing_fraction
    axis = np.array(cluster0.axis, dtype=float)
    out = []
    series = 0

    for s in range(n_fine + 1):
        if s > 0 and contact.size:
            step = np.maximum(hist_approach[s] - applied, 0.0)
            applied = applied + step
            i, j = contact[:, 0], contact[:, 1]
            sep = centre[j] - centre[i]
            unit = sep / np.linalg.norm(sep, axis=1)[:, None]
            wi = volume0[j] / (volume0[i] + volume0[j])
            move = np.zeros_like(centre)
            np.add.at(move, i, (step * wi)[:, None] * unit)
            np.add.at(move, j, -(step * (1.0 - wi))[:, None] * unit)
            centre = centre + move
            radius = conserving_radius_nm(centre, a0, contact, radius_guess_nm=radius)
            probe = cluster0.replace(centre_nm=centre, radius_nm=radius, axis=axis)
            floor = film_floor + radius_along(probe, np.arange(n_cores), ez)
            centre[:, 0] = np.maximum(centre[:, 0], floor)
        if s < n_fine:
            probe = cluster0.replace(centre_nm=centre, radius_nm=radius, axis=axis)
            new = _new_contacts(probe, contact, bridge, surface_gap_nm)
            if len(new):
                log_.debug("sub-step %d: %d new contact(s) %s", s, len(new), new.tolist())
                gap = surface_gap_nm(probe, new)
                contact = np.concatenate([contact, new])
                add_contacts(new, np.full(len(new), x_init), gap, s)
        while series < fine_end.size and fine_end[series] == s:
            shell_c, shell_r = _shell_state(
                centre,
                radius,
                owner,
                shell_offset,
                shell_r0,
                contact,
                hist_x[s],
                a_pair,
                bridge_gap,
                capture,
                packing,
                shell_thickness_nm,
            )
            out.append(
                cluster0.replace(
                    centre_nm=centre.copy(),
                    radius_nm=radius.copy(),
                    contact=contact.copy(),
                    neck_radius_nm=hist_x[s].copy(),
                    shell_centre_nm=shell_c,
                    shell_radius_nm=shell_r,
                    axis=axis.copy(),
                )
            )
            series += 1
            if between_series is not None and series < fine_end.size:
                moved = between_series(out[-1])
                centre = np.array(moved.centre_nm, dtype=float)
                axis = np.array(moved.axis, dtype=float)
                if owner.size:
                    shell_offset = (np.asarray(moved.shell_centre_nm) - centre[owner]) / radius[owner, None]
    return out


def _film_floor(cluster0, centre, radius, radius_along):
    """Lowest allowed z of each core's bottom: the film top, or its start depth if it began below."""
    probe = cluster0.replace(centre_nm=centre, radius_nm=radius)
    ez = np.tile([1.0, 0.0, 0.0], (centre.shape[0], 1))
    bottom = centre[:, 0] - radius_along(probe, np.arange(centre.shape[0]), ez)
    return np.minimum(bottom, float(cluster0.film_top_nm))


def _new_contacts(probe, contact, bridge, surface_gap_nm):
    n = probe.n_cores
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = _all_pairs(n)
    if contact.size:
        known = np.zeros((n, n), dtype=bool)
        known[contact[:, 0], contact[:, 1]] = True
        pairs = pairs[~known[pairs[:, 0], pairs[:, 1]]]
    if not len(pairs):
        return np.zeros((0, 2), dtype=np.int64)
    gap = surface_gap_nm(probe, pairs)
    return pairs[gap < bridge].astype(np.int64)


def _shell_state(centre, radius, owner, offset, r0, contact, neck, a_pair, gap, capture, packing, thickness):
    """Shell particles carried by their cores, shrunk where a neck drew on them."""
    if owner.size == 0:
        return np.zeros((0, 3)), np.zeros(0)
    shell_c = centre[owner] + offset * radius[owner, None]
    shell_r = r0.copy()
    if capture is None or contact.size == 0:
        return shell_c, shell_r
    i, j = contact[:, 0], contact[:, 1]
    reservoir = reservoir_volume_nm3(
        a_pair, a_pair, capture_radius_nm=capture, shell_thickness_nm=thickness, shell_packing_fraction=packing
    )
    used = np.clip(neck_volume_nm3(neck, a_pair, gap) / reservoir, 0.0, 1.0)
    sep = centre[j] - centre[i]
    dist = np.linalg.norm(sep, axis=1)
    # the neck plane's centre on the line of centres (the radical plane)
    hi = (dist**2 + radius[i] ** 2 - radius[j] ** 2) / (2.0 * dist)
    point = centre[i] + sep * (hi / dist)[:, None]
    near = np.linalg.norm(shell_c[:, None, :] - point[None, :, :], axis=2) < capture + r0[:, None]
    near &= (owner[:, None] == i[None, :]) | (owner[:, None] == j[None, :])
    drawn = np.max(np.where(near, used[None, :], 0.0), axis=1)
    return shell_c, r0 * np.cbrt(1.0 - drawn)
