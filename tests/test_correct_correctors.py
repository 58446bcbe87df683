"""Corrector plugins qm, qdm, dqm, none on synthetic series with known biases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from permaplug.core.errors import ConfigError, DataError
from permaplug.core.plugins import get_corrector, get_registry
from permaplug.correction.evaluate import ks_distance

SCEN = ("rcp26", "rcp85")
VARS = ("t2m", "tp", "swvl1", "strd")
UNITS = {"t2m": "degC", "tp": "mm", "swvl1": "m3 m-3", "strd": "J m-2"}
CAL = slice("2001-01-01", "2023-12-31")


def _series(rng, t, n, var, model: bool, warming: float) -> np.ndarray:
    """One (time, unit) series; the model is biased in mean and spread."""
    month = t.month.values[:, None]
    dyear = (t.year.values[:, None] - 2001) / 100.0
    if var == "t2m":
        seas = -15 * np.cos(2 * np.pi * (month - 1) / 12) + np.arange(n)[None, :]
        return seas + (4.0 if model else 0.0) + warming * dyear + \
            (3.0 if model else 2.0) * rng.standard_normal((t.size, n))
    if var == "tp":
        x = rng.gamma(2.0, (20.0 if model else 30.0) * (1 + warming * dyear / 10), (t.size, n))
        return np.where(x < (5.0 if model else 2.0), 0.0, x)
    if var == "swvl1":
        base = (0.55 if model else 0.30) + 0.1 * np.sin(2 * np.pi * month / 12)
        return np.clip(base + warming * dyear / 20 + 0.05 * rng.standard_normal((t.size, n)), 0, 1)
    seas = 6e8 - 3e8 * np.cos(2 * np.pi * (month - 1) / 12)
    return seas + (-1e8 if model else 0.0) + 5e7 * warming * dyear + \
        2e7 * rng.standard_normal((t.size, n))


def make_data(n: int = 3, seed: int = 0, end: str = "2100-12-01") -> tuple[xr.Dataset, xr.Dataset]:
    """(scenario, time, band) model and (time, band) 'reanalysis' 2001-2023 with known biases."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2001-01-01", end, freq="MS")
    coords = {"time": t, "band": np.arange(n)}
    scen = xr.Dataset(
        {v: (("scenario", "time", "band"),
             np.stack([_series(rng, t, n, v, True, w) for w in (1.5, 6.0)]), {"units": UNITS[v]})
         for v in VARS},
        coords={"scenario": list(SCEN), **coords},
        attrs={"permaplug_data": "synthetic model", "historical_end": "2005-12"},
    )
    obs = xr.Dataset({v: (("time", "band"), _series(rng, t, n, v, False, 1.5), {"units": UNITS[v]})
                      for v in VARS}, coords=coords,
                     attrs={"permaplug_data": "synthetic reanalysis"}).sel(time=CAL)
    return scen, obs


def calib(scen: xr.Dataset, name: str = "rcp85") -> xr.Dataset:
    out = scen.sel(scenario=name, time=CAL).drop_vars("scenario")
    out.attrs = dict(scen.attrs)
    return out


def spread(ds: xr.Dataset, var: str, years=("2071", "2100")) -> float:
    m = ds[var].sel(time=slice(*years)).mean(("time", "band"))
    return float(m.sel(scenario="rcp85") - m.sel(scenario="rcp26"))


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def fitted(data):
    scen, obs = data
    out = {}
    for name in ("qm", "qdm", "dqm", "none"):
        c = get_corrector(name)().fit(calib(scen), obs)
        out[name] = (c, c.apply(scen))
    return out


def test_builtin_correctors_are_registered():
    names = get_registry().names("corrector")
    assert {"qm", "qdm", "dqm", "none"} <= set(names)
    assert get_registry().info("corrector", "qm").builtin


def test_qm_removes_monthly_bias(data, fitted):
    scen, obs = data
    _, out = fitted["qm"]
    for var in ("t2m", "strd", "swvl1"):
        raw_m = calib(scen)[var].groupby("time.month").mean()
        cor_m = calib(out)[var].groupby("time.month").mean()
        obs_m = obs[var].groupby("time.month").mean()
        scale = float(obs[var].std())
        raw_err = float(abs(raw_m - obs_m).max()) / scale
        cor_err = float(abs(cor_m - obs_m).max()) / scale
        assert raw_err > 0.2, var  # the synthetic model is clearly biased ...
        assert cor_err < 0.03, (var, cor_err)  # ... and the correction removes it
    t_err = abs(calib(out)["t2m"].groupby("time.month").mean() - obs["t2m"].groupby("time.month").mean())
    assert float(t_err.max()) < 0.1  # degC


def test_qm_matches_distributions_and_keeps_bounds(data, fitted):
    scen, obs = data
    _, out = fitted["qm"]
    for var in VARS:
        before = ks_distance(calib(scen)[var].values, obs[var].values)
        after = ks_distance(calib(out)[var].values, obs[var].values)
        assert after < 0.5 * before, (var, before, after)
    assert float(out["tp"].min()) >= 0.0
    assert 0.0 <= float(out["swvl1"].min()) and float(out["swvl1"].max()) <= 1.0
    # precipitation is corrected multiplicatively: the model's 2/3 wetness is scaled up
    ratio = float(calib(out)["tp"].mean() / calib(scen)["tp"].mean())
    assert 1.3 < ratio < 1.8


def test_corrected_output_keeps_dims_attrs_and_names_the_method(data, fitted):
    scen, _ = data
    _, out = fitted["qm"]
    assert out["t2m"].dims == ("scenario", "time", "band")
    assert out.attrs["permaplug_data"] == "synthetic model"
    assert out.attrs["historical_end"] == "2005-12"
    assert out.attrs["bias_correction"] == "qm"
    assert "permaplug qm" in out["t2m"].attrs["history"]
    assert out["t2m"].attrs["units"] == "degC"
    np.testing.assert_array_equal(out.time.values, scen.time.values)


def test_scenario_dim_is_the_same_as_one_scenario_at_a_time(data, fitted):
    scen, _ = data
    c, out = fitted["qm"]
    one = c.apply(scen.sel(scenario="rcp26"))
    np.testing.assert_allclose(one["t2m"].values, out["t2m"].sel(scenario="rcp26").values)


def test_qdm_and_dqm_keep_the_change_signal_qm_does_not(data, fitted):
    scen, _ = data
    raw = spread(scen, "t2m")
    assert raw == pytest.approx(4.5 * 0.85, rel=0.15)  # the synthetic warming difference
    for name in ("qdm", "dqm"):
        assert spread(fitted[name][1], "t2m") == pytest.approx(raw, rel=0.05), name
    # the model's spread is 1.5x the reanalysis': QM compresses the future accordingly
    assert spread(fitted["qm"][1], "t2m") < 0.9 * raw
    # precipitation: QDM keeps the relative change
    rel = lambda ds: float(ds["tp"].sel(scenario="rcp85", time=slice("2071", "2100")).mean()
                           / ds["tp"].sel(scenario="rcp26", time=slice("2071", "2100")).mean())
    assert rel(fitted["qdm"][1]) == pytest.approx(rel(scen), rel=0.05)


def test_none_returns_the_raw_model(data, fitted):
    scen, _ = data
    _, out = fitted["none"]
    for v in VARS:
        np.testing.assert_array_equal(out[v].values, scen[v].values)
    assert out.attrs["bias_correction"] == "none"


@pytest.mark.parametrize("name", ["qm", "qdm", "dqm", "none"])
def test_state_round_trips_through_netcdf(tmp_path, data, fitted, name):
    scen, _ = data
    c, out = fitted[name]
    path = c.save(tmp_path / f"{name}.nc")
    with xr.open_dataset(path) as raw_file:
        attrs = dict(raw_file.attrs)
        assert not any("py/object" in str(v) for v in attrs.values())  # no jsonpickle
        assert attrs["permaplug_corrector"] == name
    again = type(c).load(path)
    out2 = again.apply(scen)
    for v in VARS:
        np.testing.assert_allclose(out2[v].values, out[v].values, rtol=1e-6)
    from permaplug.correction.io import load_corrector

    assert load_corrector(path).name == name


def test_grid_with_dask_chunks_along_space(data):
    scen, obs = data
    # a (time, cell) grid of 4 cells, chunked along cell (and, wrongly, along time)
    def grid(ds):
        g = ds[["t2m", "tp"]].rename(band="cell")
        g = xr.concat([g, g + 0.0], dim="cell").isel(cell=slice(0, 4))
        return g.assign_coords(cell=np.arange(4))

    g_scen, g_obs = grid(scen), grid(obs)
    for v in ("t2m", "tp"):
        g_obs[v].attrs, g_scen[v].attrs = dict(obs[v].attrs), dict(scen[v].attrs)
    eager = get_corrector("qm")().fit(calib(g_scen), g_obs).apply(g_scen)
    lazy_in = g_scen.chunk({"cell": 2, "time": 120})
    c = get_corrector("qm")().fit(calib(g_scen).chunk({"cell": 2, "time": 100}),
                                  g_obs.chunk({"cell": 2}))
    lazy = c.apply(lazy_in)
    assert lazy["t2m"].chunks is not None  # stays lazy
    assert lazy["t2m"].chunks[lazy["t2m"].get_axis_num("cell")] == (2, 2)
    np.testing.assert_allclose(lazy["t2m"].values, eager["t2m"].values, rtol=1e-10)
    # precipitation uses random jitter: lazily computed values differ only below the threshold
    assert float(lazy["tp"].min()) >= 0.0
    # QDM's moving periods work on dask too
    q_eager = get_corrector("qdm")(variables=["t2m"]).fit(calib(g_scen), g_obs).apply(g_scen)
    q_lazy = get_corrector("qdm")(variables=["t2m"]).fit(
        calib(g_scen).chunk({"cell": 2}), g_obs.chunk({"cell": 2})).apply(lazy_in)
    assert q_lazy["t2m"].chunks is not None
    np.testing.assert_allclose(q_lazy["t2m"].values, q_eager["t2m"].values, rtol=1e-10)


def test_errors_name_the_problem(data):
    scen, obs = data
    with pytest.raises(ConfigError, match="unknown option.*nquantile"):
        get_corrector("qm")(nquantile=10)
    with pytest.raises(ConfigError, match="not fitted"):
        get_corrector("qdm")().apply(scen)
    with pytest.raises(DataError, match="scenario"):
        get_corrector("qm")().fit(scen, obs)
    no_units = obs.copy()
    no_units["t2m"] = no_units["t2m"].copy()
    no_units["t2m"].attrs = {}
    with pytest.raises(DataError, match="'t2m' has no 'units'"):
        get_corrector("qm")().fit(calib(scen), no_units)
    kelvin = calib(scen)
    kelvin["t2m"] = kelvin["t2m"].assign_attrs(units="K")
    with pytest.raises(DataError, match="units differ"):
        get_corrector("qm")().fit(kelvin, obs)
    with pytest.raises(DataError, match="'band' coordinates of obs_hist and model_hist differ"):
        get_corrector("qm")().fit(calib(scen), obs.assign_coords(band=obs.band + 1))
    c = get_corrector("qm")().fit(calib(scen), obs)
    with pytest.raises(DataError, match="lacks fitted variable.*tp"):
        c.apply(scen.drop_vars("tp"))
    with pytest.raises(DataError, match="share only 0 time steps"):
        get_corrector("qm")().fit(calib(scen), obs.assign_coords(time=obs.time + np.timedelta64(1, "D")))
    with pytest.raises(ConfigError, match="stride_years"):
        get_corrector("qdm")(period_years=10, stride_years=20)


def test_load_corrector_refuses_foreign_files(tmp_path):
    from permaplug.correction.io import load_corrector

    with pytest.raises(ConfigError, match="corrector file not found"):
        load_corrector(tmp_path / "missing.nc")
    xr.Dataset({"x": ("t", [1.0])}).to_netcdf(tmp_path / "other.nc")
    with pytest.raises(ConfigError, match="not a permaplug corrector file"):
        load_corrector(tmp_path / "other.nc")
    (tmp_path / "text.nc").write_text("not netcdf")
    with pytest.raises(ConfigError, match="not a readable corrector file"):
        load_corrector(tmp_path / "text.nc")
    state = xr.Dataset(attrs={"permaplug_corrector": "qm"})
    with pytest.raises(ConfigError, match="corrector state is for 'qm', not 'qdm'"):
        get_corrector("qdm").from_state(state)


def test_qdm_corrects_calendar_months_with_constant_values():
    """xsdba's QDM returns NaN where a month's values are all equal (polar-night ssrd = 0);
    permaplug applies the month's mean factor there instead of leaking NaN downstream."""
    import numpy as np
    import pandas as pd
    import xarray as xr

    from permaplug.plugins.correctors.qdm import QuantileDeltaMapping

    t = pd.date_range("1991-01-01", periods=12 * 40, freq="MS")
    rng = np.random.default_rng(1)

    def ds(values):
        return xr.Dataset({"ssrd": (("time", "band"), values[:, None],
                                    {"units": "J m-2"})}, coords={"time": t, "band": [5]})

    obs = rng.normal(3e8, 2e7, t.size)
    model = rng.normal(3.5e8, 2e7, t.size)
    obs[t.month == 12] = 0.0
    model[t.month == 12] = 0.0
    corr = QuantileDeltaMapping().fit(ds(model), ds(obs))
    out = corr.apply(ds(model))["ssrd"]
    assert int(out.isnull().sum()) == 0
    dec = out.sel(time=t[t.month == 12])
    np.testing.assert_allclose(dec.values, 0.0, atol=1e-6)
    assert "constant" in out.attrs["bias_correction_fallback"]
    june = out.sel(time=t[(t.month == 6) & (t.year <= 2020)])
    assert abs(float(june.mean()) - float(obs[(t.month == 6) & (t.year <= 2020)].mean())) < 2e7
