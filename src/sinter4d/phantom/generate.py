"""Build a cluster of Cu core–shell particles on a Si3N4 film by sequential aggregation.

The cores are laid on the film one at a time, each against the cluster built
so far: touching a core, at a small gap from it (the paper's pairs "not
apparently in touch" that the shell still bridges), or nested in a pocket
against two cores at once (the many-body contacts of the paper's P2). A few
may be stacked on the first layer. Each core then gets a sparse shell of
<= 10 nm particles (NP-10) sitting on its surface.

References
----------
Ihara et al., Nanoscale 15, 10133 (2023), doi:10.1039/D3NR00981A.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy.optimize import brentq, root

from ._cluster import Cluster, spheroid_semi_axes, surface_gap_nm
from ._geometry import (
    _quad,
    clearance_nm,
    inverse_quadric_matrices,
    quadric_matrices,
    spheroid_area_nm2,
    support_nm,
)

_EZ = np.array([1.0, 0.0, 0.0])
_EY = np.array([0.0, 1.0, 0.0])
_EX = np.array([0.0, 0.0, 1.0])
_OVERLAP_TOLERANCE_NM = 0.02
"""Largest interpenetration of two cores accepted by the aggregation (nm)."""
_CANDIDATES = 24
"""Positions tried for each new core (more while none is valid); the most
compact of the valid ones (at most a third of them) is kept."""


def make_cluster(
    *,
    n_cores: int,
    rng: np.random.Generator | int | None,
    mean_diameter_nm: float = 150.0,
    diameter_sigma_log: float = 0.1,
    aspect_ratio_range: tuple[float, float] = (0.85, 1.15),
    n_gap_pairs: int | None = None,
    gap_range_nm: tuple[float, float] | None = None,
    nest_probability: float = 0.5,
    n_stacked: int = 0,
    shell_thickness_nm: float = 10.0,
    shell_particle_diameter_nm: tuple[float, float] = (3.0, 10.0),
    shell_packing_fraction: float = 0.2,
    film_thickness_nm: float = 30.0,
    bridge_gap_nm: float | None = None,
) -> Cluster:
    """A cluster of Cu core–shell particles resting on a Si3N4 film.

    Cores are laid on the film one by one (sequential aggregation); each new
    core is tried at several places against the cluster built so far and the
    valid place nearest the cluster's centre (with a little randomness) is
    kept, so the cluster comes out compact and mostly one layer thick:

    - the first core added touches the first core laid (a touching pair);
    - ``n_gap_pairs`` cores are placed at a surface gap drawn uniformly from
      ``gap_range_nm`` from their first neighbour: the paper's pairs that
      look separated but sinter because the shells bridge the gap;
    - with probability ``nest_probability`` a core is nested in a pocket,
      against two cores at once (its second contact touching), closing a
      loop: the many-body contacts of the paper's P2;
    - ``n_stacked`` further cores are dropped from above onto a contact of
      the first layer and rest on one or two cores of it.

    Cores never interpenetrate by more than 0.02 nm (their clearance, the
    least radial gap between the two surfaces, is >= 0), and every core of
    the first layer touches the film (its lowest point at ``film_top_nm``).

    Parameters
    ----------
    n_cores : int
        Number of cores N (>= 1).
    rng : numpy.random.Generator or int or None
        Source of randomness (or a seed for ``numpy.random.default_rng``);
        the cluster is a deterministic function of it and the arguments.
    mean_diameter_nm : float, optional
        Arithmetic mean of the cores' volume-equivalent diameters 2 a0 in nm
        (default 150, the paper's NP-150).
    diameter_sigma_log : float, optional
        Standard deviation of ln(diameter): diameters are log-normal with
        median ``mean_diameter_nm * exp(-sigma**2 / 2)``, clipped to
        +-3 sigma (default 0.1; 0 gives equal cores).
    aspect_ratio_range : (float, float), optional
        Polar over equatorial semi-axis of each core's spheroid, uniform in
        this range (default (0.85, 1.15); the paper measured H/W of 0.8-1.2).
        Symmetry axes are uniform on the sphere.
    n_gap_pairs : int, optional
        Cores placed at a gap from their neighbour instead of touching it.
        Default ``round(0.3 * (L - 1))`` clipped to ``[1, L - 2]`` (0 when
        ``L < 3``), with L the cores of the first layer; at most ``L - 2``,
        so that at least one pair touches.
    gap_range_nm : (float, float), optional
        Range of those gaps (clearance between the two surfaces, nm).
        Default ``(0.15, 0.75) * bridge_gap_nm`` (3-15 nm for a 10 nm shell).
        Must lie in ``(0, bridge_gap_nm)``.
    nest_probability : float, optional
        Probability in [0, 1] that a core of the first layer is nested
        against two cores (default 0.5). Where no pocket fits, the core is
        placed against one.
    n_stacked : int, optional
        Cores stacked on the first layer (default 0; at most ``n_cores - 2``).
    shell_thickness_nm : float, optional
        Thickness of the NP-10 shell layer in nm (default 10): the largest
        shell particle must fit in it, and two shells bridge a gap smaller
        than ``bridge_gap_nm`` (default twice this).
    shell_particle_diameter_nm : (float, float), optional
        Shell particle diameters in nm, uniform in this range (default
        (3, 10); the upper end must not exceed ``shell_thickness_nm``).
    shell_packing_fraction : float, optional
        Fraction in [0, 1] of each core's surface area covered by the
        footprints (pi r_s^2) of its shell particles (default 0.2, "sparse").
        Particles are laid at random without overlap while room is easily
        found (random sequential adsorption), then may overlap (above about
        0.4).
    film_thickness_nm : float, optional
        Thickness of the Si3N4 film under the cores in nm (default 30). The
        film is not voxelised; the acquisition adds it.
    bridge_gap_nm : float, optional
        Largest surface gap (nm, along the line of centres, as
        :func:`surface_gap_nm`) that the shells bridge: every pair of cores
        closer than this is a contact (default ``2 * shell_thickness_nm``,
        the two shells touching across the gap).

    Returns
    -------
    Cluster
        Centred laterally on ``x = y = 0`` (the middle of the cores' extent)
        and vertically so that the middle between the film top and the
        highest core top is at ``z = 0``. ``radius_nm == initial_radius_nm``,
        ``contact`` holds every pair closer than ``bridge_gap_nm``
        (:func:`find_contacts`), and ``neck_radius_nm`` is 0 (the sintering
        stage sets the initial necks).

    Raises
    ------
    ValueError
        An argument out of its range (the message names it).

    Examples
    --------
    >>> import numpy as np
    >>> cluster = make_cluster(n_cores=7, rng=np.random.default_rng(1))
    >>> cluster.n_cores, cluster.n_contacts >= 6
    (7, True)
    """
    if isinstance(n_cores, bool) or not isinstance(n_cores, (int, np.integer)) or n_cores < 1:
        raise ValueError(f"n_cores must be an integer >= 1, got {n_cores!r}")
    if isinstance(n_stacked, bool) or not isinstance(n_stacked, (int, np.integer)) or n_stacked < 0:
        raise ValueError(f"n_stacked must be an integer >= 0, got {n_stacked!r}")
    if n_stacked > max(n_cores - 2, 0):
        raise ValueError(f"n_stacked={n_stacked} leaves too few cores on the film: at most n_cores - 2 = {n_cores - 2}")
    _check_positive(mean_diameter_nm=mean_diameter_nm, shell_thickness_nm=shell_thickness_nm,
                    film_thickness_nm=film_thickness_nm)
    if not diameter_sigma_log >= 0:
        raise ValueError(f"diameter_sigma_log must be >= 0, got {diameter_sigma_log!r}")
    ar_lo, ar_hi = _check_range("aspect_ratio_range", aspect_ratio_range)
    d_lo, d_hi = _check_range("shell_particle_diameter_nm", shell_particle_diameter_nm)
    if d_hi > shell_thickness_nm:
        raise ValueError(
            f"shell_particle_diameter_nm upper end {d_hi} exceeds shell_thickness_nm={shell_thickness_nm}: "
            "shell particles must fit in the shell"
        )
    if not 0.0 <= shell_packing_fraction <= 1.0:
        raise ValueError(f"shell_packing_fraction must be in [0, 1], got {shell_packing_fraction!r}")
    if not 0.0 <= nest_probability <= 1.0:
        raise ValueError(f"nest_probability must be in [0, 1], got {nest_probability!r}")
    bridge = 2.0 * shell_thickness_nm if bridge_gap_nm is None else float(bridge_gap_nm)
    if not bridge > 0:
        raise ValueError(f"bridge_gap_nm must be > 0, got {bridge_gap_nm!r}")
    g_lo, g_hi = (0.15 * bridge, 0.75 * bridge) if gap_range_nm is None else _check_range("gap_range_nm", gap_range_nm)
    if not 0 < g_lo <= g_hi < bridge:
        raise ValueError(f"gap_range_nm must lie in (0, bridge_gap_nm={bridge}), got {(g_lo, g_hi)}")
    n_layer = n_cores - n_stacked
    most_gaps = max(n_layer - 2, 0)
    if n_gap_pairs is None:
        n_gap_pairs = int(np.clip(round(0.3 * (n_layer - 1)), min(1, most_gaps), most_gaps))
    if isinstance(n_gap_pairs, bool) or not isinstance(n_gap_pairs, (int, np.integer)) or not 0 <= n_gap_pairs <= most_gaps:
        raise ValueError(
            f"n_gap_pairs must be an integer in [0, {most_gaps}] (cores on the film minus 2), got {n_gap_pairs!r}"
        )

    rng = np.random.default_rng(rng)
    radius, aspect, axis = _draw_cores(rng, n_cores, mean_diameter_nm, diameter_sigma_log, (ar_lo, ar_hi))
    q = quadric_matrices(radius, aspect, axis)
    qinv = inverse_quadric_matrices(radius, aspect, axis)
    half_height = support_nm(qinv, np.broadcast_to(_EZ, (n_cores, 3)))
    reach = np.maximum(*spheroid_semi_axes(radius, aspect))

    gapped = np.zeros(n_layer, dtype=bool)
    if n_gap_pairs:
        gapped[rng.choice(np.arange(2, n_layer), size=n_gap_pairs, replace=False)] = True
    centre = np.zeros((n_cores, 3))
    centre[0] = (half_height[0], 0.0, 0.0)  # film top at z = 0 while building
    for k in range(1, n_layer):
        gap = rng.uniform(g_lo, g_hi) if gapped[k] else 0.0
        nest = rng.random() < nest_probability
        centre[k] = _place_on_film(k, gap, nest, centre, q, half_height, reach, radius, rng)
    for k in range(n_layer, n_cores):
        centre[k] = _place_stacked(k, n_layer, centre, q, half_height, reach, radius, bridge, rng)

    centre, film_top = _centre_cluster(centre, qinv, half_height)
    base = Cluster(
        centre_nm=centre,
        radius_nm=radius.copy(),
        initial_radius_nm=radius.copy(),
        aspect_ratio=aspect,
        axis=axis,
        contact=np.zeros((0, 2), dtype=int),
        neck_radius_nm=np.zeros(0),
        shell_centre_nm=np.zeros((0, 3)),
        shell_radius_nm=np.zeros(0),
        shell_owner=np.zeros(0, dtype=int),
        film_top_nm=float(film_top),
        film_thickness_nm=float(film_thickness_nm),
    )
    contact = find_contacts(base, max_gap_nm=bridge)
    shell_centre, shell_radius, shell_owner = make_shell(
        base, rng=rng, particle_diameter_nm=(d_lo, d_hi), packing_fraction=shell_packing_fraction
    )
    return base.replace(
        contact=contact,
        neck_radius_nm=np.zeros(len(contact)),
        shell_centre_nm=shell_centre,
        shell_radius_nm=shell_radius,
        shell_owner=shell_owner,
    )


def find_contacts(cluster: Cluster, *, max_gap_nm: float) -> np.ndarray:
    """Pairs of cores whose surface gap is smaller than ``max_gap_nm``.

    Parameters
    ----------
    cluster : Cluster
    max_gap_nm : float
        Bridging distance in nm: a pair is a contact when its gap along the
        line of centres (:func:`surface_gap_nm`, negative when the cores
        overlap) is below it. Twice the shell thickness is the distance the
        two shells bridge.

    Returns
    -------
    (M, 2) ndarray of int
        Index pairs ``i < j``, sorted lexicographically.
    """
    if not np.isfinite(max_gap_nm):
        raise ValueError(f"max_gap_nm must be finite, got {max_gap_nm!r}")
    n = cluster.n_cores
    i, j = np.triu_indices(n, k=1)
    reach = np.maximum(*spheroid_semi_axes(cluster.radius_nm, cluster.aspect_ratio))
    dist = np.linalg.norm(cluster.centre_nm[j] - cluster.centre_nm[i], axis=1)
    near = dist < reach[i] + reach[j] + max(max_gap_nm, 0.0)
    pairs = np.stack([i[near], j[near]], axis=1).astype(int)
    if len(pairs):
        pairs = pairs[surface_gap_nm(cluster, pairs) < max_gap_nm]
    return pairs.reshape(-1, 2)


def make_shell(
    cluster: Cluster,
    *,
    rng: np.random.Generator | int | None,
    particle_diameter_nm: tuple[float, float] = (3.0, 10.0),
    packing_fraction: float = 0.2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lay a sparse shell of small particles on every core's surface.

    For each core, particle diameters are drawn uniformly from
    ``particle_diameter_nm`` until their footprints ``pi r_s^2`` add up to
    ``packing_fraction`` of the core's surface area. Each particle sits on
    the surface, tangent to it (its centre one radius out along the surface
    normal), at a point uniform in area; points where it would enter another
    core or the film are redrawn, and so (up to 20 times) are points where
    it would overlap a particle already laid.

    Parameters
    ----------
    cluster : Cluster
        The cores (its shell fields are ignored).
    rng : numpy.random.Generator or int or None
    particle_diameter_nm : (float, float), optional
        Diameter range in nm (default (3, 10), NP-10).
    packing_fraction : float, optional
        Covered fraction of each core's surface area, in [0, 1] (default 0.2).

    Returns
    -------
    centre_nm : (K, 3) ndarray
        Particle centres ``(z, y, x)`` in nm.
    radius_nm : (K,) ndarray
    owner : (K,) ndarray of int
        Core each particle sits on.
    """
    lo, hi = _check_range("particle_diameter_nm", particle_diameter_nm)
    if not 0.0 <= packing_fraction <= 1.0:
        raise ValueError(f"packing_fraction must be in [0, 1], got {packing_fraction!r}")
    rng = np.random.default_rng(rng)
    n = cluster.n_cores
    radius, aspect, axis = cluster.radius_nm, cluster.aspect_ratio, cluster.axis
    q = quadric_matrices(radius, aspect, axis)
    p_ax, q_ax = spheroid_semi_axes(radius, aspect)
    reach = np.maximum(p_ax, q_ax)
    area = spheroid_area_nm2(radius, aspect)
    centres, radii, owners = [], [], []
    for i in range(n):
        sizes = _draw_shell_radii(rng, packing_fraction * area[i], lo / 2.0, hi / 2.0)
        k = len(sizes)
        directions = rng.standard_normal((k, _SHELL_TRIES, 3))
        accept = rng.random((k, _SHELL_TRIES))
        dist = np.linalg.norm(cluster.centre_nm - cluster.centre_nm[i], axis=1)
        others = np.flatnonzero((dist < reach + reach[i] + hi) & (np.arange(n) != i))
        if centres:
            prev_c, prev_r = np.concatenate(centres), np.concatenate(radii)
            near = np.linalg.norm(prev_c - cluster.centre_nm[i], axis=1) < reach[i] + 2 * hi
            prev_c, prev_r = prev_c[near], prev_r[near]
        else:
            prev_c, prev_r = np.zeros((0, 3)), np.zeros(0)
        spot = np.zeros((k, 3))
        ok = np.zeros(k, dtype=np.bool_)
        _lay_shell(
            sizes, cluster.centre_nm[i], axis[i], p_ax[i], q_ax[i], directions, accept,
            float(cluster.film_top_nm), np.ascontiguousarray(cluster.centre_nm[others]),
            np.ascontiguousarray(q[others]), np.ascontiguousarray(prev_c), prev_r, spot, ok,
        )
        centres.append(spot[ok])
        radii.append(sizes[ok])
        owners.append(np.full(int(ok.sum()), i))
    if not centres:
        return np.zeros((0, 3)), np.zeros(0), np.zeros(0, dtype=int)
    return np.concatenate(centres), np.concatenate(radii), np.concatenate(owners).astype(int)


_SHELL_TRIES = 200
"""Surface points tried for one shell particle before it is laid overlapping another."""


@njit(cache=True)
def _lay_shell(radii, c, a, p, qq, directions, accept, film_top, other_c, other_q, prev_c, prev_r, spot, ok):
    """Random sequential adsorption of the shell particles of one core (fills ``spot``, ``ok``).

    A proposal is the spheroid point ``c + L s`` of a unit vector s (from
    ``directions``), kept with probability ``|Q^(1/2) s| min(p, q)`` so that
    kept points are uniform in area; the particle's centre is one radius out
    along the surface normal ``Q^(1/2) s``. It must stay above the film and
    out of the other cores; the first proposal free of all particles laid so
    far is taken, else the first valid one.
    """
    n_prev = prev_c.shape[0]
    laid = np.zeros((radii.shape[0], 3))
    laid_r = np.zeros(radii.shape[0])
    n_laid = 0
    for k in range(radii.shape[0]):
        r_s = radii[k]
        have_fallback = False
        fb0 = fb1 = fb2 = 0.0
        for t in range(directions.shape[1]):
            s0, s1, s2 = directions[k, t, 0], directions[k, t, 1], directions[k, t, 2]
            norm = np.sqrt(s0 * s0 + s1 * s1 + s2 * s2)
            s0, s1, s2 = s0 / norm, s1 / norm, s2 / norm
            along = s0 * a[0] + s1 * a[1] + s2 * a[2]
            coef = (1.0 / p - 1.0 / qq) * along
            n0, n1, n2 = s0 / qq + coef * a[0], s1 / qq + coef * a[1], s2 / qq + coef * a[2]
            stretch = np.sqrt(n0 * n0 + n1 * n1 + n2 * n2)
            if accept[k, t] >= stretch * min(p, qq):
                continue
            coef = (p - qq) * along
            x0 = c[0] + qq * s0 + coef * a[0] + r_s * n0 / stretch
            x1 = c[1] + qq * s1 + coef * a[1] + r_s * n1 / stretch
            x2 = c[2] + qq * s2 + coef * a[2] + r_s * n2 / stretch
            if x0 - r_s < film_top:
                continue
            inside = False
            for j in range(other_c.shape[0]):
                v0, v1, v2 = x0 - other_c[j, 0], x1 - other_c[j, 1], x2 - other_c[j, 2]
                rho = np.sqrt(v0 * v0 + v1 * v1 + v2 * v2)
                f = np.sqrt(_quad(other_q[j], v0, v1, v2))
                if f <= 0 or rho - rho / f < r_s:
                    inside = True
                    break
            if inside:
                continue
            if not have_fallback:
                have_fallback = True
                fb0, fb1, fb2 = x0, x1, x2
            free = True
            for m in range(n_prev):
                d0, d1, d2 = x0 - prev_c[m, 0], x1 - prev_c[m, 1], x2 - prev_c[m, 2]
                if d0 * d0 + d1 * d1 + d2 * d2 < (r_s + prev_r[m]) ** 2:
                    free = False
                    break
            if free:
                for m in range(n_laid):
                    d0, d1, d2 = x0 - laid[m, 0], x1 - laid[m, 1], x2 - laid[m, 2]
                    if d0 * d0 + d1 * d1 + d2 * d2 < (r_s + laid_r[m]) ** 2:
                        free = False
                        break
            if free:
                fb0, fb1, fb2 = x0, x1, x2
                break
        if have_fallback:
            spot[k, 0], spot[k, 1], spot[k, 2] = fb0, fb1, fb2
            ok[k] = True
            laid[n_laid, 0], laid[n_laid, 1], laid[n_laid, 2] = fb0, fb1, fb2
            laid_r[n_laid] = r_s
            n_laid += 1


# --------------------------------------------------------------------------- helpers


def _check_positive(**values):
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")


def _check_range(name, pair) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in pair)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {pair!r}") from None
    if not 0 < lo <= hi:
        raise ValueError(f"{name} must be (low, high) with 0 < low <= high, got {pair!r}")
    return lo, hi


def _draw_cores(rng, n, mean_d, sigma, ar_range):
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


def _place_on_film(k, gap, nest, centre, q, half_height, reach, radius, rng):
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


def _place_stacked(k, n_layer, centre, q, half_height, reach, radius, bridge, rng):
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


def _centre_cluster(centre, qinv, half_height):
    """Shift so the lateral extent is centred on 0 and (film top + highest top) / 2 = 0."""
    n = len(centre)
    ext_y = support_nm(qinv, np.broadcast_to(_EY, (n, 3)))
    ext_x = support_nm(qinv, np.broadcast_to(_EX, (n, 3)))
    y_mid = 0.5 * (np.min(centre[:, 1] - ext_y) + np.max(centre[:, 1] + ext_y))
    x_mid = 0.5 * (np.min(centre[:, 2] - ext_x) + np.max(centre[:, 2] + ext_x))
    top = float(np.max(centre[:, 0] + half_height))
    shift = np.array([-0.5 * top, -y_mid, -x_mid])
    return centre + shift, -0.5 * top


def _draw_shell_radii(rng, target_area, r_lo, r_hi):
    """Radii (largest first) until their footprints pi r^2 reach ``target_area`` (nm^2)."""
    if target_area <= 0:
        return np.zeros(0)
    mean_area = np.pi * (r_lo**2 + r_lo * r_hi + r_hi**2) / 3.0
    n = int(target_area / mean_area * 1.3) + 8
    r = rng.uniform(r_lo, r_hi, n)
    while np.sum(np.pi * r**2) < target_area:
        r = np.concatenate([r, rng.uniform(r_lo, r_hi, n)])
    cum = np.cumsum(np.pi * r**2)
    m = int(np.searchsorted(cum, target_area))
    if m > 0 and target_area - cum[m - 1] < cum[m] - target_area:
        m -= 1  # stop at whichever count comes closer to the target
    return np.sort(r[: m + 1])[::-1]
