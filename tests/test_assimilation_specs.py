"""Fit specs: the shipped ones load; every mistake is one SpecError line naming file and key."""

import copy

import pytest

from sinter4d.assimilation import card_priors, load_fit_spec, parse_fit_spec
from sinter4d.errors import SpecError


def base(root):
    return {
        "model": str(root / "models" / "cu_shell_reservoir.toml"),
        "variables": ["neck_radius_nm", "distance_nm"],
        "parameters": {"free": ["log10_C_surface_diffusion", "capture_radius_nm"]},
        "noise": {"neck_radius_nm": {"sigma": 1.0}, "distance_nm": {"sigma": "fit"}},
        "sampler": {"walkers": 8, "steps": 100, "burn_in": 50, "thin": 2, "seed": 3},
    }


@pytest.mark.parametrize("name", ["quick", "cu_ashby", "cu_shell_reservoir"])
def test_shipped_specs_load(root, name):
    spec = load_fit_spec(root / "assimilation" / f"{name}.toml")
    assert spec.card.name in ("cu_ashby", "cu_shell_reservoir")
    assert set(spec.free) <= set(spec.card.parameter_names)
    assert spec.sampler.walkers >= 2 * len(spec.parameter_names)
    assert spec.sampler.burn_in < spec.sampler.steps


def test_quick_spec_names_the_quick_runs_metrics(root):
    spec = load_fit_spec(root / "assimilation" / "quick.toml")
    assert spec.data.resolve() == (root / "runs" / "quick" / "metrics.nc").resolve()
    assert spec.card.name == "cu_shell_reservoir"


def test_defaults(root):
    spec = parse_fit_spec({"model": str(root / "models" / "cu_ashby.toml"), "sampler": {"walkers": 12}})
    assert spec.free == spec.card.parameter_names
    assert spec.priors["log10_C_surface_diffusion"] == card_priors(spec.card)["log10_C_surface_diffusion"]
    assert spec.variables == ("neck_radius_nm", "distance_nm")
    assert spec.noise["neck_radius_nm"].mode == "fit"
    assert spec.parameter_names[-2:] == ("sigma_neck_radius_nm", "sigma_distance_nm")
    assert spec.forward.initial_neck == "card" and spec.forward.gap == "zero"


def test_names_priors_and_fixed(root):
    doc = base(root)
    doc["parameters"]["priors"] = {"capture_radius_nm": {"dist": "uniform", "low": 10.0, "high": 60.0}}
    doc["parameters"]["fixed"] = {"log10_C_lattice_diffusion_boundary": 2.5}
    doc["forward"] = {"initial_neck": "fit", "initial_neck_prior": {"dist": "log_uniform", "low": 1.0, "high": 9.0}}
    spec = parse_fit_spec(doc)
    assert spec.parameter_names == ("log10_C_surface_diffusion", "capture_radius_nm", "sigma_distance_nm",
                                    "initial_neck_nm")
    assert spec.priors["capture_radius_nm"].high == 60.0
    assert spec.fixed == {"log10_C_lattice_diffusion_boundary": 2.5}
    assert spec.noise["neck_radius_nm"].sigma_nm == 1.0
    assert len(spec.parameter_priors) == 4


def test_resume_key_ignores_steps_but_not_seed(root):
    a = parse_fit_spec(base(root))
    doc = base(root)
    doc["sampler"]["steps"] = 500
    assert parse_fit_spec(doc).resume_key() == a.resume_key()
    doc["sampler"]["seed"] = 4
    assert parse_fit_spec(doc).resume_key() != a.resume_key()
    doc = base(root)
    doc["sampler"]["moves"] = "stretch"  # the default: the key of a chain made before the key existed
    assert parse_fit_spec(doc).resume_key() == a.resume_key()
    doc["sampler"]["moves"] = "de_snooker"
    assert parse_fit_spec(doc).resume_key() != a.resume_key()


def _set(doc, dotted, value):
    keys = dotted.split(".")
    for k in keys[:-1]:
        doc = doc.setdefault(k, {})
    doc[keys[-1]] = value


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("colour", "red", r"<spec>: colour: unknown key"),
        ("sampler.walker", 8, r"<spec>: sampler\.walker: unknown key"),
        ("sampler.walkers", -4, r"<spec>: sampler\.walkers: must be at least 2"),
        ("sampler.walkers", 3, r"<spec>: sampler\.walkers: must be at least twice .* \(6\)"),
        ("sampler.steps", "many", r"<spec>: sampler\.steps: must be an integer"),
        ("sampler.steps", 2.5, r"<spec>: sampler\.steps: must be an integer"),
        ("sampler.burn_in", 100, r"<spec>: sampler\.burn_in: must be below steps"),
        ("sampler.thin", 0, r"<spec>: sampler\.thin: must be at least 1"),
        ("sampler.seed", -1, r"<spec>: sampler\.seed: must be at least 0"),
        ("sampler.init", "random", r"<spec>: sampler\.init: unknown choice 'random'"),
        ("sampler.moves", "walk", r"<spec>: sampler\.moves: unknown choice 'walk'"),
        ("parameters.free", ["log10_C_foo"], r"<spec>: parameters\.free\[0\]: model card 'cu_shell_reservoir' has no parameter 'log10_C_foo'"),
        ("parameters.free", "capture_radius_nm", r"<spec>: parameters\.free: must be a list"),
        ("parameters.fixed", {"capture_radius_nm": 3.0}, r"<spec>: parameters\.fixed\.capture_radius_nm: is also listed"),
        ("parameters.fixed", {"log10_C_lattice_diffusion_boundary": "x"}, r"parameters\.fixed\.log10_C_lattice_diffusion_boundary: must be a number"),
        ("parameters.fixed", {"nope": 1.0}, r"<spec>: parameters\.fixed\.nope: model card .* has no parameter 'nope'"),
        ("parameters.priors", {"capture_radius_nm": {"dist": "cauchy"}}, r"parameters\.priors\.capture_radius_nm\.dist: unknown prior 'cauchy'"),
        ("parameters.priors", {"capture_radius_nm": {"dist": "uniform", "low": 5.0}}, r"parameters\.priors\.capture_radius_nm\.high: missing key"),
        ("parameters.priors", {"capture_radius_nm": {"dist": "uniform", "low": 50.0, "high": 5.0}}, r"capture_radius_nm\.high: must exceed low"),
        ("parameters.priors", {"capture_radius_nm": {"dist": "normal", "mean": 30.0, "sd": 5.0}}, r"capture_radius_nm\.dist: a positive quantity"),
        ("parameters.priors", {"log10_C_lattice_diffusion_boundary": {"dist": "normal", "mean": 0.0, "sd": 1.0}}, r"priors\.log10_C_lattice_diffusion_boundary: a prior for a parameter that is not free"),
        ("parameters.priors", {"log10_C_surface_diffusion": {"dist": "normal", "mean": 0.0, "sd": -1.0}}, r"log10_C_surface_diffusion\.sd: must be positive"),
        ("variables", ["neck_ratio"], r"<spec>: variables\[0\]: unknown choice 'neck_ratio'"),
        ("variables", [], r"<spec>: variables: must be a non-empty list"),
        ("noise.neck_radius_nm.sigma", -1.0, r"noise\.neck_radius_nm\.sigma: must be positive"),
        ("noise.neck_radius_nm.sigma", "guess", r"noise\.neck_radius_nm\.sigma: unknown choice 'guess'"),
        ("noise.neck_radius_nm.prior", {"dist": "uniform", "low": 0, "high": 1}, r"noise\.neck_radius_nm\.prior: only used with sigma = \"fit\""),
        ("noise.distance_nm.sigma", "validation", r"noise\.distance_nm\.validation: missing"),
        ("noise.aspect_ratio", {"sigma": 1.0}, r"<spec>: noise\.aspect_ratio: unknown key"),
        ("noise.distance_nm.pair_sigma", "fit", r"noise\.distance_nm\.pair_sigma: neck_radius_nm only"),
        ("noise.neck_radius_nm.pair_sigma", "guess", r"noise\.neck_radius_nm\.pair_sigma: unknown choice 'guess'"),
        ("noise.neck_radius_nm.pair_sigma", -2.0, r"noise\.neck_radius_nm\.pair_sigma: must be positive"),
        ("noise.neck_radius_nm.pair_prior", {"dist": "uniform", "low": 0, "high": 1}, r"noise\.neck_radius_nm\.pair_prior: only used with pair_sigma = \"fit\""),
        ("noise.neck_radius_nm.exclude_series", 0, r"noise\.neck_radius_nm\.exclude_series: must be a list"),
        ("noise.distance_nm.bias", 1.0, r"noise\.distance_nm\.bias: neck_radius_nm only"),
        ("noise.distance_nm.gain", 1.0, r"noise\.distance_nm\.gain: neck_radius_nm only"),
        ("noise.distance_nm.bridged_bias", -3.0, r"noise\.distance_nm\.bridged_bias: neck_radius_nm only"),
        ("noise.neck_radius_nm.bridged_bias", -3.0,
         r"noise\.neck_radius_nm\.bridged_bias: needs forward\.gap = \"data\""),
        ("noise.neck_radius_nm.bridged_bias", {"dist": "uniform", "low": 2.0}, r"bridged_bias\.high: missing key"),
        ("noise.neck_radius_nm.gain", -0.5, r"noise\.neck_radius_nm\.gain: must be positive"),
        ("noise.neck_radius_nm.reference_nm", 20.0, r"noise\.neck_radius_nm\.reference_nm: only used with a gain"),
        ("noise.neck_radius_nm.bias", "x", r"noise\.neck_radius_nm\.bias: must be a number"),
        ("noise.neck_radius_nm.bias", {"dist": "normal", "mean": -1.0}, r"noise\.neck_radius_nm\.bias\.sd: missing"),
        ("noise.neck_radius_nm.exclude_series", [0, -1], r"noise\.neck_radius_nm\.exclude_series\[1\]: must be at least 0"),
        ("noise.neck_radius_nm.exclude_series", [1.5], r"noise\.neck_radius_nm\.exclude_series\[0\]: must be an integer"),
        ("noise.neck_radius_nm.exclude_series", [2, 2], r"noise\.neck_radius_nm\.exclude_series: a series is named twice"),
        ("forward.initial_neck", "zero", r"forward\.initial_neck: unknown choice 'zero'"),
        ("forward.initial_neck_prior", {"dist": "uniform", "low": 1, "high": 2}, r"forward\.initial_neck_prior: only used with initial_neck = \"fit\""),
        ("forward.gap_min_nm", 2.0, r"forward\.gap_min_nm: only used with gap = \"data\""),
        ("forward.shell_thickness_nm", 0, r"forward\.shell_thickness_nm: must be positive"),
        ("forward.standby_s", -5, r"forward\.standby_s: must be >= 0"),
        ("forward.include_standby", "yes", r"forward\.include_standby: must be true or false"),
        ("forward.grid_points", 4, r"forward\.grid_points: must be at least 8"),
        ("model", "no_such_card", r"<spec>: model: no model card named 'no_such_card'"),
        ("data", 3, r"<spec>: data: must be a string"),
    ],
)
def test_spec_errors(root, key, value, match):
    doc = copy.deepcopy(base(root))
    _set(doc, key, value)
    with pytest.raises(SpecError, match=match):
        parse_fit_spec(doc)


def test_noise_for_an_unfitted_variable(root):
    doc = base(root)
    doc["variables"] = ["neck_radius_nm"]
    with pytest.raises(SpecError, match=r"noise\.distance_nm: not a fitted variable"):
        parse_fit_spec(doc)


def test_nothing_to_fit(root):
    doc = base(root)
    doc["parameters"]["free"] = []
    doc["noise"] = {"neck_radius_nm": {"sigma": 1.0}, "distance_nm": {"sigma": 1.0}}
    with pytest.raises(SpecError, match=r"parameters\.free: nothing to fit"):
        parse_fit_spec(doc)


def test_file_errors_name_the_file(tmp_path, root):
    path = tmp_path / "bad.toml"
    path.write_text(f'model = "{root / "models" / "cu_ashby.toml"}"\n[sampler]\nwalkers = "ten"\n')
    with pytest.raises(SpecError, match=r"bad\.toml: sampler\.walkers: must be an integer"):
        load_fit_spec(path)
    path.write_text("model = \n")
    with pytest.raises(SpecError, match=r"bad\.toml: not valid TOML"):
        load_fit_spec(path)
    with pytest.raises(SpecError, match=r"missing\.toml: no such file"):
        load_fit_spec(tmp_path / "missing.toml")


def test_relative_paths_are_taken_from_the_spec_folder(tmp_path, root):
    path = tmp_path / "s.toml"
    path.write_text(f'model = "{root / "models" / "cu_ashby.toml"}"\ndata = "d/metrics.nc"\n'
                    '[noise.neck_radius_nm]\nsigma = "validation"\nvalidation = "v.nc"\n'
                    '[sampler]\nwalkers = 12\n')
    spec = load_fit_spec(path)
    assert spec.data == tmp_path / "d" / "metrics.nc"
    assert spec.noise["neck_radius_nm"].validation == str(tmp_path / "v.nc")


def test_pair_offset_and_excluded_series(root):
    doc = base(root)
    doc["noise"]["neck_radius_nm"] = {"sigma": "fit", "pair_sigma": "fit", "exclude_series": [3, 0]}
    doc["sampler"]["walkers"] = 10
    spec = parse_fit_spec(doc)
    noise = spec.noise["neck_radius_nm"]
    assert noise.pair_mode == "fit" and noise.exclude_series == (0, 3)
    assert spec.parameter_names[-3:] == ("sigma_neck_radius_nm", "sigma_distance_nm", "sigma_pair_neck_radius_nm")
    assert spec.parameter_priors[-1].dist == "log_uniform"
    doc["noise"]["neck_radius_nm"] = {"sigma": 1.0, "pair_sigma": 2.5}
    fixed = parse_fit_spec(doc)
    assert fixed.noise["neck_radius_nm"].pair_sigma_nm == 2.5
    assert "sigma_pair_neck_radius_nm" not in fixed.parameter_names
    assert fixed.resume_key() != spec.resume_key()
    doc["noise"]["neck_radius_nm"] = {"sigma": 1.0, "bias": {"dist": "normal", "mean": -1.0, "sd": 0.5}}
    sampled = parse_fit_spec(doc)
    assert sampled.parameter_names[-1] == "bias_neck_radius_nm"
    assert sampled.parameter_priors[-1].mean == -1.0
    doc["noise"]["neck_radius_nm"] = {"sigma": 1.0, "bias": -1.2}
    assert parse_fit_spec(doc).noise["neck_radius_nm"].bias_nm == -1.2
    doc["noise"]["neck_radius_nm"] = {"sigma": 1.0, "gain": {"dist": "normal", "mean": 0.9, "sd": 0.1},
                                      "reference_nm": 20.0}
    curve = parse_fit_spec(doc)
    assert curve.parameter_names[-1] == "gain_neck_radius_nm" and curve.noise["neck_radius_nm"].reference_nm == 20.0


def test_bridged_offset_with_the_forward_models_gaps(root):
    doc = base(root)
    doc["forward"] = {"gap": "data"}
    doc["noise"]["neck_radius_nm"] = {"sigma": 1.0, "bridged_bias": {"dist": "uniform", "low": -20.0, "high": 20.0}}
    spec = parse_fit_spec(doc)
    assert spec.parameter_names[-1] == "bridged_bias_neck_radius_nm"
    assert (spec.parameter_priors[-1].low, spec.parameter_priors[-1].high) == (-20.0, 20.0)
    doc["noise"]["neck_radius_nm"] = {"sigma": 1.0, "bridged_bias": -4.0}
    fixed = parse_fit_spec(doc)
    assert fixed.noise["neck_radius_nm"].bridged_bias_nm == -4.0
    assert "bridged_bias_neck_radius_nm" not in fixed.parameter_names
    doc["noise"]["neck_radius_nm"] = {"calibration": "calibration.nc", "bridged_bias": -4.0}
    with pytest.raises(SpecError, match=r"bridged_bias: the calibration gives"):
        parse_fit_spec(doc)


