"""Shared fixtures: paths of the repository's declarative inputs, and a tiny run made by the real runner."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The tiny run's experiment spec: two cores, 2 steps, 128² px, 9 tilts, 30 PDHG iterations, a short fit.
TINY_SPEC = """\
name = "tiny"
description = "two cores <tiny>"
seed = 4

[phantom]
n_cores = 2

[sintering]
model = "{root}/models/cu_shell_reservoir.toml"

[heating]
pt_time_s = [0, 41]
temperature_C = [372, 370]

[acquisition]
image_pixels = 512
pixel_size_nm = 1.04
bin = 4
tilt_step_deg = 10.0

[pipeline]
bm3d_profile = "lc"
bm3d_stages = "hard"
sigma_psd = 3.0
denoise_strength = 0.35
method = "pdhg"
iterations = 30

[fit]
spec = "{root}/assimilation/quick.toml"
walkers = 16
steps = 80
burn_in = 20
thin = 2
"""


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository root (holds experiments/, models/, assimilation/)."""
    return ROOT


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run folder made once per session by the real runner, every stage but the report.

    :func:`sinter4d.experiments.run.run_experiment` on :data:`TINY_SPEC`
    (two cores, two steps, 128² px, nine tilts from -40° to 40°, BM3D at a
    fixed level, 30 PDHG iterations, a 80-step fit): ``spec.json``,
    ``run.json``, ``run.log``, ``truth.nc``, ``tilts/``, ``recon/``,
    ``metrics.nc``, ``validation.nc``, their figures and ``fit/``, as the
    producers write them today.

    Shared by every test of the session: treat it as READ-ONLY. A test that
    writes into a run folder (the report writes ``report.html``) or removes
    files copies it first (``shutil.copytree(tiny_run, tmp_path / "run")``).
    """
    from sinter4d.experiments.run import run_experiment
    from sinter4d.runfolder import STAGE_NAMES

    folder = tmp_path_factory.mktemp("tiny_run")
    spec = folder / "tiny.toml"
    spec.write_text(TINY_SPEC.format(root=ROOT.as_posix()))
    stages = tuple(s for s in STAGE_NAMES if s != "report")
    result = run_experiment(spec, folder / "run", stages=stages, progress=False, n_jobs=1)
    assert result.failed is None, result.stages
    return folder / "run"


@pytest.fixture(scope="session")
def two_spheres():
    """Two touching spheres of radius 6.5 voxels side by side along x, on a (16, 32, 32) grid of 4 nm voxels.

    Returns ``(label, (z, y, x))``: the label volume (uint8, labels 1 and 2)
    and the centred coordinates of the grid (nm). Read-only.
    """
    import numpy as np

    shape, voxel = (16, 32, 32), 4.0
    zz, yy, xx = np.indices(shape, dtype=float)
    cz, cy, cx = ((n - 1) / 2 for n in shape)
    label = np.zeros(shape, dtype=np.uint8)
    for value, dx in ((1, -6.0), (2, 6.0)):
        label[(zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx - dx) ** 2 <= 6.5**2] = value
    label.flags.writeable = False
    return label, tuple((np.arange(n) - (n - 1) / 2) * voxel for n in shape)
