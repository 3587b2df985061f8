"""What several benchmarks share: a timer and the quick spec's run simulated once into a cache.

Not a benchmark (``run_all.py`` runs ``bench_*.py`` only); the scripts import
it from their own folder.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from pathlib import Path


EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
QUICK = EXPERIMENTS / "quick.toml"


def timed(fn):
    """``(fn(), wall seconds, CPU seconds of this process)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def first_series(doc: dict, n: int = 1) -> dict:
    """The experiment spec ``doc`` cut to its first ``n`` series: every list of ``[heating]`` keeps its first
    ``n`` entries (the tables under it, e.g. ``step_time_error``, stay as they are). ``doc`` is changed and returned."""
    doc["heating"] = {k: v[:n] if isinstance(v, list) else v for k, v in doc["heating"].items()}
    return doc


def cached_run(doc: dict, folder: str, name: str) -> Path:
    """The run of the experiment spec ``doc`` (a variant of quick.toml), simulated once.

    It lives in ``$TMPDIR/<folder>/<name>-<hash of doc>``, so a changed
    spec (or quick.toml) is simulated again; an interrupted simulation resumes.
    """
    key = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:8]
    run = Path(tempfile.gettempdir()) / folder / f"{name}-{key}"
    from sinter4d.experiments.simulate import simulate_run  # here: a script's spawned workers import it light
    from sinter4d.experiments.spec import parse_spec

    simulate_run(parse_spec(doc, source=QUICK), run, spec_path=QUICK, progress=False)
    return run
