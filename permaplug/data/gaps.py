"""The gap policy of the assembled table: short NaN gaps are interpolated, long ones refused.

A *gap* is a run of consecutive missing (NaN) months of one variable in one unit (band or
cell) whose other months have data. Policy (issue 9):

* a gap of at most ``max_gap`` (2) months is filled -- linearly between its neighbours, or
  with the nearest value at the start or end of the record -- and reported in a warning;
* a longer gap (or a variable missing over the whole record of a unit that has other data)
  raises :class:`DataError` naming the variable, the unit and the months;
* a unit where *every* variable is missing at every month (a band without any land cell) is
  an *empty unit*: :func:`check_empty_units` refuses it (or warns, with ``policy="warn"``).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from permaplug.core.errors import DataError

MAX_GAP_MONTHS = 2
EMPTY_UNIT_POLICIES = ("error", "warn")


def nan_runs(missing: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` (stop exclusive) of the True runs of a 1-D boolean array."""
    m = np.concatenate([[False], np.asarray(missing, bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def fill_short_gaps(values: np.ndarray, max_gap: int = MAX_GAP_MONTHS) -> np.ndarray:
    """Fill the NaN runs of ``values`` ``[T]`` no longer than ``max_gap`` (a copy).

    Interior runs: linear interpolation between the neighbouring months; runs at the start or
    end: the nearest finite value. Longer runs and all-NaN series are left as they are.
    """
    out = np.array(values, dtype=float, copy=True)
    ok = np.isfinite(out)
    if ok.all() or not ok.any():
        return out
    idx = np.arange(out.size)
    for a, b in nan_runs(~ok):
        if b - a > max_gap:
            continue
        out[a:b] = np.interp(idx[a:b], idx[ok], out[ok])
    return out


def _label(months: np.ndarray, a: int, b: int) -> str:
    first, last = str(months[a])[:7], str(months[b - 1])[:7]
    return first if a == b - 1 else f"{first}..{last}"


def _unit_name(table: xr.Dataset, unit_dim: str, i: int) -> str:
    coord = table[unit_dim]
    name = f"{unit_dim} {coord.values[i]}"
    if unit_dim == "band" and "lat_min" in table.coords and "lat_max" in table.coords:
        name += (f" ({float(table['lat_min'].values[i]):.2f}-"
                 f"{float(table['lat_max'].values[i]):.2f} N)")
    elif unit_dim == "cell" and "lat" in table.coords and "lon" in table.coords:
        name += f" ({float(table['lat'].values[i]):.2f} N, {float(table['lon'].values[i]):.2f} E)"
    return name


def missing_masks(table: xr.Dataset, unit_dim: str) -> dict[str, np.ndarray]:
    """``{variable: bool [time, unit]}`` of every ``(time, unit)`` variable, computed in one
    pass (one ``dask.compute`` when the table is lazy)."""
    names = [v for v in table.data_vars if set(table[v].dims) == {"time", unit_dim}]
    masks = [table[v].isnull().transpose("time", unit_dim).data for v in names]
    if any(not isinstance(m, np.ndarray) for m in masks):
        import dask

        masks = dask.compute(*masks)
    return {v: np.asarray(m, dtype=bool) for v, m in zip(names, masks)}


def check_empty_units(table: xr.Dataset, unit_dim: str, what: str, policy: str = "error",
                      masks: dict[str, np.ndarray] | None = None) -> tuple[list[int], list[str]]:
    """Positions of units with no data at all, and warning messages (``policy="warn"``).

    With ``policy="error"`` an empty unit raises :class:`DataError` naming it. ``masks``: the
    :func:`missing_masks` of ``table`` when already computed.
    """
    if policy not in EMPTY_UNIT_POLICIES:
        raise DataError(f"{what}: empty-unit policy {policy!r}; use one of "
                        f"{', '.join(EMPTY_UNIT_POLICIES)}")
    masks = missing_masks(table, unit_dim) if masks is None else masks
    if not masks:
        return [], []
    empty = np.ones(table.sizes[unit_dim], dtype=bool)
    for m in masks.values():
        empty &= m.all(axis=0)
    found = [int(i) for i in np.flatnonzero(empty)]
    if not found:
        return [], []
    names = "; ".join(_unit_name(table, unit_dim, i) for i in found[:3])
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    msg = (f"{what}: {names}{more} has no land cell with data (every variable missing at "
           f"every month)")
    if policy == "error":
        raise DataError(msg + f"; the data must cover every {unit_dim}")
    return found, [msg + "; left as missing values"]


def apply_gap_policy(table: xr.Dataset, unit_dim: str, what: str,
                     max_gap: int = MAX_GAP_MONTHS, skip_units: list[int] | None = None,
                     masks: dict[str, np.ndarray] | None = None
                     ) -> tuple[xr.Dataset, list[str]]:
    """Fill short gaps of every ``(time, unit)`` variable, refuse long ones (module docstring).

    ``skip_units``: positions of empty units (not checked). ``masks``: the
    :func:`missing_masks` of ``table`` when already computed. Returns the table (filled
    variables loaded into memory, others untouched) and one warning message per filled variable.
    """
    months = np.asarray(table["time"].values)
    skip = set(skip_units or ())
    masks = missing_masks(table, unit_dim) if masks is None else masks
    messages: list[str] = []
    updates: dict[str, xr.DataArray] = {}
    for v, missing in masks.items():
        da = table[v]
        cols = [j for j in np.flatnonzero(missing.any(axis=0)) if int(j) not in skip]
        if not cols:
            continue
        filled_at: list[str] = []
        values = None
        for j in cols:
            runs = nan_runs(missing[:, j])
            for a, b in runs:
                if b - a > max_gap:
                    raise DataError(
                        f"{what}: variable {v!r} is missing for {b - a} months in "
                        f"{_unit_name(table, unit_dim, j)} ({_label(months, a, b)}); gaps longer "
                        f"than {max_gap} months are refused (fill or trim the record)")
            if values is None:
                values = np.array(da.transpose("time", unit_dim).values, dtype=float)
            values[:, j] = fill_short_gaps(values[:, j], max_gap)
            filled_at.append(f"{_unit_name(table, unit_dim, j)}: "
                             + ", ".join(_label(months, a, b) for a, b in runs))
        n = int(sum(b - a for j in cols for a, b in nan_runs(missing[:, j])))
        shown = "; ".join(filled_at[:3]) + (f"; and {len(filled_at) - 3} more"
                                            if len(filled_at) > 3 else "")
        messages.append(f"{what}: interpolated {n} missing month(s) of {v!r} (gaps of at most "
                        f"{max_gap} months) in {shown}")
        filled = xr.DataArray(values, dims=("time", unit_dim), attrs=da.attrs)
        updates[v] = filled.transpose(*da.dims)
    if updates:
        table = table.assign({k: (val.dims, val.values, val.attrs) for k, val in updates.items()})
    return table, messages

