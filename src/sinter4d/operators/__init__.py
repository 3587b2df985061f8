"""Linear operators shared by acquisition and reconstruction (projectors, gradients)."""

from ._base import LinearOperator, dot_test
from .gradient import Gradient
from .projector import ParallelProjector

__all__ = ["Gradient", "LinearOperator", "ParallelProjector", "dot_test"]
