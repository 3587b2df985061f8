"""Shell helpers: the drawn radii cover the target area, the laid particles sit on the core."""

import numpy as np
import pytest

from sinter4d.phantom._shell import SHELL_TRIES, draw_shell_radii, lay_shell


@pytest.mark.parametrize("target", [50.0, 2000.0, 1e5])
def test_radii_reach_the_target_area(target):
    r = draw_shell_radii(np.random.default_rng(2), target, 1.5, 5.0)
    assert np.all(np.diff(r) <= 0)  # largest first
    assert r.min() >= 1.5 and r.max() <= 5.0
    covered = np.pi * (r**2).sum()
    assert abs(covered - target) <= np.pi * 5.0**2  # within one particle's footprint
    assert draw_shell_radii(np.random.default_rng(2), 0.0, 1.5, 5.0).size == 0


def test_laid_particles_touch_a_sphere_and_stay_above_the_film():
    rng = np.random.default_rng(3)
    c = np.array([0.0, 0.0, 0.0])
    a = np.array([1.0, 0.0, 0.0])
    radii = np.full(40, 2.0)
    directions = rng.standard_normal((40, SHELL_TRIES, 3))
    accept = rng.random((40, SHELL_TRIES))
    spot = np.zeros((40, 3))
    ok = np.zeros(40, dtype=np.bool_)
    film_top = -5.0
    lay_shell(radii, c, a, 20.0, 20.0, directions, accept, film_top, np.zeros((0, 3)),
              np.zeros((0, 3, 3)), np.zeros((0, 3)), np.zeros(0), spot, ok)
    assert ok.all()
    # tangent to the sphere of radius 20: centres at 22 from its centre
    np.testing.assert_allclose(np.linalg.norm(spot, axis=1), 22.0, rtol=1e-9)
    assert np.all(spot[:, 0] - 2.0 >= film_top)
    # forty particles of radius 2 on a sphere of area 5000 nm^2 find free places: no overlaps
    d = np.linalg.norm(spot[:, None] - spot[None], axis=-1)
    assert d[np.triu_indices(40, 1)].min() >= 4.0 - 1e-9
