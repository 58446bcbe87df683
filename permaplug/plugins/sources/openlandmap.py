"""``openlandmap``: soil bulk density and organic carbon per band and ERA5-Land layer.

FILE CONVENTIONS READ
=====================
GeoTIFFs of the OpenLandMap soil layers (Hengl et al., https://doi.org/10.5281/zenodo.2525665
bulk density, https://doi.org/10.5281/zenodo.2525553 organic carbon; Earth Engine
``OpenLandMap/SOL/SOL_BULKDEN-FINEEARTH_USDA-4A1H_M/v02`` and
``OpenLandMap/SOL/SOL_ORGANIC-CARBON_USDA-6A1C_M/v02``), in a folder (option ``path``):

* one single-band file per property and depth, named as distributed on Zenodo, e.g.
  ``sol_bulkdens.fineearth_usda.4a1h_m_250m_b0..0cm_1950..2017_v0.2.tif`` and
  ``sol_organic.carbon_usda.6a1c_m_250m_b30..30cm_1950..2017_v0.2.tif``: the file is found by
  the property key (``bulkdens`` / ``organic.carbon``) and the depth tag ``b<d>..<d>cm``;
* or one multi-band Earth Engine export per property, the file name containing ``BULKDEN`` or
  ``ORGANIC-CARBON`` (any case), with bands named (band descriptions) ``b0 b10 b30 b60 b100
  b200``.
* Depths: 0, 10, 30, 60, 100, 200 cm (values AT those depths).
* Stored scaling (as OpenLandMap stores it): bulk density in 10 kg m-3 (value 130 = 1300 kg m-3),
  organic carbon in 5 g kg-1 (value 12 = 60 g kg-1); integers, nodata from the file (255 in
  the originals). Options ``bdod_scale`` (10) and ``soc_scale`` (5) change the factors.
* CRS EPSG:4326 (as distributed); other CRSs are reprojected to EPSG:4326 (rioxarray).

DEPTH WEIGHTING
===============
Each pixel's profile is linear between the six depths and constant below 200 cm; a layer's
value is the mean of that profile over the layer (ERA5-Land layers 0-7, 7-28, 28-100,
100-289 cm), i.e. a depth-weighted average. Weights depend only on depths
(:func:`layer_weights`, rows sum to 1).

OUTPUT
======
dims ``(band,)``: ``bdod_l1..4`` (kg m-3), ``soc_l1..4`` (g kg-1); each band the
cos(latitude)-weighted mean of valid pixels inside the band and the mainland-Alaska polygon.
Per grid cell (``open_cells``, gridded mode): the depth-weighted layer values of the pixel
nearest to each cell centre (the rasters are 250 m, finer than any cell).
attrs: data label (default ``"OpenLandMap (real)"``), provenance.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.core.source import Source
from permaplug.core.variables import Variable
from permaplug.data.bands import band_mean

DEPTHS_CM: tuple[int, ...] = (0, 10, 30, 60, 100, 200)
PROPERTIES: dict[str, dict[str, Any]] = {
    "bdod": {"key": "bulkdens", "ee_key": "bulkden", "scale": 10.0, "units": "kg m-3"},
    "soc": {"key": "organic.carbon", "ee_key": "organic-carbon", "scale": 5.0, "units": "g kg-1"},
}
DEFAULT_LABEL = "OpenLandMap (real)"
DECLARED: dict[str, Variable] = {
    **{f"bdod_l{i}": Variable(f"bdod_l{i}", "kg m-3", "soil_bulk_density",
                              f"bulk density, layer {i}", kind="static")
       for i in range(1, schema.N_LAYERS + 1)},
    **{f"soc_l{i}": Variable(f"soc_l{i}", "g kg-1", "", f"soil organic carbon content, layer {i}",
                             kind="static")
       for i in range(1, schema.N_LAYERS + 1)},
}
"""``bdod_l1..4`` and ``soc_l1..4`` on the four ERA5-Land layers."""


def layer_weights(depths_cm: tuple[int, ...] = DEPTHS_CM,
                  layers_m: tuple[tuple[float, float], ...] = schema.LAYERS) -> np.ndarray:
    """Weights (n_layers, n_depths): layer mean of the piecewise-linear profile through depths.

    Below the deepest depth the profile is constant. Each row sums to 1.
    """
    z = np.asarray(depths_cm, dtype=float)
    w = np.zeros((len(layers_m), z.size))
    fine = 2000
    for i, (top, bottom) in enumerate(layers_m):
        grid = np.linspace(top * 100.0, bottom * 100.0, fine + 1)
        mid = (grid[:-1] + grid[1:]) / 2
        for j in range(z.size):  # hat function of depth j, evaluated at the midpoints
            e = np.zeros(z.size)
            e[j] = 1.0
            w[i, j] = np.interp(mid, z, e).mean()
    return w / w.sum(axis=1, keepdims=True)


def _open_tif(path: Path) -> xr.DataArray:
    import rioxarray  # noqa: F401 - registers the .rio accessor

    try:
        da = xr.open_dataarray(path, engine="rasterio", mask_and_scale=True)
    except Exception as exc:
        raise DataError(f"{path}: cannot read GeoTIFF ({type(exc).__name__}: {exc})") from exc
    crs = da.rio.crs
    if crs is None:
        raise DataError(f"{path}: GeoTIFF without CRS")
    if crs.to_epsg() != 4326:
        da = da.rio.reproject("EPSG:4326")
    return da


def _find_depth_files(folder: Path, key: str) -> dict[int, Path] | None:
    found = {}
    for d in DEPTHS_CM:
        pat = re.compile(rf".*{re.escape(key)}.*_b{d}\.\.{d}cm.*\.tif$", re.IGNORECASE)
        hits = sorted(p for p in folder.iterdir() if pat.match(p.name))
        if len(hits) > 1:
            raise DataError(f"{folder}: several files for {key} at {d} cm: "
                            f"{', '.join(h.name for h in hits)}")
        if hits:
            found[d] = hits[0]
    if not found:
        return None
    missing = [d for d in DEPTHS_CM if d not in found]
    if missing:
        raise DataError(f"{folder}: {key} GeoTIFF missing for depth(s) {missing} cm")
    return found


def read_property(folder: Path, prop: str, scale: float) -> xr.DataArray:
    """One property as (depth, lat, lon) in physical units (stored value x scale)."""
    info = PROPERTIES[prop]
    per_depth = _find_depth_files(folder, info["key"])
    if per_depth is not None:
        arrays = []
        for d in DEPTHS_CM:
            da = _open_tif(per_depth[d])
            arrays.append(da.isel(band=0, drop=True) if "band" in da.dims else da)
        stack = xr.concat(arrays, dim="depth", join="exact")
        files = [str(per_depth[d]) for d in DEPTHS_CM]
    else:
        multi = sorted(p for p in folder.glob("*.tif") if info["ee_key"] in p.name.lower())
        if not multi:
            raise DataError(f"{folder}: no OpenLandMap GeoTIFF for {prop} (expected files "
                            f"with '{info['key']}' and b<d>..<d>cm, or an Earth Engine "
                            f"export named like '*{info['ee_key'].upper()}*.tif')")
        da = _open_tif(multi[0])
        names = list(da.attrs.get("long_name", ())) if isinstance(
            da.attrs.get("long_name"), (tuple, list)) else []
        want = [f"b{d}" for d in DEPTHS_CM]
        if names and names != want:
            try:
                order = [names.index(w) for w in want]
            except ValueError:
                raise DataError(f"{multi[0]}: bands {names}; expected {want}") from None
            da = da.isel(band=order)
        if da.sizes.get("band") != len(DEPTHS_CM):
            raise DataError(f"{multi[0]}: {da.sizes.get('band')} bands; expected "
                            f"{len(DEPTHS_CM)} (b0 b10 b30 b60 b100 b200)")
        stack = da.rename(band="depth")
        files = [str(multi[0])]
    stack = stack.assign_coords(depth=list(DEPTHS_CM)) * scale
    stack = stack.rename({"y": "lat", "x": "lon"}).drop_vars("spatial_ref", errors="ignore")
    stack.attrs = {"units": info["units"], "files": ", ".join(files)}
    return stack


def soil_properties(path: str | Path, bdod_scale: float = 10.0, soc_scale: float = 5.0,
                    region: str | None = None, data_label: str = DEFAULT_LABEL) -> xr.Dataset:
    """Per-band ``bdod_l1..4`` (kg m-3) and ``soc_l1..4`` (g kg-1); see the module docstring."""
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"{folder}: OpenLandMap folder not found")
    w = xr.DataArray(layer_weights(), dims=("layer", "depth"),
                     coords={"depth": list(DEPTHS_CM)})
    fields = {}
    files = []
    for prop, scale in (("bdod", bdod_scale), ("soc", soc_scale)):
        stack = read_property(folder, prop, scale)
        files.append(stack.attrs["files"])
        # a pixel with any missing depth is missing (no silent renormalisation)
        layered = xr.dot(w, stack, dim="depth").where(stack.notnull().all("depth"))
        for i in range(schema.N_LAYERS):
            fields[f"{prop}_l{i + 1}"] = layered.isel(layer=i, drop=True).assign_attrs(
                DECLARED[f"{prop}_l{i + 1}"].cf_attrs())
    grid = xr.Dataset(fields)
    ds = band_mean(grid, region=region, what=f"openlandmap {folder}")
    ds = ds.rename(n_cells="n_pixels")
    ds.attrs = {schema.DATA_LABEL_ATTR: data_label,
                "provenance": f"openlandmap: {'; '.join(files)}; depth-weighted onto ERA5-Land "
                              "layers; cos(lat)-weighted band means inside the region polygon"}
    return ds


def soil_at_cells(path: str | Path, lat: np.ndarray, lon: np.ndarray, bdod_scale: float = 10.0,
                  soc_scale: float = 5.0, **_: Any) -> xr.Dataset:
    """``bdod_l1..4`` (kg m-3) and ``soc_l1..4`` (g kg-1) at ``N`` cell centres ``lat``,
    ``lon`` (degrees): the pixel nearest to each centre, depth-weighted; dims ``(cell,)``."""
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
                ["lat", "lon"], errors="ignore").assign_attrs(DECLARED[name].cf_attrs())
    return xr.Dataset(out)


class OpenLandMapSource(Source):
    """Bulk density and organic carbon on the four ERA5-Land layers, per band.

    Options: ``path`` (folder of GeoTIFFs), ``bdod_scale``, ``soc_scale``, ``region``,
    ``data_label``.
    """

    name: ClassVar[str] = "openlandmap"
    role: ClassVar[str] = "static"
    description: ClassVar[str] = "OpenLandMap bulk density and organic carbon (GeoTIFF) per band"
    variables: ClassVar[tuple[Variable, ...]] = tuple(DECLARED.values())

    def open(self) -> xr.Dataset:
        opts = dict(self.options)
        path = opts.pop("path", None)
        if path is None:
            raise DataError("openlandmap: option 'path' (folder of GeoTIFFs) is required")
        try:
            return soil_properties(path, **opts)
        except TypeError as exc:
            raise DataError(f"openlandmap: bad option ({exc})") from exc

    def open_cells(self, lat: np.ndarray, lon: np.ndarray) -> xr.Dataset:
        """The layer values of the pixel nearest to each cell centre (see :func:`soil_at_cells`)."""
        opts = dict(self.options)
        path = opts.pop("path", None)
        if path is None:
            raise DataError("openlandmap: option 'path' (folder of GeoTIFFs) is required")
        ds = soil_at_cells(path, lat, lon, **opts)
        ds.attrs = {schema.DATA_LABEL_ATTR: opts.get("data_label", DEFAULT_LABEL),
                    "provenance": f"openlandmap: {path}; depth-weighted onto ERA5-Land layers; "
                                  "pixel nearest to each cell centre"}
        return ds
