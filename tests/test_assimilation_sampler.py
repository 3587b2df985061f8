"""Chain storage: one contract suite run over every backend (emcee's pattern, tests/unit/test_backends.py).

emcee's in-memory ``Backend`` is the reference; emcee's ``HDFBackend`` and
our ``BatchedHDFBackend`` must store the same chain, log probabilities,
acceptance counts, random state and iteration after the same sampling, after
a resume from the file, and when the file is read by a fresh object.
"""

import emcee
import numpy as np
import pytest
from emcee.backends import Backend, HDFBackend

from sinter4d.assimilation.sampler import BatchedHDFBackend, emcee_random_state, spawn_generators
from sinter4d.errors import InputError

WALKERS, NDIM, STEPS = 8, 3, 23


def log_prob(theta):
    return -0.5 * float(np.sum(theta**2 / np.array([1.0, 4.0, 0.25])))


def _start():
    return np.random.default_rng(1).normal(size=(WALKERS, NDIM))


def _flushed(backend):
    if hasattr(backend, "flush"):
        backend.flush()
    return backend


def _sampled(path, make, steps):
    backend = make(path)
    backend.reset(WALKERS, NDIM)
    _run(backend, steps)
    return _flushed(backend)


def _run(backend, steps, state=None):
    sampler = emcee.EnsembleSampler(WALKERS, NDIM, log_prob, backend=backend)
    if state is None:
        sampler.random_state = emcee_random_state(spawn_generators(3)["emcee"])
        state = _start()
    sampler.run_mcmc(state, steps, progress=False)
    return sampler


BACKENDS = {
    "HDFBackend": lambda path: HDFBackend(str(path)),
    "BatchedHDFBackend": lambda path: BatchedHDFBackend(path, batch_steps=5),
    "BatchedHDFBackend-1": lambda path: BatchedHDFBackend(path, batch_steps=1),
}


@pytest.fixture(scope="module")
def reference():
    return _run(Backend(), STEPS).backend


def _assert_same(backend, ref):
    assert backend.iteration == ref.iteration
    np.testing.assert_array_equal(backend.get_chain(), ref.get_chain())
    np.testing.assert_array_equal(backend.get_log_prob(), ref.get_log_prob())
    np.testing.assert_array_equal(backend.accepted, ref.accepted)
    got, want = backend.random_state, ref.random_state
    assert got[0] == want[0] and np.array_equal(got[1], want[1]) and tuple(got[2:]) == tuple(want[2:])
    np.testing.assert_array_equal(backend.get_chain(flat=True, thin=3, discard=4),
                                  ref.get_chain(flat=True, thin=3, discard=4))
    np.testing.assert_array_equal(backend.get_last_sample().coords, ref.get_last_sample().coords)


@pytest.mark.parametrize("make", BACKENDS.values(), ids=BACKENDS.keys())
def test_sampling_stores_what_memory_stores(tmp_path, make, reference):
    _assert_same(_sampled(tmp_path / "chain.h5", make, STEPS), reference)


@pytest.mark.parametrize("make", BACKENDS.values(), ids=BACKENDS.keys())
def test_resume_continues_the_same_chain(tmp_path, make, reference):
    path = tmp_path / "chain.h5"
    _sampled(path, make, 10)
    again = make(path)  # a new process: only the file is left
    assert again.initialized and again.iteration == 10
    sampler = emcee.EnsembleSampler(WALKERS, NDIM, log_prob, backend=again)
    sampler.run_mcmc(again.get_last_sample(), STEPS - 10, progress=False)
    _assert_same(_flushed(again), reference)


@pytest.mark.parametrize("make", BACKENDS.values(), ids=BACKENDS.keys())
def test_a_fresh_reader_sees_the_chain(tmp_path, make, reference):
    path = tmp_path / "chain.h5"
    _sampled(path, make, STEPS)
    _assert_same(HDFBackend(str(path), read_only=True), reference)


def test_batched_reads_see_the_buffered_steps(tmp_path, reference):
    backend = BatchedHDFBackend(tmp_path / "chain.h5", batch_steps=100)
    backend.reset(WALKERS, NDIM)
    _run(backend, STEPS)  # fewer steps than a batch: nothing written yet
    assert backend.iteration == STEPS
    _assert_same(backend, reference)


def test_batched_refuses_a_bad_batch(tmp_path):
    with pytest.raises(InputError, match="batch_steps"):
        BatchedHDFBackend(tmp_path / "chain.h5", batch_steps=0)
