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

from ..checks import check_int, check_number, check_positive, check_range
from ..errors import InputError
from ._cluster import Cluster, spheroid_semi_axes, surface_gap_nm
from ._geometry import inverse_quadric_matrices, quadric_matrices, spheroid_area_nm2, support_nm
from ._placement import EZ, centre_cluster, draw_cores, place_on_film, place_stacked
from ._shell import SHELL_TRIES, draw_shell_radii, lay_shell

__all__ = ["find_contacts", "make_cluster", "make_shell"]


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
    InputError
        An argument out of its range (the message names it).

    Examples
    --------
    >>> import numpy as np
    >>> cluster = make_cluster(n_cores=7, rng=np.random.default_rng(1))
    >>> cluster.n_cores, cluster.n_contacts >= 6
    (7, True)
    """
    n_cores = check_int(n_cores, "n_cores", minimum=1)
    n_stacked = check_int(n_stacked, "n_stacked", minimum=0)
    if n_stacked > max(n_cores - 2, 0):
        raise InputError(f"n_stacked={n_stacked} leaves too few cores on the film: at most n_cores - 2 = {n_cores - 2}")
    for value, name in ((mean_diameter_nm, "mean_diameter_nm"), (shell_thickness_nm, "shell_thickness_nm"),
                        (film_thickness_nm, "film_thickness_nm")):
        check_positive(value, name)
    check_number(diameter_sigma_log, "diameter_sigma_log", minimum=0.0)
    ar_lo, ar_hi = check_range(aspect_ratio_range, "aspect_ratio_range")
    d_lo, d_hi = check_range(shell_particle_diameter_nm, "shell_particle_diameter_nm")
    if d_hi > shell_thickness_nm:
        raise InputError(
            f"shell_particle_diameter_nm upper end {d_hi} exceeds shell_thickness_nm={shell_thickness_nm}: "
            "shell particles must fit in the shell"
        )
    check_number(shell_packing_fraction, "shell_packing_fraction", minimum=0.0, maximum=1.0)
    check_number(nest_probability, "nest_probability", minimum=0.0, maximum=1.0)
    bridge = 2.0 * shell_thickness_nm if bridge_gap_nm is None else check_positive(bridge_gap_nm, "bridge_gap_nm")
    g_lo, g_hi = (0.15 * bridge, 0.75 * bridge) if gap_range_nm is None else check_range(gap_range_nm, "gap_range_nm")
    if not 0 < g_lo <= g_hi < bridge:
        raise InputError(f"gap_range_nm must lie in (0, bridge_gap_nm={bridge}), got {(g_lo, g_hi)}")
    n_layer = n_cores - n_stacked
    most_gaps = max(n_layer - 2, 0)
    if n_gap_pairs is None:
        n_gap_pairs = int(np.clip(round(0.3 * (n_layer - 1)), min(1, most_gaps), most_gaps))
    if isinstance(n_gap_pairs, bool) or not isinstance(n_gap_pairs, (int, np.integer)) or not 0 <= n_gap_pairs <= most_gaps:
        raise InputError(
            f"n_gap_pairs must be an integer in [0, {most_gaps}] (cores on the film minus 2), got {n_gap_pairs!r}"
        )

    rng = np.random.default_rng(rng)
    radius, aspect, axis = draw_cores(rng, n_cores, mean_diameter_nm, diameter_sigma_log, (ar_lo, ar_hi))
    q = quadric_matrices(radius, aspect, axis)
    qinv = inverse_quadric_matrices(radius, aspect, axis)
    half_height = support_nm(qinv, np.broadcast_to(EZ, (n_cores, 3)))
    reach = np.maximum(*spheroid_semi_axes(radius, aspect))

    gapped = np.zeros(n_layer, dtype=bool)
    if n_gap_pairs:
        gapped[rng.choice(np.arange(2, n_layer), size=n_gap_pairs, replace=False)] = True
    centre = np.zeros((n_cores, 3))
    centre[0] = (half_height[0], 0.0, 0.0)  # film top at z = 0 while building
    for k in range(1, n_layer):
        gap = rng.uniform(g_lo, g_hi) if gapped[k] else 0.0
        nest = rng.random() < nest_probability
        centre[k] = place_on_film(k, gap, nest, centre, q, half_height, reach, radius, rng)
    for k in range(n_layer, n_cores):
        centre[k] = place_stacked(k, n_layer, centre, q, half_height, reach, radius, bridge, rng)

    centre, film_top = centre_cluster(centre, qinv, half_height)
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
    check_number(max_gap_nm, "max_gap_nm")
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
    lo, hi = check_range(particle_diameter_nm, "particle_diameter_nm")
    check_number(packing_fraction, "packing_fraction", minimum=0.0, maximum=1.0)
    rng = np.random.default_rng(rng)
    n = cluster.n_cores
    radius, aspect, axis = cluster.radius_nm, cluster.aspect_ratio, cluster.axis
    q = quadric_matrices(radius, aspect, axis)
    p_ax, q_ax = spheroid_semi_axes(radius, aspect)
    reach = np.maximum(p_ax, q_ax)
    area = spheroid_area_nm2(radius, aspect)
    centres, radii, owners = [], [], []
    for i in range(n):
        sizes = draw_shell_radii(rng, packing_fraction * area[i], lo / 2.0, hi / 2.0)
        k = len(sizes)
        directions = rng.standard_normal((k, SHELL_TRIES, 3))
        accept = rng.random((k, SHELL_TRIES))
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
        lay_shell(
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
