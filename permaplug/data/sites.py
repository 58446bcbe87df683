"""Site tables (``--spatial sites``): observed soil temperature at sites + each site's forcing.

A site catalog has an entry with ``role: observations`` (a station source, dims
``(time, site)`` with ``stl1..stl4``, coordinates ``name``, ``lat``, ``lon``) and a
``reanalysis`` entry giving point forcing (dims ``(time, point|site)`` with ``lat``/``lon``
coordinates, e.g. the ``climate-reanalyzer`` source with ``spatial: points``). Each site takes
the forcing of the nearest point, which must lie within ``max_distance_km`` (catalog metadata
``max_forcing_distance_km``, default 50 km).

:func:`assemble_sites` returns dims ``(time, site)``: the targets as observed (NaN = missing,
never filled: missing targets are masked in the loss and the metrics), the forcing variables
(NaN kept: windows with missing inputs are dropped and counted), ``year``, ``month_sin``,
``month_cos``; coordinates ``name``, ``lat``, ``lon``, ``forcing_point``, ``forcing_km`` and
``band`` (the embedding index: the site's latitude band with ``site_embedding: band``, its own
index with ``site``, 0 for every site with ``off``). The months run from
``history_months`` (60) before the first observation to the last observation, within the
forcing's span. ``attrs['dynamic_features']`` lists the forcing variables (comma-separated).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import CatalogError, DataError
from permaplug.data.features import PAPER_CALENDAR, add_features

SITE_EMBEDDINGS = ("band", "site", "off")
MAX_DISTANCE_KM = 50.0
HISTORY_MONTHS = 60
EARTH_RADIUS_KM = 6371.0


def great_circle_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Haversine distance (km) between points given in degrees (broadcasting)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi, dlam = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _point_dim(ds: xr.Dataset, what: str) -> str:
    for dim in ("point", "site", "station"):
        if dim in ds.dims:
            if "lat" not in ds.coords or "lon" not in ds.coords:
                raise DataError(f"{what}: dimension {dim!r} has no lat/lon coordinates")
            return dim
    raise DataError(f"{what}: dims {tuple(ds.dims)}; site mode needs point forcing with dims "
                    "(time, point) and lat/lon coordinates (e.g. climate-reanalyzer with "
                    "spatial: points)")


def embedding_index(obs: xr.Dataset, mode: str) -> np.ndarray:
    """Embedding index of each site (see the module docstring)."""
    if mode not in SITE_EMBEDDINGS:
        raise CatalogError(f"site_embedding {mode!r}: use one of {', '.join(SITE_EMBEDDINGS)}")
    n = obs.sizes["site"]
    if mode == "site":
        return np.arange(n, dtype=np.int64)
    if mode == "off":
        return np.zeros(n, dtype=np.int64)
    band = schema.band_of_latitude(obs["lat"].values).astype(np.int64)
    if (band < 0).any():
        bad = str(obs["name"].values[int(np.flatnonzero(band < 0)[0])])
        raise DataError(f"site {bad!r} lies outside the six latitude bands; use "
                        "site_embedding: site or off in the catalog metadata")
    return band


def assemble_sites(cat: Any, source: str | None = None) -> xr.Dataset:
    """The site table of catalog ``cat`` (module docstring). ``source``: the forcing entry's
    plugin or entry name (None: the catalog's first reanalysis entry)."""
    obs_names = cat.find_all("observations")
    if not obs_names:
        raise CatalogError(f"{cat.path}: --spatial sites needs an entry with role "
                           "'observations' (e.g. a station-soil-temperature source)")
    forcing_name = cat.find("reanalysis", source)
    meta = cat.metadata or {}
    obs = cat.open(obs_names[0])
    if "site" not in obs.dims or "time" not in obs.dims:
        raise DataError(f"{cat.path}: entry {obs_names[0]!r} gives dims {tuple(obs.dims)}; "
                        "expected (time, site)")
    targets = [t for t in schema.TARGETS if t in obs]
    if not targets:
        raise DataError(f"{cat.path}: entry {obs_names[0]!r} has none of {schema.TARGETS}")
    forcing = cat.open(forcing_name)
    pdim = _point_dim(forcing, f"{cat.path}: entry {forcing_name!r}")
    dynamic = [v for v in forcing.data_vars
               if set(forcing[v].dims) == {"time", pdim} and v not in schema.TARGETS]
    if not dynamic:
        raise DataError(f"{cat.path}: entry {forcing_name!r} has no (time, {pdim}) variable")
    dist = great_circle_km(obs["lat"].values[:, None], obs["lon"].values[:, None],
                           forcing["lat"].values[None, :], forcing["lon"].values[None, :])
    nearest = dist.argmin(axis=1)
    near_km = dist[np.arange(len(nearest)), nearest]
    limit = float(meta.get("max_forcing_distance_km", MAX_DISTANCE_KM))
    if (near_km > limit).any():
        i = int(np.argmax(near_km > limit))
        raise DataError(f"{cat.path}: site {str(obs['name'].values[i])!r} is {near_km[i]:.0f} km "
                        f"from the nearest forcing point of entry {forcing_name!r} (limit "
                        f"{limit:g} km, metadata max_forcing_distance_km)")
    t_obs = obs["time"].values.astype("datetime64[M]")
    has_obs = np.isfinite(np.stack([obs[t].values for t in targets])).any(axis=(0, 2))
    if not has_obs.any():
        raise DataError(f"{cat.path}: entry {obs_names[0]!r} has no soil temperature value")
    first = t_obs[has_obs][0] - np.timedelta64(int(meta.get("history_months", HISTORY_MONTHS)), "M")
    last = t_obs[has_obs][-1]
    ftime = forcing["time"].values.astype("datetime64[M]")
    keep = (ftime >= first) & (ftime <= last)
    if not keep.any():
        raise DataError(f"{cat.path}: forcing entry {forcing_name!r} ({ftime[0]}..{ftime[-1]}) "
                        f"does not cover the observations ({t_obs[has_obs][0]}..{last})")
    time = ftime[keep].astype("datetime64[ns]")
    sel = forcing.isel(time=np.flatnonzero(keep), **{pdim: nearest})
    data = {v: (("time", "site"), np.asarray(sel[v].transpose("time", pdim).values, float),
                dict(forcing[v].attrs)) for v in dynamic}
    obs_t = obs.reindex(time=time)
    for t in schema.TARGETS:
        values = (np.asarray(obs_t[t].transpose("time", "site").values, float) if t in obs_t
                  else np.full((len(time), obs.sizes["site"]), np.nan))
        data[t] = (("time", "site"), values, schema.cf_attrs(t))
    table = xr.Dataset(data, coords={"time": time})
    # the calendar features by their plugins, as for every table (data.features)
    table, _ = add_features(table, PAPER_CALENDAR, broadcast=True)
    mode = str(meta.get("site_embedding", "band"))
    table = table.assign_coords(
        site=np.arange(obs.sizes["site"]), name=("site", obs["name"].values.astype(str)),
        lat=("site", obs["lat"].values), lon=("site", obs["lon"].values),
        forcing_point=("site", np.asarray(forcing["name"].values[nearest]).astype(str)
                       if "name" in forcing.coords else nearest),
        forcing_km=("site", np.round(near_km, 2)), band=("site", embedding_index(obs, mode)),
    )
    labels = [schema.data_label(obs), schema.data_label(forcing)]
    table.attrs = {
        schema.DATA_LABEL_ATTR: str(meta.get("data_label") or " + ".join(labels)),
        "provenance": (f"observations ({obs_names[0]}): {obs.attrs.get('provenance', '')} | "
                       f"forcing ({forcing_name}): {forcing.attrs.get('provenance', '')}; each "
                       "site takes the nearest forcing point"),
        "catalog": str(cat.path), "source_entry": forcing_name, "spatial": "sites",
        "dynamic_features": ",".join(dynamic), "site_embedding": mode,
    }
    for key in ("layer_rule", "sensor_depths_cm", "min_coverage"):
        if key in obs.attrs:
            table.attrs[key] = obs.attrs[key]
    return table
