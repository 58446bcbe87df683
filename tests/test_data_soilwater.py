"""Dirichlet fit of layer fractions and the split of mrso/mrsos into swvl1..4."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.data.soilwater import THICKNESS_M, dirichlet_mle, fit_dirichlet, split_soil_water

ALPHA = np.array([2.0, 5.0, 10.0, 20.0])


def _obs(n_years: int = 300, seed: int = 1) -> xr.Dataset:
    """swvl1..4 whose layer-water fractions are Dirichlet(ALPHA) in band 0, (ALPHA*3) in band 1."""
    rng = np.random.default_rng(seed)
    time = pd.date_range("1701-01-01", periods=12 * n_years, freq="MS")
    frac = np.stack([rng.dirichlet(ALPHA, time.size), rng.dirichlet(ALPHA * 3, time.size)], 1)
    total = 800.0  # kg m-2
    swvl = frac * total / (THICKNESS_M * 1000.0)
    return xr.Dataset({f"swvl{i + 1}": (("time", "band"), swvl[..., i]) for i in range(4)},
                      coords={"time": time, "band": [0, 1]},
                      attrs={schema.DATA_LABEL_ATTR: "synthetic Dirichlet"})


def test_mle_recovers_alpha():
    rng = np.random.default_rng(0)
    est = dirichlet_mle(rng.dirichlet(ALPHA, 5000))
    np.testing.assert_allclose(est, ALPHA, rtol=0.08)


def test_fit_per_band_and_month():
    params = fit_dirichlet(_obs())
    assert params["alpha"].dims == ("month", "band", "layer")
    assert int(params["n"].sel(month=7, band=0)) == 300
    np.testing.assert_allclose(params["alpha"].sel(band=0).mean("month"), ALPHA, rtol=0.1)
    np.testing.assert_allclose(params["alpha"].sel(band=1).mean("month"), ALPHA * 3, rtol=0.1)
    np.testing.assert_allclose(params["mean_fraction"].sel(band=0, month=1), ALPHA / ALPHA.sum(),
                               atol=0.02)
    assert params.attrs["fitted_on"] == "synthetic Dirichlet"


def _model(mrsos: bool) -> xr.Dataset:
    time = pd.date_range("2050-01-01", periods=24, freq="MS")
    data = {"mrso": (("scenario", "time", "band"), np.full((2, 24, 2), 600.0))}
    if mrsos:
        data["mrsos"] = (("scenario", "time", "band"), np.full((2, 24, 2), 30.0))
    return xr.Dataset(data, coords={"scenario": ["rcp45", "rcp85"], "time": time, "band": [0, 1]})


def test_split_by_mean_fractions_conserves_water():
    params = fit_dirichlet(_obs())
    out = split_soil_water(_model(False), params)
    water = sum(out[f"swvl{i + 1}"] * THICKNESS_M[i] * 1000 for i in range(4))
    np.testing.assert_allclose(water, 600.0)
    frac = params["mean_fraction"].sel(band=0, month=3).values
    got = float(out["swvl3"].sel(scenario="rcp85", band=0, time="2050-03-01"))
    assert got == pytest.approx(600 * frac[2] / (THICKNESS_M[2] * 1000))
    assert out["swvl1"].dims == ("scenario", "time", "band")
    assert out["swvl1"].attrs["units"] == "m3 m-3"


def test_split_with_mrsos_and_seeded_samples():
    params = fit_dirichlet(_obs())
    out = split_soil_water(_model(True), params)
    assert float(out["swvl1"].isel(scenario=0, time=0, band=0)) == pytest.approx(0.3)  # 30/100
    rest = 600.0 - 0.3 * 70.0
    water = sum(out[f"swvl{i + 1}"] * THICKNESS_M[i] * 1000 for i in range(1, 4))
    np.testing.assert_allclose(water, rest)
    a = split_soil_water(_model(True), params, seed=3)
    b = split_soil_water(_model(True), params, seed=3)
    c = split_soil_water(_model(True), params, seed=4)
    xr.testing.assert_equal(a["swvl3"], b["swvl3"])
    assert not np.allclose(a["swvl3"], c["swvl3"])
    np.testing.assert_allclose(sum(a[f"swvl{i + 1}"] * THICKNESS_M[i] * 1000
                                   for i in range(1, 4)), rest)
    assert a["swvl2"].std() > 0  # samples vary


def test_split_errors():
    params = fit_dirichlet(_obs(n_years=3))
    with pytest.raises(DataError, match="no 'mrso'"):
        split_soil_water(_model(False).drop_vars("mrso"), params)
    with pytest.raises(DataError, match="lacks swvl4"):
        fit_dirichlet(_obs(n_years=2).drop_vars("swvl4"))
