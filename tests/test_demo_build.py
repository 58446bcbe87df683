"""The demo data set: built through the CLI, read back through the real source plugins.

The module fixture builds a coarse demo (1.5 deg, monthly steps) to keep the suite fast; the
default build (0.5 deg, weekly steps, timed) is in the slow tests at the end.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from click.testing import CliRunner

from permaplug.cli import cli
from permaplug.core import schema
from permaplug.core.catalog import load_catalog
from permaplug.core.plugins import get_source
from permaplug.data import features as F

RCPS = ("rcp26", "rcp45", "rcp60", "rcp85")
"""The demo's scenarios: those of the real CMIP5 box tables it is built from."""

DRS = re.compile(r"^(?P<var>[a-z]+)_(?P<table>Amon|Lmon)_IPSL-CM5A-MR_(?P<exp>historical|rcp\d\d)"
                 r"_r1i1p1_(?P<start>\d{6})-(?P<end>\d{6})\.nc$")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "demo"
    result = CliRunner().invoke(cli, ["demo", "build", "--out", str(out), "--resolution", "1.5",
                                      "--steps-per-month", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "data: demo emulator" in result.output
    return out


@pytest.fixture(scope="module")
def cat(demo):
    return load_catalog(demo / "catalog.yaml")


@pytest.fixture(scope="module")
def bands(cat) -> xr.Dataset:
    return cat.open("era5land").load()


def test_catalog_entries_roles_and_labels(demo, cat):
    raw = yaml.safe_load((demo / "catalog.yaml").read_text())
    assert raw["version"] == 2
    expected = {"era5land": "reanalysis", "ipsl-cm5a-mr": "scenario", "usgs-lithology": "static",
                "openlandmap": "static", **{f"truth-{s}": "scenario_truth"
                                            for s in RCPS}}
    assert set(cat.names()) == set(expected)
    for name, role in expected.items():
        entry = raw["entries"][name]
        assert entry["reader"] == "permaplug.core.catalog:PermaplugReader"
        assert entry["metadata"]["role"] == role
        assert entry["metadata"]["data_label"] == "demo emulator"
        assert "{CATALOG_DIR}/" in str(entry["kwargs"]["options"])
        ds = cat.open(name)
        assert ds.attrs[schema.DATA_LABEL_ATTR] == "demo emulator"
    assert {raw["entries"][f"truth-{s}"]["metadata"]["scenario"] for s in RCPS} \
        == set(RCPS)
    assert (demo / "truth" / "emulator_truth_rcp85_2001-2100.nc").exists()


def test_era5land_file_follows_cds_monthly_means_conventions(demo):
    raw = xr.open_dataset(demo / "era5land" / "era5land_monthly_alaska_2001-2023.nc")
    assert set(raw.dims) == {"valid_time", "latitude", "longitude"}
    assert np.all(np.diff(raw["latitude"].values) < 0)  # latitude descending, as ERA5
    assert "expver" in raw.coords and "number" in raw.coords
    expected = {"t2m": "K", "stl4": "K", "tp": "m", "sf": "m of water equivalent",
                "ssrd": "J m**-2", "slhf": "J m**-2", "swvl1": "m**3 m**-3"}
    for v, units in expected.items():
        assert raw[v].attrs["units"] == units
    assert set(F.PAPER_FORCING + schema.SOIL_WATER + schema.TARGETS) <= set(raw.data_vars)
    assert "NOT provider data" in raw.attrs["source"]
    land = raw["lsm"].values > 0.5
    assert np.isnan(raw["stl1"].values[0][~land]).all()  # sea is NaN, as in ERA5-Land
    assert 220 < float(raw["stl1"].where(raw["lsm"] > 0.5).min()) < 273.15  # kelvin
    # summer days are long: July solar radiation per day far above January's
    ssrd = raw["ssrd"].where(raw["lsm"] > 0.5).mean(("latitude", "longitude"))
    month = raw["valid_time"].dt.month
    assert float(ssrd[month == 6].mean()) > 10 * float(ssrd[month == 12].mean())


def test_era5land_reader_converts_the_accumulations(demo):
    path = demo / "era5land" / "era5land_monthly_alaska_2001-2023.nc"
    grid = get_source("era5land")(paths=str(path), spatial="grid").open().load()
    raw = xr.open_dataset(path)
    c = int(grid.sizes["cell"] // 2)
    lat, lon = float(grid["lat"][c]), float(grid["lon"][c])
    cell = raw.sel(latitude=lat, longitude=lon, method="nearest")
    days = raw["valid_time"].dt.days_in_month.values
    np.testing.assert_allclose(grid["tp"].isel(cell=c).values, cell["tp"].values * days * 1000,
                               rtol=1e-5)
    np.testing.assert_allclose(grid["slhf"].isel(cell=c).values, cell["slhf"].values * days,
                               rtol=1e-5)
    np.testing.assert_allclose(grid["t2m"].isel(cell=c).values, cell["t2m"].values - 273.15,
                               atol=1e-3)
    july = grid["time"].dt.month == 7
    assert float(grid["slhf"].isel(cell=c)[july].mean()) < 0  # evaporation: upward = negative


def test_cmip_files_follow_drs_and_cmip_conventions(demo):
    files = sorted(p.name for p in (demo / "cmip5").glob("*.nc"))
    assert "sftlf_fx_IPSL-CM5A-MR_historical_r0i0p0.nc" in files
    parsed = [DRS.match(f) for f in files if not f.startswith("sftlf")]
    assert all(parsed), [f for f, m in zip(files, parsed) if not m]
    by = {(m["var"], m["exp"]): m for m in parsed}
    variables = {"tas", "ts", "pr", "prsn", "rlds", "rsds", "hfls", "hfss", "mrsos", "mrso"}
    assert {v for v, _ in by} == variables
    for v in variables:
        hist = by[(v, "historical")]
        assert (hist["start"], hist["end"]) == ("185001", "200512")
        for s in RCPS:
            assert (by[(v, s)]["start"], by[(v, s)]["end"]) == ("200601", "210012")
    hfls = xr.open_dataset(demo / "cmip5" / "hfls_Amon_IPSL-CM5A-MR_rcp45_r1i1p1_200601-210012.nc",
                           decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    assert hfls["time"].values[0].calendar in ("noleap", "365_day")
    assert hfls["hfls"].attrs["units"] == "W m-2"
    july = np.array([t.month == 7 for t in hfls["time"].values])
    assert float(hfls["hfls"][july].mean()) > 10  # CMIP: upward positive
    tas = xr.open_dataset(demo / "cmip5" /
                          "tas_Amon_IPSL-CM5A-MR_historical_r1i1p1_185001-200512.nc",
                          decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    assert tas["tas"].attrs["units"] == "K" and 230 < float(tas["tas"].mean()) < 290


def test_scenarios_differ_as_the_real_model_does(cat, bands):
    sc = cat.open("ipsl-cm5a-mr").load()
    assert sc.attrs["historical_end"] == "2005-12"
    assert list(sc["scenario"].values) == list(RCPS)
    late = sc["t2m"].sel(time=slice("2081", "2100")).mean(("time", "band"))
    early = sc["t2m"].sel(time=slice("1850", "2005"))
    assert float(early.sel(scenario="rcp26").max() - early.sel(scenario="rcp85").min()) > 0
    np.testing.assert_allclose(early.sel(scenario="rcp26"), early.sel(scenario="rcp85"))
    assert float(late.sel(scenario="rcp85") - late.sel(scenario="rcp26")) > 3.0
    assert float(late.sel(scenario="rcp45")) < float(late.sel(scenario="rcp85"))
    # the model's own bias against the reanalysis is left for the corrector to remove
    model = sc["t2m"].sel(scenario="rcp45", time=slice("2001", "2023")).mean("time")
    obs = bands["t2m"].mean("time")
    assert float(np.abs(model - obs).mean()) > 1.0


def test_done_when_six_bands_four_layers_cold_north_damped_depth(bands):
    assert bands.sizes == {"time": 276, "band": 6}
    assert pd.Timestamp(bands["time"].values[0]) == pd.Timestamp("2001-01-01")
    assert pd.Timestamp(bands["time"].values[-1]) == pd.Timestamp("2023-12-01")
    for layer in schema.TARGETS:
        mean = bands[layer].mean("time").values
        # colder further north: strictly so every other band (the coarse test grid leaves few
        # cells per band; the default grid is strictly monotone, see the slow test)
        assert np.all(np.diff(mean[::2]) < 0) and np.all(np.diff(mean[1::2]) < 0), (layer, mean)
        assert mean[0] - mean[5] > 8.0
        assert np.isfinite(bands[layer].values).all()
    clim = bands[list(schema.TARGETS)].groupby("time.month").mean("time")
    amplitude = np.stack([(clim[v].max("month") - clim[v].min("month")).values
                          for v in schema.TARGETS])  # (layer, band)
    assert np.all(np.diff(amplitude, axis=0) < 0), amplitude  # the wave is damped with depth
    peak = np.stack([clim[v].argmax("month").values for v in schema.TARGETS])
    assert np.all(peak[3] >= peak[0]) and np.any(peak[3] > peak[0])  # and delayed


def test_warmer_ground_under_deeper_snow(demo):
    raw = xr.open_dataset(demo / "era5land" / "era5land_monthly_alaska_2001-2023.nc")
    winter = raw.sel(valid_time=raw["valid_time"].dt.month.isin([1, 2, 3])).mean("valid_time")
    land = raw["lsm"].values > 0.5
    offset = (winter["stl2"] - winter["t2m"]).values[land]  # ground warmer than the air
    snow = winter["sd"].values[land]
    assert np.all(offset > 0)
    assert np.corrcoef(offset, snow)[0, 1] > 0.3


def test_truth_continues_the_reanalysis_and_warms_with_the_scenario(cat, bands):
    truth = {s: cat.open(f"truth-{s}").load() for s in RCPS}
    t85 = truth["rcp85"]
    assert t85.sizes == {"time": 1200, "band": 6}
    for layer in schema.TARGETS:
        np.testing.assert_allclose(t85[layer].sel(time=slice("2001", "2023")), bands[layer],
                                   atol=2e-3)
    late = {s: truth[s]["stl4"].sel(time=slice("2081", "2100")).mean("time") for s in truth}
    assert np.all(late["rcp85"] > late["rcp26"] + 1.0)
    annual = t85["stl4"].sel(time=slice("2024", "2100")).groupby("time.year").mean()
    slope = np.polyfit(annual["year"], annual.values, 1)[0]  # K per year, per band
    assert np.all(slope > 0.02)


def test_truth_files_carry_the_full_forcing_of_the_truth_run(demo):
    """Demo v3 on: a truth file holds every variable of the reanalysis file, equal to it over
    2001-2023 (the truth run continues the reanalysis run), so networks can be fed the very
    forcing the truth run used."""
    raw = xr.open_dataset(demo / "era5land" / "era5land_monthly_alaska_2001-2023.nc")
    tru = xr.open_dataset(demo / "truth" / "emulator_truth_rcp85_2001-2100.nc")
    assert set(raw.data_vars) == set(tru.data_vars)
    assert tru.sizes["valid_time"] == 1200
    head = tru.isel(valid_time=slice(0, raw.sizes["valid_time"]))
    for v in raw.data_vars:
        np.testing.assert_array_equal(head[v].values, raw[v].values, err_msg=v)
    late = tru.sel(valid_time=slice("2071", "2100")).mean("valid_time")
    early = raw.mean("valid_time")
    assert float((late["skt"] - early["skt"]).mean()) > 3.0  # the scenario warms the skin too
    assert float(tru["swvl1"].sel(valid_time=slice("2024", "2100")).notnull().mean()) > 0.2


def test_demo_v3_is_v2s_emulator_with_full_truth_files():
    from permaplug.demo.cache import DEMO_VERSION
    from permaplug.demo.params import VERSIONS, full_truth

    assert DEMO_VERSION == "3"
    assert VERSIONS["3"] == VERSIONS["2"]  # same emulator, hence the same training table
    assert full_truth("3") and not full_truth("2") and not full_truth("1")


@pytest.mark.slow
def test_v3_reanalysis_equals_v2s_and_truth_extends_it(tmp_path):
    """A v3 build writes the same reanalysis file as a v2 build (same training table) and the
    same truth soil temperatures; only the truth files gain variables."""
    from permaplug.demo import build_demo

    for v in ("2", "3"):
        build_demo(tmp_path / v, resolution=2, steps_per_month=1, progress=False, version=v)
    rel = "era5land/era5land_monthly_alaska_2001-2023.nc"
    a, b = xr.open_dataset(tmp_path / "2" / rel), xr.open_dataset(tmp_path / "3" / rel)
    assert set(a.data_vars) == set(b.data_vars)
    for v in a.data_vars:
        np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=v)
    rel = "truth/emulator_truth_rcp26_2001-2100.nc"
    a, b = xr.open_dataset(tmp_path / "2" / rel), xr.open_dataset(tmp_path / "3" / rel)
    assert set(a.data_vars) == {"t2m", "tp", "lsm", *schema.TARGETS} < set(b.data_vars)
    for v in a.data_vars:
        np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=v)


def test_static_inputs_load_and_are_plausible(cat):
    lith = cat.open("usgs-lithology")
    shares = sum(lith[f"lith_{c}"] for c in schema.LITHOLOGY_CLASSES)
    np.testing.assert_allclose(shares, 100.0, atol=0.5)
    north = lith["lith_unconsolidated"].sel(band=5)
    assert float(north) > float(lith["lith_unconsolidated"].sel(band=2))  # North Slope deposits
    soil = cat.open("openlandmap")
    assert np.all(soil["soc_l1"] > soil["soc_l4"]) and np.all(soil["bdod_l1"] < soil["bdod_l4"])
    assert np.all((soil["bdod_l4"] > 1000) & (soil["bdod_l4"] < 2000))


def test_build_refuses_a_folder_that_is_not_a_demo(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(cli, ["demo", "build", "--out", str(target), "--quiet"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and str(target) in result.output
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    result = CliRunner().invoke(cli, ["demo", "build", "--out", str(tmp_path / "x"),
                                      "--resolution", "5"])
    assert result.exit_code == 1 and "resolution" in result.output
    assert not (tmp_path / "x").exists()


def test_existing_demo_is_kept_without_force(demo):
    before = (demo / "catalog.yaml").stat().st_mtime_ns
    result = CliRunner().invoke(cli, ["demo", "build", "--out", str(demo), "--quiet"])
    assert result.exit_code == 0 and "already built" in result.output
    assert (demo / "catalog.yaml").stat().st_mtime_ns == before


def test_ensure_demo_catalog_builds_once_into_the_cache(tmp_path, monkeypatch):
    from permaplug.demo import build as B

    calls = []

    def fake_build(target, seed=0, progress=True, **kw):  # records the call, writes a catalog
        calls.append(Path(target))
        Path(target).mkdir(parents=True)
        (Path(target) / "catalog.yaml").write_text("version: 2\nentries: {}\n")
        return Path(target) / "catalog.yaml"

    monkeypatch.setenv("PERMAPLUG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(B, "build_demo", fake_build)
    first = B.ensure_demo_catalog(progress=False)
    assert first == tmp_path / "cache" / f"demo-v{B.DEMO_VERSION}" / "catalog.yaml"
    assert B.ensure_demo_catalog(progress=False) == first and len(calls) == 1
    (first).unlink()  # a half-built leftover (no catalog) is rebuilt
    assert B.ensure_demo_catalog(progress=False) == first and len(calls) == 2
    result = CliRunner().invoke(cli, ["demo", "path"])
    assert result.output.strip() == str(first)


@pytest.mark.slow
def test_default_build_is_fast_deterministic_and_complete(tmp_path):
    """The default demo (0.5 deg, weekly steps, spin-up, four truth runs) in under 60 s, and the
    same seed gives identical files. The time checked is the CPU critical path (main process plus
    the slower half of the two truth workers), i.e. the wall clock of an idle 2-core machine, so
    that the check does not depend on what else the machine is running."""
    from permaplug.demo import build_demo

    cat_path = build_demo(tmp_path / "a", progress=False)
    meta = yaml.safe_load(cat_path.read_text())["metadata"]
    assert meta["land_cells"] > 900 and meta["build_cpu_seconds"]["critical_path"] < 60, meta
    assert meta["build_cpu_seconds"]["workers"] > 0  # the truth runs did run in two workers
    bands = load_catalog(cat_path).open("era5land")
    for layer in schema.TARGETS:
        assert np.all(np.diff(bands[layer].mean("time").values) < 0), layer
    again = build_demo(tmp_path / "b", progress=False)
    for rel in ("era5land/era5land_monthly_alaska_2001-2023.nc",
                "truth/emulator_truth_rcp45_2001-2100.nc"):
        a = xr.open_dataset(cat_path.parent / rel)
        b = xr.open_dataset(again.parent / rel)
        for v in a.data_vars:
            np.testing.assert_array_equal(a[v].values, b[v].values)


def test_figures_are_drawn_from_the_catalog(demo, tmp_path):
    import matplotlib.image as mpimg

    from permaplug.demo.figures import annual_amplitude, seasonal_cycle_figure, truth_figure

    cat_path = demo / "catalog.yaml"
    for fn, name in ((seasonal_cycle_figure, "cycle.png"), (truth_figure, "truth.png")):
        out = fn(cat_path, tmp_path / name)
        img = mpimg.imread(out)
        assert img.shape[0] > 300 and img.shape[1] > 800
        assert img[..., :3].std() > 0.05  # not blank
    amp = annual_amplitude(load_catalog(cat_path).open("era5land"))
    assert amp.shape == (4, 6) and np.all(amp > 0)
