"""Section 7 of the report: the fit's convergence, posterior summary and figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..figures import png
from ..runfolder import RunFolder
from . import html as hp
from .folder import Missing, load_dataset, relative

__all__ = ["section_fit"]


def _true_parameters(run: RunFolder, names: list[str]) -> dict[str, float]:
    truth = load_dataset(run.truth)
    out = {}
    if truth is not None:
        for n in names:
            if n in truth and truth[n].ndim == 0:
                out[n] = float(truth[n])
    return out


def _fit_table(run: RunFolder, path: Path) -> str:
    import pandas as pd

    table = pd.read_csv(path, index_col=0)
    names = [str(n) for n in table.index]
    if "truth" not in table.columns:
        truth = _true_parameters(run, names)
        if truth:
            table["truth"] = [truth.get(n, np.nan) for n in names]
    hdi = [c for c in table.columns if str(c).startswith("hdi_")]
    if "truth" in table.columns and len(hdi) == 2:
        lo, hi = table[hdi[0]].to_numpy(float), table[hdi[1]].to_numpy(float)
        t = table["truth"].to_numpy(float)
        table["truth in HDI"] = [("yes" if a <= v <= b else "no") if np.isfinite(v) else "–"
                                 for a, v, b in zip(lo, t, hi, strict=True)]
    classes = []
    if "r_hat" in table.columns:
        classes = ["bad" if float(r) > 1.1 else "" for r in table["r_hat"].to_numpy(float)]
    rows = [[name] + [v.item() if hasattr(v, "item") else v for v in table.loc[name].tolist()] for name in table.index]
    return hp.table(["parameter", *map(str, table.columns)], rows, row_classes=classes or None, digits=4)


def section_fit(run: RunFolder) -> str:
    """The fit's summary header, its posterior table (with the truth when known) and its two figures."""
    fit = run.fit
    if not fit.path.is_dir():
        raise Missing(f"no {relative(run, fit.path)}/ folder (run `sinter4d fit RUNDIR/{relative(run, run.metrics)} "
                      f"--spec SPEC --out RUNDIR/{relative(run, fit.path)}`)")
    parts = []
    if fit.summary_txt.is_file():
        header = fit.summary_txt.read_text(encoding="utf-8").split("\n\n", 1)[0].strip()
        parts.append(hp.heading("Convergence"))
        parts.append(hp.preformatted(header) if header else
                     hp.not_available(f"{fit.summary_txt.name} has no header"))
    else:
        parts.append(hp.not_available(f"{relative(run, fit.summary_txt)} not found"))
    parts.append(hp.heading(f"Posterior summary ({relative(run, fit.summary_csv)})"))
    if fit.summary_csv.is_file():
        parts.append(_fit_table(run, fit.summary_csv))
        parts.append(hp.paragraph("Rows with R-hat > 1.1 are shaded; 'truth' is the value the run was simulated "
                                  f"with ({relative(run, run.truth)}), when known.", css_class="caption"))
    else:
        parts.append(hp.not_available(f"{relative(run, fit.summary_csv)} not found"))
    for path, label, width in ((fit.corner, "Corner plot of the posterior", 900),
                               (fit.predictive, "Posterior predictive of the trajectories", None)):
        parts.append(hp.heading(label))
        name = relative(run, path)
        if path.is_file():
            parts.append(hp.image(png.shrink_png(path.read_bytes(), max_width_px=1240), alt=path.name,
                                  caption=name, width_px=width))
        else:
            parts.append(hp.not_available(f"{name} not found"))
    return "\n".join(parts)
