"""``qdm``: quantile delta mapping in moving periods (keeps the model's change per quantile)."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr
from xsdba import QuantileDeltaMapping as XsdbaQDM
from xsdba.adjustment import TrainAdjust

from permaplug.core.errors import ConfigError
from permaplug.correction.xsdba_corrector import XsdbaCorrector


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


def period_windows(n_years: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """Blocks of ``stride`` years, each corrected inside a ``window``-year period around it.

    Returns ``(block_start, block_stop, window_start)`` in years from the series start; windows
    are centred on their block and shifted to stay inside the series.
    """
    out = []
    for b0 in range(0, n_years, stride):
        b1 = min(b0 + stride, n_years)
        w0 = (b0 + b1) // 2 - window // 2
        out.append((b0, b1, int(np.clip(w0, 0, n_years - window))))
    return out


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
    adjustment = XsdbaQDM
    defaults: ClassVar[dict[str, Any]] = {
        **XsdbaCorrector.defaults, "period_years": 30, "stride_years": 10,
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        p, s = int(self.options["period_years"]), int(self.options["stride_years"])
        if p < 0 or s <= 0 or (p and s > p):
            raise ConfigError(f"corrector 'qdm': need 0 < stride_years <= period_years "
                              f"(got period_years={p}, stride_years={s})")

    def _adjust(self, adj: TrainAdjust, sim: xr.DataArray) -> xr.DataArray:
        window, stride = int(self.options["period_years"]), int(self.options["stride_years"])
        kw = {"interp": self.options["interp"], "extrapolation": self.options["extrapolation"]}
        if not np.issubdtype(sim.time.dtype, np.datetime64) or window == 0:
            return adj.adjust(sim, **kw)
        padded, lead = pad_to_whole_years(sim)
        n_years = padded.sizes["time"] // 12
        if n_years <= window:
            return adj.adjust(sim, **kw)
        blocks = period_windows(n_years, window, stride)
        starts = sorted({w0 for _, _, w0 in blocks})
        fake_time = padded.time.isel(time=slice(0, 12 * window))
        stacked = xr.concat(
            [padded.isel(time=slice(12 * w0, 12 * (w0 + window))).assign_coords(time=fake_time)
             for w0 in starts],
            dim=pd.Index(starts, name="_period"),
        )
        scen = adj.adjust(stacked, **kw)
        pieces = []
        for b0, b1, w0 in blocks:
            piece = scen.sel(_period=w0).isel(time=slice(12 * (b0 - w0), 12 * (b1 - w0)))
            pieces.append(piece.drop_vars("_period").assign_coords(
                time=padded.time.isel(time=slice(12 * b0, 12 * b1))))
        out = xr.concat(pieces, dim="time")
        out.attrs = scen.attrs
        return out.isel(time=slice(lead, lead + sim.sizes["time"]))
