"""Download code, offline: the exact requests handed to fake CDS, Earth Engine and ESGF clients,
each source's ``fetch`` classmethod, and the ``permaplug fetch`` sub-commands built from it."""
from __future__ import annotations

import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr
from click.testing import CliRunner

import permaplug
from permaplug.cli import cli
from permaplug.core import plugins as plugmod
from permaplug.core.errors import FetchError
from permaplug.plugins.sources import cmip_fetch
from permaplug.plugins.sources.cmip import CMIPSource
from permaplug.plugins.sources.cmip_fetch import esgf_query, fetch_esgf
from permaplug.plugins.sources.era5land import EE_BANDS, ERA5LandSource, open_era5land
from permaplug.plugins.sources.era5land_fetch import (
    CDS_DATASET,
    cds_client,
    cds_request,
    ee_request,
    fetch_era5land_cds,
    fetch_era5land_gee,
)


class FakeCDS:
    """Records requests; writes a small CDS-layout NetCDF (new layout) for each."""

    def __init__(self):
        self.calls = []

    def retrieve(self, name, request, target):
        self.calls.append((name, request))
        year = int(request["year"][0])
        time = pd.date_range(f"{year}-01-01", periods=12, freq="MS")
        ds = xr.Dataset({"t2m": (("valid_time", "latitude", "longitude"),
                                 np.full((12, 1, 1), 263.15), {"units": "K"}),
                         "tp": (("valid_time", "latitude", "longitude"),
                                np.full((12, 1, 1), 0.001), {"units": "m"})},
                        coords={"valid_time": time, "latitude": [64.0], "longitude": [-147.0]})
        ds.to_netcdf(target)


def test_cds_request_and_files(tmp_path):
    fake = FakeCDS()
    files = fetch_era5land_cds(tmp_path, 2001, 2002, client=fake, progress=False)
    assert [f.name for f in files] == ["era5land_monthly_2001.nc", "era5land_monthly_2002.nc"]
    name, req = fake.calls[0]
    assert name == CDS_DATASET == "reanalysis-era5-land-monthly-means"
    assert req["product_type"] == ["monthly_averaged_reanalysis"]
    assert req["year"] == ["2001"] and req["month"][0] == "01" and len(req["month"]) == 12
    assert req["area"] == [71.5, -168.5, 59.0, -140.5]
    assert "soil_temperature_level_4" in req["variable"] and len(req["variable"]) == 16
    assert req["data_format"] == "netcdf"
    # the downloaded files load through the era5land source
    ds = open_era5land(tmp_path)
    assert ds.sizes["time"] == 24
    assert float(ds["tp"].sel(time="2002-02-01", band=2)) == pytest.approx(28.0)
    # a second run keeps existing files and asks nothing
    fetch_era5land_cds(tmp_path, 2001, 2002, client=fake, progress=False)
    assert len(fake.calls) == 2
    assert cds_request(2001, ["t2m"])["variable"] == ["2m_temperature"]


def test_cds_missing_credentials_and_no_secret(tmp_path, monkeypatch):
    fake_mod = types.ModuleType("cdsapi")

    class Client:
        def __init__(self, **kw):
            raise RuntimeError("bad key SECRET-123 for url")

    fake_mod.Client = Client
    monkeypatch.setitem(sys.modules, "cdsapi", fake_mod)
    monkeypatch.delenv("CDSAPI_KEY", raising=False)
    monkeypatch.setenv("CDSAPI_RC", str(tmp_path / "none"))
    with pytest.raises(FetchError, match=r"no CDS credentials: put 'url' and 'key' in ~/.cdsapirc"):
        cds_client()
    monkeypatch.setenv("CDSAPI_KEY", "SECRET-123")
    with pytest.raises(FetchError) as info:
        cds_client()
    assert "SECRET-123" not in str(info.value)


class FakeEE:
    def __init__(self):
        self.requests = []

    def band_means(self, request):
        self.requests.append(request)
        rows = []
        for m in range(1, 13):
            for r in request["regions"]:
                rows.append({"date": f"{request['start'][:4]}-{m:02d}-01", "band": r["band"],
                             "temperature_2m": 270.15, "total_precipitation_sum": 0.01})
        return rows


def test_ee_request_and_csv(tmp_path):
    fake = FakeEE()
    files = fetch_era5land_gee(tmp_path, 2005, 2005, bands=EE_BANDS, client=fake, progress=False)
    req = fake.requests[0]
    assert req["collection"] == "ECMWF/ERA5_LAND/MONTHLY_AGGR"
    assert (req["start"], req["end"]) == ("2005-01-01", "2006-01-01")
    assert req["reducer"] == "mean" and req["scale"] == 5000
    assert "soil_temperature_level_1" in req["bands"] and "surface_latent_heat_flux_sum" in \
        req["bands"]
    assert [r["band"] for r in req["regions"]] == [f"band_{i}" for i in range(1, 7)]
    g = shapely.geometry.shape(req["regions"][2]["geometry"])
    minx, miny, maxx, maxy = g.bounds
    assert miny == pytest.approx(63.2878, abs=1e-3) and maxy == pytest.approx(65.3001, abs=1e-3)
    assert minx >= -168 and maxx <= -141
    ds = open_era5land(files[0])
    assert float(ds["t2m"].sel(time="2005-03-01", band=5)) == pytest.approx(-3.0)
    assert float(ds["tp"].sel(time="2005-03-01", band=0)) == pytest.approx(10.0)  # monthly total
    daily = ee_request(2001, 2023, "daily", bands=["skin_temperature"])
    assert daily["collection"] == "ECMWF/ERA5_LAND/DAILY_AGGR"
    assert daily["bands"] == ["skin_temperature"]


class FakeESGF:
    def __init__(self):
        self.queries, self.downloads = [], []

    def search(self, params):
        self.queries.append(params)
        var = params.get("variable") or params.get("variable_id")
        exp = params.get("experiment") or params.get("experiment_id")
        name = f"{var}_Amon_IPSL-CM5A-MR_{exp}_r1i1p1_200601-210012.nc"
        doc = {"title": name, "url": [f"https://node/{name}|application/netcdf|HTTPServer",
                                      f"gsiftp://node/{name}|application/gridftp|GridFTP"]}
        return [doc, dict(doc)]  # two replicas of the same file

    def download(self, url, target):
        self.downloads.append(url)
        Path(target).write_bytes(b"netcdf")


def test_esgf_search_and_download(tmp_path):
    fake = FakeESGF()
    files = fetch_esgf(tmp_path, experiments=["rcp85"], variables=["tas", "mrso"],
                       client=fake, progress=False)
    q = fake.queries[0]
    assert q == {"project": "CMIP5", "model": "IPSL-CM5A-MR", "experiment": "rcp85",
                 "variable": "tas", "cmor_table": "Amon", "ensemble": "r1i1p1",
                 "time_frequency": "mon", "type": "File", "latest": "true",
                 "format": "application/solr+json", "limit": "500", "distrib": "true"}
    assert fake.queries[1]["cmor_table"] == "Lmon"
    assert fake.queries[-1]["variable"] == "sftlf" and fake.queries[-1]["ensemble"] == "r0i0p0"
    assert len(fake.downloads) == 3  # replicas downloaded once, HTTP URL chosen
    assert all(u.startswith("https://node/") for u in fake.downloads)
    assert min(f.name for f in files) == "mrso_Amon_IPSL-CM5A-MR_rcp85_r1i1p1_200601-210012.nc"
    six = esgf_query("CMIP6", "IPSL-CM6A-LR", "ssp585", "tas", "r1i1p1f1")
    assert (six["source_id"], six["experiment_id"], six["table_id"], six["member_id"]) == \
        ("IPSL-CM6A-LR", "ssp585", "Amon", "r1i1p1f1")


def test_cli_fetch_without_client_library_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cdsapi", None)  # import fails
    res = CliRunner().invoke(cli, ["fetch", "era5land", "--backend", "cds", "--out", str(tmp_path)])
    assert res.exit_code == 1
    assert res.output.strip() == "Error: the CDS backend needs cdsapi: pip install 'permaplug[cds]'"


class ZipCDS(FakeCDS):
    """The CDS splitting a request by step type: a zip of two NetCDF files (same times)."""

    def retrieve(self, name, request, target):
        import zipfile

        self.calls.append((name, request))
        time = pd.date_range(f"{request['year'][0]}-01-01", periods=12, freq="MS")
        coords = {"valid_time": time, "latitude": [64.0], "longitude": [-147.0]}
        dims = ("valid_time", "latitude", "longitude")
        tmp = Path(target).parent
        xr.Dataset({"t2m": (dims, np.full((12, 1, 1), 273.15), {"units": "K"})},
                   coords=coords).to_netcdf(tmp / "instant.nc")
        xr.Dataset({"tp": (dims, np.full((12, 1, 1), 0.001), {"units": "m"})},
                   coords=coords).to_netcdf(tmp / "accum.nc")
        with zipfile.ZipFile(target, "w") as zf:
            zf.write(tmp / "instant.nc", "data_stream-moda_stepType-avgua.nc")
            zf.write(tmp / "accum.nc", "data_stream-moda_stepType-avgad.nc")
        (tmp / "instant.nc").unlink()
        (tmp / "accum.nc").unlink()


def test_cds_zip_split_by_step_type(tmp_path):
    out = tmp_path / "era5"
    fake = ZipCDS()
    files = fetch_era5land_cds(out, 2003, 2004, client=fake, progress=False)
    assert len(files) == 4 and all(f.suffix == ".nc" for f in files)
    ds = open_era5land(out)   # merged by time, then concatenated: both variables, 24 months
    assert ds.sizes["time"] == 24
    assert float(ds["t2m"].sel(time="2004-06-01", band=2)) == pytest.approx(0.0)
    assert float(ds["tp"].sel(time="2004-06-01", band=2)) == pytest.approx(30.0)
    again = fetch_era5land_cds(out, 2003, 2004, client=fake, progress=False)
    assert sorted(again) == sorted(files) and len(fake.calls) == 2


# --- the fetch classmethods and the sub-commands built from them --------------------------------
def test_source_fetch_classmethods_dispatch_to_their_backends(tmp_path):
    cds, ee, esgf = FakeCDS(), FakeEE(), FakeESGF()
    files = ERA5LandSource.fetch(tmp_path / "cds", start=2001, end=2001, variables=["t2m"],
                                 client=cds, progress=False)
    assert [f.name for f in files] == ["era5land_monthly_2001.nc"]
    assert cds.calls[0][1]["variable"] == ["2m_temperature"]
    files = ERA5LandSource.fetch(tmp_path / "ee", backend="gee", start=2002, end=2002,
                                 collection="daily", client=ee, progress=False)
    assert [f.name for f in files] == ["era5land_ee_daily_2002.csv"]
    assert ee.requests[0]["collection"] == "ECMWF/ERA5_LAND/DAILY_AGGR"
    files = CMIPSource.fetch(tmp_path / "cmip", project="CMIP6", model="M", experiments=["x1"],
                             variables=["tas"], member="r1i1p1f1", client=esgf, progress=False)
    assert esgf.queries[0]["source_id"] == "M" and esgf.queries[0]["experiment_id"] == "x1"
    assert len(files) == 2  # tas and the land fraction
    with pytest.raises(FetchError, match="source 'openlandmap' has no download support"):
        plugmod.get_source("openlandmap").fetch(tmp_path)


def test_fetch_subcommands_come_from_the_registry():
    res = CliRunner().invoke(cli, ["fetch", "--help"])
    assert res.exit_code == 0, res.output
    listed = res.output.split("Commands:")[1].split()
    assert "era5land" in listed and "cmip" in listed and "openlandmap" not in listed
    res = CliRunner().invoke(cli, ["fetch", "era5land", "--help"])
    assert res.exit_code == 0, res.output
    for text in ("--out", "--backend [cds|gee]", "--collection [monthly|daily]", "--variables",
                 "--start", "Download ERA5-Land monthly data for mainland Alaska."):
        assert text in res.output, text
    assert "--client" not in res.output and "--progress" not in res.output
    res = CliRunner().invoke(cli, ["fetch", "openlandmap", "--out", "x"])
    assert res.exit_code == 2
    assert "source 'openlandmap' has no download support (sources that can download: " \
        "cmip, era5land)" in res.output
    res = CliRunner().invoke(cli, ["fetch", "nosuch"])
    assert res.exit_code == 2 and "No such command 'nosuch'" in res.output


def test_cli_fetch_cmip_splits_lists(tmp_path, monkeypatch):
    fake = FakeESGF()
    monkeypatch.setattr(cmip_fetch, "HttpESGFClient", lambda: fake)
    res = CliRunner().invoke(cli, ["fetch", "cmip", "--experiments", "historical, rcp85",
                                   "--variables", "tas", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert res.output.strip().endswith(f"3 file(s) in {tmp_path}")
    assert [(q["experiment"], q["variable"]) for q in fake.queries] == [
        ("historical", "tas"), ("rcp85", "tas"), ("historical", "sftlf")]
    res = CliRunner().invoke(cli, ["fetch", "cmip", "--project", "CMIP7", "--out", "x"])
    assert res.exit_code == 2 and "'CMIP7' is not one of 'CMIP5', 'CMIP6'" in res.output


class Gauges(permaplug.Source):
    """A third party's source with download support (writes what it was asked for)."""

    name: ClassVar[str] = "gauges"

    def open(self) -> xr.Dataset:
        return xr.Dataset()

    @classmethod
    def fetch(cls, out: Path, *,
              network: Annotated[Literal["a", "b"], "Gauge network."] = "a",
              years: Annotated[int, "Years to get."] = 2,
              stations: Annotated[Sequence[str], "Comma-separated station ids."] = ("s1",),
              token_file: Annotated[str | None, "File holding an access token."] = None,
              daily: Annotated[bool, "Daily instead of monthly values."] = False,
              region: Annotated[str, "Region name."],
              client: object = None) -> list[Path]:
        """Download gauge records.

        More text that is not the short help.
        """
        out.mkdir(parents=True, exist_ok=True)
        target = out / "request.txt"
        target.write_text(repr((network, years, list(stations), token_file, daily, region)))
        return [target]


class GaugesPlugin:
    __name__ = "permaplug_gauges"

    @permaplug.hookimpl
    def register_sources(self, register):
        register(Gauges)


def test_third_party_source_gets_a_fetch_subcommand(tmp_path, monkeypatch):
    monkeypatch.setattr(plugmod, "_registry", plugmod.build_registry(
        extra_plugins=[(GaugesPlugin(), "permaplug-gauges")]))
    res = CliRunner().invoke(cli, ["fetch", "--help"])
    assert "gauges" in res.output and "Download gauge records." in res.output
    assert "More text" not in res.output.split("Commands:")[1]
    res = CliRunner().invoke(cli, ["fetch", "gauges", "--help"])
    assert "Download gauge records." in res.output and "More text" not in res.output
    out = tmp_path / "g"
    res = CliRunner().invoke(cli, ["fetch", "gauges", "--network", "b", "--years", "3",
                                   "--stations", "x,y", "--daily", "--region", "north",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "request.txt").read_text() == repr(("b", 3, ["x", "y"], None, True, "north"))
    res = CliRunner().invoke(cli, ["fetch", "gauges", "--out", str(out)])  # --region required
    assert res.exit_code == 2 and "Missing option '--region'" in res.output
    res = CliRunner().invoke(cli, ["fetch", "gauges", "--years", "many", "--region", "n",
                                   "--out", str(out)])
    assert res.exit_code == 2 and "'many' is not a valid integer" in res.output
