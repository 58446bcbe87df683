"""The corrected scenario inputs a projection used, stored next to it for later steps.

``scenario_inputs.nc`` in ``RUN/projections/<corrector>-<end>/`` holds the bias-corrected
scenario features ``(scenario, time, unit)`` of the projected months (the month after the
historical end through December ``end``), exactly as the networks received them. ``permaplug
explain`` rebuilds a scenario's projection table from it and the run's stored historical table
(:func:`scenario_table`) instead of correcting the scenarios again.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core.atomic import atomic_path
from permaplug.core.errors import DataError
from permaplug.projection.tables import as_datetime64, projection_table, scenario_variables

FILE = "scenario_inputs.nc"


def _netcdf_attrs(attrs: dict) -> dict:
    """Attributes NetCDF can hold (strings and numbers; anything else as its text)."""
    return {str(k): v if isinstance(v, (str, int, float, np.number)) else str(v)
            for k, v in attrs.items() if v is not None}


def save(corrected: xr.Dataset, table: xr.Dataset, end: int, variables: list[str],
         out_dir: Path) -> Path:
    """Write ``variables`` of ``corrected`` for the months after ``table``'s end through
    December ``end`` to ``out_dir/scenario_inputs.nc`` (atomically)."""
    start = pd.DatetimeIndex(table["time"].values)[-1] + pd.offsets.MonthBegin(1)
    ds = as_datetime64(corrected[list(variables)]).sel(time=slice(start, f"{end}-12-01"))
    ds = ds.drop_vars([c for c in ds.coords if ds[c].dtype == object and c != "scenario"])
    ds.attrs = _netcdf_attrs(corrected.attrs)
    for name in ds.data_vars:
        ds[name].attrs = _netcdf_attrs(ds[name].attrs)
    ds.attrs["historical_end"] = f"{start - pd.offsets.MonthBegin(1):%Y-%m}"
    ds.attrs["end"] = int(end)
    path = Path(out_dir) / FILE
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp)
    return path


def load(proj_dir: Path) -> xr.Dataset:
    """The stored scenario inputs of a projection folder (DataError when absent)."""
    path = Path(proj_dir) / FILE
    if not path.exists():
        raise DataError(f"{path}: no stored scenario inputs (project the run again: "
                        "`permaplug project RUN_DIR`)")
    with xr.open_dataset(path) as ds:
        return ds.load()


def scenario_table(run, table: xr.Dataset, stored: xr.Dataset, scenario: str) -> xr.Dataset:
    """The projection table of ``scenario``: ``table`` (the run's historical table) continued
    by the stored corrected inputs through their last month (:func:`projection_table`)."""
    if scenario not in [str(s) for s in stored["scenario"].values]:
        raise DataError(f"scenario {scenario!r} is not in the stored scenario inputs "
                        f"({', '.join(map(str, stored['scenario'].values))})")
    end = int(pd.DatetimeIndex(stored["time"].values)[-1].year)
    return projection_table(table, stored.sel(scenario=scenario, drop=True), end,
                            scenario_variables(run.normaliser.dynamic_names))
