"""HAADF-STEM signal model: the fraction of the probe scattered onto the annular detector.

HAADF contrast is incoherent (docs/design.md, "Acquisition"): what reaches the
detector depends on the projected amount of each material along the beam,
not on its phase. We take the fraction of probe electrons scattered into
the annulus as::

    f = 1 - exp(-(mu_Cu * t_Cu + mu_film * t_film / cos(theta)))

with ``t_Cu`` the projected Cu thickness (nm) of cores and shell and
``t_film`` the thickness of the Si3N4 support film (nm), an infinite slab
normal to the beam at 0 deg whose path length grows as ``1 / cos(theta)``.
The porous NP-10 shell counts as Cu at its volume fraction: a voxel half
filled by shell particles holds half the Cu of a core voxel, so the shell's
signal is far weaker than the cores' (the paper, Fig. 9d).

Default coefficients (documented, tunable)
------------------------------------------
``mu_cu_per_nm = 2.5e-3``: the cross-section for scattering beyond the
inner detector angle beta, from unscreened Rutherford scattering with
relativistic wavelength, is ``sigma = 4 pi gamma^2 Z^2 / (a0^2 k^4 beta^2)``
(``k = 2 pi / lambda``). At 300 kV (lambda = 1.97 pm, gamma = 1.587) and
beta = 55 mrad, Cu (Z = 29, 84.9 atoms/nm³) gives sigma = 3.0e-5 nm² and
mu = n sigma = 2.6e-3 /nm: a 150 nm NP-150 core scatters
``1 - exp(-0.375) = 31 %`` of the probe. Screening, the outer detector
angle and multiple scattering change this by tens of per cent; it sets the
contrast, not the geometry, and is a parameter of the simulation.

``mu_film_per_nm = 3.7e-4``: the same law scales with ``n Z^2``; Si3N4
(3.17 g/cm³, 13.6 formula units/nm³, sum Z² = 3·14² + 4·7² = 784) against
Cu (84.9/nm³ × 29²) gives 0.149 × mu_Cu.

``detector_efficiency = 1``: fraction of the electrons scattered into the
annulus that are recorded (a counting detector); lower it to model losses.

``background_counts = 0``: mean dark / stray counts per output pixel per
frame, added to the signal before the Poisson draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import check_number, check_positive

__all__ = ["HaadfModel"]


@dataclass(frozen=True)
class HaadfModel:
    """Parameters of the HAADF signal (see the module docstring for the defaults' rationale).

    Attributes
    ----------
    mu_cu_per_nm : float
        Attenuation of the un-scattered probe by Cu into the annulus (1/nm).
    mu_film_per_nm : float
        The same for the Si3N4 film (1/nm).
    detector_efficiency : float
        Fraction of the annulus-scattered electrons recorded, in (0, 1].
    background_counts : float
        Mean extra counts per output pixel per frame (dark current, stray).
    """

    mu_cu_per_nm: float = 2.5e-3
    mu_film_per_nm: float = 3.7e-4
    detector_efficiency: float = 1.0
    background_counts: float = 0.0

    def __post_init__(self) -> None:
        for name in ("mu_cu_per_nm", "mu_film_per_nm", "background_counts"):
            check_positive(getattr(self, name), f"HaadfModel.{name}", allow_zero=True)
        check_number(self.detector_efficiency, "HaadfModel.detector_efficiency", maximum=1.0)
        check_positive(self.detector_efficiency, "HaadfModel.detector_efficiency")

    def scattered_fraction(self, cu_thickness_nm, film_path_nm=0.0) -> np.ndarray:
        """Fraction of the probe scattered onto the detector.

        Parameters
        ----------
        cu_thickness_nm : array_like
            Projected Cu thickness along the beam (nm), >= 0.
        film_path_nm : array_like, optional
            Path length through the film (nm): ``thickness / cos(theta)``.

        Returns
        -------
        ndarray
            ``1 - exp(-(mu_Cu t_Cu + mu_film t_film))``, same dtype policy as
            the input (float32 stays float32).

        Examples
        --------
        >>> round(float(HaadfModel().scattered_fraction(150.0)), 3)
        0.313
        """
        t = np.asarray(cu_thickness_nm)
        dtype = np.float32 if t.dtype == np.float32 else np.float64
        tau = dtype(self.mu_cu_per_nm) * t.astype(dtype, copy=False)
        tau += dtype(self.mu_film_per_nm) * np.asarray(film_path_nm, dtype=dtype)
        return -np.expm1(-tau)
