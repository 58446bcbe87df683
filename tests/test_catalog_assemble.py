"""End to end through catalogs: fixture files in the providers' formats -> assembled table,
`permaplug catalog` and `permaplug data build`, the real tables, a CMIP6 user catalog."""
from __future__ import annotations

from pathlib import Path

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner
from test_sources_static import _write_map, _write_tif

from permaplug.cli import cli
from permaplug.core import schema
from permaplug.core.catalog import bundled_catalogs, load_catalog
from permaplug.data import features as F
from permaplug.data.assemble import assemble_table, read_table

CANON_UNITS = {"t2m": "K", "skt": "K", "tp": "m", "sf": "m", "strd": "J m**-2",
               "ssrd": "J m**-2", "slhf": "J m**-2", "sshf": "J m**-2",
               **{f"swvl{i}": "m**3 m**-3" for i in range(1, 5)},
               **{f"stl{i}": "K" for i in range(1, 5)}}


def _era5_file(folder: Path) -> None:
    time = pd.date_range("2001-01-01", "2002-12-01", freq="MS")
    lat = np.array([70.0, 66.0, 64.0, 62.0, 60.0])
    lon = np.array([-160.0, -150.0])
    shape = (time.size, lat.size, lon.size)
    month = time.month.to_numpy()[:, None, None]
    data = {}
    for v, units in CANON_UNITS.items():
        if units == "K":
            val = 260.0 + month + np.zeros(shape)
        elif units == "m":
            val = np.full(shape, 0.001)
        elif units.startswith("J"):
            val = np.full(shape, 1.0e6)
        else:
            val = np.full(shape, 0.25)
        data[v] = (("valid_time", "latitude", "longitude"), val, {"units": units})
    folder.mkdir()
    xr.Dataset(data, coords={"valid_time": time, "latitude": lat, "longitude": lon}).to_netcdf(
        folder / "era5land_monthly_2001-2002.nc")


def _static_files(tmp_path: Path) -> None:
    (tmp_path / "usgs").mkdir()
    _write_map(tmp_path / "usgs" / "map.gpkg")
    olm = tmp_path / "olm"
    olm.mkdir()
    for d in (0, 10, 30, 60, 100, 200):
        for key, val in (("bulkdens.fineearth_usda.4a1h", 120), ("organic.carbon_usda.6a1c", 8)):
            _write_tif(olm / f"sol_{key}_m_250m_b{d}..{d}cm_1950..2017_v0.2.tif",
                       np.full((30, 60), val), 71.0, -168.0, 0.4)


CATALOG = """version: 2
metadata: {description: fixture}
entries:
  era5land:
    kwargs: {plugin: era5land, options: {paths: "{CATALOG_DIR}/era5/*.nc"}}
    metadata: {role: reanalysis, data_label: fixture ERA5-Land}
  lith:
    kwargs: {plugin: usgs-lithology, options: {path: usgs/map.gpkg}}
    metadata: {role: static, data_label: fixture USGS}
  soil:
    kwargs: {plugin: openlandmap, options: {path: "{CATALOG_DIR}/olm"}}
    metadata: {role: static, data_label: fixture USGS}
"""


@pytest.fixture()
def fixture_catalog(tmp_path) -> Path:
    _era5_file(tmp_path / "era5")
    _static_files(tmp_path)
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG)
    return path


EMPTY_BAND = r"band 4 \(67.31-69.32 N\) has no land cell with data"
"""The fixture grid has no row in band 4: assembling says so (a warning) and goes on."""


def test_assemble_table(fixture_catalog):
    with pytest.warns(UserWarning, match=EMPTY_BAND):
        table = assemble_table(fixture_catalog)
    assert dict(table.sizes) == {"time": 24, "band": 6}
    for v in schema.TARGETS + F.PAPER_FORCING + schema.SOIL_WATER + F.PAPER_CALENDAR:
        assert table[v].dims == ("time", "band"), v
    for v in F.PAPER_STATIC:
        assert table[v].dims == ("band",), v
    # March: 263 K -> -10.15 degC; tp 1 mm/day x 31; month_sin(3) = 1
    mar = table.sel(time="2002-03-01", band=2)
    assert float(mar["stl3"]) == pytest.approx(263 - 273.15)
    assert float(mar["tp"]) == pytest.approx(31.0)
    assert float(mar["month_sin"]) == pytest.approx(1.0)
    assert float(mar["year"]) == 2002.0
    assert float(table["bdod_l2"].sel(band=2)) == pytest.approx(1200.0)
    assert float(table["soc_l4"].sel(band=2)) == pytest.approx(40.0)
    lith = sum(table[f"lith_{c}"] for c in schema.LITHOLOGY_CLASSES)
    np.testing.assert_allclose(lith.values, 100.0)
    assert table.attrs[schema.DATA_LABEL_ATTR] == "fixture ERA5-Land + static usgs-lithology: " \
        "fixture USGS"
    assert "catalog" in table.attrs["provenance"] or "entry" in table.attrs["provenance"]


def test_assemble_grid_mode(fixture_catalog):
    table = assemble_table(fixture_catalog, spatial="grid", static=("openlandmap",))
    assert "cell" in table.dims and "band" in table.coords
    assert table["bdod_l1"].dims == ("cell",)
    assert (table["band"] >= 0).all()


@pytest.mark.parametrize("suffix", [".nc", ".parquet"])
def test_cli_data_build_roundtrip(fixture_catalog, tmp_path, suffix):
    out = tmp_path / f"table{suffix}"
    res = CliRunner().invoke(cli, ["data", "build", "--catalog", str(fixture_catalog),
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "data: fixture ERA5-Land" in res.output
    back = read_table(out)
    assert "has no land cell with data" in res.output  # the CLI's one Warning: line
    with pytest.warns(UserWarning, match=EMPTY_BAND):
        ref = assemble_table(fixture_catalog)
    for v in ("stl1", "tp", "month_cos", "bdod_l3", "lith_plutonic"):
        np.testing.assert_allclose(back[v].values, ref[v].values, err_msg=v)
    assert back.attrs[schema.DATA_LABEL_ATTR] == ref.attrs[schema.DATA_LABEL_ATTR]
    assert not list(tmp_path.glob(".table*"))  # no temporary left behind


def test_cli_data_build_plot(fixture_catalog, tmp_path):
    import matplotlib.image as mpimg

    png = tmp_path / "bands.png"
    res = CliRunner().invoke(cli, ["data", "build", "--catalog", str(fixture_catalog),
                                   "--static", "", "--out", str(tmp_path / "t.nc"),
                                   "--plot", str(png)])
    assert res.exit_code == 0, res.output
    img = mpimg.imread(png)
    assert img.shape[0] > 500 and img.shape[1] > 500
    assert img[..., :3].std() > 0.05  # not a blank canvas


def test_cli_data_build_errors(fixture_catalog, tmp_path):
    res = CliRunner().invoke(cli, ["data", "build", "--catalog", str(fixture_catalog),
                                   "--out", str(tmp_path / "t.csv")])
    assert res.exit_code == 1 and "use a .nc or .parquet file name" in res.output
    assert not (tmp_path / "t.csv").exists()
    res = CliRunner().invoke(cli, ["data", "build", "--catalog", str(fixture_catalog),
                                   "--source", "cmip", "--out", str(tmp_path / "t.nc")])
    assert res.exit_code == 1 and "no entry with role 'reanalysis' and source 'cmip'" in res.output


def test_cli_catalog_list_and_show(fixture_catalog):
    res = CliRunner().invoke(cli, ["catalog", "--catalog", str(fixture_catalog)])
    assert res.exit_code == 0
    lines = res.output.splitlines()
    assert any(line.split()[:3] == ["era5land", "reanalysis", "era5land"] for line in lines)
    res = CliRunner().invoke(cli, ["catalog", "show", "soil", "--catalog", str(fixture_catalog)])
    assert res.exit_code == 0 and "plugin: openlandmap" in res.output
    assert str(fixture_catalog.parent / "olm") in res.output
    res = CliRunner().invoke(cli, ["catalog", "show", "nope", "--catalog", str(fixture_catalog)])
    assert res.exit_code == 1 and "no entry 'nope'" in res.output


def test_bundled_catalogs_validate():
    names = set(bundled_catalogs())
    assert {"real-tables", "era5land-alaska", "cmip5-ipsl-cm5a-mr", "cmip6-example",
            "usgs-lithology", "openlandmap"} <= names
    for name in names - {"demo"}:
        cat = load_catalog(name)
        assert all(cat.entry(n).metadata.get("role") for n in cat.names()), name


def test_done_when_real_ipsl_tas_through_catalog():
    cat = load_catalog("real-tables")
    ds = cat.open("cmip5-ipsl-box", variables=["tas"])
    t = pd.DatetimeIndex(ds["time"].values)
    assert t.is_unique and t.is_monotonic_increasing
    assert (t == pd.date_range("1850-01-01", "2099-12-01", freq="MS")).all()
    assert ds["t2m"].attrs["units"] == "degC"
    assert -40 < float(ds["t2m"].min()) and float(ds["t2m"].max()) < 25
    assert ds.attrs["historical_end"] == "2005-12"
    assert ds.attrs[schema.DATA_LABEL_ATTR] == "CMIP5 IPSL-CM5A-MR Alaska box (real)"
    assert "no gaps" in ds.attrs["provenance"]


def test_done_when_cmip6_user_catalog(tmp_path):
    folder = tmp_path / "cmip6"
    folder.mkdir()
    for exp, y0, n in (("historical", 2013, 24), ("ssp245", 2015, 12), ("ssp585", 2015, 12)):
        times = [cftime.datetime(y0 + i // 12, i % 12 + 1, 16, calendar="noleap")
                 for i in range(n)]
        for var, units, val in (("tas", "K", 270.0), ("hfss", "W m-2", 5.0)):
            data = np.full((n, 2, 2), val + (10 if exp == "ssp585" else 0))
            ds = xr.Dataset({var: (("time", "lat", "lon"), data, {"units": units})},
                            coords={"time": times, "lat": [64.0, 66.0], "lon": [205.0, 210.0]})
            ds["time"].encoding.update(units="days since 1850-01-01", calendar="noleap")
            ds.to_netcdf(folder / f"{var}_Amon_IPSL-CM6A-LR_{exp}_r1i1p1f1_gr_"
                                  f"{y0}01-{y0 + n // 12 - 1}12.nc")
    (tmp_path / "my.yaml").write_text(
        "version: 2\nentries:\n  cmip:\n    kwargs:\n      plugin: cmip\n"
        "      options: {paths: \"{CATALOG_DIR}/cmip6/*.nc\", model: IPSL-CM6A-LR,\n"
        "                empty_bands: missing}\n"  # two grid rows: bands 0, 1, 4, 5 empty
        "    metadata: {role: scenario}\n")
    ds = load_catalog(tmp_path / "my.yaml").open("cmip")
    assert list(ds["scenario"].values) == ["ssp245", "ssp585"]
    assert ds.attrs["historical_end"] == "2014-12"
    assert float(ds["t2m"].sel(scenario="ssp585", time="2015-07-01", band=2)) == \
        pytest.approx(280 - 273.15)
    assert float(ds["sshf"].sel(scenario="ssp245", time="2014-02-01", band=3)) == \
        pytest.approx(-5.0 * 28 * 86400)


def test_cli_export_and_bundled(tmp_path):
    out = tmp_path / "gfdl.nc"
    res = CliRunner().invoke(cli, ["data", "export", "cmip5-gfdl-bands", "--catalog",
                                   "real-tables", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "data: CMIP5 GFDL-ESM2G bands (real)" in res.output
    back = xr.load_dataset(out)
    assert float(back["t2m"].sel(scenario="rcp85", time="2021-01-01", band=0)) == \
        pytest.approx(262.93008 - 273.15)
    res = CliRunner().invoke(cli, ["catalog", "bundled"])
    assert res.exit_code == 0 and "real-tables" in res.output and "cmip6-example" in res.output
