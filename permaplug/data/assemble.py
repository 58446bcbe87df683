"""The assembled monthly table that training uses, and its NetCDF/Parquet files.

``assemble_table(catalog, source, static, spatial, features)`` opens the reanalysis entry
(role ``reanalysis``), the static entries (role ``static``) and, when the selected features
need them, further monthly entries (role ``dynamic``) of a catalog and returns dims
``(time, band)`` (or ``(time, cell)``) with, per month and unit, ``stl1..4`` (degC), the
selected monthly inputs (default: the paper's, :data:`permaplug.data.features.PAPER_DYNAMIC`,
whose calendar features ``year``, ``month_sin = sin(2 pi month / 12)``, ``month_cos`` are
computed by their feature plugins), plus static features with dims ``(band,)`` (in gridded
mode ``(cell,)``: each cell takes its band's values).

Derived features that learn from the training years (``z``) are not in the table: the run
fits and adds them (:func:`permaplug.data.features.add_features`).
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
from permaplug.data import features as F
from permaplug.data.gaps import (
    MAX_GAP_MONTHS,
    apply_gap_policy,
    check_empty_units,
    missing_masks,
)

PARQUET_META_KEY = b"permaplug"
STATIC_ATTR = "static_variables"
"""Parquet metadata key listing the variables without a time dim (one value per unit)."""


def calendar_features(time: xr.DataArray) -> dict[str, xr.DataArray]:
    """``year`` (float), ``month_sin``, ``month_cos`` for month-start times (their plugins)."""
    ds, _ = F.add_features(xr.Dataset(coords={"time": time}), F.PAPER_CALENDAR)
    return {k: ds[k] for k in F.PAPER_CALENDAR}


def _as_catalog(catalog: Any):
    from permaplug.core.catalog import PermaplugCatalog, load_catalog

    return catalog if isinstance(catalog, PermaplugCatalog) else load_catalog(catalog)


def select_features(catalog: Any, features: Sequence[str], source: str = "era5land",
                    static: Sequence[str] | None = ("usgs-lithology", "openlandmap"),
                    ) -> F.Selection:
    """Check a feature selection against what the catalog's entries declare, reading no data.

    The entries are the reanalysis entry of ``source``, the ``static`` entries present and
    every ``dynamic`` entry. FeatureError (one line) for a feature nothing provides.
    """
    cat = _as_catalog(catalog)
    names = [cat.find("reanalysis", source)]
    names += [n for s in static or () for n in cat.find_all("static", s)[:1]]
    names += cat.find_all("dynamic")
    provided = F.provided_by([(n, cat.provides(n)) for n in names])
    return F.resolve(features, provided, where=f"catalog {cat.path}")


def assemble_table(catalog: Any, source: str = "era5land",
                   static: Sequence[str] | None = ("usgs-lithology", "openlandmap"),
                   spatial: str = "bands", require_targets: bool = True,
                   max_gap: int = MAX_GAP_MONTHS, empty_units: str = "warn",
                   features: Sequence[str] | None = None) -> xr.Dataset:
    """The monthly training table; see the module docstring.

    ``catalog``: a PermaplugCatalog, a catalog path, or None (bundled demo). ``source``: the
    reanalysis entry's plugin or entry name. ``static``: static plugins/entries to join (a
    requested one absent from the catalog is skipped with a warning and named in
    ``attrs['static_missing']``). ``spatial``: ``bands`` or ``grid``.

    Gap policy (:mod:`permaplug.data.gaps`): NaN gaps of at most ``max_gap`` months are
    interpolated with a warning, longer ones raise DataError. A band (or cell) without any data
    warns and stays missing with ``empty_units="warn"``, raises with ``"error"`` (training).

    ``features``: the run's inputs by name (None: the paper's). They are checked against the
    entries' declarations before any data is read (FeatureError); the table then holds the
    targets, the selected source variables (from the reanalysis entry, else a ``dynamic``
    entry), the selected static features and the derived features that need no training
    statistics.
    """
    if spatial not in ("bands", "grid", "sites"):
        raise ConfigError(f"--spatial {spatial!r}: use 'bands', 'grid' or 'sites'")
    cat = _as_catalog(catalog)
    if spatial == "sites":  # observed targets at sites, nothing filled (permaplug.data.sites)
        from permaplug.data.sites import assemble_sites

        if features is not None:  # checked before any data is read; the run computes them
            select_features(cat, features, source, static)
        return assemble_sites(cat, source)
    name = cat.find("reanalysis", source)
    selection = None if features is None else select_features(cat, features, source, static)
    entry = cat.entry(name)
    overrides = {"spatial": spatial} if (spatial == "grid" or "spatial" in entry.options) else {}
    ds = cat.open(name, **overrides)
    unit = "cell" if spatial == "grid" else "band"
    if unit not in ds.dims or "time" not in ds.dims:
        raise DataError(f"{cat.path}: entry {name!r} gives dims {tuple(ds.dims)}; "
                        f"expected (time, {unit})")
    extra_entries: dict[str, list[str]] = {}
    if selection is None:
        inputs = F.PAPER_FORCING + schema.SOIL_WATER
        derived: Sequence[str] = F.PAPER_CALENDAR
    else:
        own = {v.name for v in cat.provides(name)}
        inputs = tuple(v for v in selection.base if v in own)
        taken = set(inputs)
        for n in cat.find_all("dynamic"):
            have = {v.name for v in cat.provides(n)}
            wanted_here = [v for v in selection.base if v in have and v not in taken]
            if wanted_here:
                extra_entries[n] = wanted_here
                taken.update(wanted_here)
        derived = selection.derived
    wanted = (schema.TARGETS if require_targets else ()) + tuple(inputs)
    missing = [v for v in wanted if v not in ds.data_vars]
    if missing:
        raise DataError(f"{cat.path}: entry {name!r} lacks {', '.join(missing)} needed for the "
                        "table")
    keep = [v for v in schema.TARGETS + tuple(inputs) if v in ds.data_vars]
    table = ds[keep].transpose("time", unit)
    extra_attrs = {}
    for n, variables in extra_entries.items():  # further monthly inputs, on the same units
        part, extra_attrs[n] = _dynamic_part(cat, n, variables, table, unit,
                                             {"spatial": "grid"} if unit == "cell" else {})
        table = table.assign(part)
    what = f"{cat.path}: entry {name!r}"
    masks = missing_masks(table, unit)
    empty, notes = check_empty_units(table, unit, what, empty_units, masks)
    table, filled = apply_gap_policy(table, unit, what, max_gap, empty, masks)
    for note in notes + filled:
        warnings.warn(note, stacklevel=2)
    stateless = [d for d in derived if not F.feature_classes()[d].needs_fit()]
    table, _ = F.add_features(table, stateless, broadcast=True)
    labels = [schema.data_label(ds)]
    seen = {labels[0]}
    provenance = [f"reanalysis ({name}): {ds.attrs.get('provenance', '')}"]
    for n, attrs in extra_attrs.items():
        label = str(attrs.get(schema.DATA_LABEL_ATTR, "unknown data"))
        if label not in seen:
            seen.add(label)
            labels.append(f"{n}: {label}")
        provenance.append(f"dynamic ({n}): {attrs.get('provenance', '')}")
    static_missing = []
    for s in static if selection is None or selection.static else ():
        found = cat.find_all("static", s)
        if not found:
            static_missing.append(s)
            warnings.warn(f"{cat.path}: no static entry {s!r}; table built without it",
                          stacklevel=2)
            continue
        declared = {v.name for v in cat.provides(found[0]) if v.kind == "static"}
        if selection is not None and not declared & set(selection.static):
            continue  # none of its features is selected: not even opened
        sds = cat.open(found[0])
        if "band" not in sds.dims:
            raise DataError(f"{cat.path}: static entry {found[0]!r} has no 'band' dimension")
        feats = [v for v in sds.data_vars if v in declared
                 and (selection is None or v in selection.static)]
        if not feats:
            if selection is not None:
                continue  # none of its features is selected
            if not declared:
                raise DataError(f"{cat.path}: static entry {found[0]!r}: source "
                                f"{cat.entry(found[0]).plugin!r} declares no static variable "
                                "(list them in the source's 'variables')")
            raise DataError(f"{cat.path}: static entry {found[0]!r} holds none of the static "
                            f"features it declares ({', '.join(sorted(declared))})")
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


def _dynamic_part(cat: Any, name: str, variables: list[str], table: xr.Dataset, unit: str,
                  overrides: dict[str, Any]) -> tuple[dict[str, xr.DataArray], dict[str, Any]]:
    """Variables of a ``dynamic`` entry on the table's months and units (DataError if the
    entry lacks a month or a unit of the table)."""
    part = cat.open(name, **overrides)
    missing = [v for v in variables if v not in part.data_vars]
    if missing:
        raise DataError(f"{cat.path}: entry {name!r} lacks {', '.join(missing)}, which its "
                        "source declares")
    if unit not in part.dims or "time" not in part.dims:
        raise DataError(f"{cat.path}: entry {name!r} gives dims {tuple(part.dims)}; expected "
                        f"(time, {unit})")
    out = {}
    for v in variables:
        da = part[v].transpose("time", unit)
        da = da.drop_vars([c for c in da.coords if c not in ("time", unit)])
        da = da.reindex({"time": table["time"].values, unit: table[unit].values})
        if np.isnan(np.asarray(da.values, dtype=float)).all():
            raise DataError(f"{cat.path}: entry {name!r}: {v!r} has no value in the table's "
                            f"months {str(table['time'].values[0])[:7]}.."
                            f"{str(table['time'].values[-1])[:7]}")
        out[v] = da
    return out, dict(part.attrs)


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
            attrs = {**ds.attrs, STATIC_ATTR: [v for v in ds.data_vars if "time" not in ds[v].dims]}
            meta[PARQUET_META_KEY] = json.dumps(_jsonable_attrs(attrs)).encode()
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
    if STATIC_ATTR in attrs:  # written by write_table
        static = [v for v in json.loads(attrs.pop(STATIC_ATTR)) if v in ds.data_vars]
    else:  # older files: what the registered sources declare as static
        from permaplug.core.plugins import get_registry

        declared = get_registry().variables()
        static = [v for v in ds.data_vars if v in declared and declared[v].kind == "static"]
    for v in static:
        ds[v] = ds[v].isel(time=0, drop=True)
    if coords is not None:
        ds = ds.assign_coords({c: (unit, coords[c].to_numpy()) for c in per_unit})
    ds.attrs = attrs
    return ds
