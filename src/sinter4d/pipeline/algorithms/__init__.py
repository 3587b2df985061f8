"""Reconstruction algorithms, one per module, CIL-style.

``fbp``
    Ramp-filtered back-projection (:func:`fbp`), the fast baseline.
``SIRT``
    ``x <- x + C A^T R (b - A x)`` (+ ``x >= 0``).
``AlternatingTV``
    The paper's ISER-like scheme: per iteration a SIRT data step, then a few
    steepest-descent steps on the isotropic 3D total variation whose length
    is tied to the length of the data step (ASD-POCS). Needs two volumes and
    two sinograms of memory.
``ChambollePock``
    The principled solver of ``min 1/2 ||A x - b||^2 + lambda TV(x) + i_{x>=0}``
    with diagonal preconditioning. Converges to the minimiser, but stores a
    3-component dual field (five volumes in all).

Each iterative solver is an :class:`Algorithm`: built once from a
:class:`~sinter4d.operators.LinearOperator` and the data, ``update()`` is
one iteration, ``run(n, callbacks=...)`` many (:mod:`sinter4d.pipeline.callbacks`).
"""

from .alternating_tv import AlternatingTV
from .base import Algorithm, system_sums
from .chambolle_pock import ChambollePock
from .fbp import fbp
from .sirt import SIRT

__all__ = ["SIRT", "Algorithm", "AlternatingTV", "ChambollePock", "fbp", "system_sums"]
