"""What a run was trained on, stored in its folder so that the run stands alone.

Layout (``RUN/inputs/``)::

    table.nc | table.zarr   the assembled monthly table, compressed: NetCDF (zlib) for bands,
                            Zarr for grid cells (written block by block from dask, never
                            loaded whole)
    catalog.yaml            the catalog file the table was built from, byte for byte
    inputs.json             where both came from, and the SHA-256 of the reanalysis files

``project``, ``explain`` and ``report`` read the table from here instead of opening the
catalog and assembling the table again; ``run --resume`` continues from it. Only the
scenarios (``project``) still come from a catalog: :func:`reanalysis_change` then compares the
catalog's reanalysis files with the stored hash and says in one line when they changed.
"""
from __future__ import annotations

import datetime as _dt
import json
import shutil
from pathlib import Path
from typing import Any

import xarray as xr

from permaplug.core.atomic import atomic_path, write_text_atomic
from permaplug.core.errors import CatalogError, DataError

INPUTS = "inputs"
RECORD = "inputs.json"
CATALOG_COPY = "catalog.yaml"
GRID_CHUNK = 4096  # cells per Zarr chunk (each chunk holds every month)


def _clean(table: xr.Dataset) -> xr.Dataset:
    """A shallow copy that NetCDF/Zarr can hold exactly: no encoding inherited from the source
    files (a packed int16 with scale_factor would round the values), text instead of objects,
    attributes as text."""
    ds = table.copy(deep=False)
    for v in ds.variables.values():
        v.encoding = {}
    for name in list(ds.variables):
        if ds[name].dtype == object:
            ds[name] = ds[name].astype(str)
    ds.attrs = {str(k): v if isinstance(v, str) else json.dumps(v, default=str)
                for k, v in table.attrs.items()}
    return ds


def write_table(table: xr.Dataset, run_dir: Path) -> Path:
    """Store ``table`` in ``run_dir/inputs`` (atomically); returns the file or store written.

    Dims ``(time, band)``: ``table.nc``, every data variable zlib-compressed. Dims
    ``(time, cell)``: ``table.zarr`` (compressed chunks of :data:`GRID_CHUNK` cells), written
    chunk by chunk from the (lazy, dask) table, so memory stays at a few chunks.
    """
    ds = _clean(table)
    folder = Path(run_dir) / INPUTS
    if "cell" in ds.dims:
        target = folder / "table.zarr"
        ds = ds.chunk({"cell": min(GRID_CHUNK, ds.sizes["cell"]), "time": -1})
        with atomic_path(target) as tmp:
            ds.to_zarr(tmp, mode="w", zarr_format=2, consolidated=True)
        return target
    target = folder / "table.nc"
    enc = {v: {"zlib": True, "complevel": 4} for v in ds.data_vars}
    with atomic_path(target) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=enc)
    return target


def save_inputs(table: xr.Dataset, run_dir: Path) -> dict[str, Any]:
    """Store ``table``, a copy of the catalog it was built from and the reanalysis hash.

    The catalog and the reanalysis entry are those the table names in its attributes
    (``catalog``, ``source_entry``, set by :func:`permaplug.data.assemble.assemble_table`); a
    table built in memory (tests, benchmarks) is stored without them. Returns the record
    written to ``inputs.json``.
    """
    run_dir = Path(run_dir)
    folder = run_dir / INPUTS
    stored = write_table(table, run_dir)
    record: dict[str, Any] = {
        "table": stored.name, "written": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "catalog": None, "catalog_copy": None, "reanalysis": None,
    }
    source = Path(str(table.attrs.get("catalog", ""))) if table.attrs.get("catalog") else None
    if source is not None and source.is_file():
        from permaplug.core.catalog import load_catalog
        from permaplug.data.fingerprint import entry_hash

        with atomic_path(folder / CATALOG_COPY) as tmp:
            shutil.copyfile(source, tmp)
        record["catalog"], record["catalog_copy"] = str(source), CATALOG_COPY
        entry = str(table.attrs.get("source_entry", ""))
        cat = load_catalog(source)
        if entry in cat.names():
            record["reanalysis"] = entry_hash(cat, entry)
    write_text_atomic(folder / RECORD, json.dumps(record, indent=1))
    return record


def read_record(run_dir: Path) -> dict[str, Any] | None:
    """The ``inputs.json`` of a run (None for a run folder written before runs stored their
    inputs, or one whose table was never completely stored)."""
    path = Path(run_dir) / INPUTS / RECORD
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None


def stored_table_path(run_dir: Path) -> Path | None:
    """The stored table of the run (None when it has none)."""
    record = read_record(run_dir)
    if record is None:
        return None
    path = Path(run_dir) / INPUTS / str(record.get("table", ""))
    if not path.exists():
        raise DataError(f"{path}: the run's stored table is missing (its {RECORD} names it)")
    return path


def open_stored_table(run_dir: Path) -> xr.Dataset | None:
    """The table the run was trained on, from ``RUN/inputs`` (None when it has none).

    NetCDF is loaded into memory (a band table is small); Zarr is opened lazily.
    """
    path = stored_table_path(run_dir)
    if path is None:
        return None
    try:
        if path.suffix == ".zarr":
            return xr.open_zarr(path, consolidated=True)
        return xr.load_dataset(path, engine="netcdf4")
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: cannot read the run's stored table ({exc})") from None


def reanalysis_change(run_dir: Path, catalog) -> str | None:
    """One line when ``catalog`` (a ``PermaplugCatalog``) holds the run's reanalysis entry
    and its files no longer match the stored hash; also when it lacks the entry. None when
    they match, or when the run recorded no hash."""
    from permaplug.data.fingerprint import entry_hash

    record = read_record(run_dir) or {}
    before = record.get("reanalysis")
    if not before:
        return None
    name = before["entry"]
    table = Path(run_dir) / INPUTS / str(record.get("table"))
    if name not in catalog.names():
        return (f"note: catalog {catalog.path} has no reanalysis entry {name!r}; the historical "
                f"table is the run's stored {table}")
    try:
        now = entry_hash(catalog, name)
    except OSError as exc:
        raise CatalogError(f"{catalog.path}: entry {name!r}: cannot read its files to compare "
                           f"them with the run's ({exc})") from None
    if now["sha256"] == before["sha256"]:
        return None
    return (f"warning: the reanalysis {name!r} in {catalog.path} changed since the run "
            f"(sha256 {before['sha256'][:12]} -> {now['sha256'][:12]}, {before['files']} -> "
            f"{now['files']} files); the run's stored table {table} is used")
