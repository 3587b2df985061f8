"""Accuracy of the quick run (`make run`) against its own truth: the measurement and the fit.

Slow: run with ``pytest -m slow tests/test_quick_run_accuracy.py``.
A ``runs/quick`` folder made by ``make run`` from the current spec *and the current
source* (its ``run.json`` records the fingerprint of the installed package,
:func:`sinter4d.experiments.record.code_fingerprint`) is used as is; otherwise the quick spec is simulated,
reconstructed, measured and validated in a temporary folder.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sinter4d.experiments.record import code_fingerprint
from sinter4d.experiments.run import run_experiment
from sinter4d.experiments.simulate import same_spec
from sinter4d.experiments.spec import load_spec
from sinter4d.runfolder import RunFolder

pytestmark = pytest.mark.slow

def _made_by_this_code(run: RunFolder) -> bool:
    """Whether ``run.json`` records the fingerprint of the installed source (uncommitted edits count)."""
    if not run.record.is_file():
        return False
    code = json.loads(run.record.read_text()).get("code") or {}
    return code.get("fingerprint") == code_fingerprint()


@pytest.fixture(scope="module")
def quick_run(root, tmp_path_factory):
    spec_path = root / "experiments" / "quick.toml"
    spec = load_spec(spec_path)
    made = RunFolder(root / "runs" / "quick")
    if made.validation.is_file() and same_spec(made.spec, spec) and _made_by_this_code(made):
        return made.path
    out = tmp_path_factory.mktemp("quick") / "quick"
    run_experiment(spec, out, spec_path=spec_path, stages=("simulate", "reconstruct", "measure", "validate"),
                   progress=False, raise_errors=True)
    return out


def test_quick_run_measures_every_pair_within_the_issue_targets(quick_run):
    with xr.open_dataset(RunFolder(quick_run).validation) as val:
        a = val.attrs
        assert (a["pairs_found"], a["pairs_missed"], a["pairs_spurious"]) == (a["pairs_true"], 0, 0)
        assert a["median_abs_error_distance_ratio"] <= 0.03
        assert a["median_abs_error_neck_ratio"] <= 0.05


def test_quick_run_fit_recovers_the_true_parameters(quick_run, root, tmp_path):
    from sinter4d.assimilation import fit

    result = fit(RunFolder(quick_run).metrics, root / "assimilation" / "quick.toml", tmp_path / "fit", progress=False)
    truth = xr.open_dataset(RunFolder(quick_run).truth)
    post = xr.open_dataset(result.posterior_path, group="posterior")
    for name in ("log10_C_lattice_diffusion_boundary", "log10_C_surface_diffusion", "capture_radius_nm"):
        draws = post[name].values.ravel()
        lo, hi = np.quantile(draws, [0.025, 0.975])
        assert lo <= float(truth[name]) <= hi, f"{name}: truth {float(truth[name]):.3g} outside [{lo:.3g}, {hi:.3g}]"
    assert result.convergence.n_over_tau >= 50
