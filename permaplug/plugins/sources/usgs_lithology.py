"""``usgs-lithology``: per-band lithology shares from the Geologic Map of Alaska (USGS SIM 3340).

FILE CONVENTIONS READ
=====================
* Vector data of map-unit polygons: a GeoPackage (``*.gpkg``, option ``layer`` names the layer
  when there are several) or an ESRI shapefile (``*.shp`` with its ``.dbf/.shx/.prj``), as
  distributed with Wilson et al. (2015), *Geologic Map of Alaska*, USGS SIM 3340,
  https://doi.org/10.3133/sim3340. Any CRS with a ``.prj``/SRS definition (the release uses an
  Alaska Albers projection); polygons are reprojected to EPSG:3338 (Alaska Albers equal area).
* Attribute field holding the map unit symbol: option ``unit_field`` (default ``STATE_UNIT``,
  e.g. ``Qs``, ``Kgr``, ``Tv``; check your copy's attribute table -- a missing field is an
  error listing the fields present). Alternatively ``class_field`` names a field that already
  holds one of the nine class names (then no unit table is used).
* Map unit -> class table: a CSV with columns ``pattern,class[,note]``; each ``pattern`` is a
  regular expression matched against the whole unit symbol, first match wins. The package's
  table (``permaplug/resources/lithology/unit_classes.csv``) is a HEURISTIC on the map's symbol
  convention (age prefix + lithology suffix; Q = Quaternary surficial deposits, ...); for exact
  shares pass ``unit_table`` with one row per unit (literal symbols are valid patterns),
  written from the map's Description of Map Units.
* Classes (``schema.LITHOLOGY_CLASSES``): water, unconsolidated, glacier, volcanic, melange,
  plutonic, sedimentary, metamorphic, unknown.

OUTPUT
======
dims ``(band,)``: ``lith_<class>`` in percent of the band's area inside the mainland-Alaska
polygon (equal-area, EPSG:3338); area not covered by any map polygon counts as ``unknown``,
so the nine shares sum to 100. attrs: data label (default ``"USGS SIM 3340 (real)"``),
provenance (file, layer, field, table).
Per grid cell (``open_cells``, gridded mode): the class shares of ``SUBSAMPLES x SUBSAMPLES``
points spread evenly over each cell (point-in-polygon; a point outside every polygon counts as
``unknown``), so shares come in steps of 100 / SUBSAMPLES**2 percent.
"""
from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import shapely
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.core.source import Source
from permaplug.core.variables import Variable
from permaplug.data.bands import cell_resolution
from permaplug.data.region import load_region

EQUAL_AREA_CRS = "EPSG:3338"
DEFAULT_LABEL = "USGS SIM 3340 (real)"
SUBSAMPLES = 4
"""Sample points per grid cell along each axis for per-cell shares (16 points per cell)."""


def default_unit_table() -> Path:
    """The package's heuristic unit -> class table."""
    return Path(str(resources.files("permaplug") / "resources" / "lithology" / "unit_classes.csv"))


def load_unit_table(path: str | Path | None = None) -> list[tuple[re.Pattern[str], str]]:
    """(compiled pattern, class) rules from a ``pattern,class`` CSV."""
    p = Path(path) if path else default_unit_table()
    try:
        table = pd.read_csv(p, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{p}: cannot read unit table ({exc})") from exc
    if not {"pattern", "class"} <= set(table.columns):
        raise DataError(f"{p}: unit table needs columns 'pattern' and 'class'")
    rules = []
    for i, row in table.iterrows():
        if row["class"] not in schema.LITHOLOGY_CLASSES:
            raise DataError(f"{p}: row {i + 2}: class {row['class']!r} is not one of "
                            f"{', '.join(schema.LITHOLOGY_CLASSES)}")
        try:
            rules.append((re.compile(row["pattern"]), row["class"]))
        except re.error as exc:
            raise DataError(f"{p}: row {i + 2}: bad pattern {row['pattern']!r} ({exc})") from exc
    return rules


def classify_units(units: pd.Series, rules: list[tuple[re.Pattern[str], str]]) -> pd.Series:
    """Class of each unit symbol (first matching rule; 'unknown' when none matches)."""
    cache: dict[str, str] = {}

    def one(u: Any) -> str:
        key = "" if u is None or (isinstance(u, float) and np.isnan(u)) else str(u).strip()
        if key not in cache:
            cache[key] = next((c for rx, c in rules if rx.fullmatch(key)), "unknown")
        return cache[key]

    return units.map(one)


def band_polygons(region: str | None = None) -> list[shapely.Geometry]:
    """Region polygon cut into the six latitude bands (lon/lat, densified to 0.05 deg)."""
    geom = load_region(region)
    edges = schema.BAND_EDGES
    out = []
    for b in range(schema.N_BANDS):
        strip = shapely.box(-180.0, edges[b], 180.0, edges[b + 1])
        out.append(shapely.segmentize(shapely.intersection(geom, strip), 0.05))
    return out


def read_map(path: Path, layer: str | None = None):
    """Read the polygons (geopandas GeoDataFrame) of a GeoPackage or shapefile."""
    import geopandas as gpd

    if not path.exists():
        raise DataError(f"{path}: lithology map not found")
    try:
        gdf = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
    except Exception as exc:
        raise DataError(f"{path}: cannot read vector data ({type(exc).__name__}: {exc})") from exc
    if gdf.crs is None:
        raise DataError(f"{path}: no coordinate reference system (missing .prj / SRS)")
    return gdf


def lithology_shares(path: str | Path, unit_field: str = "STATE_UNIT",
                     class_field: str | None = None, unit_table: str | Path | None = None,
                     layer: str | None = None, region: str | None = None,
                     data_label: str = DEFAULT_LABEL) -> xr.Dataset:
    """Per-band area percentages of the nine lithology classes; see the module docstring."""
    import geopandas as gpd

    path = Path(path)
    gdf = read_map(path, layer)
    if class_field:
        if class_field not in gdf.columns:
            raise DataError(f"{path}: no attribute field {class_field!r} (have "
                            f"{', '.join(c for c in gdf.columns if c != 'geometry')})")
        classes = gdf[class_field].astype(str).str.strip().str.lower()
        bad = sorted(set(classes) - set(schema.LITHOLOGY_CLASSES))
        if bad:
            raise DataError(f"{path}: field {class_field!r} holds non-class values {bad[:5]}")
        how = f"classes from field {class_field!r}"
    else:
        if unit_field not in gdf.columns:
            raise DataError(f"{path}: no attribute field {unit_field!r} (have "
                            f"{', '.join(c for c in gdf.columns if c != 'geometry')}); "
                            "set option unit_field")
        classes = classify_units(gdf[unit_field], load_unit_table(unit_table))
        how = (f"units from field {unit_field!r} classified by "
               f"{unit_table or 'the package heuristic table'}")
    gdf = gdf.assign(lith_class=classes.values)
    if gdf.crs.is_geographic:  # straight lon/lat edges must follow parallels once projected
        gdf["geometry"] = shapely.segmentize(gdf.geometry.values, 0.05)
    gdf = gdf.to_crs(EQUAL_AREA_CRS)
    gdf["geometry"] = shapely.make_valid(gdf.geometry.values)
    bands = gpd.GeoSeries(band_polygons(region), crs="EPSG:4326").to_crs(EQUAL_AREA_CRS)
    shares = np.zeros((schema.N_BANDS, len(schema.LITHOLOGY_CLASSES)))
    sindex = gdf.sindex
    for b, band_geom in enumerate(bands):
        total = band_geom.area
        if total <= 0:
            continue
        idx = sindex.query(band_geom, predicate="intersects")
        covered = 0.0
        if idx.size:
            part = gdf.iloc[idx]
            areas = shapely.area(shapely.intersection(part.geometry.values, band_geom))
            by_class = pd.Series(areas).groupby(part["lith_class"].values).sum()
            for c, a in by_class.items():
                shares[b, schema.LITHOLOGY_CLASSES.index(c)] += a
            covered = float(areas.sum())
        shares[b, schema.LITHOLOGY_CLASSES.index("unknown")] += max(total - covered, 0.0)
        shares[b] *= 100.0 / total
    data = {f"lith_{c}": ("band", shares[:, i], DECLARED[f"lith_{c}"].cf_attrs())
            for i, c in enumerate(schema.LITHOLOGY_CLASSES)}
    ds = xr.Dataset(data, coords=schema.band_coords())
    ds.attrs = {schema.DATA_LABEL_ATTR: data_label,
                "provenance": f"usgs-lithology: {path}{f' layer {layer}' if layer else ''}; "
                              f"{how}; area shares in {EQUAL_AREA_CRS} within the region polygon"}
    return ds


def lithology_at_cells(path: str | Path, lat: np.ndarray, lon: np.ndarray,
                       unit_field: str = "STATE_UNIT", class_field: str | None = None,
                       unit_table: str | Path | None = None, layer: str | None = None,
                       **_: Any) -> xr.Dataset:
    """``lith_<class>`` percent at ``N`` cells centred on ``lat``, ``lon`` (degrees), dims
    ``(cell,)``: shares of ``SUBSAMPLES**2`` points per cell (see the module docstring)."""
    import geopandas as gpd

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
    return xr.Dataset({f"lith_{c}": ("cell", shares[:, i], DECLARED[f"lith_{c}"].cf_attrs())
                       for i, c in enumerate(schema.LITHOLOGY_CLASSES)})
DECLARED: dict[str, Variable] = {
    f"lith_{c}": Variable(f"lith_{c}", "percent", "", f"area share of {c} lithology",
                          kind="static")
    for c in schema.LITHOLOGY_CLASSES
}
"""``lith_<class>``: area share (percent) of each of the nine classes."""


class USGSLithologySource(Source):
    """Per-band lithology class shares (percent) from USGS SIM 3340 polygons.

    Options: ``path`` (GeoPackage or shapefile), ``unit_field`` (default STATE_UNIT),
    ``class_field``, ``unit_table`` (CSV), ``layer``, ``region``, ``data_label``.
    """

    name: ClassVar[str] = "usgs-lithology"
    role: ClassVar[str] = "static"
    description: ClassVar[str] = "Geologic Map of Alaska (USGS SIM 3340): lithology shares per band"
    variables: ClassVar[tuple[Variable, ...]] = tuple(DECLARED.values())

    def open(self) -> xr.Dataset:
        opts = dict(self.options)
        path = opts.pop("path", None)
        if path is None:
            raise DataError("usgs-lithology: option 'path' (GeoPackage or shapefile) is required")
        try:
            return lithology_shares(path, **opts)
        except TypeError as exc:
            raise DataError(f"usgs-lithology: bad option ({exc})") from exc

    def open_cells(self, lat: np.ndarray, lon: np.ndarray) -> xr.Dataset:
        """Class shares of points spread over each cell (see :func:`lithology_at_cells`)."""
        opts = dict(self.options)
        path = opts.pop("path", None)
        if path is None:
            raise DataError("usgs-lithology: option 'path' (GeoPackage or shapefile) is required")
        ds = lithology_at_cells(path, lat, lon, **opts)
        ds.attrs = {schema.DATA_LABEL_ATTR: opts.get("data_label", DEFAULT_LABEL),
                    "provenance": f"usgs-lithology: {path}; class shares of "
                                  f"{SUBSAMPLES * SUBSAMPLES} points per grid cell"}
        return ds
