"""Warm start: registration of the previous volume, and solvers started from it (issue 16)."""

import numpy as np
import pytest
import xarray as xr
from _spheres import LIMITED, sphere_volume

from sinter4d.errors import InputError, SpecError
from sinter4d.experiments.reconstruct import previous_volume
from sinter4d.operators.projector import ParallelProjector
from sinter4d.pipeline.algorithms import SIRT, AlternatingTV
from sinter4d.pipeline.chain import PreparedSeries
from sinter4d.pipeline.reconstruct import reconstruct
from sinter4d.pipeline.settings import PipelineSpec
from sinter4d.pipeline.warm_start import prepared_start, register_volume, shift_volume
from sinter4d.specs import parse

H = 2.0  # nm per voxel
NZ, N = 24, 48
SPHERES = [(-2, -8, -9, 6), (1, 9, 6, 7), (-3, 5, -10, 5)]  # (cz, cy, cx, r) voxels from the middle


def _moved(shift, grow=0.0):
    """The spheres moved by ``shift`` (dz, dy, dx) voxels; the second one ``grow`` voxels larger."""
    return sphere_volume(NZ, N, [(cz + shift[0], cy + shift[1], cx + shift[2], r + (grow if i == 1 else 0))
                                 for i, (cz, cy, cx, r) in enumerate(SPHERES)])


@pytest.fixture(scope="module")
def op():
    return ParallelProjector((NZ, N), N, voxel_size_nm=H, angles_deg=LIMITED)


def test_register_volume_recovers_a_known_shift(op):
    shift = (1.6, -2.3, 3.4)
    data = 1.3 * op.direct(_moved(shift))  # the same spheres, drawn anew where they moved, brighter
    got = register_volume(_moved((0, 0, 0)), data, LIMITED, voxel_size_nm=H)
    # voxelised spheres put their centroid within ~0.1 voxel of the drawn centre
    np.testing.assert_allclose(got, shift, atol=0.3)


def test_shift_volume_moves_content_and_lets_zeros_in():
    v = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    got = shift_volume(v, (1, 0, -2))
    np.testing.assert_array_equal(got[1:, :, :-2], v[:-1, :, 2:])
    assert not got[0].any() and not got[:, :, -2:].any()
    np.testing.assert_array_equal(shift_volume(v, (0, 0, 0)), v)
    with pytest.raises(InputError, match="shift_px"):
        shift_volume(v, (1, 2))


@pytest.mark.parametrize("solver", [SIRT, AlternatingTV])
def test_a_solver_started_at_the_solution_stays_there(op, solver):
    truth = _moved((0, 0, 0))
    alg = solver(op, op.direct(truth), initial=truth)
    np.testing.assert_array_equal(alg.run(5), truth)  # noise-free data: the residual and so every step is 0


def test_a_warm_start_fits_in_far_fewer_iterations(op):
    # series k: the spheres of series k - 1 moved rigidly, one of them grown (the neck's growth)
    previous, current = _moved((0, 0, 0)), _moved((1.0, 2.0, -3.0), grow=1.0)
    b = op.direct(current)

    def error(x):
        return float(np.linalg.norm(x - current) / np.linalg.norm(current))

    alg = AlternatingTV(op, b)
    cold = [error(alg.run(n).copy()) for n in (10, 40)]  # after 10 and 50 iterations
    shift = register_volume(previous, b, LIMITED, voxel_size_nm=H)
    np.testing.assert_allclose(shift, (1.0, 2.0, -3.0), atol=0.3)
    initial = shift_volume(previous, shift)
    warm = error(AlternatingTV(op, b, initial=initial).run(10))
    unregistered = error(AlternatingTV(op, b, initial=previous).run(10))
    # 10 warm iterations do better than 50 cold ones (measured 0.333 against 0.348; 0.57 after 10 cold),
    # and the registration is what makes them (0.49 from the unregistered volume)
    assert warm < cold[1] < cold[0]
    assert warm < unregistered


def test_reconstruct_takes_an_initial_volume(op):
    truth = _moved((0, 0, 0))
    b = op.direct(truth)
    got = reconstruct(b, LIMITED, method="sirt", iterations=3, slab_nz=NZ, voxel_size_nm=H, initial=truth)
    np.testing.assert_array_equal(got, truth)
    with pytest.raises(InputError, match="fbp' takes no initial"):
        reconstruct(b, LIMITED, method="fbp", slab_nz=NZ, voxel_size_nm=H, initial=truth)
    with pytest.raises(InputError, match="initial must have the operator's domain shape"):
        reconstruct(b, LIMITED, method="tv", slab_nz=NZ + 2, voxel_size_nm=H, initial=truth)


def _prepared(images):
    n = len(LIMITED)
    return PreparedSeries(images, LIMITED, H, np.zeros((n, 2)), 0.0, np.nan, {})


def test_prepared_start_registers_the_previous_volume_or_refuses_another_grid(op):
    settings = PipelineSpec(warm_start=True, slab_thickness_nm=NZ * H)
    prep = _prepared(op.direct(_moved((0.0, 1.5, 2.0))))
    initial, attrs = prepared_start(prep, _moved((0, 0, 0)), settings)
    np.testing.assert_allclose(attrs["warm_start_shift_px"], (0.0, 1.5, 2.0), atol=0.3)
    assert initial.shape == (NZ, N, N) and initial.dtype == np.float32
    assert prepared_start(prep, None, settings) == (None, {})
    with pytest.raises(InputError, match=r"previous volume is \(20, 48, 48\), this series' slab is \(24, 48, 48\)"):
        prepared_start(prep, np.zeros((20, N, N), np.float32), settings)


def test_previous_volume_is_the_series_before_when_warm(tmp_path):
    outs = [tmp_path / f"t0{k}.nc" for k in range(3)]
    xr.Dataset({"volume": (("z", "y", "x"), np.full((2, 3, 4), 7.0))}).to_netcdf(outs[0])
    warm = PipelineSpec(warm_start=True)
    np.testing.assert_array_equal(previous_volume(outs, 1, warm), np.full((2, 3, 4), 7.0, np.float32))
    assert previous_volume(outs, 0, warm) is None  # the first series starts cold
    assert previous_volume(outs, 2, warm) is None  # series 1 not written: cold
    assert previous_volume(outs, 1, PipelineSpec()) is None  # warm start off


@pytest.mark.parametrize(
    ("doc", "match"),
    [({"warm_start": True, "method": "fbp"}, r"p\.toml: warm_start: true needs an iterative method"),
     ({"warm_iterations": 0}, r"p\.toml: warm_iterations: "),
     ({"warm_start": "yes"}, r"p\.toml: warm_start: must be true or false")],
)
def test_bad_warm_start_settings_are_one_line(doc, match):
    with pytest.raises(SpecError, match=match):
        parse(PipelineSpec, doc, source="p.toml")


def test_a_run_reconstructed_warm_starts_each_series_from_the_one_before(tiny_run, tmp_path):
    import shutil

    from sinter4d.experiments.reconstruct import reconstruct_path
    from sinter4d.runfolder import RunFolder

    run = RunFolder(tmp_path / "run")
    shutil.copytree(tiny_run / "tilts", run.path / "tilts")
    shutil.copy(tiny_run / "spec.json", run.path / "spec.json")
    fast = {"denoise": False, "axis_rotation": 3.0}  # the wiring is under test, not BM3D or the axis search
    outs = reconstruct_path(run.path, overrides={"warm_start": True, "warm_iterations": 4, **fast}, progress=False,
                            n_jobs=1, mrc=())
    assert len(outs) == 2
    with xr.open_dataset(outs[0]) as first, xr.open_dataset(outs[1]) as second:
        assert first.attrs["warm_start"] == 1 and "warm_start_shift_px" not in first.attrs  # nothing before it
        assert second.attrs["warm_iterations"] == 4 and second.attrs["warm_start_shift_px"].shape == (3,)
        # the cluster barely moves between the tiny run's series: the registration finds under a few pixels
        assert np.all(np.abs(second.attrs["warm_start_shift_px"]) < 4)


def test_series_prepared_ahead_by_workers_give_the_files_of_one_process(tiny_run, tmp_path, monkeypatch):
    # the warm chain reconstructed in this process, its series prepared (BM3D, turn, alignment) by two workers
    import shutil

    from sinter4d.experiments import reconstruct
    from sinter4d.experiments.reconstruct import reconstruct_path

    monkeypatch.setattr(reconstruct, "POOL_MIN_PIXELS", 0)  # the tiny series are below it

    settings = {"warm_start": True, "warm_iterations": 4, "bm3d_profile": "lc", "bm3d_stages": "hard"}
    files = {}
    for jobs in (1, 2):
        run = tmp_path / f"jobs{jobs}"
        shutil.copytree(tiny_run / "tilts", run / "tilts")
        shutil.copy(tiny_run / "spec.json", run / "spec.json")
        files[jobs] = reconstruct_path(run, overrides=settings, progress=False, n_jobs=jobs, mrc=())
    assert len(files[1]) == 2
    for one, two in zip(files[1], files[2]):
        with xr.open_dataset(one) as a, xr.open_dataset(two) as b:
            assert a.attrs["warm_start"] == 1 and a.attrs["denoise"] == 1
            for name in a.data_vars:
                np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
            same = {k for k in a.attrs if not k.startswith("seconds_") and k != "source"}
            assert {k: str(a.attrs[k]) for k in same} == {k: str(b.attrs[k]) for k in same}
