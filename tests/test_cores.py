"""How many workers a job gets (`sinter4d._cores.worker_count`)."""

import numpy as np
import pytest

from sinter4d._cores import available_cores, worker_count
from sinter4d.errors import InputError


def test_minus_one_is_every_core_and_no_more_workers_than_tasks():
    assert worker_count(-1) == available_cores()
    assert worker_count(-1, 1) == 1
    assert worker_count(3, 2) == 2 and worker_count(3, 5) == 3 and worker_count(np.int64(2)) == 2
    assert worker_count(4, 0) == 1  # nothing to do: one worker, not none


@pytest.mark.parametrize("n_jobs", [0, -2, 1.5, True, "2"])
def test_other_values_are_refused(n_jobs):
    with pytest.raises(InputError, match="n_jobs must be -1 \\(all cores\\) or a positive int"):
        worker_count(n_jobs)
