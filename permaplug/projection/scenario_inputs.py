"""The model inputs of every projected month, per scenario, stored next to the projection.

For each scenario the projection table (:func:`.tables.projection_table`: the historical table
continued by the bias-corrected scenario) is turned into the run's model inputs (physical
units, every derived feature computed as for the prediction: ``Run.arrays``) and kept from the
first input month of the first projected window through December ``end``. Written to
``scenario_inputs.nc`` (format: :mod:`permaplug.training.model_inputs`), read back by
``permaplug explain`` for the scenario windows, and checked by the extrapolation guard.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.projection.tables import projection_table, scenario_variables
from permaplug.training.model_inputs import FILE, save_model_inputs
from permaplug.training.windows import SeriesArrays

__all__ = ["FILE", "save", "scenario_arrays"]


def _months(arrays: SeriesArrays, keep: np.ndarray) -> SeriesArrays:
    return dataclasses.replace(arrays, time=arrays.time[keep], month=arrays.month[keep],
                               dynamic=arrays.dynamic[:, keep], target=arrays.target[:, keep])


def scenario_arrays(run, table: xr.Dataset, corrected: xr.Dataset, end: int
                    ) -> dict[str, SeriesArrays]:
    """``{scenario: SeriesArrays}``: the inputs of the windows predicting every month from the
    one after ``table``'s end through December ``end`` (months ``first target - window`` ..
    December ``end``). ``corrected``: ``(scenario, time, unit)`` corrected features."""
    window = run.normaliser.window
    start = pd.DatetimeIndex(table["time"].values)[-1] + pd.offsets.MonthBegin(1)
    first = np.datetime64(start - pd.DateOffset(months=window), "ns")
    needed = scenario_variables(run.normaliser.dynamic_names)
    out = {}
    for scen in [str(s) for s in corrected["scenario"].values]:
        ptable = projection_table(table, corrected.sel(scenario=scen, drop=True), end, needed)
        arrays = run.arrays(ptable)
        out[scen] = _months(arrays, arrays.time >= first)
    return out


def save(per_scenario: dict[str, SeriesArrays], table: xr.Dataset, end: int,
         out_dir: Path) -> Path:
    """Write ``out_dir/scenario_inputs.nc``."""
    hist_end = f"{pd.DatetimeIndex(table['time'].values)[-1]:%Y-%m}"
    return save_model_inputs(per_scenario, Path(out_dir) / FILE, hist_end, end)
