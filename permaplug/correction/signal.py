"""The scenario signal z (paper eq. 2.1-2.2).

For each input window (the ``window`` months ending at month t, inclusive) the mean downward
thermal radiation ``strd`` is standardised with the mean and standard deviation of the same
window means over a historical period, ``z~ = (mean - mu) / sigma``, and signed-squared,
``z = |z~| z~``. History and scenarios use the same historical statistics, so z tells the model
how far a window's radiative forcing lies outside the climate it was trained on.

Convention: the window ending at month t (inputs t-23..t) predicts month t+1 and uses z at t.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import xarray as xr

from permaplug.core.errors import DataError
from permaplug.core.schema import DATA_LABEL_ATTR, WINDOW, cf_attrs


@dataclass
class SignalStats:
    """Historical mean and standard deviation of the window-mean ``strd`` (J m-2 per month)."""

    mean: float
    std: float
    window: int = WINDOW

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SignalStats:
        try:
            return cls(mean=float(d["mean"]), std=float(d["std"]), window=int(d["window"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"signal statistics need numeric 'mean', 'std', 'window': {exc}") from exc


def _check(strd: xr.DataArray, window: int) -> None:
    if "time" not in strd.dims:
        raise DataError(f"strd has no 'time' dimension (dims: {strd.dims})")
    if int(window) < 1:
        raise DataError(f"signal window must be >= 1 month (got {window})")


def window_mean(strd: xr.DataArray, window: int = WINDOW) -> xr.DataArray:
    """Trailing mean of ``strd`` over the ``window`` months ending at t (inclusive).

    Same dims as ``strd`` (e.g. ``(time, band)`` or ``(scenario, time, band)``); NaN for the
    first ``window - 1`` months and for any window with a missing month.
    """
    _check(strd, window)
    out = strd.rolling(time=int(window), min_periods=int(window)).mean()
    out.attrs = dict(strd.attrs)
    return out


def fit_signal(strd: xr.DataArray, years: tuple[int, int], window: int = WINDOW) -> SignalStats:
    """Mean and standard deviation (ddof 0, pooled over every other dim) of the window means
    whose end month lies in ``years`` (inclusive)."""
    wm = window_mean(strd, window)
    year = wm["time"].dt.year
    sel = wm.where((year >= years[0]) & (year <= years[1]))
    values = np.asarray(sel.values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise DataError(f"strd has no complete {window}-month window ending in "
                        f"{years[0]}-{years[1]}")
    std = float(values.std())
    if not std > 0:
        raise DataError(f"strd window means over {years[0]}-{years[1]} have zero spread: "
                        "cannot standardise the scenario signal")
    return SignalStats(mean=float(values.mean()), std=std, window=int(window))


def scenario_signal(strd: xr.DataArray, stats: SignalStats) -> xr.DataArray:
    """z = |z~| z~ with z~ = (window_mean(strd) - mean) / std; dims of ``strd``; unitless."""
    zt = (window_mean(strd, stats.window) - stats.mean) / stats.std
    z = abs(zt) * zt
    z.name = "z"
    z.attrs = {**cf_attrs("z"), "signal_mean": stats.mean, "signal_std": stats.std,
               "signal_window": stats.window}
    if DATA_LABEL_ATTR in strd.attrs:
        z.attrs[DATA_LABEL_ATTR] = strd.attrs[DATA_LABEL_ATTR]
    return z
