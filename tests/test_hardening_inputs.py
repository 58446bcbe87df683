"""Bad inputs through the CLI (issue 9): each gives ONE ``Error: ...`` line naming the file,
variable or option, exit code 1, no traceback and no partial output.

The data are tiny ERA5-Land files in the Climate Data Store layout (``conftest.era5_dataset``),
damaged one way per test, read by the real ``era5land`` source through an intake catalog.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner
from conftest import RUN_FAST, TINY_CATALOG, era5_dataset

from permaplug.cli import cli
from permaplug.core import plugins as plugmod


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def error_line(res, *needles: str) -> str:
    """The single ``Error:`` line of a failed command (checks exit code 1 and no traceback)."""
    assert res.exit_code == 1, res.output
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, res.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def build(catalog: Path, out: Path, *extra: str):
    """``permaplug data build`` of the catalog's reanalysis, no static entries."""
    return invoke("data", "build", "--catalog", catalog, "--static", "", "--out", out, *extra)


def no_output(folder: Path) -> None:
    """Nothing written into ``folder``: no table, no temporary file."""
    assert not [p for p in folder.iterdir() if p.name not in ("era5", "catalog.yaml")], \
        list(folder.iterdir())


def test_the_undamaged_fixture_builds(tiny_catalog):
    """The control: the same files without damage give a full table."""
    cat = tiny_catalog()
    out = cat.parent / "table.nc"
    res = build(cat, out)
    assert res.exit_code == 0, res.output
    table = xr.load_dataset(out)
    assert dict(table.sizes) == {"time": 48, "band": 6}
    assert int(table["stl1"].isnull().sum()) == 0
    ref = era5_dataset()
    # band 2 (63.29-65.30 N) holds the 63.5 and 64.5 N rows: a weighted mean of their land
    # cells lies within their range, in degC
    rows = ref["stl1"].sel(latitude=[64.5, 63.5]).values.reshape(48, -1) - 273.15
    v = table["stl1"].sel(band=2).values
    assert (v >= rows.min(axis=1) - 1e-6).all() and (v <= rows.max(axis=1) + 1e-6).all()
    assert not np.allclose(v, rows.min(axis=1))  # a mean, not one cell


def test_missing_variable(tiny_catalog):
    cat = tiny_catalog(era5_dataset().drop_vars("stl3"))
    line = error_line(build(cat, cat.parent / "t.nc"), "stl3", str(cat))
    assert "lacks" in line
    no_output(cat.parent)


@pytest.mark.parametrize("units, shown", [("mm", "'mm'"), ("bananas", "'bananas'"),
                                          (None, "''")])
def test_wrong_or_missing_units(tiny_catalog, units, shown):
    ds = era5_dataset()
    if units is None:
        del ds["stl2"].attrs["units"]
    else:
        ds["stl2"].attrs["units"] = units
    cat = tiny_catalog(ds)
    error_line(build(cat, cat.parent / "t.nc"), "stl2", shown, "era5")
    no_output(cat.parent)


def test_short_nan_gap_is_interpolated_with_a_warning(tiny_catalog):
    ds = era5_dataset()
    ds["stl2"][5:7] = np.nan  # 2001-06 and 2001-07 missing everywhere: a 2-month gap
    cat = tiny_catalog(ds)
    out = cat.parent / "t.nc"
    res = build(cat, out)
    assert res.exit_code == 0, res.output
    warns = [line for line in res.output.splitlines() if line.startswith("Warning:")]
    assert any("interpolated 12 missing month(s) of 'stl2'" in w and "2001-06..2001-07" in w
               for w in warns), res.output
    table = xr.load_dataset(out)
    assert int(table["stl2"].isnull().sum()) == 0
    # linear interpolation between May and August, per band
    s = table["stl2"].sel(band=3).values
    np.testing.assert_allclose(s[5], s[4] + (s[7] - s[4]) / 3, rtol=1e-9)
    np.testing.assert_allclose(s[6], s[4] + 2 * (s[7] - s[4]) / 3, rtol=1e-9)
    assert "stl2" in table.attrs["gaps_interpolated"]


def test_long_nan_gap_is_refused(tiny_catalog):
    ds = era5_dataset()
    ds["t2m"][10:13, :, :] = np.nan  # 3 months: 2001-11..2002-01
    cat = tiny_catalog(ds)
    error_line(build(cat, cat.parent / "t.nc"), "'t2m'", "3 months", "2001-11..2002-01",
               "band 0", "longer than 2 months")
    no_output(cat.parent)


def test_long_nan_gap_is_refused_in_gridded_mode(tiny_catalog):
    ds = era5_dataset()
    ds["swvl3"][20:26, 4, 2] = np.nan  # one cell (66.5 N, -154 E), 6 months
    cat = tiny_catalog(ds)
    error_line(build(cat, cat.parent / "t.nc", "--spatial", "grid"), "'swvl3'", "6 months",
               "(66.50 N, -154.00 E)", "2002-09..2003-02")
    no_output(cat.parent)


def test_duplicated_time_stamps(tiny_catalog):
    ds = era5_dataset()
    t = ds["valid_time"].values.copy()
    t[3] = t[2]
    cat = tiny_catalog(ds.assign_coords(valid_time=t))
    error_line(build(cat, cat.parent / "t.nc"), "era5.nc", "duplicated time stamps",
               "2001-03-01")
    no_output(cat.parent)


def test_unsorted_time_stamps(tiny_catalog):
    ds = era5_dataset()
    order = np.arange(ds.sizes["valid_time"])
    order[[6, 7]] = order[[7, 6]]
    cat = tiny_catalog(ds.isel(valid_time=order))
    error_line(build(cat, cat.parent / "t.nc"), "era5.nc", "not in increasing order",
               "2001-07-01 follows 2001-08-01")
    no_output(cat.parent)


def test_time_stamps_duplicated_across_files(tiny_catalog):
    ds = era5_dataset()
    cat = tiny_catalog(ds.sel(valid_time=slice("2001", "2002")), name="a.nc")
    ds.sel(valid_time=slice("2002-12", "2004")).to_netcdf(cat.parent / "era5" / "b.nc")
    error_line(build(cat, cat.parent / "t.nc"), "2002-12-01", "a.nc", "b.nc")


def test_duplicated_rows_in_an_earth_engine_table(tmp_path):
    """The band-reduced CSV layout of an Earth Engine export: one row per date and band."""
    from permaplug.plugins.sources.era5land import EE_BANDS, EE_UNITS

    rows = [{"date": f"2001-{m:02d}-01", "band": f"band_{b + 1}",
             **{name: 270.0 + m if EE_UNITS[v] == "K" else 0.2 for name, v in EE_BANDS.items()}}
            for m in range(1, 13) for b in range(6)]
    rows.append(dict(rows[7]))  # 2001-02-01 band_2 twice
    (tmp_path / "ee").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "ee" / "alaska.csv", index=False)
    cat = tmp_path / "catalog.yaml"
    cat.write_text(TINY_CATALOG.replace("era5/*.nc", "ee/alaska.csv"))
    error_line(build(cat, tmp_path / "t.nc"), "alaska.csv", "duplicated rows",
               "2001-02-01 band 1")
    assert not (tmp_path / "t.nc").exists()


def test_360_day_calendar_is_refused_for_the_reanalysis(tiny_catalog):
    ds = era5_dataset("2001-01", "2002-12")
    days = [cftime.Datetime360Day(2001 + i // 12, i % 12 + 1, 1) for i in range(24)]
    cat = tiny_catalog(ds.assign_coords(valid_time=days))
    error_line(build(cat, cat.parent / "t.nc"), "era5.nc", "'360_day' calendar", "cmip")
    no_output(cat.parent)


@pytest.mark.parametrize("damage", ["netcdf4-truncated", "netcdf3-truncated", "garbage", "empty"])
def test_truncated_or_corrupt_netcdf(tiny_catalog, damage):
    fmt = "NETCDF3_64BIT" if damage.startswith("netcdf3") else "NETCDF4"
    cat = tiny_catalog(format=fmt)
    nc = cat.parent / "era5" / "era5.nc"
    raw = nc.read_bytes()
    if damage.endswith("truncated"):
        nc.write_bytes(raw[: int(len(raw) * 0.8)])
    elif damage == "garbage":
        nc.write_bytes(np.random.default_rng(0).bytes(4000))
    else:
        nc.write_bytes(b"")
    line = error_line(build(cat, cat.parent / "t.nc"), str(nc))
    expected = {"netcdf4-truncated": "cannot open as NetCDF", "netcdf3-truncated":
                "truncated or corrupt NetCDF-3", "garbage": "not a NetCDF file",
                "empty": "empty file"}[damage]
    assert expected in line
    no_output(cat.parent)


def test_truncated_netcdf3_would_otherwise_read_as_zeros(tiny_catalog):
    """Why the NetCDF-3 check exists: the netCDF library reads the missing tail as 0."""
    cat = tiny_catalog(format="NETCDF3_64BIT")
    nc = cat.parent / "era5" / "era5.nc"
    raw = nc.read_bytes()
    nc.write_bytes(raw[: int(len(raw) * 0.8)])
    silent = xr.load_dataset(nc, engine="netcdf4", decode_times=False)
    assert (silent["stl4"].values == 0.0).sum() > 100  # 0 K soil: garbage, not an error
    assert (era5_dataset()["stl4"].values > 200.0).all()


def test_catalog_with_a_yaml_error(tmp_path):
    cat = tmp_path / "catalog.yaml"
    cat.write_text("version: 2\nentries:\n  era5land: {kwargs: [unclosed\n")
    error_line(invoke("catalog", "list", "--catalog", cat), str(cat), "invalid YAML")
    error_line(build(cat, tmp_path / "t.nc"), str(cat), "invalid YAML")
    assert not (tmp_path / "t.nc").exists()


def test_catalog_entry_pointing_to_a_missing_file(tmp_path):
    cat = tmp_path / "catalog.yaml"
    cat.write_text(TINY_CATALOG.replace("era5/*.nc", "era5/missing.nc"))
    error_line(build(cat, tmp_path / "t.nc"), str(tmp_path / "era5" / "missing.nc"),
               "no files")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog.yaml"]


def test_missing_catalog_file(tmp_path):
    error_line(build(tmp_path / "nope.yaml", tmp_path / "t.nc"), "nope.yaml", "not found")


# --- unknown plugin names: the closest one is suggested --------------------------------------
def test_unknown_source_suggests_the_closest(tiny_catalog):
    cat = tiny_catalog()
    error_line(build(cat, cat.parent / "t.nc", "--source", "era5lnd"), "'era5lnd'",
               "did you mean 'era5land'?")
    no_output(cat.parent)


def test_unknown_model_suggests_the_closest(tiny_catalog):
    cat = tiny_catalog()
    out = cat.parent / "run"
    args = [a if a != "gru" else "gruu" for a in RUN_FAST]
    error_line(invoke("run", "--catalog", cat, *args, "--out", out), "Unknown model: 'gruu'",
               "did you mean 'gru'?")
    assert not out.exists()


def test_unknown_corrector_suggests_the_closest(tmp_path):
    out = tmp_path / "corr"
    error_line(invoke("correct", "--corrector", "qmm", "--out", out),
               "Unknown corrector: 'qmm'", "did you mean 'qm'?")
    assert not out.exists()


def test_unknown_corrector_for_a_projection_fails_before_reading_data(tiny_run, monkeypatch):
    from permaplug.training import runs

    def no_data(*a, **kw):
        raise AssertionError("the table was read before the corrector name was checked")

    monkeypatch.setattr(runs, "load_table", no_data)
    error_line(invoke("project", tiny_run, "--corrector", "qdn", "--no-progress"),
               "Unknown corrector: 'qdn'", "did you mean")
    assert not (tiny_run / "projections").exists()


def test_unknown_source_plugin_in_a_catalog(tmp_path):
    cat = tmp_path / "catalog.yaml"
    cat.write_text(TINY_CATALOG.replace("plugin: era5land", "plugin: era5-land"))
    error_line(invoke("catalog", "list", "--catalog", cat), str(cat), "'era5-land'",
               "did you mean 'era5land'?")


def test_unknown_explainer_suggests_the_closest(tiny_run):
    before = sorted(p.relative_to(tiny_run) for p in tiny_run.rglob("*"))
    error_line(invoke("explain", tiny_run, "--explainer", "shapp"),
               "Unknown explainer: 'shapp'", "did you mean 'shap'?")
    assert sorted(p.relative_to(tiny_run) for p in tiny_run.rglob("*")) == before


# --- a plugin that raises while registering ---------------------------------------------------
class RaisingPlugin:
    """A third-party plugin whose registration hook fails."""

    __name__ = "permaplug_raising"

    @plugmod.hookspecs.hookimpl
    def register_models(self, register):
        raise RuntimeError("cannot find my weights")


def test_plugin_raising_while_registering(tiny_catalog, monkeypatch):
    reg = plugmod.build_registry(extra_plugins=[(RaisingPlugin(), "permaplug-raising")])
    monkeypatch.setattr(plugmod, "_registry", reg)
    res = invoke("plugins")
    assert res.exit_code == 0, res.output
    assert "BROKEN  permaplug-raising" in res.output
    assert "register_models raised RuntimeError: cannot find my weights" in res.output
    assert "gru" in res.output  # the built-ins still work
    cat = tiny_catalog()
    out = cat.parent / "run"
    args = [a if a != "gru" else "raising-model" for a in RUN_FAST]
    error_line(invoke("run", "--catalog", cat, *args, "--out", out),
               "Unknown model: 'raising-model'", "broken plugins: permaplug-raising")
    assert not out.exists()


# --- records and bands ------------------------------------------------------------------------
def test_record_too_short_for_the_window(tiny_catalog):
    cat = tiny_catalog(era5_dataset("2001-01", "2001-12"))
    out = cat.parent / "run"
    res = invoke("run", "--catalog", cat, *RUN_FAST, "--out", out)
    error_line(res, "the record has 12 months (2001-01..2001-12): too short for the "
                    "24-month window")
    assert not out.exists()
    # warnings on the way are one line each, without Python's source-line echo
    assert "Warning: " in res.output and "no static entry 'usgs-lithology'" in res.output
    assert "UserWarning" not in res.output and "return assemble_table" not in res.output


def _no_land_in_band_4() -> xr.Dataset:
    ds = era5_dataset("2001-01", "2006-12")
    for v in ds.data_vars:  # ERA5-Land is NaN over the sea: rows 67.5 and 68.5 N all sea
        ds[v] = ds[v].where((ds["latitude"] < 67.3) | (ds["latitude"] > 69.4))
    return ds


def test_band_with_no_land_cells_warns_in_data_build(tiny_catalog):
    cat = tiny_catalog(_no_land_in_band_4())
    out = cat.parent / "t.nc"
    res = build(cat, out)
    assert res.exit_code == 0, res.output
    assert "Warning:" in res.output and "band 4 (67.31-69.32 N) has no land cell" in res.output
    table = xr.load_dataset(out)
    assert bool(table["stl1"].sel(band=4).isnull().all())
    assert not bool(table["stl1"].sel(band=3).isnull().any())


def test_band_with_no_land_cells_is_refused_for_training(tiny_catalog):
    cat = tiny_catalog(_no_land_in_band_4())
    out = cat.parent / "run"
    error_line(invoke("run", "--catalog", cat, *RUN_FAST, "--out", out), "band 4",
               "no land cell")
    assert not out.exists()


# --- scenario features that do not match the trained model -----------------------------------
@pytest.fixture(scope="module")
def demo_run(demo_catalog, tmp_path_factory) -> Path:
    """A GRU trained for one epoch on the small demo data (about 15 s)."""
    out = tmp_path_factory.mktemp("demorun") / "run"
    res = invoke("run", "--catalog", demo_catalog, "--model", "gru", "--hparam", "hidden_size=8",
                 "--epochs", "1", "--train-years", "2003-2016", "--test-years", "2017-2018",
                 "--no-project", "--no-explain", "--no-report", "--quiet", "--out", out)
    assert res.exit_code == 0, res.output
    return out


@pytest.mark.slow  # the demo build and a training run: about 45 s
def test_scenario_features_do_not_match_the_model(demo_catalog, demo_run, tmp_path):
    copy = tmp_path / "demo"
    shutil.copytree(demo_catalog.parent, copy)
    for f in (copy / "cmip5").glob("rlds_*.nc"):  # no downwelling longwave -> no 'strd'
        f.unlink()
    before = sorted(p.relative_to(demo_run) for p in demo_run.rglob("*"))
    res = invoke("project", demo_run, "--catalog", copy / "catalog.yaml", "--scenarios",
                 "rcp85", "--end", "2025", "--no-progress")
    error_line(res, "'strd'")
    assert sorted(p.relative_to(demo_run) for p in demo_run.rglob("*")) == before


@pytest.mark.parametrize("pair, needle", [
    ("gru.hidden_size=abc", "'hidden_size' = 'abc' must be int"),
    ("gru.dropout=[1, 2]", "'dropout' = [1, 2] must be float"),
    ("gru.hidden=8", "has no hyper-parameter 'hidden'"),
])
def test_bad_hyper_parameter_values(tiny_catalog, pair, needle):
    cat = tiny_catalog(era5_dataset("2001-01", "2006-12"))
    out = cat.parent / "run"
    error_line(invoke("run", "--catalog", cat, *RUN_FAST, "--hparam", pair, "--out", out),
               needle)
    assert not out.exists()
