"""Calendar features of the paper: ``year``, ``month_sin``, ``month_cos`` (no inputs).

Each depends only on the monthly time stamps, so a scenario month gets exactly the value the
same month would have in the historical table.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import xarray as xr

from permaplug.core.feature import Feature


def _angle(ds: xr.Dataset) -> xr.DataArray:
    """2 pi month / 12 of each time stamp ``[T]``."""
    return 2 * np.pi * ds["time"].dt.month.astype(float) / 12.0


class Year(Feature):
    """The calendar year as a number (float), dims ``(time,)``."""

    name: ClassVar[str] = "year"
    units: ClassVar[str] = "1"
    long_name: ClassVar[str] = "calendar year"

    def compute(self, ds: xr.Dataset) -> xr.DataArray:
        return ds["time"].dt.year.astype(float)


class MonthSin(Feature):
    """sin(2 pi month / 12), dims ``(time,)``."""

    name: ClassVar[str] = "month_sin"
    units: ClassVar[str] = "1"
    long_name: ClassVar[str] = "sin(2 pi month / 12)"

    def compute(self, ds: xr.Dataset) -> xr.DataArray:
        return np.sin(_angle(ds))


class MonthCos(Feature):
    """cos(2 pi month / 12), dims ``(time,)``."""

    name: ClassVar[str] = "month_cos"
    units: ClassVar[str] = "1"
    long_name: ClassVar[str] = "cos(2 pi month / 12)"

    def compute(self, ds: xr.Dataset) -> xr.DataArray:
        return np.cos(_angle(ds))
