"""Neck-growth laws of two spheres, registered by name.

A model card picks mechanisms and a saturation law from the registries here
by name; the card never holds code. Every law is the classical initial-stage
power law for two spheres of radius ``a`` joined by a neck of radius ``x``:

.. math::

    (x/a)^n = K(T)\\, t / a^m, \\qquad
    \\frac{d(x/a)}{dt} = \\frac{K(T)}{n\\, a^m (x/a)^{n-1}},

with :math:`K = C \\cdot \\text{transport}(T) \\cdot \\gamma\\Omega/(kT)` and an
Arrhenius transport coefficient :math:`D_0 \\exp(-Q/RT)` (for boundary and
surface diffusion the prefactor is the width-weighted :math:`\\delta D_0`).
Rates of several mechanisms add. Everything here is in SI units.

The constants ``C`` are the classical ones of the authors named in each
:class:`Mechanism`; they differ by up to about ×10 between derivations
(e.g. 40 to 80 for lattice diffusion, 48 to 96 for boundary diffusion) and
are treated as parameters to fit (cards expose ``log10_C_<mechanism>``).

References
----------
.. [1] G. C. Kuczynski, "Self-diffusion in sintering of metallic particles",
   Trans. AIME 185, 169 (1949).
.. [2] W. D. Kingery and M. Berg, "Study of the initial stages of sintering
   solids by viscous flow, evaporation-condensation, and self-diffusion",
   J. Appl. Phys. 26, 1205 (1955). doi:10.1063/1.1721874
.. [3] R. L. Coble, "Initial sintering of alumina and hematite",
   J. Am. Ceram. Soc. 41, 55 (1958). doi:10.1111/j.1151-2916.1958.tb13519.x
.. [4] M. F. Ashby, "A first report on sintering diagrams", Acta Metall. 22,
   275 (1974). doi:10.1016/0001-6160(74)90167-9
.. [5] R. M. German, Sintering Theory and Practice, Wiley (1996), ch. 3-4.
.. [6] M. N. Rahaman, Ceramic Processing and Sintering, 2nd ed., Marcel
   Dekker (2003), table of initial-stage neck-growth laws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

#: Boltzmann constant (J/K) and gas constant (J/(mol K)).
K_B = 1.380649e-23
R_GAS = 8.314462618
ZERO_CELSIUS_K = 273.15


@dataclass(frozen=True)
class Transport:
    """A kind of matter transport, with the SI unit of its Arrhenius prefactor.

    The unit is ``m^(m-1)/s`` for a law of exponent ``m`` so that
    ``K = C * transport * gamma * Omega / (k T)`` has the unit ``m^m/s``.
    """

    name: str
    unit: str
    description: str


@dataclass(frozen=True)
class Mechanism:
    """One initial-stage neck-growth law ``(x/a)^n = C * transport * gamma*Omega/(kT) * t / a^m``.

    Attributes
    ----------
    name : str
        Registry key (used in model cards).
    n, m : int
        Exponents of the law.
    densifying : bool
        Whether the mechanism moves the centres together (matter from the
        contact plane) or only reshapes the surface.
    transport : str
        Key of :data:`TRANSPORTS` giving the transport coefficient.
    constant : float
        The classical constant C.
    source : str
        Where C comes from, and the spread between authors.
    """

    name: str
    n: int
    m: int
    densifying: bool
    transport: str
    constant: float
    source: str


TRANSPORTS: dict[str, Transport] = {}
MECHANISMS: dict[str, Mechanism] = {}
#: Saturation laws a card may name: the growth rate of every mechanism is
#: multiplied by the law's factor (1 for ``"none"``).
SATURATIONS: dict[str, str] = {
    "none": "classical power laws: the neck grows for ever (capped at the core radius)",
    "shell_reservoir": (
        "growth fed by the finite shell volume around the contact: rates times "
        "(1 - V_neck(x)/V_reservoir)_+, V_neck = pi x^4/(2a) + gap pi x^2, "
        "V_reservoir = packing * shell thickness * (capture cap area on both cores)"
    ),
}


def register_transport(transport: Transport) -> Transport:
    """Add a transport kind to :data:`TRANSPORTS` (its name must be new)."""
    if transport.name in TRANSPORTS:
        raise InputError(f"transport {transport.name!r} is already registered")
    TRANSPORTS[transport.name] = transport
    return transport


def register_mechanism(mechanism: Mechanism) -> Mechanism:
    """Add a mechanism to :data:`MECHANISMS` (its name must be new, its transport known)."""
    if mechanism.name in MECHANISMS:
        raise InputError(f"mechanism {mechanism.name!r} is already registered")
    if mechanism.transport not in TRANSPORTS:
        raise InputError(f"mechanism {mechanism.name!r}: unknown transport {mechanism.transport!r}")
    MECHANISMS[mechanism.name] = mechanism
    return mechanism


for _t in (
    Transport("lattice", "m^2/s", "lattice (volume) self-diffusion D_v = D0v exp(-Qv/RT)"),
    Transport("boundary", "m^3/s", "grain-boundary diffusion delta*D_b = delta*D0b exp(-Qb/RT)"),
    Transport("surface", "m^3/s", "surface diffusion delta*D_s = delta*D0s exp(-Qs/RT)"),
    Transport(
        "vapour",
        "m/s",
        "Hertz-Knudsen volume flux Omega p0/sqrt(2 pi m_atom k T) with p0 = p00 exp(-Q/RT); "
        "the weak T^-1/2 is folded into the prefactor",
    ),
    Transport(
        "viscous",
        "1/s",
        "fluidity k T/(eta Omega) with eta = eta0 exp(Q/RT); the weak T factor is folded into the prefactor",
    ),
):
    register_transport(_t)

for _m in (
    Mechanism(
        "viscous_flow",
        2,
        1,
        True,
        "viscous",
        1.5,
        "Frenkel (1945) / Kuczynski (1949) [1]: x^2/a = 3 gamma t/(2 eta), so C = 3/2",
    ),
    Mechanism(
        "evaporation_condensation",
        3,
        2,
        False,
        "vapour",
        3.0 * np.pi,
        "Kingery & Berg (1955) [2]: x^3/a = 3 sqrt(pi) gamma M^1.5 p0/(sqrt(2) (RT)^1.5 rho^2) t, "
        "rewritten with the Hertz-Knudsen flux, C = 3 pi",
    ),
    Mechanism(
        "lattice_diffusion_surface",
        4,
        3,
        False,
        "lattice",
        20.0,
        "Rahaman (2003) [6] after Kingery & Berg [2]: C = 20; German [5] differs by ~x2",
    ),
    Mechanism(
        "lattice_diffusion_boundary",
        5,
        3,
        True,
        "lattice",
        80.0,
        "Coble (1958) [3] / Ashby (1974) [4] as in Rahaman [6]: C = 80; Kuczynski [1] has 40, "
        "German's diameter form [5] gives 10",
    ),
    Mechanism(
        "grain_boundary_diffusion",
        6,
        4,
        True,
        "boundary",
        96.0,
        "Rahaman (2003) [6] after Johnson: C = 96; Coble (1958) [3] has 48, German [5] ~20",
    ),
    Mechanism(
        "surface_diffusion",
        7,
        4,
        False,
        "surface",
        56.0,
        "Kuczynski (1949) [1]: x^7/a^3 = 56 gamma delta^4 D_s t/(k T), C = 56",
    ),
):
    register_mechanism(_m)


def celsius_to_kelvin(temperature_C):
    """Temperature in K from °C (array or scalar)."""
    return np.asarray(temperature_C, dtype=float) + ZERO_CELSIUS_K


def arrhenius(prefactor, activation_J_per_mol, temperature_K):
    """Arrhenius transport coefficient ``D0 * exp(-Q / (R T))`` (unit of D0)."""
    temperature_K = np.asarray(temperature_K, dtype=float)
    return prefactor * np.exp(-activation_J_per_mol / (R_GAS * temperature_K))


def rate_constant(
    mechanism: Mechanism,
    temperature_K,
    *,
    prefactor: float,
    activation_J_per_mol: float,
    surface_energy_J_m2: float,
    atomic_volume_m3: float,
    multiplier: float = 1.0,
):
    """K(T) of one mechanism in ``m^m/s`` (SI).

    Parameters
    ----------
    mechanism : Mechanism
    temperature_K : float or ndarray
        Absolute temperature (K).
    prefactor : float
        Arrhenius prefactor of the mechanism's transport, SI (see :data:`TRANSPORTS`).
    activation_J_per_mol : float
        Activation energy Q (J/mol).
    surface_energy_J_m2, atomic_volume_m3 : float
        gamma (J/m^2) and Omega (m^3).
    multiplier : float
        Factor on the classical constant C (a fitted parameter).

    Returns
    -------
    float or ndarray
        ``multiplier * C * D0 exp(-Q/RT) * gamma Omega / (k T)``.
    """
    temperature_K = np.asarray(temperature_K, dtype=float)
    transport = arrhenius(prefactor, activation_J_per_mol, temperature_K)
    return multiplier * mechanism.constant * transport * surface_energy_J_m2 * atomic_volume_m3 / (K_B * temperature_K)


# --- shell reservoir (saturation) -------------------------------------------------


def neck_volume_nm3(neck_radius_nm, radius_nm, gap_nm=0.0):
    """Volume (nm^3) of material in a neck of radius x between two spheres of radius a.

    ``pi x^4 / (2a)`` fills the crevice between touching spheres (Kuczynski's
    toroidal neck to leading order) and ``gap * pi x^2`` bridges a surface gap
    (negative gaps count as 0).
    """
    x = np.asarray(neck_radius_nm, dtype=float)
    gap = np.maximum(np.asarray(gap_nm, dtype=float), 0.0)
    return np.pi * x**4 / (2.0 * np.asarray(radius_nm, dtype=float)) + gap * np.pi * x**2


def cap_area_nm2(radius_nm, capture_radius_nm):
    """Area (nm^2) of the spherical cap within ``capture_radius`` of the contact axis.

    ``2 pi a (a - sqrt(a^2 - r_c^2))``; the capture radius is capped at ``a``
    (half the sphere).
    """
    a = np.asarray(radius_nm, dtype=float)
    rc = np.minimum(np.asarray(capture_radius_nm, dtype=float), a)
    return 2.0 * np.pi * a * (a - np.sqrt(a * a - rc * rc))


def reservoir_volume_nm3(radius_i_nm, radius_j_nm, *, capture_radius_nm, shell_thickness_nm, shell_packing_fraction):
    """Shell volume (nm^3) that can feed one neck: packing × thickness × capture area on both cores.

    Capture zones of a core's several contacts are not made exclusive.
    """
    area = cap_area_nm2(radius_i_nm, capture_radius_nm) + cap_area_nm2(radius_j_nm, capture_radius_nm)
    return shell_packing_fraction * shell_thickness_nm * area


def reservoir_limit_nm(reservoir_nm3, radius_nm, gap_nm=0.0):
    """Neck radius x_max (nm) at which ``neck_volume_nm3(x) == reservoir``.

    The positive root of ``pi/(2a) X^2 + pi g X - V = 0`` in ``X = x^2``,
    in the cancellation-free form ``X = 2V / (pi g + sqrt(pi^2 g^2 + 2 pi V / a))``.
    """
    v = np.asarray(reservoir_nm3, dtype=float)
    a = np.asarray(radius_nm, dtype=float)
    g = np.maximum(np.asarray(gap_nm, dtype=float), 0.0)
    big_x = 2.0 * v / (np.pi * g + np.sqrt((np.pi * g) ** 2 + 2.0 * np.pi * v / a))
    return np.sqrt(big_x)
