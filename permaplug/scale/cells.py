"""Gridded tables along ``cell``: dask chunking, chunk iteration, coarse grids onto cells.

A gridded table has dims ``(time, cell)`` with per-cell coordinates ``lat``, ``lon`` (degrees,
lon -180..180) and ``band`` (0..5). Climate models are much coarser than ERA5-Land (IPSL-CM5A-MR:
1.27 x 2.5 deg against 0.1 deg), so scenario fields are brought onto the table's cells by
nearest model cell (great-circle distance) before the per-cell bias correction, the usual first
step of quantile-mapping downscaling (the correction then imposes each cell's own climate).
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import xarray as xr

from permaplug.core.errors import DataError

DEFAULT_CELL_CHUNK = 1024
"""Cells per dask chunk: 1024 cells x 276 months x 8 bytes = 2.3 MB per variable."""
EARTH_RADIUS_KM = 6371.0


def check_cells(ds: xr.Dataset | xr.DataArray, what: str = "table") -> None:
    """DataError unless ``ds`` has a ``cell`` dim with ``lat`` and ``lon`` coordinates."""
    if "cell" not in ds.dims:
        raise DataError(f"{what}: no 'cell' dimension (dims: {', '.join(map(str, ds.dims))}); "
                        "build it with --spatial grid")
    for c in ("lat", "lon"):
        if c not in ds.coords or ds[c].dims != ("cell",):
            raise DataError(f"{what}: the 'cell' dimension has no {c!r} coordinate")


def chunk_cells(ds: xr.Dataset, cells_per_chunk: int = DEFAULT_CELL_CHUNK) -> xr.Dataset:
    """``ds`` as dask arrays chunked along ``cell`` only (whole series per chunk, as xsdba
    needs). Memory of any chunked computation is then bounded by the chunk size."""
    check_cells(ds)
    if cells_per_chunk < 1:
        raise DataError(f"cells per chunk must be at least 1, got {cells_per_chunk}")
    chunks = {d: -1 for d in ds.dims}
    chunks["cell"] = int(cells_per_chunk)
    return ds.chunk(chunks)


def cell_blocks(n_cells: int, cells_per_chunk: int = DEFAULT_CELL_CHUNK) -> Iterator[slice]:
    """Consecutive ``slice``s covering ``range(n_cells)``, ``cells_per_chunk`` long."""
    if cells_per_chunk < 1:
        raise DataError(f"cells per chunk must be at least 1, got {cells_per_chunk}")
    for start in range(0, n_cells, cells_per_chunk):
        yield slice(start, min(start + cells_per_chunk, n_cells))


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    la, lo = np.deg2rad(np.asarray(lat, float)), np.deg2rad(np.asarray(lon, float))
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def nearest_cells(src_lat: np.ndarray, src_lon: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                  block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Index into the source points of the nearest one to each target point, and the
    great-circle distance (km). Longitudes in any convention (-180..180 or 0..360)."""
    src = _unit_vectors(src_lat, src_lon)
    dst = _unit_vectors(lat, lon)
    if len(src) == 0:
        raise DataError("no source cell to map from")
    idx = np.empty(len(dst), np.int64)
    dot = np.empty(len(dst))
    for s in range(0, len(dst), block):  # [block, n_src] at a time: bounded memory
        d = dst[s : s + block] @ src.T
        idx[s : s + block] = d.argmax(axis=1)
        dot[s : s + block] = d.max(axis=1)
    dist = EARTH_RADIUS_KM * np.arccos(np.clip(dot, -1.0, 1.0))
    return idx, dist


def to_cells(coarse: xr.Dataset, cells: xr.Dataset | xr.DataArray,
             max_distance_km: float = 500.0, what: str = "scenario data",
             cells_per_chunk: int | None = None) -> xr.Dataset:
    """A coarse gridded dataset (its own ``cell`` dim with ``lat``/``lon``) on ``cells``' cells.

    Each target cell takes the series of the nearest coarse cell that has data at the first
    time step. DataError when a target cell lies farther than ``max_distance_km`` from every
    coarse cell. Lazy arrays stay lazy (an index selection). With ``cells_per_chunk`` the
    result is a dask dataset built block by block (one task per block of target cells, each
    reading the small coarse grid), so no task ever holds every target cell: memory stays
    bounded by the block size. The result carries ``cells``' cell coordinates (``cell``,
    ``lat``, ``lon``, ``band``) and ``attrs['mapped_to_cells']``.
    """
    check_cells(coarse, what)
    check_cells(cells, "table")
    first = next(iter(coarse.data_vars.values()))
    sample = first.isel({d: 0 for d in first.dims if d != "cell"})
    valid = np.asarray(sample.notnull().values, bool)
    if not valid.any():
        raise DataError(f"{what}: no coarse cell has data")
    src = np.flatnonzero(valid)
    idx, dist = nearest_cells(coarse["lat"].values[src], coarse["lon"].values[src],
                              cells["lat"].values, cells["lon"].values)
    if dist.max() > max_distance_km:
        far = int(dist.argmax())
        raise DataError(f"{what}: table cell at {float(cells['lat'][far]):.2f} N "
                        f"{float(cells['lon'][far]):.2f} E is {dist.max():.0f} km from the "
                        f"nearest model cell (limit {max_distance_km:g} km)")
    drop = [c for c in coarse.coords if "cell" in coarse[c].dims]
    coarse = coarse.drop_vars(drop)
    if cells_per_chunk is None:
        mapped = coarse.isel(cell=xr.DataArray(src[idx], dims="cell"))
    else:
        coarse = coarse.chunk({d: -1 for d in coarse.dims})  # the model grid is small
        mapped = xr.concat([coarse.isel(cell=xr.DataArray(src[idx][b], dims="cell"))
                            for b in cell_blocks(idx.size, cells_per_chunk)],
                           dim="cell", data_vars="all", coords="minimal", compat="override",
                           join="override")
    keep = {c: cells[c] for c in cells.coords if cells[c].dims == ("cell",)}
    mapped = mapped.assign_coords(keep)
    mapped.attrs = {**coarse.attrs, "mapped_to_cells": (
        f"nearest of {src.size} model cells to each of {idx.size} table cells "
        f"(median distance {np.median(dist):.0f} km, max {dist.max():.0f} km)")}
    return mapped
