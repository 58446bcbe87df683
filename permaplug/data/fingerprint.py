"""Content hash of the files a catalog entry reads, so that a changed data set is detected.

The hash is a SHA-256 over every file the entry's path options name (files, folders searched
recursively, glob patterns), in sorted order, each contributing its path relative to the
catalog's folder and its bytes. Moving the whole catalog folder keeps the hash; editing,
adding, removing or renaming a file changes it.
"""
from __future__ import annotations

import glob
import hashlib
from pathlib import Path
from typing import Any

CHUNK = 1 << 20  # bytes read at a time (memory stays flat for files of any size)


def entry_files(options: dict[str, Any]) -> list[Path]:
    """Every existing file named by the path options of ``options`` (resolved, absolute),
    sorted and without duplicates."""
    from permaplug.core.catalog import path_options

    files: set[Path] = set()
    for value in path_options(options):
        matches = (glob.glob(value, recursive=True) if any(c in value for c in "*?[")
                   else [value])
        for m in map(Path, matches):
            if m.is_dir():
                files.update(f for f in m.rglob("*") if f.is_file())
            elif m.is_file():
                files.add(m)
    return sorted(files)


def content_hash(files: list[Path], root: Path) -> dict[str, Any]:
    """``{"sha256", "files", "bytes"}`` of ``files``; names are taken relative to ``root``
    (the catalog's folder) when inside it, else their file name."""
    digest, total = hashlib.sha256(), 0
    for f in sorted(files):
        try:
            name = f.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            name = f.name
        digest.update(name.encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(CHUNK):
                digest.update(block)
                total += len(block)
        digest.update(b"\0")
    return {"sha256": digest.hexdigest(), "files": len(files), "bytes": total}


def entry_hash(catalog, name: str) -> dict[str, Any]:
    """:func:`content_hash` of the files of entry ``name`` of ``catalog`` (a
    ``PermaplugCatalog``), with the entry's name and plugin."""
    entry = catalog.entry(name)
    files = entry_files(entry.options)
    return {"entry": name, "plugin": entry.plugin,
            **content_hash(files, Path(catalog.path).parent)}
