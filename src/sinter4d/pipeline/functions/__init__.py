"""Objective terms for reconstruction: total variation, non-negativity, least squares.

CIL-style functions (see STYLE.md): each is called for its value and offers
``gradient`` and/or ``proximal``; the solvers in
:mod:`sinter4d.pipeline.algorithms` talk only to these and to a
:class:`~sinter4d.operators.LinearOperator`.
"""

from .least_squares import LeastSquares
from .non_negativity import NonNegativity
from .total_variation import TotalVariation, dual_ball_step, primal_divergence_step, tv_gradient, tv_value

__all__ = [
    "LeastSquares",
    "NonNegativity",
    "TotalVariation",
    "dual_ball_step",
    "primal_divergence_step",
    "tv_gradient",
    "tv_value",
]
