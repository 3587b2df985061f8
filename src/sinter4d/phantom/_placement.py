"""Where each core of a cluster goes: the sequential aggregation of :func:`make_cluster`.

Private helpers of :mod:`sinter4d.phantom.generate`: drawing the cores'
sizes and shapes, placing a core on the film against the cluster built so
far (touching, at a gap, or nested against two), stacking cores on the
first layer, and centring the result.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, root

from ._geometry import clearance_nm, support_nm

__all__ = ["EX", "EY", "EZ", "centre_cluster", "draw_cores", "place_on_film", "place_stacked"]

EZ = np.array([1.0, 0.0, 0.0])
EY = np.array([0.0, 1.0, 0.0])
EX = np.array([0.0, 0.0, 1.0])
_OVERLAP_TOLERANCE_NM = 0.02
"""Largest interpenetration of two cores accepted by the aggregation (nm)."""
_CANDIDATES = 24
"""Positions tried for each new core (more while none is valid); the most
compact of the valid ones (at most a third of them) is kept."""


def draw_cores(rng, n, mean_d, sigma, ar_range):
    """Radii a0 (nm), aspect ratios and unit axes of n cores."""
    z = np.clip(rng.standard_normal(n), -3.0, 3.0)
    radius = 0.5 * mean_d * np.exp(sigma * z - 0.5 * sigma**2)
    aspect = rng.uniform(ar_range[0], ar_range[1], n)
    axis = rng.standard_normal((n, 3))
    axis /= np.linalg.norm(axis, axis=1)[:, None]
    return radius, aspect, axis


def _at_height(k, yx, half_height):
    """Centre of film core k at lateral position yx (film top at z = 0 while building)."""
    return np.array([half_height[k], yx[0], yx[1]])


def _overlaps(k, c, others, centre, q, reach) -> bool:
    """Does core k at c interpenetrate any of the cores ``others``?"""
    for j in others:
        if np.linalg.norm(centre[j] - c) >= reach[j] + reach[k]:
            continue
        if clearance_nm(c, q[k], centre[j], q[j]) < -_OVERLAP_TOLERANCE_NM:
            return True
    return False


def _along_direction(k, parent, gap, direction, centre, q, half_height, reach):
    """Film position of core k at clearance ``gap`` from ``parent`` along a horizontal direction."""
    start = centre[parent, 1:]

    def excess(s):
        return clearance_nm(_at_height(k, start + s * direction, half_height), q[k], centre[parent], q[parent]) - gap

    lo = 0.3 * min(reach[k], reach[parent])
    hi = reach[k] + reach[parent] + gap + 1.0
    s = brentq(excess, lo, hi, xtol=1e-5)
    return _at_height(k, start + s * direction, half_height)


def _nested(k, a, b, gap_a, side, centre, q, half_height, radius):
    """Film position of core k at clearance ``gap_a`` from a and touching b, or None."""
    ca, cb = centre[a, 1:], centre[b, 1:]
    dab = np.linalg.norm(cb - ca)
    ra = np.sqrt(max((radius[a] + radius[k] + gap_a) ** 2 - (half_height[k] - half_height[a]) ** 2, 0.0))
    rb = np.sqrt(max((radius[b] + radius[k]) ** 2 - (half_height[k] - half_height[b]) ** 2, 0.0))
    if not abs(ra - rb) < dab < ra + rb:
        return None
    t = (dab**2 + ra**2 - rb**2) / (2 * dab)
    h = np.sqrt(max(ra**2 - t**2, 0.0))
    e = (cb - ca) / dab
    guess = ca + t * e + side * h * np.array([-e[1], e[0]])

    def excess(yx):
        c = _at_height(k, yx, half_height)
        return [clearance_nm(c, q[k], centre[a], q[a]) - gap_a, clearance_nm(c, q[k], centre[b], q[b])]

    sol = root(excess, guess, method="hybr", options={"xtol": 1e-10})
    if not sol.success or np.max(np.abs(excess(sol.x))) > 1e-3:
        return None
    return _at_height(k, sol.x, half_height)


def place_on_film(k, gap, nest, centre, q, half_height, reach, radius, rng):
    """Position of film core k against the cores 0..k-1 (see make_cluster)."""
    existing = np.arange(k)
    found = []
    for attempt in range(20 * _CANDIDATES):
        parent = int(rng.integers(k))
        c = None
        if nest and k >= 2:
            dist = np.linalg.norm(centre[existing, 1:] - centre[parent, 1:], axis=1)
            partners = existing[(existing != parent) & (dist < reach[parent] + reach[existing] + 2 * reach[k] + gap)]
            if len(partners):
                b = int(rng.choice(partners))
                c = _nested(k, parent, b, gap, rng.choice((-1.0, 1.0)), centre, q, half_height, radius)
                touching = {parent, b}
        if c is None:
            phi = rng.uniform(0.0, 2.0 * np.pi)
            c = _along_direction(k, parent, gap, np.array([np.sin(phi), np.cos(phi)]), centre, q, half_height, reach)
            touching = {parent}
        others = [j for j in existing if j not in touching]
        if not _overlaps(k, c, others, centre, q, reach):
            found.append(c)
        if len(found) >= _CANDIDATES // 3 or (found and attempt >= _CANDIDATES):
            break
    if not found:
        raise RuntimeError(f"could not place core {k} against the cluster")  # a free side always exists
    return _most_compact(found, centre[:k], radius, rng)


def _most_compact(found, placed, radius, rng):
    """The candidate nearest the centroid of the placed cores (jittered by up to one mean radius)."""
    found = np.asarray(found)
    centroid = placed[:, 1:].mean(axis=0)
    score = np.linalg.norm(found[:, 1:] - centroid, axis=1) + rng.uniform(0.0, radius.mean(), len(found))
    return found[int(np.argmin(score))]


def place_stacked(k, n_layer, centre, q, half_height, reach, radius, bridge, rng):
    """Drop core k from above onto a contact of the first layer; rest where it first touches."""
    existing = np.arange(k)
    pairs = [(i, j) for i in range(n_layer) for j in range(i + 1, n_layer)
             if np.linalg.norm(centre[i] - centre[j]) < reach[i] + reach[j] + bridge]
    top = float(np.max(centre[existing, 0] + reach[existing]))
    found = []
    for _ in range(_CANDIDATES):
        i, j = pairs[int(rng.integers(len(pairs)))] if pairs else (0, 0)
        yx = 0.5 * (centre[i, 1:] + centre[j, 1:]) + rng.normal(0.0, 0.1 * radius[k], 2)

        def lowest_clearance(z):
            c = np.array([z, yx[0], yx[1]])
            near = existing[np.linalg.norm(centre[existing] - c, axis=1) < reach[existing] + reach[k] + 1.0]
            return min((clearance_nm(c, q[k], centre[m], q[m]) for m in near), default=1e3)

        z_hi = top + reach[k] + 5.0
        step = 2.0
        z = z_hi
        while z > half_height[k] and lowest_clearance(z - step) >= 0:
            z -= step
        if z - step <= half_height[k]:
            continue  # fell through to the film
        z = brentq(lowest_clearance, z - step, z, xtol=1e-5) + 1e-4
        c = np.array([z, yx[0], yx[1]])
        if not _overlaps(k, c, existing, centre, q, reach):
            found.append(c)
    if not found:
        raise RuntimeError(f"could not stack core {k} on the first layer")
    found = np.asarray(found)
    return found[int(np.argmin(found[:, 0]))]  # the one that sank deepest into a pocket


def centre_cluster(centre, qinv, half_height):
    """Shift so the lateral extent is centred on 0 and (film top + highest top) / 2 = 0."""
    n = len(centre)
    ext_y = support_nm(qinv, np.broadcast_to(EY, (n, 3)))
    ext_x = support_nm(qinv, np.broadcast_to(EX, (n, 3)))
    y_mid = 0.5 * (np.min(centre[:, 1] - ext_y) + np.max(centre[:, 1] + ext_y))
    x_mid = 0.5 * (np.min(centre[:, 2] - ext_x) + np.max(centre[:, 2] + ext_x))
    top = float(np.max(centre[:, 0] + half_height))
    shift = np.array([-0.5 * top, -y_mid, -x_mid])
    return centre + shift, -0.5 * top
