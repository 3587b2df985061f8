"""Experiment specs: the shipped ones load, bad ones fail with one line naming the key."""

import tomllib

import numpy as np
import pytest

from sinter4d.cli import main
from sinter4d.errors import SpecError
from sinter4d.experiments import load_spec, parse_spec


PAPER_TIMES_S = [0, 5, 12, 17, 22, 27, 31, 36, 41, 46, 51, 61, 71, 81, 100, 120, 150, 209]
PAPER_TEMPERATURES_C = [372, 370, 370, 370, 370, 372, 372, 370, 370, 372, 370, 364, 364, 364, 354, 353, 351, 350]


@pytest.mark.parametrize("name", ["quick", "paper_cu_350c"])
def test_shipped_specs_use_the_papers_tilts_and_heating_log(root, name):
    spec = load_spec(root / "experiments" / f"{name}.toml")
    assert spec.acquisition.angles_deg.size == 41
    # the quick run keeps a subset of the paper's series, each with its own median temperature
    paper = dict(zip(PAPER_TIMES_S, PAPER_TEMPERATURES_C))
    assert all(paper[t] == temp for t, temp in zip(spec.heating.pt_time_s, spec.heating.temperature_C))
    assert len(spec.heating.pt_time_s) == (18 if name == "paper_cu_350c" else 7)


def test_paper_spec_has_the_papers_acquisition(root):
    acq = load_spec(root / "experiments" / "paper_cu_350c.toml").acquisition
    assert (acq.image_pixels, acq.pixel_size_nm, acq.dwell_time_ns, acq.probe_current_pA) == (1024, 1.04, 500.0, 2.0)
    np.testing.assert_allclose(acq.angles_deg[[0, -1]], [-40.0, 40.0])


def test_quick_spec_bins_to_about_4nm(root):
    acq = load_spec(root / "experiments" / "quick.toml").acquisition
    assert 3.5 < acq.output_pixel_size_nm < 4.5
    assert acq.output_pixels == 256


def _quick(root):
    with open(root / "experiments" / "quick.toml", "rb") as fh:
        return tomllib.load(fh)


@pytest.mark.parametrize(
    ("section", "key", "value", "match"),
    [
        ("acquisition", "colour", 3, r"acquisition\.colour: unknown key"),
        ("acquisition", "dose_e_per_nm2", -5.0, r"acquisition\.dose_e_per_nm2: .*greater than 0"),
        ("acquisition", "tilt_max_deg", 95.0, r"acquisition\.tilt_max_deg: .*less than or equal to 90"),
        ("acquisition", "probe_current_pA", "two", r"acquisition\.probe_current_pA: .*valid number"),
        ("phantom", "n_cores", 2.5, r"phantom\.n_cores: .*integer"),
        ("phantom", "shell_packing_fraction", 1.5, r"phantom\.shell_packing_fraction"),
        ("heating", "temperature_C", [350.0], r"heating: temperature_C has 1 values"),
        ("heating", "step_time_error", {"enabled": True, "bound_s": 5.0}, r"heating: step_time_error\.bound_s"),
        ("heating", "step_time_error", {"law": "cauchy"}, r"heating\.step_time_error\.law: unknown law"),
        ("heating", "overshoot", {"enabled": True, "ramp_s": 3.0}, r"heating: overshoot\.ramp_s"),
        ("heating", "overshoot", {"decay_s": 0.0}, r"heating\.overshoot\.decay_s"),
    ],
)
def test_bad_values_name_the_key(root, section, key, value, match):
    data = _quick(root)
    data[section][key] = value
    with pytest.raises(SpecError, match=match):
        parse_spec(data, source="quick.toml")


def test_missing_seed_is_named(root):
    data = _quick(root)
    del data["seed"]
    with pytest.raises(SpecError, match=r"seed: missing key"):
        parse_spec(data)


def test_bad_spec_leaves_nothing(root, tmp_path, capsys):
    data = (root / "experiments" / "quick.toml").read_text().replace("probe_current_pA = 2.0", "probe_current_pA = -2.0")
    bad = tmp_path / "bad.toml"
    bad.write_text(data)
    out = tmp_path / "run"
    assert main(["simulate", str(bad), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "acquisition.probe_current_pA" in err[0]
    assert not out.exists()


def test_missing_spec_file(tmp_path, capsys):
    assert main(["simulate", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "run"), "-q"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_unknown_model_card(root, tmp_path, capsys):
    data = (root / "experiments" / "quick.toml").read_text().replace('model = "cu_shell_reservoir"', 'model = "no_such_card"')
    bad = tmp_path / "bad.toml"
    bad.write_text(data)
    assert main(["simulate", str(bad), "--out", str(tmp_path / "run"), "-q"]) == 2
    assert "sintering.model" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
