"""Callbacks: early stop, progress bar, logging, objective record."""

import io
import logging

import pytest
from _spheres import sphere_counts

from sinter4d.errors import InputError
from sinter4d.pipeline.algorithms import SIRT
from sinter4d.pipeline.callbacks import LoggingCallback, ObjectiveCallback, ProgressCallback


@pytest.fixture(scope="module")
def spheres():
    return sphere_counts()


def test_callbacks_stop_progress_and_log(spheres, caplog):
    def stop_at_3(algorithm):
        if algorithm.iteration == 3:
            raise StopIteration

    stream = io.StringIO()
    alg = SIRT(spheres["op"], spheres["counts"])
    with caplog.at_level(logging.INFO, logger="sinter4d.pipeline.callbacks"):
        alg.run(10, callbacks=[ProgressCallback(file=stream), LoggingCallback(1), stop_at_3])
    assert alg.iteration == 3
    assert "3/10" in stream.getvalue()
    assert "SIRT iteration 3" in caplog.text
    alg.run(2)  # runs can be chained
    assert alg.iteration == 5


def test_objective_callback_records_every_interval(spheres):
    rec = ObjectiveCallback(interval=2)
    alg = SIRT(spheres["op"], spheres["counts"])
    alg.run(5, callbacks=[rec])
    assert [i for i, _ in rec.values] == [2, 4]
    assert rec.values[0][1] > rec.values[1][1] > 0  # SIRT decreases its weighted residual
    alg2 = SIRT(spheres["op"], spheres["counts"])
    alg2.run(4)
    assert rec.values[1][1] == alg2.objective()


@pytest.mark.parametrize("make", [LoggingCallback, ObjectiveCallback])
def test_interval_must_be_positive(make):
    with pytest.raises(InputError, match="interval"):
        make(0)
