"""sinter4d calibrate end to end on a tiny acquisition: twins on Dask, calibration.nc, a resumed rerun."""

import json

import numpy as np
import pytest
import xarray as xr

from sinter4d.experiments import load_spec
from sinter4d.experiments.calibrate import calibrate_run
from sinter4d.runfolder import twins_folder

pytestmark = pytest.mark.slow


def test_calibrate_a_tiny_acquisition_and_resume(tmp_path, root):
    spec = json.loads(load_spec(root / "experiments" / "quick.toml").to_json())
    spec["phantom"].update(n_cores=4)
    spec["heating"] = {"pt_time_s": [0.0, 12.0, 41.0], "temperature_C": [372.0, 370.0, 370.0]}
    spec["acquisition"].update(image_pixels=704, bin=4, tilt_step_deg=10.0, reference_frames=10)
    spec["pipeline"]["iterations"] = 60
    run = tmp_path / "run"
    run.mkdir()
    (run / "spec.json").write_text(json.dumps(spec))  # calibrate reads the run's spec only
    out = calibrate_run(run, tmp_path / "calibration.nc", n_twins=2, n_workers=2, progress=False, min_neck_nm=0.0)
    with xr.open_dataset(out) as cal:
        assert json.loads(cal.attrs["twin_seeds"]) == [1001, 1002]
        acq = json.loads(cal.attrs["acquisition"])
        assert acq["pixel_size_nm"] == 1.04 and acq["bin"] == 4 and acq["tilt_step_deg"] == 10.0
        assert cal["coefficient"].sizes == {"metric": 2, "term": 5}
        assert np.isfinite(cal["coefficient"].sel(metric="distance_nm", term="true")).all()
        assert cal.attrs["twins_run"] == 2
    twin = twins_folder(out).cell("twin-1001")
    assert json.loads(twin.spec.read_text())["acquisition"]["image_pixels"] == 704
    again = calibrate_run(run, tmp_path / "calibration.nc", n_twins=2, n_workers=2, progress=False, min_neck_nm=0.0)
    with xr.open_dataset(again) as cal:
        assert cal.attrs["twins_run"] == 0  # both twins were done
