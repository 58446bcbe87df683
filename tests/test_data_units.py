"""Unit conversion to the canonical schema (pint via xsdba): every conversion the sources need.

Expected values are computed here by plain arithmetic (K - 273.15, m x 1000, rate x seconds of
the month), an independent path from pint's.
"""
from __future__ import annotations

import dask.array as dsa
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from permaplug.core.errors import DataError
from permaplug.data import units as U
from permaplug.plugins.sources.cmip import convert_variable

TIME = pd.date_range("2000-01-01", periods=26, freq="MS")  # a leap February and a normal one
DAYS = TIME.days_in_month.to_numpy(float)


def series(values, units, dtype="float64"):
    return xr.DataArray(np.asarray(values, dtype=dtype), dims="time", coords={"time": TIME},
                        attrs={"units": units, "long_name": "x"})


RNG = np.random.default_rng(0)
X = RNG.normal(size=TIME.size)


# spellings the previous string tables accepted, each with the arithmetic that gives canonical
CASES = [
    *[("t2m", u, 250 + 30 * X, 250 + 30 * X - 273.15)
      for u in ("K", "kelvin", "Kelvin", "degK", "deg_K")],
    *[("t2m", u, 10 * X, 10 * X)
      for u in ("degC", "C", "deg C", "celsius", "Celsius", "degrees_Celsius", "deg_C", "°C")],
    *[("tp", u, 0.002 + 0.001 * abs(X), (0.002 + 0.001 * abs(X)) * 1000.0)
      for u in ("m", "metre", "meter", "m of water equivalent", "m of water", "m w.e.")],
    *[("tp", u, 50 * abs(X), 50 * abs(X)) for u in ("mm", "kg m-2", "kg m**-2", "kg/m2", "kg m^-2")],
    *[("ssrd", u, 1e7 * abs(X), 1e7 * abs(X)) for u in ("J m-2", "J m**-2", "J/m2", "J m^-2")],
    *[("ssrd", u, 100 * abs(X), 100 * abs(X) * DAYS * 86400.0)
      for u in ("W m-2", "W m**-2", "W/m2", "W m^-2")],
    *[("tp", u, 2e-5 * abs(X), 2e-5 * abs(X) * DAYS * 86400.0)
      for u in ("kg m-2 s-1", "kg m**-2 s**-1", "kg/m2/s", "kg m^-2 s^-1")],
    *[("tp", u, 2 * abs(X), 2 * abs(X) * DAYS) for u in ("mm/day", "mm day-1", "mm d-1", "mm/d")],
    *[("swvl1", u, 0.3 + 0.01 * X, 0.3 + 0.01 * X)
      for u in ("m3 m-3", "m**3 m**-3", "m3/m3", "1", "m^3 m^-3", "fraction")],
    ("swvl1", "%", 30 + X, (30 + X) / 100.0),
    ("mrso", "mm", 300 + X, 300 + X),
    ("mrso", "m", 0.3 + 0.001 * X, (0.3 + 0.001 * X) * 1000.0),
]


@pytest.mark.parametrize(("name", "units", "values", "expect"), CASES,
                         ids=[f"{c[0]}[{c[1]}]" for c in CASES])
def test_to_canonical_matches_plain_arithmetic(name, units, values, expect):
    out = U.to_canonical(series(values, units), name, "file.nc: x")
    np.testing.assert_allclose(out.values, expect, rtol=1e-12, atol=1e-6)
    assert out.attrs["units"] == U.canonical_units(name)
    assert out.attrs["long_name"] == "x"  # other attributes kept


@pytest.mark.parametrize(("name", "units"), [
    ("t2m", "mm"), ("t2m", "W m-2"), ("t2m", "degrees"), ("tp", "K"), ("tp", "J m-2"),
    ("ssrd", "mm"), ("swvl1", "K"), ("t2m", ""), ("t2m", "not a unit"), ("swvl1", "mm/day"),
    ("t2m", "K s-1"),  # a rate of a non-accumulated variable is not converted
])
def test_wrong_units_name_the_variable(name, units):
    with pytest.raises(DataError, match=rf"^file\.nc: {name}: ") as err:
        U.to_canonical(series(X, units), name, f"file.nc: {name}")
    assert U.canonical_units(name) in str(err.value)


def test_unknown_variable_is_a_data_error():
    with pytest.raises(DataError, match="'nonsense'"):
        U.to_canonical(series(X, "K"), "nonsense")


def test_float32_and_dask_are_kept():
    da = series(260 + X, "K", "float32").chunk({"time": 5})
    out = U.to_canonical(da, "skt")
    assert isinstance(out.data, dsa.Array) and out.dtype == np.float32
    np.testing.assert_array_equal(out.values, da.values - np.float32(273.15))


def test_nan_stays_nan():
    v = 250 + X
    v[3] = np.nan
    out = U.to_canonical(series(v, "K"), "t2m")
    assert np.isnan(out.values[3]) and np.isfinite(np.delete(out.values, 3)).all()


def test_normalise_gives_the_cf_spelling():
    assert U.normalise("kg m**-2 s**-1") == "kg m-2 s-1"
    assert U.normalise("°C") == U.normalise("degC") == "degC"
    assert U.normalise("W/m2") == "W m-2"
    for bad in ("bananas", "m(", "1/0", "kg m-2 s-", "()"):
        with pytest.raises(ValueError):
            U.normalise(bad)


@pytest.mark.parametrize(("cmip", "units", "factor", "sign"), [
    ("tas", "K", None, 1), ("pr", "kg m-2 s-1", "s", 1), ("rsds", "W m-2", "s", 1),
    ("hfls", "W m-2", "s", -1), ("hfss", "W m-2", "s", -1), ("mrso", "kg m-2", 1.0, 1),
])
def test_cmip_conversion_keeps_sign_flips(cmip, units, factor, sign):
    """CMIP's upward-positive turbulent fluxes change sign; everything else keeps it."""
    raw = series(100 + 20 * X, units)
    out = convert_variable(cmip, raw, "model.nc")
    if factor is None:
        expect = raw.values - 273.15
    elif factor == "s":
        expect = sign * raw.values * DAYS * 86400.0
    else:
        expect = raw.values
    np.testing.assert_allclose(out.values, expect, rtol=1e-12, atol=1e-6)


def test_cmip_conversion_rejects_mislabelled_temperature():
    with pytest.raises(DataError, match="model.nc: tas"):
        convert_variable("tas", series(X, "kg m-2 s-1"), "model.nc")


@pytest.mark.parametrize("key", sorted(U.KNOWN_AFFINE))
def test_known_conversions_are_pints(key):
    """The table that spares reading ERA5-Land files the pint registry gives pint's numbers."""
    assert U.KNOWN_AFFINE[key] == U._pint_affine(*key)


def test_reading_era5land_units_does_not_import_xsdba():
    import subprocess
    import sys

    code = ("import sys, numpy as np, pandas as pd, xarray as xr\n"
            "from permaplug.data import units as U\n"
            "t = pd.date_range('2001-01-01', periods=3, freq='MS')\n"
            "for name, units in [('t2m', 'K'), ('tp', 'm'), ('sf', 'm of water equivalent'),\n"
            "                    ('ssrd', 'J m**-2'), ('swvl1', 'm**3 m**-3')]:\n"
            "    da = xr.DataArray(np.ones(3), dims='time', coords={'time': t},\n"
            "                      attrs={'units': units})\n"
            "    U.to_canonical(da, name)\n"
            "print('xsdba' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip().splitlines()[-1] == "False"
