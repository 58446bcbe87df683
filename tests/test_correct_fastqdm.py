"""The fast quantile delta mapping path equals xsdba's QuantileDeltaMapping within 1e-6.

xsdba (train + adjust, ``group="time.month"``, ``interp="nearest"``,
``extrapolation="constant"``) is computed here at test time as the reference, on xsdba's own
reference data (daily tasmax, additive; daily pr, multiplicative) and on random blocks with
ties, NaN, constant months, single-value months and values far beyond the calibration range.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_correct_fastqm import (
    CAL,
    REF_DIR,
    SIM,
    grid_inputs,
    polar_night_block,
    seasonal_block,
    xsdba_train_adjust,
)
from xsdba import QuantileDeltaMapping as QDM

from permaplug.correction import fastqm


def xsdba_qdm(ref, hist, sim, t_cal, t_sim, kind="+", nq=50, units="K"):
    """xsdba train + adjust on numpy arrays (``[T, C]``, sim ``[S, T, C]``): ``scen [S, T, C]``."""
    return xsdba_train_adjust(QDM, ref, hist, sim, t_cal, t_sim, kind, nq, units)[0]


def fast_qdm(ref, hist, sim, t_cal, t_sim, kind="+", nq=50):
    af, _ = fastqm.train_eqm(ref, hist, fastqm.months_of(t_cal), nq, kind)
    return fastqm.adjust_qdm_exact(sim, np.asarray(t_sim), af, fastqm.nodes(nq), kind)


def assert_same(ref, hist, sim, t_cal=CAL, t_sim=SIM, kind="+", atol=1e-6, units="K"):
    expect = xsdba_qdm(ref, hist, sim, t_cal, t_sim, kind, units=units)
    got, n_fallback = fast_qdm(ref, hist, sim, t_cal, t_sim, kind)
    assert np.isfinite(expect).any()
    np.testing.assert_allclose(got, expect, rtol=1e-12, atol=atol, equal_nan=True)
    return got, n_fallback


@pytest.mark.parametrize("offset", [0.0, 1e7, 1e15])
def test_month_pct_ranks_equal_xsdba_rank(offset):
    """Near 1e15 (spacing 0.125) every value of a month differs from the others only in the
    lowest mantissa bits, which the sort keys replace by the value's place in its month: the
    keys come out of order and the months are sorted exactly."""
    from xsdba.base import Grouper
    from xsdba.utils import rank

    rng = np.random.default_rng(0)
    sim = offset + rng.normal(size=(2, SIM.size, 5)).round(1)  # many ties
    sim[0, ::7, 1] = np.nan
    sim[1, SIM.month == 3, 2] = offset + 4.0  # one distinct value: NaN
    da = xr.DataArray(sim, dims=("s", "time", "cell"), coords={"time": SIM})
    expect = Grouper("time.month").apply(rank, da, main_only=True, pct=True)
    got = fastqm.month_pct_ranks(sim, fastqm.months_of(SIM))
    np.testing.assert_array_equal(got, expect.transpose("s", "time", "cell").values)
    assert np.isnan(got[1, SIM.month == 3, 2]).all() and np.nanmin(got) == 0.0


def test_values_differing_only_in_their_lowest_bits():
    """``1 + k`` ulp (``k < 128``) and ``1e15 + k / 8``: distinct and tied values whose sort
    keys collide (see above); the QDM result equals xsdba's (a wrong rank would take another
    node's factor)."""
    ref, hist, _ = seasonal_block(12, n_cells=4)
    rng = np.random.default_rng(12)
    k = rng.integers(0, 128, size=(2, SIM.size, 4)).astype(float)
    sim = 1.0 + k * np.finfo(float).eps
    sim[..., 3] = 1e15 + k[..., 3] / 8
    sim[1, 100:200:3, 2] = np.nan
    got, _ = assert_same(ref, hist, sim)
    ranks = fastqm.month_pct_ranks(k, fastqm.months_of(SIM))
    np.testing.assert_array_equal(fastqm.month_pct_ranks(sim[..., :2], fastqm.months_of(SIM)),
                                  ranks[..., :2])
    assert np.unique(got[..., 0]).size > 40  # many distinct factors: the ranks mattered


def test_chunks_of_cells_mixing_ordinary_and_special_cells():
    """More cells than one chunk of ``fastqm.RANK_CELLS`` (the last one partial): tie-heavy
    months (three values), NaN in the middle of months, a constant month, NaN factors (a month
    without model data: the general nearest-node search), beside ordinary cells."""
    n_cells = 2 * fastqm.RANK_CELLS + 21
    ref, hist, sim = seasonal_block(11, n_cells=n_cells)
    rng = np.random.default_rng(11)
    sim[..., 5] = rng.integers(0, 3, size=sim[..., 5].shape)
    sim[:, 400:460:7, 66] = np.nan
    sim[0, SIM.month == 8, 67] = 2.5
    hist[CAL.month == 3, 71] = np.nan
    got, _ = assert_same(ref, hist, sim)
    assert np.isnan(got[0, SIM.month == 8, 67]).all()
    assert np.isfinite(got[..., :5]).all() and np.isfinite(got[..., 5]).all()
    assert np.isnan(got[:, 400:460:7, 66]).all() and np.isfinite(got[:, 401:460:7, 66]).all()


def test_random_block_equals_xsdba():
    got, n_fallback = assert_same(*seasonal_block(0))
    assert n_fallback == 0 and np.isfinite(got).all()
    ref, hist, sim = seasonal_block(0)
    eqm = fastqm.adjust_eqm(sim, fastqm.months_of(SIM),
                            *fastqm.train_eqm(ref, hist, fastqm.months_of(CAL), 50))[0]
    assert np.abs(got - eqm).max() > 1.0  # QDM keeps the trend EQM flattens: a different method


def test_values_far_beyond_the_calibration_range():
    ref, hist, sim = seasonal_block(1, trend=25.0)
    sim[:, ::37] -= 40.0
    assert_same(ref, hist, sim)


def test_ties_in_data_and_sim():
    """Rounded values: tied ranks, and ranks exactly half-way between two nodes."""
    ref, hist, sim = (a.round(0) for a in seasonal_block(3))
    assert_same(ref, hist, sim)
    rng = np.random.default_rng(3)
    t = pd.date_range("2001-01-01", periods=12 * 51, freq="MS")  # 51 values per month
    ramp = np.stack([rng.permutation(51) for _ in range(12)], axis=1).ravel().astype(float)
    ref, hist, _ = seasonal_block(3, n_cells=1)
    _, n_fallback = assert_same(ref, hist, ramp[None, :, None], t_sim=t)
    assert n_fallback == 1  # ranks k / 50 lie on the nodes' mid-points: xsdba settles the cell


def test_nan_gaps_and_empty_cells():
    ref, hist, sim = seasonal_block(4)
    rng = np.random.default_rng(4)
    for a in (ref, hist, sim):
        a[rng.random(a.shape) < 0.05] = np.nan
    ref[:, 3] = np.nan  # a cell with no reference data: NaN out
    hist[CAL.month == 2, 5] = np.nan  # a month with no model data in one cell: no factors
    sim[0, SIM.month == 4, 6] = np.nan  # a month with no values to adjust
    got, _ = assert_same(ref, hist, sim)
    assert np.isnan(got[..., 3]).all()
    # factors from the neighbouring months, but the lowest and highest ranks take the month's
    # own (NaN) end factors by the constant extrapolation: NaN there, as in xsdba
    feb = got[1, SIM.month == 2, 5]
    assert np.isfinite(feb).sum() == np.isfinite(sim[1, SIM.month == 2, 5]).sum() - 2


def test_constant_and_single_value_months():
    """Polar-night-like months (ranks 0 / 0: NaN, as xsdba) and tied calibration nodes."""
    ref, hist, sim = polar_night_block()
    sim[1, SIM.month == 5, 9] = np.where(np.arange((SIM.month == 5).sum()) == 4, 2.0, np.nan)
    got, _ = assert_same(ref, hist, sim)
    assert np.isnan(got[:, np.isin(SIM.month, (12, 1)), :8]).all()


def test_multiplicative_kind():
    ref, hist, sim = (np.abs(a) + 1.0 for a in seasonal_block(6))
    assert_same(ref, hist, sim, kind="*")


@pytest.mark.skipif(not REF_DIR.is_dir(), reason="shared/data/xsdba_reference absent")
@pytest.mark.parametrize(("var", "kind"), [("tasmax", "+"), ("pr", "*")])
def test_xsdba_reference_data(var, kind):
    """Daily CanESM2 against NRCAN at three sites, 1981-2010 -> 1981-2060: tasmax (K, additive)
    and pr (kg m-2 s-1, multiplicative, with dry days: zero and infinite factors)."""
    with xr.open_dataset(REF_DIR / "CanESM2_1950-2100.nc") as m, \
            xr.open_dataset(REF_DIR / "nrcan_1950-2013.nc") as o:
        model = m[var].load().transpose("time", "location")
        obs = o[var].load().transpose("time", "location")
    cal = slice("1981-01-01", "2010-12-31")
    hist = model.sel(time=cal)
    common = np.intersect1d(hist.time.values, obs.sel(time=cal).time.values)
    sim = model.sel(time=slice("1981-01-01", "2060-12-31"))
    got, _ = assert_same(obs.sel(time=common).values.astype(float),
                         hist.sel(time=common).values.astype(float),
                         sim.values.astype(float)[None], common, sim.time.values, kind=kind,
                         atol=1e-6 if kind == "+" else 1e-12, units=model.attrs["units"])
    assert np.isfinite(got).mean() > 0.5


@pytest.mark.parametrize("method", ["qdm", "dqm"])
@pytest.mark.parametrize("lazy", [False, True])
def test_delta_corrector_fast_option_equals_xsdba(method, lazy):
    """qdm (moving 30-year periods) and dqm, eager and dask: fast against xsdba."""
    from permaplug.core.plugins import get_corrector

    model_hist, obs, scen = grid_inputs()
    if lazy:
        model_hist, obs, scen = (d.chunk({"cell": 5}) for d in (model_hist, obs, scen))
    out = {}
    for fast in (False, True):
        c = get_corrector(method)(fast=fast, variables=["t2m"])
        c.fit(model_hist, obs)
        assert c.uses_fast_path(c.rules["t2m"]) is fast
        out[fast] = c.apply(scen).compute()
    np.testing.assert_allclose(out[True]["t2m"].values, out[False]["t2m"].values, atol=1e-6,
                               equal_nan=True)
    assert float(abs(out[True]["t2m"] - scen["t2m"]).max()) > 1.0  # it corrected
