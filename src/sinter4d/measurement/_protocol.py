"""The paper's Fig. 7 measurement of a particle pair, and the neck measured in 3D.

For each pair ``(a, b)`` of labels (Ihara et al. 2023, "Neck growth
evaluation"):

1. a box holding both particles whole is cut out, centred in z on the
   section where the neck between them is widest;
2. every other particle is trimmed: only the voxels labelled ``a`` or ``b``
   are kept, so a particle not necked to the pair goes as it is, and one
   necked to it goes along the watershed cut through its neck;
3. the box is projected along z and binarised (a pixel is in when any voxel
   of its column is);
4. on the projection: the neck width W_n (narrowest width of the
   silhouette across the line joining the two centres, between them;
   r_n = W_n / 2), the centres in x–y (d_xy), each particle's radius from
   the circle of its projected area (r_p their mean) and each one's H/W
   (H along the pair axis, W across it; their mean). In the volume: d_z
   between the particles' z-centres, each the mean of its lowest and
   highest voxel, and d = sqrt(d_xy² + d_z²).

Not in the paper: the surface gap along the line of centres, the distance
between the particles' centroids less the radius of each one's moment
ellipsoid in that direction (:func:`moment_radius_along`). For cores that
are not spheres it is what ``d - 2 r_p`` is not: the gap a bridge between
them spans (the shell reservoir of a contact depends on it), and about 0 for
cores in contact.

The projection reads the waist of the silhouette, which for a pair tilted
out of the x–y plane is wider than the real neck (two spheres of radius
75 nm, 140 nm apart, tilted 15°: waist 32.5 nm, neck 26.9 nm), so the neck
is also measured in 3D at the narrowest section normal to the line between
the two 3D centres (:func:`neck_radius_3d`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..checks import as_label_volume, as_pairs, check_choice, check_positive
from ..errors import InputError
from ..schema import PAIR_METRICS
from ._particles import _pad_box

CENTRE_METHODS = ("com", "inscribed")
DEFAULT_CENTRE = "com"
"""x-y centre of the projection protocol (r_n's waist line, H/W): the paper's."""

NECK_3D_METHODS = ("in_plane", "equal_area", "stretch_corrected")
DEFAULT_NECK_3D = "in_plane"
"""Estimator of ``neck_radius_3d_nm``: the least biased on reconstructions.

The missing wedge stretches a neck's section along z and fills the concave
neck, which the equal-area estimators read; on noiseless voxelised phantoms
``"equal_area"`` is the better one (half the in-plane extent of a spheroid
pair's elliptic contact is not its equal-area radius), but it is the
reconstructions that are measured (docs/validation.md)."""

STATUS_VALUES = ("ok", "missing", "stacked")
"""Status of a measured pair: ``"ok"``; ``"missing"`` when a label has no
voxel; ``"stacked"`` when the two centres are less than 2 px apart in x–y, so
the projection cannot show the neck (projection metrics NaN)."""

_MIN_AXIS_PX = 2.0


def measure_pairs(
    labels: np.ndarray,
    pairs: np.ndarray,
    *,
    voxel_size_nm: float,
    centre: str = DEFAULT_CENTRE,
    neck_3d_method: str = DEFAULT_NECK_3D,
    slab_nm: float | None = None,
) -> dict[str, np.ndarray]:
    """Measure pairs of particles by the paper's Fig. 7 protocol.

    Parameters
    ----------
    labels : (Z, Y, X) ndarray of int
        Particle labels 1..N (0 = background), axes ``(z, y, x)``.
    pairs : (M, 2) ndarray of int
        Label values of the two particles of each pair.
    voxel_size_nm : float
        Edge of a cubic voxel in nm.
    centre : {'com', 'inscribed'}, optional
        How each particle's x–y centre is read from the projection.
        ``'com'`` (default, the paper's): centre of mass of its binarised
        projection (constant density). The watershed cut at the neck takes
        a cap off a sphere (or leaves it a stub of neck), so this centre
        moves away from (or towards) the neck and d reads long (or short):
        two spheres of radius 75 nm, 140 nm apart in the x–y plane read
        141.5 nm.
        ``'inscribed'``: centre of the largest circle inscribed in the pair's
        silhouette within the particle's own projection, which is the
        sphere's centre whatever the neck.
    neck_3d_method : {'in_plane', 'equal_area', 'stretch_corrected'}, optional
        Estimator of ``neck_radius_3d_nm``; see :func:`neck_radius_3d`.
    slab_nm : float, optional
        Thickness of the box in z, centred on the widest-neck section. By
        default the box holds both particles whole (a full projection).

    Returns
    -------
    dict of str to (M,) ndarray
        The metrics of :data:`sinter4d.schema.PAIR_METRICS` (lengths in nm, ratios
        dimensionless; NaN where not measured) and ``status``, a string per
        pair from :data:`STATUS_VALUES`. A pair whose particles do not touch
        has neck radii 0 (the paper's r_n = 0 before a neck forms).
    """
    lab = as_label_volume(labels)
    pair_arr = as_pairs(pairs)
    vox = check_positive(voxel_size_nm, "voxel_size_nm")
    check_choice(centre, "centre", CENTRE_METHODS)
    check_choice(neck_3d_method, "neck_3d_method", NECK_3D_METHODS)
    if slab_nm is not None:
        slab_nm = check_positive(slab_nm, "slab_nm")
    boxes = ndi.find_objects(lab)
    m = pair_arr.shape[0]
    out = {name: np.full(m, np.nan) for name in PAIR_METRICS}
    out["status"] = np.full(m, "ok", dtype="<U8")
    for k, (a, b) in enumerate(pair_arr):
        ba = boxes[a - 1] if 0 < a <= len(boxes) else None
        bb = boxes[b - 1] if 0 < b <= len(boxes) else None
        if ba is None or bb is None or a == b:
            out["status"][k] = "missing"
            continue
        sub = lab[_pad_box(_union_box(ba, bb), lab.shape, 2)]
        values, status = _measure_one(
            sub == a, sub == b, vox=vox, centre=centre, neck_3d_method=neck_3d_method, slab_nm=slab_nm
        )
        for name, value in values.items():
            out[name][k] = value
        out["status"][k] = status
    return out


def _union_box(ba: tuple[slice, ...], bb: tuple[slice, ...]) -> tuple[slice, ...]:
    """The smallest box holding two boxes."""
    return tuple(slice(min(s.start, t.start), max(s.stop, t.stop)) for s, t in zip(ba, bb, strict=True))


def _measure_one(
    ma: np.ndarray, mb: np.ndarray, *, vox: float, centre: str, neck_3d_method: str, slab_nm: float | None
) -> tuple[dict[str, float], str]:
    """The Fig. 7 metrics of one pair from its two trimmed masks (a shared box)."""
    touching = _touching(ma, mb)
    za, zb = _z_centre(ma), _z_centre(mb)
    z_neck = _widest_neck_section(ma, mb) if touching else 0.5 * (za + zb)
    zlo, zhi = 0, ma.shape[0]
    if slab_nm is not None:
        half = 0.5 * slab_nm / vox
        zlo, zhi = max(int(np.floor(z_neck - half + 0.5)), 0), min(int(np.floor(z_neck + half + 0.5)) + 1, ma.shape[0])
    pa, pb = ma[zlo:zhi].any(axis=0), mb[zlo:zhi].any(axis=0)
    union = pa | pb
    res = {"distance_z_nm": abs(za - zb) * vox}
    r1, r2 = np.sqrt(pa.sum() / np.pi) * vox, np.sqrt(pb.sum() / np.pi) * vox
    res["particle_radius_nm"] = 0.5 * (r1 + r2)
    ca, cb = _centre_2d(pa, pb, union, centre), _centre_2d(pb, pa, union, centre)
    axis = cb - ca
    length = float(np.hypot(*axis))
    res["distance_xy_nm"] = length * vox
    res["distance_nm"] = float(np.hypot(res["distance_xy_nm"], res["distance_z_nm"]))
    status = "ok"
    if length < _MIN_AXIS_PX or not (pa.any() and pb.any()):
        status = "stacked"
    else:
        u = axis / length
        res["aspect_ratio"] = 0.5 * (_aspect_ratio(pa, u) + _aspect_ratio(pb, u))
        res["neck_radius_nm"] = 0.5 * _waist_width(union, ca, cb) * vox if touching else 0.0
        res["neck_ratio"] = res["neck_radius_nm"] / res["particle_radius_nm"]
    res["distance_ratio"] = res["distance_nm"] / (2.0 * res["particle_radius_nm"])
    res["neck_radius_3d_nm"] = _neck_3d(ma, mb, method=neck_3d_method) * vox if touching else 0.0
    res["surface_gap_nm"] = _surface_gap(ma, mb) * vox
    return res, status


def moment_radius_along(mask: np.ndarray, direction) -> float:
    """Radius (px) of a mask's moment ellipsoid along a direction.

    The solid ellipsoid with the mask's volume-weighted second moments has
    the matrix ``A = 5 C`` (C the covariance of the voxel centres, plus 1/12
    px² per axis for the voxels' own extent); its radius along the unit
    vector ``n`` is ``1 / sqrt(n^T A^-1 n)``. For a solid ellipsoid this is
    exact; shell particles stuck to a core and the cut at a neck move it
    by a fraction of a voxel.

    Parameters
    ----------
    mask : (Z, Y, X) bool ndarray
        One particle.
    direction : (3,) array_like
        Direction ``(z, y, x)``; normalised here.

    Returns
    -------
    float
        Radius in px (NaN for fewer than 4 voxels).

    Examples
    --------
    >>> import numpy as np
    >>> z, y, x = np.mgrid[:41, :41, :41] - 20.0
    >>> ball = z**2 + y**2 + (x / 1.5) ** 2 <= 12**2
    >>> round(moment_radius_along(ball, (0, 0, 1)), 1), round(moment_radius_along(ball, (1, 0, 0)), 1)
    (18.0, 12.0)
    """
    pts = np.argwhere(mask).astype(float)
    if len(pts) < 4:
        return float("nan")
    n = np.asarray(direction, dtype=float)
    n = n / np.linalg.norm(n)
    cov = np.cov(pts, rowvar=False, bias=True) + np.eye(3) / 12.0
    return float(1.0 / np.sqrt(n @ np.linalg.solve(5.0 * cov, n)))


def _surface_gap(ma: np.ndarray, mb: np.ndarray) -> float:
    """Gap (px) between two particles' moment ellipsoids along the line of their centroids."""
    ca = np.argwhere(ma).mean(axis=0)
    cb = np.argwhere(mb).mean(axis=0)
    sep = cb - ca
    dist = float(np.linalg.norm(sep))
    if not dist > 0:
        return float("nan")
    return dist - moment_radius_along(ma, sep) - moment_radius_along(mb, sep)


def _touching(ma: np.ndarray, mb: np.ndarray) -> bool:
    """Whether two masks share a voxel face."""
    for ax in range(ma.ndim):
        lo = [slice(None)] * ma.ndim
        hi = [slice(None)] * ma.ndim
        lo[ax], hi[ax] = slice(None, -1), slice(1, None)
        if np.any(ma[tuple(lo)] & mb[tuple(hi)]) or np.any(ma[tuple(hi)] & mb[tuple(lo)]):
            return True
    return False


def _z_centre(mask: np.ndarray) -> float:
    """Mean of the lowest and highest z index holding a voxel of ``mask``."""
    zs = np.flatnonzero(mask.any(axis=(1, 2)))
    return 0.5 * (zs[0] + zs[-1])


def _widest_neck_section(ma: np.ndarray, mb: np.ndarray) -> float:
    """z index of the section where the in-plane contact between a and b is longest."""
    contact = np.zeros(ma.shape[0])
    for ax in (1, 2):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[ax], hi[ax] = slice(None, -1), slice(1, None)
        contact += ((ma[tuple(lo)] & mb[tuple(hi)]) | (ma[tuple(hi)] & mb[tuple(lo)])).sum(axis=(1, 2))
    if contact.max() > 0:
        best = np.flatnonzero(contact == contact.max())
        return float(best[len(best) // 2])
    across = ((ma[:-1] & mb[1:]) | (ma[1:] & mb[:-1])).sum(axis=(1, 2))
    return float(np.argmax(across)) + 0.5


def _centre_2d(own: np.ndarray, other: np.ndarray, union: np.ndarray, centre: str) -> np.ndarray:
    """x–y centre ``(y, x)`` in pixels of one particle's projection."""
    if not own.any():
        return np.array([np.nan, np.nan])
    if centre == "com":
        return np.asarray(ndi.center_of_mass(own), dtype=float)
    dist = ndi.distance_transform_edt(np.pad(union, 1))[1:-1, 1:-1]
    region = own & ~other
    if not region.any():
        region = own
    top = dist[region].max()
    sel = region & (dist > top - 1.0)
    weight = dist[sel] - (top - 1.0)
    yy, xx = np.nonzero(sel)
    return np.array([np.average(yy, weights=weight), np.average(xx, weights=weight)])


def _aspect_ratio(proj: np.ndarray, u: np.ndarray) -> float:
    """Extent along ``u`` over extent across it of a 2D mask (pixel-edge extents)."""
    yy, xx = np.nonzero(proj)
    along = yy * u[0] + xx * u[1]
    across = yy * u[1] - xx * u[0]
    return float((np.ptp(along) + 1.0) / (np.ptp(across) + 1.0))


def _waist_width(union: np.ndarray, ca: np.ndarray, cb: np.ndarray, *, step: float = 0.25) -> float:
    """Narrowest width (px) of a silhouette across the segment ``ca``–``cb``.

    The silhouette is sampled (bilinear, level 0.5, i.e. at pixel edges) on
    lines normal to the segment every ``step`` px; each line's width is the
    run of inside samples holding the segment; the least width is returned.
    """
    axis = cb - ca
    length = float(np.hypot(*axis))
    u = axis / length
    v = np.array([u[1], -u[0]])
    half = int(np.ceil(np.hypot(*union.shape) / step))
    s = step * np.arange(-half, half + 1)
    t = np.linspace(0.0, length, max(int(np.ceil(length / step)), 1) + 1)
    pts = ca[:, None, None] + u[:, None, None] * t[None, :, None] + v[:, None, None] * s[None, None, :]
    inside = ndi.map_coordinates(union.astype(np.float32), pts.reshape(2, -1), order=1, cval=0.0) >= 0.5
    inside = inside.reshape(t.size, s.size)
    return float(_run_through_centre(inside, half).min()) * step


def _run_through_centre(inside: np.ndarray, c: int) -> np.ndarray:
    """Length (samples) of the run of True holding column ``c``, per row (0 if ``c`` is False)."""
    n = inside.shape[1]
    cols = np.arange(n)
    left = np.where(~inside[:, :c], cols[:c], -1).max(axis=1, initial=-1)
    right = np.where(~inside[:, c + 1 :], cols[c + 1 :], n).min(axis=1, initial=n)
    return np.where(inside[:, c], right - left - 1, 0)


def neck_radius_3d(
    labels: np.ndarray,
    a: int,
    b: int,
    *,
    voxel_size_nm: float,
    method: str = DEFAULT_NECK_3D,
) -> float:
    """Neck radius of a pair measured in 3D, in nm.

    The pair (voxels labelled ``a`` or ``b``) is cut by planes normal to the
    line joining the two particles' 3D centres of mass, every voxel along it
    and then every quarter voxel around the narrowest one (trilinear
    sampling, level 0.5); in each plane only the region holding the line is
    kept.

    Parameters
    ----------
    labels : (Z, Y, X) ndarray of int
        Particle labels (0 = background).
    a, b : int
        Label values of the two particles.
    voxel_size_nm : float
        Edge of a cubic voxel in nm.
    method : {'in_plane', 'equal_area', 'stretch_corrected'}, optional
        ``'in_plane'`` (default): half the least extent of the section along
        its direction perpendicular to z (``n × z``), which the missing
        wedge's stretch along z leaves alone. ``'equal_area'``: radius of the
        circle of the least section area; the wedge stretches the section
        along z and fills concave necks, so it over-reads on reconstructions.
        ``'stretch_corrected'``: the equal-area radius with the section's
        area divided by the stretch of its z-leaning axis, the stretch being
        the particles' mean z extent over their mean x–y extent (assumes the
        particles are round on average).

    Returns
    -------
    float
        Neck radius in nm; 0 when the two particles do not touch, NaN when a
        label is missing.
    """
    lab = as_label_volume(labels)
    vox = check_positive(voxel_size_nm, "voxel_size_nm")
    check_choice(method, "method", NECK_3D_METHODS)
    boxes = ndi.find_objects(lab)
    if not (0 < a <= len(boxes) and 0 < b <= len(boxes)) or boxes[a - 1] is None or boxes[b - 1] is None:
        return float("nan")
    if a == b:
        raise InputError(f"a and b must be two different labels; got {a} twice")
    sub = lab[_pad_box(_union_box(boxes[a - 1], boxes[b - 1]), lab.shape, 2)]
    ma, mb = sub == a, sub == b
    if not _touching(ma, mb):
        return 0.0
    return _neck_3d(ma, mb, method=method) * vox


def _neck_3d(ma: np.ndarray, mb: np.ndarray, *, method: str) -> float:
    """Neck radius in voxels of two touching masks (see :func:`neck_radius_3d`)."""
    ca, cb = _centre_of_mass(ma), _centre_of_mass(mb)
    length = float(np.linalg.norm(cb - ca))
    if length < 1.0:
        return float("nan")
    n = (cb - ca) / length
    u = np.array([0.0, -n[2], n[1]])
    u = u / np.linalg.norm(u) if np.linalg.norm(u) > 1e-6 else np.array([0.0, 0.0, 1.0])
    w = np.cross(n, u)
    pair = (ma | mb).astype(np.float32)
    r_eq = max((3.0 * m.sum() / (4.0 * np.pi)) ** (1.0 / 3.0) for m in (ma, mb))
    half = 1.25 * r_eq + 2.0
    key = "extent" if method == "in_plane" else "area"

    step = max(1.0, r_eq / 24.0)
    coarse_t = np.arange(0.0, length + 1e-9, step)
    coarse = [_section(pair, ca + t * n, u, w, half=half, step=step) for t in coarse_t]
    crit = np.array([c[key] for c in coarse])
    ties = np.flatnonzero(crit <= crit.min() + 1e-9)
    i0 = int(ties[len(ties) // 2])
    t0 = coarse_t[i0]
    fine_half = min(half, coarse[i0]["reach"] + step + 2.0)
    span = 0.5 * step * (ties[-1] - ties[0]) + 1.5 * step
    fine_t = np.arange(max(t0 - span, 0.0), min(t0 + span, length) + 1e-9, 0.25)
    fine = [_section(pair, ca + t * n, u, w, half=fine_half, step=0.25) for t in fine_t]
    best = min(fine, key=lambda s: s[key])
    if method == "in_plane":
        return 0.5 * best["extent"]
    area = best["area"]
    if method == "stretch_corrected":
        area /= np.sqrt(w[0] ** 2 * _z_stretch(ma, mb) ** 2 + 1.0 - w[0] ** 2)
    return float(np.sqrt(area / np.pi))


def _centre_of_mass(mask: np.ndarray) -> np.ndarray:
    """Centre of mass (voxel index units) of a 3D bool mask, from its axis profiles."""
    total = float(mask.sum())
    out = np.empty(3)
    for ax in range(3):
        profile = mask.sum(axis=tuple(j for j in range(3) if j != ax))
        out[ax] = float(np.dot(profile, np.arange(profile.size))) / total
    return out


def _section(
    vol: np.ndarray, origin: np.ndarray, u: np.ndarray, w: np.ndarray, *, half: float, step: float
) -> dict[str, float]:
    """Area, extent along ``u`` and reach of the section of ``vol`` holding ``origin``.

    The plane through ``origin`` spanned by unit vectors ``u`` and ``w`` is
    sampled on a square of half-size ``half`` (voxels) every ``step``.
    """
    m = int(np.ceil(half / step))
    s = step * np.arange(-m, m + 1)
    pts = origin[:, None, None] + u[:, None, None] * s[None, :, None] + w[:, None, None] * s[None, None, :]
    inside = ndi.map_coordinates(vol, pts.reshape(3, -1), order=1, cval=0.0).reshape(s.size, s.size) >= 0.5
    if not inside[m, m]:
        return {"area": 0.0, "extent": 0.0, "reach": 0.0}
    comp, _ = ndi.label(inside)
    region = comp == comp[m, m]
    iu, iw = np.nonzero(region)
    return {
        "area": float(region.sum()) * step**2,
        "extent": (float(np.ptp(iu)) + 1.0) * step,
        "reach": float(max(np.abs(iu - m).max(), np.abs(iw - m).max())) * step,
    }


def _z_stretch(ma: np.ndarray, mb: np.ndarray) -> float:
    """Mean over two masks of z extent over mean x–y extent."""
    ratios = []
    for m in (ma, mb):
        ext = [np.ptp(np.flatnonzero(m.any(axis=tuple(j for j in range(3) if j != ax)))) + 1.0 for ax in range(3)]
        ratios.append(ext[0] / (0.5 * (ext[1] + ext[2])))
    return float(np.mean(ratios))
