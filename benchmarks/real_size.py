"""Peak memory and wall time of ``sinter4d import`` and ``sinter4d reconstruct`` on a real-size series.

Not a ``bench_*`` script (``make bench`` does not run it: it takes minutes and
several GB). It writes a 1024² × 41 tilt series as a microscope would (an
``int16`` MRC with a large negative offset, ±60° in 3° steps, 1.04 nm pixels,
a few spheres projected analytically about the y axis, Gaussian noise), then
runs the two commands of the CLI, each under ``/usr/bin/time -v``, and prints
the wall time and the maximum resident set size of each::

    python benchmarks/real_size.py --iterations 20 --no-denoise
    python benchmarks/real_size.py --size 512 --tilts 41   # a smaller try

The figures measured are in docs/validation.md ("Timings").
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

OFFSET = -31_900  # the vacuum level of a signed detector range, as in ETSpy's needle


def write_series(folder: Path, *, size: int, tilts: int, pixel_nm: float, seed: int = 0) -> tuple[Path, Path]:
    """An int16 MRC stack ``(tilts, size, size)`` and its ``.rawtlt``; returns both paths."""
    import mrcfile

    rng = np.random.default_rng(seed)
    angles = np.linspace(-60.0, 60.0, tilts)
    half = size * pixel_nm / 2
    # spheres (x, y, z, r) in nm, inside the field of view and a 200 nm slab
    spheres = [(rng.uniform(-0.5, 0.5) * half, rng.uniform(-0.6, 0.6) * half, rng.uniform(-40, 40),
                rng.uniform(40, 80)) for _ in range(6)]
    coord = (np.arange(size) - (size - 1) / 2) * pixel_nm
    stack = np.empty((tilts, size, size), np.int16)
    for k, theta in enumerate(np.deg2rad(angles)):
        image = np.zeros((size, size), np.float32)
        for x0, y0, z0, r in spheres:
            u = x0 * np.cos(theta) + z0 * np.sin(theta)  # the sphere's centre across the tilt axis
            d2 = (coord[None, :] - u) ** 2 + (coord[:, None] - y0) ** 2
            image += 2 * np.sqrt(np.clip(r**2 - d2, 0, None))  # chord length through the sphere (nm)
        image = image * 40.0 + rng.normal(0.0, 60.0, image.shape)
        stack[k] = np.clip(np.rint(image + OFFSET), -32768, 32767).astype(np.int16)
    stack_path, angles_path = folder / "series.mrc", folder / "series.rawtlt"
    with mrcfile.new(stack_path, overwrite=True) as mrc:
        mrc.set_data(stack)
        mrc.voxel_size = pixel_nm * 10.0  # angstrom
    angles_path.write_text("".join(f"{a:.2f}\n" for a in angles))
    return stack_path, angles_path


def timed(argv: list[str]) -> tuple[float, float]:
    """Run ``argv`` under ``/usr/bin/time -v``; its wall time (s) and maximum RSS (GB)."""
    proc = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{proc.stderr}")
    rss_kb = float(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", proc.stderr).group(1)
    seconds = sum(float(part) * 60**i for i, part in enumerate(reversed(wall.split(":"))))
    return seconds, rss_kb / 1024**2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="image edge (px)")
    parser.add_argument("--tilts", type=int, default=41)
    parser.add_argument("--pixel-size", type=float, default=1.04, help="nm")
    parser.add_argument("--iterations", type=int, default=None, help="TV iterations (default: the pipeline's)")
    parser.add_argument("--no-denoise", action="store_true", help="skip BM3D")
    parser.add_argument("--folder", default=None, help="where to write the files (default: a temporary folder, removed)")
    parser.add_argument("--skip-reconstruct", action="store_true")
    args = parser.parse_args(argv)

    folder = Path(args.folder or tempfile.mkdtemp(prefix="sinter4d_real_size_"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        stack, angles = write_series(folder, size=args.size, tilts=args.tilts, pixel_nm=args.pixel_size)
        exe = [sys.executable, "-c", "import sys; from sinter4d.cli import main; sys.exit(main())"]
        tilts = folder / "t01.nc"
        seconds, gb = timed([*exe, "import", str(stack), "--angles", str(angles), "--out", str(tilts)])
        print(f"import      {args.tilts} x {args.size}^2: {seconds:7.1f} s, peak RSS {gb:.2f} GB", flush=True)
        if not args.skip_reconstruct:
            cmd = [*exe, "reconstruct", str(tilts), "--out", str(folder / "r01.nc"), "-q"]
            if args.iterations is not None:
                cmd += ["--iterations", str(args.iterations)]
            if args.no_denoise:
                cmd.append("--no-denoise")
            seconds, gb = timed(cmd)
            print(f"reconstruct {' '.join(cmd[3:])}: {seconds:7.1f} s, peak RSS {gb:.2f} GB", flush=True)
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
