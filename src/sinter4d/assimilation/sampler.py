"""emcee sampling with a resumable, batched HDF5 chain, seeded one way.

* Storage is a seam: :class:`BatchedHDFBackend` is emcee's ``HDFBackend``
  (same file layout, readable by ``emcee.backends.HDFBackend``) that keeps
  ``checkpoint_steps`` steps in memory and writes them in one go, instead of
  opening the file at every step. Each stored step carries emcee's random
  state, and the iteration counter is written last, so an interrupted run
  leaves a consistent file whose last step can be continued.
* Randomness: the spec's seed spawns (``numpy.random.SeedSequence``) the
  generators of the walkers' start, of emcee's proposals (a legacy
  ``RandomState`` on an ``MT19937`` bit generator, since emcee needs one)
  and of the posterior draws. A chain stopped and resumed is bit-identical
  to one run straight through.
* Convergence: integrated autocorrelation time per parameter, N/tau, and the
  acceptance fraction; a warning is logged when N/tau < 50.
* Batches: a log posterior with a ``batch`` method (the log posterior of
  a (W, D) array of positions) is handed to emcee as a vectorised function,
  so the walkers of a half-step share one call of the kinetics.
* Parallelism: :class:`PosteriorPool` evaluates the walkers on this process
  and workers, each holding the log posterior from its start, so a step sends
  only the walkers' positions; the results are the serial ones.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import emcee
import numpy as np
from emcee.backends import HDFBackend
from scipy.optimize import minimize

from ..errors import InputError

log = logging.getLogger(__name__)

#: Minimum chain length in autocorrelation times before a warning.
MIN_N_OVER_TAU = 50.0


class BatchedHDFBackend(HDFBackend):
    """emcee's HDF5 backend, writing ``batch_steps`` steps per file access.

    Parameters
    ----------
    filename : str or Path
        The HDF5 file (``chain.h5``).
    batch_steps : int
        Steps kept in memory between writes; :meth:`flush` writes the rest.
    name : str
        HDF5 group of the chain.
    """

    def __init__(self, filename, *, batch_steps: int = 100, name: str = "mcmc"):
        super().__init__(str(filename), name=name)
        if batch_steps < 1:
            raise InputError(f"batch_steps must be at least 1, got {batch_steps}")
        self.batch_steps = int(batch_steps)
        self._buffer: list[tuple] = []
        self._shape = None  # (walkers, ndim), read once: emcee's checks open the file at every step

    def reset(self, nwalkers, ndim):  # noqa: D102 - emcee API
        self._buffer.clear()
        self._shape = None
        super().reset(nwalkers, ndim)

    def save_step(self, state, accepted):
        """Keep a step in memory; write the batch when it is full."""
        if self._shape is None:
            self._shape = tuple(int(v) for v in self.shape)
        if state.blobs is not None:
            raise ValueError("BatchedHDFBackend stores no blobs")
        if np.shape(state.coords) != self._shape or np.shape(state.log_prob) != self._shape[:1]:
            raise ValueError(f"step of shape {np.shape(state.coords)}, the chain holds {self._shape}")
        self._buffer.append((np.array(state.coords, dtype=float), np.array(state.log_prob, dtype=float),
                             np.asarray(accepted, dtype=float).copy(), state.random_state))
        if len(self._buffer) >= self.batch_steps:
            self.flush()

    def flush(self) -> None:
        """Write the steps held in memory (one file access)."""
        if not self._buffer:
            return
        with self.open("a") as f:
            g = f[self.name]
            it = int(g.attrs["iteration"])
            n = len(self._buffer)
            if g["chain"].shape[0] < it + n:
                g["chain"].resize(it + n, axis=0)
                g["log_prob"].resize(it + n, axis=0)
            g["chain"][it:it + n] = np.stack([b[0] for b in self._buffer])
            g["log_prob"][it:it + n] = np.stack([b[1] for b in self._buffer])
            g["accepted"][:] = g["accepted"][:] + np.sum([b[2] for b in self._buffer], axis=0)
            for i, v in enumerate(self._buffer[-1][3]):
                g.attrs[f"random_state_{i}"] = v
            g.attrs["iteration"] = it + n
        self._buffer.clear()

    # reads see the buffered steps too
    def get_value(self, name, flat=False, thin=1, discard=0):  # noqa: D102 - emcee API
        self.flush()
        return super().get_value(name, flat=flat, thin=thin, discard=discard)

    @property
    def iteration(self):  # noqa: D102 - emcee API
        return super().iteration + len(self._buffer)

    @property
    def accepted(self):  # noqa: D102 - emcee API
        self.flush()
        return super().accepted

    @property
    def random_state(self):  # noqa: D102 - emcee API
        self.flush()
        return super().random_state

    def get_attr(self, key: str, default=None):
        """An attribute of the chain's group (``default`` when absent)."""
        if not self.initialized:
            return default
        with self.open() as f:
            value = f[self.name].attrs.get(key, default)
        return value.decode() if isinstance(value, bytes) else value

    def set_attr(self, key: str, value) -> None:
        """Set an attribute of the chain's group."""
        with self.open("a") as f:
            f[self.name].attrs[key] = value


def _evaluate(log_prob: Callable, points: np.ndarray) -> list:
    """Log posterior of each row of ``points``: in one batch when ``log_prob`` has one."""
    if hasattr(log_prob, "batch"):
        return [float(v) for v in log_prob.batch(points)] if len(points) else []
    return [log_prob(x) for x in points]


def _serve(conn, log_prob: Callable) -> None:
    """A :class:`PosteriorPool` worker: evaluate the positions it is sent until it is sent None."""
    while True:
        points = conn.recv()
        if points is None:
            return
        try:
            conn.send(_evaluate(log_prob, points))
        except Exception as exc:  # noqa: BLE001 - handed back to the main process, which raises it
            conn.send(exc)


class PosteriorPool:
    """Evaluate one log posterior on ``processes`` processes (this one and workers): :func:`run_chain`'s ``pool``.

    Each worker (a ``spawn`` process: safe beside threads such as a Dask
    cluster's) receives the log posterior once, when it starts. A ``map`` of
    it splits the walkers in one chunk per process, sends each worker its
    chunk's positions through a pipe, evaluates the first chunk here, and
    returns the values in order, so a chain is the one a serial run gives.
    A log posterior with a ``batch`` method evaluates each chunk as one
    batch, and :meth:`batch` is then the vectorised function for emcee.
    This process takes a chunk itself because waking a sleeping worker costs
    about as much as a chunk on a small VM (docs/validation.md, "Timings").
    A ``map`` of any other function is the built-in ``map``. A context
    manager; :meth:`close` ends the workers.

    Parameters
    ----------
    log_prob : callable
        Picklable log posterior of a (D,) vector.
    processes : int
        Processes in all (>= 1; 1: no worker).
    """

    def __init__(self, log_prob: Callable, processes: int):
        if int(processes) < 1:
            raise InputError(f"processes must be at least 1, got {processes}")
        self.log_prob = log_prob
        self.processes = int(processes)
        ctx = multiprocessing.get_context("spawn")
        self._conns, self._workers = [], []
        for _ in range(self.processes - 1):
            here, there = ctx.Pipe()
            worker = ctx.Process(target=_serve, args=(there, log_prob), daemon=True)
            worker.start()
            there.close()
            self._conns.append(here)
            self._workers.append(worker)

    def map(self, func: Callable, iterable) -> list:
        """``[func(x) for x in iterable]``, the log posterior's values computed on every process."""
        if getattr(func, "f", func) is not self.log_prob or getattr(func, "args", None) or getattr(func, "kwargs", None):
            return list(map(func, iterable))
        return self.batch(list(iterable)).tolist()

    def batch(self, points) -> np.ndarray:
        """Log posterior of each row of ``points`` (W, D), computed on every process, in order."""
        points = np.asarray(points, dtype=float)
        chunks = np.array_split(points, self.processes)
        for conn, chunk in zip(self._conns, chunks[1:]):
            conn.send(chunk)
        error, values = None, []
        try:
            values = _evaluate(self.log_prob, chunks[0])
        except Exception as exc:  # noqa: BLE001 - raised once every worker has answered
            error = exc
        for conn in self._conns:  # every answer is read, so none is left for the next map
            try:
                got = conn.recv()
            except EOFError:
                raise RuntimeError("a worker of the fit's process pool ended unexpectedly") from None
            if isinstance(got, Exception):
                error = error or got
            else:
                values.extend(got)
        if error is not None:
            raise error
        return np.asarray(values, dtype=float)

    def close(self) -> None:
        """End the workers."""
        for conn in self._conns:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            conn.close()
        for worker in self._workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()
        self._conns, self._workers = [], []

    def __enter__(self) -> "PosteriorPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_MOVES = {
    "stretch": lambda: None,  # emcee's default
    "de_snooker": lambda: [(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)],
}
#: Names of the proposal moves a fit spec may give (``sampler.moves``).
MOVES = tuple(_MOVES)


def ensemble_moves(name: str):
    """emcee's proposal moves of a fit spec's ``sampler.moves``.

    ``"stretch"``: emcee's default stretch move (None). ``"de_snooker"``:
    differential evolution on 80 % of the steps and its snooker variant on
    20 %, the mixture of emcee's tutorial on moves; its autocorrelation times
    on the quick fit: docs/validation.md, "Timings".
    """
    if name not in _MOVES:
        raise InputError(f"unknown moves {name!r} ({' or '.join(MOVES)})")
    return _MOVES[name]()


def spawn_generators(seed: int) -> dict[str, np.random.SeedSequence]:
    """Seed sequences of a fit's three random streams: ``init``, ``emcee``, ``draws``."""
    init, sampler, draws = np.random.SeedSequence(seed).spawn(3)
    return {"init": init, "emcee": sampler, "draws": draws}


def emcee_random_state(seed_sequence: np.random.SeedSequence):
    """The legacy ``RandomState`` state emcee needs, from a seed sequence (MT19937)."""
    return np.random.RandomState(np.random.MT19937(seed_sequence)).get_state()


def initial_positions(log_prob: Callable, prior, walkers: int, rng: np.random.Generator, *, start=None,
                      init: str = "map", ball: float = 1e-3, n_candidates: int = 64) -> np.ndarray:
    """Starting points of the walkers, each with a finite log posterior.

    Parameters
    ----------
    log_prob : callable
        Log posterior of a parameter vector.
    prior : PriorVector
        Priors (for draws and scales).
    walkers : int
    rng : numpy.random.Generator
    start : (D,) ndarray, optional
        A point to start the search from (e.g. the card's defaults).
    init : {'map', 'prior'}
        ``map``: maximise the log posterior (Nelder–Mead from the best of
        ``start`` and ``n_candidates`` prior draws, in coordinates scaled by
        the prior widths) and start in a ball of ``ball`` × prior width
        around the maximum; ``prior``: draw from the prior.
    ball : float
        Relative size of the starting ball.
    n_candidates : int
        Prior draws tried as starting points of the search.

    Returns
    -------
    (walkers, D) ndarray

    Raises
    ------
    InputError
        If no point of finite posterior density is found.
    """
    scale = prior.scale
    if init == "prior":
        out = prior.sample(rng, walkers)
        for i in range(walkers):
            for _ in range(1000):
                if math.isfinite(log_prob(out[i])):
                    break
                out[i] = prior.sample(rng, 1)[0]
            else:
                raise InputError("no walker start of finite posterior density in 1000 prior draws")
        return out
    cands = prior.sample(rng, n_candidates)
    if start is not None:
        cands = np.vstack([np.asarray(start, dtype=float)[None, :], cands])
    values = np.array([log_prob(c) for c in cands])
    if not np.any(np.isfinite(values)):
        raise InputError("the posterior density is 0 at the start point and at every prior draw tried")
    best = cands[np.argsort(-values)[:3]]
    found = []
    for b in best:
        if not math.isfinite(log_prob(b)):
            continue
        def cost(z, b=b):
            value = log_prob(b + z * scale)
            return -value if math.isfinite(value) else 1e300

        simplex = np.vstack([np.zeros(b.size), 0.05 * np.eye(b.size)])
        res = minimize(cost, np.zeros(b.size), method="Nelder-Mead",
                       options={"xatol": 1e-7, "fatol": 1e-7, "maxiter": 400 * b.size, "adaptive": True,
                                "initial_simplex": simplex})
        found.append((-res.fun, b + res.x * scale))
    top, centre = max(found, key=lambda f: f[0])
    log.info("maximum a posteriori log density %.3f at %s", top, np.array2string(centre, precision=4))
    # a maximum on a prior bound: move the ball's centre inside, so that walkers start distinct
    for i, p in enumerate(prior.priors):
        if p.dist != "normal":
            margin = 3.0 * ball * scale[i]
            centre[i] = min(max(centre[i], p.low + margin), p.high - margin)
    out = np.empty((walkers, centre.size))
    for i in range(walkers):
        for _ in range(1000):
            cand = centre + ball * scale * rng.standard_normal(centre.size)
            if math.isfinite(log_prob(cand)):
                out[i] = cand
                break
        else:
            out[i] = centre
    return out


@dataclass(frozen=True)
class Convergence:
    """Convergence figures of a chain.

    Attributes
    ----------
    tau : (D,) ndarray
        Integrated autocorrelation time of each parameter (steps), after burn-in.
    n_steps : int
        Steps after burn-in, N.
    n_over_tau : float
        ``N / max(tau)``; below :data:`MIN_N_OVER_TAU` the estimates are unreliable.
    acceptance : (W,) ndarray
        Acceptance fraction of each walker.
    """

    tau: np.ndarray
    n_steps: int
    n_over_tau: float
    acceptance: np.ndarray

    def as_dict(self, names) -> dict:
        """Plain values for netCDF attributes and logs."""
        return {
            "n_steps_after_burn_in": int(self.n_steps),
            "n_over_tau": float(self.n_over_tau),
            "acceptance_fraction_mean": float(np.mean(self.acceptance)),
            **{f"tau_{k}": float(t) for k, t in zip(names, self.tau)},
        }


def run_chain(log_prob: Callable, p0_fn: Callable[[], np.ndarray], *, chain_path: str | Path, key: str, walkers: int,
              steps: int, seed: int, checkpoint_steps: int = 100, pool=None, progress: bool = False,
              callback: Callable[[int, object], None] | None = None, moves: str = "stretch") -> BatchedHDFBackend:
    """Run (or resume) an emcee ensemble to ``steps`` steps, stored in ``chain_path``.

    Parameters
    ----------
    log_prob : callable
        Log posterior of a (D,) vector (picklable when ``pool`` is given).
        With a ``batch`` method (the values at a (W, D) array), emcee calls
        that instead, once per half-step (through ``pool`` when it is a
        :class:`PosteriorPool` of it).
    p0_fn : callable
        Returns the (walkers, D) starting points; called only for a new chain.
    chain_path : str or Path
        The HDF5 file. A chain there made with the same ``key`` is continued
        from its last stored step; one with another key is refused.
    key : str
        What the chain depends on (the fit spec's resume key).
    walkers, steps : int
        Ensemble size and total steps per walker.
    seed : int
        Seeds emcee's generator (:func:`spawn_generators`).
    checkpoint_steps : int
        Steps written to the file per access.
    pool : object with ``map``, optional
        For parallel log-posterior evaluations: a :class:`PosteriorPool`, or
        any pool (e.g. ``multiprocessing.Pool``), whose ``map`` then takes one
        position at a time.
    progress : bool
        emcee's progress bar.
    callback : callable, optional
        ``callback(iteration, state)`` after every step (may raise to stop).
    moves : {'stretch', 'de_snooker'}
        The proposal (:func:`ensemble_moves`).

    Returns
    -------
    BatchedHDFBackend
        The chain (at least ``steps`` steps).

    Raises
    ------
    InputError
        ``chain_path`` holds a chain of another spec or shape.
    """
    p0 = None
    backend = BatchedHDFBackend(chain_path, batch_steps=checkpoint_steps)
    if Path(chain_path).exists() and not backend.initialized:
        log.warning("%s: not a readable chain; starting a new one", chain_path)
        Path(chain_path).unlink()
    if backend.initialized and backend.iteration > 0:
        if backend.get_attr("sinter4d_fit_key") != key:
            raise InputError(f"{chain_path}: holds the chain of another fit spec or data; choose another --out "
                             "or remove it")
        if backend.shape[0] != walkers:
            raise InputError(f"{chain_path}: chain of {backend.shape[0]} walkers, the spec asks {walkers}")
        done = int(backend.iteration)
        log.info("resuming the chain in %s at step %d of %d", chain_path, done, steps)
    else:
        p0 = np.asarray(p0_fn(), dtype=float)
        if p0.shape[0] != walkers:
            raise InputError(f"p0_fn returned {p0.shape[0]} walkers, expected {walkers}")
        done = 0
    ndim = backend.shape[1] if p0 is None else p0.shape[1]
    if p0 is not None and backend.initialized:
        backend.reset(walkers, ndim)
    kw = dict(backend=backend, moves=ensemble_moves(moves))
    if isinstance(pool, PosteriorPool) and pool.log_prob is log_prob and hasattr(log_prob, "batch"):
        sampler = emcee.EnsembleSampler(walkers, ndim, pool.batch, vectorize=True, **kw)
    elif pool is None and hasattr(log_prob, "batch"):
        sampler = emcee.EnsembleSampler(walkers, ndim, log_prob.batch, vectorize=True, **kw)
    else:
        sampler = emcee.EnsembleSampler(walkers, ndim, log_prob, pool=pool, **kw)
    if p0 is not None:
        backend.set_attr("sinter4d_fit_key", key)
        sampler.random_state = emcee_random_state(spawn_generators(seed)["emcee"])
        state = p0
    else:
        state = backend.get_last_sample()
    remaining = steps - done
    if remaining > 0:
        try:
            for k, st in enumerate(sampler.sample(state, iterations=remaining, progress=progress), start=done + 1):
                if callback is not None:
                    callback(k, st)
        finally:
            backend.flush()
    return backend


def convergence(backend: HDFBackend, *, burn_in: int, steps: int, names=()) -> Convergence:
    """Autocorrelation times, N/tau and acceptance of a stored chain (first ``steps`` steps).

    Logs a warning when ``N / max(tau) < 50``.
    """
    chain = backend.get_chain()[burn_in:steps]
    n = chain.shape[0]
    tau = emcee.autocorr.integrated_time(chain, quiet=True) if n > 1 else np.full(chain.shape[2], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        n_over_tau = float(n / np.nanmax(tau)) if np.any(np.isfinite(tau)) else float("nan")
    acceptance = np.asarray(backend.accepted, dtype=float) / max(int(backend.iteration), 1)
    if not n_over_tau >= MIN_N_OVER_TAU:
        worst = names[int(np.nanargmax(tau))] if len(names) and np.any(np.isfinite(tau)) else "?"
        log.warning(
            "chain too short for reliable estimates: N/tau = %.1f < %g (N = %d steps after burn-in, "
            "tau = %.1f steps for %s); raise sampler.steps", n_over_tau, MIN_N_OVER_TAU, n,
            float(np.nanmax(tau)) if np.any(np.isfinite(tau)) else float("nan"), worst,
        )
    return Convergence(tau=np.asarray(tau, dtype=float), n_steps=n, n_over_tau=n_over_tau, acceptance=acceptance)
