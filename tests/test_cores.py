"""How many workers a job gets (`sinter4d._cores.worker_count`)."""

import numpy as np
import pytest

from sinter4d._cores import available_cores, worker_count
from sinter4d.errors import InputError


def test_minus_one_is_every_core_and_no_more_workers_than_tasks():
    assert worker_count(-1) == available_cores()
    assert worker_count(-1, 1) == 1
    assert worker_count(3, 2) == 2 and worker_count(3, 5) == 3 and worker_count(np.int64(2)) == 2
    assert worker_count(4, 0) == 1  # nothing to do: one worker, not none


@pytest.mark.parametrize("n_jobs", [0, -2, 1.5, True, "2"])
def test_other_values_are_refused(n_jobs):
    with pytest.raises(InputError, match="n_jobs must be -1 \\(all cores\\) or a positive int"):
        worker_count(n_jobs)


def _compile_in_worker(numba_first: bool):
    """In a worker: (optionally load numba, then set one thread per worker,) compile a parallel loop, run it."""
    if numba_first:  # numba loaded before the initializer: only set_num_threads can cap it
        import numba

        from sinter4d._cores import one_thread_per_worker

        one_thread_per_worker()
    import numba
    from numba.core import config

    @numba.njit(parallel=True)  # not cached: compiled here, which is where numba re-reads its environment
    def total(a):
        s = 0.0
        for i in numba.prange(a.size):
            s += a[i]
        return s

    return float(total(np.ones(8))), int(config.NUMBA_NUM_THREADS), int(numba.get_num_threads())


def test_a_pool_worker_compiles_and_runs_numba_on_one_thread():
    # the failure this guards against: the environment changed after numba's import, and its
    # next compilation refusing "to set NUMBA_NUM_THREADS to a different value"
    from sinter4d.experiments.cluster import process_pool

    with process_pool(2) as pool:
        assert list(pool.map(_compile_in_worker, [False, False])) == [(8.0, 1, 1)] * 2


def test_one_thread_per_worker_caps_numba_already_loaded():
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        value, pool_size, threads = pool.apply(_compile_in_worker, (True,))
    assert value == 8.0 and threads == 1 and pool_size == available_cores()
