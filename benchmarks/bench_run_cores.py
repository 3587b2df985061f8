"""A run's simulate and reconstruct stages on both cores, against one step or series after another.

Data: the quick spec (``experiments/quick.toml``, all of it: 7 series of 256² px,
warm start on) or ``--spec``. Each repeat, in a fresh temporary folder:

- simulates the run twice: ``simulate_run(n_jobs=1)``, the peer (one time step
  after another in this process, numba on every core, the code before the
  workers), and ``n_jobs=-1`` (one worker process per core, each on one thread);
- reconstructs each copy: the peer with the workers switched off
  (``POOL_MIN_PIXELS`` raised above the series' size: each series prepared and
  reconstructed in turn in this process, BM3D on every core, the code before
  the workers), and ``reconstruct_path``'s default (the series prepared ahead
  by one worker per core while this process reconstructs the warm chain).

Both arms' files are compared variable by variable; they must be equal.

Prints, with the load average: the median wall seconds of ``--repeats``
repeats (default 1; each takes ~7 min on 2 cores) of each arm and the ratios.

Run: ``python benchmarks/bench_run_cores.py [--spec experiments/quick.toml] [--repeats 1]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from _common import QUICK, timed

# sinter4d, numpy and xarray are imported inside the functions: the workers are spawned, and a
# spawned worker imports this script first; with them at the top, each worker would load numpy
# and numba before its initializer could set one thread per library (the command line's
# workers load nothing heavy first).


def same_files(a: Path, b: Path, folder: str) -> bool:
    """Whether the ``folder`` files of two runs hold equal variables."""
    import numpy as np
    import xarray as xr

    names = sorted(p.name for p in (a / folder).glob("t*.nc"))
    if names != sorted(p.name for p in (b / folder).glob("t*.nc")):
        return False
    for name in names:
        with xr.open_dataset(a / folder / name) as x, xr.open_dataset(b / folder / name) as y:
            if any(not np.array_equal(x[v].values, y[v].values) for v in x.data_vars):
                return False
    return True


def reconstruct_arm(run: Path, workers: bool) -> float:
    """Wall seconds of the reconstruct stage, the series prepared ahead by workers or not."""
    from sinter4d.experiments import reconstruct as reconstruct_module
    from sinter4d.experiments.reconstruct import reconstruct_path

    floor = reconstruct_module.POOL_MIN_PIXELS
    reconstruct_module.POOL_MIN_PIXELS = floor if workers else 2**62
    try:
        return timed(lambda: reconstruct_path(run, progress=False, mrc=()))[1]
    finally:
        reconstruct_module.POOL_MIN_PIXELS = floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(QUICK))
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    from sinter4d.experiments.simulate import simulate_run

    print(f"load average at start: {os.getloadavg()}")
    print(f"data: {args.spec}; {args.repeats} repeat(s); {os.cpu_count()} cores")
    times: dict[str, list[float]] = {k: [] for k in ("sim1", "simN", "rec1", "recN")}
    equal = {"tilts": True, "recon": True}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="bench_run_cores_") as tmp:
            one, many = Path(tmp) / "serial", Path(tmp) / "workers"
            times["sim1"].append(timed(lambda: simulate_run(args.spec, one, progress=False, n_jobs=1))[1])
            times["simN"].append(timed(lambda: simulate_run(args.spec, many, progress=False, n_jobs=-1))[1])
            equal["tilts"] &= same_files(one, many, "tilts")
            times["rec1"].append(reconstruct_arm(one, workers=False))
            times["recN"].append(reconstruct_arm(many, workers=True))
            equal["recon"] &= same_files(one, many, "recon")
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"simulate, one step after another (peer): {med['sim1']:.1f} s; "
          f"steps side by side: {med['simN']:.1f} s; {med['sim1'] / med['simN']:.2f}x; files equal: {equal['tilts']}")
    print(f"reconstruct, each series in turn (peer): {med['rec1']:.1f} s; "
          f"prepared ahead: {med['recN']:.1f} s; {med['rec1'] / med['recN']:.2f}x; files equal: {equal['recon']}")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
