"""The mainland-Alaska region polygon and a vectorised point-in-polygon mask.

The polygon ships as ``permaplug/resources/region/alaska_mainland.geojson`` (Natural Earth
1:110m, public domain, clipped to lon -168..-141; see PROVENANCE.md next to it).
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import shapely

from permaplug.core.errors import DataError

REGION_FILE = "alaska_mainland.geojson"


def region_path() -> Path:
    """Path of the bundled mainland-Alaska GeoJSON."""
    return Path(str(resources.files("permaplug") / "resources" / "region" / REGION_FILE))


@lru_cache(maxsize=8)
def load_region(path: str | None = None) -> shapely.Geometry:
    """The region polygon (lon -180..180, lat degrees N) from a GeoJSON file (default: Alaska)."""
    p = Path(path) if path else region_path()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{p}: cannot read region GeoJSON ({exc})") from exc
    feats = data.get("features", [data]) if isinstance(data, dict) else []
    geoms = [shapely.geometry.shape(f.get("geometry", f)) for f in feats]
    if not geoms:
        raise DataError(f"{p}: no geometry in region GeoJSON")
    geom = shapely.union_all(geoms)
    shapely.prepare(geom)
    return geom


def wrap_lon(lon: np.ndarray) -> np.ndarray:
    """Longitudes mapped to -180..180 (0..360 inputs such as CMIP grids are accepted)."""
    lon = np.asarray(lon, dtype=float)
    return ((lon + 180.0) % 360.0) - 180.0


def alaska_mask(lat: np.ndarray, lon: np.ndarray, region: str | Path | None = None) -> np.ndarray:
    """Boolean mask, True where (lat, lon) lies inside the region polygon (boundary included).

    ``lat`` and ``lon`` broadcast against each other (e.g. ``lat[:, None]`` and ``lon[None, :]``
    give a 2-D grid mask); longitudes may be -180..180 or 0..360.
    """
    lat_b, lon_b = np.broadcast_arrays(np.asarray(lat, dtype=float), wrap_lon(lon))
    geom = load_region(str(region) if region else None)
    out = shapely.intersects_xy(geom, lon_b.ravel(), lat_b.ravel())
    return np.asarray(out, dtype=bool).reshape(lat_b.shape)
