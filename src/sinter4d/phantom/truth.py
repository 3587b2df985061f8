"""True metrics of particle pairs, measured on the analytic geometry of a cluster.

The variables are the pair metrics of the metrics file
(:data:`sinter4d.schema.PAIR_METRICS`; docs/design.md, "Metrics file"), so
``truth.nc`` and ``metrics.nc`` can be subtracted pair by pair.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy.optimize import minimize_scalar

from ..checks import check_choice
from ..errors import InputError
from ._cluster import Cluster, radius_along, spheroid_semi_axes, surface_gap_nm
from ._geometry import inverse_quadric_matrices, orthonormal_frame, quadric_matrices, support_nm

NECK_METHODS = ("joint", "section")
"""Definitions of the true neck offered by :func:`pair_truth`."""

_COARSE_PIXELS = 48
_FINE_PIXELS = 160
_SCAN_PLANES = 17


def pair_truth(cluster: Cluster, pairs: np.ndarray, *, neck: str = "joint") -> dict[str, np.ndarray]:
    """True metrics of core pairs (the variables of ``metrics.nc``).

    Parameters
    ----------
    cluster : Cluster
    pairs : (M, 2) int ndarray
        Core indices of each pair. A pair that is a contact of the cluster
        (in either order) has that contact's neck bridge; any other has none.
    neck : {'joint', 'section'}, optional
        How the neck radius is read from the solid of the pair (the two
        spheroids A, B and the bridge cylinder C of radius x about the line of
        centres), on planes normal to the line of centres between the two
        centres:

        - ``'joint'`` (default): the widest section of the joint
          ``(A ∩ B) ∪ C``, the lens where the cores overlap united with the
          bridge: the contact disc. 0 for a pair neither overlapping nor
          bridged.
        - ``'section'``: the narrowest section of the whole solid
          ``A ∪ B ∪ C``. Where a plane crosses both cores beside each other
          without meeting them (tilted spheroids touching off the line of
          centres) it counts both pieces, so it reads a few nm for pairs that
          merely touch.

        C is the bridge's waist: the fillet :func:`voxelize` draws by default
        has the same disc as its narrowest section, in its neck plane, and
        widens away from it, so both readings hold for either neck shape.
        For spheres both equal ``max(x, sqrt(R^2 - h^2))``, the bridge or the
        intersection circle (h the distance from a centre to the radical
        plane). A section's area is computed on a 2D grid of about 0.1-0.5 nm
        pixels with partial-area edges; its radius is the equal-area
        ``sqrt(area / pi)``, optimised over the plane's position.

    Returns
    -------
    dict of str to (M,) ndarray
        ``neck_radius_nm``
            The true neck radius r_n (nm), as chosen by ``neck``.
        ``neck_radius_3d_nm``
            The same (the truth of the 3D estimate).
        ``distance_nm``, ``distance_xy_nm``, ``distance_z_nm``
            Centre distance d, its part in the x-y plane and the absolute z
            difference (nm).
        ``particle_radius_nm``
            r_p, mean of the two cores' volume-conserving radii ``radius_nm``.
        ``aspect_ratio``
            H/W, mean of the two cores, each read from its projection along
            z as the paper does (Fig. 7): H its extent along the pair's
            direction in the x-y plane, W across it, each core cut at the
            pair's neck plane (the power plane, see :func:`voxelize`) as the
            protocol trims a pair at its neck (the y direction if the
            centres are above each other).
        ``neck_ratio``
            r_n / r_p.
        ``distance_ratio``
            d / (2 r_p).
        ``surface_gap_nm``
            Gap between the two spheroids' surfaces along the line of
            centres (nm; negative where they overlap): the gap a bridge
            between them spans, which sets its shell reservoir.

    Examples
    --------
    >>> import numpy as np
    >>> from sinter4d.phantom import make_cluster
    >>> cluster = make_cluster(n_cores=4, rng=2)
    >>> truth = pair_truth(cluster, cluster.contact)
    >>> sorted(truth)[:3]
    ['aspect_ratio', 'distance_nm', 'distance_ratio']
    """
    check_choice(neck, "neck", NECK_METHODS)
    pairs = _check_pairs(cluster, pairs)
    m = len(pairs)
    i, j = pairs[:, 0], pairs[:, 1]
    sep = cluster.centre_nm[j] - cluster.centre_nm[i]
    dist = np.linalg.norm(sep, axis=1)
    r_p = 0.5 * (cluster.radius_nm[i] + cluster.radius_nm[j])
    x = _pair_necks(cluster, pairs)
    q = quadric_matrices(cluster.radius_nm, cluster.aspect_ratio, cluster.axis)
    qinv = inverse_quadric_matrices(cluster.radius_nm, cluster.aspect_ratio, cluster.axis)
    mode = NECK_METHODS.index(neck)
    r_n = np.array([_neck_radius(cluster, q, qinv, int(a), int(b), float(xn), mode) for (a, b), xn in zip(pairs, x)])
    aspect = np.array([_pair_aspect_ratio(cluster, qinv, int(a), int(b)) for a, b in pairs]).reshape(m)
    return {
        "neck_radius_nm": r_n,
        "distance_nm": dist,
        "distance_xy_nm": np.hypot(sep[:, 1], sep[:, 2]),
        "distance_z_nm": np.abs(sep[:, 0]),
        "particle_radius_nm": r_p,
        "aspect_ratio": aspect,
        "neck_ratio": r_n / r_p,
        "distance_ratio": dist / (2.0 * r_p),
        "neck_radius_3d_nm": r_n.copy(),
        "surface_gap_nm": surface_gap_nm(cluster, pairs),
    }


def pair_silhouette_waist_nm(cluster: Cluster, pairs: np.ndarray) -> np.ndarray:
    """Half the waist of each pair's silhouette projected along z (nm).

    What the paper's protocol reads as r_n = W_n / 2 from the z-projection
    of a pair (the two cores and their bridge, other cores removed): the
    least width of the silhouette across the pair's x-y direction, between
    the projected centres. A pair tilted out of the x-y plane reads wider
    than its neck (spheres of 75 nm 140 nm apart tilted 15 degrees: 32.5 nm
    against a 26.9 nm neck).

    Parameters
    ----------
    cluster : Cluster
    pairs : (M, 2) int ndarray

    Returns
    -------
    (M,) ndarray
        NaN for a pair whose centres are above each other (no x-y direction).
    """
    pairs = _check_pairs(cluster, pairs)
    x = _pair_necks(cluster, pairs)
    q = quadric_matrices(cluster.radius_nm, cluster.aspect_ratio, cluster.axis)
    out = np.full(len(pairs), np.nan)
    for k, ((i, j), xn) in enumerate(zip(pairs, x)):
        out[k] = _silhouette_waist(cluster.centre_nm[i], cluster.centre_nm[j], q[i], q[j], float(xn))
    return out


# --------------------------------------------------------------------------- helpers


def _check_pairs(cluster, pairs) -> np.ndarray:
    pairs = np.asarray(pairs)
    if pairs.size == 0:
        return np.zeros((0, 2), dtype=int)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or not np.issubdtype(pairs.dtype, np.integer):
        raise InputError(f"pairs must be an (M, 2) integer array, got shape {pairs.shape} of {pairs.dtype}")
    if pairs.min() < 0 or pairs.max() >= cluster.n_cores:
        raise InputError(f"pairs hold core indices outside [0, {cluster.n_cores - 1}]")
    if np.any(pairs[:, 0] == pairs[:, 1]):
        raise InputError("pairs must join two different cores, got a pair (i, i)")
    return pairs.astype(int)


def _pair_necks(cluster, pairs) -> np.ndarray:
    """Bridge radius x of each pair: its contact's neck radius, else 0."""
    lookup = {}
    for (a, b), xn in zip(np.asarray(cluster.contact, int).reshape(-1, 2), np.asarray(cluster.neck_radius_nm, float)):
        lookup[(min(a, b), max(a, b))] = max(float(xn), 0.0)
    return np.array([lookup.get((min(a, b), max(a, b)), 0.0) for a, b in pairs])


@njit(cache=True, inline="always")
def _ramp(d, h):
    v = 0.5 - d / h
    return 0.0 if v < 0.0 else (1.0 if v > 1.0 else v)


@njit(cache=True)
def _ellipse_cover(q, w0, w1, w2, e1, e2, h):
    """Fraction of a pixel (edge h, in the plane spanned by e1, e2) inside a spheroid's section."""
    g0 = q[0, 0] * w0 + q[0, 1] * w1 + q[0, 2] * w2
    g1 = q[1, 0] * w0 + q[1, 1] * w1 + q[1, 2] * w2
    g2 = q[2, 0] * w0 + q[2, 1] * w1 + q[2, 2] * w2
    f2 = w0 * g0 + w1 * g1 + w2 * g2
    if f2 <= 0.0:
        return 1.0
    f = np.sqrt(f2)
    a = g0 * e1[0] + g1 * e1[1] + g2 * e1[2]
    b = g0 * e2[0] + g1 * e2[1] + g2 * e2[2]
    grad = np.sqrt(a * a + b * b) / f
    if grad < 1e-12:
        return 1.0 if f < 1.0 else 0.0
    return _ramp((f - 1.0) / grad, h)


@njit(cache=True)
def _plane_area(point, e1, e2, ca, qa, cb, qb, radius, u0, v0, h, n, mode, bbox):
    """Area (nm^2) of the joint (mode 0) or the union (mode 1) on one plane; bbox gets its extent."""
    row_area = np.zeros(n)
    row_box = np.empty((n, 4))
    for a in range(n):
        u = u0 + (a + 0.5) * h
        acc = 0.0
        lo, hi = np.inf, -np.inf
        for b in range(n):
            v = v0 + (b + 0.5) * h
            p0 = point[0] + u * e1[0] + v * e2[0]
            p1 = point[1] + u * e1[1] + v * e2[1]
            p2 = point[2] + u * e1[2] + v * e2[2]
            cov_a = _ellipse_cover(qa, p0 - ca[0], p1 - ca[1], p2 - ca[2], e1, e2, h)
            cov_b = _ellipse_cover(qb, p0 - cb[0], p1 - cb[1], p2 - cb[2], e1, e2, h)
            cov_c = _ramp(np.sqrt(u * u + v * v) - radius, h) if radius > 0.0 else 0.0
            if mode == 0:
                cov = max(min(cov_a, cov_b), cov_c)
            else:
                cov = max(cov_a, cov_b, cov_c)
            if cov > 0.0:
                acc += cov
                lo = min(lo, v - h)
                hi = max(hi, v + h)
        row_area[a] = acc
        row_box[a, 0], row_box[a, 1], row_box[a, 2], row_box[a, 3] = u - h, u + h, lo, hi
    area = 0.0
    for a in range(n):
        area += row_area[a]
        if row_area[a] > 0.0:
            bbox[0] = min(bbox[0], row_box[a, 0])
            bbox[1] = max(bbox[1], row_box[a, 1])
            bbox[2] = min(bbox[2], row_box[a, 2])
            bbox[3] = max(bbox[3], row_box[a, 3])
    return area * h * h


def _neck_radius(cluster, q, qinv, i, j, x, mode) -> float:
    """Equal-area radius (nm) of the widest joint (mode 0) or narrowest union (mode 1) section."""
    ca, cb = cluster.centre_nm[i], cluster.centre_nm[j]
    d = float(np.linalg.norm(cb - ca))
    if d <= 0:
        raise InputError(f"cores {i} and {j} share a centre; their neck is undefined")
    n = (cb - ca) / d
    e1, e2 = orthonormal_frame(n)
    s_lo = max(0.0, d - float(support_nm(qinv[j], -n)))
    s_hi = min(d, float(support_nm(qinv[i], n)))
    if s_lo >= s_hi:
        return x  # no plane between the centres cuts both cores: only the bridge joins them
    args = (np.ascontiguousarray(ca), q[i], np.ascontiguousarray(cb), q[j], x)

    def area(s, u0, v0, h, pixels, bbox):
        return _plane_area(ca + s * n, e1, e2, *args, u0, v0, h, pixels, mode, bbox)

    sign = -1.0 if mode == 0 else 1.0  # maximise the joint, minimise the union
    # coarse pass: where the section lies in its plane, and near which plane the optimum is
    reach = max(float(np.max(spheroid_semi_axes(cluster.radius_nm[[i, j]], cluster.aspect_ratio[[i, j]]))), x) + 2.0
    h = 2 * reach / _COARSE_PIXELS
    bbox = np.array([np.inf, -np.inf, np.inf, -np.inf])
    planes = np.linspace(s_lo, s_hi, _SCAN_PLANES)
    coarse = np.array([sign * area(s, -reach, -reach, h, _COARSE_PIXELS, bbox) for s in planes])
    if not np.isfinite(bbox[0]):
        return x
    k = int(np.argmin(coarse))
    lo, hi = planes[max(k - 2, 0)], planes[min(k + 2, len(planes) - 1)]
    # fine pass on the section's box (square pixels), optimised between the neighbouring planes
    side = max(bbox[1] - bbox[0], bbox[3] - bbox[2])
    h = side / _FINE_PIXELS
    u0 = 0.5 * (bbox[0] + bbox[1]) - 0.5 * side
    v0 = 0.5 * (bbox[2] + bbox[3]) - 0.5 * side
    scratch = np.zeros(4)

    def objective(s):
        return sign * area(s, u0, v0, h, _FINE_PIXELS, scratch)

    best = min(objective(lo), objective(hi), objective(planes[k]))
    if hi > lo:
        res = minimize_scalar(objective, bounds=(lo, hi), method="bounded", options={"xatol": 2e-4})
        best = min(best, float(res.fun))
    return float(np.sqrt(max(sign * best, 0.0) / np.pi))


def _truncated_extent(l_mat, u, n, s) -> float:
    """Largest ``u . z`` over the spheroid ``z^T Q z <= 1`` (``Q^-1 = L L^T``) cut to ``n . z <= s``."""
    a = l_mat.T @ u
    b = l_mat.T @ n
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if s >= nb or b @ a / na <= s:
        return float(na)  # the plane misses the spheroid, or its extreme point is on the kept side
    t = s / nb
    perp = a - (a @ b) / nb**2 * b
    return float(s * (a @ b) / nb**2 + np.linalg.norm(perp) * np.sqrt(max(1.0 - t * t, 0.0)))


def _pair_aspect_ratio(cluster, qinv, i, j) -> float:
    """Mean H/W of the two cores' z-projections, each cut at the pair's power plane."""
    ci, cj = cluster.centre_nm[i], cluster.centre_nm[j]
    sep = cj - ci
    d = float(np.linalg.norm(sep))
    n = sep / d
    dxy = float(np.hypot(sep[1], sep[2]))
    u = np.array([0.0, sep[1], sep[2]]) / dxy if dxy > 1e-9 * d else np.array([0.0, 1.0, 0.0])
    w = np.array([0.0, -u[2], u[1]])
    r_i = float(radius_along(cluster, np.array([i]), n[None])[0])
    r_j = float(radius_along(cluster, np.array([j]), -n[None])[0])
    s_i = (d * d + r_i * r_i - r_j * r_j) / (2.0 * d)
    ratios = []
    for core, toward, plane, along in ((i, n, s_i, u), (j, -n, d - s_i, -u)):
        l_mat = np.linalg.cholesky(qinv[core])
        height = _truncated_extent(l_mat, along, toward, plane) + _truncated_extent(l_mat, -along, toward, plane)
        width = _truncated_extent(l_mat, w, toward, plane) + _truncated_extent(l_mat, -w, toward, plane)
        ratios.append(height / width)
    return float(np.mean(ratios))


def _shadow(q) -> np.ndarray:
    """2x2 matrix (y, x) of a spheroid's projection along z: the Schur complement of q_zz."""
    return q[1:, 1:] - np.outer(q[1:, 0], q[0, 1:]) / q[0, 0]


def _chords(m, rel, w):
    """Interval ``[lo, hi]`` of s with ``(rel + s w)^T m (rel + s w) <= 1`` for each row of rel (NaN if none)."""
    a = w @ m @ w
    b = rel @ m @ w
    c = np.einsum("ki,ij,kj->k", rel, m, rel) - 1.0
    disc = b * b - a * c
    root = np.sqrt(np.where(disc >= 0, disc, np.nan))
    return (-b - root) / a, (-b + root) / a


def _silhouette_waist(ci, cj, qi, qj, x) -> float:
    sep = cj - ci
    dxy = float(np.hypot(sep[1], sep[2]))
    if dxy <= 1e-9 * max(float(np.linalg.norm(sep)), 1e-300):
        return float("nan")
    u = sep[1:] / dxy
    w = np.array([-u[1], u[0]])
    mi, mj = _shadow(qi), _shadow(qj)

    def width(t):
        t = np.atleast_1d(t)
        pos = ci[1:] + t[:, None] * u
        intervals = [_chords(mi, pos - ci[1:], w), _chords(mj, pos - cj[1:], w)]
        if x > 0:
            intervals.append((np.full(len(t), -x), np.full(len(t), x)))
        lo = np.stack([iv[0] for iv in intervals], axis=1)
        hi = np.stack([iv[1] for iv in intervals], axis=1)
        return _union_length(lo, hi)

    t = np.linspace(0.0, dxy, 2001)
    widths = width(t)
    k = int(np.argmin(widths))
    lo, hi = t[max(k - 1, 0)], t[min(k + 1, len(t) - 1)]
    res = minimize_scalar(lambda s: float(width(s)[0]), bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    return 0.5 * min(float(widths[k]), float(res.fun))


def _union_length(lo, hi) -> np.ndarray:
    """Total length of the union of intervals ``[lo, hi]`` along each row (NaN entries are empty)."""
    empty = ~(np.isfinite(lo) & np.isfinite(hi))
    lo = np.where(empty, np.inf, lo)
    hi = np.where(empty, -np.inf, hi)
    order = np.argsort(lo, axis=1)
    lo = np.take_along_axis(lo, order, axis=1)
    hi = np.take_along_axis(hi, order, axis=1)
    total = np.zeros(lo.shape[0])
    reach = np.full(lo.shape[0], -np.inf)
    for k in range(lo.shape[1]):
        start = np.maximum(lo[:, k], reach)
        valid = np.isfinite(lo[:, k])
        total += np.where(valid, np.maximum(hi[:, k] - start, 0.0), 0.0)
        reach = np.where(valid, np.maximum(reach, hi[:, k]), reach)
    return total
