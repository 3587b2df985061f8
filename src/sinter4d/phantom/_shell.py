"""Laying the NP-10 shell particles on a core: the compiled random sequential adsorption.

Private helpers of :func:`sinter4d.phantom.generate.make_shell`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._geometry import quad_form

__all__ = ["SHELL_TRIES", "draw_shell_radii", "lay_shell"]

SHELL_TRIES = 200
"""Surface points tried for one shell particle before it is laid overlapping another."""


@njit(cache=True)
def lay_shell(radii, c, a, p, qq, directions, accept, film_top, other_c, other_q, prev_c, prev_r, spot, ok):
    """Random sequential adsorption of the shell particles of one core (fills ``spot``, ``ok``).

    A proposal is the spheroid point ``c + L s`` of a unit vector s (from
    ``directions``), kept with probability ``|Q^(1/2) s| min(p, q)`` so that
    kept points are uniform in area; the particle's centre is one radius out
    along the surface normal ``Q^(1/2) s``. It must stay above the film and
    out of the other cores; the first proposal free of all particles laid so
    far is taken, else the first valid one.
    """
    n_prev = prev_c.shape[0]
    laid = np.zeros((radii.shape[0], 3))
    laid_r = np.zeros(radii.shape[0])
    n_laid = 0
    for k in range(radii.shape[0]):
        r_s = radii[k]
        have_fallback = False
        fb0 = fb1 = fb2 = 0.0
        for t in range(directions.shape[1]):
            s0, s1, s2 = directions[k, t, 0], directions[k, t, 1], directions[k, t, 2]
            norm = np.sqrt(s0 * s0 + s1 * s1 + s2 * s2)
            s0, s1, s2 = s0 / norm, s1 / norm, s2 / norm
            along = s0 * a[0] + s1 * a[1] + s2 * a[2]
            coef = (1.0 / p - 1.0 / qq) * along
            n0, n1, n2 = s0 / qq + coef * a[0], s1 / qq + coef * a[1], s2 / qq + coef * a[2]
            stretch = np.sqrt(n0 * n0 + n1 * n1 + n2 * n2)
            if accept[k, t] >= stretch * min(p, qq):
                continue
            coef = (p - qq) * along
            x0 = c[0] + qq * s0 + coef * a[0] + r_s * n0 / stretch
            x1 = c[1] + qq * s1 + coef * a[1] + r_s * n1 / stretch
            x2 = c[2] + qq * s2 + coef * a[2] + r_s * n2 / stretch
            if x0 - r_s < film_top:
                continue
            inside = False
            for j in range(other_c.shape[0]):
                v0, v1, v2 = x0 - other_c[j, 0], x1 - other_c[j, 1], x2 - other_c[j, 2]
                rho = np.sqrt(v0 * v0 + v1 * v1 + v2 * v2)
                f = np.sqrt(quad_form(other_q[j], v0, v1, v2))
                if f <= 0 or rho - rho / f < r_s:
                    inside = True
                    break
            if inside:
                continue
            if not have_fallback:
                have_fallback = True
                fb0, fb1, fb2 = x0, x1, x2
            free = True
            for m in range(n_prev):
                d0, d1, d2 = x0 - prev_c[m, 0], x1 - prev_c[m, 1], x2 - prev_c[m, 2]
                if d0 * d0 + d1 * d1 + d2 * d2 < (r_s + prev_r[m]) ** 2:
                    free = False
                    break
            if free:
                for m in range(n_laid):
                    d0, d1, d2 = x0 - laid[m, 0], x1 - laid[m, 1], x2 - laid[m, 2]
                    if d0 * d0 + d1 * d1 + d2 * d2 < (r_s + laid_r[m]) ** 2:
                        free = False
                        break
            if free:
                fb0, fb1, fb2 = x0, x1, x2
                break
        if have_fallback:
            spot[k, 0], spot[k, 1], spot[k, 2] = fb0, fb1, fb2
            ok[k] = True
            laid[n_laid, 0], laid[n_laid, 1], laid[n_laid, 2] = fb0, fb1, fb2
            laid_r[n_laid] = r_s
            n_laid += 1


def draw_shell_radii(rng, target_area, r_lo, r_hi):
    """Radii (largest first) until their footprints pi r^2 reach ``target_area`` (nm^2)."""
    if target_area <= 0:
        return np.zeros(0)
    mean_area = np.pi * (r_lo**2 + r_lo * r_hi + r_hi**2) / 3.0
    n = int(target_area / mean_area * 1.3) + 8
    r = rng.uniform(r_lo, r_hi, n)
    while np.sum(np.pi * r**2) < target_area:
        r = np.concatenate([r, rng.uniform(r_lo, r_hi, n)])
    cum = np.cumsum(np.pi * r**2)
    m = int(np.searchsorted(cum, target_area))
    if m > 0 and target_area - cum[m - 1] < cum[m] - target_area:
        m -= 1  # stop at whichever count comes closer to the target
    return np.sort(r[: m + 1])[::-1]
