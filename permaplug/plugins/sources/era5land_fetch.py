"""Download code of the ``era5land`` source: ERA5-Land monthly means from the Climate Data Store
(cdsapi) or band means from Earth Engine (earthengine-api). :meth:`ERA5LandSource.fetch
<permaplug.plugins.sources.era5land.ERA5LandSource.fetch>` is the entry point.

Each backend separates the REQUEST (a plain dict, built by a pure function and tested offline)
from the CLIENT that executes it. Clients come from the providers' libraries with their standard
configuration (``~/.cdsapirc`` or ``CDSAPI_URL``/``CDSAPI_KEY``; ``earthengine authenticate``);
tests pass fake clients. Missing credentials raise :class:`FetchError` with one line saying how
to authenticate; no secret is ever printed or logged. Files are written atomically.
"""
from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import shapely
from tqdm import tqdm

from permaplug.core import progress as bars
from permaplug.core.atomic import atomic_path
from permaplug.core.errors import ConfigError, FetchError

# --- ERA5-Land via the Climate Data Store ---------------------------------------------------
CDS_DATASET = "reanalysis-era5-land-monthly-means"
CDS_VARIABLES: dict[str, str] = {
    "t2m": "2m_temperature", "skt": "skin_temperature", "tp": "total_precipitation",
    "sf": "snowfall", "strd": "surface_thermal_radiation_downwards",
    "ssrd": "surface_solar_radiation_downwards", "slhf": "surface_latent_heat_flux",
    "sshf": "surface_sensible_heat_flux",
    **{f"swvl{i}": f"volumetric_soil_water_layer_{i}" for i in range(1, 5)},
    **{f"stl{i}": f"soil_temperature_level_{i}" for i in range(1, 5)},
}
"""Canonical short name -> CDS request variable name (ERA5-Land)."""
ALASKA_AREA = [71.5, -168.5, 59.0, -140.5]
"""CDS ``area`` [North, West, South, East]: the six bands and lon -168..-141 plus a margin."""


def _years(start: int, end: int) -> list[int]:
    if not (1950 <= start <= end <= 2100):
        raise ConfigError(f"--start {start} --end {end}: need 1950 <= start <= end")
    return list(range(start, end + 1))


def cds_request(year: int, variables: Sequence[str] | None = None,
                area: Sequence[float] = ALASKA_AREA) -> dict[str, Any]:
    """The CDS request for one year of ERA5-Land monthly means (NetCDF, all 12 months)."""
    names = list(variables or CDS_VARIABLES)
    unknown = [v for v in names if v not in CDS_VARIABLES]
    if unknown:
        raise ConfigError(f"--variables: unknown {unknown}; known: {', '.join(CDS_VARIABLES)}")
    return {
        "product_type": ["monthly_averaged_reanalysis"],
        "variable": [CDS_VARIABLES[v] for v in names],
        "year": [str(year)],
        "month": [f"{m:02d}" for m in range(1, 13)],
        "time": ["00:00"],
        "area": list(area),
        "data_format": "netcdf",
        "download_format": "unarchived",
    }


def cds_secrets() -> list[str]:
    """The CDS credentials of this machine (``CDSAPI_KEY`` and the ``key:`` of ~/.cdsapirc)."""
    found = [os.environ.get("CDSAPI_KEY", "")]
    rc = Path(os.environ.get("CDSAPI_RC", Path.home() / ".cdsapirc"))
    try:
        for line in rc.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "key":
                found.append(value.strip())
    except OSError:
        pass
    return [s for s in found if len(s) >= 4]


def redact(text: str) -> str:
    """``text`` with every known credential (and each ``:``-separated part of it) replaced by
    ``***``: provider errors may quote the request, never our messages."""
    for secret in cds_secrets():
        for part in sorted({secret, *secret.split(":")}, key=len, reverse=True):
            if len(part) >= 4:
                text = text.replace(part, "***")
    return text


class CDSClient(Protocol):
    def retrieve(self, name: str, request: dict[str, Any], target: str) -> Any: ...


def cds_client() -> CDSClient:
    """A ``cdsapi.Client`` from the standard configuration (FetchError if absent)."""
    try:
        import cdsapi
    except ImportError:
        raise FetchError("the CDS backend needs cdsapi: pip install 'permaplug[cds]'") from None
    rc = Path(os.environ.get("CDSAPI_RC", Path.home() / ".cdsapirc"))
    if not (os.environ.get("CDSAPI_KEY") or rc.exists()):
        raise FetchError("no CDS credentials: put 'url' and 'key' in ~/.cdsapirc (or set "
                         "CDSAPI_URL and CDSAPI_KEY); see "
                         "https://cds.climate.copernicus.eu/how-to-api")
    try:
        return cdsapi.Client(quiet=True, progress=False)
    except Exception as exc:  # noqa: BLE001 - never echo the configuration itself
        raise FetchError(f"CDS client could not start ({type(exc).__name__}); check "
                         "~/.cdsapirc") from None


def fetch_era5land_cds(out: Path, start: int, end: int, variables: Sequence[str] | None = None,
                       client: CDSClient | None = None, progress: bool = True) -> list[Path]:
    """One NetCDF per year ``era5land_monthly_<year>.nc`` in ``out`` (existing files kept)."""
    client = client or cds_client()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for year in tqdm(_years(start, end), desc="CDS ERA5-Land", disable=bars.disabled(progress)):
        target = out / f"era5land_monthly_{year}.nc"
        if target.exists():
            written.append(target)
            continue
        if target.with_suffix(".zip").exists():  # an earlier download split into files
            written.extend(sorted(out.glob(f"era5land_monthly_{year}_*.nc")))
            continue
        with atomic_path(target) as tmp:
            try:
                client.retrieve(CDS_DATASET, cds_request(year, variables), str(tmp))
            except FetchError:
                raise
            except Exception as exc:  # noqa: BLE001 - any client failure becomes one FetchError line
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise FetchError(f"CDS request for {year} failed: {redact(first)}") from None
        if zipfile.is_zipfile(target):
            written.extend(_unzip_netcdf(target))
        else:
            written.append(target)
    return written


def _unzip_netcdf(archive: Path) -> list[Path]:
    """Extract the NetCDF files of a zip the CDS returned (a request split by step type) as
    ``<stem>_<member>.nc``; the archive is renamed ``.zip`` so a rerun does not download again.
    """
    out = []
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            if not member.endswith(".nc"):
                continue
            target = archive.with_name(f"{archive.stem}_{Path(member).stem}.nc")
            with atomic_path(target) as tmp, zf.open(member) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            out.append(target)
    if not out:
        raise FetchError(f"{archive}: the CDS returned a zip without NetCDF files")
    archive.rename(archive.with_suffix(".zip"))
    return out


# --- ERA5-Land via Earth Engine ----------------------------------------------------------------
EE_COLLECTIONS = {"monthly": "ECMWF/ERA5_LAND/MONTHLY_AGGR", "daily": "ECMWF/ERA5_LAND/DAILY_AGGR"}
EE_SCALE_M = 5000


def ee_band_geometries(region: str | None = None) -> list[dict[str, Any]]:
    """GeoJSON of the region polygon cut into the six bands (what each band mean covers)."""
    from permaplug.plugins.sources.usgs_lithology import band_polygons

    return [shapely.geometry.mapping(shapely.set_precision(g, 1e-4))
            for g in band_polygons(region)]


def ee_request(start: int, end: int, collection: str = "monthly", *, bands: Sequence[str],
               scale: int = EE_SCALE_M, region: str | None = None) -> dict[str, Any]:
    """The Earth Engine band-mean request (pure data): collection, ``bands`` (Earth Engine band
    names, e.g. the era5land source's ``EE_BANDS``), dates, regions, reducer.

    The seed paper reduced with ``ee.Reducer.first()`` (one pixel per band); we ask for
    ``mean`` over each band polygon (land pixels only: ERA5-Land is masked over sea).
    """
    if collection not in EE_COLLECTIONS:
        raise ConfigError(f"--collection {collection!r}: use {', '.join(EE_COLLECTIONS)}")
    _years(start, end)
    return {
        "collection": EE_COLLECTIONS[collection],
        "bands": list(bands),
        "start": f"{start}-01-01",
        "end": f"{end + 1}-01-01",  # filterDate end is exclusive
        "regions": [{"band": f"band_{i + 1}", "geometry": g}
                    for i, g in enumerate(ee_band_geometries(region))],
        "reducer": "mean",
        "scale": scale,
    }


class EEClient(Protocol):
    def band_means(self, request: dict[str, Any]) -> list[dict[str, Any]]: ...


class EarthEngineClient:
    """Runs an :func:`ee_request` with earthengine-api: rows ``{date, band, <band names>}``."""

    def __init__(self, project: str | None = None) -> None:
        try:
            import ee
        except ImportError:
            raise FetchError("the gee backend needs earthengine-api: "
                             "pip install 'permaplug[gee]'") from None
        try:
            ee.Initialize(project=project) if project else ee.Initialize()
        except Exception:  # noqa: BLE001 - ee raises EEException on missing credentials
            raise FetchError("Earth Engine is not authenticated: run 'earthengine authenticate' "
                             "(and pass --project or 'earthengine set_project PROJECT')") from None
        self.ee = ee

    def band_means(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        ee = self.ee
        fc = ee.FeatureCollection([ee.Feature(ee.Geometry(r["geometry"]), {"band": r["band"]})
                                   for r in request["regions"]])
        ic = (ee.ImageCollection(request["collection"])
              .filterDate(request["start"], request["end"]).select(request["bands"]))
        reducer = getattr(ee.Reducer, request["reducer"])()

        def per_image(img):
            date = img.date().format("YYYY-MM-dd")
            return img.reduceRegions(collection=fc, reducer=reducer, scale=request["scale"]) \
                .map(lambda f: f.set("date", date))

        info = ic.map(per_image).flatten().getInfo()
        return [dict(f["properties"]) for f in info["features"]]


def fetch_era5land_gee(out: Path, start: int, end: int, collection: str = "monthly", *,
                       bands: Sequence[str], client: EEClient | None = None,
                       project: str | None = None, progress: bool = True) -> list[Path]:
    """One Earth Engine CSV per year ``era5land_ee_<collection>_<year>.csv`` (date, band, bands)."""
    client = client or EarthEngineClient(project)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for year in tqdm(_years(start, end), desc="Earth Engine ERA5-Land", disable=bars.disabled(progress)):
        target = out / f"era5land_ee_{collection}_{year}.csv"
        if target.exists():
            written.append(target)
            continue
        request = ee_request(year, year, collection, bands=bands)
        try:
            rows = client.band_means(request)
        except FetchError:
            raise
        except Exception as exc:  # noqa: BLE001 - ee.EEException, HTTP errors, quota...
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise FetchError(f"Earth Engine request for {year} failed: {redact(first)}"
                             ) from None
        if not rows:
            raise FetchError(f"Earth Engine returned no rows for {year}")
        frame = pd.DataFrame(rows)
        cols = ["date", "band"] + [b for b in request["bands"] if b in frame.columns]
        with atomic_path(target) as tmp:
            frame[cols].sort_values(["date", "band"]).to_csv(tmp, index=False)
        written.append(target)
    return written


__all__ = [
    "ALASKA_AREA", "CDS_DATASET", "CDS_VARIABLES", "EE_COLLECTIONS", "cds_client", "cds_request",
    "ee_request", "fetch_era5land_cds", "fetch_era5land_gee", "redact",
]
