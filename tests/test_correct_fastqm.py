"""The fast quantile-mapping path equals xsdba's EmpiricalQuantileMapping within 1e-6.

xsdba (train + adjust, ``group="time.month"``, ``interp="nearest"``,
``extrapolation="constant"``) is computed here at test time as the reference, on xsdba's own
reference data and on random blocks with ties, NaN, constant months, values far beyond the
calibration range and large-valued units (where xsdba's nearest-node search crosses months).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from xsdba import EmpiricalQuantileMapping as EQM

from permaplug.correction import fastqm

REF_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "xsdba_reference"
if not REF_DIR.is_dir():
    REF_DIR = Path("/work/shared/data/xsdba_reference")

CAL = pd.date_range("2001-01-01", "2023-12-01", freq="MS")
SIM = pd.date_range("1991-01-01", "2060-12-01", freq="MS")


TABLE = ("month", "quantiles", "cell")


def xsdba_train_adjust(cls, ref, hist, sim, t_cal, t_sim, kind="+", nq=50, units="K"):
    """xsdba's ``cls`` (an adjustment class) trained on ``ref``/``hist`` ``[T, C]`` and applied
    to ``sim`` ``[S, T, C]`` (``time.month``, nearest, constant): ``(scen [S, T, C], adj)``."""
    def da(a, t, dims=("time", "cell")):
        return xr.DataArray(a, dims=dims, coords={"time": t}, attrs={"units": units})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adj = cls.train(da(ref, t_cal), da(hist, t_cal), nquantiles=nq, group="time.month",
                        kind=kind)
        scen = adj.adjust(da(sim, t_sim, ("s", "time", "cell")), interp="nearest",
                          extrapolation="constant")
    return scen.transpose("s", "time", "cell").values, adj


def xsdba_eqm(ref, hist, sim, t_cal, t_sim, kind="+", nq=50):
    """xsdba train + adjust on ``[T, C]`` numpy arrays; ``(scen [S, T, C], af, hist_q)``."""
    scen, adj = xsdba_train_adjust(EQM, ref, hist, sim, t_cal, t_sim, kind, nq)
    return scen, adj.ds.af.transpose(*TABLE).values, adj.ds.hist_q.transpose(*TABLE).values


def fast_eqm(ref, hist, sim, t_cal, t_sim, kind="+", nq=50):
    af, hist_q = fastqm.train_eqm(ref, hist, fastqm.months_of(t_cal), nq, kind)
    scen, n_fallback = fastqm.adjust_eqm_exact(sim, np.asarray(t_sim), af, hist_q, kind)
    return scen, af, hist_q, n_fallback


def assert_same(ref, hist, sim, t_cal=CAL, t_sim=SIM, kind="+", atol=1e-6):
    expect, af_x, hq_x = xsdba_eqm(ref, hist, sim, t_cal, t_sim, kind)
    got, af, hq, n_fallback = fast_eqm(ref, hist, sim, t_cal, t_sim, kind)
    np.testing.assert_allclose(af, af_x, rtol=1e-12, atol=atol, equal_nan=True)
    np.testing.assert_allclose(hq, hq_x, rtol=1e-12, atol=atol, equal_nan=True)
    np.testing.assert_allclose(got, expect, rtol=1e-12, atol=atol, equal_nan=True)
    return got, n_fallback


def seasonal_block(seed, n_cells=24, scale=1.0, bias=3.0, trend=6.0):
    rng = np.random.default_rng(seed)

    def season(t):
        return 15 * np.cos(2 * np.pi * (t.month.to_numpy() - 7) / 12)[:, None]

    ref = scale * (season(CAL) + rng.normal(size=(CAL.size, n_cells)))
    hist = scale * (season(CAL) + bias + 2 * rng.normal(size=(CAL.size, n_cells)))
    ramp = np.linspace(0, trend, SIM.size)[:, None]
    sim = scale * (season(SIM) + bias + ramp + 2 * rng.normal(size=(2, SIM.size, n_cells)))
    return ref, hist, sim


def test_random_block_equals_xsdba():
    got, n_fallback = assert_same(*seasonal_block(0))
    assert n_fallback == 0 and np.isfinite(got).all()


def test_values_far_beyond_the_calibration_range():
    """A +/-40 K excursion: xsdba's nearest node may sit in a neighbouring month."""
    ref, hist, sim = seasonal_block(1, trend=25.0)
    sim[:, ::37] -= 40.0
    assert_same(ref, hist, sim)


@pytest.mark.parametrize("scale", [1e3, 1e7])
def test_large_valued_units_cross_months_like_xsdba(scale):
    """J m-2-sized values: the month axis of xsdba's search is negligible next to values."""
    assert_same(*seasonal_block(2, scale=scale), atol=1e-6 * scale)


def test_nodes_closer_than_float32_resolution():
    """Values near 1e7 spread by hundredths: many nodes share one float32 (the vectorised
    count runs in float32 and must hand such values to the exact float64 search)."""
    ref, hist, sim = (1e7 + 0.01 * a for a in seasonal_block(12, n_cells=fastqm.LANES + 3))
    got, _ = assert_same(ref, hist, sim)
    assert np.isfinite(got).all()


def test_ties_in_data_and_sim():
    ref, hist, sim = (a.round(0) for a in seasonal_block(3))
    _, n_fallback = assert_same(ref, hist, sim)
    assert n_fallback > 0  # tied calibration values met tied nodes: xsdba settled those cells


def test_ties_across_months_in_integer_units():
    """Integer values a few units apart: squared distances tie across months (an own-month node
    1 away and a neighbouring month's node at 0: 1 + 0 = 0 + 1), settled value by value by
    xsdba's own k-d tree search."""
    ref, hist, sim = (np.round(3 * a) for a in seasonal_block(5))
    got, n_fallback = assert_same(ref, hist, sim)
    assert n_fallback > 0 and np.isfinite(got).all()


def test_nan_gaps_and_empty_cells():
    ref, hist, sim = seasonal_block(4)
    rng = np.random.default_rng(4)
    for a in (ref, hist, sim):
        a[rng.random(a.shape) < 0.05] = np.nan
    ref[:, 3] = np.nan  # a cell with no reference data: NaN out
    hist[CAL.month == 2, 5] = np.nan  # a month with no model data in one cell
    got, _ = assert_same(ref, hist, sim)
    assert np.isnan(got[..., 3]).all()


def polar_night_block():
    """:func:`seasonal_block` whose December and January are constant in cells 0-7 (0 in
    reference, model and scenarios) and in the model of cells 8-11 (1.5, the reference
    varying: tied nodes with different factors)."""
    ref, hist, sim = seasonal_block(5)
    winter = np.isin(CAL.month, (12, 1))
    ref[winter, :8] = 0.0
    hist[winter, :8] = 0.0
    hist[winter, 8:12] = 1.5
    sim[:, np.isin(SIM.month, (12, 1)), :8] = 0.0
    return ref, hist, sim


def test_constant_months():
    """Polar-night-like months: every calibration value equal (all nodes tied)."""
    assert_same(*polar_night_block())


def mixed_tiles_block(seed):
    """More cells than one SIMD tile of ``fastqm.LANES`` (the last tile partial), ordinary
    cells side by side with tied, empty, gappy, constant-month and far-off ones."""
    n_cells = 2 * fastqm.LANES + 21
    ref, hist, sim = seasonal_block(seed, n_cells=n_cells)
    tied = np.arange(5, n_cells, 17)
    for a in (ref, hist, sim):
        a[..., tied] = a[..., tied].round(0)
    ref[:, 70] = np.nan  # an empty cell inside a tile
    hist[CAL.month == 3, 71] = np.nan  # a month without model data
    winter = np.isin(CAL.month, (12, 1))
    ref[winter, 100:104] = 0.0
    hist[winter, 100:104] = 0.0
    sim[:, ::29, 130:140] -= 40.0  # far below: a neighbouring month's node may be nearer
    return ref, hist, sim


def test_many_tiles_mixing_ordinary_and_special_cells():
    got, n_fallback = assert_same(*mixed_tiles_block(9))
    assert n_fallback >= 1  # the tied cells
    assert np.isnan(got[..., 70]).all() and np.isfinite(got[..., :5]).all()


def test_multiplicative_kind():
    ref, hist, sim = (np.abs(a) + 1.0 for a in seasonal_block(6))
    assert_same(ref, hist, sim, kind="*")


def test_daily_series_are_grouped_by_month():
    rng = np.random.default_rng(7)
    t_cal = pd.date_range("2001-01-01", "2004-12-31", freq="D")
    t_sim = pd.date_range("2001-01-01", "2008-12-31", freq="D")
    doy = 10 * np.cos(2 * np.pi * t_cal.day_of_year.to_numpy() / 365.25)[:, None]
    doy_s = 10 * np.cos(2 * np.pi * t_sim.day_of_year.to_numpy() / 365.25)[:, None]
    ref = doy + rng.normal(size=(t_cal.size, 4))
    hist = doy + 2 + rng.normal(size=(t_cal.size, 4))
    sim = (doy_s + 3 + rng.normal(size=(t_sim.size, 4)))[None]
    assert_same(ref, hist, sim, t_cal, t_sim)


@pytest.mark.skipif(not REF_DIR.is_dir(), reason="shared/data/xsdba_reference absent")
@pytest.mark.parametrize("obs_file", ["ahccd_1950-2013.nc", "nrcan_1950-2013.nc"])
def test_xsdba_reference_data(obs_file):
    """Daily CanESM2 tasmax (K) against AHCCD / NRCAN at three sites, 1981-2010 -> 1981-2060."""
    with xr.open_dataset(REF_DIR / "CanESM2_1950-2100.nc") as m, \
            xr.open_dataset(REF_DIR / obs_file) as o:
        model = m.tasmax.load().transpose("time", "location")
        obs = o.tasmax.load().transpose("time", "location")
    cal = slice("1981-01-01", "2010-12-31")
    obs_k = obs.sel(time=cal) + (273.15 if obs.attrs.get("units") in ("degC", "°C") else 0.0)
    hist = model.sel(time=cal)
    common = np.intersect1d(hist.time.values, obs_k.time.values)
    sim = model.sel(time=slice("1981-01-01", "2060-12-31"))
    got, _ = assert_same(obs_k.sel(time=common).values.astype(float),
                         hist.sel(time=common).values.astype(float),
                         sim.values.astype(float)[None], common, sim.time.values)
    assert np.isfinite(got).all()


def grid_inputs(n_cells=12):
    rng = np.random.default_rng(11)
    ref, hist, sim = seasonal_block(8, n_cells=n_cells)
    rain = np.abs(rng.normal(20, 10, size=sim.shape))
    time_dims = ("time", "cell")

    def ds(t2m, tp, t, dims=time_dims):
        return xr.Dataset({"t2m": (dims, t2m, {"units": "degC"}),
                           "tp": (dims, tp, {"units": "mm"})}, coords={"time": t})

    obs = ds(ref, np.abs(rng.normal(25, 10, size=ref.shape)), CAL)
    model_hist = ds(hist, np.abs(rng.normal(20, 10, size=hist.shape)), CAL)
    scen = ds(sim, rain, SIM, ("scenario", "time", "cell"))
    return model_hist, obs, scen


@pytest.mark.parametrize("preserve_order", [False, True])
@pytest.mark.parametrize("lazy", [False, True])
def test_corrector_fast_option_equals_xsdba(preserve_order, lazy):
    """Eager and dask grids; tp (frequency adaptation, jitter) stays on xsdba, computed
    eagerly under the seed on dask grids too, so it is equal both ways."""
    from permaplug.core.plugins import get_corrector

    model_hist, obs, scen = grid_inputs()
    if lazy:
        model_hist, obs, scen = (d.chunk({"cell": 5}) for d in (model_hist, obs, scen))
    out = {}
    for fast in (False, True):
        c = get_corrector("qm")(fast=fast, preserve_order=preserve_order)
        c.fit(model_hist, obs)
        assert c.uses_fast_path(c.rules["t2m"]) is fast
        assert not c.uses_fast_path(c.rules["tp"])  # frequency adaptation: xsdba itself
        out[fast] = c.apply(scen).compute()
    for v in ("t2m", "tp"):
        np.testing.assert_allclose(out[True][v].values, out[False][v].values, atol=1e-6,
                                   equal_nan=True)
    assert float(abs(out[True]["t2m"] - scen["t2m"]).max()) > 1.0  # it corrected


def test_fast_trained_state_round_trips(tmp_path):
    from permaplug.core.plugins import get_corrector

    model_hist, obs, scen = grid_inputs(4)
    c = get_corrector("qm")(fast=True, variables=["t2m"]).fit(model_hist, obs)
    c.save(tmp_path / "qm.nc")
    back = type(c).load(tmp_path / "qm.nc")
    np.testing.assert_allclose(back.apply(scen)["t2m"].values, c.apply(scen)["t2m"].values,
                               atol=1e-9)


@pytest.mark.parametrize("option", [{"interp": "linear"}, {"group": "time"},
                                    {"extrapolation": "nan"}, {"fast": False}])
def test_options_outside_the_fast_path_use_xsdba(option):
    from permaplug.core.plugins import get_corrector
    from permaplug.correction.rules import rule_for

    c = get_corrector("qm")(**{"fast": True, **option})
    assert not c.uses_fast_path(rule_for("t2m"))
    assert not get_corrector("qdm")(**{"fast": True, **option}).uses_fast_path(rule_for("t2m"))
    assert get_corrector("qdm")(fast=True).uses_fast_path(rule_for("t2m"))
    assert not get_corrector("qdm")(fast=True).uses_fast_path(rule_for("tp"))
    assert get_corrector("dqm")(fast=True).uses_fast_path(rule_for("t2m"))
    assert not get_corrector("dqm")(**{"fast": True, **option}).uses_fast_path(rule_for("t2m"))
