"""A source's dataset stored once and re-read while its files and the code are unchanged.

Opening a source means reading and reducing its files (band means of a NetCDF, lithology shares
from polygon intersections): about 3 s of every ``permaplug run`` on the demo data, the same
result each time. :func:`cached_read` keeps the dataset in ``<cache>/reads/<key>.nc``
(``$PERMAPLUG_CACHE_DIR`` or the user cache folder) under a key of everything the result
depends on:

* the plugin (name, class) and the code: a digest of every file of the permaplug package (built-in
  sources call its helpers and read its bundled tables) and, for a third-party plugin, of its own
  module and its distribution's version;
* the source's options (paths resolved);
* every local file the options name -- files, the files of a folder (recursively), the matches
  of a glob, a shapefile's side files -- by path, size and modification time (ns).

A read is cached only when the key is complete and the copy is faithful: every path-like
option (one holding a path separator) names existing local files, the dataset holds at most
:data:`MAX_BYTES` in memory (not lazy) with no file encoding, and the NetCDF copy reads back
identical (values, dtypes, coordinates, attributes; ``xarray.testing.assert_identical``);
otherwise the source is read as without the cache. ``PERMAPLUG_READ_CACHE=0`` switches it off;
the :data:`MAX_ENTRIES` most recently used copies are kept. Copies are written to a temporary
name and renamed: a cut-short write leaves no entry.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import xarray as xr

from permaplug.core.user_cache import cache_root

MAX_BYTES = 64 * 2**20
"""Largest dataset kept (band tables are kilobytes; gridded reads stay lazy and uncached)."""
MAX_ENTRIES = 64
"""Copies kept; the least recently used go first (a rebuilt demo leaves its old copies)."""
_GLOB = set("*?[")


def enabled() -> bool:
    """False when ``PERMAPLUG_READ_CACHE=0``."""
    return os.environ.get("PERMAPLUG_READ_CACHE", "1") != "0"


def cache_dir() -> Path:
    """``<cache root>/reads`` (:func:`permaplug.core.user_cache.cache_root`)."""
    return cache_root() / "reads"


@lru_cache(maxsize=1)
def package_digest() -> str:
    """sha256 of every file of the permaplug package (names and bytes): its modules and the
    data they read (``resources/``, e.g. the lithology unit table); compiled caches aside."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file() or path.suffix == ".pyc":
            continue
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def code_digest(cls: type) -> str | None:
    """Digest of the code behind source class ``cls`` (None: its module file is unknown)."""
    if cls.__module__.split(".")[0] == "permaplug":
        return package_digest()
    file = getattr(sys.modules.get(cls.__module__), "__file__", None)
    if not file or not Path(file).is_file():
        return None
    from importlib.metadata import PackageNotFoundError, packages_distributions, version

    top = cls.__module__.split(".")[0]
    dists = packages_distributions().get(top, [])
    try:
        versions = [f"{d}=={version(d)}" for d in dists]
    except PackageNotFoundError:
        versions = []
    h = hashlib.sha256(Path(file).read_bytes())
    h.update(",".join(versions).encode())
    return h.hexdigest()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def input_files(options: dict[str, Any]) -> list[Path] | None:
    """Every local file the path-like options name (see the module doc); None when one names
    nothing that exists (a URL, a missing file): the read is then not cached."""
    found: set[Path] = set()
    for text in _strings(options):
        if os.sep not in text and "/" not in text:
            continue  # not a path: a name, a label, a number
        if "://" in text:
            return None
        if _GLOB & set(text):
            matches = [Path(p) for p in glob.glob(text, recursive=True)]
        else:
            matches = [Path(text)] if Path(text).exists() else []
        if not matches:
            return None
        for p in matches:
            if p.is_dir():
                found.update(f for f in p.rglob("*") if f.is_file())
            elif p.is_file():
                found.add(p)
                found.update(f for f in p.parent.glob(glob.escape(p.stem) + ".*")
                             if f.is_file())  # a shapefile's .dbf, .shx, .prj
    return sorted(found)


def read_key(plugin: str, cls: type, options: dict[str, Any]) -> str | None:
    """The cache key of reading ``plugin`` (class ``cls``) with ``options``, or None."""
    code = code_digest(cls)
    files = input_files(options)
    if code is None or not files:
        return None
    stats = []
    for f in files:
        st = f.stat()
        stats.append([str(f.resolve()), st.st_size, st.st_mtime_ns])
    doc = {"plugin": plugin, "class": f"{cls.__module__}.{cls.__qualname__}", "code": code,
           "options": options, "files": stats}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def cached_read(plugin: str, cls: type, options: dict[str, Any],
                read: Callable[[], xr.Dataset]) -> xr.Dataset:
    """``read()``, or its stored copy when the key matches (see the module doc)."""
    try:
        key = read_key(plugin, cls, options) if enabled() else None
        path = cache_dir() / f"{plugin}-{key[:32]}.nc" if key else None
    except OSError:  # a file gone while listing, an unusable cache folder: read as without
        key = path = None
    if path is None:
        return read()
    if path.exists():
        try:
            ds = xr.load_dataset(path)
        except Exception:  # noqa: BLE001 - an unreadable copy: read again, replace it
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        else:
            for var in ds.variables.values():  # as read: no encoding (see _store)
                var.encoding = {}
            with contextlib.suppress(OSError):
                os.utime(path)  # recently used
            return ds
    ds = read()
    _store(ds, path)
    return ds


def _store(ds: xr.Dataset, path: Path) -> None:
    """Write ``ds`` to ``path`` when it is small and reads back identical; else nothing."""
    if ds.nbytes > MAX_BYTES or any(v.chunks or v.encoding for v in ds.variables.values()):
        return  # large, lazy, or tied to its file's encoding: a copy would not be the same
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.to_netcdf(tmp)
        back = xr.load_dataset(tmp)
        xr.testing.assert_identical(back, ds)
        if any(back[k].dtype != ds[k].dtype for k in ds.variables):
            raise AssertionError("dtype changed")
        os.replace(tmp, path)
    except Exception:  # noqa: BLE001 - not storable faithfully (attrs, dtypes), no room: not cached
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return
    prune(path.parent)


def prune(folder: Path, keep: int = MAX_ENTRIES) -> None:
    """Remove all but the ``keep`` most recently used copies in ``folder``."""
    def used(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:
            return 0.0

    copies = sorted(folder.glob("*.nc"), key=used, reverse=True)
    for old in copies[keep:]:
        with contextlib.suppress(OSError):
            old.unlink(missing_ok=True)
