"""Run every benchmark in this folder, one process each (``make bench``).

Benchmarks time this project against peers in the same process and print
medians and ratios; they are not part of ``make test``.
"""

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
status = 0
for script in sorted(here.glob("bench_*.py")):
    print(f"== {script.name}", flush=True)
    status |= subprocess.call([sys.executable, str(script)])
sys.exit(status)
