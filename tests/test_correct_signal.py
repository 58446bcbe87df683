"""The scenario signal z (paper eq. 2.1-2.2): window means, historical statistics, |z~| z~."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from permaplug.core.errors import DataError
from permaplug.correction.signal import SignalStats, fit_signal, scenario_signal, window_mean


def _strd(values: np.ndarray, start: str = "2001-01-01") -> xr.DataArray:
    t = pd.date_range(start, periods=values.shape[0], freq="MS")
    dims = ("time",) if values.ndim == 1 else ("time", "band")
    coords = {"time": t} if values.ndim == 1 else {"time": t, "band": np.arange(values.shape[1])}
    return xr.DataArray(values, dims=dims, coords=coords,
                        attrs={"units": "J m-2", "permaplug_data": "synthetic test series"})


def test_window_mean_is_trailing_and_inclusive():
    da = _strd(np.arange(60, dtype=float))
    wm = window_mean(da, 24)
    assert np.isnan(wm.values[:23]).all()
    # the window ending at t holds t-23..t: mean of a ramp = t - 11.5
    np.testing.assert_allclose(wm.values[23:], np.arange(23, 60) - 11.5)
    assert wm.attrs["units"] == "J m-2"


def test_window_mean_nan_month_spoils_its_windows():
    v = np.ones(40)
    v[30] = np.nan
    wm = window_mean(_strd(v), 12).values
    assert np.isnan(wm[30:40]).all() and np.isfinite(wm[11:30]).all()


def test_fit_signal_uses_windows_ending_in_the_years():
    rng = np.random.default_rng(1)
    v = rng.normal(1e8, 5e6, size=(12 * 10, 3))  # 2001..2010, 3 bands
    da = _strd(v)
    stats = fit_signal(da, (2004, 2008), window=24)
    wm = pd.DataFrame(v).rolling(24).mean().to_numpy()
    years = da.time.dt.year.values
    ref = wm[(years >= 2004) & (years <= 2008)]
    assert stats.mean == pytest.approx(ref.mean(), rel=1e-12)
    assert stats.std == pytest.approx(ref.std(), rel=1e-12)
    assert stats.window == 24


def test_scenario_signal_is_signed_square_of_standardised_window_mean():
    v = np.linspace(0.0, 1.0, 48)
    da = _strd(v)
    stats = SignalStats(mean=0.4, std=0.1, window=12)
    z = scenario_signal(da, stats)
    zt = (pd.Series(v).rolling(12).mean().to_numpy() - 0.4) / 0.1
    np.testing.assert_allclose(z.values, np.abs(zt) * zt, equal_nan=True)
    # below the historical mean z is negative, above it positive, and it grows quadratically
    finite = np.isfinite(zt)
    assert (np.sign(z.values[finite]) == np.sign(zt[finite])).all()
    assert z.name == "z" and z.attrs["units"] == "1"
    assert z.attrs["permaplug_data"] == "synthetic test series"


def test_signal_same_for_history_and_scenarios_with_extra_dims():
    rng = np.random.default_rng(2)
    hist = _strd(rng.normal(1e8, 4e6, size=(120, 2)))
    stats = fit_signal(hist, (2001, 2010))
    scen = xr.concat([hist, hist + 1e7], dim=pd.Index(["rcp26", "rcp85"], name="scenario"))
    z = scenario_signal(scen, stats)
    assert z.dims == ("scenario", "time", "band")
    np.testing.assert_allclose(z.sel(scenario="rcp26").values, scenario_signal(hist, stats).values)
    # a warmer (more radiation) scenario has a larger signal everywhere it is defined
    d = (z.sel(scenario="rcp85") - z.sel(scenario="rcp26")).values
    assert (d[np.isfinite(d)] > 0).all()


def test_signal_stats_round_trip_and_errors():
    s = SignalStats(mean=1.5e8, std=2.0e6, window=24)
    assert SignalStats.from_dict(s.to_dict()) == s
    with pytest.raises(DataError, match="mean"):
        SignalStats.from_dict({"std": 1.0, "window": 24})
    flat = _strd(np.full(60, 3.0))
    with pytest.raises(DataError, match="zero spread"):
        fit_signal(flat, (2001, 2005))
    with pytest.raises(DataError, match="no complete 24-month window"):
        fit_signal(flat, (2001, 2001))
    with pytest.raises(DataError, match="window must be >= 1"):
        window_mean(flat, 0)
