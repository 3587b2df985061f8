"""The indicator of x >= 0 and its proximal map."""

import math

import numpy as np

from sinter4d.pipeline.functions import NonNegativity


def test_value_and_projection():
    f = NonNegativity()
    x = np.array([[[-1.0, 0.0, 2.0]]], np.float32)
    assert f(np.abs(x)) == 0.0 and f(x) == math.inf
    np.testing.assert_array_equal(f.proximal(x, 3.0), [[[0.0, 0.0, 2.0]]])
    out = np.empty_like(x)
    assert f.proximal(x, out=out) is out
