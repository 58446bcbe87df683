"""Download code, offline: the exact requests handed to fake CDS, Earth Engine and ESGF clients."""
from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr
from click.testing import CliRunner

from permaplug.cli import cli
from permaplug.core.errors import FetchError
from permaplug.data.fetch import (
    CDS_DATASET,
    cds_client,
    cds_request,
    ee_request,
    esgf_query,
    fetch_era5land_cds,
    fetch_era5land_gee,
    fetch_esgf,
)
from permaplug.plugins.sources.era5land import open_era5land


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
    files = fetch_era5land_gee(tmp_path, 2005, 2005, client=fake, progress=False)
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
    assert ee_request(2001, 2023, "daily")["collection"] == "ECMWF/ERA5_LAND/DAILY_AGGR"


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
