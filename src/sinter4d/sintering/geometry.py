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

For a cluster, :func:`conserving_radius_nm` gives each core the radius R_i at
which its sphere, minus the caps cut off by the plane of intersection with
each overlapping neighbour (``h_i = (d^2 + R_i^2 - R_j^2) / (2d)`` from its
centre), has the volume of the free core. For two equal cores this is the
truncated-sphere pair above.
"""

from __future__ import annotations

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
