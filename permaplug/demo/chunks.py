"""Write big float32 netCDF-4 variables a chunk at a time, deflated by ISA-L.

The demo's ERA5-Land-layout files (the reanalysis file and the four 2001-2100 truth files) are
most of the bytes a demo build writes; zlib, run inside HDF5, was about 60 % of writing them
(issue 16). Here the variables are created by netCDF4 (so the file is netCDF-4 in every detail:
dimensions, fill value, and the CDS's filters declared: byte shuffle, then deflate level 1),
and each chunk is put in place by h5py's direct chunk write after the same two filters are
applied here: HDF5's byte shuffle (NumPy) and a deflate stream in zlib format made by ISA-L
(``isal``). Writing a file then costs about 4x less CPU than zlib level 1 inside HDF5, for
chunks 1-2 % larger (benchmarks/bench_writer.py). Readers inflate them with zlib like any other
chunk: the values read back are the values given.

Only a chunk's worth of data is in memory at a time (a variable is given as a function of its
rows), so nothing of a whole variable's size is allocated.
"""
from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ISAL_LEVEL = 2
"""ISA-L's compression level (0-3): level 2 is as fast as 1 and closest to zlib level 1 in size."""

H5Z_FILTER_DEFLATE, H5Z_FILTER_SHUFFLE = 1, 2


@dataclass
class Variable:
    """A float32 variable to write: ``data`` is the whole array (written as is, unchunked, with
    dims ``dims``) or a function ``rows(t0, t1)`` returning rows ``t0 .. t1 - 1`` of a chunked
    variable as float32 (``t1 - t0``, *chunk[1:]) (written a chunk at a time)."""

    name: str
    attrs: dict
    data: np.ndarray | Callable[[int, int], np.ndarray]
    dims: tuple[str, ...] | None = None


def time_rows(pieces: Sequence[np.ndarray], t0: int, t1: int) -> np.ndarray:
    """Rows ``t0 .. t1 - 1`` of ``pieces`` joined along axis 0 (a view when they lie in one
    piece; only these rows are copied otherwise)."""
    parts, start = [], 0
    for piece in pieces:
        stop = start + len(piece)
        if t0 < stop and t1 > start:
            parts.append(piece[max(t0 - start, 0):min(t1, stop) - start])
        start = stop
    if t0 < 0 or t1 > start or t0 >= t1:
        raise ValueError(f"rows {t0}..{t1 - 1} outside a series of {start} rows")
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def shuffle_deflate(chunk: np.ndarray, level: int = ISAL_LEVEL) -> bytes:
    """The bytes HDF5 stores for ``chunk`` (float32) under the filters shuffle then deflate:
    the little-endian bytes regrouped by significance (all first bytes, then all second
    bytes, ...), deflated into a zlib-format stream by ISA-L."""
    from isal import isal_zlib

    data = np.ascontiguousarray(chunk, dtype="<f4").view(np.uint8).reshape(-1, 4)
    return isal_zlib.compress(data.T.tobytes(), level)


def write_deflated(path: Path, variables: Sequence[Variable], dims: tuple[str, ...],
                   chunk: tuple[int, ...], nt: int) -> None:
    """Add ``variables`` to the netCDF-4 file ``path`` (its dimensions ``dims`` exist): the
    chunked ones ((``nt``, ...) along ``dims``, chunks of ``chunk``) through
    :func:`shuffle_deflate` and h5py's direct chunk write, the others as they are. A chunk that
    runs past ``nt`` is padded with the fill value (NaN), as HDF5 stores edge chunks. The rows
    are asked in time order, every variable's chunk at ``t0`` before any at a later ``t0``."""
    import h5py
    import netCDF4

    with netCDF4.Dataset(path, "a") as nc:
        for v in variables:
            if callable(v.data):
                var = nc.createVariable(v.name, "f4", dims, zlib=True, complevel=1, shuffle=True,
                                        chunksizes=chunk, fill_value=np.float32(np.nan))
            else:
                var = nc.createVariable(v.name, "f4", v.dims or dims,
                                        fill_value=np.float32(np.nan))
            var.setncatts({k: a for k, a in v.attrs.items() if k != "_FillValue"})
            if not callable(v.data):
                var[:] = v.data
        if "coordinates" in nc.ncattrs():  # xarray's note for coordinates no variable had yet
            nc.delncattr("coordinates")
    buf = np.empty(chunk, np.float32)
    h5 = h5py.File(path, "r+")
    try:
        chunked = [(v, h5[v.name]) for v in variables if callable(v.data)]
        for _, dset in chunked:
            _check_filters(path, dset)
        for t0 in range(0, nt, chunk[0]):  # time first: a source can make all its rows at once
            t1 = min(t0 + chunk[0], nt)
            for v, dset in chunked:
                rows = v.data(t0, t1)
                if rows.shape != (t1 - t0, *chunk[1:]) or rows.dtype != np.float32:
                    raise ValueError(f"{path.name}: {v.name} rows {t0}..{t1 - 1} are "
                                     f"{rows.dtype} {rows.shape}, expected float32 "
                                     f"{(t1 - t0, *chunk[1:])}")
                if t1 - t0 < chunk[0]:  # the last chunk: padded with the fill value
                    buf[:t1 - t0] = rows
                    buf[t1 - t0:] = np.nan
                    rows = buf
                try:
                    dset.id.write_direct_chunk((t0,) + (0,) * (len(chunk) - 1),
                                               shuffle_deflate(rows))
                except OSError as exc:
                    raise _write_failed(exc, path, f"{v.name}, rows {t0}..{t1 - 1}") from None
    except BaseException:
        with contextlib.suppress(Exception):  # the file is discarded; its close may fail too
            h5.close()
        raise
    try:
        h5.close()  # flushes HDF5's metadata
    except (OSError, RuntimeError) as exc:
        raise _write_failed(exc, path, "closing the file") from None


def _write_failed(exc: Exception, path: Path, what: str) -> OSError:
    """``exc`` (h5py's OSError, or the RuntimeError of a failed close) as an OSError naming
    ``path`` and the cause (disk full, file too large) in one line."""
    code = getattr(exc, "errno", None)
    if code is None:
        found = re.search(r"errno = (\d+)", str(exc))
        code = int(found.group(1)) if found else None
    reason = os.strerror(code) if code else str(exc).splitlines()[0].split(" (")[0]
    return OSError(code, f"{reason} (writing {what})", str(path))


def _check_filters(path: Path, dset) -> None:
    """The chunks are filtered here as the dataset declares: shuffle, then deflate, nothing
    else (a netCDF library that declared otherwise would make the chunks unreadable)."""
    plist = dset.id.get_create_plist()
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    if filters != [H5Z_FILTER_SHUFFLE, H5Z_FILTER_DEFLATE]:
        raise RuntimeError(f"{path.name}: {dset.name} has HDF5 filters {filters}, expected "
                           f"shuffle then deflate ({H5Z_FILTER_SHUFFLE}, {H5Z_FILTER_DEFLATE})")
