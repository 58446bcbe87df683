"""Writers of the demo files in the real providers' formats (read back by the real source plugins).

* ERA5-Land: NetCDF as the Climate Data Store delivers ``reanalysis-era5-land-monthly-means``
  (product ``monthly_averaged_reanalysis``) since 2024: dims ``valid_time, latitude,
  longitude`` (latitude descending), coordinates ``number`` and ``expver``; K, m of water,
  J m-2, m3 m-3; accumulated fields as the mean DAILY accumulation; ECMWF signs (fluxes positive
  downward); ``lsm`` land-sea mask. NaN over the sea, as in ERA5-Land.
* CMIP5: one file per variable and experiment, DRS names
  (``tas_Amon_IPSL-CM5A-MR_rcp85_r1i1p1_200601-210012.nc``), ``365_day`` calendar, mid-month
  time with ``time_bnds``, CMIP units and signs, plus ``sftlf_fx_..._r0i0p0.nc``.
* USGS SIM 3340 lithology: a GeoPackage of map-unit polygons with a ``STATE_UNIT`` field.
* OpenLandMap: single-band uint8 GeoTIFFs named as on Zenodo, in 10 kg m-3 / 5 g kg-1 units,
  nodata 255.

Every file says it is emulated (global attribute ``source`` and ``permaplug_data``).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core import schema
from permaplug.core.atomic import atomic_path

ERA5_UNITS = {
    "t2m": "K", "skt": "K", "tp": "m", "sf": "m of water equivalent", "strd": "J m**-2",
    "ssrd": "J m**-2", "slhf": "J m**-2", "sshf": "J m**-2",
    **{f"stl{i}": "K" for i in range(1, 5)}, **{f"swvl{i}": "m**3 m**-3" for i in range(1, 5)},
    "sd": "m of water equivalent",
}
ERA5_LONG = {
    "t2m": "2 metre temperature", "skt": "Skin temperature", "tp": "Total precipitation",
    "sf": "Snowfall", "strd": "Surface thermal radiation downwards",
    "ssrd": "Surface short-wave (solar) radiation downwards", "slhf": "Time-integrated surface "
    "latent heat net flux", "sshf": "Time-integrated surface sensible heat net flux",
    **{f"stl{i}": f"Soil temperature level {i}" for i in range(1, 5)},
    **{f"swvl{i}": f"Volumetric soil water layer {i}" for i in range(1, 5)},
    "sd": "Snow depth water equivalent",
}
ACCUMULATED = ("tp", "sf", "strd", "ssrd", "slhf", "sshf")
CMIP_META: dict[str, tuple[str, str, str, str]] = {  # var: table, units, standard name, long name
    "tas": ("Amon", "K", "air_temperature", "Near-Surface Air Temperature"),
    "ts": ("Amon", "K", "surface_temperature", "Surface Temperature"),
    "pr": ("Amon", "kg m-2 s-1", "precipitation_flux", "Precipitation"),
    "prsn": ("Amon", "kg m-2 s-1", "snowfall_flux", "Snowfall Flux"),
    "rlds": ("Amon", "W m-2", "surface_downwelling_longwave_flux_in_air",
             "Surface Downwelling Longwave Radiation"),
    "rsds": ("Amon", "W m-2", "surface_downwelling_shortwave_flux_in_air",
             "Surface Downwelling Shortwave Radiation"),
    "hfls": ("Amon", "W m-2", "surface_upward_latent_heat_flux", "Surface Upward Latent Heat Flux"),
    "hfss": ("Amon", "W m-2", "surface_upward_sensible_heat_flux",
             "Surface Upward Sensible Heat Flux"),
    "mrsos": ("Lmon", "kg m-2", "moisture_content_of_soil_layer",
              "Moisture in Upper Portion of Soil Column"),
    "mrso": ("Lmon", "kg m-2", "soil_moisture_content", "Total Soil Moisture Content"),
}
MODEL = "IPSL-CM5A-MR"
OLM_NAMES = {
    "bdod": "sol_bulkdens.fineearth_usda.4a1h_m_250m_b{d}..{d}cm_1950..2017_v0.2.tif",
    "soc": "sol_organic.carbon_usda.6a1c_m_250m_b{d}..{d}cm_1950..2017_v0.2.tif",
}
OLM_SCALE = {"bdod": 10.0, "soc": 5.0}
# a map-unit symbol per class, following SIM 3340's convention (age prefix + lithology suffix)
UNIT_SYMBOLS = {
    "water": "water", "unconsolidated": "Qs", "glacier": "ice", "volcanic": "Tv",
    "melange": "KJmel", "plutonic": "Kgr", "sedimentary": "Dss", "metamorphic": "Pzms",
    "unknown": "unmapped",
}


def _emulated_attrs(what: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    attrs = {
        "source": f"permaplug demo emulator: {what}. NOT provider data: emulated, in the "
                  "provider's file format (see docs/demo-data.md).",
        schema.DATA_LABEL_ATTR: schema.DEMO_LABEL,
    }
    attrs.update(extra or {})
    return attrs


TEMPERATURE_DIGITS = 3
"""``least_significant_digit`` of the ERA5-Land temperatures (t2m, skt, stl1..4)."""


def quantize(values: np.ndarray, digits: int) -> np.ndarray:
    """Round float32 ``values`` in place as netCDF4-python's ``least_significant_digit`` does
    (to multiples of 2**-bits, bits = ceil(log2(10**digits)); 1/1024 for 3 digits; NaN stays
    NaN) and return them. Three in-place passes instead of the library's three temporaries:
    the same numbers (``tests/test_demo_formats.py``) for a quarter of the cost on big grids."""
    scale = 2.0 ** int(np.ceil(np.log2(10.0 ** digits)))
    np.multiply(values, scale, out=values)
    np.around(values, out=values)
    np.divide(values, scale, out=values)
    return values


Fields = dict[str, "np.ndarray | tuple[np.ndarray, ...] | Callable[[int, int], np.ndarray]"]
"""Variables to write: an array, a tuple of arrays that follow each other in time (written as
one series without being joined), or a function ``rows(t0, t1)`` giving months ``t0 .. t1 - 1``
(asked in time order, a chunk at a time)."""


def write_era5land(path: Path, time: pd.DatetimeIndex, lat: np.ndarray, lon: np.ndarray,
                   fields: Fields, land: np.ndarray, history: str,
                   to_grid: Callable[[np.ndarray], np.ndarray] | None = None) -> Path:
    """Write a CDS-style ERA5-Land monthly-means NetCDF.

    ``fields`` hold canonical units on the grid, (nt, nlat, nlon): degC, mm per month, W m-2
    (monthly mean; fluxes positive downward), m3 m-3; ``land`` (nlat, nlon) bool. With
    ``to_grid`` (e.g. :meth:`permaplug.demo.grid.DemoGrid.to_grid`) the fields are on cells,
    (nt, ncell). A field may also be given in pieces or as a function of its rows
    (:data:`Fields`).

    The file is the CDS's layout: float32, chunks of whole years, shuffle + deflate (level 1
    declared, as the CDS's files). The data go in a chunk at a time
    (:func:`permaplug.demo.chunks.write_deflated`): converted and rounded to float32 on the
    cells, put on the grid (NaN elsewhere), shuffled and deflated by ISA-L, about 4x less CPU
    than zlib for files 1-2 % larger; any netCDF/HDF5 reader reads them as usual. Nothing of
    the size of a whole variable is allocated.
    """
    from permaplug.demo import chunks

    days = time.days_in_month.to_numpy(float)[:, None, None]
    if to_grid is not None:
        days = days[:, :, 0]  # (nt, 1) against (nt, ncell)
    ds = xr.Dataset(
        coords={
            "number": ((), 0),
            "valid_time": ("valid_time", time.values.astype("datetime64[ns]"),
                           {"standard_name": "time", "long_name": "time"}),
            "latitude": ("latitude", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "longitude": ("longitude", lon, {"units": "degrees_east",
                                             "standard_name": "longitude"}),
            "expver": ("valid_time", np.array(["0001"] * time.size, dtype=object)),
        },
        attrs=_emulated_attrs("ERA5-Land monthly means (reanalysis-era5-land-monthly-means, "
                              "monthly_averaged_reanalysis) layout",
                              {"Conventions": "CF-1.7", "history": history}),
    )
    enc = {"valid_time": {"units": "seconds since 1970-01-01", "calendar": "proleptic_gregorian",
                          "dtype": "int64"}}
    chunk = (_months_per_chunk(time.size, lat.size * lon.size), lat.size, lon.size)
    variables = []
    for name, values in fields.items():
        attrs = {"units": ERA5_UNITS[name], "long_name": ERA5_LONG[name], "GRIB_shortName": name}
        if _quantized(name):  # rounded here (the attribute says so), not by the library
            attrs = {"least_significant_digit": np.int64(TEMPERATURE_DIGITS), **attrs}
        if callable(values):
            source = values
        else:
            source = functools.partial(chunks.time_rows,
                                       values if isinstance(values, tuple) else (values,))

        def rows(t0: int, t1: int, name: str = name, source: Callable = source) -> np.ndarray:
            v = _file_units(name, source(t0, t1), days[t0:t1])
            return v if to_grid is None else to_grid(v)

        variables.append(chunks.Variable(name, attrs | {"coordinates": "expver number"}, rows))
    variables.append(chunks.Variable(
        "lsm", {"units": "(0 - 1)", "long_name": "Land-sea mask", "coordinates": "number"},
        land.astype("float32"), dims=("latitude", "longitude")))
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=enc)
        chunks.write_deflated(tmp, variables, ("valid_time", "latitude", "longitude"), chunk,
                              time.size)
    return path


def _file_units(name: str, values: np.ndarray, days: np.ndarray) -> np.ndarray:
    """``values`` of ERA5-Land variable ``name`` (canonical units, (n, ...)) in the file's
    units, float32, temperatures rounded (:data:`TEMPERATURE_DIGITS`). Each conversion is
    computed at the input's precision and rounded straight into float32 (the numbers of
    converting, then ``astype``); ``days`` (n, 1[, 1]) the days of each month."""
    values = np.asarray(values)
    v = np.empty(values.shape, np.float32)
    if name in ("t2m", "skt") or name.startswith("stl"):
        np.add(values, 273.15, out=v)
    elif name == "sd":
        np.divide(values, 1000.0, out=v)  # mm -> m of water equivalent (monthly mean)
    elif name in ("tp", "sf"):
        np.divide(values / days, 1000.0, out=v)  # mm per month -> m per day
    elif name in ("strd", "ssrd", "slhf", "sshf"):
        np.multiply(values, 86400.0, out=v)  # W m-2 -> J m-2 per day (mean daily accumulation)
    else:
        v[...] = values
    if _quantized(name):
        quantize(v, TEMPERATURE_DIGITS)
    return v


def _months_per_chunk(nt: int, ncell: int, target: int = 2**20) -> int:
    """Whole years of float32 grids of ``ncell`` values per chunk, about ``target`` bytes (at
    least a year, at most ``nt``). On the 16,001-cell grid (a year per chunk) zlib needs a
    sixth less CPU than with the library's default chunks (half the series each), for the same
    file size; on small grids chunks of many years keep the compression as good as before."""
    years = max(1, round(target / (12 * ncell * 4)))
    return min(12 * years, nt)


def _quantized(name: str) -> bool:
    """True for the ERA5-Land variables written with :data:`TEMPERATURE_DIGITS`."""
    return name in ("t2m", "skt") or name.startswith("stl")


def _noleap_axis(time: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Mid-month times and bounds in days since 1850-01-01 on the 365_day calendar."""
    cum = np.concatenate([[0], np.cumsum([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])])
    start = (time.year.to_numpy() - 1850) * 365 + cum[time.month.to_numpy() - 1]
    end = (time.year.to_numpy() - 1850) * 365 + cum[time.month.to_numpy()]
    return (start + end) / 2.0, np.stack([start, end], axis=1).astype(float)


def write_cmip(folder: Path, var: str, experiment: str, time: pd.DatetimeIndex, lat: np.ndarray,
               lon: np.ndarray, values: np.ndarray, history: str) -> Path:
    """Write one CMIP5 file (DRS name) of ``var`` (nt, nlat, nlon) in CMIP units."""
    table, units, std, long = CMIP_META[var]
    span = f"{time[0].year:04d}{time[0].month:02d}-{time[-1].year:04d}{time[-1].month:02d}"
    path = folder / f"{var}_{table}_{MODEL}_{experiment}_r1i1p1_{span}.nc"
    mid, bnds = _noleap_axis(time)
    ds = xr.Dataset(
        {var: (("time", "lat", "lon"), values.astype("float32"),
               {"standard_name": std, "long_name": long, "units": units,
                "cell_methods": "time: mean"}),
         "time_bnds": (("time", "bnds"), bnds),
         "lat_bnds": (("lat", "bnds"), np.stack([lat - 90 / 142, lat + 90 / 142], axis=1)),
         "lon_bnds": (("lon", "bnds"), np.stack([lon - 1.25, lon + 1.25], axis=1))},
        coords={"time": ("time", mid, {"units": "days since 1850-01-01 00:00:00",
                                       "calendar": "365_day", "bounds": "time_bnds",
                                       "standard_name": "time", "axis": "T"}),
                "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude",
                                     "bounds": "lat_bnds", "axis": "Y"}),
                "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude",
                                     "bounds": "lon_bnds", "axis": "X"})},
        attrs=_emulated_attrs(f"{MODEL} {experiment} {var} layout", {
            "Conventions": "CF-1.4", "project_id": "CMIP5", "model_id": MODEL,
            "experiment_id": experiment, "frequency": "mon", "modeling_realm":
            "land" if table == "Lmon" else "atmos", "table_id": f"Table {table}",
            "parent_experiment_id": "historical" if experiment != "historical" else "piControl",
            "realization": 1, "initialization_method": 1, "physics_version": 1,
            "history": history}),
    )
    enc = {var: {"zlib": True, "complevel": 1}, "time": {"dtype": "float64"}}
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=enc)
    return path


def write_sftlf(folder: Path, lat: np.ndarray, lon: np.ndarray, percent: np.ndarray,
                history: str) -> Path:
    """Write the fixed land-area fraction ``sftlf`` (%) of the model grid."""
    path = folder / f"sftlf_fx_{MODEL}_historical_r0i0p0.nc"
    ds = xr.Dataset(
        {"sftlf": (("lat", "lon"), percent.astype("float32"),
                   {"standard_name": "land_area_fraction", "long_name": "Land Area Fraction",
                    "units": "%"})},
        coords={"lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
                "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"})},
        attrs=_emulated_attrs(f"{MODEL} fx sftlf layout", {
            "project_id": "CMIP5", "model_id": MODEL, "frequency": "fx", "history": history}),
    )
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4")
    return path


def write_lithology(path: Path, lat: np.ndarray, lon: np.ndarray, shares: np.ndarray,
                    resolution: float) -> Path:
    """Write map-unit polygons: each grid cell split into west-east strips, one per class,
    as wide as the class's share (shares below 0.5 % dropped and renormalised).

    ``lat``/``lon`` (n,) cell centres, ``shares`` (9, n) in the order of
    ``schema.LITHOLOGY_CLASSES``. EPSG:4326, field ``STATE_UNIT``.
    """
    import geopandas as gpd
    import shapely

    half = resolution / 2.0
    s = np.where(shares >= 0.005, shares, 0.0)
    s = s / s.sum(axis=0, keepdims=True)
    edges = np.cumsum(np.vstack([np.zeros(s.shape[1]), s]), axis=0)  # (10, n)
    x0 = lon - half
    units, boxes = [], []
    for k, cls in enumerate(schema.LITHOLOGY_CLASSES):
        keep = s[k] > 0
        boxes.append(shapely.box(x0[keep] + edges[k, keep] * resolution, lat[keep] - half,
                                 x0[keep] + edges[k + 1, keep] * resolution, lat[keep] + half))
        units += [UNIT_SYMBOLS[cls]] * int(keep.sum())
    gdf = gpd.GeoDataFrame({"STATE_UNIT": units, "SOURCE": "permaplug demo emulator"},
                           geometry=np.concatenate(boxes), crs="EPSG:4326")
    with atomic_path(path) as tmp:
        gdf.to_file(tmp, layer="lithology", driver="GPKG")
    return path


def write_openlandmap(folder: Path, prop: str, depths_cm: tuple[int, ...], values: np.ndarray,
                      lat: np.ndarray, lon: np.ndarray, valid: np.ndarray) -> list[Path]:
    """Write one GeoTIFF per depth of ``prop`` (bdod kg m-3 or soc g kg-1), as OpenLandMap
    stores it (uint8 in 10 kg m-3 / 5 g kg-1, nodata 255, EPSG:4326).

    ``values`` (ndepth, nlat, nlon) with ``lat`` descending; ``valid`` (nlat, nlon) bool.
    """
    import rasterio
    from affine import Affine

    res = float(abs(lat[1] - lat[0])) if lat.size > 1 else float(abs(lon[1] - lon[0]))
    transform = Affine(res, 0.0, lon[0] - res / 2, 0.0, -res, lat[0] + res / 2)  # north-up
    out = []
    for d, grid in zip(depths_cm, values):
        stored = np.clip(np.round(grid / OLM_SCALE[prop]), 0, 254).astype("uint8")
        stored[~valid] = 255
        path = folder / OLM_NAMES[prop].format(d=d)
        with atomic_path(path) as tmp, rasterio.open(
                tmp, "w", driver="GTiff", width=lon.size, height=lat.size, count=1, dtype="uint8",
                crs="EPSG:4326", transform=transform, nodata=255, compress="deflate") as dst:
            dst.write(stored, 1)
            dst.update_tags(SOURCE="permaplug demo emulator (emulated, OpenLandMap layout)")
        out.append(path)
    return out
