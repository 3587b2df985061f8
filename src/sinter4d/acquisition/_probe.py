"""The focused probe and its depth-dependent broadening in the specimen (docs/design.md, "Acquisition").

Two blurs of the HAADF image, both on by default (``[acquisition.probe]``):

* **The focused probe.** A diffraction-limited probe of convergence
  semi-angle ``alpha`` has the Airy intensity ``[2 J1(v) / v]^2`` with
  ``v = 2 pi alpha r / lambda``: its FWHM is ``0.5145 lambda / alpha`` and
  its first zero lies at ``0.6098 lambda / alpha`` (the Rayleigh radius).
  At 300 kV (``lambda = 1.969 pm``) and the paper's 1.2 mrad that is a
  0.84 nm FWHM and a 1.00 nm first zero. The image is blurred by a Gaussian
  of the same FWHM (``sigma = FWHM / 2.3548``); aberrations and the source
  size are left out.
* **Beam broadening.** The single-scattering estimate of Goldstein et al.
  (1977) gives the diameter containing 90 % of the electrons after a
  thickness ``t``::

      b = 6.25e5 (Z / E0) (rho / A)^(1/2) t^(3/2)      (b, t in cm; E0 in eV;
                                                       rho in g/cm^3; A in g/mol)

  ``E0`` is the kinetic energy; with ``relativistic`` it is replaced by
  ``p v / 2 = E0 (1 + E0 / 2 m c^2) / (1 + E0 / m c^2)`` (the Rutherford
  angle goes as ``1 / (p v)``), which multiplies ``b`` by 1.227 at 300 kV.
  For Cu (Z 29, A 63.55, rho 8.96) after 150 nm: 13.2 nm, or 16.2 nm
  relativistic. A voxel's signal is blurred by a Gaussian with
  ``sigma = b / (2 sqrt(2 ln 10)) = b / 4.292`` (90 % of a 2-D Gaussian
  lies within radius ``2.146 sigma``) for the Cu-equivalent thickness ``t``
  *above* it along the beam (the beam enters at +z, the film lies below).

Depth resolution: at each tilt the Cu-equivalent thickness above every
voxel is integrated down the tilted beam (layer by layer, a linear
interpolation per layer); the volume is split between ``depth_slabs`` nodes
of that thickness by hat weights, each part is projected with the tilt's
rows of the strip projector, blurred with its node's
``sqrt(sigma_probe^2 + sigma_b(t_node)^2)`` (reflecting edges, so the total
is kept) and summed. With no blur the sum is the plain projection.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from scipy import ndimage, optimize, special

from ..operators.projector import ParallelProjector
from ..specs import Flag, Positive, Spec, integer
from ._probe_kernels import mass_thickness_above, project_into_nodes

__all__ = [
    "Probe",
    "ProbeSettings",
    "beam_broadening_nm",
    "electron_wavelength_pm",
    "mass_thickness_above",
    "probe_fwhm_nm",
]

#: Cu: atomic number, atomic mass (g/mol), density (g/cm³).
CU_Z, CU_A, CU_RHO = 29.0, 63.546, 8.96
#: Goldstein et al. (1977): b = GOLDSTEIN (Z/E0) (rho/A)^1/2 t^3/2, cm with E0 in eV.
GOLDSTEIN = 6.25e5
#: Electron rest energy (keV) and h c (keV pm), CODATA 2018.
MC2_KEV, HC_KEV_PM = 510.99895, 1239.84198
#: b over sigma: 90 % of a 2-D Gaussian lies within radius sqrt(2 ln 10) sigma.
B90_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(10.0))
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def electron_wavelength_pm(voltage_kV: float) -> float:
    """Relativistic electron wavelength ``h c / sqrt(E (E + 2 m c^2))`` (pm) at ``voltage_kV``."""
    e = float(voltage_kV)
    return HC_KEV_PM / math.sqrt(e * (e + 2.0 * MC2_KEV))


def airy_intensity(v) -> np.ndarray:
    """Airy intensity ``[2 J1(v) / v]^2`` (1 at ``v = 0``), ``v = 2 pi alpha r / lambda``."""
    v = np.asarray(v, dtype=float)
    safe = np.where(v == 0, 1.0, v)
    return np.where(v == 0, 1.0, (2.0 * special.j1(safe) / safe) ** 2)


@cache
def _airy_half_max_v() -> float:
    return float(optimize.brentq(lambda v: airy_intensity(v) - 0.5, 0.5, 3.0, xtol=1e-14))


def probe_fwhm_nm(voltage_kV: float, convergence_semiangle_mrad: float) -> float:
    """FWHM (nm) of the diffraction-limited (Airy) probe: ``0.5145 lambda / alpha``."""
    lam_nm = electron_wavelength_pm(voltage_kV) * 1e-3
    return 2.0 * _airy_half_max_v() / (2.0 * math.pi) * lam_nm / (convergence_semiangle_mrad * 1e-3)


def beam_broadening_nm(
    thickness_nm,
    voltage_kV: float,
    *,
    Z: float = CU_Z,
    A: float = CU_A,
    rho: float = CU_RHO,
    relativistic: bool = True,
) -> np.ndarray:
    """Single-scattering beam broadening ``b`` (nm): the 90 % diameter after ``thickness_nm``.

    Goldstein et al. (1977), ``b = 6.25e5 (Z/E0) (rho/A)^(1/2) t^(3/2)`` with
    ``b, t`` in cm and ``E0`` in eV; ``relativistic`` puts ``p v / 2`` for
    ``E0``. ``Z``, ``A`` (g/mol), ``rho`` (g/cm³): the material (Cu by default).
    """
    t_cm = np.asarray(thickness_nm, dtype=float) * 1e-7
    e0 = float(voltage_kV) * 1e3
    if relativistic:
        r = e0 / (MC2_KEV * 1e3)
        e0 *= (1.0 + 0.5 * r) / (1.0 + r)
    return GOLDSTEIN * (Z / e0) * math.sqrt(rho / A) * np.clip(t_cm, 0.0, None) ** 1.5 * 1e7


class ProbeSettings(Spec):
    """``[acquisition.probe]``: the focused probe and beam broadening (docs/design.md, "Acquisition").

    Attributes
    ----------
    enabled : bool
        Blur the images at all (default true; false: the ideal point probe).
    convergence_semiangle_mrad : float
        Probe convergence semi-angle (mrad); 1.2, the paper's.
    broadening : bool
        Add the depth-dependent beam broadening (true); false: the probe alone.
    relativistic : bool
        Use ``p v / 2`` for ``E0`` in the broadening (true).
    depth_slabs : int
        Nodes of Cu thickness above a voxel the volume is split over (>= 2; 6).
    """

    enabled: Flag = True
    convergence_semiangle_mrad: Positive = 1.2
    broadening: Flag = True
    relativistic: Flag = True
    depth_slabs: integer(2) = 6

    def probe(self, voltage_kV: float) -> Probe | None:
        """The probe at ``voltage_kV``, or None when not ``enabled``."""
        if not self.enabled:
            return None
        return Probe(voltage_kV=voltage_kV, **self.model_dump(exclude={"enabled"}))


class Probe(Spec):
    """A focused probe at a voltage, and what it does to a projection (see the module docstring)."""

    voltage_kV: Positive
    convergence_semiangle_mrad: Positive = 1.2
    broadening: Flag = True
    relativistic: Flag = True
    depth_slabs: integer(2) = 6

    @property
    def fwhm_nm(self) -> float:
        """FWHM of the probe's Airy intensity (nm)."""
        return probe_fwhm_nm(self.voltage_kV, self.convergence_semiangle_mrad)

    @property
    def sigma_nm(self) -> float:
        """S.d. of the Gaussian standing in for the probe (nm)."""
        return self.fwhm_nm / FWHM_PER_SIGMA

    def sigma_at(self, thickness_nm) -> np.ndarray:
        """Total blur s.d. (nm) of a voxel under ``thickness_nm`` of Cu: probe and broadening in quadrature."""
        b = beam_broadening_nm(thickness_nm, self.voltage_kV, relativistic=self.relativistic)
        return np.sqrt(self.sigma_nm**2 + (b / B90_PER_SIGMA) ** 2 * self.broadening)

    def deepest_nm(self, volume: np.ndarray, voxel_size_nm: float, angles_deg) -> np.ndarray:
        """Largest Cu thickness above a Cu voxel at each tilt (nm): where the depth nodes end.

        Parameters
        ----------
        volume : (nz, ny, nx) ndarray
            Cu volume fraction (a whole grid or a block of its rows).
        voxel_size_nm : float
        angles_deg : (n_angles,) array_like

        Returns
        -------
        (n_angles,) ndarray
        """
        vol = np.ascontiguousarray(volume, dtype=np.float32)
        cu = vol != 0
        above = np.empty(vol.shape, dtype=np.float32)
        return np.array(
            [
                float(mass_thickness_above(vol, voxel_size_nm, float(a), out=above).max(where=cu, initial=0.0))
                for a in angles_deg
            ]
        )

    def halo_rows(self, deepest_nm, pixel_nm: float) -> int:
        """Rows beyond a block of rows that its blur reaches.

        The radius of scipy's Gaussian kernel (``truncate = 4`` s.d.) at the
        deepest node: a block projected with this many rows of its
        neighbours on each side and cut back after the blur equals those
        rows of the whole image, bit for bit.
        """
        depth = float(np.max(np.asarray(deepest_nm, dtype=float), initial=0.0)) * self.broadening
        return int(4.0 * float(self.sigma_at(depth)) / pixel_nm + 0.5)

    def blur(self, images: np.ndarray, pixel_nm: float) -> np.ndarray:
        """The probe alone (no broadening): each image blurred in place, returned."""
        for i in range(images.shape[0]):
            images[i] = ndimage.gaussian_filter(images[i], self.sigma_nm / pixel_nm, mode="reflect")
        return images

    def project(
        self, volume: np.ndarray, op: ParallelProjector, *, deepest_nm=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Projections of ``volume`` as the probe sees them: depth-resolved, blurred.

        Parameters
        ----------
        volume : (nz, ny, nx) ndarray
            Cu volume fraction on ``op``'s slice grid; with broadening, any
            number of rows ``ny`` (a block of a larger grid; the slices share
            ``op.matrix``), without it ``op.ny`` rows.
        op : ParallelProjector
            One detector pixel per voxel, ``axis_offset_px = 0``.
        deepest_nm : (n_angles,) array_like, optional
            Cu thickness (nm) of the last depth node at each tilt; None: this
            volume's own (:meth:`deepest_nm`). A block of a larger grid takes
            the whole grid's, so that it is split as the whole is.

        Returns
        -------
        thickness : (n_angles, ny, n_det) float32 ndarray
            Blurred Cu thickness (nm); each image keeps the plain projection's total.
        max_above_nm : (n_angles,) ndarray
            The depth of the last node at each tilt (nm); zeros without broadening.
        """
        px = op.det_pixel_nm
        n_ang, n_det = op.angles_deg.size, op.n_det
        if not self.broadening:
            return self.blur(op.direct(volume), px), np.zeros(n_ang)
        vol = np.ascontiguousarray(volume, dtype=np.float32)
        cu = vol != 0  # only Cu voxels carry signal
        matrix = op.matrix.tocsr()
        out = np.zeros((n_ang, vol.shape[1], n_det), dtype=np.float32)
        deepest = np.zeros(n_ang) if deepest_nm is None else np.asarray(deepest_nm, dtype=float).copy()
        nodes = self.depth_slabs
        above = np.empty(vol.shape, dtype=np.float32)  # one buffer for every tilt
        for i, angle in enumerate(op.angles_deg):
            mass_thickness_above(vol, op.voxel_size_nm, float(angle), out=above)
            if deepest_nm is None:
                deepest[i] = float(above.max(where=cu, initial=0.0))
            step = deepest[i] / (nodes - 1) if deepest[i] > 0 else 1.0
            parts = project_into_nodes(vol, above, matrix[i * n_det : (i + 1) * n_det], step, nodes)
            for k in range(nodes):
                sigma = float(self.sigma_at(k * step)) / px
                out[i] += ndimage.gaussian_filter(parts[k], sigma, mode="reflect")
        return out, deepest

    def attrs(self) -> dict:
        """What the simulator did, for the tilt-series file's attributes."""
        b150 = float(beam_broadening_nm(150.0, self.voltage_kV, relativistic=self.relativistic))
        return {
            "probe_convergence_semiangle_mrad": self.convergence_semiangle_mrad,
            "probe_wavelength_pm": electron_wavelength_pm(self.voltage_kV),
            "probe_fwhm_nm": self.fwhm_nm,
            "probe_sigma_nm": self.sigma_nm,
            "probe_broadening": int(self.broadening),
            "probe_relativistic": int(self.relativistic),
            "probe_depth_slabs": self.depth_slabs,
            "probe_broadening_b90_150nm_cu_nm": b150 * self.broadening,
        }
