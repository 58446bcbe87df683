"""The steps permaplug hands to xsdba: rank-preserving reordering and QDM's moving periods.

Each is compared with an independent, deliberately naive path computed here at test time:
a per-series, per-group Python loop for the reordering; one plain xsdba ``adjust`` per period,
on the period centred on each block (clipped to the series), for the moving periods.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from _naive_correction import naive_periods, naive_reorder
from xsdba import QuantileDeltaMapping as XsdbaQDM

from permaplug.core.errors import ConfigError
from permaplug.correction.xsdba_corrector import reorder_like
from permaplug.plugins.correctors.qdm import QuantileDeltaMapping


def random_block(seed: int, n_years: int = 40, ties: bool = True, gaps: bool = True):
    rng = np.random.default_rng(seed)
    time = pd.date_range("1990-01-01", periods=12 * n_years, freq="MS")
    sim = rng.normal(size=(3, 5, time.size)).round(1 if ties else 12)  # many equal values
    scen = sim + rng.normal(scale=0.5, size=sim.shape)
    if gaps:
        sim[0, 0, 7] = scen[0, 0, 7] = np.nan  # same gap: reordered around it
        scen[1, 2, 30] = np.nan  # gap only in scen: that group is left alone
        sim[2, 4, :] = scen[2, 4, :] = np.nan  # an empty series
    dims = ("scenario", "cell", "time")
    coords = {"time": time}
    return (xr.DataArray(sim, dims=dims, coords=coords),
            xr.DataArray(scen, dims=dims, coords=coords, attrs={"units": "degC"}))


@pytest.mark.parametrize("group", ["time.month", "time"])
@pytest.mark.parametrize("seed", [0, 1])
def test_reorder_matches_a_naive_loop(group, seed):
    sim, scen = random_block(seed)
    months = sim["time"].dt.month.values if group == "time.month" else None
    expect = naive_reorder(sim.values, scen.values, months)
    got = reorder_like(sim, scen, group)
    assert got.dims == scen.dims and got.attrs == scen.attrs
    np.testing.assert_allclose(got.values, expect, atol=1e-12, equal_nan=True)
    assert not np.allclose(got.values, scen.values, equal_nan=True)  # it did reorder


def test_reorder_works_on_dask_and_transposed_input():
    sim, scen = random_block(3)
    expect = naive_reorder(sim.values, scen.values, sim["time"].dt.month.values)
    lazy = reorder_like(sim.transpose("time", "cell", "scenario"),
                        scen.transpose("time", "cell", "scenario").chunk({"cell": 2}),
                        "time.month")
    np.testing.assert_allclose(lazy.transpose(*scen.dims).values, expect, atol=1e-12,
                               equal_nan=True)


@pytest.mark.parametrize(("n_years", "window", "stride"), [
    (100, 30, 10),  # the periods end with the series
    (107, 30, 10),  # one more period ends with the series (a partial last block)
    (61, 20, 4),  # an odd number of strides per period, short blocks
    (45, 15, 15),  # stride == window: no overlap
])
def test_qdm_moving_periods_match_one_adjust_per_block(n_years, window, stride):
    rng = np.random.default_rng(n_years)
    time = pd.date_range("2001-01-01", periods=12 * n_years, freq="MS")
    trend = np.linspace(0, 4, time.size)
    season = 10 * np.cos(2 * np.pi * (time.month.to_numpy() - 7) / 12)
    sim = xr.DataArray(season + trend + rng.normal(size=(2, time.size)), dims=("cell", "time"),
                       coords={"time": time}, attrs={"units": "degC"})
    obs = (sim.isel(time=slice(0, 240)) - 2 + rng.normal(scale=0.3, size=(2, 240)))
    obs = obs.assign_attrs(units="degC")
    corr = QuantileDeltaMapping(period_years=window, stride_years=stride, variables=["t2m"])
    corr.fit(xr.Dataset({"t2m": sim.isel(time=slice(0, 240))}), xr.Dataset({"t2m": obs}))
    adj = corr.fitted["t2m"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expect = naive_periods(adj, sim, window, stride)
        got = corr._adjust(adj, sim)
    np.testing.assert_array_equal(got["time"].values, time.values)
    np.testing.assert_allclose(got.transpose(*expect.dims).values, expect.values, atol=1e-9)
    whole = adj.adjust(sim, interp="nearest", extrapolation="constant")
    assert not np.allclose(got.transpose(*whole.dims).values, whole.values)  # periods matter


def test_qdm_series_not_starting_in_january_keeps_its_months():
    rng = np.random.default_rng(5)
    time = pd.date_range("2001-04-01", "2071-08-01", freq="MS")
    sim = xr.DataArray(rng.normal(size=time.size), dims="time", coords={"time": time},
                       attrs={"units": "degC"})
    cal = sim.sel(time=slice("2002", "2021"))
    corr = QuantileDeltaMapping(variables=["t2m"]).fit(
        xr.Dataset({"t2m": cal}), xr.Dataset({"t2m": (cal + 1).assign_attrs(units="degC")}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = corr._adjust(corr.fitted["t2m"], sim)
    np.testing.assert_array_equal(got["time"].values, time.values)
    assert np.isfinite(got.values).all()
    assert issubclass(corr.adjustment, XsdbaQDM)


@pytest.mark.parametrize(("window", "stride"), [(30, 15), (20, 10), (30, 7)])
def test_qdm_needs_an_odd_number_of_strides_per_period(window, stride):
    with pytest.raises(ConfigError, match="odd multiple of stride_years"):
        QuantileDeltaMapping(period_years=window, stride_years=stride)


def test_xsdba_quantile_kernel_is_cached_with_the_same_results():
    """The correctors make xsdba's quantile kernel a cached numba function (it was compiled
    again in every process, issue 16 item 4); it gives the same quantiles as numpy's linear
    interpolation and the uncached original."""
    from xsdba import nbutils

    from permaplug.correction.xsdba_cache import cache_quantile_kernel
    from permaplug.correction.xsdba_corrector import xsdba_class

    xsdba_class("EmpiricalQuantileMapping")  # the first use of xsdba applies the cache
    func = nbutils._wrapper_quantile1d
    assert type(func._cache).__name__ != "NullCache"
    assert cache_quantile_kernel() is False  # idempotent
    rng = np.random.default_rng(0)
    arr = rng.normal(size=(5, 40))
    arr[1, 3] = np.nan
    q = np.linspace(0.01, 0.99, 7)
    got = nbutils._quantile(arr, q, nreduce=1)
    want = np.stack([np.nanquantile(row, q) for row in arr])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(func(arr, q), func.py_func(arr, q))
