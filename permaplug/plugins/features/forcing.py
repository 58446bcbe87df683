"""Derived forcing features from 2 m temperature and precipitation (monthly point or band
forcing): snowfall split by temperature, a degree-day snowpack, thawing and freezing
degree-days, 12- and 24-month running means of t2m. They need only ``t2m`` (degC, monthly mean)
and ``tp`` (mm per month), so every source gives them, the Climate Reanalyzer point forcing
included; a later recipe (``physical``) builds on them.

Rules (monthly means, documented approximations):

* ``snowfall_t``: ``tp`` x snow fraction, the fraction 1 at ``t2m`` <= -1 degC, 0 at >= +3 degC,
  linear between (mm per month);
* ``tdd`` / ``fdd``: days in the month x max(t2m, 0) / max(-t2m, 0) (degC day);
* ``snowpack_dd``: snow water equivalent at the end of the month (mm), a bucket filled by
  ``snowfall_t`` and emptied by melt = 3 mm per degC day x ``tdd``, starting empty at the first
  month of the table (so the first winter is underestimated when a table starts in winter);
* ``t2m_mean12`` / ``t2m_mean24``: trailing 12 / 24-month means of t2m (degC); NaN until
  12 / 24 months exist (windows using them are dropped and counted).

Select them with ``permaplug run --features`` or a catalog's ``run_defaults: features``; the
bundled ``toolik`` catalog selects the set that scored best on its validation months
(``benchmarks/bench_toolik_features.py``, docs/sites.md).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import xarray as xr

from permaplug.core.feature import Feature

RAIN_ABOVE_C = 3.0
"""Monthly mean t2m (degC) at and above which all precipitation is rain."""
SNOW_BELOW_C = -1.0
"""Monthly mean t2m (degC) at and below which all precipitation is snow."""
DEGREE_DAY_FACTOR = 3.0
"""Snow melt per thawing degree day (mm w.e. per degC day); typical tundra values are 2-5."""


def snow_fraction(t2m: xr.DataArray) -> xr.DataArray:
    """Share of precipitation falling as snow (0..1) from the monthly mean t2m (degC)."""
    return ((RAIN_ABOVE_C - t2m) / (RAIN_ABOVE_C - SNOW_BELOW_C)).clip(0.0, 1.0)


def thawing_degree_days(t2m: xr.DataArray) -> xr.DataArray:
    """days in the month x max(t2m, 0) (degC day)."""
    return t2m.clip(min=0.0) * t2m["time"].dt.days_in_month


class SnowfallSplit(Feature):
    """Snowfall (mm w.e. per month) = tp x the snow fraction of the month's mean t2m."""

    name: ClassVar[str] = "snowfall_t"
    units: ClassVar[str] = "mm"
    long_name: ClassVar[str] = ("snowfall, water equivalent, from total precipitation split by "
                                "the monthly mean 2 m temperature (monthly total)")
    inputs: ClassVar[tuple[str, ...]] = ("t2m", "tp")

    def compute(self, ds: xr.Dataset) -> xr.DataArray:
        return ds["tp"] * snow_fraction(ds["t2m"])


class ThawingDegreeDays(Feature):
    """Thawing degree days of the month (degC day)."""

    name: ClassVar[str] = "tdd"
    units: ClassVar[str] = "degC day"
    long_name: ClassVar[str] = "thawing degree days of the month, days x max(t2m, 0)"
    inputs: ClassVar[tuple[str, ...]] = ("t2m",)

    def compute(self, ds: xr.Dataset) -> xr.DataArray:
        return thawing_degree_days(ds["t2m"])


class FreezingDegreeDays(Feature):
    """Freezing degree days of the month (degC day, positive)."""

    name: ClassVar[str] = "fdd"
    units: ClassVar[str] = "degC day"
    long_name: ClassVar[str] = "freezing degree days of the month, days x max(-t2m, 0)"
    inputs: ClassVar[tuple[str, ...]] = ("t2m",)

    def compute(self, ds: xr.Dataset) -> xr.DataArray:
        return (-ds["t2m"]).clip(min=0.0) * ds["time"].dt.days_in_month


class DegreeDaySnowpack(Feature):
    """Snow water equivalent at the end of each month (mm): a bucket filled by the snowfall
    split and emptied by degree-day melt, starting empty at the table's first month."""

    name: ClassVar[str] = "snowpack_dd"
    units: ClassVar[str] = "mm"
    long_name: ClassVar[str] = ("snow water equivalent at the end of the month, degree-day "
                                "bucket model")
    inputs: ClassVar[tuple[str, ...]] = ("t2m", "tp")

    def compute(self, ds: xr.Dataset) -> xr.DataArray:
        snow = (ds["tp"] * snow_fraction(ds["t2m"])).transpose("time", ...)
        melt = (DEGREE_DAY_FACTOR * thawing_degree_days(ds["t2m"])).transpose("time", ...)
        s, m = np.asarray(snow.values, float), np.asarray(melt.values, float)
        out = np.empty_like(s)
        pack = np.zeros(s.shape[1:])
        for i in range(s.shape[0]):
            pack = np.maximum(pack + np.nan_to_num(s[i]) - np.nan_to_num(m[i]), 0.0)
            out[i] = np.where(np.isfinite(s[i]) & np.isfinite(m[i]), pack, np.nan)
        return snow.copy(data=out)


class _RunningMean(Feature):
    months: ClassVar[int] = 12
    units: ClassVar[str] = "degC"
    inputs: ClassVar[tuple[str, ...]] = ("t2m",)

    def compute(self, ds: xr.Dataset) -> xr.DataArray:
        return ds["t2m"].rolling(time=self.months, min_periods=self.months).mean()


class T2mMean12(_RunningMean):
    """Trailing 12-month mean of t2m (degC; NaN for the first 11 months)."""

    name: ClassVar[str] = "t2m_mean12"
    months: ClassVar[int] = 12
    long_name: ClassVar[str] = "2 m temperature, mean of the 12 months ending with this one"


class T2mMean24(_RunningMean):
    """Trailing 24-month mean of t2m (degC; NaN for the first 23 months)."""

    name: ClassVar[str] = "t2m_mean24"
    months: ClassVar[int] = 24
    long_name: ClassVar[str] = "2 m temperature, mean of the 24 months ending with this one"


FORCING_FEATURES = (SnowfallSplit, ThawingDegreeDays, FreezingDegreeDays, DegreeDaySnowpack,
                    T2mMean12, T2mMean24)
