"""The demo's ERA5-Land writer: temperatures rounded as netCDF4's ``least_significant_digit``
would (done by permaplug in place, issue 16), a year of months per chunk."""
from __future__ import annotations

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from permaplug.demo import formats


@pytest.mark.parametrize("digits", [1, 2, 3])
def test_quantize_equals_the_netcdf4_librarys_rounding(tmp_path, digits):
    rng = np.random.default_rng(digits)
    values = np.concatenate([rng.normal(260.0, 30.0, 5000), rng.normal(0.0, 1e-3, 500),
                             [np.nan, 0.0, -0.0, 0.5 / 1024, 1.5 / 1024, -2.5 / 1024, 3e5]])
    values = values.astype(np.float32)
    path = tmp_path / "lib.nc"
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("n", values.size)
        var = ds.createVariable("x", "f4", ("n",), least_significant_digit=digits)
        var[:] = values
    with netCDF4.Dataset(path) as ds:
        by_library = ds["x"][:].filled(np.nan)
    ours = formats.quantize(values.copy(), digits)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, by_library)
    assert not np.array_equal(ours, values, equal_nan=True)  # it did round


def test_chunks_hold_whole_years_of_about_a_megabyte():
    assert formats._months_per_chunk(1200, 96 * 215) == 12  # the 16,001-cell grid
    assert formats._months_per_chunk(1200, 24 * 54) == 12 * 17  # the default 0.5 deg grid
    assert formats._months_per_chunk(30, 6) == 30  # never more than the series
    assert formats._months_per_chunk(1200, 10**6) == 12  # at least a year


def test_era5land_file_rounds_the_temperatures_and_chunks_by_year(tmp_path):
    time = pd.date_range("2001-01-01", periods=30, freq="MS")
    lat, lon = np.array([65.5, 65.0, 64.5]), np.array([-150.0, -149.5])
    rng = np.random.default_rng(0)
    shape = (time.size, lat.size, lon.size)
    fields = {"t2m": rng.normal(-5.0, 10.0, shape), "stl1": rng.normal(-2.0, 5.0, shape),
              "swvl1": rng.uniform(0.0, 0.4, shape)}
    path = formats.write_era5land(tmp_path / "e.nc", time, lat, lon, fields,
                                  np.ones((lat.size, lon.size), bool), "test")
    with netCDF4.Dataset(path) as ds:
        for name in fields:
            assert ds[name].chunking() == [time.size, lat.size, lon.size], name  # tiny grid
            assert ds[name].filters()["zlib"] and ds[name].filters()["shuffle"]
        assert ds["t2m"].getncattr("least_significant_digit") == 3
        assert "least_significant_digit" not in ds["swvl1"].ncattrs()
    with xr.open_dataset(path) as ds:
        for name in ("t2m", "stl1"):
            kelvin = (fields[name] + 273.15).astype(np.float32)
            np.testing.assert_array_equal(ds[name].values, formats.quantize(kelvin, 3))
            assert np.all(np.abs(ds[name].values - kelvin) <= 0.5 / 1024 + 1e-4)
        np.testing.assert_array_equal(ds["swvl1"].values, fields["swvl1"].astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unit_conversions_round_once_into_float32(tmp_path, dtype):
    """Each variable is converted at its input's precision and rounded once to float32: the
    numbers of ``(converted).astype(float32)`` (the writer's former two-step form)."""
    time = pd.date_range("2001-01-01", periods=14, freq="MS")
    lat, lon = np.array([65.5, 65.0]), np.array([-150.0, -149.5, -149.0])
    rng = np.random.default_rng(1)
    shape = (time.size, lat.size, lon.size)
    fields = {name: rng.gamma(2.0, 40.0, shape).astype(dtype)
              for name in ("tp", "sf", "sd", "ssrd", "slhf", "swvl2")}
    fields["skt"] = rng.normal(-3.0, 9.0, shape).astype(dtype)
    path = formats.write_era5land(tmp_path / "u.nc", time, lat, lon, fields,
                                  np.ones((lat.size, lon.size), bool), "test")
    days = time.days_in_month.to_numpy(float)[:, None, None]
    expected = {"tp": fields["tp"] / days / 1000.0, "sf": fields["sf"] / days / 1000.0,
                "sd": fields["sd"] / 1000.0, "ssrd": fields["ssrd"] * 86400.0,
                "slhf": fields["slhf"] * 86400.0, "swvl2": fields["swvl2"]}
    with xr.open_dataset(path) as ds:
        for name, values in expected.items():
            np.testing.assert_array_equal(ds[name].values, values.astype(np.float32),
                                          err_msg=name)
        skt = formats.quantize((fields["skt"] + 273.15).astype(np.float32), 3)
        np.testing.assert_array_equal(ds["skt"].values, skt)
