"""Seconds for 300 iterations of the TV reconstruction at the 256 x 256 detector size.

Geometry: 256 x 256 detector, 41 tilts (-40..40 deg, step 2), 1.04 nm pixels;
the reconstructed slab is 256 (y) x 256 (x) x ``--nz`` (z, default 128: the
slab that holds 150 nm particles on a film, not the whole 256^3 cube).
Data: a few spheres projected with :class:`ParallelProjector`, Poisson counts
at about 6 electrons per pixel.

Times ``AlternatingTV`` (the default ``reconstruct(method="tv")``) in blocks
of ``--block`` iterations, ``--repeats`` times, and prints the median time per
iteration, the 300-iteration estimate, and the split between the projector
(``A x``, ``A^T r``) and the TV/update kernels, i.e. what bounds the figure.
``--full`` also times one complete 300-iteration run. ``--method pdhg``
times Chambolle–Pock instead. Goal: under 60 s on 2 cores.

Run: ``python benchmarks/bench_tv.py [--nz 128] [--repeats 3] [--block 20] [--full]``.
Wall times are meaningful on an otherwise idle machine only: the load average
is printed so that a busy run can be recognised.
"""

from __future__ import annotations

import argparse
import os
import time

import numba
import numpy as np

from sinter4d.operators.projector import ParallelProjector
from sinter4d.pipeline.algorithms import AlternatingTV, ChambollePock
from sinter4d.pipeline.algorithms.base import step_kernel
from sinter4d.pipeline.functions import tv_gradient
from sinter4d.pipeline.reconstruct import tv_weight_rule

N = 256
H = 1.04
ANGLES = np.arange(-40, 41, 2.0)


def _data(nz: int, seed: int = 0) -> tuple[ParallelProjector, np.ndarray]:
    op = ParallelProjector((nz, N), N, voxel_size_nm=H, angles_deg=ANGLES)
    z = (np.arange(nz) - (nz - 1) / 2)[:, None, None]
    y = (np.arange(N) - (N - 1) / 2)[None, :, None]
    x = (np.arange(N) - (N - 1) / 2)[None, None, :]
    vol = np.zeros((nz, N, N), np.float32)
    r = 0.3 * nz
    for cy, cx in ((-60, -60), (-60, 60), (60, 0), (0, 0)):
        vol[(z**2 + (y - cy) ** 2 + (x - cx) ** 2) <= r * r] = 1.0
    p = op.direct(vol)
    rng = np.random.default_rng(seed)
    counts = rng.poisson(6.0 * p / (2 * r * H) + 0.3).astype(np.float32)
    return op, counts


def _time(fn) -> tuple[float, float]:
    """(wall, process CPU) seconds of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nz", type=int, default=128, help="slab thickness in voxels (default 128)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--block", type=int, default=20, help="iterations per timed block")
    ap.add_argument("--method", choices=("tv", "pdhg"), default="tv")
    ap.add_argument("--full", action="store_true", help="also time one full 300-iteration run")
    args = ap.parse_args(argv)

    print(f"threads {numba.get_num_threads()}, load average {os.getloadavg()[0]:.2f}")
    t = time.perf_counter()
    op, counts = _data(args.nz)
    print(f"set-up (projector build + data) {time.perf_counter() - t:.1f} s: {op!r}")

    def make():
        if args.method == "tv":
            return AlternatingTV(op, counts)
        return ChambollePock(op, counts, tv_weight=tv_weight_rule(counts, op))

    alg = make()
    alg.run(2)  # compile and warm up
    x = alg.x
    r = np.empty(op.range_shape, np.float32)
    w = np.empty(op.domain_shape, np.float32)
    ones = np.ones((args.nz, N), np.float32)
    parts = {
        "projector A x": lambda: op.direct(x, out=r),
        "projector A^T r": lambda: op.adjoint(r, out=w),
        "TV gradient (fused)": lambda: tv_gradient(x, w, eps=1e-3),
        "update kernel": lambda: step_kernel(x, w, ones, np.float32(0.0), True),
    }
    blocks, split = [], {k: [] for k in parts}
    for _ in range(args.repeats):  # interleaved, so that load changes hit all figures alike
        blocks.append(_time(lambda: alg.run(args.block)))
        for name, fn in parts.items():
            split[name].append(_time(fn)[0])
    wall = float(np.median([b[0] for b in blocks])) / args.block
    cpu = float(np.median([b[1] for b in blocks])) / args.block
    print(
        f"{args.method}: {wall * 1e3:.0f} ms per iteration wall, {cpu * 1e3:.0f} ms CPU "
        f"(median of {args.repeats} x {args.block})"
    )
    print(f"  300 iterations, estimated: {300 * wall:.1f} s wall")
    print("  one call of each part (median):")
    for name, ts in split.items():
        sec = float(np.median(ts))
        print(f"    {name:22s} {sec * 1e3:6.1f} ms  ({100 * sec / wall:3.0f} % of an iteration)")
    proj = float(np.median(split["projector A x"])) + float(np.median(split["projector A^T r"]))
    n_upd = 2 if args.method == "tv" else 1
    print(
        f"  bound: the projector is {100 * proj / wall:.0f} % of an iteration; the TV gradient and "
        f"{n_upd} update pass(es) the rest"
    )

    if args.full:
        alg = make()
        wall_s, cpu_s = _time(lambda: alg.run(300))
        print(f"full 300-iteration run: {wall_s:.1f} s wall, {cpu_s:.1f} s CPU (2 idle cores: ~CPU / 2)")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
