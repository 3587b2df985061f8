"""Model cards: the shipped ones load; every mistake is one SpecError line naming the key."""

import re

import pytest

from sinter4d.errors import SpecError
from sinter4d.sintering import MECHANISMS, SATURATIONS, load_model_card


@pytest.mark.parametrize("name", ["cu_ashby", "cu_shell_reservoir"])
def test_shipped_cards_load(root, name):
    card = load_model_card(root / "models" / f"{name}.toml")
    assert card.name == name
    assert set(card.mechanisms) <= set(MECHANISMS) and card.saturation in SATURATIONS
    assert card.atomic_volume_m3 == pytest.approx(1.18e-29)
    assert card.surface_energy_J_m2 == pytest.approx(1.72)
    assert list(card.default_parameters) == list(card.parameter_names)
    for kind, (pre, q) in card.transport.items():
        assert pre > 0 and q > 0
        assert card.sources[f"transport.{kind}.prefactor"]


def test_a_card_travels_to_a_worker_process_whole_and_stays_read_only(root):
    import pickle

    card = load_model_card(root / "models" / "cu_shell_reservoir.toml")
    copy = pickle.loads(pickle.dumps(card))  # how a simulation plan reaches its workers
    assert copy.transport == card.transport and copy.sources == card.sources and copy.path == card.path
    assert copy.default_parameters == card.default_parameters and copy.initial_neck_nm == card.initial_neck_nm
    with pytest.raises(TypeError):
        card.transport["lattice"] = (1.0, 1.0)
    with pytest.raises(TypeError):
        card.sources["material.melting_point"] = "mine"


def test_ashby_card_data(root):
    card = load_model_card(root / "models" / "cu_ashby.toml")
    assert card.transport["lattice"] == pytest.approx((2.0e-5, 197e3))
    assert card.transport["boundary"] == pytest.approx((5.0e-15, 104e3))
    assert card.transport["surface"] == pytest.approx((6e-10, 205e3))
    assert card.melting_point_K == 1356
    assert card.saturation == "none" and "capture_radius_nm" not in card.parameter_names


def test_reservoir_card(root):
    card = load_model_card(root / "models" / "cu_shell_reservoir.toml")
    assert card.saturation == "shell_reservoir"
    assert card.shell_packing_fraction == pytest.approx(0.2)
    assert "capture_radius_nm" in card.parameter_names


def edited(root, tmp_path, old, new, name="cu_ashby"):
    text = (root / "models" / f"{name}.toml").read_text()
    assert old in text, old
    path = tmp_path / "x.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    "old, new, key",
    [
        ('saturation = "none"', 'saturation = "none"\ncolour = "red"', "colour: unknown key"),
        ("[material]\n", '[material]\ndensity = { value = 8.96, unit = "g/cm^3" }\n', "material.density: unknown key"),
        ("atomic_volume = { value = 1.18e-29, ", "atomic_volume = { ", "material.atomic_volume.value: missing key"),
        ("value = 1.72,", "value = -1.72,", r"material.surface_energy.value: must be positive \(got -1.72\)"),
        (
            '"grain_boundary_diffusion", "surface',
            '"grain_boundary_difusion", "surface',
            r"mechanisms\[2\]: unknown law 'grain_boundary_difusion'",
        ),
        ('saturation = "none"', 'saturation = "reservoir"', "saturation: unknown law"),
        (
            'value = 197, unit = "kJ/mol"',
            'value = 197, unit = "kJ"',
            "transport.lattice.activation_energy.unit: 'kJ' does not match",
        ),
        (
            'value = 5.0e-15, unit = "m^3/s"',
            'value = 5.0e-15, unit = "m^2/s"',
            r"transport.boundary.prefactor.unit: 'm\^2/s' does not match",
        ),
        (
            'value = 1.72, unit = "J/m^2"',
            'value = 1.72, unit = "J/parsnip"',
            "material.surface_energy.unit: unknown unit",
        ),
        (
            "[parameters.log10_C_surface_diffusion]",
            "[parameters.log10_C_viscous_flow]",
            "parameters.log10_C_viscous_flow: unknown key",
        ),
        ('prior = { dist = "uniform", low = -8.0, high = 2.0 }', "prior = 3", r"parameters.log10_C_grain_boundary_diffusion.prior: .*dictionary"),
    ],
)
def test_card_errors_name_the_key(root, tmp_path, old, new, key):
    path = edited(root, tmp_path, old, new)
    with pytest.raises(SpecError, match=re.escape(str(path)) + ": " + key) as info:
        load_model_card(path)
    assert "\n" not in str(info.value)


def test_missing_transport_and_capture_radius(root, tmp_path):
    path = edited(root, tmp_path, "[transport.surface]", "[transport.surfac]")
    with pytest.raises(SpecError, match="transport.surfac: unknown key"):
        load_model_card(path)
    path = edited(
        root, tmp_path, "[parameters.capture_radius_nm]", "[parameters.capture_radius_nm_x]", "cu_shell_reservoir"
    )
    with pytest.raises(SpecError, match="parameters.capture_radius_nm_x: unknown key"):
        load_model_card(path)


@pytest.mark.parametrize(
    "old, new, key",
    [
        ("default = 35.0", "default = -35.0", r"parameters\.capture_radius_nm\.default: must be positive"),
        ("value = 0.2,", "value = 1.2,", r"reservoir\.shell_packing_fraction\.value: must be at most 1"),
        ("[reservoir]\n", "[reservoir_x]\n", r"reservoir_x: unknown key"),
    ],
)
def test_reservoir_card_errors(root, tmp_path, old, new, key):
    path = edited(root, tmp_path, old, new, "cu_shell_reservoir")
    with pytest.raises(SpecError, match=re.escape(str(path)) + ": " + key):
        load_model_card(path)


def test_card_priors_are_not_read_by_the_physics(root, tmp_path):
    """A card's prior tables are the assimilation's (tests/test_assimilation_priors.py)."""
    path = edited(root, tmp_path, 'dist = "uniform", low = -8.0', 'dist = "cauchy", low = -8.0')
    assert load_model_card(path).parameters["log10_C_grain_boundary_diffusion"].prior["dist"] == "cauchy"


@pytest.mark.parametrize(
    "unit, value, si",
    [("kJ/mol", 104, 104e3), ("J/mol", 104e3, 104e3), ("eV/particle", 1.0778, 1.0778 * 96485.33212)],
)
def test_compatible_units_convert(root, tmp_path, unit, value, si):
    path = edited(root, tmp_path, 'value = 104, unit = "kJ/mol"', f'value = {value}, unit = "{unit}"')
    card = load_model_card(path)
    assert card.transport["boundary"][1] == pytest.approx(si, rel=1e-6)


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_model_card(tmp_path / "nope.toml")


def test_a_bare_card_name_resolves_from_any_folder_and_shipped_cards_are_named(root, tmp_path, monkeypatch):
    """A run folder's spec naming a shipped card resolves from another working folder (a resumed
    calibration in another checkout), and the project writes shipped cards by name, others by path."""
    from sinter4d.sintering.cards import SHIPPED_MODELS, card_reference, find_model_card

    assert SHIPPED_MODELS.resolve() == (root / "models").resolve()
    monkeypatch.chdir(tmp_path)  # no models/ here nor beside the spec
    spec = tmp_path / "run" / "spec.json"
    found = find_model_card("cu_shell_reservoir", spec)
    assert found.resolve() == (root / "models" / "cu_shell_reservoir.toml").resolve()
    assert card_reference(found) == "cu_shell_reservoir"
    own = tmp_path / "cu_shell_reservoir.toml"  # a user's copy is not the shipped card
    own.write_text((root / "models" / "cu_shell_reservoir.toml").read_text())
    assert card_reference(own) == str(own.resolve())
    with pytest.raises(SpecError, match="no model card named 'nonesuch'"):
        find_model_card("nonesuch", spec)
