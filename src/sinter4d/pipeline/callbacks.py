"""Callbacks of the iterative solvers: progress bar, logging, objective record.

CIL-style (STYLE.md): stopping, progress and logging are not constructor
flags of a solver but callables that :meth:`Algorithm.run
<sinter4d.pipeline.algorithms.Algorithm.run>` calls with the algorithm
after every iteration. Any callable ``cb(algorithm)`` will do; raising
``StopIteration`` ends the run early.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..checks import check_int

if TYPE_CHECKING:
    from .algorithms import Algorithm

__all__ = ["Callback", "LoggingCallback", "ObjectiveCallback", "ProgressCallback"]

logger = logging.getLogger(__name__)


class Callback:
    """Something called with the algorithm after every iteration.

    Subclass and override :meth:`__call__`; raise ``StopIteration`` to end
    the run early. :meth:`close` is called once when the run ends.
    """

    def __call__(self, algorithm: Algorithm) -> None:  # pragma: no cover - interface
        """Inspect ``algorithm`` (``iteration``, ``relative_change``, ``x``...)."""

    def close(self) -> None:
        """Release resources at the end of :meth:`Algorithm.run`."""


class ProgressCallback(Callback):
    """A tqdm progress bar over the iterations of a run.

    Parameters
    ----------
    **tqdm_kwargs
        Passed to ``tqdm.tqdm`` (e.g. ``desc``, ``leave``, ``file``).
    """

    def __init__(self, **tqdm_kwargs) -> None:
        self._kwargs = tqdm_kwargs
        self._bar = None

    def __call__(self, algorithm: Algorithm) -> None:
        if self._bar is None:
            from tqdm.auto import tqdm

            self._kwargs.setdefault("desc", type(algorithm).__name__)
            self._bar = tqdm(total=algorithm.max_iteration, initial=algorithm.iteration - 1, **self._kwargs)
        self._bar.update(1)
        self._bar.set_postfix(change=f"{algorithm.relative_change:.2e}", refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class LoggingCallback(Callback):
    """Log iteration and relative change every ``interval`` iterations (level INFO).

    Parameters
    ----------
    interval : int, optional
    objective : bool, optional
        Also log ``algorithm.objective()`` (costs one projection).
    log : logging.Logger, optional
        Default: this module's logger, ``sinter4d.pipeline.callbacks``.
    """

    def __init__(self, interval: int = 10, *, objective: bool = False, log: logging.Logger | None = None) -> None:
        self.interval = check_int(interval, "interval", minimum=1)
        self.objective = bool(objective)
        self.log = log or logger

    def __call__(self, algorithm: Algorithm) -> None:
        if algorithm.iteration % self.interval == 0:
            extra = f" objective {algorithm.objective():.6g}" if self.objective else ""
            self.log.info(
                "%s iteration %d: relative change %.3e%s",
                type(algorithm).__name__,
                algorithm.iteration,
                algorithm.relative_change,
                extra,
            )


class ObjectiveCallback(Callback):
    """Record ``(iteration, algorithm.objective())`` every ``interval`` iterations in ``values``."""

    def __init__(self, interval: int = 1) -> None:
        self.interval = check_int(interval, "interval", minimum=1)
        self.values: list[tuple[int, float]] = []

    def __call__(self, algorithm: Algorithm) -> None:
        if algorithm.iteration % self.interval == 0:
            self.values.append((algorithm.iteration, algorithm.objective()))
