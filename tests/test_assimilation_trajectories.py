"""Reading neck/distance trajectories: metrics.nc, truth.nc and the CSV table; input errors."""

import numpy as np
import pytest
import xarray as xr

from sinter4d.errors import InputError
from sinter4d.io.trajectories import (
    experiment_heating,
    read_trajectories,
    validation_sigma,
    write_trajectories_csv,
)

TIMES = [0.0, 5.0, 12.0, 17.0]
TEMPS = [372.0, 370.0, 370.0, 370.0]


def metrics(n_pair=3, **overrides):
    rng = np.random.default_rng(0)
    shape = (len(TIMES), n_pair)
    data = {
        "neck_radius_nm": (("time", "pair"), 10 + rng.uniform(0, 5, shape)),
        "distance_nm": (("time", "pair"), 150 - rng.uniform(0, 5, shape)),
        "particle_radius_nm": (("time", "pair"), np.full(shape, 75.0)),
        "aspect_ratio": (("time", "pair"), np.ones(shape)),
    }
    data.update(overrides)
    return xr.Dataset(data, coords={"pt_time_s": ("time", TIMES), "temperature_C": ("time", TEMPS),
                                    "pair": ("pair", [f"P{k + 1}" for k in range(n_pair)])})


CSV_HEADER = "pt_time_s,temperature_C,pair,neck_radius_nm,distance_nm,particle_radius_nm\n"


def test_metrics_file_round_trip(tmp_path):
    ds = metrics()
    ds["log10_C_surface_diffusion"] = ((), -2.0)
    ds.attrs["spec"] = '{"heating": {"standby_s": 600.0, "standby_temperature_C": 210.0}, ' \
                       '"phantom": {"shell_thickness_nm": 8.0}}'
    ds.to_netcdf(tmp_path / "m.nc")
    out = read_trajectories(tmp_path / "m.nc")
    assert out["neck_radius_nm"].dims == ("time", "pair")
    np.testing.assert_allclose(out["neck_radius_nm"].values, ds["neck_radius_nm"].values)
    np.testing.assert_allclose(out["pt_time_s"].values, TIMES)
    assert list(out["pair"].values) == ["P1", "P2", "P3"]
    assert float(out["log10_C_surface_diffusion"]) == -2.0
    assert "aspect_ratio" not in out
    assert out["neck_radius_nm"].attrs["units"] == "nm"
    assert experiment_heating(out) == {"standby_s": 600.0, "standby_temperature_C": 210.0, "shell_thickness_nm": 8.0}


def test_pair_time_order_is_transposed(tmp_path):
    ds = metrics().transpose("pair", "time")
    ds.to_netcdf(tmp_path / "m.nc")
    assert read_trajectories(tmp_path / "m.nc")["neck_radius_nm"].dims == ("time", "pair")


def test_missing_distance_variable_reads_as_nan(tmp_path):
    metrics().drop_vars("distance_nm").to_netcdf(tmp_path / "m.nc")
    assert np.all(np.isnan(read_trajectories(tmp_path / "m.nc")["distance_nm"].values))


def test_nan_inside_a_trajectory_is_kept(tmp_path):
    ds = metrics()
    ds["neck_radius_nm"][2, 1] = np.nan
    ds.to_netcdf(tmp_path / "m.nc")
    out = read_trajectories(tmp_path / "m.nc")
    assert np.isnan(out["neck_radius_nm"].values[2, 1])
    assert np.isfinite(out["neck_radius_nm"].values[3, 1])


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda ds: ds.drop_vars("neck_radius_nm"), r"m\.nc: missing variable\(s\) neck_radius_nm"),
        (lambda ds: ds.drop_vars("particle_radius_nm"), r"m\.nc: missing variable\(s\) particle_radius_nm"),
        (lambda ds: ds.drop_vars("pt_time_s"), r"m\.nc: missing variable\(s\) pt_time_s"),
        (lambda ds: ds.assign_coords(pt_time_s=("time", [0.0, 5.0, 5.0, 17.0])), r"m\.nc: pt_time_s: times do not increase"),
        (lambda ds: ds.assign(neck_radius_nm=ds.neck_radius_nm * np.nan), r"m\.nc: neck_radius_nm: every pair is NaN"),
        (lambda ds: ds.assign(distance_nm=ds.distance_nm * np.inf), r"m\.nc: distance_nm: infinite"),
        (lambda ds: ds.assign(particle_radius_nm=-ds.particle_radius_nm), r"m\.nc: particle_radius_nm: negative"),
        (lambda ds: ds.assign(particle_radius_nm=ds.particle_radius_nm * np.nan), r"m\.nc: particle_radius_nm: pair P1"),
    ],
)
def test_metrics_file_errors(tmp_path, change, match):
    change(metrics()).to_netcdf(tmp_path / "m.nc")
    with pytest.raises(InputError, match=match):
        read_trajectories(tmp_path / "m.nc")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_trajectories(tmp_path / "nope.nc")
    with pytest.raises(InputError, match="no such file"):
        read_trajectories(tmp_path / "nope.csv")


def test_csv_table(tmp_path):
    rows = [
        "0,372,P1,2.5,150.0,75",
        "0,372,P2,3.0,,70",
        "5,370,P1,20.0,148.0,75",
        "5,370,P2,18.0,,70",
        "12,370,P1,24.0,147.0,75",
    ]
    (tmp_path / "t.csv").write_text(CSV_HEADER + "\n".join(rows) + "\n")
    ds = read_trajectories(tmp_path / "t.csv")
    assert ds.sizes == {"time": 3, "pair": 2}
    np.testing.assert_allclose(ds["pt_time_s"].values, [0, 5, 12])
    np.testing.assert_allclose(ds["temperature_C"].values, [372, 370, 370])
    np.testing.assert_allclose(ds["neck_radius_nm"].values[:, 0], [2.5, 20.0, 24.0])
    assert np.isnan(ds["neck_radius_nm"].values[2, 1])  # P2 not measured at 12 s
    assert np.all(np.isnan(ds["distance_nm"].values[:, 1]))  # empty distance column


def test_csv_without_distance_column(tmp_path):
    text = "pt_time_s,temperature_C,pair,neck_radius_nm,particle_radius_nm\n0,372,P1,2.5,75\n5,370,P1,20,75\n"
    (tmp_path / "t.csv").write_text(text)
    assert np.all(np.isnan(read_trajectories(tmp_path / "t.csv")["distance_nm"].values))


@pytest.mark.parametrize(
    "text, match",
    [
        ("pt_time_s,pair,neck_radius_nm,particle_radius_nm\n0,P1,2,75\n", r"t\.csv: missing column\(s\) temperature_C"),
        (CSV_HEADER + "0,372,P1,2,150,75\n5,370,P1,3,,75\n5,370,P1,4,,75\n", r"t\.csv: line 4: pt_time_s: times of pair P1 do not increase"),
        (CSV_HEADER + "5,372,P1,2,150,75\n0,370,P1,3,,75\n", r"t\.csv: line 3: pt_time_s: times of pair P1"),
        (CSV_HEADER + "0,372,P1,abc,150,75\n", r"t\.csv: line 2: neck_radius_nm: not a number"),
        (CSV_HEADER + "0,372,P1,2,150,75\n0,360,P2,3,150,75\n", r"t\.csv: line 3: temperature_C: 360"),
        (CSV_HEADER + "0,372,P1,,150,75\n5,370,P1,,150,75\n", r"t\.csv: neck_radius_nm: every pair is NaN"),
        (CSV_HEADER.replace("\n", ",extra\n") + "0,372,P1,2,150,75,1\n", r"t\.csv: unknown column\(s\) extra"),
        (CSV_HEADER, r"t\.csv: the table has no rows"),
    ],
)
def test_csv_errors(tmp_path, text, match):
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(InputError, match=match):
        read_trajectories(tmp_path / "t.csv")


def test_validation_sigma(tmp_path):
    diff = np.array([[1.0, -1.0], [np.nan, 2.0]])
    xr.Dataset({"neck_radius_nm": (("time", "pair"), diff)}).to_netcdf(tmp_path / "v.nc")
    assert validation_sigma(tmp_path / "v.nc", "neck_radius_nm") == pytest.approx(np.sqrt(2.0))
    with pytest.raises(InputError, match=r"v\.nc: missing variable\(s\) distance_nm"):
        validation_sigma(tmp_path / "v.nc", "distance_nm")


def test_metrics_to_csv_and_back_gives_the_same_trajectories(tmp_path):
    ds = metrics(n_pair=11, surface_gap_nm=(("time", "pair"), np.linspace(-2.0, 30.0, 44).reshape(4, 11)))
    ds["neck_radius_nm"][1, 3] = np.nan  # a point not measured
    ds["distance_nm"][:, 10] = np.nan
    ds["neck_radius_nm"][0, 0] = 1 / 3  # full precision survives
    ds.to_netcdf(tmp_path / "metrics.nc")
    from_nc = read_trajectories(tmp_path / "metrics.nc")
    out = write_trajectories_csv(from_nc, tmp_path / "metrics.csv")
    lines = out.read_text().splitlines()
    assert lines[0] == "pt_time_s,temperature_C,pair," + ",".join(
        ["neck_radius_nm", "distance_nm", "particle_radius_nm", "surface_gap_nm"])
    assert len(lines) == 1 + 4 * 11 and lines[1].startswith("0.0,372.0,P1,")
    from_csv = read_trajectories(out)
    assert list(from_csv["pair"].values) == [f"P{k + 1}" for k in range(11)]  # P10 after P9, as written
    for name in ("neck_radius_nm", "distance_nm", "particle_radius_nm", "surface_gap_nm"):
        np.testing.assert_array_equal(from_csv[name].values, ds[name].values)
        assert from_csv[name].attrs["units"] == "nm"
    np.testing.assert_array_equal(from_csv["pt_time_s"].values, TIMES)
    np.testing.assert_array_equal(from_csv["temperature_C"].values, TEMPS)
    assert from_csv["pt_time_s"].attrs["units"] == "s" and from_csv["temperature_C"].attrs["units"] == "degC"


def test_a_written_table_without_distances_or_gaps_reads_back(tmp_path):
    ds = metrics().drop_vars("distance_nm")
    out = write_trajectories_csv(ds, tmp_path / "t.csv")
    assert "surface_gap_nm" not in out.read_text().splitlines()[0]
    back = read_trajectories(out)
    assert np.all(np.isnan(back["distance_nm"].values)) and np.all(np.isnan(back["surface_gap_nm"].values))
    np.testing.assert_array_equal(back["neck_radius_nm"].values, ds["neck_radius_nm"].values)


def test_writing_a_table_without_necks_is_one_line(tmp_path):
    ds = metrics().drop_vars("neck_radius_nm")
    ds.attrs["source"] = "m.nc"
    with pytest.raises(InputError, match="m.nc: missing variable.*neck_radius_nm"):
        write_trajectories_csv(ds, tmp_path / "t.csv")
    assert not list(tmp_path.iterdir())


def test_the_fit_takes_a_written_table(tmp_path, root):
    from sinter4d.assimilation import build_problem

    ds = metrics(surface_gap_nm=(("time", "pair"), np.full((4, 3), 8.0)))
    table = write_trajectories_csv(ds, tmp_path / "metrics.csv")
    problem = build_problem(table, root / "assimilation" / "quick.toml")
    np.testing.assert_array_equal(problem.data["neck_radius_nm"].values, ds["neck_radius_nm"].values)
    np.testing.assert_array_equal(problem.data["pt_time_s"].values, TIMES)
