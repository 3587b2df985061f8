"""Synthetic twin readings drawn from a known reading model, for tests of calibration.nc and its readers."""

from __future__ import annotations

import numpy as np


def synthetic_readings(seed: int = 1, n: int = 400, n_twins: int = 8) -> dict:
    """A :func:`sinter4d.calibration.reading_table`-like table of ``n`` readings over ``n_twins`` twins.

    True necks 10–35 nm read as sqrt(r² + 200 + 80 cos 2α + 150 sin² ε − 100
    bridged + N(0, 20²)) nm²; distances 140–170 nm read 1 nm long plus
    0.5 cos 2α and N(0, 0.3²) nm. Elevations are 2° or 60°, 20 % bridged.
    """
    rng = np.random.default_rng(seed)
    true_n, true_d = rng.uniform(10, 35, n), rng.uniform(140, 170, n)
    alpha, elev = rng.uniform(0, 90, n), rng.choice([2.0, 60.0], n)
    bridged = rng.random(n) < 0.2
    a = np.radians(alpha)
    meas_n = np.sqrt(true_n**2 + 200 + 80 * np.cos(2 * a) + 150 * np.sin(np.radians(elev)) ** 2 - 100 * bridged
                     + rng.normal(0, 20, n))
    meas_d = 1.0 + true_d + 0.5 * np.cos(2 * a) + rng.normal(0, 0.3, n)
    per_twin = n // n_twins
    return {"twin_seed": np.repeat(np.arange(n_twins), per_twin), "pair": np.tile(np.arange(per_twin).astype(str), n_twins),
            "time": np.zeros(n, int), "true_neck_radius_nm": true_n, "measured_neck_radius_nm": meas_n,
            "true_distance_nm": true_d, "measured_distance_nm": meas_d, "particle_radius_nm": np.full(n, 75.0),
            "true_particle_radius_nm": np.full(n, 75.0), "in_plane_deg": alpha, "elevation_deg": elev,
            "bridged": bridged.astype(np.int8)}
