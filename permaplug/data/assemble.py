"""The assembled monthly table that training uses, and its NetCDF/Parquet files.

``assemble_table(catalog, source, static, spatial)`` opens the reanalysis entry (role
``reanalysis``) and the static entries (role ``static``) of a catalog and returns dims
``(time, band)`` (or ``(time, cell)``) with, per month and unit, ``stl1..4`` (degC),
``schema.FORCING``, ``schema.SOIL_WATER``, ``schema.CALENDAR_FEATURES`` (``year``,
``month_sin = sin(2 pi month / 12)``, ``month_cos``), plus static features with dims
``(band,)`` (in gridded mode ``(cell,)``: each cell takes its band's values).
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core import schema
from permaplug.core.atomic import atomic_path
from permaplug.core.errors import ConfigError, DataError
from permaplug.data.gaps import (
    MAX_GAP_MONTHS,
    apply_gap_policy,
    check_empty_units,
    missing_masks,
)

PARQUET_META_KEY = b"permaplug"


def calendar_features(time: xr.DataArray) -> dict[str, xr.DataArray]:
    """``year`` (float), ``month_sin``, ``month_cos`` for month-start times."""
    month = time.dt.month.astype(float)
    angle = 2 * np.pi * month / 12.0
    feats = {"year": time.dt.year.astype(float), "month_sin": np.sin(angle),
             "month_cos": np.cos(angle)}
    return {k: v.assign_attrs(schema.cf_attrs(k)) for k, v in feats.items()}


def _as_catalog(catalog: Any):
    from permaplug.core.catalog import PermaplugCatalog, load_catalog

    return catalog if isinstance(catalog, PermaplugCatalog) else load_catalog(catalog)


def assemble_table(catalog: Any, source: str = "era5land",
                   static: Sequence[str] | None = ("usgs-lithology", "openlandmap"),
                   spatial: str = "bands", require_targets: bool = True,
                   max_gap: int = MAX_GAP_MONTHS, empty_units: str = "warn") -> xr.Dataset:
    """The monthly training table; see the module docstring.

    ``catalog``: a PermaplugCatalog, a catalog path, or None (bundled demo). ``source``: the
    reanalysis entry's plugin or entry name. ``static``: static plugins/entries to join (a
    requested one absent from the catalog is skipped with a warning and named in
    ``attrs['static_missing']``). ``spatial``: ``bands`` or ``grid``.

    Gap policy (:mod:`permaplug.data.gaps`): NaN gaps of at most ``max_gap`` months are
    interpolated with a warning, longer ones raise DataError. A band (or cell) without any data
    warns and stays missing with ``empty_units="warn"``, raises with ``"error"`` (training).
    """
    if spatial not in ("bands", "grid", "sites"):
        raise ConfigError(f"--spatial {spatial!r}: use 'bands', 'grid' or 'sites'")
    cat = _as_catalog(catalog)
    if spatial == "sites":  # observed targets at sites, nothing filled (permaplug.data.sites)
        from permaplug.data.sites import assemble_sites

        return assemble_sites(cat, source)
    name = cat.find("reanalysis", source)
    entry = cat.entry(name)
    overrides = {"spatial": spatial} if (spatial == "grid" or "spatial" in entry.options) else {}
    ds = cat.open(name, **overrides)
    unit = "cell" if spatial == "grid" else "band"
    if unit not in ds.dims or "time" not in ds.dims:
        raise DataError(f"{cat.path}: entry {name!r} gives dims {tuple(ds.dims)}; "
                        f"expected (time, {unit})")
    wanted = (schema.TARGETS if require_targets else ()) + schema.FORCING + schema.SOIL_WATER
    missing = [v for v in wanted if v not in ds.data_vars]
    if missing:
        raise DataError(f"{cat.path}: entry {name!r} lacks {', '.join(missing)} needed for the "
                        "table")
    keep = [v for v in schema.TARGETS + schema.FORCING + schema.SOIL_WATER if v in ds.data_vars]
    table = ds[keep].transpose("time", unit)
    what = f"{cat.path}: entry {name!r}"
    masks = missing_masks(table, unit)
    empty, notes = check_empty_units(table, unit, what, empty_units, masks)
    table, filled = apply_gap_policy(table, unit, what, max_gap, empty, masks)
    for note in notes + filled:
        warnings.warn(note, stacklevel=2)
    template = table[keep[0]]
    table = table.assign({k: v.broadcast_like(template).transpose("time", unit)
                          for k, v in calendar_features(table["time"]).items()})
    labels = [schema.data_label(ds)]
    seen = {labels[0]}
    provenance = [f"reanalysis ({name}): {ds.attrs.get('provenance', '')}"]
    static_missing = []
    for s in static or ():
        found = cat.find_all("static", s)
        if not found:
            static_missing.append(s)
            warnings.warn(f"{cat.path}: no static entry {s!r}; table built without it",
                          stacklevel=2)
            continue
        sds = cat.open(found[0])
        if "band" not in sds.dims:
            raise DataError(f"{cat.path}: static entry {found[0]!r} has no 'band' dimension")
        feats = [v for v in sds.data_vars if v in schema.STATIC_FEATURES]
        if not feats:
            raise DataError(f"{cat.path}: static entry {found[0]!r} holds none of the static "
                            "features (lith_*, bdod_l*, soc_l*)")
        part = sds[feats]
        per_cell = None
        if unit == "cell":  # the entry's own files sampled at each cell, when its source can
            per_cell = cat.open_cells(found[0], table["lat"].values, table["lon"].values)
            if per_cell is not None:
                per_cell = per_cell.assign_coords(cell=table["cell"].values)
        if per_cell is not None:
            part = per_cell[[v for v in feats if v in per_cell]]
            provenance.append(f"static ({found[0]}) sampled per grid cell")
        elif unit == "cell":
            part = part.sel(band=table["band"]).drop_vars(["band", "lat_min", "lat_max"],
                                                          errors="ignore")
        else:
            part = part.reindex(band=table["band"].values)
            part = part.drop_vars([c for c in ("lat_min", "lat_max") if c in part.coords])
        table = table.assign({v: part[v] for v in feats})
        label = schema.data_label(sds)
        if label not in seen:
            seen.add(label)
            labels.append(f"static {s}: {label}")
        provenance.append(f"static ({found[0]}): {sds.attrs.get('provenance', '')}")
    if unit == "band":
        table = table.assign_coords(schema.band_coords())
    table.attrs = {
        schema.DATA_LABEL_ATTR: " + ".join(labels),
        "provenance": " | ".join(provenance),
        "catalog": str(cat.path),
        "source_entry": name,
        "spatial": spatial,
    }
    if static_missing:
        table.attrs["static_missing"] = ", ".join(static_missing)
    if filled:
        table.attrs["gaps_interpolated"] = " | ".join(filled)
    return table


# --- files ------------------------------------------------------------------------------------
def _jsonable_attrs(attrs: dict[str, Any]) -> dict[str, str]:
    return {str(k): v if isinstance(v, str) else json.dumps(v, default=str)
            for k, v in attrs.items()}


def write_table(ds: xr.Dataset, out: str | Path) -> Path:
    """Write the table atomically as NetCDF (``.nc``) or Parquet (``.parquet``, long format).

    Parquet rows are (time, unit) with one column per variable (static ones repeated); the
    dataset attributes are kept as JSON in the file's ``permaplug`` schema metadata.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".nc", ".parquet"):
        raise ConfigError(f"--out {out}: use a .nc or .parquet file name")
    with atomic_path(out) as tmp:
        if suffix == ".nc":
            clean = ds.copy()
            for v in clean.variables:
                if clean[v].dtype == object:
                    clean[v] = clean[v].astype(str)
            clean.attrs = _jsonable_attrs(clean.attrs)
            clean.to_netcdf(tmp)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            frame = ds.to_dataframe().reset_index()
            table = pa.Table.from_pandas(frame, preserve_index=False)
            meta = dict(table.schema.metadata or {})
            meta[PARQUET_META_KEY] = json.dumps(_jsonable_attrs(ds.attrs)).encode()
            pq.write_table(table.replace_schema_metadata(meta), tmp)
    return out


def read_table(path: str | Path) -> xr.Dataset:
    """Read a table written by :func:`write_table` back into (time, unit) form."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: table file not found")
    if path.suffix.lower() == ".nc":
        return xr.load_dataset(path)
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    attrs = json.loads((table.schema.metadata or {}).get(PARQUET_META_KEY, b"{}"))
    frame = table.to_pandas()
    unit = "cell" if "cell" in frame.columns else "band"
    frame["time"] = pd.to_datetime(frame["time"])
    per_unit = [c for c in ("lat_min", "lat_max", "lat", "lon", "band") if c in frame.columns
                and c != unit]
    coords = frame.groupby(unit)[per_unit].first() if per_unit else None
    ds = frame.drop(columns=per_unit).set_index(["time", unit]).to_xarray()
    static = [v for v in ds.data_vars if v in schema.STATIC_FEATURES]
    for v in static:
        ds[v] = ds[v].isel(time=0, drop=True)
    if coords is not None:
        ds = ds.assign_coords({c: (unit, coords[c].to_numpy()) for c in per_unit})
    ds.attrs = attrs
    return ds
