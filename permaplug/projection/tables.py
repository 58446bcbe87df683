"""The table a projection runs on: the historical record continued by a corrected scenario.

Through the last historical month (2023-12 for the default data) the table *is* the assembled
reanalysis table; from the next month on, its dynamic features are the bias-corrected scenario
features (``data.features.SCENARIO_FEATURES``), derived features (``year``, ``month_sin``...)
are recomputed over the whole continued table by their feature plugins -- the code that built
them for the historical table -- static features are kept, and soil temperatures are missing
(NaN). The first projected
month's window is therefore exactly the last 24 historical months, and windows roll forward
into the scenario one month at a time.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.data.features import SCENARIO_FEATURES, add_features, derived_names
from permaplug.training.windows import unit_dim

__all__ = ["SCENARIO_FEATURES", "projection_table"]


def projected_months(start: pd.Timestamp, end_year: int) -> pd.DatetimeIndex:
    """Monthly stamps from ``start`` to December of ``end_year`` (DataError when empty)."""
    months = pd.date_range(start, f"{end_year}-12-01", freq="MS")
    if len(months) == 0:
        raise DataError(f"--end {end_year} is before the first projected month "
                        f"{start:%Y-%m}")
    return months


def as_datetime64(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with a ``datetime64`` time axis (monthly stamps of cftime calendars converted)."""
    if np.issubdtype(ds["time"].dtype, np.datetime64):
        return ds
    stamps = pd.DatetimeIndex([f"{t.year:04d}-{t.month:02d}-01" for t in ds["time"].values])
    return ds.assign_coords(time=stamps.values)


def scenario_variables(dynamic_names: list[str] | tuple[str, ...]) -> list[str]:
    """What a scenario must supply for a run with these dynamic inputs: its inputs among
    ``SCENARIO_FEATURES`` plus, for every derived feature, the inputs its plugin declares
    (``Feature.inputs``, followed through features built on features: the signal ``z`` needs
    ``strd``). Calendar features have no inputs and are computed; static ones are kept."""
    from permaplug.data.features import feature_classes

    feats = feature_classes()
    names = [n for n in SCENARIO_FEATURES if n in dynamic_names]
    todo, seen = [n for n in dynamic_names if n in feats], set()
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        for inp in feats[name].inputs:
            if inp in feats:
                todo.append(inp)
            elif inp not in names:
                names.append(inp)
    return names


def check_finite(future: xr.Dataset, corrector: str = "",
                 variables: tuple[str, ...] | list[str] = SCENARIO_FEATURES) -> None:
    """DataError naming the first scenario feature with missing values (NaN) in ``future``."""
    for name in variables:
        bad = np.isnan(future[name].values)
        if bad.any():
            da = future[name]
            pos = np.argwhere(bad)[0]
            where = ", ".join(f"{d} {da[d].values[i]}" if d != "time" else
                              f"{pd.Timestamp(da[d].values[i]):%Y-%m}"
                              for d, i in zip(da.dims, pos, strict=True))
            by = f" (corrector {corrector})" if corrector else ""
            raise DataError(f"corrected scenario{by} has {int(bad.sum())} missing value(s) of "
                            f"{name!r} in the projected months, first at {where}")


def projection_table(hist: xr.Dataset, scenario: xr.Dataset, end: int = 2030,
                     variables: tuple[str, ...] | list[str] = SCENARIO_FEATURES) -> xr.Dataset:
    """``hist`` (time, unit) continued by ``scenario`` (time, unit) through December ``end``.

    ``scenario`` is one scenario's corrected features (no ``scenario`` dim); ``variables``: the
    ones it continues (:func:`scenario_variables` of the run; others are missing after the
    historical end, like the targets). Returns a table with the same variables and dims as
    ``hist``; targets are NaN after the historical end.
    """
    variables = tuple(variables)
    if "scenario" in scenario.dims:
        raise DataError("projection_table takes one scenario: select it first")
    scenario = as_datetime64(scenario)
    udim = unit_dim(hist)
    hist_time = pd.DatetimeIndex(hist["time"].values)
    start = hist_time[-1] + pd.offsets.MonthBegin(1)
    months = projected_months(start, end)
    missing = [v for v in variables if v not in scenario]
    if missing:
        raise DataError(f"corrected scenario has no variable(s) {', '.join(missing)} "
                        "(needed to continue the historical table)")
    have = pd.DatetimeIndex(scenario["time"].values)
    absent = months.difference(have)
    if len(absent):
        raise DataError(f"corrected scenario does not cover {absent[0]:%Y-%m}"
                        f"{'..' + format(absent[-1], '%Y-%m') if len(absent) > 1 else ''} "
                        f"(it spans {have[0]:%Y-%m}..{have[-1]:%Y-%m}); lower --end")
    future = scenario[list(variables)].sel(time=months.values)
    if udim not in future.dims:
        raise DataError(f"corrected scenario has dims ({', '.join(map(str, future.dims))}) but "
                        f"the historical table's spatial dim is {udim!r}")
    future = future.sel({udim: hist[udim].values})
    check_finite(future, str(scenario.attrs.get("bias_correction", "")), variables)
    derived = [n for n in derived_names(hist.data_vars) if "time" in hist[n].dims]
    data_vars = {}
    for name, da in hist.data_vars.items():
        if "time" not in da.dims or name in derived:
            continue
        if name in variables:
            new = future[name].transpose(*[d for d in da.dims if d in future[name].dims])
            new = new.drop_vars([c for c in new.coords if c not in new.dims and c != "time"])
        else:  # targets and anything a scenario cannot supply
            shape = [len(months) if d == "time" else da.sizes[d] for d in da.dims]
            new = xr.DataArray(np.full(shape, np.nan, dtype=float), dims=da.dims,
                               coords={"time": months.values})
        data_vars[name] = new.assign_attrs(da.attrs)
    tail = xr.Dataset(data_vars, coords={"time": months.values})
    timed = [n for n, da in hist.data_vars.items() if "time" in da.dims and n not in derived]
    table = xr.concat([hist[timed], tail], dim="time", data_vars="all", coords="minimal",
                      compat="override", join="outer")
    for name, da in hist.data_vars.items():
        if "time" not in da.dims:
            table[name] = da
    for coord in hist.coords:
        if coord != "time" and coord not in table.coords:
            table = table.assign_coords({coord: hist[coord]})
    if derived:  # the historical table's derived features, recomputed on every month
        table, _ = add_features(table, derived)
        for n in derived:
            da = table[n]
            if set(hist[n].dims) - set(da.dims):
                da = da.broadcast_like(hist[n].isel(time=0, drop=True))
            table[n] = da.transpose(*hist[n].dims).assign_attrs(hist[n].attrs)
        table = table[list(hist.data_vars)]
    table.attrs = dict(hist.attrs)
    hist_label, scen_label = schema.data_label(hist), schema.data_label(scenario)
    table.attrs[schema.DATA_LABEL_ATTR] = (
        hist_label if scen_label in (hist_label, "unknown data") else f"{hist_label} + {scen_label}"
    )
    table.attrs["historical_end"] = f"{hist_time[-1]:%Y-%m}"
    table.attrs["scenario_provenance"] = str(scenario.attrs.get("provenance", ""))
    return table
