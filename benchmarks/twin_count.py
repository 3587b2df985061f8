"""How many twins a calibration needs: the reading model fitted on k of a calibration's twins, scored on the rest.

Data: the readings a ``calibration.nc`` keeps (``reading_*``, each with its
twin's seed). For every k from 2 to N - 1 and every subset of k twins, both
metrics' reading models are fitted on those twins alone
(``calibration.calibration_dataset``, as ``sinter4d calibrate`` fits them)
and applied (``calibration.invert_reading``) to the readings of the other
twins, which the fit never saw. Prints, per k, the
median over subsets of: the held-out neck error |r_n - r_n,true| / r_p,true
(median, and its largest value), the share of held-out necks within the
corrected value's 90 % interval (1.645 s.d.), the distance error d / 2r_p,
and the fitted between-run scatter σ_run of the neck (nm², with its range
over subsets: what the fit's observation model inherits). The largest
error is over fewer held-out readings as k grows, so it falls with k by
sampling alone.

No twin is simulated: the script takes seconds. The cost side (wall time
against twins) is ``bench_calibrate.py``.

Run: ``python benchmarks/twin_count.py CALIBRATION.nc``.
"""

from __future__ import annotations

import argparse
import itertools
import warnings

import numpy as np
import xarray as xr

from sinter4d.calibration import calibration_dataset, invert_reading, reading_models

Z90 = 1.645


def held_out_scores(t: dict, train: np.ndarray) -> dict:
    """Scores of the models fitted on the ``train`` readings (as ``sinter4d calibrate`` fits them), on the others."""
    test = ~train
    models = reading_models(calibration_dataset([{k: v[train] for k, v in t.items()}], {}))
    neck, dist = models["neck_radius_nm"], models["distance_nm"]
    cov = (t["in_plane_deg"][test], t["elevation_deg"][test], t["bridged"][test].astype(bool))
    rp = t["true_particle_radius_nm"][test]
    est, sd = invert_reading(neck, t["measured_neck_radius_nm"][test], *cov)
    seen = np.isfinite(est) & (t["measured_neck_radius_nm"][test] > 0)  # a neck read as 0 stays 0
    err = np.abs(est - t["true_neck_radius_nm"][test])[seen]
    raw = np.abs(t["measured_neck_radius_nm"][test] - t["true_neck_radius_nm"][test])[seen]
    d_est, _ = invert_reading(dist, t["measured_distance_nm"][test], *cov)
    d_seen = np.isfinite(d_est)
    d_err = np.abs(d_est - t["true_distance_nm"][test])[d_seen] / (2.0 * rp[d_seen])
    return {"neck": np.median(err / rp[seen]), "neck_max": np.max(err / rp[seen]), "raw": np.median(raw / rp[seen]),
            "cover": np.mean(err <= Z90 * sd[seen]), "dist": np.median(d_err), "dist_max": np.max(d_err),
            "sigma_run": neck.sigma_run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("calibration", help="a calibration.nc of three or more twins")
    args = parser.parse_args()
    with xr.open_dataset(args.calibration) as cal:
        t = {k.removeprefix("reading_"): cal[k].values for k in cal.data_vars if k.startswith("reading_")}
    seeds = np.unique(t["twin_seed"])
    print(f"{args.calibration}: {t['twin_seed'].size} readings of {seeds.size} twins ({', '.join(map(str, seeds))})")
    print("k  subsets  r_n/r_p held out: raw -> corrected median, max  90% cover  d/2r_p median, max  sigma_run nm2")
    for k in range(2, seeds.size):
        rows = []
        for subset in itertools.combinations(seeds, k):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # MixedLM's convergence chatter on two or three groups
                rows.append(held_out_scores(t, np.isin(t["twin_seed"], subset)))
        med = {key: float(np.median([r[key] for r in rows])) for key in rows[0]}
        runs = [r["sigma_run"] for r in rows]
        print(f"{k}  {len(rows):7d}  {med['raw']:.3f} -> {med['neck']:.3f}, {med['neck_max']:.3f}   "
              f"{med['cover']:.2f}       {med['dist']:.4f}, {med['dist_max']:.3f}   "
              f"{med['sigma_run']:.0f} ({min(runs):.0f}-{max(runs):.0f})")


if __name__ == "__main__":
    main()
