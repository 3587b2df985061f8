"""Median time of one log-posterior evaluation of a fit: 7 pairs x 18 tilt series.

Data: synthetic trajectories of each shipped model card (the paper's heating
log, 900 s standby), both variables (neck radius and distance) fitted, every
card parameter free. Prints, per card, the median time of the whole log
posterior and its parts: the kinetics (``neck_growth_segments``, the
compiled integration of all pairs), the centre approach (table lookup) and
the rest (priors, residuals, the marginalised initial distances), and the
log posterior with the 17 PT steps' time errors sampled as latents
(``forward.step_time_error``), and with a calibrated observation model
(``[noise.<variable>] calibration``: a reading model with every scatter term,
the pairs at random orientations), and with both. Goal: under 1 ms.

Run: ``python benchmarks/bench_likelihood.py [--repeats 7] [--number 500]``.
Wall times are meaningful on an otherwise idle machine only: the load
average is printed so that a busy run can be recognised.
"""

from __future__ import annotations

import argparse
import os
import timeit
from pathlib import Path

import numpy as np

from sinter4d.assimilation import Prior, LogPosterior, TrajectoryModel, approach_nm, card_priors, synthetic_trajectories
from sinter4d.assimilation.calibrated import CalibratedReading
from sinter4d.calibration import ReadingModel, design_matrix
from sinter4d.sintering import HeatingLog, load_model_card, neck_growth_segments

ROOT = Path(__file__).resolve().parents[1]


def _median_us(fn, repeats: int, number: int) -> float:
    fn()
    return float(np.median(timeit.repeat(fn, repeat=repeats, number=number)) / number * 1e6)


def bench(card_name: str, repeats: int, number: int) -> None:
    card = load_model_card(ROOT / "models" / f"{card_name}.toml")
    ds = synthetic_trajectories(card, None, rng=0, n_pairs=7)
    log = HeatingLog(pt_time_s=ds.pt_time_s.values, temperature_C=ds.temperature_C.values)
    a = ds.particle_radius_nm.values[0]
    model = TrajectoryModel(card, log, a, 0.0)
    names = card.parameter_names
    lp = LogPosterior(model, names, [card_priors(card)[k] for k in names], {},
                      {v: ds[v].values for v in ("neck_radius_nm", "distance_nm")},
                      {"neck_radius_nm": 1.0, "distance_nm": 2.0})
    theta = np.array([card.parameters[k].default for k in names])
    # the quick run's noise model: pair offsets and a reading curve on the neck
    lp_full = LogPosterior(model, names, [card_priors(card)[k] for k in names], {},
                           {v: ds[v].values for v in ("neck_radius_nm", "distance_nm")},
                           {"neck_radius_nm": 1.0, "distance_nm": 2.0}, pair_sigma_nm={"neck_radius_nm": 3.0},
                           bias_nm={"neck_radius_nm": 0.5}, gain={"neck_radius_nm": 0.9})
    # the PT steps' time errors as latents (uniform on +-1 s), beside every card parameter
    steps = [f"pt_step_error_s_{k}" for k in range(1, log.n_series)]
    lp_steps = LogPosterior(model, [*names, *steps],
                            [card_priors(card)[k] for k in names] + [Prior("uniform", low=-1.0, high=1.0)] * len(steps),
                            {}, {v: ds[v].values for v in ("neck_radius_nm", "distance_nm")},
                            {"neck_radius_nm": 1.0, "distance_nm": 2.0})
    theta_steps = np.concatenate([theta, np.random.default_rng(0).uniform(-1, 1, len(steps))])
    lp_cal = LogPosterior(model, names, [card_priors(card)[k] for k in names], {},
                          {v: ds[v].values for v in ("neck_radius_nm", "distance_nm")}, {"distance_nm": 1.1},
                          calibrated=_calibrated(ds))
    # both: the step-time latents under the calibrated observation model (issue 17's fit of a calibrated run)
    lp_both = LogPosterior(model, [*names, *steps],
                           [card_priors(card)[k] for k in names] + [Prior("uniform", low=-1.0, high=1.0)] * len(steps),
                           {}, {v: ds[v].values for v in ("neck_radius_nm", "distance_nm")}, {"distance_nm": 1.1},
                           calibrated=_calibrated(ds))
    params = lp.card_parameters(theta)
    temp, dur, _ = log.segments()
    _, xd = model.necks(params)
    total = _median_us(lambda: lp(theta), repeats, number)
    full = _median_us(lambda: lp_full(theta), repeats, number)
    with_steps = _median_us(lambda: lp_steps(theta_steps), repeats, number)
    calibrated = _median_us(lambda: lp_cal(theta), repeats, number)
    both = _median_us(lambda: lp_both(theta_steps), repeats, number)
    kinetics = _median_us(lambda: neck_growth_segments(card, params, radius_nm=a, neck0_nm=card.initial_neck_nm,
                                                       temperature_C=temp, duration_s=dur), repeats, number)
    approach = _median_us(lambda: approach_nm(xd, a), repeats, number)
    print(f"{card_name:20s} {len(card.mechanisms)} mechanisms, {len(np.unique(temp))} temperatures, "
          f"{temp.size} segments: log posterior {total:7.1f} us  (kinetics {kinetics:6.1f} us, "
          f"approach {approach:5.1f} us, rest {total - kinetics - approach:5.1f} us)  "
          f"{'OK' if total < 1000 else 'SLOW'} (goal < 1000 us); with pair offsets and a reading curve "
          f"{full:7.1f} us ({full / total:.2f} x); with {len(steps)} step-time errors sampled "
          f"{with_steps:7.1f} us ({with_steps / total:.2f} x); calibrated {calibrated:7.1f} us "
          f"({calibrated / total:.2f} x); both {both:7.1f} us ({both / total:.2f} x)")


def _calibrated(ds) -> dict:
    """A reading model of each variable like the quick twins' (docs/validation.md), at random orientations."""
    rng = np.random.default_rng(1)
    shape = ds.neck_radius_nm.shape
    cov = np.diag([58.0, 0.17, 62.0, 165.0, 140.0]) ** 2
    models = {"neck_radius_nm": ReadingModel("neck_radius_nm", "square", 25.0, np.array([703.0, 0.89, 61.0, 5020.0,
                                                                                         -325.0]), cov, 20.0, 266.0, 119.0),
              "distance_nm": ReadingModel("distance_nm", "identity", 150.0, np.array([150.0, 1.0, -0.27, -9.8, 0.58]),
                                          np.diag([0.26, 0.0, 0.32, 0.8, 0.36]) ** 2, 0.0, 1.4, 1.1)}
    angle = np.broadcast_to(rng.uniform(0, 90, shape[1]), shape)
    out = {}
    for v, m in models.items():
        x = design_matrix(np.full(angle.size, m.reference_nm), angle, np.zeros(shape), np.zeros(shape, dtype=bool),
                          transform=m.transform, reference_nm=m.reference_nm)
        out[v] = CalibratedReading(m, x.reshape(*shape, 5))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--number", type=int, default=500)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; 7 pairs x 18 times")
    for name in ("cu_shell_reservoir", "cu_ashby"):
        bench(name, args.repeats, args.number)


if __name__ == "__main__":
    main()
