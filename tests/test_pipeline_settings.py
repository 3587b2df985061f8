"""Pipeline settings: the [pipeline] keys, the stages' views of them, what a reconstruction recorded."""

from __future__ import annotations

import numpy as np
import pytest

from sinter4d.errors import SpecError
from sinter4d.pipeline.settings import (
    DEFAULT_WARM_ITERATIONS,
    AlignSettings,
    BinarizeSettings,
    DenoiseSettings,
    PipelineSpec,
    ReconstructionSettings,
    recorded_settings,
)
from sinter4d.specs import parse

# The [pipeline] keys of experiments/*.toml and spec.json, in their order.
KEYS = [
    "denoise", "psd", "anscombe", "bm3d_profile", "bm3d_stages", "sigma_psd", "denoise_strength", "sigma_tile_px",
    "denoise_margin_nm", "align_method", "axis_rotation", "axis_rotation_snap_deg", "axis_search_px", "axis_refine", "feature_radius_nm",
    "mattes_sampling",
    "method", "iterations", "tv_weight", "tol", "warm_start", "warm_iterations", "slab_thickness_nm", "slab_z_centre_nm",
    "support_margin_nm", "binarize_radius_nm", "binarize_level",
]


def test_keys_and_the_papers_defaults():
    assert list(PipelineSpec.model_fields) == KEYS
    paper = PipelineSpec()
    assert paper.model_dump() == {
        "denoise": True, "psd": "g4", "anscombe": False, "bm3d_profile": "np", "bm3d_stages": "all",
        "sigma_psd": None, "denoise_strength": 1.0, "sigma_tile_px": 128, "denoise_margin_nm": None,
        "align_method": "xcorr", "axis_rotation": "auto",
        "axis_rotation_snap_deg": 1.0, "axis_search_px": 20.0, "axis_refine": "none", "feature_radius_nm": (35.0, 90.0),
        "mattes_sampling": 1.0, "method": "tv", "iterations": 300, "tv_weight": None, "tol": None, "warm_start": False,
        "warm_iterations": DEFAULT_WARM_ITERATIONS, "slab_thickness_nm": 360.0,
        "slab_z_centre_nm": 0.0, "support_margin_nm": None, "binarize_radius_nm": 4.0, "binarize_level": 1.0,
    }


def test_a_pipeline_spec_is_every_stages_settings():
    spec = PipelineSpec(bm3d_profile="lc", align_method="mattes", method="fbp", binarize_radius_nm=2.0)
    for stage in (DenoiseSettings, AlignSettings, ReconstructionSettings, BinarizeSettings):
        assert isinstance(spec, stage)
    # each stage owns its keys, and together they are the spec's
    owned = [k for stage in (DenoiseSettings, AlignSettings, ReconstructionSettings, BinarizeSettings)
             for k in stage.model_fields]
    assert owned == KEYS


@pytest.mark.parametrize(
    ("doc", "match"),
    [({"psd": "pink"}, r"p\.toml: psd: "), ({"iterations": 0}, r"p\.toml: iterations: "),
     ({"speed": 1}, r"p\.toml: speed: unknown key"), ({"denoise_strength": 0.0}, r"p\.toml: denoise_strength: ")],
)
def test_bad_keys_are_one_line(doc, match):
    with pytest.raises(SpecError, match=match):
        parse(PipelineSpec, doc, source="p.toml")


def test_settings_are_frozen():
    with pytest.raises(ValueError):
        PipelineSpec().method = "fbp"


def test_applied_level():
    assert DenoiseSettings(sigma_psd=4.0, denoise_strength=0.25).applied_sigma_psd == 1.0
    assert PipelineSpec(denoise_strength=0.25).applied_sigma_psd is None


def test_recorded_settings_precedence():
    attrs = {"method": np.str_("pdhg"), "iterations": np.int64(100), "denoise": np.int64(1),
             "denoise_stages": "hard", "denoise_sigma_psd": np.float64(2.5), "denoise_strength": np.float64(0.35)}
    spec = {"method": "tv", "bm3d_profile": "lc", "bm3d_stages": "all", "slab_thickness_nm": 200.0, "retired_key": 1}
    got = recorded_settings(attrs, spec)
    assert (got.method, got.iterations, got.bm3d_stages) == ("pdhg", 100, "hard")  # the file over the spec
    assert (got.bm3d_profile, got.slab_thickness_nm) == ("lc", 200.0)  # the spec over the defaults
    assert (got.psd, got.align_method) == ("g4", "xcorr")  # the defaults
    assert got.sigma_psd == 2.5 and got.applied_sigma_psd == pytest.approx(0.875)


def test_recorded_settings_without_a_level():
    # NaN: the series was not denoised; a level in the spec alone is not what BM3D ran at
    off = recorded_settings({"denoise": 0, "denoise_sigma_psd": float("nan")}, {"sigma_psd": 3.0})
    assert off.denoise is False and off.sigma_psd is None
    assert recorded_settings() == PipelineSpec()
