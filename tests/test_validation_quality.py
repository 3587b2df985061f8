"""The reconstruction chain on a simulated series at the paper's dose.

250 e/nm², ±40° in 2° steps, 4.16 nm pixels, with drift and a tilt-axis
offset left for the pipeline to find (docs/design.md; issue "Reconstruction
pipeline", Quality). The series is projected on a voxel grid twice finer than
the pixels, so the reconstruction's projector is not the one that made the
data (no inverse crime). Each test runs on two microscopes: the spec's
realistic one (probe and beam broadening, stage errors with a 3 deg in-plane
axis rotation, a detector with dark level, gain, read and row noise) and the
ideal one (those three off), so the cost of the microscope is in view. The
figures are printed for the closing note (docs/validation.md, "Reconstruction
quality").
"""

import numpy as np
import pytest

from sinter4d.experiments import parse_spec, plan_simulation
from sinter4d.experiments.simulate import tilt_series_dataset
from sinter4d.pipeline import PipelineSpec, prepare_tilt_series, reconstruct_and_binarize
from sinter4d.validation import registered_dice, rigid_residual, truth_on_grid, validation_dice

SPEC = {
    "name": "pipeline-quality",
    "seed": 11,
    "phantom": {"n_cores": 3},
    "heating": {"pt_time_s": [0, 5, 12, 17, 22, 27], "temperature_C": [372, 370, 370, 370, 370, 372]},
    "acquisition": {
        "image_pixels": 640, "pixel_size_nm": 1.04, "bin": 4, "oversample": 2,
        "axis_offset_px": 2.6, "drift_step_sd_nm": 3.0,
    },
}


IDEAL = {"probe": {"enabled": False}, "stage": {"enabled": False}, "detector": {"enabled": False}}
#: Dice(TV) each microscope must reach. The issue's target is 0.90; the realistic microscope reaches it with
#: no margin (0.90003 on this seed, docs/validation.md: the stage's tilt-angle errors and rotation drift are not
#: corrected), so its floor stays 0.88.
DICE_TV = {"ideal": 0.90, "realistic": 0.88}


@pytest.fixture(scope="module", params=["realistic", "ideal"])
def series(root, request):
    doc = dict(SPEC, acquisition=dict(SPEC["acquisition"], **(IDEAL if request.param == "ideal" else {})))
    spec = parse_spec(doc)
    plan = plan_simulation(spec, root / "experiments" / "quick.toml")
    ds = tilt_series_dataset(plan, 5)
    prep = prepare_tilt_series(ds, PipelineSpec(bm3d_profile="lc"))
    return ds, prep, request.param


def test_shifts_match_the_drift(series):
    ds, prep, microscope = series
    true = np.stack([ds.true_shift_y.values, ds.true_shift_x.values], axis=1)
    err = prep.shifts_px - true
    residual, _ = rigid_residual(err[:, 1], ds.tilt_angle.values)
    rms_y = float(np.sqrt(np.mean(err[:, 0] ** 2)))
    rms_x = float(np.sqrt(np.mean(residual**2)))
    print(f"shift RMS error: y {rms_y:.3f} px, x {rms_x:.3f} px (after the unobservable rigid part)")
    assert rms_y <= 0.5 and rms_x <= 0.5


def test_tilt_axis_within_one_pixel(series):
    ds, prep, microscope = series
    err_x = prep.shifts_px[:, 1] - ds.true_shift_x.values
    _, (_, _, c) = rigid_residual(err_x, ds.tilt_angle.values)
    expected = ds.attrs["true_axis_offset_px"] - c
    print(f"tilt axis: found {prep.axis_offset_px:.2f} px, true {ds.attrs['true_axis_offset_px']:.2f} px "
          f"(aligned frame {expected:.2f} px)")
    assert abs(prep.axis_offset_px - expected) <= 1.0


def test_tv_beats_sirt_beats_fbp_and_reaches_the_dice_target(series):
    ds, prep, microscope = series
    scores = {}
    for method, iterations in (("fbp", 1), ("sirt", 100), ("tv", 300)):
        _, binary, _ = reconstruct_and_binarize(prep, PipelineSpec(method=method, iterations=iterations))
        nz = binary.shape[0]
        z = (np.arange(nz) - (nz - 1) / 2) * prep.pixel_size_nm
        truth = truth_on_grid(ds.true_label.values, ds.z.values, z)
        scores[method], _ = registered_dice(binary, truth)
    print(f"{microscope} microscope, Dice against the true cores: " + ", ".join(f"{m} {d:.3f}" for m, d in scores.items()))
    assert scores["tv"] >= DICE_TV[microscope]
    assert scores["tv"] > scores["sirt"] > scores["fbp"]


@pytest.mark.parametrize(("voxel_nm", "expected"), [(1.04, 1.0), (4.16, None)])
def test_validation_dice_registers_a_rigid_offset_up_to_fifty_nm(voxel_nm, expected):
    # 18 voxels along z: 19 nm at the paper's voxels (registered), 75 nm at the quick spec's (beyond the cap)
    z, y, x = np.mgrid[:64, :40, :40]
    truth = (z - 24) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 <= 10**2
    binary = np.roll(truth, 18, axis=0)
    score = validation_dice(binary, truth, voxel_size_nm=voxel_nm)
    if expected is not None:
        assert score == pytest.approx(expected)
    else:  # at most ceil(50 / 4.16) = 13 voxels: 5 voxels apart, two spheres of radius r = 10 overlap by
        # 1 - 3d/4r + d^3/16r^3 of their volume (closed form), d = 5
        assert score == pytest.approx(1 - 3 * 5 / 40 + 5**3 / (16 * 10**3), abs=0.02)
