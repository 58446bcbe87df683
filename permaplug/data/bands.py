"""Band aggregation: area-weighted (cos latitude) means over land cells inside the region.

Weights of a grid cell (lat, lon) for band b::

    w_b(lat, lon) = cos(lat) * inside_region(lat, lon) * [band_of_latitude(lat) == b] * land

where ``land`` is the land fraction (0..1, e.g. CMIP ``sftlf``/100 or ERA5 ``lsm``) when given,
and cells whose value is missing (NaN, e.g. ERA5-Land sea cells) drop out of both the numerator
and the denominator. Works lazily on dask arrays.

A band without any grid-cell centre (a coarse model grid, e.g. 2.8 deg, can skip a 2 deg band)
follows ``empty``: ``"missing"`` leaves it NaN (reanalysis sources; the table's band checks
report it), ``"error"`` refuses it naming the band, ``"nearest"`` (the ``cmip`` source's
default) uses the **nearest grid row**: the cells of the latitude row whose centre is closest
to the band's centre, weighted by cos(lat) x land fraction, with longitudes inside the region
at the band's central latitude -- only when that row's cells reach the band (the row lies
within half a grid spacing of the band's edge; otherwise the grid does not cover the band: an
error). Filled bands are listed in
``attrs["bands_from_nearest_row"]`` and in a warning.
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
    rows = np.union1d(rows, [r for r, _ in nearest_rows(lat).values()]).astype(int)
    cols = np.flatnonzero((lon >= minx) & (lon <= maxx))
    return ds.isel({lat_name: rows, lon_name: cols})


def nearest_rows(lat: np.ndarray) -> dict[int, tuple[int, float]]:
    """For each band without a row centre in ``lat`` (1-D, degrees N): ``(row index, distance
    in degrees from the row to the band's nearer edge)`` of the row nearest the band's centre."""
    lat = np.asarray(lat, dtype=float)
    if lat.size == 0:
        return {}
    have = set(schema.band_of_latitude(lat).tolist())
    edges = np.asarray(schema.BAND_EDGES)
    out = {}
    for b in range(schema.N_BANDS):
        if b in have:
            continue
        centre = (edges[b] + edges[b + 1]) / 2
        r = int(np.argmin(np.abs(lat - centre)))
        out[b] = (r, float(min(abs(lat[r] - edges[b]), abs(lat[r] - edges[b + 1]))))
    return out


def _spacing(lat: np.ndarray) -> float:
    steps = np.diff(np.unique(np.round(np.asarray(lat, float), 6)))
    return float(steps.max()) if steps.size else 0.0


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
              region: str | None = None, what: str = "dataset",
              empty: str = "missing") -> xr.Dataset:
    """Area-weighted band means: dims (..., lat, lon) -> (..., band), with band coordinates.

    Adds ``n_cells`` (band,): the number of grid cells with non-zero weight in each band.
    ``empty``: what a band without a grid-cell centre gets (module docstring).
    """
    lat_name, lon_name = find_latlon(ds, what)
    if ds[lat_name].ndim != 1 or ds[lon_name].ndim != 1:
        raise DataError(f"{what}: curvilinear grids (2-D {lat_name}) are not supported; "
                        "regrid to a regular lat/lon grid first")
    lf = None
    if land_fraction is not None:
        lf = land_fraction.transpose(lat_name, lon_name).values
    weights = band_weights(ds[lat_name].values, ds[lon_name].values, lf, region)
    filled = _empty_bands(weights, ds[lat_name].values, ds[lon_name].values, lf, region,
                          empty, what)
    w = xr.DataArray(weights, dims=("band", lat_name, lon_name),
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
    if filled:
        res.attrs["bands_from_nearest_row"] = "; ".join(filled)
    return res


def _empty_bands(weights: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                 land_fraction: np.ndarray | None, region: str | None, empty: str,
                 what: str) -> list[str]:
    """Apply the ``empty`` rule to bands whose weights are all zero (in place); return the
    descriptions of the bands filled from their nearest row."""
    if empty not in ("missing", "nearest", "error"):
        raise DataError(f"{what}: empty_bands={empty!r}; use 'nearest', 'error' or 'missing'")
    edges = np.asarray(schema.BAND_EDGES)
    spacing = _spacing(lat)
    near = nearest_rows(lat)
    filled = []
    for b in range(schema.N_BANDS):
        if weights[b].sum() > 0 or empty == "missing":
            continue
        name = f"band {b} ({edges[b]:.2f}-{edges[b + 1]:.2f} N)"
        if empty == "error":
            raise DataError(f"{what}: {name} has no grid cell (grid spacing {spacing:.2f} deg "
                            "in latitude); use a finer grid or empty_bands='nearest'")
        if b not in near:  # rows exist but none is land inside the region
            raise DataError(f"{what}: {name} has no land cell inside the region")
        r, dist = near[b]
        if dist > spacing / 2:
            raise DataError(f"{what}: {name} has no grid cell, and the nearest grid row "
                            f"({lat[r]:.2f} N) is {dist:.2f} deg away, more than half the grid "
                            f"spacing ({spacing:.2f} deg): the grid does not cover this band")
        centre = (edges[b] + edges[b + 1]) / 2
        inside = alaska_mask(np.full(lon.size, centre), np.asarray(lon, float), region)
        row = np.cos(np.deg2rad(lat[r])) * inside.astype(float)
        if land_fraction is not None:
            lf = np.asarray(land_fraction, dtype=float)[r]
            row = row * np.where(np.isfinite(lf), lf, 0.0)
        if row.sum() == 0:
            raise DataError(f"{what}: {name} has no grid cell, and the nearest grid row "
                            f"({lat[r]:.2f} N) has no land cell inside the region")
        weights[b, r, :] = row
        filled.append(f"{name} <- nearest grid row {lat[r]:.2f} N")
    if filled:
        import warnings

        warnings.warn(f"{what}: no grid cell in {'; '.join(filled)} (nearest-row rule, "
                      "empty_bands='nearest'; 'error' refuses)", stacklevel=3)
    return filled


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
