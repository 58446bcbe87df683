"""``qdm``: quantile delta mapping in moving periods (keeps the model's change per quantile)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core.errors import ConfigError
from permaplug.correction.rules import Rule
from permaplug.correction.xsdba_corrector import XsdbaAdjustment, XsdbaCorrector

if TYPE_CHECKING:
    from xsdba.adjustment import TrainAdjust


def pad_to_whole_years(da: xr.DataArray) -> tuple[xr.DataArray, int]:
    """Pad a monthly series with NaN so it starts in January and ends in December.

    Returns the padded array and the number of months added at the start.
    """
    times = pd.DatetimeIndex(da.time.values)
    lead = int(times[0].month - 1)
    tail = int(12 - times[-1].month)
    if lead == 0 and tail == 0:
        return da, 0
    full = pd.date_range(times[0] - pd.DateOffset(months=lead),
                         times[-1] + pd.DateOffset(months=tail), freq="MS")
    return da.reindex(time=full), lead


class QuantileDeltaMapping(XsdbaCorrector):
    """Quantile delta mapping (xsdba ``QuantileDeltaMapping``, Cannon et al. 2015).

    Each value's quantile is taken within its own ``period_years`` (30) period, so every
    quantile keeps the model's change between the calibration period and that period (additive
    for temperatures and fluxes, relative for precipitation). The series is corrected in blocks
    of ``stride_years`` (10), each inside the period centred on it (``period_years=0``: one
    period, the whole series).
    """

    name = "qdm"
    description = "quantile delta mapping in 30-year periods, keeps the change signal (xsdba QDM)"
    adjustment = XsdbaAdjustment("QuantileDeltaMapping")
    fast_kind = "qdm"
    defaults: ClassVar[dict[str, Any]] = {
        **XsdbaCorrector.defaults, "period_years": 30, "stride_years": 10,
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        p, s = int(self.options["period_years"]), int(self.options["stride_years"])
        if p < 0 or s <= 0 or (p and s > p):
            raise ConfigError(f"corrector 'qdm': need 0 < stride_years <= period_years "
                              f"(got period_years={p}, stride_years={s})")
        if p and (p % s or (p // s) % 2 == 0):
            raise ConfigError(f"corrector 'qdm': period_years must be an odd multiple of "
                              f"stride_years, so each block is the centre of its period (got "
                              f"period_years={p}, stride_years={s})")

    def _adjust(self, adj: TrainAdjust, sim: xr.DataArray,
                rule: Rule | None = None) -> xr.DataArray:
        """Adjust in moving periods with xsdba's ``stack_periods`` / ``unstack_periods``.

        The series (padded to whole years) is cut into ``period_years`` periods starting every
        ``stride_years``; each period is adjusted on its own (quantiles within the period) and
        each ``stride_years`` block is taken from the period centred on it (the first and last
        blocks from the first and last periods). When the last complete period does not end
        with the series, one more period, the last ``period_years`` of the series, supplies the
        years after the last period's centre block.

        xsdba rebuilds the unstacked time axis from day offsets, which is exact only in a
        calendar of equal months, so the periods are stacked on a 360-day stand-in of the
        monthly axis (same months, position for position) and the real stamps put back after.
        """
        from xsdba.base import stack_periods, unstack_periods

        window, stride = int(self.options["period_years"]), int(self.options["stride_years"])

        def whole(x: xr.DataArray) -> xr.DataArray:  # one adjust call: fast path or xsdba
            return super(QuantileDeltaMapping, self)._adjust(adj, x, rule)

        if not np.issubdtype(sim.time.dtype, np.datetime64) or window == 0:
            return whole(sim)
        padded, lead = pad_to_whole_years(sim)
        n_years = padded.sizes["time"] // 12
        if n_years <= window:
            return whole(sim)
        real_time = padded["time"]
        months360 = xr.date_range(f"{int(real_time.dt.year[0]):04d}-01-01",
                                  periods=real_time.size, freq="MS", calendar="360_day",
                                  use_cftime=True)
        stacked = stack_periods(padded.assign_coords(time=months360), window=window,
                                stride=stride, freq="YS", dim="period")
        n_periods = stacked.sizes["period"]
        last_start = (n_periods - 1) * stride  # years from the series start
        periods = stacked.drop_vars("period_length")
        if last_start != n_years - window:  # add the period that ends with the series
            tail = padded.isel(time=slice(12 * (n_years - window), None))
            periods = xr.concat([periods, tail.assign_coords(time=stacked["time"])
                                 .expand_dims(period=[periods["period"].values[0]])],
                                dim="period", join="override")
        months = pd.date_range("2000-01-01", periods=stacked.sizes["time"], freq="MS")
        scen = whole(periods.assign_coords(time=months))  # the model's calendar
        scen = scen.assign_coords(time=stacked["time"])
        regular = scen.isel(period=slice(0, n_periods)).assign_coords(period=stacked["period"])
        out = unstack_periods(regular, dim="period")
        n_out = out.sizes["time"]
        if not np.array_equal(out["time"].values, months360[:n_out]):
            raise RuntimeError("xsdba.unstack_periods did not return consecutive months")
        if n_periods < scen.sizes["period"]:
            keep = 12 * (last_start + (window // stride + 1) // 2 * stride)
            end = scen.isel(period=-1, drop=True).isel(
                time=slice(keep - 12 * (n_years - window), None))
            out = xr.concat([out.isel(time=slice(0, keep)), end], dim="time")
        out = out.assign_coords(time=real_time.values[:out.sizes["time"]])
        out = out.drop_vars([c for c in out.coords if c not in padded.coords])
        out.attrs = scen.attrs
        return out.isel(time=slice(lead, lead + sim.sizes["time"]))
