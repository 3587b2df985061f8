"""A calibration of the quick acquisition (``sinter4d calibrate``) against issue 15's 10 minutes on 2 cores.

Data: the quick spec as it ships (``experiments/quick.toml``: its specimen,
dose, tilts, microscope and pipeline settings, the TV warm start included).
The source is a run folder holding only its ``spec.json``: a calibration
needs the run's spec, not its tilt series. Each repeat runs what
``sinter4d calibrate RUN --out calibration.nc --twins N`` runs, into a fresh
temporary folder: a LocalCluster of one single-threaded worker per core, one
task per twin (simulate 3 series, reconstruct, measure, validate), then the
reading model fitted and ``calibration.nc`` written.

Prints, with the load average: for each number of twins (``--twins``,
default 2 and 6, the command's default) the median wall seconds of ``--repeats`` repeats (default 1:
one calibration of 6 twins is several minutes), the twins' summed stage
seconds (``twin_seconds``: the work), the wall time per round of as many
twins as cores, and the ratio to the goal (600 s). The wall time goes as
⌈N / cores⌉ rounds of one twin each plus the cluster's start and the fit of
the reading model (about 1 s): the scaling the issue asks for.

``--keep DIR`` keeps each calibration's ``calibration.nc`` there (as
``calibration_N<twins>_<repeat>.nc``), so the reading model of the timed run
can be reported.

Run: ``python benchmarks/bench_calibrate.py [--twins 2 6] [--repeats 1] [--workers 2] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import xarray as xr

from sinter4d.experiments.calibrate import calibrate_run
from sinter4d.experiments.spec import load_spec
from sinter4d.io.atomic import write_text_atomic
from sinter4d.runfolder import RunFolder

from _common import QUICK

GOAL_S = 600.0


def source_run(root: Path) -> Path:
    """A run folder with the quick spec's ``spec.json`` and nothing else."""
    run = RunFolder(root / "quick")
    run.path.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run.spec, load_spec(QUICK).to_json())
    return run.path


def one_calibration(n_twins: int, n_workers: int, keep: Path | None = None) -> tuple[float, float]:
    """Wall seconds and the twins' summed stage seconds of one calibration of ``n_twins`` twins.

    With ``keep`` its ``calibration.nc`` is copied to that path.
    """
    root = Path(tempfile.mkdtemp(prefix="sinter4d_bench_calibrate_"))
    try:
        out = root / "calibration.nc"
        t0 = time.perf_counter()
        calibrate_run(source_run(root), out, n_twins=n_twins, n_workers=n_workers, progress=False)
        wall = time.perf_counter() - t0
        with xr.open_dataset(out) as ds:
            work = float(ds.attrs.get("twin_seconds", float("nan")))
        if keep is not None:
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out, keep)
        return wall, work
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--twins", type=int, nargs="+", default=[2, 6])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep each calibration.nc in")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}; {args.workers} workers")
    print(f"{'twins':>5} {'wall s':>8} {'twin stage s':>13} {'rounds':>6} {'s / round':>9} {'goal 600 s':>11}")
    for n in args.twins:
        runs = [one_calibration(n, args.workers, None if args.keep is None else args.keep / f"calibration_N{n}_{r}.nc")
                for r in range(args.repeats)]
        wall = statistics.median(w for w, _ in runs)
        work = statistics.median(s for _, s in runs)
        rounds = math.ceil(n / args.workers)
        print(f"{n:>5} {wall:>8.1f} {work:>13.1f} {rounds:>6} {wall / rounds:>9.1f} {wall / GOAL_S:>10.2f}x")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
