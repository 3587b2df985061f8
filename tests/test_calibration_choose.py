"""The choice of pipeline settings: its card, candidates, score, seeds and table (pure parts)."""

import numpy as np
import pytest
import xarray as xr
from skimage.filters import threshold_otsu

from sinter4d.calibration import (
    CHOOSE_SEED_BASE,
    TWIN_SEED_BASE,
    ChooseCard,
    ChooseSpec,
    best_candidate,
    candidates,
    choice_variables,
    choosing_seeds,
    group_key,
    score,
    stage_of,
    twin_errors,
    twin_seeds,
)
from sinter4d.errors import InputError, SpecError
from sinter4d.pipeline import threshold_binary
from sinter4d.pipeline.binarize import THRESHOLD_BINS
from sinter4d.specs import parse

GRID = {"binarize_level": [0.9, 1.1], "denoise_strength": [0.25, 0.35], "tv_weight": [1.5, 3.0]}


def card(grid, **choose):
    return parse(ChooseCard, {"name": "c", "choose": {"grid": grid, **choose}}, source="card.toml")


def test_card_checks_each_grid_value_with_the_pipeline_type():
    spec = card(GRID).choose
    assert spec.twins == 2 and spec.seed_base == CHOOSE_SEED_BASE
    assert spec.grid["denoise_strength"] == [0.25, 0.35]


@pytest.mark.parametrize("grid, where", [
    ({"bm3d_strength": [0.3]}, "card.toml: choose.grid.bm3d_strength: unknown pipeline setting"),
    ({"denoise_strength": [0.3, -1.0]}, "card.toml: choose.grid.denoise_strength[1]: "),
    ({"psd": ["g4", "pink"]}, "card.toml: choose.grid.psd[1]: "),
    ({"binarize_level": []}, "card.toml: choose.grid.binarize_level: must be a non-empty list"),
    ({"binarize_level": [1.0, 1.0]}, "card.toml: choose.grid.binarize_level: repeats a value"),
    ({}, "card.toml: choose.grid: must be a table"),
])
def test_a_bad_grid_is_one_spec_error_line_naming_the_key(grid, where):
    with pytest.raises(SpecError) as err:
        card(grid)
    assert str(err.value).startswith(where) and "\n" not in str(err.value)


def test_an_unknown_choose_key_is_refused():
    with pytest.raises(SpecError, match=r"card.toml: choose.seeds: unknown key"):
        card(GRID, seeds=[1])


@pytest.mark.parametrize(("name", "chosen_for"), [("choose_quick", "quick"), ("choose_quick_bm3d", "quick"),
                                                ("choose_quick_tv", "quick"), ("choose_paper_bm3d", "paper_cu_350c"),
                                                ("choose_paper_tv", "paper_cu_350c")])
def test_shipped_choice_cards_load_and_choose_apart_from_the_reporting_twins(root, name, chosen_for):
    from sinter4d.experiments.calibrate import load_choose_card

    from sinter4d.experiments.spec import load_spec
    from sinter4d.pipeline.algorithms.alternating_tv import DEFAULT_TV_FRACTION

    spec = load_choose_card(root / "experiments" / f"{name}.toml")
    # the shipped spec's settings were chosen with these cards (docs/validation.md): each grid holds its value
    shipped = load_spec(root / "experiments" / f"{chosen_for}.toml").pipeline
    for key, values in spec.grid.items():
        value = getattr(shipped, key)
        assert (DEFAULT_TV_FRACTION if key == "tv_weight" and value is None else value) in values, key
    reporting = twin_seeds(2)
    assert not set(choosing_seeds(spec, reporting)) & set(reporting)


def test_candidates_vary_the_earliest_stage_slowest():
    cands = candidates(GRID)
    assert len(cands) == 8
    assert [stage_of(k) for k in cands[0]] == ["prepare", "reconstruct", "binarize"]
    # consecutive candidates share the BM3D setting (4 each), then the TV weight (2 each)
    assert [c["denoise_strength"] for c in cands] == [0.25] * 4 + [0.35] * 4
    assert [c["tv_weight"] for c in cands[:4]] == [1.5, 1.5, 3.0, 3.0]
    assert len({group_key(c, "prepare") for c in cands}) == 2
    assert len({group_key(c, "reconstruct") for c in cands}) == 4
    assert len({group_key(c, "binarize") for c in cands}) == 8


def test_choosing_and_reporting_seeds_are_disjoint():
    spec = card(GRID).choose
    reporting = twin_seeds(6)
    chosen = choosing_seeds(spec, reporting)
    assert chosen == [CHOOSE_SEED_BASE, CHOOSE_SEED_BASE + 1]
    assert not set(chosen) & set(reporting)
    overlapping = card(GRID, seed_base=TWIN_SEED_BASE + 5).choose
    with pytest.raises(InputError, match=r"choosing twin seed\(s\) \[1006\] are also reporting twins"):
        choosing_seeds(overlapping, reporting)


def _validation(neck, dist):
    return xr.Dataset({"neck_ratio": (("time", "pair"), np.array(neck, float)),
                       "distance_ratio": (("time", "pair"), np.array(dist, float))})


def test_the_score_is_the_two_pooled_medians_and_an_unread_pair_counts_against():
    a = twin_errors(_validation([[0.01, -0.03], [np.nan, 0.05]], [[0.0, 0.01], [np.nan, -0.02]]))
    b = twin_errors(_validation([[0.02]], [[0.04]]))
    s = score([a, b])
    # |neck| pooled: 0.01, 0.02, 0.03, 0.05, inf -> 0.03; |distance|: 0, 0.01, 0.02, 0.04, inf -> 0.02
    assert s["neck_ratio_error"] == pytest.approx(0.03) and s["distance_ratio_error"] == pytest.approx(0.02)
    assert s["score"] == pytest.approx(0.05) and s["unread"] == pytest.approx(0.2)


def test_no_choice_is_made_when_every_candidate_loses_half_the_readings():
    scores = [{"score": np.inf, "neck_ratio_error": np.inf, "distance_ratio_error": np.inf, "unread": u}
              for u in (0.94, 0.6)]
    with pytest.raises(InputError, match="no choice: .* unread .*the best 60%") as err:
        best_candidate(scores)
    assert "\n" not in str(err.value)
    assert best_candidate([*scores, {"score": 0.3, "neck_ratio_error": 0.2, "distance_ratio_error": 0.1,
                                     "unread": 0.1}]) == 2


def test_the_choice_is_the_lowest_score_and_its_table_has_units():
    cands = [{"binarize_level": 0.9, "binarize_radius_nm": 4.0}, {"binarize_level": 1.0, "binarize_radius_nm": 4.0},
             {"binarize_level": 1.1, "binarize_radius_nm": 4.0}]
    scores = [{"score": s, "neck_ratio_error": s, "distance_ratio_error": 0.0, "unread": 0.0} for s in (0.2, 0.05, 0.1)]
    best = best_candidate(scores)
    assert best == 1
    ds = xr.Dataset(choice_variables(cands, scores, best))
    assert ds["candidate_chosen"].values.tolist() == [0, 1, 0]
    assert ds["candidate_binarize_radius_nm"].attrs["units"] == "nm"
    assert ds["candidate_binarize_level"].attrs["units"] == "1"
    assert "lowest score" in ds["candidate_chosen"].attrs["long_name"]
    assert ds["candidate_score"].attrs["units"] == "1"


def test_the_binarisation_level_scales_otsus_threshold():
    v = np.zeros((6, 6, 6), np.float32)
    v[1:5, 1:5, 1:5] = 1.0
    v[2:4, 2:4, 2:4] = 2.0  # Otsu separates 0 from the rest; 1.6 x it keeps the bright core only
    assert int(threshold_binary(v).sum()) == 64
    assert int(threshold_binary(v, level=1.0).sum()) == 64
    high = 1.01 / threshold_otsu(v, nbins=THRESHOLD_BINS)  # just above the plateau at 1: only the core at 2 remains
    assert int(threshold_binary(v, level=high).sum()) == 8
    with pytest.raises(InputError, match="level"):
        threshold_binary(v, level=0.0)
