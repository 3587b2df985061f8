"""Draw a cluster on a voxel grid: volume fractions of core and shell Cu, and core labels.

Every object is drawn in its own bounding box (numba): the cores' spheroids,
the neck bridge of every contact with a neck (a concave fillet, or the
paper's sharp-edged cylinder), and the shell particles. The fraction of a
voxel inside an object comes from the object's signed distance d at sample
points: ``clip(1/2 - d / h, 0, 1)`` for a sample cell of edge h, which is
exact for a plane face parallel to the voxel's and unbiased in volume for
any orientation; ``supersample`` splits the voxels cut by a surface into
``s**3`` cells. The union of objects takes the largest
fraction.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from ..checks import check_choice, check_int
from ..errors import InputError
from ..sintering.geometry import fillet_neck
from ._cluster import Cluster, Grid, radius_along
from ._geometry import inverse_quadric_matrices, quadric_matrices


class Phantom(NamedTuple):
    """A cluster drawn on a voxel grid (all arrays ``(z, y, x)`` of the grid's shape).

    Attributes
    ----------
    core : ndarray of float32
        Volume fraction of dense Cu of the cores and their neck bridges, in [0, 1].
    shell : ndarray of float32
        Volume fraction of the shell particles' Cu (particles are solid;
        their sum over a particle's voxels is its volume), in ``[0, 1 - core]``.
    label : ndarray of uint16
        0 for background, ``i + 1`` where core i holds the voxel: the voxel's
        core fraction is >= 1/2 and core i has the least power distance to
        its centre (the radical plane of two overlapping spheres; a bridge's
        voxels go to the nearer of its two cores in the same sense).
    """

    core: np.ndarray
    shell: np.ndarray
    label: np.ndarray


NECK_SHAPES = ("fillet", "cylinder")
"""Shapes of the neck bridge :func:`voxelize` draws (docs/design.md, "Specimen")."""


def voxelize(cluster: Cluster, grid: Grid, *, supersample: int = 2, neck_shape: str = "fillet") -> Phantom:
    """Draw a cluster's cores, neck bridges and shell particles on a grid.

    The core volume is the union of the cores' spheroids (current
    ``radius_nm``, ``aspect_ratio``, ``axis``, ``centre_nm``) and, for each
    contact with ``neck_radius_nm`` x > 0, a neck bridge about the line of
    centres whose narrowest section is the disc of radius x. The film is not
    drawn. Parts of objects outside the grid are ignored.

    Parameters
    ----------
    cluster : Cluster
    grid : Grid
    supersample : int, optional
        Sample cells per voxel edge in voxels cut by a surface (default 2;
        1 uses the voxel centre only). Interior and exterior voxels are
        evaluated once.
    neck_shape : {'fillet', 'cylinder'}, optional
        ``'fillet'`` (default): the classical concave neck, the solid inside
        a torus whose waist has radius x and which meets the spheres of the
        two cores' radii along their line of centres tangentially
        (:func:`~sinter4d.sintering.geometry.fillet_neck`; docs/design.md,
        "Specimen"); nothing is added where the cores' overlap is already as
        wide as x, and the cylinder is drawn where no such torus exists.
        ``'cylinder'``: a solid cylinder of radius x from one centre to the
        other (the paper's cylindrical neck, Fig. 9b). Both fill the gap of
        a bridged pair that does not touch.

    Returns
    -------
    Phantom
        ``core`` and ``shell`` float32 volume fractions and ``label`` uint16.

    Notes
    -----
    A spheroid's signed distance is approximated by ``(f - 1) / |grad f|``
    with ``f = sqrt(w^T Q w)``, exact for a sphere and accurate to second
    order in the distance otherwise. A shell particle smaller than a voxel
    is spread over the voxels its sampled footprint touches, scaled so that
    its fractions add up to its exact volume.

    Examples
    --------
    >>> import numpy as np
    >>> from sinter4d.phantom import Grid, make_cluster
    >>> cluster = make_cluster(n_cores=3, rng=0)
    >>> ph = voxelize(cluster, Grid((64, 128, 128), 4.0))
    >>> ph.core.dtype, int(ph.label.max())
    (dtype('float32'), 3)
    """
    supersample = check_int(supersample, "supersample", minimum=1)
    check_choice(neck_shape, "neck_shape", NECK_SHAPES)
    if cluster.n_cores >= np.iinfo(np.uint16).max:
        raise InputError(f"at most 65534 cores can be labelled, got {cluster.n_cores}")
    shape = tuple(int(n) for n in grid.shape)
    h = float(grid.voxel_size_nm)
    z, y, x = grid.coords_nm()
    origin = np.array([z[0], y[0], x[0]], dtype=float)
    core = np.zeros(shape, dtype=np.float32)
    shell = np.zeros(shape, dtype=np.float32)
    label = np.zeros(shape, dtype=np.uint16)
    if cluster.n_cores == 0:
        return Phantom(core, shell, label)

    centre = np.ascontiguousarray(cluster.centre_nm, dtype=float)
    q = np.ascontiguousarray(quadric_matrices(cluster.radius_nm, cluster.aspect_ratio, cluster.axis))
    qinv = inverse_quadric_matrices(cluster.radius_nm, cluster.aspect_ratio, cluster.axis)
    half = np.sqrt(np.einsum("nii->ni", qinv))  # half-extent along z, y, x
    s = int(supersample)
    for i in range(cluster.n_cores):
        box = _box(centre[i] - half[i], centre[i] + half[i], origin, h, shape)
        if box is not None:
            _draw_spheroid(core, label, i, centre, q, origin, h, box, s)

    for i, j, kind, p, lo, hi in _bridges(cluster, neck_shape):
        box = _box(lo, hi, origin, h, shape)
        if box is not None:
            _draw_bridge(core, label, i, j, kind, p, centre, q, origin, h, box, s)

    if len(cluster.shell_radius_nm):
        _draw_shell(
            shell, core,
            np.ascontiguousarray(cluster.shell_centre_nm, dtype=float),
            np.ascontiguousarray(cluster.shell_radius_nm, dtype=float),
            origin, h, max(s, 2),
        )
    return Phantom(core, shell, label)


def _bridges(cluster: Cluster, neck_shape: str):
    """Each neck bridge to draw: ``(i, j, kind, params, box_lo, box_hi)``.

    A fillet is fitted to the spheres of the two cores' radii along their
    line of centres (:func:`~sinter4d.sintering.geometry.fillet_neck`); none
    is drawn where the neck is no wider than the cores' overlap, and a
    cylinder is drawn where no fillet exists (a neck as wide as a core).
    """
    contact = np.asarray(cluster.contact, dtype=int).reshape(-1, 2)
    necks = np.asarray(cluster.neck_radius_nm, dtype=float)
    keep = necks > 0
    contact, necks = contact[keep], necks[keep]
    centre = np.asarray(cluster.centre_nm, dtype=float)
    a, b = centre[contact[:, 0]], centre[contact[:, 1]]
    dist = np.linalg.norm(b - a, axis=1)
    rho = np.full(len(contact), np.nan)
    if neck_shape == "fillet" and len(contact):
        safe = np.where(dist > 0, dist, 1.0)
        n = (b - a) / safe[:, None]
        rho, plane, start, end = fillet_neck(
            radius_along(cluster, contact[:, 0], n), radius_along(cluster, contact[:, 1], -n), safe, necks
        )
        rho = np.where(dist > 0, rho, np.nan)  # cores sharing a centre: the kernel draws nothing
    for k, ((i, j), x_n) in enumerate(zip(contact, necks)):
        if np.isnan(rho[k]):  # the sharp-edged cylinder from centre to centre
            yield i, j, CYLINDER, np.array([x_n]), np.minimum(a[k], b[k]) - x_n, np.maximum(a[k], b[k]) + x_n
            continue
        if not rho[k] > 0:
            continue
        n_k = (b[k] - a[k]) / dist[k]
        p0, p1 = a[k] + start[k] * n_k, a[k] + end[k] * n_k
        reach = x_n + rho[k]
        params = np.array([start[k], end[k], plane[k], reach, rho[k]])
        yield i, j, FILLET, params, np.minimum(p0, p1) - reach, np.maximum(p0, p1) + reach


def _box(lo, hi, origin, h, shape):
    """Index ranges ``(k0, k1, j0, j1, i0, i1)`` of the voxels within one voxel of [lo, hi], or None."""
    a = np.floor((np.asarray(lo) - origin) / h).astype(int) - 1
    b = np.ceil((np.asarray(hi) - origin) / h).astype(int) + 2
    a = np.maximum(a, 0)
    b = np.minimum(b, shape)
    if np.any(b <= a):
        return None
    return np.array([a[0], b[0], a[1], b[1], a[2], b[2]], dtype=np.int64)


@njit(cache=True, inline="always")
def _ramp(d, h):
    """Fraction of a cell of edge h inside a surface at signed distance d (negative inside)."""
    v = 0.5 - d / h
    return 0.0 if v < 0.0 else (1.0 if v > 1.0 else v)


@njit(cache=True)
def _spheroid_sd(q, w0, w1, w2):
    """Approximate signed distance (nm) of offset w from a spheroid's centre to its surface."""
    g0 = q[0, 0] * w0 + q[0, 1] * w1 + q[0, 2] * w2
    g1 = q[1, 0] * w0 + q[1, 1] * w1 + q[1, 2] * w2
    g2 = q[2, 0] * w0 + q[2, 1] * w1 + q[2, 2] * w2
    f2 = w0 * g0 + w1 * g1 + w2 * g2
    if f2 <= 0.0:
        return -1e30
    f = np.sqrt(f2)
    grad = np.sqrt(g0 * g0 + g1 * g1 + g2 * g2) / f
    return (f - 1.0) / grad


@njit(cache=True)
def _power(q, w0, w1, w2):
    """Power distance ``|w|^2 - r(w)^2`` of offset w from a spheroid (r its radius along w)."""
    f2 = _quadform(q, w0, w1, w2)
    rho2 = w0 * w0 + w1 * w1 + w2 * w2
    if f2 <= 0.0:
        return -1.0 / np.sqrt(max(q[0, 0], q[1, 1], q[2, 2]))  # the centre
    return rho2 - rho2 / f2


@njit(cache=True)
def _quadform(q, a0, a1, a2):
    return (
        q[0, 0] * a0 * a0 + q[1, 1] * a1 * a1 + q[2, 2] * a2 * a2
        + 2.0 * (q[0, 1] * a0 * a1 + q[0, 2] * a0 * a2 + q[1, 2] * a1 * a2)
    )


@njit(cache=True)
def _claim(label, k, jj, ii, owner, centre, q, z, y, x):
    """Give voxel (k, jj, ii) to core ``owner`` unless its holder has a smaller power distance."""
    held = label[k, jj, ii]
    if held == 0:
        label[k, jj, ii] = owner + 1
        return
    m = held - 1
    if m == owner:
        return
    mine = _power(q[owner], z - centre[owner, 0], y - centre[owner, 1], x - centre[owner, 2])
    theirs = _power(q[m], z - centre[m, 0], y - centre[m, 1], x - centre[m, 2])
    if mine < theirs:
        label[k, jj, ii] = owner + 1


@njit(cache=True, parallel=True)
def _draw_spheroid(core, label, i, centre, q, origin, h, box, s):
    qi = q[i]
    c0, c1, c2 = centre[i, 0], centre[i, 1], centre[i, 2]
    edge = 0.87 * h  # half the voxel diagonal: farther surfaces miss the voxel
    sub = h / s
    for k in prange(box[0], box[1]):
        z = origin[0] + k * h
        for jj in range(box[2], box[3]):
            y = origin[1] + jj * h
            for ii in range(box[4], box[5]):
                x = origin[2] + ii * h
                d = _spheroid_sd(qi, z - c0, y - c1, x - c2)
                if d >= edge:
                    continue
                if d <= -edge:
                    frac = 1.0
                elif s == 1:
                    frac = _ramp(d, h)
                else:
                    acc = 0.0
                    for a in range(s):
                        za = z - c0 + (a + 0.5) * sub - 0.5 * h
                        for b in range(s):
                            yb = y - c1 + (b + 0.5) * sub - 0.5 * h
                            for e in range(s):
                                xe = x - c2 + (e + 0.5) * sub - 0.5 * h
                                acc += _ramp(_spheroid_sd(qi, za, yb, xe), sub)
                    frac = acc / (s * s * s)
                if frac > core[k, jj, ii]:
                    core[k, jj, ii] = frac
                if frac >= 0.5:
                    _claim(label, k, jj, ii, i, centre, q, z, y, x)


CYLINDER, FILLET = 0, 1  # kinds of neck bridge drawn by _draw_bridge


@njit(cache=True)
def _cylinder_sd(t, rho, length, radius):
    """Signed distance to a solid cylinder of a radius, axial coordinate t in [0, length]."""
    dr = rho - radius
    da = max(-t, t - length)
    if dr > 0.0 and da > 0.0:
        return np.sqrt(dr * dr + da * da)
    return max(dr, da)


@njit(cache=True)
def _fillet_sd(t, rho, start, end, plane, outer, tube):
    """Signed distance (a lower bound outside the rims) to a fillet neck's solid.

    The solid is the slab ``start <= t <= end`` below ``rho = outer`` outside
    the torus tube of radius ``tube`` about the circle ``(plane, outer)``;
    the distance to the tube is exact, its rims lie on the spheres.
    """
    da = max(start - t, t - end)
    du = t - plane
    dv = rho - outer
    return max(da, dv, tube - np.sqrt(du * du + dv * dv))


@njit(cache=True)
def _bridge_sd(kind, t, rho, length, p):
    if kind == CYLINDER:
        return _cylinder_sd(t, rho, length, p[0])
    return _fillet_sd(t, rho, p[0], p[1], p[2], p[3], p[4])


@njit(cache=True, parallel=True)
def _draw_bridge(core, label, i, j, kind, p, centre, q, origin, h, box, s):
    a0, a1, a2 = centre[i, 0], centre[i, 1], centre[i, 2]
    n0, n1, n2 = centre[j, 0] - a0, centre[j, 1] - a1, centre[j, 2] - a2
    length = np.sqrt(n0 * n0 + n1 * n1 + n2 * n2)
    if length <= 0.0:
        return
    n0, n1, n2 = n0 / length, n1 / length, n2 / length
    edge = 0.87 * h
    sub = h / s
    for k in prange(box[0], box[1]):
        z = origin[0] + k * h
        for jj in range(box[2], box[3]):
            y = origin[1] + jj * h
            for ii in range(box[4], box[5]):
                x = origin[2] + ii * h
                w0, w1, w2 = z - a0, y - a1, x - a2
                t = w0 * n0 + w1 * n1 + w2 * n2
                r0, r1, r2 = w0 - t * n0, w1 - t * n1, w2 - t * n2
                d = _bridge_sd(kind, t, np.sqrt(r0 * r0 + r1 * r1 + r2 * r2), length, p)
                if d >= edge:
                    continue
                if d <= -edge:
                    frac = 1.0
                elif s == 1:
                    frac = _ramp(d, h)
                else:
                    acc = 0.0
                    for a in range(s):
                        za = w0 + (a + 0.5) * sub - 0.5 * h
                        for b in range(s):
                            yb = w1 + (b + 0.5) * sub - 0.5 * h
                            for e in range(s):
                                xe = w2 + (e + 0.5) * sub - 0.5 * h
                                ta = za * n0 + yb * n1 + xe * n2
                                q0, q1, q2 = za - ta * n0, yb - ta * n1, xe - ta * n2
                                acc += _ramp(_bridge_sd(kind, ta, np.sqrt(q0 * q0 + q1 * q1 + q2 * q2), length, p), sub)
                    frac = acc / (s * s * s)
                if frac > core[k, jj, ii]:
                    core[k, jj, ii] = frac
                if frac >= 0.5 and label[k, jj, ii] == 0:
                    pi = _power(q[i], w0, w1, w2)
                    pj = _power(q[j], z - centre[j, 0], y - centre[j, 1], x - centre[j, 2])
                    label[k, jj, ii] = (i if pi <= pj else j) + 1


@njit(cache=True)
def _draw_shell(shell, core, centres, radii, origin, h, s):
    """Add each shell particle's volume fraction, scaled to its exact volume, capped at 1 - core."""
    nz, ny, nx = shell.shape
    sub = h / s
    for p in range(radii.shape[0]):
        r = radii[p]
        c0, c1, c2 = centres[p, 0], centres[p, 1], centres[p, 2]
        k0 = int(np.floor((c0 - r - origin[0]) / h)) - 1
        j0 = int(np.floor((c1 - r - origin[1]) / h)) - 1
        i0 = int(np.floor((c2 - r - origin[2]) / h)) - 1
        m = int(np.ceil(2.0 * r / h)) + 3
        if k0 + m <= 0 or j0 + m <= 0 or i0 + m <= 0 or k0 >= nz or j0 >= ny or i0 >= nx:
            continue
        fracs = np.zeros((m, m, m))
        total = 0.0
        for dk in range(m):
            z = origin[0] + (k0 + dk) * h - c0
            for dj in range(m):
                y = origin[1] + (j0 + dj) * h - c1
                for di in range(m):
                    x = origin[2] + (i0 + di) * h - c2
                    d = np.sqrt(z * z + y * y + x * x) - r
                    if d >= 0.87 * h:
                        continue
                    acc = 0.0
                    for a in range(s):
                        za = z + (a + 0.5) * sub - 0.5 * h
                        for b in range(s):
                            yb = y + (b + 0.5) * sub - 0.5 * h
                            for e in range(s):
                                xe = x + (e + 0.5) * sub - 0.5 * h
                                acc += _ramp(np.sqrt(za * za + yb * yb + xe * xe) - r, sub)
                    fracs[dk, dj, di] = acc / (s * s * s)
                    total += fracs[dk, dj, di]
        if total <= 0.0:
            continue
        scale = (4.0 / 3.0 * np.pi * r * r * r / (h * h * h)) / total
        for dk in range(m):
            k = k0 + dk
            if k < 0 or k >= nz:
                continue
            for dj in range(m):
                jj = j0 + dj
                if jj < 0 or jj >= ny:
                    continue
                for di in range(m):
                    ii = i0 + di
                    if ii < 0 or ii >= nx:
                        continue
                    f = fracs[dk, dj, di]
                    if f > 0.0:
                        v = shell[k, jj, ii] + f * scale
                        room = 1.0 - core[k, jj, ii]
                        shell[k, jj, ii] = v if v < room else room
