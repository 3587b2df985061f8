"""Volume-conserving geometry of sintering pairs and clusters.

Two models of a pair of equal spheres of initial radius a0 with a neck of
radius x, both as the distance ratio ``d / 2a0`` for a neck ratio ``x / a0``:

* **Truncated spheres** (the truth of the simulator): both spheres grow to a
  common radius R and are cut by their common plane at distance h from each
  centre; with ``xi = h / R`` the volume of the two truncated spheres equals
  that of the two free ones when ``R = a0 (4 / (2 + 3 xi - xi^3))^(1/3)``;
  then ``x = R sqrt(1 - xi^2)`` and ``d = 2 xi R``. For small necks
  ``d / 2a0 ≈ 1 - (x/a0)^2 / 2``.
* **Cylindrical neck** (the paper's dashed line, Fig. 9b / S6, re-derived
  here): the spheres keep radius a0 and overlap; the two lens caps beyond the
  contact plane (height ``a0 - d/2`` each) are removed and their volume fills
  the crevice around the contact out to a cylinder of radius x, i.e. the
  region ``r_l <= rho <= x`` between the two sphere surfaces, with
  ``r_l = sqrt(a0^2 - d^2/4)`` the radius of the lens. Integrating
  ``2 pi rho (d - 2 sqrt(a0^2 - rho^2))`` gives the filled volume
  ``pi d (x^2 - r_l^2) - (4 pi / 3) ((d/2)^3 - (a0^2 - x^2)^(3/2))``, set equal
  to ``2 pi (a0 - d/2)^2 (2 a0 + d/2) / 3``. (At ``d = 2a0`` the crevice holds
  ``pi x^4 / (2 a0)`` to leading order, the neck volume of the kinetics.)
* **Fillet neck** (the classical concave neck of two-sphere sintering,
  Kuczynski 1949, Coble 1958): the crevice is filled by the solid of
  revolution bounded by a torus of tube radius rho whose waist, in the neck
  plane, has radius x and which meets each sphere tangentially
  (:func:`fillet_neck`). Two spheres of radii R_i, R_j at distance d give
  rho from the tangency conditions ``t0^2 + (x + rho)^2 = (R_i + rho)^2`` and
  ``(d - t0)^2 + (x + rho)^2 = (R_j + rho)^2`` (t0 the neck plane's distance
  from centre i): for equal spheres ``rho = (d^2/4 - R^2 + x^2) / (2 (R - x))``,
  which is Kuczynski's ``x^2 / 2a`` for touching spheres and Coble's
  ``x^2 / 4a`` on the volume-conserving path. Its volume
  (:func:`fillet_volume_nm3`) is that of the profile region turned about the
  axis (Pappus), ``pi * integral of r(t)^2``, minus the spheres inside it.
  :func:`fillet_neck_distance_ratio` is the volume-conserving relation of
  the cylindrical neck redone with the fillet: the lens caps fill the fillet.

For a cluster, :func:`conserving_radius_nm` gives each core the radius R_i at
which its sphere, minus the caps cut off by the plane of intersection with
each overlapping neighbour (``h_i = (d^2 + R_i^2 - R_j^2) / (2d)`` from its
centre), has the volume of the free core. For two equal cores this is the
truncated-sphere pair above.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import InputError

_BISECT_STEPS = 60


def truncated_sphere_from_xi(xi):
    """Truncated-sphere pair for a given ``xi = h / R`` in [0, 1].

    Returns
    -------
    neck_ratio, distance_ratio, radius_ratio : ndarray
        ``x / a0``, ``d / 2a0`` and ``R / a0``.
    """
    xi = np.asarray(xi, dtype=float)
    if np.any((xi < 0) | (xi > 1)):
        raise InputError("xi must lie in [0, 1]")
    return _from_xi(xi)


def _from_xi(xi):
    radius = np.cbrt(4.0 / (2.0 + 3.0 * xi - xi**3))
    return radius * np.sqrt(1.0 - xi**2), xi * radius, radius


def truncated_sphere_pair(neck_ratio):
    """Distance and radius of a truncated-sphere pair for a neck ratio ``x / a0``.

    Parameters
    ----------
    neck_ratio : ndarray
        ``x / a0`` in ``[0, 2**(1/3)]``.

    Returns
    -------
    distance_ratio, radius_ratio : ndarray
        ``d / 2a0`` and ``R / a0``.

    Examples
    --------
    >>> round(float(truncated_sphere_pair(0.31)[0]), 3)
    0.951
    """
    u = np.asarray(neck_ratio, dtype=float)
    if np.any((u < 0) | (u > 2.0 ** (1.0 / 3.0))):
        raise InputError("neck_ratio x/a0 must lie in [0, 2**(1/3)] (two spheres merged into one)")
    # x/a0 decreases monotonically in xi on [0, 1]: bisect (vectorised).
    lo = np.zeros_like(u)
    hi = np.ones_like(u)
    for _ in range(_BISECT_STEPS):
        mid = 0.5 * (lo + hi)
        too_big = _from_xi(mid)[0] > u
        lo = np.where(too_big, mid, lo)
        hi = np.where(too_big, hi, mid)
    _, distance, radius = _from_xi(0.5 * (lo + hi))
    return distance, radius


def truncated_sphere_distance_ratio(neck_ratio):
    """``d / 2a0`` of the truncated-sphere pair for ``x / a0`` (see :func:`truncated_sphere_pair`)."""
    return truncated_sphere_pair(neck_ratio)[0]


def cylinder_neck_distance_ratio(neck_ratio):
    """``d / 2a0`` of the paper's cylindrical-neck model for ``x / a0`` in [0, 1].

    The spheres keep radius a0; the lens caps they lose fill the crevice out
    to a cylinder of radius x (module docstring).
    """
    u = np.asarray(neck_ratio, dtype=float)
    if np.any((u < 0) | (u > 1)):
        raise InputError("neck_ratio x/a0 must lie in [0, 1] for the cylindrical-neck model")
    root = (1.0 - u**2) ** 1.5

    def excess(delta):  # filled crevice minus removed caps, a0 = 1
        fill = 2.0 * np.pi * delta * (u**2 - 1.0 + delta**2) - 4.0 * np.pi / 3.0 * (delta**3 - root)
        caps = 2.0 * np.pi * (1.0 - delta) ** 2 * (2.0 + delta) / 3.0
        return fill - caps

    lo = np.sqrt(1.0 - u**2)
    hi = np.ones_like(u)
    for _ in range(_BISECT_STEPS):
        mid = 0.5 * (lo + hi)
        pos = excess(mid) > 0
        hi = np.where(pos, mid, hi)
        lo = np.where(pos, lo, mid)
    return 0.5 * (lo + hi)


class FilletNeck(NamedTuple):
    """The torus of a fillet neck, on the line of centres from centre i (all nm).

    Attributes
    ----------
    rho_nm : ndarray
        Tube radius rho of the torus (0: no fillet, the neck is no wider
        than the lens where the spheres overlap; NaN: no torus tangent to
        both spheres exists, the neck is as wide as a sphere).
    plane_nm : ndarray
        Axial position t0 of the neck plane, where the fillet's section is
        the waist of radius x.
    start_nm, end_nm : ndarray
        Axial positions of the circles where the fillet meets sphere i and
        sphere j; the fillet's section at axial position t is the disc of
        radius ``x + rho - sqrt(rho^2 - (t - t0)^2)``, t in [start, end].
    """

    rho_nm: np.ndarray
    plane_nm: np.ndarray
    start_nm: np.ndarray
    end_nm: np.ndarray


def fillet_neck(radius_i_nm, radius_j_nm, distance_nm, neck_radius_nm) -> FilletNeck:
    """Torus of the concave neck of waist x joining two spheres tangentially.

    Parameters
    ----------
    radius_i_nm, radius_j_nm : ndarray
        Sphere radii R_i, R_j (nm).
    distance_nm : ndarray
        Centre distance d (nm); the spheres may overlap or stand apart (a
        fillet then spans the gap).
    neck_radius_nm : ndarray
        Waist radius x (nm), >= 0.

    Returns
    -------
    FilletNeck
        Broadcast arrays. Where x is no wider than the lens of two
        overlapping spheres, ``rho = 0`` and the fillet is empty
        (``start = end = plane`` = the radical plane).

    Notes
    -----
    The tube's centre circle lies at axial position t0 and radius ``x + rho``;
    tangency to sphere k means the tube's centre lies at ``R_k + rho`` from
    centre k (module docstring). Eliminating t0, a radical plane of the
    spheres grown by rho, leaves ``B^2 rho^2 + 2 (A B - R_i + x) rho +
    x^2 - R_i^2 + A^2 = 0`` with ``A = (d^2 + R_i^2 - R_j^2) / 2d`` and
    ``B = (R_i - R_j) / d``; rho is its least non-negative root. Each sphere
    meets the torus on the segment joining their centres.

    Examples
    --------
    >>> f = fillet_neck(75.0, 75.0, 150.0, 15.0)  # touching: Kuczynski's x^2/2(a - x)
    >>> round(float(f.rho_nm), 4), float(f.plane_nm)
    (1.875, 75.0)
    """
    ri, rj, d, x = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (radius_i_nm, radius_j_nm, distance_nm, neck_radius_nm)))
    if np.any(ri <= 0) or np.any(rj <= 0) or np.any(d <= 0):
        raise InputError("fillet_neck needs positive sphere radii and centre distance")
    if np.any(x < 0):
        raise InputError("fillet_neck needs a neck radius x >= 0")
    a = (d * d + ri * ri - rj * rj) / (2.0 * d)
    b = (ri - rj) / d
    half_b = a * b - ri + x  # half the linear coefficient
    c = x * x - ri * ri + a * a  # x^2 minus the lens radius squared
    disc = half_b * half_b - b * b * c
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(c <= 0, 0.0, c / (-half_b + np.sqrt(disc)))
    rho = np.where((c > 0) & ((disc < 0) | (half_b >= 0) | (x >= np.minimum(ri, rj))), np.nan, rho)
    plane = a + b * rho
    start = np.where(rho > 0, ri * plane / (ri + rho), plane)
    end = np.where(rho > 0, d - rj * (d - plane) / (rj + rho), plane)
    return FilletNeck(rho, plane, start, end)


def _sphere_slice(radius, lo, hi):
    """Volume of a sphere (centre at 0) between axial planes lo <= hi: ``pi [R^2 t - t^3/3]``."""
    lo = np.clip(lo, -radius, radius)
    hi = np.clip(np.maximum(hi, lo), -radius, radius)
    return np.pi * (radius * radius * (hi - lo) - (hi**3 - lo**3) / 3.0)


def fillet_volume_nm3(radius_i_nm, radius_j_nm, distance_nm, neck_radius_nm):
    """Volume (nm^3) a fillet neck adds to the union of two spheres (closed form).

    The fillet's solid (the profile ``0 <= r <= x + rho - sqrt(rho^2 - u^2)``,
    u = t - t0, turned about the axis between its tangency planes) has, by
    Pappus, the volume ``pi [(c^2 + rho^2) u - u^3/3 - c (u s + rho^2 asin(u/rho))]``
    between its end values of u, with ``c = x + rho`` and ``s = sqrt(rho^2 - u^2)``;
    within its two planes each section of the union of the spheres is a disc
    inside the fillet's, so their slices (:func:`fillet_neck`, module
    docstring) are subtracted.

    Parameters
    ----------
    radius_i_nm, radius_j_nm, distance_nm, neck_radius_nm : ndarray
        As :func:`fillet_neck`.

    Returns
    -------
    ndarray
        >= 0; 0 where x is no wider than the lens, NaN where no fillet exists.
    """
    ri, rj, d, x = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (radius_i_nm, radius_j_nm, distance_nm, neck_radius_nm)))
    rho, t0, ta, tb = fillet_neck(ri, rj, d, x)
    c = x + rho
    safe = np.where(rho > 0, rho, 1.0)

    def primitive(u):
        s = np.sqrt(np.maximum(safe * safe - u * u, 0.0))
        return (c * c + safe * safe) * u - u**3 / 3.0 - c * (u * s + safe * safe * np.arcsin(np.clip(u / safe, -1.0, 1.0)))

    solid = np.pi * (primitive(tb - t0) - primitive(ta - t0))
    h = (d * d + ri * ri - rj * rj) / (2.0 * d)  # where the spheres' sections are equal
    spheres = _sphere_slice(ri, ta, np.minimum(tb, h)) + _sphere_slice(rj, d - tb, d - np.maximum(ta, h))
    return np.where(rho > 0, solid - spheres, np.where(np.isnan(rho), np.nan, 0.0))


def fillet_neck_distance_ratio(neck_ratio):
    """``d / 2a0`` of the volume-conserving fillet neck for ``x / a0`` in [0, 1).

    Equal spheres keep radius a0 and overlap; the two lens caps they lose
    (height ``a0 - d/2`` each) fill the fillet of waist x
    (:func:`fillet_volume_nm3`), the cylindrical-neck model
    (:func:`cylinder_neck_distance_ratio`) with the classical concave neck.

    Examples
    --------
    >>> round(float(fillet_neck_distance_ratio(0.3)), 4)
    0.9765
    """
    u = np.asarray(neck_ratio, dtype=float)
    if np.any((u < 0) | (u >= 1)):
        raise InputError("neck_ratio x/a0 must lie in [0, 1) for the fillet-neck model")
    lo = np.sqrt(1.0 - u**2)  # lens as wide as the neck: no fillet, caps left over
    hi = np.ones_like(u)  # touching: a fillet, no caps
    for _ in range(_BISECT_STEPS):
        mid = 0.5 * (lo + hi)
        excess = fillet_volume_nm3(1.0, 1.0, 2.0 * mid, u) - 2.0 * cap_volume(1.0, 1.0 - mid)
        pos = excess > 0
        hi = np.where(pos, mid, hi)
        lo = np.where(pos, lo, mid)
    return 0.5 * (lo + hi)


def cap_volume(radius, height):
    """Volume of a spherical cap ``pi c^2 (3R - c) / 3`` (c clipped to [0, 2R])."""
    radius = np.asarray(radius, dtype=float)
    c = np.clip(height, 0.0, 2.0 * radius)
    return np.pi * c**2 * (3.0 * radius - c) / 3.0


def conserving_radius_nm(
    centre_nm, initial_radius_nm, contact, *, radius_guess_nm=None, rtol: float = 1e-12, max_iterations: int = 100
):
    """Radius R_i of each core such that its truncated sphere keeps the free core's volume.

    Parameters
    ----------
    centre_nm : (N, 3) ndarray
        Core centres (nm).
    initial_radius_nm : (N,) ndarray
        Free-core radii a0_i (nm).
    contact : (M, 2) int ndarray
        Pairs whose spheres may overlap; only overlapping ones cut caps.
    radius_guess_nm : (N,) ndarray, optional
        Starting radii (default ``initial_radius_nm``).
    rtol : float
        Stop when every core's volume is within ``rtol`` of its target.
    max_iterations : int
        Most Newton iterations (diagonal Jacobian: each core's own radius;
        a few from a warm start, tens for deep overlaps from a0).

    Returns
    -------
    (N,) ndarray
        R_i (nm), ``>= a0_i``.
    """
    centre = np.asarray(centre_nm, dtype=float)
    a0 = np.asarray(initial_radius_nm, dtype=float)
    pairs = np.asarray(contact, dtype=np.int64).reshape(-1, 2)
    r = a0.copy() if radius_guess_nm is None else np.maximum(np.asarray(radius_guess_nm, dtype=float), a0)
    if pairs.size == 0:
        return r
    i, j = pairs[:, 0], pairs[:, 1]
    d = np.linalg.norm(centre[j] - centre[i], axis=1)
    if np.any(d <= 0):
        raise InputError("two cores in contact share a centre")
    target = 4.0 / 3.0 * np.pi * a0**3
    n = a0.size
    for _ in range(max_iterations):
        both = np.concatenate([i, j])
        ri = np.concatenate([r[i], r[j]])
        rj = np.concatenate([r[j], r[i]])
        dd = np.concatenate([d, d])
        overlap = dd < ri + rj
        h = (dd**2 + ri**2 - rj**2) / (2.0 * dd)
        c = np.where(overlap, np.clip(ri - h, 0.0, 2.0 * ri), 0.0)
        vcap = np.pi * c**2 * (3.0 * ri - c) / 3.0
        # d V_cap / d R_i at fixed R_j, with dc/dR_i = 1 - R_i/d
        dcap = np.where(overlap, np.pi * (2.0 * c * (3.0 * ri - c) - c**2) / 3.0 * (1.0 - ri / dd) + np.pi * c**2, 0.0)
        vol = 4.0 / 3.0 * np.pi * r**3 - np.bincount(both, vcap, minlength=n)
        dvol = 4.0 * np.pi * r**2 - np.bincount(both, dcap, minlength=n)
        if np.all(np.abs(vol - target) <= rtol * target):
            break
        r = np.maximum(r - (vol - target) / dvol, a0)
    return r


def core_volume_nm3(centre_nm, radius_nm, contact):
    """Volume (nm^3) of each core's sphere minus the caps cut by its overlapping contacts."""
    centre = np.asarray(centre_nm, dtype=float)
    r = np.asarray(radius_nm, dtype=float)
    pairs = np.asarray(contact, dtype=np.int64).reshape(-1, 2)
    vol = 4.0 / 3.0 * np.pi * r**3
    if pairs.size == 0:
        return vol
    i, j = pairs[:, 0], pairs[:, 1]
    d = np.linalg.norm(centre[j] - centre[i], axis=1)
    overlap = d < r[i] + r[j]
    hi = (d**2 + r[i] ** 2 - r[j] ** 2) / (2.0 * d)
    hj = d - hi
    ci = np.where(overlap, r[i] - hi, 0.0)
    cj = np.where(overlap, r[j] - hj, 0.0)
    caps = np.bincount(i, cap_volume(r[i], ci), minlength=r.size) + np.bincount(
        j, cap_volume(r[j], cj), minlength=r.size
    )
    return vol - caps
