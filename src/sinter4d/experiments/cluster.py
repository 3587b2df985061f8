"""Dask plumbing shared by the runners that send work to a cluster.

The sweep's cells (:mod:`sinter4d.experiments.sweep`), the calibration's
twins and its settings choice (:mod:`sinter4d.experiments.choose`) and a
run's tilt series (:mod:`sinter4d.experiments.reconstruct_dask`) all run
as Dask tasks the same way: a client on a running scheduler or on a
LocalCluster of single-threaded processes (:func:`dask_client`), each task
on one thread in its worker (:func:`limit_threads`, :func:`in_worker`), the
futures gathered as they finish, with a watchdog for a cluster whose
workers all died (:func:`as_finished`); docs/design.md, "On a cluster".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .._cores import WORKER_ENV, one_thread_per_worker

__all__ = [
    "NO_WORKER_TIMEOUT_S",
    "WORKER_ENV",
    "as_finished",
    "captured_logs",
    "dask_client",
    "in_worker",
    "limit_threads",
    "process_pool",
    "replay_logs",
    "start_client",
]


#: Seconds without any Dask worker after which the tasks still pending are given up.
NO_WORKER_TIMEOUT_S = 120.0


def limit_threads() -> dict:
    """One thread per task in this worker; what numba ended up with (recorded in a sweep cell's record).

    The environment only reaches libraries not loaded yet: a LocalCluster sets
    it before the worker starts (:data:`WORKER_ENV`); on a cluster of your own,
    ``numba.set_num_threads(1)`` still caps numba's parallel loops
    (:func:`~sinter4d._cores.one_thread_per_worker`).
    """
    one_thread_per_worker()  # numba at one thread, whether it was loaded before or is loaded now
    import numba

    return {"numba_pool_threads": int(numba.config.NUMBA_NUM_THREADS), "numba_threads": int(numba.get_num_threads())}


def process_pool(workers: int):
    """A pool of ``workers`` processes on this machine, each on one thread.

    For work shared out without Dask (a run's time steps, its series'
    preparation). The workers are started with ``spawn``: ``fork`` is unsafe
    once numba's OpenMP threads run, so a script using the pool needs the
    ``if __name__ == "__main__":`` guard. Their initializer
    (:func:`~sinter4d._cores.one_thread_per_worker`), imported from a module
    that loads no numba, sets :data:`WORKER_ENV` before the tasks' imports
    load it.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=one_thread_per_worker)


def in_worker(task, *args):
    """Run ``task(*args)`` in a Dask worker, on one thread (:func:`limit_threads`)."""
    limit_threads()
    return task(*args)


def start_client(scheduler: str | None, n_workers: int):
    """A Dask client: on ``scheduler``, or on a new LocalCluster of ``n_workers`` one-thread processes.

    Returns ``(client, cluster)``; ``cluster`` is None on a given scheduler
    (the caller leaves a cluster it did not start running).
    """
    from distributed import Client, LocalCluster

    if scheduler is not None:
        return Client(scheduler), None
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, env=dict(WORKER_ENV),
                           dashboard_address=None, silence_logs=logging.ERROR)
    return Client(cluster), cluster


@contextmanager
def dask_client(scheduler: str | None, n_workers: int):
    """:func:`start_client` for the block, closed after it (the LocalCluster too).

    Dask's own INFO chatter reaches the console only when the package logs
    INFO (``sinter4d -v``).
    """
    from distributed import Client  # noqa: F401  (its first import configures the "distributed" logger)

    dask_logger = logging.getLogger("distributed")
    dask_level = dask_logger.level
    if logging.getLogger("sinter4d").getEffectiveLevel() > logging.INFO:
        dask_logger.setLevel(logging.ERROR)
    client, cluster = None, None
    try:
        client, cluster = start_client(scheduler, n_workers)
        yield client
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        dask_logger.setLevel(dask_level)


def as_finished(client, futures, *, timeout_s: float = NO_WORKER_TIMEOUT_S) -> Iterator[tuple[object, Exception | None]]:
    """Yield ``(future, None)`` as the futures finish; ``(future, error)`` for those given up.

    A cluster whose workers all died (e.g. they cannot import the package)
    never finishes its tasks: after ``timeout_s`` seconds without any worker,
    every unfinished future is yielded once with a ``RuntimeError`` saying so,
    and the iteration ends.
    """
    from distributed import as_completed

    pending = as_completed(list(futures))
    no_worker_since = None
    while not pending.is_empty():
        if not pending.has_ready():
            if client.scheduler_info()["workers"]:
                no_worker_since = None
            elif no_worker_since is None:
                no_worker_since = time.monotonic()
            elif time.monotonic() - no_worker_since > timeout_s:
                error = RuntimeError(f"no Dask worker for {timeout_s:.0f} s (the workers died; see their errors "
                                     "on the console)")
                for fut in futures:
                    if not fut.done():
                        yield fut, error
                return
            time.sleep(0.2)
            continue
        for fut in pending.next_batch(block=False):
            yield fut, None


@contextmanager
def captured_logs(level: int = logging.INFO) -> Iterator[list[dict]]:
    """Keep the package's log records of a task off the worker's console and collect them.

    Yields a list that fills with the records (as dicts, picklable) at or
    above ``level``; the client passes them to :func:`replay_logs`, so a
    task's records reach the run's log as they would in-process.
    """
    records: list[dict] = []

    class _Collect(logging.Handler):
        def emit(self, record):
            record.msg, record.args = record.getMessage(), None
            record.exc_info = record.exc_text = record.stack_info = None
            records.append(dict(record.__dict__))

    pkg = logging.getLogger("sinter4d")
    handler = _Collect(level)
    saved = (pkg.level, pkg.propagate)
    pkg.setLevel(level)
    pkg.propagate = False
    pkg.addHandler(handler)
    try:
        yield records
    finally:
        pkg.removeHandler(handler)
        pkg.level, pkg.propagate = saved


def replay_logs(records: list[dict]) -> None:
    """Hand a task's records (:func:`captured_logs`) to this process's loggers (their handlers' levels apply)."""
    for entry in records:
        record = logging.makeLogRecord(entry)
        logging.getLogger(record.name).handle(record)
