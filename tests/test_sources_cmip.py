"""cmip source: DRS NetCDF (noleap, 360_day, CMIP6 names), real region and band tables."""
from __future__ import annotations

from pathlib import Path

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.plugins.sources.cmip import open_cmip, parse_drs

REAL = Path(__file__).resolve().parents[1] / "permaplug" / "resources" / "real"
LAT = np.array([62.0, 64.0, 66.0])          # bands 1, 2, 3
LON = np.array([205.0, 210.0, 230.0])       # -155, -150 (inside Alaska), -130 (outside)


def _times(calendar: str, start: tuple[int, int], n: int, skip: tuple[int, int] | None = None):
    out = []
    y, m = start
    for _ in range(n):
        if (y, m) != skip:
            out.append(cftime.datetime(y, m, 15, calendar=calendar))
        m += 1
        if m == 13:
            y, m = y + 1, 1
    return out


def _write(folder: Path, var: str, model: str, exp: str, member: str, times, values,
           units: str, grid: str | None = None, calendar: str = "noleap") -> Path:
    t0, t1 = times[0], times[-1]
    name = (f"{var}_{'Lmon' if var.startswith('mrso') else 'Amon'}_{model}_{exp}_{member}"
            + (f"_{grid}" if grid else "")
            + f"_{t0.year:04d}{t0.month:02d}-{t1.year:04d}{t1.month:02d}.nc")
    data = np.broadcast_to(np.asarray(values, dtype=float)[:, None, None],
                           (len(times), LAT.size, LON.size)).copy()
    ds = xr.Dataset({var: (("time", "lat", "lon"), data, {"units": units})},
                    coords={"time": times, "lat": LAT, "lon": LON})
    ds["time"].encoding.update(units="days since 1850-01-01", calendar=calendar)
    ds.to_netcdf(folder / name)
    return folder / name


def _month(ts) -> np.ndarray:
    return np.array([t.month for t in ts], dtype=float)


def _cmip5_set(folder: Path) -> None:
    """IPSL-like: historical 2004-01..2005-12, rcp85 2006-02..2007-12 (January 2006 absent)."""
    model, mem = "IPSL-CM5A-MR", "r1i1p1"
    hist = _times("noleap", (2004, 1), 24)
    rcp = _times("noleap", (2006, 1), 24, skip=(2006, 1))
    _write(folder, "tas", model, "historical", mem, hist, 250.0 + _month(hist), "K")
    _write(folder, "tas", model, "rcp85", mem, rcp, 260.0 + _month(rcp), "K")
    _write(folder, "hfls", model, "historical", mem, hist, np.full(len(hist), 10.0), "W m-2")
    _write(folder, "hfls", model, "rcp85", mem, rcp, np.full(len(rcp), 20.0), "W m-2")
    _write(folder, "pr", model, "historical", mem, hist, np.full(len(hist), 1e-5), "kg m-2 s-1")
    _write(folder, "pr", model, "rcp85", mem, rcp, np.full(len(rcp), 2e-5), "kg m-2 s-1")


def test_parse_drs_cmip5_and_cmip6():
    a = parse_drs(Path("tas_Amon_IPSL-CM5A-MR_rcp85_r1i1p1_200601-210012.nc"))
    assert (a.var, a.table, a.model, a.experiment, a.member, a.grid) == \
        ("tas", "Amon", "IPSL-CM5A-MR", "rcp85", "r1i1p1", None)
    b = parse_drs(Path("tas_Amon_IPSL-CM6A-LR_ssp585_r1i1p1f1_gr_201501-210012.nc"))
    assert (b.model, b.experiment, b.member, b.grid) == ("IPSL-CM6A-LR", "ssp585", "r1i1p1f1", "gr")
    assert parse_drs(Path("sftlf_fx_IPSL-CM5A-MR_historical_r0i0p0.nc")).table == "fx"
    with pytest.raises(DataError, match="data reference syntax"):
        parse_drs(Path("tas_2006.nc"))


def test_noleap_join_gap_units_and_sign(tmp_path):
    _cmip5_set(tmp_path)
    with pytest.warns(UserWarning, match="missing month.s. filled with the 'seasonal' gap "
                                         "policy: rcp85: 2006-01"):
        ds = open_cmip(tmp_path, empty_bands="missing")
    assert ds.attrs["historical_end"] == "2005-12"
    assert list(ds["scenario"].values) == ["rcp85"]
    t = pd.DatetimeIndex(ds["time"].values)
    assert len(t) == 48 and t.is_unique and t[0] == pd.Timestamp("2004-01-01") \
        and t[-1] == pd.Timestamp("2007-12-01")
    # January 2006 filled (seasonal policy) and reported
    assert ds.attrs["gap_filled_months"] == "rcp85: 2006-01"
    assert bool(ds["gap_filled"].sel(time="2006-01-01").squeeze())
    assert int(ds["gap_filled"].sum()) == 1
    b2 = ds.sel(scenario="rcp85", band=2)
    # K -> degC: historical January = 251 K
    assert float(b2["t2m"].sel(time="2004-01-01")) == pytest.approx(251 - 273.15)
    # seasonal fill: mean of the Januaries within 5 years (2004, 2005 hist; 2007 rcp)
    assert float(b2["t2m"].sel(time="2006-01-01")) == pytest.approx(
        np.mean([251, 251, 261]) - 273.15)
    # hfls 10 W m-2 upward -> slhf = -10 x seconds in the month (positive downward)
    assert float(b2["slhf"].sel(time="2005-02-01")) == pytest.approx(-10 * 28 * 86400)
    assert float(b2["slhf"].sel(time="2007-03-01")) == pytest.approx(-20 * 31 * 86400)
    # pr 1e-5 kg m-2 s-1 -> mm per month
    assert float(b2["tp"].sel(time="2004-04-01")) == pytest.approx(1e-5 * 30 * 86400)
    # band 4/5 have no model cell; band 0 neither -> NaN (empty_bands="missing"; the default
    # nearest-row rule is tested in test_coarse_grids.py)
    assert ds["t2m"].sel(band=[0, 4, 5]).isnull().all()
    assert ds.attrs[schema.DATA_LABEL_ATTR] == "CMIP IPSL-CM5A-MR (real)"


def test_gap_policy_error_and_flag(tmp_path):
    _cmip5_set(tmp_path)
    with pytest.raises(DataError, match="missing months 2006-01"):
        open_cmip(tmp_path, empty_bands="missing", gap_policy="error")
    with pytest.warns(UserWarning, match=r"left missing \(gap policy 'flag'\): rcp85: 2006-01"):
        flagged = open_cmip(tmp_path, empty_bands="missing", gap_policy="flag")
    assert flagged.attrs["gap_months"] == "rcp85: 2006-01"
    assert flagged["t2m"].sel(time="2006-01-01", band=2).isnull().all()


def test_360_day_calendar_months(tmp_path):
    model, mem = "HadGEM2-ES", "r1i1p1"
    hist = [cftime.datetime(2004 + i // 12, i % 12 + 1, 30 if i % 12 == 1 else 16,
                            calendar="360_day") for i in range(24)]   # includes 30 February
    rcp = _times("360_day", (2006, 1), 12)
    _write(tmp_path, "tas", model, "historical", mem, hist, np.arange(24) + 250.0, "K",
           calendar="360_day")
    _write(tmp_path, "tas", model, "rcp45", mem, rcp, np.arange(12) + 280.0, "K",
           calendar="360_day")
    ds = open_cmip(tmp_path, empty_bands="missing")
    t = pd.DatetimeIndex(ds["time"].values)
    assert len(t) == 36 and t.is_unique   # none lost, none duplicated
    assert (t == pd.date_range("2004-01-01", periods=36, freq="MS")).all()
    assert float(ds["t2m"].sel(time="2004-02-01", band=1).squeeze()) == pytest.approx(251 - 273.15)
    assert ds.attrs["gap_months"] == ""


def test_cmip6_names_and_land_fraction(tmp_path):
    model, mem = "IPSL-CM6A-LR", "r1i1p1f1"
    hist = _times("gregorian", (2013, 1), 24)
    ssp = _times("gregorian", (2015, 1), 12)
    # two inside cells per band row (-155, -150) with different values per longitude
    for exp, times in (("historical", hist), ("ssp585", ssp)):
        t0, t1 = times[0], times[-1]
        data = np.zeros((len(times), LAT.size, LON.size)) + 270.0
        data[:, :, 1] = 280.0
        xr.Dataset({"tas": (("time", "lat", "lon"), data, {"units": "K"})},
                   coords={"time": times, "lat": LAT, "lon": LON}).to_netcdf(
            tmp_path / f"tas_Amon_{model}_{exp}_{mem}_gr_{t0.year}{t0.month:02d}-"
                       f"{t1.year}{t1.month:02d}.nc")
    sftlf = np.full((LAT.size, LON.size), 100.0)
    sftlf[:, 1] = 25.0   # the 280 K column is 25 % land
    xr.Dataset({"sftlf": (("lat", "lon"), sftlf, {"units": "%"})},
               coords={"lat": LAT, "lon": LON}).to_netcdf(
        tmp_path / f"sftlf_fx_{model}_historical_{mem}_gr.nc")
    ds = open_cmip(tmp_path, empty_bands="missing")
    expected = (1.0 * 270 + 0.25 * 280) / 1.25 - 273.15   # same latitude: cos cancels
    assert float(ds["t2m"].sel(band=2, time="2015-06-01").squeeze()) == pytest.approx(expected)
    assert ds.attrs["historical_end"] == "2014-12"
    assert "sftlf" in ds.attrs["provenance"]
    grid = open_cmip(tmp_path, spatial="grid")
    assert grid.sizes["cell"] == 3   # the 25 % column is not a land cell (< 50 %)


def test_real_region_table_ipsl_tas():
    ds = open_cmip(REAL / "cmip5_alaska_box", variables=["tas"])
    t = pd.DatetimeIndex(ds["time"].values)
    assert t.is_unique
    assert (t == pd.date_range("1850-01-01", "2099-12-01", freq="MS")).all()
    assert ds.attrs["historical_end"] == "2005-12"
    assert ds["t2m"].attrs["units"] == "degC"
    assert ds["t2m"].notnull().all()
    # first historical row of IPSL-CM5A-MR run1 (file: 255.002947642 K), same in all bands
    assert float(ds["t2m"].sel(scenario="rcp85", time="1850-01-01", band=3)) == \
        pytest.approx(255.002947642 - 273.15)
    # 2006-01 comes from each RCP file (rcp85: 265.339918373 K)
    assert float(ds["t2m"].sel(scenario="rcp85", time="2006-01-01", band=0)) == \
        pytest.approx(265.339918373 - 273.15)
    # mixed time formats: 1899-12 (long format) and 1900-01 (short) are consecutive
    assert pd.Timestamp("1899-12-01") in t and pd.Timestamp("1900-01-01") in t
    pr = open_cmip(REAL / "cmip5_alaska_box", variables=["pr"], scenarios=["rcp45"],
                   spatial="region")
    # pr mm/day -> mm per month: 2006-02 rcp45 IPSL = 1.15854369154 mm/day x 28 days
    assert float(pr["tp"].sel(time="2006-02-01").squeeze()) == pytest.approx(1.15854369154 * 28)
    assert set(pr["tp"].dims) == {"scenario", "time"}


def test_real_region_table_unknown_run():
    with pytest.raises(DataError, match="no column for model 'IPSL-CM5A-MR' run 'run7'"):
        open_cmip(REAL / "cmip5_alaska_box", variables=["tas"], run="run7")


def test_real_band_table_gfdl():
    ds = open_cmip(REAL / "cmip5_gfdl_esm2g_bands", scenarios=["rcp85"])
    assert ds.sizes["time"] == 960 and ds.sizes["band"] == 6
    first = ds.sel(scenario="rcp85", time="2021-01-01")
    # band_1 row: temperature_2m 262.93008 K, surface_latent_heat_flux_sum 14.803677 W m-2 up
    assert float(first["t2m"].sel(band=0)) == pytest.approx(262.93008 - 273.15)
    assert float(first["slhf"].sel(band=0)) == pytest.approx(-14.803677 * 31 * 86400)
    assert float(first["sshf"].sel(band=0)) == pytest.approx(1.5987152 * 31 * 86400)
    assert float(first["tp"].sel(band=0)) == pytest.approx(3.2628253e-05 * 31 * 86400)
    assert float(first["mrsos"].sel(band=0)) == pytest.approx(37.891304)
    assert ds.attrs["historical_included"] == "no"
