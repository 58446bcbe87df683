"""Month stamps for model calendars and the gap policy."""
from __future__ import annotations

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from permaplug.core.errors import DataError
from permaplug.core.plugins import get_registry
from permaplug.data.calendar import fill_gaps, month_start, to_month_start


def test_month_start_all_calendars():
    for cal in ("noleap", "360_day", "gregorian", "proleptic_gregorian", "all_leap"):
        t = [cftime.datetime(2001, 2, 28 if cal != "360_day" else 30, calendar=cal)]
        assert str(month_start(t)[0])[:10] == "2001-02-01"
    assert str(month_start(np.array(["2001-03-16T12"], dtype="datetime64[ns]"))[0])[:10] \
        == "2001-03-01"


def test_duplicate_month_is_an_error():
    ds = xr.Dataset({"x": ("time", [1.0, 2.0])},
                    coords={"time": pd.to_datetime(["2001-01-01", "2001-01-31"])})
    with pytest.raises(DataError, match=r"several values in the same month \(2001-01\)"):
        to_month_start(ds, what="f.nc")


def _series() -> xr.Dataset:
    time = pd.date_range("2000-01-01", "2004-12-01", freq="MS")
    vals = np.tile(np.arange(12, dtype=float), 5) + np.repeat(np.arange(5) * 100.0, 12)
    ds = xr.Dataset({"x": ("time", vals)}, coords={"time": time})
    return ds.drop_sel(time=[pd.Timestamp("2002-01-01"), pd.Timestamp("2002-06-01")])


def test_seasonal_and_linear_fill():
    s = fill_gaps(_series(), "seasonal")
    assert s.sizes["time"] == 60
    # Januaries of 2000, 2001, 2003, 2004 hold 0, 100, 300, 400 -> mean 200
    assert float(s["x"].sel(time="2002-01-01")) == pytest.approx(200.0)
    assert float(s["x"].sel(time="2002-06-01")) == pytest.approx(205.0)
    assert s.attrs["gap_filled_months"] == "2002-01, 2002-06"
    assert s["gap_filled"].values.sum() == 2
    lin = fill_gaps(_series(), "linear")
    # between 2001-12 (111) and 2002-02 (201)
    assert float(lin["x"].sel(time="2002-01-01")) == pytest.approx(156.0)


def test_flag_and_error():
    f = fill_gaps(_series(), "flag")
    assert np.isnan(float(f["x"].sel(time="2002-01-01")))
    assert f.attrs["gap_months"] == "2002-01, 2002-06" and f.attrs["gap_filled_months"] == ""
    with pytest.raises(DataError, match="missing months 2002-01, 2002-06"):
        fill_gaps(_series(), "error", what="x.nc")
    with pytest.raises(DataError, match="gap policy 'zero'"):
        fill_gaps(_series(), "zero")


def test_sources_are_registered():
    names = get_registry().names("source")
    assert {"era5land", "cmip", "usgs-lithology", "openlandmap", "climate-reanalyzer"} <= \
        set(names)
