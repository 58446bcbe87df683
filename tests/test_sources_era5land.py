"""era5land source: real CDS file, CDS layouts, hourly/daily aggregation, Earth Engine CSV."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.plugins.sources.era5land import ERA5LandSource, open_era5land

REAL = Path(__file__).resolve().parents[1] / "permaplug" / "resources" / "real"
HEALY = REAL / "era5_cds_monthly_healy"

# two cells in band 2 (inside Alaska), one in band 3, one at sea-level latitude outside Alaska
LATS = np.array([66.0, 64.0, 63.5])          # descending, as the CDS delivers
LONS = np.array([-150.0, -147.0, 175.0])     # 175 E: outside the region polygon


def _cds_monthly(path: Path, layout: str = "new") -> Path:
    """A CDS monthly-means file (3 months) with known values."""
    time = pd.date_range("2001-01-01", periods=3, freq="MS")
    shape = (3, LATS.size, LONS.size)
    t2m = np.full(shape, 273.15)
    t2m[:, 1, 0] = 263.15   # 64N,-150E: -10 degC
    t2m[:, 1, 1] = 283.15   # 64N,-147E: +10 degC
    t2m[:, 2, :] = 253.15   # 63.5N: -20 degC
    t2m[:, 0, 0] = np.nan   # a sea cell in band 3
    t2m[:, 0, 1] = 278.15   # 66N,-147E: +5 degC, the only land cell of band 3
    tp = np.full(shape, 0.002)  # m per day (monthly-means convention)
    slhf = np.full(shape, -1.0e6)  # J m-2 per day, positive downward (evaporation < 0)
    dims = ("valid_time" if layout == "new" else "time", "latitude", "longitude")
    ds = xr.Dataset(
        {"t2m": (dims, t2m, {"units": "K"}), "tp": (dims, tp, {"units": "m"}),
         "slhf": (dims, slhf, {"units": "J m**-2"}),
         "stl1": (dims, t2m + 1.0, {"units": "K"}),
         "swvl1": (dims, np.full(shape, 0.3), {"units": "m**3 m**-3"})},
        coords={dims[0]: time, "latitude": LATS, "longitude": LONS},
    )
    if layout == "new":
        ds = ds.assign_coords(expver=("valid_time", np.array(["0001"] * 3)), number=0)
    ds.to_netcdf(path)
    return path


def test_real_cds_healy_units_and_band_mean():
    ds = open_era5land(HEALY)
    raw = xr.open_dataset(HEALY / "era5_1980.nc")
    assert ds["t2m"].attrs["units"] == "degC"
    assert ds.sizes["time"] == 240 and ds["time"].dtype == np.dtype("datetime64[ns]")
    assert list(ds["n_cells"].values) == [0, 0, 4, 0, 0, 0]  # 63.67-63.92 N: band 2
    # hand calculation: cos(lat)-weighted mean of the 2x2 cells, K -> degC
    jan = raw["t2m"].isel(date=0).values.astype(float)
    w = np.cos(np.deg2rad(raw["latitude"].values))[:, None] * np.ones((1, 2))
    expected = (jan * w).sum() / w.sum() - 273.15
    assert float(ds["t2m"].sel(time="1980-01-01", band=2)) == pytest.approx(expected, abs=1e-4)
    assert float(ds["t2m"].sel(time="1980-01-01", band=2)) == pytest.approx(-21.83, abs=0.01)
    assert ds["t2m"].sel(band=0).isnull().all()
    assert ds.attrs[schema.DATA_LABEL_ATTR] == "ERA5-Land (real)"


@pytest.mark.parametrize("layout", ["new", "old"])
def test_cds_monthly_means_conventions(tmp_path, layout):
    ds = open_era5land(_cds_monthly(tmp_path / "m.nc", layout), data_label="fixture")
    b2 = ds.sel(band=2)
    # band 2 (63.29-65.30 N) holds the 64 N cells (-10, +10 degC) and the 63.5 N cells
    # (-20, -20 degC) west of -141; the 175 E cells are outside the region polygon
    lat = np.array([64.0, 64.0, 63.5, 63.5])
    vals = np.array([-10.0, 10.0, -20.0, -20.0])
    wts = np.cos(np.deg2rad(lat))
    expected = (vals * wts).sum() / wts.sum()
    assert float(b2["t2m"].isel(time=0)) == pytest.approx(expected)
    assert float(b2["stl1"].isel(time=0)) == pytest.approx(expected + 1.0)
    # tp: 0.002 m/day -> mm per month = 2 mm x days (Jan 31, Feb 28)
    assert b2["tp"].values.tolist() == pytest.approx([62.0, 56.0, 62.0])
    assert float(b2["slhf"].isel(time=1)) == pytest.approx(-1.0e6 * 28)  # sign kept (downward)
    assert ds["tp"].attrs["units"] == "mm" and ds["slhf"].attrs["units"] == "J m-2"
    assert ds["swvl1"].attrs["units"] == "m3 m-3"
    # band 3: the NaN (sea) cell drops out of numerator and denominator
    assert float(ds["t2m"].sel(band=3).isel(time=0)) == pytest.approx(5.0)


def test_band_mean_hand_calculation(tmp_path):
    lats = np.array([64.0, 63.5])
    lons = np.array([-150.0, -147.0])
    vals = np.array([[1.0, 2.0], [3.0, 7.0]])
    ds = xr.Dataset({"t2m": (("time", "latitude", "longitude"), vals[None] + 273.15,
                             {"units": "K"})},
                    coords={"time": pd.to_datetime(["2001-01-01"]), "latitude": lats,
                            "longitude": lons})
    ds.to_netcdf(tmp_path / "a.nc")
    out = open_era5land(tmp_path / "a.nc")
    w = np.cos(np.deg2rad(lats))
    expected = (w[0] * (1 + 2) + w[1] * (3 + 7)) / (2 * w[0] + 2 * w[1])
    assert float(out["t2m"].sel(band=2).isel(time=0)) == pytest.approx(expected, rel=1e-6)
    assert expected != pytest.approx(np.mean(vals))  # the weighting matters here


def test_grid_mode_cells(tmp_path):
    ds = open_era5land(_cds_monthly(tmp_path / "m.nc"), spatial="grid")
    # land cells inside the polygon: (64,-150), (64,-147), (63.5,-150), (63.5,-147), (66,-147)
    assert ds.sizes["cell"] == 5
    assert set(ds["band"].values.tolist()) == {2, 3}
    assert (ds["lon"] < -140).all()
    cell = ds.where((ds["lat"] == 64.0) & (ds["lon"] == -147.0), drop=True)
    assert float(cell["t2m"].isel(time=0, cell=0)) == pytest.approx(10.0)
    assert float(ds["t2m"].where(ds["band"] == 3, drop=True).isel(time=0, cell=0)) == 5.0


def test_hourly_accumulation_convention(tmp_path):
    # February 2001 hourly + 00 UTC of 1 March: tp accumulates 0.001 m per hour from 00 UTC
    time = pd.date_range("2001-02-01 00:00", "2001-03-01 00:00", freq="h")
    hours = time.hour.to_numpy()
    acc = np.where(hours == 0, 24, hours) * 0.001        # 00 UTC holds the previous day's 24 h
    acc[0] = 0.5  # 00 UTC 1 Feb = 31 January's total: must not count in February
    t2m = 273.15 + np.sin(np.arange(time.size))
    ds = xr.Dataset({"tp": (("time", "latitude", "longitude"), acc[:, None, None], {"units": "m"}),
                     "t2m": (("time", "latitude", "longitude"), t2m[:, None, None],
                             {"units": "K"})},
                    coords={"time": time, "latitude": [64.0], "longitude": [-147.0]})
    ds.to_netcdf(tmp_path / "h.nc")
    out = open_era5land(tmp_path / "h.nc", product="hourly")
    feb = out.sel(time="2001-02-01", band=2)
    assert float(feb["tp"]) == pytest.approx(28 * 24.0)   # 28 days x 24 mm
    # state variables: mean of February's own hours (1 March 00 UTC belongs to March)
    assert float(feb["t2m"]) == pytest.approx(float(np.mean(t2m[time.month == 2])) - 273.15)
    # January: only its last day's total is present -> incomplete -> NaN, never partial
    assert np.isnan(float(out["tp"].sel(time="2001-01-01", band=2)))


def _ee_csv(path: Path, daily: bool) -> Path:
    if daily:
        time = pd.date_range("2001-01-01", "2001-02-28", freq="D")
    else:
        time = pd.date_range("2001-01-01", periods=2, freq="MS")
    rows = []
    for t in time:
        for b in range(1, 7):
            rows.append({"date": t.strftime("%Y-%m-%d"), "band": f"band_{b}",
                         "temperature_2m": 263.15 + b, "total_precipitation_sum": 0.001 * b,
                         "surface_sensible_heat_flux_sum": -2.0e5,
                         "soil_temperature_level_1": 270.15, ".geo": "{}"})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_ee_csv_daily_and_monthly(tmp_path):
    daily = open_era5land(_ee_csv(tmp_path / "d.csv", daily=True))
    assert daily.sizes["time"] == 2 and daily.sizes["band"] == 6
    # band_1 (1-based in the file) -> band 0: 1 mm/day x 31 days
    assert float(daily["tp"].sel(time="2001-01-01", band=0)) == pytest.approx(31.0)
    assert float(daily["tp"].sel(time="2001-02-01", band=5)) == pytest.approx(6 * 28.0)
    assert float(daily["t2m"].sel(time="2001-02-01", band=2)) == pytest.approx(-7.0)
    assert float(daily["sshf"].sel(time="2001-01-01", band=0)) == pytest.approx(-2.0e5 * 31)
    monthly = open_era5land(_ee_csv(tmp_path / "m.csv", daily=False))
    assert float(monthly["tp"].sel(time="2001-02-01", band=5)) == pytest.approx(6.0)  # a total
    assert float(monthly["stl1"].sel(band=3).isel(time=0)) == pytest.approx(-3.0)


def test_errors_are_one_line(tmp_path):
    with pytest.raises(DataError, match="no files at"):
        open_era5land(tmp_path / "missing.nc")
    bad = tmp_path / "bad.nc"
    xr.Dataset({"t2m": (("time", "latitude", "longitude"), [[[1.0]]], {"units": "furlongs"})},
               coords={"time": pd.to_datetime(["2001-01-01"]), "latitude": [64.0],
                       "longitude": [-147.0]}).to_netcdf(bad)
    with pytest.raises(DataError, match="t2m: units 'furlongs'"):
        open_era5land(bad)
    flat = tmp_path / "flat.nc"
    xr.Dataset({"t2m": (("time",), [1.0], {"units": "K"})},
               coords={"time": pd.to_datetime(["2001-01-01"])}).to_netcdf(flat)
    with pytest.raises(DataError, match="flat.nc: no latitude/longitude coordinates"):
        open_era5land(flat)
    with pytest.raises(DataError, match="option 'paths'"):
        ERA5LandSource().open()
    with pytest.raises(DataError, match="spatial='cells'"):
        ERA5LandSource(paths=str(HEALY), spatial="cells").open()


def test_ee_gridded_netcdf_daily(tmp_path):
    # an xee-style export: dims time, lon, lat; Earth Engine band names; DAILY_AGGR totals
    time = pd.date_range("2001-04-01", "2001-04-30", freq="D")
    ds = xr.Dataset(
        {"temperature_2m": (("time", "lon", "lat"), np.full((time.size, 1, 1), 268.15)),
         "total_precipitation_sum": (("time", "lon", "lat"), np.full((time.size, 1, 1), 0.002))},
        coords={"time": time, "lon": [-150.0], "lat": [66.0]})
    ds.to_netcdf(tmp_path / "xee.nc")
    out = open_era5land(tmp_path / "xee.nc", format="ee-netcdf")
    assert out.sizes["time"] == 1
    assert float(out["t2m"].sel(band=3).squeeze()) == pytest.approx(-5.0)
    assert float(out["tp"].sel(band=3).squeeze()) == pytest.approx(60.0)  # 2 mm x 30 days


def test_old_layout_expver_dimension_and_0_360_longitudes(tmp_path):
    # ERA5 (expver 1) for Jan-Feb, ERA5T (expver 5) for March: NaN where the other holds data
    time = pd.date_range("2023-01-01", periods=3, freq="MS")
    t2m = np.full((3, 2, 1, 1), np.nan)
    t2m[:2, 0] = 263.15
    t2m[2, 1] = 283.15
    ds = xr.Dataset({"t2m": (("time", "expver", "latitude", "longitude"), t2m, {"units": "K"})},
                    coords={"time": time, "expver": [1, 5], "latitude": [64.0],
                            "longitude": [213.0]})   # 213 E = -147 E
    ds.to_netcdf(tmp_path / "expver.nc")
    out = open_era5land(tmp_path / "expver.nc")
    assert out["t2m"].sel(band=2).values.tolist() == pytest.approx([-10.0, -10.0, 10.0])
