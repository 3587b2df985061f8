"""How many CPU cores this process may use, how many workers a job gets, and one thread per worker."""

from __future__ import annotations

import numbers
import os
import sys

from .errors import InputError


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it, else all of them)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_count(n_jobs: int, n_tasks: int | None = None) -> int:
    """Workers for a job: ``n_jobs``, or every core this process may use for -1; at most one per task.

    Parameters
    ----------
    n_jobs : int
        -1 (every core) or a positive number of workers.
    n_tasks : int, optional
        Tasks to share out: no more workers than tasks (but at least one).

    Raises
    ------
    InputError
        ``n_jobs`` is 0 or below -1.
    """
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0 or n_jobs < -1:
        raise InputError(f"n_jobs must be -1 (all cores) or a positive int, got {n_jobs!r}")
    n = available_cores() if n_jobs == -1 else int(n_jobs)
    return max(1, n if n_tasks is None else min(n, n_tasks))


#: Environment of the worker processes: one thread per task, so that n tasks on n cores
#: do not oversubscribe them (numba reads NUMBA_NUM_THREADS when it is first imported).
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def one_thread_per_worker() -> None:
    """Set this process to one thread per library (:data:`WORKER_ENV`): a worker's initializer.

    Numba reads ``NUMBA_NUM_THREADS`` once, when it is imported, and refuses
    a later change at its next compilation ("Cannot set NUMBA_NUM_THREADS to
    a different value once the threads have been launched"). So the variable
    is set only while numba is not loaded yet (this module imports nothing
    heavy, so a ``spawn`` worker's initializer gets there first); once it is
    loaded, ``numba.set_num_threads(1)`` caps its loops instead.
    """
    env = dict(WORKER_ENV)
    if "numba" in sys.modules:
        del env["NUMBA_NUM_THREADS"]
        import numba

        numba.set_num_threads(1)
    os.environ.update(env)
