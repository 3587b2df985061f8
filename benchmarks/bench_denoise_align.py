"""The per-image stages of one tilt series: BM3D per frame, its level's search, the alignment.

Data: a tilt-series file (``tilts/tNN.nc`` of a run; at the paper's size,
series 0 of ``experiments/paper_cu_350c.toml``: 1024² px, 41 tilts). Prints,
with the load average and both wall and CPU seconds (CPU is what a shared
machine distorts least):

* ``bm3d``: median seconds of BM3D on ``--frames`` frames, the paper's
  ``np`` profile with both stages against ``lc`` with hard thresholding
  alone (the quick spec's), at the level :func:`estimate_sigma_psd` gives;
* ``sigma``: the PSNR search of the BM3D level against the reference, on the
  whole frame (the paper's protocol) against 3 x 3 tiles of
  ``--tile`` px (``sigma_tile_px``, the default), and the levels both chose;
* ``align``: the whole series' Mattes alignment with every pixel sampled
  against ``--sampling`` of them (``mattes_sampling``), with FFT
  cross-correlation as the peer, and each one's RMS distance from the
  first's shifts and from the file's ``true_shift_y/x``.

Run: ``python benchmarks/bench_denoise_align.py TILTS.nc [--parts bm3d sigma align]
[--frames 3] [--tile 128] [--sampling 0.1]``. At the paper's size the
whole-frame search alone takes minutes.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import xarray as xr

from sinter4d.pipeline.align import align_translations
from sinter4d.pipeline.series import check_tilt_series, reference_index, remove_dark_level
from sinter4d.pipeline.denoise import _denoise_one, denoise_bm3d, estimate_sigma_psd, select_sigma_psnr
from sinter4d.pipeline.settings import AlignSettings, DenoiseSettings

from _common import timed


def bench_bm3d(images: np.ndarray, frames: int) -> None:
    picks = np.linspace(0, len(images) - 1, frames).round().astype(int)
    rows = {}
    for name, settings in (("np + all (paper)", DenoiseSettings()),
                           ("lc + hard", DenoiseSettings(bm3d_profile="lc", bm3d_stages="hard"))):
        sigma = estimate_sigma_psd(images[len(images) // 2], settings)
        runs = [timed(lambda k=k: _denoise_one(images[k], sigma, settings))[1:] for k in picks]
        rows[name] = np.median(np.array(runs), axis=0)
        print(f"bm3d {name}: {rows[name][0]:.1f} s wall, {rows[name][1]:.1f} s CPU per {images.shape[1]}x{images.shape[2]} frame")
    a, b = rows.values()
    print(f"bm3d ratio np+all / lc+hard: {a[1] / b[1]:.1f}x CPU")


def bench_sigma(ds: xr.Dataset, images: np.ndarray, angles: np.ndarray, tile: int) -> None:
    k = reference_index(ds, angles)
    reference = remove_dark_level(ds["reference"].values, ds)
    settings = DenoiseSettings()
    found = {}
    for name, t in (("whole frame (paper)", None), (f"3x3 tiles of {tile} px", tile)):
        sigma, wall, cpu = timed(lambda t=t: select_sigma_psnr(images[k], reference, settings.model_copy(update={"sigma_tile_px": t})))
        found[name] = (sigma, wall, cpu)
        print(f"sigma search {name}: sigma_psd {sigma:.4f}, {wall:.1f} s wall, {cpu:.1f} s CPU")
    (s0, _, c0), (s1, _, c1) = found.values()
    print(f"sigma search ratio whole / tiles: {c0 / c1:.1f}x CPU; levels differ by {100 * (s1 / s0 - 1):+.1f} %")


def bench_align(ds: xr.Dataset, images: np.ndarray, angles: np.ndarray, sampling: float) -> None:
    settings = DenoiseSettings(bm3d_profile="lc", bm3d_stages="hard")
    denoised = denoise_bm3d(images, settings, sigma_psd=estimate_sigma_psd(images[len(images) // 2], settings))
    truth = np.stack([ds["true_shift_y"].values, ds["true_shift_x"].values], axis=1) if "true_shift_y" in ds else None
    first = None
    for name, align in (("mattes, every pixel (paper)", AlignSettings(align_method="mattes")),
                        (f"mattes, {sampling:g} of the pixels", AlignSettings(align_method="mattes", mattes_sampling=sampling)),
                        ("xcorr", AlignSettings(align_method="xcorr"))):
        shifts, wall, cpu = timed(lambda a=align: align_translations(denoised, angles, a))
        first = shifts if first is None else first
        line = f"align {name}: {wall:.1f} s wall, {cpu:.1f} s CPU; RMS from the first {np.sqrt(np.mean((shifts - first) ** 2)):.3f} px"
        if truth is not None:
            line += f", from the truth {np.sqrt(np.mean((shifts - truth) ** 2)):.3f} px"
        print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("series")
    parser.add_argument("--parts", nargs="+", default=["bm3d", "sigma", "align"], choices=["bm3d", "sigma", "align"])
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--sampling", type=float, default=0.1)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    ds = xr.open_dataset(args.series)
    images, angles, _ = check_tilt_series(ds)
    if "bm3d" in args.parts:
        bench_bm3d(images, args.frames)
    if "sigma" in args.parts:
        bench_sigma(ds, images, angles, args.tile)
    if "align" in args.parts:
        bench_align(ds, images, angles, args.sampling)


if __name__ == "__main__":
    main()
