"""Derived forcing features from t2m and tp (snowfall split, degree-day snowpack, degree-days,
running means): values on hand-made series, registration, and the toolik run that uses them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from permaplug.data.features import add_features, feature_classes
from permaplug.plugins.features import forcing

NAMES = ("snowfall_t", "tdd", "fdd", "snowpack_dd", "t2m_mean12", "t2m_mean24")


def _ds(t2m, tp, start="2001-01"):
    time = pd.date_range(start, periods=len(t2m), freq="MS")
    return xr.Dataset({"t2m": (("time", "site"), np.asarray(t2m, float)[:, None]),
                       "tp": (("time", "site"), np.asarray(tp, float)[:, None])},
                      coords={"time": time, "site": [0]})


def test_forcing_features_are_registered():
    feats = feature_classes()
    for name in NAMES:
        assert name in feats and feats[name].inputs[0] == "t2m"


def test_snowfall_split_and_degree_days():
    ds = _ds([-10.0, -1.0, 1.0, 3.0, 10.0], [10.0] * 5)
    sf = forcing.SnowfallSplit().compute(ds).values[:, 0]
    np.testing.assert_allclose(sf, [10.0, 10.0, 5.0, 0.0, 0.0])
    tdd = forcing.ThawingDegreeDays().compute(ds).values[:, 0]
    fdd = forcing.FreezingDegreeDays().compute(ds).values[:, 0]
    np.testing.assert_allclose(tdd, [0, 0, 31.0, 90.0, 310.0])  # Jan..May 2001: 31 28 31 30 31
    np.testing.assert_allclose(fdd, [310.0, 28.0, 0, 0, 0])


def test_snowpack_fills_in_winter_and_melts_with_degree_days():
    # Sep..Mar below -1 degC: all precipitation is snow; April at +0.5 degC: 62.5 % snow and
    # 15 thawing degree days (45 mm melt); May at +8 degC (248 degC day) melts the rest
    ds = _ds([-5, -15, -20, -25, -25, -20, -10, 0.5, 8], [20] * 9, start="2000-09")
    swe = forcing.DegreeDaySnowpack().compute(ds).values[:, 0]
    np.testing.assert_allclose(swe, [20, 40, 60, 80, 100, 120, 140, 140 + 12.5 - 45, 0])


def test_running_means_need_their_whole_window():
    ds = _ds(np.arange(30.0), np.zeros(30))
    m12 = forcing.T2mMean12().compute(ds).values[:, 0]
    assert np.isnan(m12[:11]).all() and m12[11] == pytest.approx(5.5)
    m24 = forcing.T2mMean24().compute(ds).values[:, 0]
    assert np.isnan(m24[:23]).all() and m24[29] == pytest.approx(np.arange(6, 30).mean())


def test_add_features_computes_them_for_a_table():
    ds = _ds([-10.0] * 30, [5.0] * 30)
    out, states = add_features(ds, list(NAMES), broadcast=True)
    assert states == {}
    assert all(out[n].dims == ("time", "site") for n in NAMES)
    assert float(out["snowpack_dd"][-1, 0]) == pytest.approx(150.0)
