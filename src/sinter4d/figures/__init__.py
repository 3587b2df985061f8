"""Figures of every stage, as pure functions of arrays and datasets (Agg canvas, no display).

* :mod:`.calibration` -- the reading curves of a calibration by orientation (``report``);
* :mod:`.metrics` -- the paper's Fig. 8 and Fig. 9(a) of a metrics dataset (``measure``, ``validate``);
* :mod:`.assimilation` -- corner plot and posterior predictive of a fit (``fit``);
* :mod:`.sweep` -- heatmaps and line plots of a sweep dataset (``sweep``);
* :mod:`.run` -- tilt montage and orthogonal slices of a run (``report``);
* :mod:`.surface` -- marching-cubes surfaces of binary volumes (``report``);
* :mod:`.png` -- a figure as PNG bytes or pixels, PNGs made smaller (``report``).
"""

__all__ = ["assimilation", "calibration", "metrics", "png", "run", "surface", "sweep"]
