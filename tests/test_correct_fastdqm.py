"""The fast detrended quantile mapping path equals xsdba's DetrendedQuantileMapping within 1e-6.

xsdba (train + adjust, ``group="time.month"``, ``interp="nearest"``,
``extrapolation="constant"``, ``detrend=1``) is computed here at test time as the reference, on
xsdba's own reference data and on random blocks with ties, NaN, constant months and values
beyond the calibration range, additive and multiplicative.
"""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from test_correct_fastqm import (
    CAL,
    REF_DIR,
    SIM,
    TABLE,
    mixed_tiles_block,
    seasonal_block,
    xsdba_train_adjust,
)
from xsdba import DetrendedQuantileMapping as DQM

from permaplug.correction import fastqm


def xsdba_dqm(ref, hist, sim, t_cal, t_sim, kind="+", nq=50, units="K"):
    """xsdba train + adjust: ``(scen [S, T, C], af, hist_q, scaling)``."""
    scen, adj = xsdba_train_adjust(DQM, ref, hist, sim, t_cal, t_sim, kind, nq, units)
    return (scen, adj.ds.af.transpose(*TABLE).values, adj.ds.hist_q.transpose(*TABLE).values,
            adj.ds.scaling.transpose("month", "cell").values)


def assert_same(ref, hist, sim, t_cal=CAL, t_sim=SIM, kind="+", atol=1e-6, units="K"):
    expect, af_x, hq_x, sc_x = xsdba_dqm(ref, hist, sim, t_cal, t_sim, kind, units=units)
    af, hq, sc = fastqm.train_dqm(ref, hist, fastqm.months_of(t_cal), 50, kind)
    for got_t, want_t in ((af, af_x), (hq, hq_x), (sc, sc_x)):
        np.testing.assert_allclose(got_t, want_t, rtol=1e-9, atol=atol, equal_nan=True)
    got, n_fallback = fastqm.adjust_dqm_exact(sim, np.asarray(t_sim), af, hq, sc, kind)
    assert np.isfinite(expect).any()
    np.testing.assert_allclose(got, expect, rtol=1e-9, atol=atol, equal_nan=True)
    return got, n_fallback


def test_random_block_equals_xsdba():
    got, n_fallback = assert_same(*seasonal_block(0))
    assert n_fallback == 0 and np.isfinite(got).all()


def test_values_far_beyond_the_calibration_range():
    ref, hist, sim = seasonal_block(1, trend=25.0)
    sim[:, ::37] -= 40.0
    assert_same(ref, hist, sim)


def test_ties_nan_and_constant_months():
    ref, hist, sim = (a.round(0) for a in seasonal_block(3))
    rng = np.random.default_rng(3)
    for a in (ref, hist, sim):
        a[rng.random(a.shape) < 0.05] = np.nan
    ref[:, 3] = np.nan  # a cell with no reference data: NaN out
    winter = np.isin(CAL.month, (12, 1))
    ref[winter, 5:8] = 0.0
    hist[winter, 5:8] = 0.0
    sim[1, SIM.month == 5, 9] = np.where(np.arange((SIM.month == 5).sum()) == 4, 2.0, np.nan)
    got, n_fallback = assert_same(ref, hist, sim)
    assert np.isnan(got[..., 3]).all()
    assert n_fallback >= 1  # the month with one valid value is xsdba's


def test_many_tiles_mixing_ordinary_and_special_cells():
    got, n_fallback = assert_same(*mixed_tiles_block(10))
    assert n_fallback >= 1
    assert np.isnan(got[..., 70]).all() and np.isfinite(got[..., :5]).all()


def test_multiplicative_kind():
    ref, hist, sim = (np.abs(a) + 1.0 for a in seasonal_block(6))
    assert_same(ref, hist, sim, kind="*")


@pytest.mark.skipif(not REF_DIR.is_dir(), reason="shared/data/xsdba_reference absent")
def test_xsdba_reference_data():
    """Daily CanESM2 tasmax (K) against NRCAN at three sites, 1981-2010 -> 1981-2060."""
    with xr.open_dataset(REF_DIR / "CanESM2_1950-2100.nc") as m, \
            xr.open_dataset(REF_DIR / "nrcan_1950-2013.nc") as o:
        model = m.tasmax.load().transpose("time", "location")
        obs = o.tasmax.load().transpose("time", "location")
    cal = slice("1981-01-01", "2010-12-31")
    hist = model.sel(time=cal)
    common = np.intersect1d(hist.time.values, obs.sel(time=cal).time.values)
    sim = model.sel(time=slice("1981-01-01", "2060-12-31"))
    got, _ = assert_same(obs.sel(time=common).values.astype(float),
                         hist.sel(time=common).values.astype(float),
                         sim.values.astype(float)[None], common, sim.time.values)
    assert np.isfinite(got).all()
