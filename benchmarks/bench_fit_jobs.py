"""The fit's walkers in batches and on worker processes, against emcee's one walker at a time.

Data: synthetic trajectories of 9 pairs on the quick run's heating log (7
series), two of them bridged across 8 and 11 nm gaps and read 5 nm narrow,
pair offsets of 3 nm (``synthetic_trajectories``, seed 7). Fit spec:
``assimilation/quick.toml``'s model, forward settings and noise model (its
seven sampled parameters), with ``--steps`` steps of its 32 walkers. Arms,
one after the other in this process, each ``--repeats`` times:

* peer: emcee's own way, one walker at a time on one process (the fit
  handed a pool whose ``map`` is the built-in one);
* peer: a ``multiprocessing`` fork pool of 2 handed to emcee, one walker at
  a time;
* ``n_jobs = 1``: the walkers of a half-step in one batch (``LogPosterior.batch``);
* ``n_jobs = 2``: the batch split between this process and a worker
  (:class:`sinter4d.assimilation.sampler.PosteriorPool`, the worker's start
  included).

Prints the median wall time of each and the speed-up against the first, and
checks that every arm gives the same chain. Measured figures:
docs/validation.md, "Timings".

Run: ``python benchmarks/bench_fit_jobs.py [--steps 2000] [--repeats 3]``
on an otherwise idle machine (the load average is printed).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from sinter4d.assimilation import fit, synthetic_trajectories
from sinter4d.experiments.spec import load_spec
from sinter4d.sintering import HeatingLog, load_model_card

ROOT = Path(__file__).resolve().parents[1]


def _data(folder: Path) -> Path:
    card = load_model_card(ROOT / "models" / "cu_shell_reservoir.toml")
    heating = load_spec(ROOT / "experiments" / "quick.toml").heating
    log = HeatingLog(pt_time_s=np.asarray(heating.pt_time_s, dtype=float),
                     temperature_C=np.asarray(heating.temperature_C, dtype=float),
                     standby_temperature_C=heating.standby_temperature_C, standby_s=heating.standby_s)
    gap = np.zeros(9)
    gap[:2] = [8.0, 11.0]
    ds = synthetic_trajectories(card, None, rng=7, n_pairs=9, log=log, neck_sigma_nm=1.5, distance_sigma_nm=1.0,
                                neck_pair_sigma_nm=3.0, gap_nm=gap, bridged_neck_offset_nm=-5.0)
    path = folder / "metrics.nc"
    ds.to_netcdf(path)
    return path


def _spec(folder: Path, steps: int) -> Path:
    text = (ROOT / "assimilation" / "quick.toml").read_text()
    out = []
    for line in text.splitlines():
        key = line.split("=")[0].strip()
        if key == "data":
            continue
        out.append({"steps": f"steps = {steps}", "burn_in": f"burn_in = {steps // 4}",
                    "thin": "thin = 10"}.get(key, line))
    path = folder / "spec.toml"
    path.write_text("\n".join(out) + "\n")
    return path


class _OneAtATime:
    """A pool whose map is the built-in one: emcee then calls the posterior one walker at a time."""

    map = staticmethod(map)


def _chain(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["mcmc"]["chain"][...]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print(f"load average at the start: {os.getloadavg()[0]:.1f}; cores {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data, spec = _data(folder), _spec(folder, args.steps)
        arms = {"one at a time, peer": dict(pool=_OneAtATime()), "fork Pool(2), peer": None,
                "batch, n_jobs=1": dict(n_jobs=1), "batch, n_jobs=2": dict(n_jobs=2)}
        times = {name: [] for name in arms}
        reference = None
        for rep in range(args.repeats):
            for arm, (name, kwargs) in enumerate(arms.items()):
                out = folder / f"fit-{rep}-{arm}"
                t = time.perf_counter()
                if kwargs is None:
                    with multiprocessing.get_context("fork").Pool(2) as pool:
                        fit(data, spec, out, progress=False, pool=pool)
                else:
                    fit(data, spec, out, progress=False, **kwargs)
                times[name].append(time.perf_counter() - t)
                chain = _chain(out / "chain.h5")
                reference = chain if reference is None else reference
                if not np.array_equal(chain, reference):
                    raise SystemExit(f"{name}: the chain differs from the first arm's")
        base = statistics.median(times["one at a time, peer"])
        print(f"fit of {args.steps} steps x 32 walkers, medians of {args.repeats}:")
        for name, values in times.items():
            med = statistics.median(values)
            print(f"  {name:20s} {med:7.1f} s   speed-up {base / med:4.2f}x")
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
