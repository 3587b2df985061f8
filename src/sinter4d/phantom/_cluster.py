"""The geometry of a core–shell particle cluster, and the voxel grid it is drawn on.

These two small containers are the contract between the stages: the phantom
builds a :class:`Cluster`, sintering returns a new one at every time step,
the voxeliser draws one on a :class:`Grid`, and the truth of every pair is
measured from one. All lengths are in nm and every vector is ordered
``(z, y, x)`` like the volume axes (beam along z at 0°, tilt axis along y).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Cluster:
    """Core–shell Cu particles on a Si3N4 film at one instant.

    Attributes
    ----------
    centre_nm : (N, 3) ndarray
        Centre of each core, ``(z, y, x)`` in nm.
    radius_nm : (N,) ndarray
        Current radius R_i of the sphere that has each core's volume once its
        contact caps are cut off (grows as necks densify; volume conserved).
    initial_radius_nm : (N,) ndarray
        Radius a0_i of the free core (volume-equivalent sphere).
    aspect_ratio : (N,) ndarray
        Polar over equatorial semi-axis of each core's spheroid (1 = sphere);
        semi-axes are ``R * ar**(2/3)`` along ``axis`` and ``R * ar**(-1/3)``
        across it, so the volume is that of the sphere of radius R.
    axis : (N, 3) ndarray
        Unit symmetry axis of each spheroid, ``(z, y, x)``.
    contact : (M, 2) int ndarray
        Index pairs ``i < j`` of cores that sinter together: touching, or
        closer than their two shells so that the shell bridges the gap.
    neck_radius_nm : (M,) ndarray
        Neck radius x of each contact in nm (radius of the narrowest section
        of the bridge joining the two cores; 0 before a neck exists).
    shell_centre_nm : (K, 3) ndarray
        Centres of the <= 10 nm shell particles (NP-10).
    shell_radius_nm : (K,) ndarray
        Their radii.
    shell_owner : (K,) int ndarray
        Index of the core each shell particle sits on.
    film_top_nm : float
        z of the top surface of the Si3N4 film (the cores rest on it).
    film_thickness_nm : float
        Thickness of the film (it extends below ``film_top_nm``).
    """

    centre_nm: np.ndarray
    radius_nm: np.ndarray
    initial_radius_nm: np.ndarray
    aspect_ratio: np.ndarray
    axis: np.ndarray
    contact: np.ndarray
    neck_radius_nm: np.ndarray
    shell_centre_nm: np.ndarray
    shell_radius_nm: np.ndarray
    shell_owner: np.ndarray
    film_top_nm: float
    film_thickness_nm: float

    @property
    def n_cores(self) -> int:
        """Number of cores N."""
        return int(self.centre_nm.shape[0])

    @property
    def n_contacts(self) -> int:
        """Number of contacts M."""
        return int(self.contact.shape[0])

    def replace(self, **changes) -> Cluster:
        """A copy with the given fields replaced (the original is unchanged)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Grid:
    """A regular voxel grid centred on the tilt axis.

    The voxel with index ``k`` along an axis of ``n`` voxels has its centre
    at ``(k - (n - 1) / 2) * voxel_size_nm`` (+ ``z_centre_nm`` along z). The
    tilt axis is the line ``x = 0, z = 0`` along y: it runs through the middle
    of the grid in x, and through the middle in z only when ``z_centre_nm`` is 0.

    Attributes
    ----------
    shape : tuple of int
        ``(nz, ny, nx)``.
    voxel_size_nm : float
        Edge of a cubic voxel in nm.
    z_centre_nm : float
        z of the grid's middle; the slab holding the specimen need not be
        centred on the tilt axis (default 0).
    y_centre_nm : float
        y of the grid's middle (default 0): nonzero only for a block of rows
        of a larger grid (:meth:`rows`).
    """

    shape: tuple[int, int, int]
    voxel_size_nm: float
    z_centre_nm: float = 0.0
    y_centre_nm: float = 0.0

    def coords_nm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Voxel-centre coordinates ``(z, y, x)`` along each axis, in nm."""
        nz, ny, nx = self.shape
        h = self.voxel_size_nm
        z = (np.arange(nz) - (nz - 1) / 2) * h + self.z_centre_nm
        y = (np.arange(ny) - (ny - 1) / 2) * h + self.y_centre_nm
        x = (np.arange(nx) - (nx - 1) / 2) * h
        return z, y, x

    def rows(self, start: int, stop: int) -> Grid:
        """The grid of rows ``start:stop`` (along y, the tilt axis) of this one.

        Its voxel centres are those rows' own: a volume drawn on it equals
        ``volume[:, start:stop]`` drawn on the whole grid.
        """
        nz, ny, nx = self.shape
        if not 0 <= start < stop <= ny:
            raise ValueError(f"rows {start}:{stop} outside the grid's {ny} rows")
        y_mid = ((start + stop - 1) / 2 - (ny - 1) / 2) * self.voxel_size_nm + self.y_centre_nm
        return Grid((nz, stop - start, nx), self.voxel_size_nm, self.z_centre_nm, y_mid)


def spheroid_semi_axes(radius_nm: np.ndarray, aspect_ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Polar and equatorial semi-axes (nm) of volume-equivalent spheroids.

    Parameters
    ----------
    radius_nm : ndarray
        Volume-equivalent sphere radius R.
    aspect_ratio : ndarray
        Polar over equatorial semi-axis.

    Returns
    -------
    polar_nm, equatorial_nm : ndarray
        ``R * ar**(2/3)`` and ``R * ar**(-1/3)``; ``polar * equatorial**2 == R**3``.
    """
    ar = np.asarray(aspect_ratio, dtype=float)
    r = np.asarray(radius_nm, dtype=float)
    return r * ar ** (2.0 / 3.0), r * ar ** (-1.0 / 3.0)


def radius_along(cluster: Cluster, index: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Distance (nm) from each core's centre to its spheroid surface along a direction.

    Parameters
    ----------
    cluster : Cluster
    index : (K,) int ndarray
        Core indices.
    direction : (K, 3) ndarray
        Unit vectors ``(z, y, x)``.

    Returns
    -------
    (K,) ndarray
        ``1 / sqrt(c**2 / p**2 + (1 - c**2) / q**2)`` with ``c`` the cosine to
        the symmetry axis and ``p, q`` the polar and equatorial semi-axes.
    """
    index = np.asarray(index)
    p, q = spheroid_semi_axes(cluster.radius_nm[index], cluster.aspect_ratio[index])
    cos = np.einsum("kd,kd->k", cluster.axis[index], direction)
    return 1.0 / np.sqrt(cos**2 / p**2 + (1.0 - cos**2) / q**2)


def surface_gap_nm(cluster: Cluster, pairs: np.ndarray) -> np.ndarray:
    """Gap (nm) between two cores' surfaces along the line of their centres.

    Negative where the spheroids overlap (a densified contact).

    Parameters
    ----------
    cluster : Cluster
    pairs : (M, 2) int ndarray

    Returns
    -------
    (M,) ndarray
    """
    pairs = np.asarray(pairs, dtype=int).reshape(-1, 2)
    sep = cluster.centre_nm[pairs[:, 1]] - cluster.centre_nm[pairs[:, 0]]
    dist = np.linalg.norm(sep, axis=1)
    n = sep / dist[:, None]
    return dist - radius_along(cluster, pairs[:, 0], n) - radius_along(cluster, pairs[:, 1], -n)
