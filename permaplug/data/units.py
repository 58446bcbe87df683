"""Unit conversions to the canonical schema (degC, mm per month, J m-2 per month, m3 m-3).

All functions take month-start times so the month length (days) is the real one for the
proleptic Gregorian calendar (times are decoded to it before conversion).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core.errors import DataError

SECONDS_PER_DAY = 86400.0
KELVIN = 273.15

_K = {"K", "kelvin", "Kelvin", "degK", "deg_K"}
_C = {"degC", "C", "deg C", "celsius", "Celsius", "degrees_Celsius", "deg_C", "°C"}
_M = {"m", "metre", "meter", "m of water equivalent", "m of water", "m w.e."}
_MM = {"mm", "kg m-2", "kg m**-2", "kg/m2", "kg m^-2"}
_J = {"J m-2", "J m**-2", "J/m2", "J m^-2"}
_W = {"W m-2", "W m**-2", "W/m2", "W m^-2"}
_FLUX_MASS = {"kg m-2 s-1", "kg m**-2 s**-1", "kg/m2/s", "kg m^-2 s^-1"}
_MM_DAY = {"mm/day", "mm day-1", "mm d-1", "mm/d"}
_VOL = {"m3 m-3", "m**3 m**-3", "m3/m3", "1", "m^3 m^-3", "fraction"}


def days_in_month(time: xr.DataArray | pd.DatetimeIndex | np.ndarray) -> xr.DataArray | np.ndarray:
    """Days in each month of ``time`` (datetime64 values), same shape (xarray stays xarray)."""
    if isinstance(time, xr.DataArray):
        return time.dt.days_in_month
    return pd.DatetimeIndex(np.asarray(time)).days_in_month.to_numpy()


def to_celsius(da: xr.DataArray, what: str) -> xr.DataArray:
    """K or degC -> degC (``what`` names the variable and file in errors)."""
    units = str(da.attrs.get("units", "")).strip()
    if units in _K:
        out = da - KELVIN
    elif units in _C:
        out = da
    else:
        raise DataError(f"{what}: units {units!r} not recognised as a temperature (K or degC)")
    return out.assign_attrs(units="degC")


def to_mm(da: xr.DataArray, what: str) -> xr.DataArray:
    """Water depth in m or mm (kg m-2) -> mm."""
    units = str(da.attrs.get("units", "")).strip()
    if units in _M:
        out = da * 1000.0
    elif units in _MM:
        out = da
    else:
        raise DataError(f"{what}: units {units!r} not recognised as water depth (m or mm)")
    return out.assign_attrs(units="mm")


def check_energy(da: xr.DataArray, what: str) -> xr.DataArray:
    """Accept J m-2 (returned unchanged, units normalised)."""
    units = str(da.attrs.get("units", "")).strip()
    if units not in _J:
        raise DataError(f"{what}: units {units!r}, expected J m-2 (an accumulated energy)")
    return da.assign_attrs(units="J m-2")


def check_volumetric(da: xr.DataArray, what: str) -> xr.DataArray:
    """Accept m3 m-3 (volumetric soil water)."""
    units = str(da.attrs.get("units", "")).strip()
    if units not in _VOL:
        raise DataError(f"{what}: units {units!r}, expected m3 m-3 (volumetric soil water)")
    return da.assign_attrs(units="m3 m-3")


def rate_to_monthly_total(da: xr.DataArray, time: xr.DataArray, what: str) -> xr.DataArray:
    """A monthly-mean rate -> monthly total: W m-2 -> J m-2; kg m-2 s-1 or mm/day -> mm."""
    units = str(da.attrs.get("units", "")).strip()
    seconds = days_in_month(time) * SECONDS_PER_DAY
    if units in _W:
        return (da * seconds).assign_attrs(units="J m-2")
    if units in _FLUX_MASS:
        return (da * seconds).assign_attrs(units="mm")
    if units in _MM_DAY:
        return (da * days_in_month(time)).assign_attrs(units="mm")
    raise DataError(f"{what}: units {units!r} not recognised as a rate (W m-2, kg m-2 s-1, mm/day)")
