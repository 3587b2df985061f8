"""The paper's alternating scheme: scale-free, non-negative, guarded against a too strong TV."""

import numpy as np
import pytest
from _spheres import sphere_counts, sphere_dice

from sinter4d.errors import InputError
from sinter4d.pipeline.algorithms import AlternatingTV


@pytest.fixture(scope="module")
def spheres():
    return sphere_counts()


def test_alternating_tv_is_scale_free_and_nonneg(spheres):
    op, b = spheres["op"], spheres["counts"]
    x1 = AlternatingTV(op, b).run(30).copy()
    x10 = AlternatingTV(op, 10 * b).run(30)
    assert np.linalg.norm(x10 - 10 * x1) < 1e-3 * np.linalg.norm(x10)  # float32 rounding only
    assert x1.min() >= 0


def test_alternating_tv_guard_keeps_a_too_strong_tv_stable(spheres):
    op, b = spheres["op"], spheres["counts"]
    alg = AlternatingTV(op, b, tv_fraction=8.0)
    alg.run(150)
    assert np.all(np.isfinite(alg.x))
    assert alg.tv_fraction < 8.0
    assert sphere_dice(alg.x, spheres) > 0.9


@pytest.mark.parametrize(
    "kwargs, match",
    [({"tv_fraction": -1.0}, "tv_fraction"), ({"tv_steps": -1}, "tv_steps"), ({"relaxation_decay": 0.0}, "relaxation_decay")],
)
def test_alternating_tv_rejects_bad_settings(spheres, kwargs, match):
    with pytest.raises(InputError, match=match):
        AlternatingTV(spheres["op"], spheres["counts"], **kwargs)
