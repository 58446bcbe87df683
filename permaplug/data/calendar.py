"""Model calendars to month-start timestamps, monthly completeness, and the gap policy.

Climate models use cftime calendars (``noleap``/``365_day``, ``360_day``, ``gregorian``...).
Monthly values are re-stamped at the first day of their calendar month (year and month of
the model's own timestamp, which CMIP places mid-month): every model month maps to exactly one
Gregorian month, so none is lost or duplicated whatever the calendar.

Gap policy (months missing from a monthly series, e.g. a month absent between a historical
and a scenario file): ``fill_gaps(..., policy=...)``

* ``"seasonal"`` (default): the mean of the same calendar month over up to ``years`` (5) years
  on each side (keeps the seasonal cycle; linear interpolation would smooth January);
* ``"linear"``: linear interpolation in time between the neighbouring months;
* ``"flag"``: leave NaN;
* ``"error"``: raise :class:`DataError` naming the months.

Whatever the policy, gaps are reported: attributes ``gap_months`` (every gap found,
``"YYYY-MM, ..."``, empty when none) and ``gap_filled_months`` (those filled), and a boolean
coordinate ``gap_filled`` on ``time``.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core.errors import DataError

GAP_POLICIES = ("seasonal", "linear", "flag", "error")


def month_start(times: Iterable, what: str = "time") -> np.ndarray:
    """Month-start ``datetime64[ns]`` of each timestamp (numpy, pandas or cftime, any calendar)."""
    values = list(np.asarray(times, dtype=object).ravel()) if not isinstance(times, np.ndarray) \
        else list(times.ravel())
    out = []
    for t in values:
        if hasattr(t, "year") and hasattr(t, "month"):
            y, m = int(t.year), int(t.month)
        else:
            ts = pd.Timestamp(t)
            y, m = ts.year, ts.month
        out.append(f"{y:04d}-{m:02d}-01")
    return np.array(out, dtype="datetime64[ns]")


def to_month_start(ds: xr.Dataset, dim: str = "time", what: str = "dataset") -> xr.Dataset:
    """Re-stamp ``dim`` at month starts; DataError if two values fall in the same month."""
    new = month_start(ds[dim].values, what)
    dup = pd.Index(new).duplicated()
    if dup.any():
        months = ", ".join(sorted({str(t)[:7] for t in new[dup]})[:5])
        raise DataError(f"{what}: several values in the same month ({months}); "
                        "not a monthly series")
    ds = ds.assign_coords({dim: new})
    ds[dim].attrs = {"standard_name": "time", "long_name": "month (first day)"}
    return ds.sortby(dim)


def full_months(start: np.datetime64 | str, end: np.datetime64 | str) -> np.ndarray:
    """Every month start from ``start`` to ``end`` inclusive."""
    return pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="MS").to_numpy(
        dtype="datetime64[ns]")


def _missing_months(da: xr.DataArray) -> np.ndarray:
    """Months (bool per time step) where ``da`` lacks a value in some unit that has values in
    other months; units never holding a value (e.g. a band without a model cell) are not
    gaps -- the band checks report them."""
    isnull = da.isnull()
    other = [d for d in isnull.dims if d != "time"]
    if not other:
        return np.asarray(isnull.values, dtype=bool)
    empty = isnull.all("time")
    return np.asarray((isnull & ~empty).any(other).values, dtype=bool)


def fill_gaps(ds: xr.Dataset, policy: str = "seasonal", years: int = 5,
              start: str | np.datetime64 | None = None, end: str | np.datetime64 | None = None,
              what: str = "dataset") -> xr.Dataset:
    """Reindex to every month in [start, end] (default: the series' own span) and fill gaps.

    Gaps are months absent from the time axis, and months where a variable lacks a value in a
    unit that has values in other months (a NaN in a file, a fill value); each variable is
    filled only where it is missing. See the module docstring.
    """
    if policy not in GAP_POLICIES:
        raise DataError(f"{what}: gap policy {policy!r}; use one of {', '.join(GAP_POLICIES)}")
    t = ds["time"].values
    months = full_months(start if start is not None else t.min(),
                         end if end is not None else t.max())
    out = ds.reindex(time=months)
    data_vars = [v for v in out.data_vars if "time" in out[v].dims]
    by_var = {v: _missing_months(out[v]) for v in data_vars}
    missing = np.zeros(months.size, dtype=bool)
    for m in by_var.values():
        missing |= m
    gaps = months[missing]
    labels = ", ".join(str(m)[:7] for m in gaps)
    if gaps.size and policy == "error":
        raise DataError(f"{what}: missing months {labels} (gap policy 'error')")
    if gaps.size and policy == "linear":
        out = out.interpolate_na("time", method="linear", use_coordinate=False)
    elif gaps.size and policy == "seasonal":
        years_of = pd.DatetimeIndex(months).year.to_numpy()
        month_of = pd.DatetimeIndex(months).month.to_numpy()
        for v, miss in by_var.items():
            for i in np.flatnonzero(miss):
                near = np.flatnonzero((month_of == month_of[i]) & ~miss
                                      & (np.abs(years_of - years_of[i]) <= years))
                if near.size == 0:
                    continue
                fill = out[v].isel(time=near).mean("time", keep_attrs=True)
                out[v][{"time": i}] = out[v].isel(time=i).fillna(fill)
    still = []
    if gaps.size:
        for v in data_vars:
            left = _missing_months(out[v]) & missing
            still += [str(m)[:7] for m in months[left]]
    still = sorted(set(still))
    if still and policy != "flag":
        raise DataError(f"{what}: could not fill months {', '.join(still)} with policy {policy!r}")
    out = out.assign_coords(gap_filled=("time", missing & (policy != "flag")))
    out.attrs["gap_policy"] = policy
    out.attrs["gap_months"] = labels
    out.attrs["gap_filled_months"] = labels if policy != "flag" else ""
    return out
