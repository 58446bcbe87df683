"""Static features per grid cell (gridded mode) from the same files the band sources read.

* ``openlandmap`` (bulk density, organic carbon): the depth-weighted layer values of the raster
  pixel nearest to each cell centre (the OpenLandMap rasters are 250 m, finer than any cell;
  the demo's rasters share the demo grid);
* ``usgs-lithology``: class shares (percent) of ``SUBSAMPLES x SUBSAMPLES`` points spread evenly
  over each cell (point-in-polygon against the map-unit polygons; a point outside every polygon
  counts as ``unknown``), so shares come in steps of 100 / SUBSAMPLES**2 percent.

Other static plugins have no per-cell reader: :func:`static_at_cells` returns None and the
table gives each cell its band's values (``assemble_table``'s fallback).
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import DataError

SUBSAMPLES = 4
"""Lithology sample points per cell along each axis (16 points per cell)."""


def cell_resolution(lat: np.ndarray, lon: np.ndarray) -> tuple[float, float]:
    """Grid spacing (degrees lat, lon) of cell centres: the smallest non-zero step."""
    def step(v: np.ndarray) -> float:
        d = np.diff(np.unique(np.round(np.asarray(v, float), 6)))
        d = d[d > 1e-6]
        return float(d.min()) if d.size else 0.1
    return step(lat), step(lon)


def soil_at_cells(path: str, lat: np.ndarray, lon: np.ndarray, bdod_scale: float = 10.0,
                  soc_scale: float = 5.0, **_: Any) -> xr.Dataset:
    """``bdod_l1..4`` (kg m-3) and ``soc_l1..4`` (g kg-1) per cell, dims ``(cell,)``."""
    from pathlib import Path

    from permaplug.plugins.sources.openlandmap import DEPTHS_CM, layer_weights, read_property

    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"{folder}: OpenLandMap folder not found")
    w = xr.DataArray(layer_weights(), dims=("layer", "depth"), coords={"depth": list(DEPTHS_CM)})
    where = {"lat": xr.DataArray(np.asarray(lat, float), dims="cell"),
             "lon": xr.DataArray(np.asarray(lon, float), dims="cell")}
    out = {}
    for prop, scale in (("bdod", bdod_scale), ("soc", soc_scale)):
        with warnings.catch_warnings():  # rasterio's Affine '*' deprecation, once per file
            warnings.filterwarnings("ignore", message=".*matmul.*")
            stack = read_property(folder, prop, scale)
        stack = stack.sortby("lat").sortby("lon")
        at = stack.sel(where, method="nearest").load()
        layered = xr.dot(w, at, dim="depth").where(at.notnull().all("depth"))
        for i in range(schema.N_LAYERS):
            name = f"{prop}_l{i + 1}"
            out[name] = layered.isel(layer=i, drop=True).drop_vars(
                ["lat", "lon"], errors="ignore").assign_attrs(schema.cf_attrs(name))
    return xr.Dataset(out)


def lithology_at_cells(path: str, lat: np.ndarray, lon: np.ndarray,
                       unit_field: str = "STATE_UNIT", class_field: str | None = None,
                       unit_table: str | None = None, layer: str | None = None,
                       **_: Any) -> xr.Dataset:
    """``lith_<class>`` percent per cell, dims ``(cell,)`` (see the module docstring)."""
    from pathlib import Path

    import geopandas as gpd

    from permaplug.plugins.sources.usgs_lithology import (
        classify_units,
        load_unit_table,
        read_map,
    )

    gdf = read_map(Path(path), layer)
    if class_field:
        if class_field not in gdf.columns:
            raise DataError(f"{path}: no attribute field {class_field!r}")
        classes = gdf[class_field].astype(str).str.strip().str.lower()
    else:
        if unit_field not in gdf.columns:
            raise DataError(f"{path}: no attribute field {unit_field!r}; set option unit_field")
        classes = classify_units(gdf[unit_field], load_unit_table(unit_table))
    known = {c: i for i, c in enumerate(schema.LITHOLOGY_CLASSES)}
    code = np.array([known.get(c, known["unknown"]) for c in classes], np.int64)
    lat = np.asarray(lat, float)
    lon = np.asarray(lon, float)
    dlat, dlon = cell_resolution(lat, lon)
    off = (np.arange(SUBSAMPLES) + 0.5) / SUBSAMPLES - 0.5
    plat = (lat[:, None, None] + off[None, :, None] * dlat).repeat(SUBSAMPLES, axis=2)
    plon = (lon[:, None, None] + off[None, None, :] * dlon).repeat(SUBSAMPLES, axis=1)
    pts = gpd.GeoSeries(gpd.points_from_xy(plon.ravel(), plat.ravel()), crs="EPSG:4326")
    pts = pts.to_crs(gdf.crs)
    hit_pt, hit_poly = gdf.sindex.query(pts.values, predicate="within")
    point_class = np.full(pts.size, known["unknown"], np.int64)
    order = np.argsort(hit_pt, kind="stable")  # first polygon found wins for a shared edge
    first = np.unique(hit_pt[order], return_index=True)[1]
    point_class[hit_pt[order][first]] = code[hit_poly[order][first]]
    per_cell = point_class.reshape(lat.size, SUBSAMPLES * SUBSAMPLES)
    counts = np.stack([(per_cell == k).sum(axis=1) for k in range(len(schema.LITHOLOGY_CLASSES))],
                      axis=1)
    shares = 100.0 * counts / per_cell.shape[1]
    return xr.Dataset({f"lith_{c}": ("cell", shares[:, i], schema.cf_attrs(f"lith_{c}"))
                       for i, c in enumerate(schema.LITHOLOGY_CLASSES)})


READERS = {"openlandmap": soil_at_cells, "usgs-lithology": lithology_at_cells}


def static_at_cells(catalog: Any, entry_name: str, cells: xr.Dataset) -> xr.Dataset | None:
    """The static entry's features at ``cells``' cells (dims ``(cell,)`` with its coords), or
    None when the entry's plugin has no per-cell reader."""
    entry = catalog.entry(entry_name)
    reader = READERS.get(entry.plugin)
    if reader is None:
        return None
    opts = dict(entry.options)
    path = opts.pop("path", None)
    if path is None:
        raise DataError(f"{catalog.path}: entry {entry_name!r} has no 'path' option")
    opts.pop("data_label", None)
    opts.pop("region", None)
    ds = reader(path, cells["lat"].values, cells["lon"].values, **opts)
    return ds.assign_coords(cell=cells["cell"].values)
