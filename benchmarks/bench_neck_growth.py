"""Median time of ``neck_growth`` for 7 contacts along the paper's heating log, against scipy's solve_ivp.

The peer integrates the same rate (``neck_growth_rate``, the card's laws)
with ``scipy.integrate.solve_ivp`` (RK45, rtol 1e-6) segment by segment, in
the same process, so the ratio holds on a loaded machine where absolute
times do not. Prints both medians, the ratio and the largest difference of
the final necks (nm). Goal: ``neck_growth`` well under 2 ms and far faster
than the peer.

Run: ``python benchmarks/bench_neck_growth.py [--repeats 7] [--number 200]``.
"""

from __future__ import annotations

import argparse
import os
import timeit
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp

from sinter4d.sintering import HeatingLog, load_model_card, neck_growth, neck_growth_rate

ROOT = Path(__file__).resolve().parents[1]


def _median_s(fn, repeats: int, number: int) -> float:
    fn()
    return float(np.median(timeit.repeat(fn, repeat=repeats, number=number)) / number)


def peer(card, kw) -> np.ndarray:
    """Final necks (nm) by solve_ivp over every constant-temperature segment of the log."""
    temp, dur, _ = kw["log"].segments()
    x = np.array(kw["neck0_nm"], dtype=float)
    for t_c, d in zip(temp, dur):
        def rhs(_, y, t_c=t_c):
            return neck_growth_rate(card, None, np.maximum(y, 1e-9), radius_nm=kw["radius_nm"], temperature_C=t_c,
                                    gap_nm=kw["gap_nm"])[0]
        x = solve_ivp(rhs, (0.0, float(d)), x, rtol=1e-6, atol=1e-9).y[:, -1]
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--number", type=int, default=200)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; 7 contacts, the paper's log")
    card = load_model_card(ROOT / "models" / "cu_shell_reservoir.toml")
    kw = dict(radius_nm=np.linspace(60, 90, 7), neck0_nm=np.full(7, 2.5), gap_nm=np.linspace(0, 12, 7),
              log=HeatingLog.paper())
    ours = _median_s(lambda: neck_growth(card, None, **kw), args.repeats, args.number)
    theirs = _median_s(lambda: peer(card, kw), max(3, args.repeats // 2), 1)
    x, _ = neck_growth(card, None, **kw)
    diff = float(np.max(np.abs(x[-1] - peer(card, kw))))
    print(f"neck_growth {ours * 1e3:7.3f} ms  solve_ivp {theirs * 1e3:8.1f} ms  ratio {theirs / ours:7.0f} x  "
          f"max |final neck difference| {diff:.3g} nm  {'OK' if ours < 2e-3 else 'SLOW'} (goal < 2 ms)")


if __name__ == "__main__":
    main()
