"""Priors: densities against their closed forms, draws inside the support, the card's priors read with their errors."""

import math
import re

import numpy as np
import pytest
from scipy import stats

from sinter4d.assimilation.priors import PositivePrior, Prior, card_priors
from sinter4d.errors import SpecError
from sinter4d.sintering import load_model_card
from sinter4d.specs import Spec, parse


@pytest.mark.parametrize(
    "prior, ref",
    [
        (Prior("uniform", low=-3.0, high=5.0), stats.uniform(-3.0, 8.0)),
        (Prior("normal", mean=1.0, sd=2.0), stats.norm(1.0, 2.0)),
        (Prior("log_uniform", low=5.0, high=150.0), stats.loguniform(5.0, 150.0)),
    ],
)
def test_logpdf_matches_scipy_and_draws_stay_inside(prior, ref):
    lo, hi = prior.bounds
    x = np.linspace(max(lo, -10.0) + 1e-9, min(hi, 10.0 if hi == math.inf else hi) - 1e-9, 7)
    np.testing.assert_allclose(prior.logpdf(x), ref.logpdf(x), rtol=1e-12)
    assert isinstance(prior.logpdf(float(x[0])), float)
    draws = prior.sample(np.random.default_rng(0), 1000)
    assert np.all(np.isfinite(prior.logpdf(draws)))
    if prior.dist != "normal":
        assert prior.logpdf(lo - 1.0) == -math.inf and prior.logpdf(hi + 1.0) == -math.inf


@pytest.mark.parametrize("name", ["cu_ashby", "cu_shell_reservoir"])
def test_shipped_cards_priors(root, name):
    card = load_model_card(root / "models" / f"{name}.toml")
    priors = card_priors(card)
    assert tuple(priors) == card.parameter_names
    for pname, prior in priors.items():
        assert math.isfinite(prior.logpdf(card.default_parameters[pname]))


class _Holder(Spec):
    prior: Prior
    positive: PositivePrior | None = None


@pytest.mark.parametrize(
    "doc, match",
    [
        ({"prior": {"dist": "cauchy"}}, r"prior\.dist: unknown prior 'cauchy' \(choose uniform, log_uniform, normal\)"),
        ({"prior": {"dist": "uniform", "low": 1.0}}, r"prior\.high: missing key"),
        ({"prior": {"dist": "normal", "mean": 1.0}}, r"prior\.sd: missing key"),
        ({"prior": {"dist": "normal", "mean": 1.0, "sd": 1.0, "low": 0.0}}, r"prior\.low: not used by a normal prior"),
        ({"prior": {"dist": "uniform", "low": 1.0, "high": 2.0, "sd": 1.0}}, r"prior\.sd: not used by a uniform"),
        ({"prior": {"dist": "uniform", "low": 2.0, "high": 1.0}}, r"prior\.high: must exceed low \(2\) \(got 1\)"),
        ({"prior": {"dist": "log_uniform", "low": 0.0, "high": 1.0}}, r"prior\.low: must be positive"),
        ({"prior": {"dist": "normal", "mean": 0.0, "sd": 0.0}}, r"prior\.sd: must be positive"),
        ({"prior": {"dist": "uniform", "low": "a", "high": 1.0}}, r"prior\.low: must be a number"),
        ({"prior": {"dist": "uniform", "low": 0, "high": 1},
          "positive": {"dist": "normal", "mean": 1.0, "sd": 1.0}}, r"positive\.dist: a positive quantity"),
        ({"prior": {"dist": "uniform", "low": 0, "high": 1},
          "positive": {"dist": "uniform", "low": -1.0, "high": 1.0}}, r"positive\.low: must be >= 0"),
    ],
)
def test_prior_table_errors_name_the_key(doc, match):
    with pytest.raises(SpecError, match="x.toml: " + match):
        parse(_Holder, doc, source="x.toml")


def test_prior_from_a_table_equals_the_constructed_one():
    held = parse(_Holder, {"prior": {"dist": "log_uniform", "low": 5, "high": 150}})
    assert held.prior == Prior("log_uniform", low=5.0, high=150.0)
    assert held.prior.as_dict() == {"dist": "log_uniform", "low": 5.0, "high": 150.0, "mean": 0.0, "sd": 1.0}


def _edited(root, tmp_path, old, new):
    text = (root / "models" / "cu_ashby.toml").read_text()
    assert old in text, old
    path = tmp_path / "x.toml"
    path.write_text(text.replace(old, new, 1))
    return load_model_card(path)


@pytest.mark.parametrize(
    "old, new, key",
    [
        ('dist = "uniform", low = -8.0', 'dist = "cauchy", low = -8.0',
         r"parameters.log10_C_grain_boundary_diffusion.prior.dist: unknown prior"),
        ("default = -3.5", "default = -9.5", r"parameters.log10_C_grain_boundary_diffusion.default: -9.5 lies outside"),
    ],
)
def test_card_prior_errors_name_the_card_and_key(root, tmp_path, old, new, key):
    card = _edited(root, tmp_path, old, new)
    with pytest.raises(SpecError, match=re.escape(str(tmp_path / "x.toml")) + ": " + key):
        card_priors(card)
