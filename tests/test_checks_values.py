"""Value checks on load (issue 15, item 3): fill values and sentinels become gaps that the gap
policy reports; impossible values for the declared units are one error line naming the file,
the variable and the first bad value; text in a numeric column names file, line and column.

Fixtures are copies of the real files bundled with permaplug (CMIP5 region tables, the GFDL
band tables, the ERA5 CDS NetCDF, the Climate Reanalyzer exports), damaged one way per test.
"""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

from permaplug.cli import cli
from permaplug.core.errors import DataError
from permaplug.data import checks
from permaplug.plugins.sources.climate_reanalyzer import read_points
from permaplug.plugins.sources.cmip import open_cmip
from permaplug.plugins.sources.era5land import open_era5land

REAL = Path(__file__).resolve().parents[1] / "permaplug" / "resources" / "real"
BOX = REAL / "cmip5_alaska_box"
HEALY = REAL / "era5_cds_monthly_healy"


def box_copy(tmp_path: Path, experiments=("historical", "rcp85")) -> Path:
    """The real IPSL tas/pr region tables of ``experiments`` copied to ``tmp_path/box``."""
    out = tmp_path / "box"
    out.mkdir()
    for var in ("tas", "pr"):
        for exp in experiments:
            name = f"timeSeriesLO_{var}_Alaska_Monthly_{exp}.csv"
            shutil.copy(BOX / name, out / name)
    return out


def edit_line(path: Path, line: int, column: int, value: str) -> str:
    """Replace the ``column``-th comma-separated field of file line ``line`` (1-based)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    fields = lines[line - 1].rstrip("\n").split(",")
    old = fields[column]
    fields[column] = value
    lines[line - 1] = ",".join(fields) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    return old


def ipsl_column(path: Path) -> int:
    """Index of the IPSL-CM5A-MR run1 column in a region table (header lines 1-2)."""
    models = path.read_text(encoding="utf-8").splitlines()[0].split(",")
    runs = path.read_text(encoding="utf-8").splitlines()[1].split(",")
    return next(i for i, (m, r) in enumerate(zip(models, runs))
                if m == "IPSL-CM5A-MR" and r == "run1")


# --- tables: sentinels, empty cells, text -----------------------------------------------------
@pytest.mark.parametrize("hole", ["-999", "-9999", "1e20", ""])
def test_table_sentinels_and_empty_cells_become_reported_gaps(tmp_path, hole):
    box = box_copy(tmp_path)
    f = box / "timeSeriesLO_tas_Alaska_Monthly_rcp85.csv"
    col = ipsl_column(f)
    edit_line(f, 4 + 13, col, hole)  # 2007-02 (line 4 is 2006-01)
    with pytest.warns(UserWarning) as record:
        ds = open_cmip(box, variables=["tas"], spatial="region")
    messages = [str(w.message) for w in record]
    assert any(str(f) in m and "1 missing value(s)" in m and "treated as gaps" in m
               for m in messages), messages
    assert any("missing month(s) filled with the 'seasonal' gap policy: rcp85: 2007-02" in m
               for m in messages), messages
    t2m = ds["t2m"].sel(scenario="rcp85")
    assert bool(t2m.notnull().all())
    # filled from the Februaries of 2002-2012 (seasonal policy), a plausible value, not -999 K
    feb = t2m.sel(time=(t2m["time"].dt.month == 2) & (abs(t2m["time"].dt.year - 2007) <= 5)
                  & (t2m["time"].dt.year != 2007))
    assert float(t2m.sel(time="2007-02-01")) == pytest.approx(float(feb.mean()), abs=1e-9)
    assert ds.attrs["gap_filled_months"] == "rcp85: 2007-02"


def test_table_sentinel_with_error_policy_is_refused(tmp_path):
    box = box_copy(tmp_path)
    f = box / "timeSeriesLO_pr_Alaska_Monthly_rcp85.csv"
    edit_line(f, 10, ipsl_column(f), "-999")
    with pytest.warns(UserWarning, match="treated as gaps"), \
            pytest.raises(DataError, match="missing months 2006-07 .gap policy 'error'"):
        open_cmip(box, variables=["pr"], gap_policy="error")


def test_text_in_a_number_column_names_file_line_and_column(tmp_path):
    box = box_copy(tmp_path)
    f = box / "timeSeriesLO_tas_Alaska_Monthly_historical.csv"
    edit_line(f, 250, ipsl_column(f), "n/a?")
    with pytest.raises(DataError) as err:
        open_cmip(box, variables=["tas"])
    msg = str(err.value)
    assert msg == f"{f}: line 250, column 'IPSL-CM5A-MR run1': 'n/a?' is not a number"
    assert "n/a?" in f.read_text().splitlines()[249]  # the line named is the line edited


def test_text_in_a_band_table_and_in_a_reanalyzer_export(tmp_path):
    src = REAL / "cmip5_gfdl_esm2g_bands" / "RCP26_df.csv.gz"
    df = pd.read_csv(src)
    df["temperature_2m"] = df["temperature_2m"].astype(object)
    df.loc[6, "temperature_2m"] = "warm"
    (tmp_path / "bands").mkdir()
    df.to_csv(tmp_path / "bands" / "RCP26_df.csv", index=False)
    with pytest.raises(DataError, match=r"RCP26_df.csv: line 8, column 'temperature_2m': "
                                        r"'warm' is not a number"):
        open_cmip(tmp_path / "bands")
    folder = tmp_path / "points"
    folder.mkdir()
    for var in ("temp", "precip", "dew"):
        shutil.copy(REAL / "era5_alaska_points" / f"Coldfoot_{var}.csv", folder)
    f = folder / "Coldfoot_temp.csv"
    line = 8 + 1 + 4  # 8 header lines, the column names, then the fourth year
    edit_line(f, line, 4, "x12")  # fields: Year, Jan, Feb, Mar, Apr
    with pytest.raises(DataError, match=r"Coldfoot_temp.csv: line 13, column 'Apr': 'x12'"):
        read_points(folder)


# --- impossible values for the declared units ---------------------------------------------------
def _healy_copy(tmp_path: Path, change) -> Path:
    out = tmp_path / "healy"
    out.mkdir()
    ds = xr.load_dataset(HEALY / "era5_1980.nc")
    change(ds)
    ds.to_netcdf(out / "era5_1980.nc")
    return out


def test_celsius_labelled_kelvin_is_refused_naming_file_variable_value(tmp_path):
    def to_celsius_keep_label(ds):
        ds["t2m"] = (ds["t2m"] - 273.15).assign_attrs(ds["t2m"].attrs)  # units still 'K'

    folder = _healy_copy(tmp_path, to_celsius_keep_label)
    with pytest.raises(DataError) as err:
        open_era5land(folder)
    msg = str(err.value)
    first = float(xr.load_dataset(HEALY / "era5_1980.nc")["t2m"].isel(date=0, latitude=0,
                                                                       longitude=0)) - 273.15
    assert msg.startswith(f"{folder / 'era5_1980.nc'}: variable 't2m': value {first:g} K at ")
    assert "impossible for a temperature quantity (150-350 K)" in msg
    assert "degC labelled K" in msg and "\n" not in msg


def test_kelvin_labelled_celsius_is_refused(tmp_path):
    folder = _healy_copy(tmp_path, lambda ds: ds["t2m"].attrs.update(units="degC"))
    with pytest.raises(DataError, match=r"variable 't2m': value 2\d\d\.?\d* degC .*impossible"):
        open_era5land(folder)


def test_the_real_files_pass_the_checks():
    """The control: the undamaged real files load (no false alarm)."""
    assert open_era5land(HEALY)["t2m"].notnull().any()
    assert open_cmip(BOX, variables=["tas", "pr"], scenarios=["rcp26"])["tp"].notnull().all()
    assert open_cmip(REAL / "cmip5_gfdl_esm2g_bands", scenarios=["rcp45"]).sizes["band"] == 6


def test_negative_precipitation_and_undeclared_fill_values_in_cmip_files(tmp_path):
    from test_sources_cmip import _cmip5_set

    _cmip5_set(tmp_path)
    f = next(tmp_path.glob("pr_Amon_*_rcp85_*.nc"))
    ds = xr.load_dataset(f)
    ds["pr"][5, 1, 1] = -3e-5
    ds.to_netcdf(f)
    with pytest.raises(DataError, match=rf"{f.name}: variable 'pr': value -3e-05 kg m-2 s-1 "
                                        r"at time 2006-07.*non negative"):
        open_cmip(tmp_path, empty_bands="missing")
    ds["pr"][5, 1, 1] = 1e20  # CMIP's missing value, but not declared as _FillValue
    ds.to_netcdf(f)
    with pytest.raises(DataError, match="value 1e.20 .*undeclared fill value"):
        open_cmip(tmp_path, empty_bands="missing")
    ds["pr"][5] = 1e20  # the whole month, declared: a gap the gap policy fills and reports
    ds["pr"].encoding["_FillValue"] = 1e20
    ds.to_netcdf(f)
    with pytest.warns(UserWarning, match="missing month.s. filled .* rcp85: 2006-01, 2006-07"):
        out = open_cmip(tmp_path, empty_bands="missing")
    assert bool(out["tp"].sel(band=2).notnull().all())


def test_data_build_refuses_celsius_labelled_kelvin_in_one_line(tiny_catalog):
    from conftest import era5_dataset

    ds = era5_dataset()
    ds["stl3"] = (ds["stl3"] - 273.15).assign_attrs(units="K")
    cat = tiny_catalog(ds)
    res = CliRunner().invoke(cli, ["data", "build", "--catalog", str(cat), "--static", "",
                                   "--out", str(cat.parent / "t.nc")])
    assert res.exit_code == 1 and "Traceback" not in res.output
    lines = [x for x in res.output.splitlines() if x.startswith("Error:")]
    assert len(lines) == 1 and "variable 'stl3'" in lines[0] and "era5.nc" in lines[0]
    assert not (cat.parent / "t.nc").exists()


def test_check_physical_limits_follow_pint_units():
    da = xr.DataArray([-40.0, 20.0], dims="time", name="t2m")
    checks.check_physical(da, "f", units="°C")       # plausible in degC
    checks.check_physical(da + 273.15, "f", units="K")
    with pytest.raises(DataError, match="value -40 K"):
        checks.check_physical(da, "f", units="K")
    checks.check_physical(xr.DataArray([0.0, 0.45], name="swvl1"), "f", units="m3 m-3")
    with pytest.raises(DataError, match="value 45 m3 m-3"):
        checks.check_physical(xr.DataArray([0.0, 45.0], name="swvl1"), "f", units="m3 m-3")
    # packing noise just below zero passes, a real negative value does not
    checks.check_physical(xr.DataArray([-1e-12, 2e-3], name="tp"), "f", units="m")
    with pytest.raises(DataError):
        checks.check_physical(xr.DataArray([-1e-3, 2e-3], name="tp"), "f", units="m")
    num, n = checks.numeric_column(pd.Series(["1.5", "-999", None, "1e20"]), "f", "c", 2)
    assert n == 2 and num.isna().tolist() == [False, True, True, True]


def test_gz_tables_are_read_too(tmp_path):
    """Band tables ship gzipped: the checks see the decompressed values."""
    with gzip.open(REAL / "cmip5_gfdl_esm2g_bands" / "RCP85_df.csv.gz", "rt") as fh:
        df = pd.read_csv(fh)
    df.loc[3, "total_precipitation_sum"] = -9999
    (tmp_path / "b").mkdir()
    df.to_csv(tmp_path / "b" / "RCP85_df.csv.gz", index=False, compression="gzip")
    with pytest.warns(UserWarning) as record:
        ds = open_cmip(tmp_path / "b")
    messages = [str(w.message) for w in record]
    assert any("1 missing value(s)" in m and "'total_precipitation_sum'" in m for m in messages)
    assert any("filled with the 'seasonal' gap policy: rcp85: 2021-01" in m for m in messages)
    assert np.isfinite(ds["tp"].values).all()


# --- the Toolik station record (real EDC export) ------------------------------------------------
TOOLIK = REAL / "toolik_soil_temperature" / "3-hour_data.csv.gz"
DEPTHS = {"soil1_moss": 0, "soil1_5cm": 5, "soil1_10cm": 10, "soil1_100cm": 100}


def _toolik_lines(tmp_path: Path, edit) -> Path:
    """Lines 1-32000 of the real Toolik export (all four sensors read from line 30160)."""
    with gzip.open(TOOLIK, "rt", encoding="utf-8") as fh:
        lines = [next(fh) for _ in range(32000)]
    edit(lines)
    out = tmp_path / "toolik.csv"
    out.write_text("".join(lines), encoding="utf-8")
    return out


def _set_field(lines: list[str], line: int, column: int, value: str) -> None:
    fields = lines[line - 1].rstrip("\n").split(",")
    fields[column] = value
    lines[line - 1] = ",".join(fields) + "\n"


def test_toolik_text_and_impossible_values_and_sentinels(tmp_path):
    from permaplug.data import station

    text = _toolik_lines(tmp_path, lambda ls: _set_field(ls, 30500, 5, "n.a."))
    with pytest.raises(DataError, match=r"toolik.csv: line 30500, column 'soil1_100cm': 'n.a.' "
                                        r"is not a number"):
        station.read_edc(text, DEPTHS)
    kelvin = _toolik_lines(tmp_path, lambda ls: _set_field(ls, 30600, 3, "271.3"))
    with pytest.raises(DataError, match=r"variable 'soil1_5cm': value 271.3 degC at line 30600 "
                                        r"is impossible for a temperature quantity"):
        station.read_edc(kelvin, DEPTHS)
    sentinel = _toolik_lines(tmp_path, lambda ls: _set_field(ls, 30700, 5, "-9999"))
    readings = station.read_edc(sentinel, DEPTHS)
    assert readings["value"].min() > -60  # -9999 became a missing reading, not -9999 degC
    clean = station.read_edc(_toolik_lines(tmp_path, lambda ls: None), DEPTHS)
    assert int(readings["value"].isna().sum()) == int(clean["value"].isna().sum()) + 1


@pytest.mark.parametrize("units", ["K", "kelvin", "degC", "°C", "deg C", "degree_Celsius",
                                   "degrees_Celsius", "celsius"])
def test_known_temperature_units_give_xsdbas_limits_without_xsdba(units):
    """The spellings converted without pint give exactly xsdba's converted limits."""
    from xsdba.units import convert_units_to

    low, high, lim = checks.LIMITS["temperature"]
    want = tuple(float(convert_units_to(f"{v} {lim}", checks._pint_units(units)))
                 for v in (low, high))
    assert checks._limits_in(units, "temperature") == want


@pytest.mark.parametrize("units", ["1", "m**3 m**-3", "m3 m-3", "m^3 m^-3", "m3/m3"])
def test_known_fraction_units_give_xsdbas_limits_without_xsdba(units):
    """Volume-fraction spellings taken as the limits' own units are xsdba's conversion too."""
    from xsdba.units import convert_units_to

    low, high, lim = checks.LIMITS["fraction"]
    want = tuple(float(convert_units_to(f"{v} {lim}", checks._pint_units(units)))
                 for v in (low, high))
    assert checks._limits_in(units, "fraction") == want


def test_reading_the_bundled_era5_points_does_not_import_xsdba():
    """The demo build's point reading checks its degC/mm files without importing xsdba."""
    import subprocess
    import sys

    code = ("import sys; from permaplug.demo.forcing import read_era5_points; "
            "read_era5_points(); print('xsdba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
