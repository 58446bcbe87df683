"""Band aggregation: area-weighted (cos latitude) means over land cells inside the region.

Weights of a grid cell (lat, lon) for band b::

    w_b(lat, lon) = cos(lat) * inside_region(lat, lon) * [band_of_latitude(lat) == b] * land

where ``land`` is the land fraction (0..1, e.g. CMIP ``sftlf``/100 or ERA5 ``lsm``) when given,
and cells whose value is missing (NaN, e.g. ERA5-Land sea cells) drop out of both the numerator
and the denominator. A band with no valid cell is NaN. Works lazily on dask arrays.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.data.region import alaska_mask, load_region, wrap_lon

LAT_NAMES = ("latitude", "lat", "nav_lat", "y")
LON_NAMES = ("longitude", "lon", "nav_lon", "x")


def find_latlon(ds: xr.Dataset | xr.DataArray, what: str = "dataset") -> tuple[str, str]:
    """Names of the latitude and longitude coordinates (CF names first)."""
    lat = next((n for n in LAT_NAMES if n in ds.coords or n in ds.dims), None)
    lon = next((n for n in LON_NAMES if n in ds.coords or n in ds.dims), None)
    if lat is None or lon is None:
        raise DataError(f"{what}: no latitude/longitude coordinates (looked for "
                        f"{'/'.join(LAT_NAMES)} and {'/'.join(LON_NAMES)})")
    return lat, lon


def subset_region(ds: xr.Dataset | xr.DataArray, region: str | None = None,
                  what: str = "dataset"):
    """Only the rows/columns whose cell centres can fall in a band and in the region's bounds.

    A cheap index selection (lazy backends read only this part) before any band mean or cell
    stacking; results are unchanged because other cells have zero weight.
    """
    lat_name, lon_name = find_latlon(ds, what)
    if ds[lat_name].ndim != 1 or ds[lon_name].ndim != 1:
        return ds
    minx, _, maxx, _ = load_region(region).bounds
    lat = ds[lat_name].values
    lon = wrap_lon(ds[lon_name].values)
    rows = np.flatnonzero(schema.band_of_latitude(lat) >= 0)
    cols = np.flatnonzero((lon >= minx) & (lon <= maxx))
    return ds.isel({lat_name: rows, lon_name: cols})


def band_weights(lat: np.ndarray, lon: np.ndarray, land_fraction: np.ndarray | None = None,
                 region: str | None = None) -> np.ndarray:
    """Weights (band, lat, lon) of a regular grid (1-D lat, lon); see the module docstring."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    inside = alaska_mask(lat[:, None], lon[None, :], region)
    w = np.cos(np.deg2rad(lat))[:, None] * inside
    if land_fraction is not None:
        lf = np.asarray(land_fraction, dtype=float)
        w = w * np.where(np.isfinite(lf), lf, 0.0)
    band = schema.band_of_latitude(lat)
    return np.stack([w * (band == b)[:, None] for b in range(schema.N_BANDS)])


def band_mean(ds: xr.Dataset, land_fraction: xr.DataArray | None = None,
              region: str | None = None, what: str = "dataset") -> xr.Dataset:
    """Area-weighted band means: dims (..., lat, lon) -> (..., band), with band coordinates.

    Adds ``n_cells`` (band,): the number of grid cells with non-zero weight in each band.
    """
    lat_name, lon_name = find_latlon(ds, what)
    if ds[lat_name].ndim != 1 or ds[lon_name].ndim != 1:
        raise DataError(f"{what}: curvilinear grids (2-D {lat_name}) are not supported; "
                        "regrid to a regular lat/lon grid first")
    lf = None
    if land_fraction is not None:
        lf = land_fraction.transpose(lat_name, lon_name).values
    w = xr.DataArray(band_weights(ds[lat_name].values, ds[lon_name].values, lf, region),
                     dims=("band", lat_name, lon_name),
                     coords={lat_name: ds[lat_name], lon_name: ds[lon_name]})
    if float(w.sum()) == 0.0:
        raise DataError(f"{what}: no grid cell lies inside the region and the latitude bands")
    out = {}
    for name, da in ds.data_vars.items():
        if lat_name not in da.dims or lon_name not in da.dims:
            continue
        valid = da.notnull()
        num = xr.dot(da.fillna(0.0), w, dim=[lat_name, lon_name])
        den = xr.dot(valid.astype(float), w, dim=[lat_name, lon_name])
        out[name] = (num / den.where(den > 0)).assign_attrs(da.attrs)
    res = xr.Dataset(out)
    res = res.drop_vars([c for c in (lat_name, lon_name) if c in res.coords])
    res = res.assign_coords(schema.band_coords())
    res["n_cells"] = ("band", (w > 0).sum([lat_name, lon_name]).values,
                      {"long_name": "grid cells with non-zero weight in the band"})
    res.attrs = dict(ds.attrs)
    return res


def grid_cells(ds: xr.Dataset, land: xr.DataArray | None = None, region: str | None = None,
               what: str = "dataset") -> xr.Dataset:
    """Gridded mode: stack (lat, lon) into ``cell`` keeping land cells inside region and bands.

    ``land``: boolean (lat, lon) land mask; default = cells where the first variable is not
    missing at the first time step. Output coords per cell: ``lat``, ``lon`` (-180..180),
    ``band``; dask chunks are kept (only the cell selection is computed).
    """
    lat_name, lon_name = find_latlon(ds, what)
    lat = ds[lat_name].values
    lon = ds[lon_name].values
    keep = alaska_mask(lat[:, None], lon[None, :], region) & \
        (schema.band_of_latitude(lat) >= 0)[:, None]
    if land is None:
        first = next(iter(ds.data_vars.values()))
        sample = first.isel({d: 0 for d in first.dims if d not in (lat_name, lon_name)})
        land = sample.notnull()
    keep = keep & land.transpose(lat_name, lon_name).values.astype(bool)
    ii, jj = np.nonzero(keep)
    if ii.size == 0:
        raise DataError(f"{what}: no land cell inside the region and the latitude bands")
    sel = ds.isel({lat_name: xr.DataArray(ii, dims="cell"),
                   lon_name: xr.DataArray(jj, dims="cell")})
    sel = sel.drop_vars([lat_name, lon_name])
    cell_lat = lat[ii]
    return sel.assign_coords(
        cell=np.arange(ii.size), lat=("cell", cell_lat), lon=("cell", wrap_lon(lon[jj])),
        band=("cell", schema.band_of_latitude(cell_lat)),
    )


def cell_resolution(lat: np.ndarray, lon: np.ndarray) -> tuple[float, float]:
    """Grid spacing (degrees lat, lon) of cell centres ``[N]``: the smallest non-zero step
    between distinct values (0.1 along an axis with a single value)."""
    def step(v: np.ndarray) -> float:
        d = np.diff(np.unique(np.round(np.asarray(v, float), 6)))
        d = d[d > 1e-6]
        return float(d.min()) if d.size else 0.1
    return step(lat), step(lon)


def canonical_order(ds: xr.Dataset, names: Sequence[str]) -> xr.Dataset:
    """Keep the canonical variables in schema order first, then any others."""
    first = [n for n in names if n in ds.data_vars]
    rest = [n for n in ds.data_vars if n not in first]
    return ds[first + rest]
