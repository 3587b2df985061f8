"""One paper-size tilt series through the chain: each stage's time, peak memory, Dice against the truth.

Not a ``bench_*`` script (``make bench`` does not run it): at the paper's size
(1024² px, 41 tilts) it takes tens of minutes and several GB. Data: a
simulated tilt file with its truth (``true_label``); without one, series 0 of
``experiments/paper_cu_350c.toml`` with ``--seed`` (default the spec's), simulated
once into ``$TMPDIR/sinter4d_paper_series`` (about 20 min on 2 cores)::

    python benchmarks/paper_series.py --seed 101
    python benchmarks/paper_series.py TILTS.nc --set support_margin_nm=none

The pipeline settings are the spec's ``[pipeline]`` (``--spec``, default the
paper's) with ``--set KEY=VALUE`` overrides (TOML values; ``none`` removes a
key). Prints one JSON line: the settings changed, wall seconds of each stage
and in all, CPU seconds, the load average before and after, the process's peak
RSS at the end of the chain (the Dice's 3D FFTs, after it, take several times
more), the rows reconstructed, and the Dice of the binary against the truth
after the best integer translation, as ``sinter4d validate`` scores it
(``validation.validation_dice``). Figures: docs/validation.md ("Speed at the
paper's scale").
"""

from __future__ import annotations

import argparse
import json
import os
import time
import tomllib
from pathlib import Path

import numpy as np
import xarray as xr

from sinter4d.experiments.reconstruct_dask import peak_rss_bytes
from sinter4d.io.toml import read_toml
from sinter4d.pipeline.chain import process_tilt_series
from sinter4d.pipeline.settings import PipelineSpec
from sinter4d.runfolder import RunFolder
from sinter4d.specs import parse
from sinter4d.validation import truth_on_grid, validation_dice

from _common import EXPERIMENTS, cached_run, first_series

PAPER = EXPERIMENTS / "paper_cu_350c.toml"


def paper_series(seed: int | None) -> Path:
    """Series 0 of the paper spec (with ``seed``), simulated once: its ``tilts/t00.nc``."""
    doc = first_series(read_toml(PAPER))
    if seed is not None:
        doc["seed"] = seed
    return RunFolder(cached_run(doc, "sinter4d_paper_series", f"seed{doc['seed']}")).tilt_files()[0]


def _settings(spec: Path, overrides: list[str]) -> tuple[PipelineSpec, dict]:
    pipeline = read_toml(spec)["pipeline"]
    changed = {}
    for item in overrides:
        key, _, text = item.partition("=")
        value = None if text.strip().lower() == "none" else tomllib.loads(f"v = {text}")["v"]
        changed[key] = value
        if value is None:
            pipeline.pop(key, None)
        else:
            pipeline[key] = value
    return parse(PipelineSpec, pipeline, source=f"{spec} [pipeline]"), changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tilts", type=Path, nargs="?", help="a simulated tilt file with true_label "
                        "(default: series 0 of the paper spec, simulated once)")
    parser.add_argument("--seed", type=int, default=None, help="the paper spec's seed when simulating")
    parser.add_argument("--spec", type=Path, default=PAPER, help="experiment spec whose [pipeline] is used")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a [pipeline] override")
    args = parser.parse_args(argv)
    settings, changed = _settings(args.spec, args.set)
    tilts = args.tilts or paper_series(args.seed)
    load0 = os.getloadavg()[0]
    with xr.open_dataset(tilts) as ds:
        ds = ds.load()
    t0, c0 = time.perf_counter(), time.process_time()
    out = process_tilt_series(ds, settings, source=str(tilts))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = peak_rss_bytes()  # the chain's; the Dice's FFTs below take several times more
    truth = truth_on_grid(ds.true_label.values, ds.z.values, out.z.values)
    dice = validation_dice(out.binary.values.astype(bool), truth, voxel_size_nm=float(out.attrs["pixel_size_nm"]))
    seconds = {k[len("seconds_"):]: v for k, v in out.attrs.items() if k.startswith("seconds_")}
    print(json.dumps({
        "tilts": str(tilts), "changed": changed, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
        "seconds": seconds, "peak_rss_gb": round(peak / 2**30, 2),
        "load_before_after": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "support_rows": [int(v) for v in np.atleast_1d(out.attrs["support_rows"])],
        "dice": round(float(dice), 4),
    }), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
