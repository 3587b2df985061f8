"""Linear operators shared by acquisition and reconstruction (projectors, gradients)."""

from ._base import LinearOperator, dot_test
from .projector import ParallelProjector

__all__ = ["LinearOperator", "ParallelProjector", "dot_test"]
