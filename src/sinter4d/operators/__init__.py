"""Linear operators shared by acquisition and reconstruction (projectors, gradients)."""

from ._base import LinearOperator, dot_test

__all__ = ["LinearOperator", "dot_test"]
