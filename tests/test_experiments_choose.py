"""Settings chosen on a real tiny twin: two candidates scored end to end, the worse one not chosen, a resume."""

import json

import pytest
import xarray as xr

from _sweeps import TINY_BASE
from sinter4d.calibration import best_candidate, candidates, score, twin_specs
from sinter4d.experiments.choose import candidate_name, run_candidates, simulate_twin
from sinter4d.experiments.spec import parse_spec
from sinter4d.io.toml import read_toml
from sinter4d.runfolder import ChooseFolder

SEED = 5


@pytest.fixture(scope="module")
def twin(tmp_path_factory, root):
    """A twin of 2 cores of 150 nm (one pair) in 112^2 px of 4.16 nm, 13 tilts at a high dose, 2 series."""
    tmp = tmp_path_factory.mktemp("choose")
    (tmp / "base.toml").write_text(TINY_BASE.format(root=root))
    doc = json.loads(parse_spec(read_toml(tmp / "base.toml"), source="tiny").to_json())
    doc["phantom"].update(n_cores=2, mean_diameter_nm=150.0)
    doc["heating"] = {"pt_time_s": [0, 209], "temperature_C": [372, 350]}
    doc["acquisition"].update(image_pixels=448, dose_e_per_nm2=1e5, tilt_min_deg=-60.0, tilt_max_deg=60.0,
                              tilt_step_deg=10.0)
    doc["pipeline"].update(denoise=False, axis_rotation=0.0, method="tv", iterations=20, slab_thickness_nm=260.0)
    spec = twin_specs(doc, 1, seeds=[SEED])[0]
    folder = ChooseFolder(tmp / "calibration_choose")
    simulate_twin(spec, str(folder.twin(SEED).path), str(tmp / "base.toml"))
    return folder, spec["pipeline"]


def test_the_worse_binarisation_is_scored_worse_and_not_chosen_then_a_rerun_redoes_nothing(twin):
    folder, base = twin
    # Otsu's level against a third of it: the low threshold fattens the cores and swallows the gap
    cands = candidates({"binarize_level": [0.3, 1.0]})
    group = list(enumerate(cands))
    result = run_candidates(str(folder.path), SEED, base, group)
    scores = [score([tuple(map(_array, result["errors"][i]))]) for i in range(len(cands))]
    assert best_candidate(scores) == 1
    assert scores[0]["score"] > scores[1]["score"] + 0.02
    assert scores[1]["unread"] == 0.0, scores  # Otsu reads the one pair at both series
    # one reconstruction per series served both candidates: the volumes are the same
    runs = [folder.candidate(SEED, candidate_name(c)) for c in cands]
    for a, b in zip(runs[0].recon_files(), runs[1].recon_files()):
        with xr.open_dataset(a) as va, xr.open_dataset(b) as vb:
            assert (va["volume"].values == vb["volume"].values).all()
            assert va.attrs["binarize_level"] == 0.3 and vb.attrs["binarize_level"] == 1.0
            assert int(va["binary"].sum()) > int(vb["binary"].sum())
    stamps = [r.validation.stat().st_mtime_ns for r in runs]

    again = run_candidates(str(folder.path), SEED, base, group)
    assert again["seconds"]["prepare"] == again["seconds"]["reconstruct"] == again["seconds"]["binarize"] == 0.0
    assert [r.validation.stat().st_mtime_ns for r in runs] == stamps
    assert again["errors"] == result["errors"]


def test_a_candidate_of_other_settings_is_redone_from_the_volume_of_its_sibling(twin):
    folder, base = twin
    run_candidates(str(folder.path), SEED, base, list(enumerate(candidates({"binarize_level": [0.3, 1.0]}))))
    group = list(enumerate(candidates({"binarize_level": [0.3, 1.0, 1.2]})))
    result = run_candidates(str(folder.path), SEED, base, group)
    # the two candidates done before are kept; the new level re-binarises their volume
    assert result["seconds"]["prepare"] == result["seconds"]["reconstruct"] == 0.0
    assert result["seconds"]["binarize"] > 0.0
    assert len(result["errors"]) == 3


def _array(values):
    import numpy as np

    return np.asarray(values, dtype=float)
