"""The station soil-temperature source: EDC (the real Toolik file), GTN-P, plain tables; the
coverage rule of monthly means and the depth-weighted layer rule."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from permaplug.cli import cli
from permaplug.core.catalog import load_catalog, resources_dir
from permaplug.core.errors import DataError
from permaplug.data import station
from permaplug.plugins.sources.station_soil import StationSoilTemperatureSource

TOOLIK = resources_dir() / "real" / "toolik_soil_temperature" / "3-hour_data.csv.gz"
TOOLIK_DEPTHS = {"soil1_moss": 0, "soil1_5cm": 5, "soil1_10cm": 10, "soil1_100cm": 100}


@pytest.fixture(scope="module")
def toolik():
    """The real file read with the rule over the sensors present each month."""
    return load_catalog("toolik").open("toolik-soil", sensor_set="available")


# --- the depth-weighted rule ----------------------------------------------------------------
def test_layer_weights_at_toolik_depths():
    w = station.layer_weights([0, 5, 10, 100])
    np.testing.assert_allclose(w[:, 0], [2.5 / 7, 4.5 / 7, 0, 0])
    np.testing.assert_allclose(w[:, 1], [0, 0.5 / 21, 20.5 / 21, 0])
    np.testing.assert_allclose(w[:, 2], [0, 0, 27 / 72, 45 / 72])
    assert not w[:, 3].any()  # no sensor below 100 cm: the 100-289 cm layer is missing


def test_layer_weights_need_a_sensor_in_or_next_to_the_layer():
    w = station.layer_weights([10, 100])  # 2017 at Toolik: no 0 and 5 cm readings
    assert not w[:, 0].any()  # 0-7 cm is not filled from 10 cm
    np.testing.assert_allclose(w[:, 1], [1, 0])
    w = station.layer_weights([50, 150, 289])
    np.testing.assert_allclose(w[:, 3], [0, 119.5 / 189, 69.5 / 189])  # cells split at 219.5


def test_to_layers_uses_the_sensors_present_each_month():
    import xarray as xr

    vals = np.array([[1.0, 2.0, 3.0, 4.0], [np.nan, np.nan, 3.0, 4.0]])
    da = xr.DataArray(vals, dims=("time", "depth"), coords={"depth": [0, 5, 10, 100]})
    out = station.to_layers(da)
    np.testing.assert_allclose(out.values[0, :3], [(2.5 + 9) / 7, (1 + 61.5) / 21,
                                                   (81 + 180) / 72])
    assert np.isnan(out.values[0, 3])
    assert np.isnan(out.values[1, 0]) and out.values[1, 1] == pytest.approx(3.0)


# --- coverage ----------------------------------------------------------------------------------
def _readings(days_missing: int, per_day: int = 8) -> pd.DataFrame:
    days = pd.date_range("2010-06-01", "2010-06-30", freq="D")[days_missing:]
    times = [d + pd.Timedelta(hours=3 * (k + 1)) for d in days for k in range(per_day)]
    return pd.DataFrame({"site": "s", "day": [t.floor("D") - pd.Timedelta(days=int(t.hour == 0))
                                             for t in times],
                         "time": times, "depth_cm": 5.0, "value": 1.5})


@pytest.mark.parametrize(("missing", "min_cov", "kept"),
                         [(5, 0.8, True), (7, 0.8, False), (7, 0.75, True)])
def test_monthly_mean_needs_the_coverage(missing, min_cov, kept):
    ds = station.monthly_means(_readings(missing), min_cov)
    cov = float(ds["coverage"].squeeze())
    assert cov == pytest.approx((30 - missing) / 30)
    assert np.isfinite(float(ds["tsoil"].squeeze())) == kept


def test_readings_with_empty_values_count_as_missing():
    r = _readings(0)
    r.loc[r.index[: 8 * 7], "value"] = np.nan  # a week of empty fields
    ds = station.monthly_means(r)
    assert float(ds["coverage"].squeeze()) == pytest.approx(23 / 30)
    assert np.isnan(float(ds["tsoil"].squeeze()))


def test_bad_min_coverage_is_refused():
    with pytest.raises(DataError, match="min_coverage"):
        station.monthly_means(_readings(0), 1.5)


# --- the real Toolik file -----------------------------------------------------------------------
def test_toolik_real_file_monthly_layers(toolik):
    assert toolik.sizes["site"] == 1 and str(toolik["name"].values[0]) == "Toolik"
    assert int(toolik["band"].values[0]) == 4  # 68.63 N lies in band 4
    assert str(toolik["time"].values[0])[:7] == "1988-06"
    assert str(toolik["time"].values[-1])[:7] == "2021-12"
    stl = toolik[["stl1", "stl2", "stl3", "stl4"]].isel(site=0)
    assert np.isnan(stl["stl4"]).all()  # no sensor below 100 cm
    for year_month in ("2001-01", "2001-05", "2006-02"):  # whole periods without rows
        assert np.isnan(stl["stl1"].sel(time=year_month)).all()
    assert np.isnan(stl["stl1"].sel(time="2017")).all()  # 0 and 5 cm missing in 2017
    assert np.isfinite(stl["stl2"].sel(time="2017")).sum() >= 10
    n = {v: int(np.isfinite(stl[v]).sum()) for v in ("stl1", "stl2", "stl3")}
    # 5 and 10 cm start in 1998-09; before that 0-7 cm is the 0 cm sensor alone, 7-28 cm is
    # missing and 28-100 cm weighs 0 and 100 cm (22/72, 50/72)
    assert n == {"stl1": 319, "stl2": 260, "stl3": 330}
    assert np.isnan(stl["stl2"].sel(time="1995")).all()
    # the observed 0-10 cm annual mean at Toolik is about -1 ... -3 degC
    annual = stl["stl1"].sel(time=slice("1990", "2016")).mean()
    assert -4.0 < float(annual) < 0.0
    july = stl["stl1"].sel(time=stl["time.month"] == 7)
    assert float(july.mean()) > 3.0 and float(stl["stl1"].min()) < -10.0
    assert "missing" in toolik.attrs["layer_rule"]


def test_toolik_catalog_layers_have_a_constant_composition(toolik):
    ds = load_catalog("toolik").open("toolik-soil")  # the catalog: sensor_set complete
    assert ds.attrs["sensor_set"] == "complete"
    stl = ds[["stl1", "stl2", "stl3"]].isel(site=0)
    first = {v: str(stl["time"].values[np.isfinite(stl[v].values)][0])[:7] for v in stl}
    assert first == {"stl1": "1998-09", "stl2": "1998-09", "stl3": "1998-09"}
    both = np.isfinite(stl["stl1"]) & np.isfinite(toolik["stl1"].isel(site=0))
    np.testing.assert_allclose(stl["stl1"][both], toolik["stl1"].isel(site=0)[both])
    # every month with the 0 and 5 cm means has the 0-7 cm layer, and no other month does
    t = toolik["tsoil"].isel(site=0)
    np.testing.assert_array_equal(np.isfinite(stl["stl1"]),
                                  np.isfinite(t.sel(depth=0)) & np.isfinite(t.sel(depth=5)))


def test_toolik_monthly_mean_equals_the_readings(toolik):
    raw = pd.read_csv(TOOLIK, dtype={"hour": str})
    july = raw[raw["date"].str.startswith("2010-07")]
    assert float(toolik["coverage"].sel(time="2010-07", depth=10).squeeze()) == pytest.approx(
        july["soil1_10cm"].notna().sum() / (31 * 8))
    assert float(toolik["tsoil"].sel(time="2010-07", depth=10).squeeze()) == pytest.approx(
        july["soil1_10cm"].mean())


def test_toolik_hourly_1988_expects_24_readings_a_day(toolik):
    raw = pd.read_csv(TOOLIK, dtype={"hour": str})
    aug = raw[raw["date"].str.startswith("1988-08")]
    assert aug.groupby("date").size().mode()[0] == 24  # hourly rows; 29 days have rows
    cov = float(toolik["coverage"].sel(time="1988-08", depth=0).squeeze())
    assert cov == pytest.approx(aug["soil1_moss"].notna().sum() / (31 * 24))
    assert 0.8 < cov < 0.95  # missing days count as missing readings


# --- other formats ------------------------------------------------------------------------------
def _daily(days: int = 31) -> pd.DatetimeIndex:
    return pd.date_range("2015-01-01", periods=days, freq="D")


def test_gtnp_export_with_metadata_json(tmp_path):
    days = _daily(59)
    rows = [{"dataset_id": 812, "date": d.strftime("%Y-%m-%d"), "depth": depth,
             "temperature": -3.0 - 10 * depth} for d in days for depth in (0.02, 0.2, 0.5)]
    pd.DataFrame(rows).to_csv(tmp_path / "gt.csv", index=False)
    meta = [{"id": 812, "borehole": {"site_id": "BH-7", "location": {
        "latitude": 68.1, "longitude": -150.2, "elevation": 300}}}]
    (tmp_path / "gt.json").write_text(json.dumps(meta))
    ds = StationSoilTemperatureSource(path=str(tmp_path / "gt.csv"), format="gtnp",
                                      metadata_file=str(tmp_path / "gt.json")).open()
    assert str(ds["name"].values[0]) == "BH-7" and float(ds["lat"][0]) == pytest.approx(68.1)
    assert list(ds["depth"].values) == [2.0, 20.0, 50.0]
    # 0-7 cm: the 2 cm sensor alone; 7-28 cm: 2 and 20 cm; 28-100 cm: 20 and 50 cm
    np.testing.assert_allclose(ds["stl1"].values[:, 0], -3.2)
    assert np.isnan(ds["stl4"]).all()


def test_gtnp_missing_metadata_record_is_named(tmp_path):
    pd.DataFrame({"dataset_id": [1], "date": ["2015-01-01"], "depth": [0.1],
                  "temperature": [-1.0]}).to_csv(tmp_path / "gt.csv", index=False)
    (tmp_path / "gt.json").write_text(json.dumps([{"id": 2}]))
    with pytest.raises(DataError, match="no metadata record with id '1'"):
        StationSoilTemperatureSource(path=str(tmp_path / "gt.csv"), format="gtnp",
                                     metadata_file=str(tmp_path / "gt.json")).open()


def test_plain_long_and_wide_tables_agree(tmp_path):
    days = _daily(31)
    wide = pd.DataFrame({"time": days, "t5": np.linspace(-5, -4, 31), "t50": -2.0})
    wide.loc[3, "t5"] = -999
    wide.to_csv(tmp_path / "wide.csv", index=False)
    long = wide.melt(id_vars="time", var_name="depth", value_name="temperature")
    long["depth"] = long["depth"].map({"t5": 5, "t50": 50})
    long.to_csv(tmp_path / "long.csv", index=False)
    common = {"site": "X", "lat": 65.0, "lon": 210.0, "na_values": [-999]}
    a = StationSoilTemperatureSource(path=str(tmp_path / "wide.csv"), format="wide",
                                     depths={"t5": 5, "t50": 50}, **common).open()
    b = StationSoilTemperatureSource(path=str(tmp_path / "long.csv"), format="long",
                                     **common).open()
    for v in ("stl1", "stl2", "stl3"):
        np.testing.assert_allclose(a[v].values, b[v].values)
    assert float(a["lon"][0]) == pytest.approx(-150.0)
    assert float(a["coverage"].sel(depth=5).squeeze()) == pytest.approx(30 / 31)


def test_text_in_a_number_column_names_the_column(tmp_path):
    pd.DataFrame({"date": ["2015-01-01"], "hour": ["300"], "s5": ["warm"]}).to_csv(
        tmp_path / "edc.csv", index=False)
    with pytest.raises(DataError, match="line 2, column 's5': 'warm' is not a number"):
        station.read_edc(tmp_path / "edc.csv", {"s5": 5})


def test_undeclared_depth_column_is_named(tmp_path):
    with pytest.raises(DataError, match="no column 'soil1_20cm'"):
        station.read_edc(TOOLIK, {"soil1_20cm": 20})


def test_cli_station_error_is_one_line(tmp_path):
    cat = tmp_path / "cat.yaml"
    cat.write_text("""version: 2
entries:
  obs:
    kwargs: {plugin: station-soil-temperature, options: {path: "{CATALOG_DIR}/none.csv",
             format: edc, depths: {a: 5}, lat: 68, lon: -150}}
    metadata: {role: observations}
  forcing:
    kwargs: {plugin: climate-reanalyzer, options: {path: "{CATALOG_DIR}/none", spatial: points}}
    metadata: {role: reanalysis}
""")
    res = CliRunner().invoke(cli, ["data", "build", "--catalog", str(cat), "--spatial", "sites",
                                   "--source", "forcing", "--out", str(tmp_path / "t.nc")])
    assert res.exit_code == 1, res.output
    assert "none" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "t.nc").exists()
