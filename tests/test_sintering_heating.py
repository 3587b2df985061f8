"""The heating log: the paper's table and the segment convention."""

import pytest

from sinter4d.sintering import HeatingLog


def test_paper_table():
    log = HeatingLog.paper()
    assert log.n_series == 18
    assert log.pt_time_s[[0, 1, 11, -1]].tolist() == [0, 5, 61, 209]
    assert log.temperature_C[[0, 1, 11, -1]].tolist() == [372, 370, 364, 350]


def test_segments_convention():
    log = HeatingLog(
        pt_time_s=[0, 5, 12], temperature_C=[999, 370, 360], standby_temperature_C=200, standby_s=[600, 700, 800]
    )
    temp, dur, ends = log.segments()
    # series 0 | standby of series 0 | PT 1 | series 1 | standby of series 1 | PT 2 | series 2
    assert temp.tolist() == [200, 370, 200, 360]
    assert dur.tolist() == [600, 5, 700, 7]
    assert ends.tolist() == [0, 2, 4]
    temp, dur, ends = log.segments(include_standby=False)
    assert temp.tolist() == [370, 360] and dur.tolist() == [5, 7] and ends.tolist() == [0, 1, 2]


def test_paper_segments_total_time():
    temp, dur, ends = HeatingLog.paper(standby_s=900).segments()
    assert len(temp) == 34 and ends[-1] == 34
    assert dur[temp > 300].sum() == 209 and dur[temp == 200].sum() == 17 * 900


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(pt_time_s=[0, 5, 5], temperature_C=[1, 2, 3]), "increase strictly"),
        (dict(pt_time_s=[0, 5], temperature_C=[1]), "temperature_C has 1"),
        (dict(pt_time_s=[0, 5], temperature_C=[1, 2], standby_s=-1), "standby_s"),
    ],
)
def test_bad_log_raises(kw, match):
    with pytest.raises(ValueError, match=match):
        HeatingLog(**kw)
